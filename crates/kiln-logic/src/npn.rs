//! NPN canonisation of 4-input boolean functions.
//!
//! Two functions are NPN-equivalent when one becomes the other by permuting
//! the inputs, negating some inputs and possibly negating the output. Over
//! the full two-input basis negations are free (they fold into the gates that
//! read them), so every member of a class has a minimum circuit of the same
//! size, and one precomputed optimum per class (see
//! [`crate::npn_library`]) serves all 65536 four-input functions.
//!
//! Truth tables are `u16`: bit `m` holds `f(x)` where input `i` has the value
//! `(m >> i) & 1`, so input 0 is `0xAAAA`, input 1 `0xCCCC`, input 2 `0xF0F0`
//! and input 3 `0xFF00` (the convention of ABC and most synthesis papers).
//! Functions of fewer inputs are the same tables with the unused inputs
//! ignored.
//!
//! The canonical representative of a class is its numerically smallest
//! member. Rather than trying all 768 transforms on each function, the
//! whole 65536-entry table is built once (lazily) orbit by orbit: the orbit of
//! the first unclassified function gives the class minimum `r`, and applying
//! every transform to `r` reaches each member together with the transform
//! back to `r`. That is 222 · 2 · 768 transforms in all, milliseconds.

use std::sync::OnceLock;

/// Number of NPN classes of 4-input functions.
pub const NUM_CLASSES: usize = 222;

/// How a function relates to its class representative:
/// `f(x) = output_negated ⊕ rep(y)` with `y[j] = x[perm[j]] ⊕ (bit j of input_negations)`.
///
/// So a circuit for the representative becomes a circuit for `f` by feeding
/// its input `j` from `f`'s input `perm[j]` (negated when bit `j` of
/// `input_negations` is set) and negating its output when `output_negated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NpnTransform {
    /// `perm[j]` is the input of `f` that feeds input `j` of the representative.
    pub perm: [u8; 4],
    /// Bit `j` set: input `j` of the representative reads the negated input.
    pub input_negations: u8,
    /// Whether the representative's output is negated.
    pub output_negated: bool,
}

impl NpnTransform {
    /// The identity transform.
    pub const IDENTITY: NpnTransform = NpnTransform {
        perm: [0, 1, 2, 3],
        input_negations: 0,
        output_negated: false,
    };

    /// Applies the transform "forwards" to `f`: returns `g` with
    /// `f(x) = output_negated ⊕ g(y)`, `y[j] = x[perm[j]] ⊕ neg[j]`, i.e. the
    /// function that this transform relates `f` to.
    pub fn apply(&self, f: u16) -> u16 {
        let mut g = 0u16;
        for ym in 0..16u16 {
            // Input x of f seen by the representative's assignment y.
            let mut xm = 0u16;
            for j in 0..4 {
                let yj = (ym >> j) & 1 ^ u16::from(self.input_negations >> j & 1);
                xm |= yj << self.perm[j];
            }
            let v = (f >> xm) & 1 ^ u16::from(self.output_negated);
            g |= v << ym;
        }
        g
    }

    /// The transform that applies `self` and then `next`: if
    /// `self.apply(f) == g` and `next.apply(g) == h` then
    /// `self.then(&next).apply(f) == h`.
    pub fn then(&self, next: &NpnTransform) -> NpnTransform {
        // f(x) = o1 ⊕ g(y), y[j] = x[p1[j]] ⊕ n1[j]; g(y) = o2 ⊕ h(z),
        // z[k] = y[p2[k]] ⊕ n2[k]; so z[k] = x[p1[p2[k]]] ⊕ n1[p2[k]] ⊕ n2[k].
        let mut perm = [0u8; 4];
        let mut neg = 0u8;
        for (k, slot) in perm.iter_mut().enumerate() {
            let p2 = next.perm[k] & 3;
            *slot = self.perm[usize::from(p2)];
            neg |= ((self.input_negations >> p2 & 1) ^ (next.input_negations >> k & 1)) << k;
        }
        NpnTransform {
            perm,
            input_negations: neg,
            output_negated: self.output_negated ^ next.output_negated,
        }
    }

    /// The transform going the other way: if `self.apply(f) == g` then
    /// `self.inverse().apply(g) == f`.
    pub fn inverse(&self) -> NpnTransform {
        // g(y) = o ⊕ f(x) with x[perm[j]] = y[j] ⊕ n[j], so
        // f(x) = o ⊕ g(y) with y[k] = x[perm⁻¹[k]] ⊕ n[perm⁻¹[k]] after renaming.
        let mut inv = [0u8; 4];
        for (j, &p) in self.perm.iter().enumerate() {
            inv[usize::from(p & 3)] = j as u8;
        }
        let mut neg = 0u8;
        for (k, &pk) in inv.iter().enumerate() {
            neg |= (self.input_negations >> pk & 1) << k;
        }
        NpnTransform {
            perm: inv,
            input_negations: neg,
            output_negated: self.output_negated,
        }
    }
}

/// The canonical form of one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NpnCanon {
    /// The class representative (smallest truth table in the class).
    pub rep: u16,
    /// How the function is obtained from `rep`; see [`NpnTransform`].
    pub transform: NpnTransform,
    /// Index of the class, `0..NUM_CLASSES`, in increasing order of `rep`.
    pub class: u8,
}

struct Tables {
    canon: Vec<NpnCanon>,
    reps: Vec<u16>,
    /// Per class, the transforms mapping the representative to itself, the
    /// identity first.
    automorphisms: Vec<Vec<NpnTransform>>,
}

/// All 768 transforms (24 permutations × 16 input negations × 2 output polarities).
fn all_transforms() -> Vec<NpnTransform> {
    let mut perms = Vec::with_capacity(24);
    for a in 0..4u8 {
        for b in 0..4u8 {
            for c in 0..4u8 {
                // The fourth position is whatever 0..4 is left; a repeated a, b or c
                // makes the sum exceed 6, which `checked_sub` turns into a skip.
                let Some(d) = 6u8.checked_sub(a + b + c) else { continue };
                if a != b && a != c && b != c && d < 4 && d != a && d != b && d != c {
                    perms.push([a, b, c, d]);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(768);
    for perm in perms {
        for input_negations in 0..16u8 {
            for output_negated in [false, true] {
                out.push(NpnTransform {
                    perm,
                    input_negations,
                    output_negated,
                });
            }
        }
    }
    out
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let transforms = all_transforms();
        let mut found: Vec<Option<(u16, NpnTransform)>> = vec![None; 1 << 16];
        let mut reps = Vec::with_capacity(NUM_CLASSES);
        for f in 0..=u16::MAX {
            if found[usize::from(f)].is_some() {
                continue;
            }
            let rep = transforms.iter().map(|t| t.apply(f)).min().unwrap_or(f);
            reps.push(rep);
            for t in &transforms {
                // g = t(rep) relates g to rep through t's inverse.
                let g = t.apply(rep);
                if found[usize::from(g)].is_none() {
                    found[usize::from(g)] = Some((rep, t.inverse()));
                }
            }
        }
        reps.sort_unstable();
        let canon = found
            .into_iter()
            .enumerate()
            .map(|(f, e)| {
                let (rep, transform) = e.unwrap_or((f as u16, NpnTransform::IDENTITY));
                let class = reps.binary_search(&rep).unwrap_or(0) as u8;
                NpnCanon { rep, transform, class }
            })
            .collect();
        let automorphisms = reps
            .iter()
            .map(|&r| {
                let mut v = vec![NpnTransform::IDENTITY];
                v.extend(transforms.iter().filter(|t| **t != NpnTransform::IDENTITY && t.apply(r) == r));
                v
            })
            .collect();
        Tables {
            canon,
            reps,
            automorphisms,
        }
    })
}

/// Canonical form of a 4-input truth table (table lookup after the first call).
pub fn canonise(f: u16) -> NpnCanon {
    tables().canon[usize::from(f)]
}

/// The transforms that map the representative of `class` to itself (its
/// symmetries), the identity first; empty for an unknown class.
///
/// If `t` takes `f` to its representative, so does `t.then(&s)` for each
/// such `s`: mapping one representative circuit through each of them gives
/// structurally different circuits for `f`, which lets rewriting pick the
/// one that shares most with the logic already there.
pub fn automorphisms(class: u8) -> &'static [NpnTransform] {
    tables().automorphisms.get(usize::from(class)).map_or(&[], |v| v.as_slice())
}

/// The class representatives in increasing order (`NUM_CLASSES` of them).
pub fn representatives() -> &'static [u16] {
    &tables().reps
}

/// Which of the 4 inputs `f` depends on (bit `i` for input `i`).
pub fn support(f: u16) -> u8 {
    const VARS: [u16; 4] = [0xAAAA, 0xCCCC, 0xF0F0, 0xFF00];
    let mut s = 0u8;
    for (i, &v) in VARS.iter().enumerate() {
        let sh = 1u32 << i;
        // Cofactors: f with input i = 0 and = 1, aligned.
        if (f & !v) != ((f & v) >> sh) {
            s |= 1 << i;
        }
    }
    s
}

/// Widens a truth table over `k ≤ 4` inputs (`2^k` low bits of `tt`) to 16
/// bits by repetition, so the extra inputs are ignored.
pub fn expand_to_4(tt: u64, k: usize) -> u16 {
    let k = k.min(4);
    let bits = 1u32 << k;
    let mut t = tt & (u64::MAX >> (64 - bits));
    let mut width = bits;
    while width < 16 {
        t |= t << width;
        width *= 2;
    }
    t as u16
}

/// Signal id meaning "constant 0" in [`NpnOptimum::output`].
pub const CONST_SIGNAL: u8 = u8::MAX;

/// A minimum circuit for one class representative over the sixteen
/// two-input functions (the table in [`crate::npn_library`]).
///
/// Signals are numbered `0..4` for the inputs and `4 + k` for gate `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpnOptimum {
    /// The class representative this circuit computes.
    pub rep: u16,
    /// Gates `(tt, a, b)`: a two-input function (bit `2a + b` of `tt` is
    /// `f(a, b)`, as in [`crate::circuit::gate_from_truth_table`]) of two
    /// earlier signals. Every gate is a genuine binary gate, so
    /// `gates.len()` is the class's minimum size.
    pub gates: &'static [(u8, u8, u8)],
    /// The signal computing `rep` (before `output_negated`), or
    /// [`CONST_SIGNAL`] for the constant 0.
    pub output: u8,
    /// Whether `output` must be negated to give `rep`. Only set when there
    /// are no gates (the literal class): otherwise the negation is folded
    /// into the last gate.
    pub output_negated: bool,
    /// Whether the search proved the size minimal.
    pub optimal: bool,
}

impl NpnOptimum {
    /// Simulates the circuit on all 16 input assignments.
    pub fn truth_table(&self) -> u16 {
        const VARS: [u16; 4] = [0xAAAA, 0xCCCC, 0xF0F0, 0xFF00];
        let mut vals: Vec<u16> = VARS.to_vec();
        for &(tt, a, b) in self.gates {
            let get = |s: u8| vals.get(usize::from(s)).copied().unwrap_or(0);
            let (x, y) = (get(a), get(b));
            let w = crate::circuit::apply_tt_word(tt, u64::from(x), u64::from(y)) as u16;
            vals.push(w);
        }
        let out = if self.output == CONST_SIGNAL {
            0
        } else {
            vals.get(usize::from(self.output)).copied().unwrap_or(0)
        };
        if self.output_negated {
            !out
        } else {
            out
        }
    }
}

/// The library entry for class `class` (see [`NpnCanon::class`]).
pub fn optimum(class: u8) -> Option<&'static NpnOptimum> {
    crate::npn_library::NPN_LIBRARY.get(usize::from(class))
}
