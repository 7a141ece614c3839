//! Exact synthesis by exhaustive enumeration of gate lists.
//!
//! For a fixed size `k` a depth-first search appends gates one at a time.
//! Each candidate gate is evaluated bit-parallel over the table rows, and
//! the tree is pruned with facts that hold for every *minimal* circuit:
//!
//! * no gate computes the same function (on the rows present; absent rows
//!   are don't-cares) as an input, a constant or an earlier gate;
//! * every gate is read by a later gate or is an output, and every input the
//!   outputs essentially depend on is read; with `r` gates left and `u`
//!   output functions still missing, the `r` gates offer `2r` reads, at
//!   least `r - u` of them are themselves unused, so
//!   `unused gates + unread essential inputs <= r + u`;
//! * when `r == u`, every remaining gate must be one of the missing outputs;
//! * when the bound above is tight, the remaining gates can read nothing but
//!   the signals that still need a reader (each once) and each other, so
//!   every missing output must be a function of those signals alone;
//! * two adjacent gates that do not depend on each other could be swapped,
//!   so only the order with the lexicographically larger `(b, a, function)`
//!   key second is explored (bubble-sorting any circuit this way strictly
//!   decreases its key sequence, so a canonical order always exists).
//!
//! Over a basis with every non-degenerate two-input function (all binary
//! ops), only *normal* circuits are searched: every gate is 0 on the first
//! row. Any circuit can be made normal without changing its size (complement
//! a gate and absorb the negation into its readers' ops), so this is exact
//! and halves the choices for every gate. The last gate is found by a table
//! lookup instead of enumeration, and the second-to-last is filtered by
//! whether any last gate could complete it.
//!
//! Gate functions are tried in increasing truth-table order. The order only
//! decides which of several minimum circuits comes out first, and keeping it
//! keeps the printed answers stable.
//!
//! Tables of up to 64 present rows (up to six inputs) keep each signal in
//! one `u64`; the engine is compiled once for that width, where every
//! signal stays in a register, and once for any number of words.
//!
//! Having exhausted every size below `k`, a circuit of size `k` is proven
//! minimal; the caller ([`super::search_with`]) runs the sizes in turn.

use std::time::Instant;

use super::basis::{basis_code_table, neg_expr, neg_form, Basis, NegForm};
use crate::circuit::{Circuit, GateExpr, Op, Signal};
use crate::table::Table;

/// Most signals (inputs plus gates) a circuit under search may have: the sets of signals that
/// still need a reader are `u64` masks. Refuting every size up to 40 gates would take far longer
/// than any budget, so a size past this stops the search as the deadline does.
const MAX_SIGNALS: usize = 64;
/// Gate code of a negation (`a == b`), next to the indices into the basis's codes.
const NEG: u8 = u8::MAX;
/// "No gate" in [`Engine::lookup`].
const NO_CODE: u8 = u8::MAX - 1;
/// "No target" in [`Engine::target_at`].
const NO_TARGET: u8 = u8::MAX;
/// Words per signal not fixed at compile time (the `W` parameter of [`Engine`]).
const ANY_WIDTH: usize = 0;

/// Limits of an enumeration.
#[derive(Debug, Clone)]
pub(crate) struct EnumParams {
    /// Gate operations allowed.
    pub basis: Basis,
    /// When to stop (`None` = never).
    pub deadline: Option<Instant>,
}

/// Effort spent by an enumeration, summed over every size it ran.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EnumStats {
    /// Search nodes (gate placements and last-gate lookups) explored.
    pub nodes: u64,
    /// Whether the deadline stopped the search.
    pub timed_out: bool,
}

/// Result of running one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A circuit of that size exists; [`Enumeration::circuit`] returns it.
    Found,
    /// No circuit of that size exists.
    Refuted,
    /// The deadline (or the signal limit) stopped the search first: nothing is known.
    Stopped,
}

/// The enumeration engine for one table, run size by size.
pub(crate) struct Enumeration {
    engine: Box<dyn Sizes>,
}

impl Enumeration {
    /// Prepares the search for `table`, whose non-trivial output functions and essential inputs
    /// are `targets` and `essential` (see [`super::targets_of`]).
    pub(crate) fn new(table: &Table, targets: &[Vec<u64>], essential: u64, params: &EnumParams) -> Enumeration {
        // One word per signal is by far the common case (up to six inputs); fixing the width at
        // compile time turns every per-word loop into plain scalar code.
        let engine: Box<dyn Sizes> = if table.words() == 1 {
            Box::new(Engine::<1>::new(table, targets, essential, params))
        } else {
            Box::new(Engine::<ANY_WIDTH>::new(table, targets, essential, params))
        };
        Enumeration { engine }
    }

    /// Looks for a circuit of exactly `k` gates. Sizes must be run in increasing order for
    /// [`Outcome::Found`] to mean minimum.
    pub(crate) fn run(&mut self, k: usize) -> Outcome {
        self.engine.run(k)
    }

    /// The circuit of the last [`Outcome::Found`].
    pub(crate) fn circuit(&self, table: &Table) -> Circuit {
        self.engine.circuit(table)
    }

    /// Effort so far.
    pub(crate) fn stats(&self) -> EnumStats {
        self.engine.stats()
    }
}

/// [`Engine`] whatever its width.
trait Sizes {
    fn run(&mut self, k: usize) -> Outcome;
    fn circuit(&self, table: &Table) -> Circuit;
    fn stats(&self) -> EnumStats;
}

/// The search state. Every signal's truth table over the present rows is `W` words, or `w`
/// words read at run time when `W` is [`ANY_WIDTH`].
struct Engine<const W: usize> {
    /// Inputs.
    n: usize,
    /// Words per signal.
    w: usize,
    /// Present rows of each word.
    mask: Vec<u64>,
    /// Truth tables of the signals, inputs then gates, `w` words each. The slot after the last
    /// placed gate holds the candidate being evaluated.
    sig: Vec<u64>,
    /// Per signal, how many placed gates read it.
    uses: [u8; MAX_SIGNALS],
    /// The (normalised) target a gate equals, or [`NO_TARGET`].
    target_at: [u8; MAX_SIGNALS],
    /// `(a, b, code)`; `a == b` with `code == NEG` is a negation.
    gates: Vec<(u8, u8, u8)>,
    /// Allowed non-degenerate two-input truth tables (bit `2a + b`), in increasing order.
    codes: Vec<u8>,
    /// Per value `2 a + b` of a gate's inputs on the first row, the code indices (bit mask) that
    /// are 0 there.
    zero_at: [u32; 4],
    /// Each code's algebraic normal form, `f(a, b) = c0 ^ c1 b ^ c2 a ^ c3 a b`, as all-zero or
    /// all-one words: evaluating it needs no branches.
    anf: Vec<[u64; 4]>,
    /// Op and argument order realising each 4-bit truth table.
    code_op: [Option<(Op, bool)>; 16],
    /// `(care, value)` over the four `(a, b)` combinations → a code index
    /// agreeing with `value` on `care`, or [`NO_CODE`].
    lookup: [[u8; 16]; 16],
    /// How the basis writes a negation, if it can.
    neg: Option<NegForm>,
    /// Whether negation gates are searched (never for normal circuits: they absorb negations).
    neg_ok: bool,
    /// Whether only normal circuits are searched (see the module documentation).
    normal: bool,
    /// The output functions that need gates, `w` words each, complemented where `flipped`.
    targets: Vec<u64>,
    /// Whether the table's output is the complement of the normalised target.
    flipped: Vec<bool>,
    /// Per target, how many placed gates compute it (0 or 1 in practice).
    matched: Vec<u32>,
    /// Inputs the targets essentially depend on (bit mask).
    essential: u64,
    /// For the filter on the second-to-last gate: per signal `y`, the rows where `y` is 0 and
    /// where it is 1 (`w` words each), or nothing where the target is constant on them.
    halves: Vec<u64>,
    /// Scratch for [`Engine::determined_by`]: sets of rows, `w` words each.
    parts: Vec<u64>,
    next_parts: Vec<u64>,
    deadline: Option<Instant>,
    /// The clock is read when `nodes & clock_mask == 0`: every 1024 nodes on narrow tables, more
    /// often on wide ones, whose nodes each test gates over every word of every row (a 16-input
    /// table of 1,024 words took 8 s past a 1 s deadline with a fixed 1024).
    clock_mask: u64,
    stats: EnumStats,
}

impl<const W: usize> Sizes for Engine<W> {
    fn run(&mut self, k: usize) -> Outcome {
        debug_assert!(self.gates.is_empty());
        if self.n + k > MAX_SIGNALS {
            return Outcome::Stopped;
        }
        let w = self.words();
        if self.sig.len() < (self.n + k) * w {
            self.sig.resize((self.n + k) * w, 0);
        }
        if self.dfs(k) {
            Outcome::Found
        } else if self.stats.timed_out {
            Outcome::Stopped
        } else {
            Outcome::Refuted
        }
    }

    fn circuit(&self, table: &Table) -> Circuit {
        self.to_circuit(table)
    }

    fn stats(&self) -> EnumStats {
        self.stats
    }
}

impl<const W: usize> Engine<W> {
    fn new(table: &Table, targets: &[Vec<u64>], essential: u64, params: &EnumParams) -> Self {
        let n = table.num_inputs();
        let w = table.words();
        debug_assert!(W == ANY_WIDTH || W == w);
        let mask = table.row_mask();
        let mut sig = Vec::with_capacity((n + 16) * w);
        for i in 0..n {
            sig.extend(table.input_bits(i).iter().zip(&mask).map(|(a, m)| a & m));
        }
        let code_op = basis_code_table(&params.basis);
        let codes: Vec<u8> = (0..16u8).filter(|&t| code_op[t as usize].is_some()).collect();
        let anf = codes
            .iter()
            .map(|&tt| {
                let bit = |i: u8| u64::from(tt >> i & 1);
                let all = |c: u64| c.wrapping_neg();
                [
                    all(bit(0)),
                    all(bit(0) ^ bit(1)),
                    all(bit(0) ^ bit(2)),
                    all(bit(0) ^ bit(1) ^ bit(2) ^ bit(3)),
                ]
            })
            .collect();
        let mut zero_at = [0u32; 4];
        for (p, z) in zero_at.iter_mut().enumerate() {
            for (ci, &tt) in codes.iter().enumerate() {
                if tt >> p & 1 == 0 {
                    *z |= 1 << ci;
                }
            }
        }
        let mut lookup = [[NO_CODE; 16]; 16];
        for (care, row) in lookup.iter_mut().enumerate() {
            for (val, slot) in row.iter_mut().enumerate() {
                if let Some(ci) = codes.iter().position(|&c| (c as usize ^ val) & care == 0) {
                    *slot = ci as u8;
                }
            }
        }
        let neg = neg_form(&params.basis);
        let complement = |v: &[u64]| -> Vec<u64> { v.iter().zip(&mask).map(|(x, m)| x ^ m).collect() };
        let inputs: Vec<&[u64]> = sig.chunks(w).collect();
        // Normal circuits are exact when every non-degenerate two-input
        // function is available, no output is the complement of an input
        // (that one needs a gate only because it cannot be absorbed) and no
        // two outputs are complements of each other.
        let full = codes.len() == 10;
        let normal = full
            && mask[0] & 1 == 1
            && !targets.iter().any(|t| inputs.contains(&complement(t).as_slice()))
            && !targets.iter().any(|t| targets.contains(&complement(t)));
        let mut flipped = vec![false; targets.len()];
        let mut flat = Vec::with_capacity(targets.len() * w);
        for (t, f) in targets.iter().zip(&mut flipped) {
            if normal && t[0] & 1 == 1 {
                flat.extend(complement(t));
                *f = true;
            } else {
                flat.extend_from_slice(t);
            }
        }
        Engine {
            n,
            w,
            mask,
            sig,
            uses: [0; MAX_SIGNALS],
            target_at: [NO_TARGET; MAX_SIGNALS],
            gates: Vec::with_capacity(MAX_SIGNALS),
            codes,
            zero_at,
            anf,
            code_op,
            lookup,
            neg,
            neg_ok: neg.is_some() && !normal,
            normal,
            targets: flat,
            matched: vec![0; flipped.len()],
            flipped,
            essential,
            halves: Vec::new(),
            parts: Vec::new(),
            next_parts: Vec::new(),
            deadline: params.deadline,
            clock_mask: (1024 / w.max(1)).next_power_of_two() as u64 - 1,
            stats: EnumStats::default(),
        }
    }

    /// Words per signal.
    #[inline(always)]
    fn words(&self) -> usize {
        if W == ANY_WIDTH {
            self.w
        } else {
            W
        }
    }

    /// Truth table of signal `s`.
    #[inline(always)]
    fn signal(&self, s: usize) -> &[u64] {
        let w = self.words();
        &self.sig[s * w..(s + 1) * w]
    }

    /// Truth table of (normalised) target `t`.
    #[inline(always)]
    fn target(&self, t: usize) -> &[u64] {
        let w = self.words();
        &self.targets[t * w..(t + 1) * w]
    }

    /// Counts a node and says whether the search must stop. Reading the clock costs more than a
    /// node of a narrow table, so it is read once every `clock_mask + 1` nodes.
    #[inline]
    fn visit(&mut self) -> bool {
        self.stats.nodes += 1;
        if self.stats.nodes & self.clock_mask == 0 && self.deadline.is_some_and(|d| Instant::now() > d) {
            self.stats.timed_out = true;
        }
        self.stats.timed_out
    }

    /// Signals that still need a reader: unread essential inputs and unread
    /// gates that are not outputs.
    fn need_mask(&self, nsig: usize) -> u64 {
        let mut need = 0u64;
        for s in 0..nsig {
            if self.uses[s] == 0
                && (if s < self.n {
                    self.essential >> s & 1 == 1
                } else {
                    self.target_at[s] == NO_TARGET
                })
            {
                need |= 1 << s;
            }
        }
        need
    }

    /// Writes the negation of signal `a` into signal slot `g`.
    #[inline(always)]
    fn eval_neg(&mut self, a: usize, g: usize) {
        let w = self.words();
        let (done, rest) = self.sig.split_at_mut(g * w);
        for ((o, &x), &m) in rest[..w].iter_mut().zip(&done[a * w..(a + 1) * w]).zip(&self.mask) {
            *o = !x & m;
        }
    }

    /// Writes the function of gate `(a, b)` with code index `ci` into signal slot `g`.
    #[inline(always)]
    fn eval_gate(&mut self, a: usize, b: usize, ci: usize, g: usize) {
        let [c0, c1, c2, c3] = self.anf[ci];
        let f = |x: u64, y: u64| c0 ^ (c1 & y) ^ (c2 & x) ^ (c3 & x & y);
        if W == 1 {
            // The innermost loop of the search: no slicing, so the value stays in a register.
            self.sig[g] = f(self.sig[a], self.sig[b]) & self.mask[0];
            return;
        }
        let w = self.words();
        let (done, rest) = self.sig.split_at_mut(g * w);
        let (va, vb) = (&done[a * w..(a + 1) * w], &done[b * w..(b + 1) * w]);
        for (((o, &x), &y), &m) in rest[..w].iter_mut().zip(va).zip(vb).zip(&self.mask) {
            *o = f(x, y) & m;
        }
    }

    /// Copies target `t` into signal slot `g`.
    fn set_to_target(&mut self, t: usize, g: usize) {
        let w = self.words();
        self.sig[g * w..(g + 1) * w].copy_from_slice(&self.targets[t * w..(t + 1) * w]);
    }

    /// Whether signal `g` is a constant or an earlier signal (or, for normal
    /// circuits, the complement of one: its readers could absorb that).
    #[inline(always)]
    fn redundant(&self, g: usize) -> bool {
        if W == 1 {
            let (v, m) = (self.sig[g], self.mask[0]);
            if v == 0 || v == m {
                return true;
            }
            let earlier = &self.sig[..g];
            return if self.normal {
                let c = v ^ m;
                earlier.iter().any(|&s| s == v || s == c)
            } else {
                earlier.contains(&v)
            };
        }
        let v = self.signal(g);
        if v.iter().all(|&x| x == 0) || same(v, &self.mask) {
            return true;
        }
        if self.normal {
            (0..g).any(|s| {
                let x = self.signal(s);
                same(x, v) || complements(x, v, &self.mask)
            })
        } else {
            (0..g).any(|s| same(self.signal(s), v))
        }
    }

    /// Records the gate `(a, b, code)` whose function is already in the next signal slot.
    #[inline]
    fn place(&mut self, a: usize, b: usize, code: u8) {
        let g = self.n + self.gates.len();
        self.uses[g] = 0;
        self.uses[a] += 1;
        if code != NEG {
            self.uses[b] += 1;
        }
        // Targets are deduplicated, so a gate matches at most one.
        let hit = (0..self.matched.len()).find(|&t| same(self.target(t), self.signal(g)));
        self.target_at[g] = hit.map_or(NO_TARGET, |t| t as u8);
        if let Some(t) = hit {
            self.matched[t] += 1;
        }
        self.gates.push((a as u8, b as u8, code));
    }

    #[inline]
    fn unplace(&mut self) {
        let (a, b, code) = self.gates.pop().expect("a gate to remove");
        let g = self.n + self.gates.len();
        self.uses[a as usize] -= 1;
        if code != NEG {
            self.uses[b as usize] -= 1;
        }
        if self.target_at[g] != NO_TARGET {
            self.matched[self.target_at[g] as usize] -= 1;
        }
    }

    fn dfs(&mut self, k: usize) -> bool {
        if self.visit() {
            return false;
        }
        let i = self.gates.len();
        let nsig = self.n + i;
        let u = self.matched.iter().filter(|&&m| m == 0).count();
        let need = self.need_mask(nsig);
        let nneed = need.count_ones() as usize;
        if i == k {
            return u == 0 && nneed == 0;
        }
        let r = k - i;
        if u == 0 || u > r || nneed > r + u {
            return false;
        }
        if r == u && u >= 2 {
            return self.finish_with_targets();
        }
        if r == 1 {
            return self.last_gate(need);
        }
        // With the read bound tight, the remaining gates' reads are all spoken for: each signal
        // that needs a reader is read once, each new gate that is not an output once, nothing
        // else. So every missing output is a function of the signals that need a reader alone.
        // (Parity at its minimum size is all tight: one wrong gate is caught right away.)
        if nneed == r + u && !self.determined_by(need) {
            return false;
        }
        // After this gate the read bound must still hold, so it has to read
        // at least this many of the signals that need a reader.
        let must_read = nneed.saturating_sub(r + u - 2) as u64;
        let prev = self.gates.last().map(|&(a, b, c)| (b as usize, a as usize, c));
        let last_sig = nsig - 1;
        // Two gates and one output left: the last gate is `F(z, y)` for
        // this gate `z` and an existing `y`, so on each half of the rows
        // split by `y` the target is constant or equals `z` or `!z`. Each
        // `y` is summarised once here; a gate failing this for every `y`
        // is dropped without descending.
        let filter = r == 2 && u == 1 && !self.neg_ok;
        let target = self.matched.iter().position(|&m| m == 0).unwrap_or(0);
        if filter {
            self.split_rows(target, nsig);
        }
        for b in 0..nsig {
            if let Some(p) = prev {
                if b < p.0 && b != last_sig {
                    continue;
                }
            }
            for a in 0..=b {
                let is_neg = a == b;
                if is_neg && !self.neg_ok {
                    continue;
                }
                if must_read > 0 {
                    let covered = (need >> a & 1) + if is_neg { 0 } else { need >> b & 1 };
                    if covered < must_read {
                        continue;
                    }
                }
                // Under the filter, the last gate must read this gate and whatever else still
                // needs a reader, which `must_read` has left at most one signal (`unread`).
                let rem = need & !(1u64 << a | 1u64 << b);
                let unread = (rem != 0).then(|| rem.trailing_zeros() as usize);
                let reads_prev = i > 0 && (a == last_sig || b == last_sig);
                let ncodes = if is_neg { 1 } else { self.codes.len() };
                // A gate of a normal circuit is 0 on the first row, so only the codes that are 0
                // where its inputs are on that row qualify; the others need not be evaluated.
                let usable = if self.normal {
                    let w = self.words();
                    self.zero_at[(2 * (self.sig[a * w] & 1) + (self.sig[b * w] & 1)) as usize]
                } else {
                    u32::MAX
                };
                for ci in 0..ncodes {
                    if usable >> ci & 1 == 0 {
                        continue;
                    }
                    let code = if is_neg { NEG } else { ci as u8 };
                    if let (Some(p), false) = (prev, reads_prev) {
                        if (b, a, code) <= p {
                            continue;
                        }
                    }
                    if is_neg {
                        self.eval_neg(a, nsig);
                    } else {
                        self.eval_gate(a, b, ci, nsig);
                    }
                    if filter {
                        let ok = match unread {
                            None => (0..nsig).any(|y| self.fits(y, target, nsig)),
                            Some(y) => self.fits(y, target, nsig),
                        };
                        if !ok {
                            continue;
                        }
                    }
                    if self.redundant(nsig) {
                        continue;
                    }
                    self.place(a, b, code);
                    if self.dfs(k) {
                        return true;
                    }
                    self.unplace();
                    if self.stats.timed_out {
                        return false;
                    }
                }
            }
        }
        false
    }

    /// Whether every missing target is constant on each set of rows where the signals in `set`
    /// all agree, i.e. a function of those signals. Refines the rows signal by signal, keeping
    /// only the parts where the target still varies.
    fn determined_by(&mut self, set: u64) -> bool {
        let w = self.words();
        let (mut parts, mut next) = (std::mem::take(&mut self.parts), std::mem::take(&mut self.next_parts));
        let mut determined = true;
        for t in 0..self.matched.len() {
            if self.matched[t] > 0 {
                continue;
            }
            let target = &self.targets[t * w..(t + 1) * w];
            // Appends `rows` (`w` words) to `out` if the target varies on them.
            let keep = |out: &mut Vec<u64>, rows: &mut dyn Iterator<Item = u64>| {
                let start = out.len();
                let (mut on, mut off) = (false, false);
                for (r, &x) in rows.zip(target) {
                    on |= r & x != 0;
                    off |= r & !x != 0;
                    out.push(r);
                }
                if !(on && off) {
                    out.truncate(start);
                }
            };
            parts.clear();
            keep(&mut parts, &mut self.mask.iter().copied());
            let mut rest = set;
            while rest != 0 && !parts.is_empty() {
                let s = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let sig = &self.sig[s * w..(s + 1) * w];
                next.clear();
                for part in parts.chunks_exact(w) {
                    keep(&mut next, &mut part.iter().zip(sig).map(|(p, x)| p & x));
                    keep(&mut next, &mut part.iter().zip(sig).map(|(p, x)| p & !x));
                }
                std::mem::swap(&mut parts, &mut next);
            }
            if !parts.is_empty() {
                determined = false;
                break;
            }
        }
        (self.parts, self.next_parts) = (parts, next);
        determined
    }

    /// Fills [`Engine::halves`] for the signals before `nsig` and target `t`.
    fn split_rows(&mut self, t: usize, nsig: usize) {
        let w = self.words();
        if self.halves.len() < 2 * nsig * w {
            self.halves.resize(2 * nsig * w, 0);
        }
        for y in 0..nsig {
            for (bit, half) in [(0u64, 2 * y), (!0u64, 2 * y + 1)] {
                let (mut none, mut all) = (true, true);
                for x in 0..w {
                    let h = !(self.sig[y * w + x] ^ bit) & self.mask[x];
                    let on = self.targets[t * w + x] & h;
                    none &= on == 0;
                    all &= on == h;
                }
                // A half where the target is constant constrains nothing.
                for x in 0..w {
                    let h = !(self.sig[y * w + x] ^ bit) & self.mask[x];
                    self.halves[half * w + x] = if none || all { 0 } else { h };
                }
            }
        }
    }

    /// Whether some gate on the candidate in slot `g` and signal `y` can compute target `t`: on
    /// each half of the rows split by `y` the target equals the candidate, its complement, or a
    /// constant.
    #[inline(always)]
    fn fits(&self, y: usize, t: usize, g: usize) -> bool {
        if W == 1 {
            let (h0, h1) = (self.halves[2 * y], self.halves[2 * y + 1]);
            let d = self.sig[g] ^ self.targets[t];
            let (d0, d1) = (d & h0, d & h1);
            return (d0 == 0 || d0 == h0) && (d1 == 0 || d1 == h1);
        }
        let w = self.words();
        let (h0, h1) = (
            &self.halves[2 * y * w..(2 * y + 1) * w],
            &self.halves[(2 * y + 1) * w..(2 * y + 2) * w],
        );
        let (mut zero0, mut full0, mut zero1, mut full1) = (true, true, true, true);
        for (x, (&v, &t)) in self.signal(g).iter().zip(self.target(t)).enumerate() {
            let (d0, d1) = ((v ^ t) & h0[x], (v ^ t) & h1[x]);
            zero0 &= d0 == 0;
            full0 &= d0 == h0[x];
            zero1 &= d1 == 0;
            full1 &= d1 == h1[x];
        }
        (zero0 || full0) && (zero1 || full1)
    }

    /// A gate on `a < b` computing target `t` on every present row, if the basis has one.
    #[inline]
    fn pair_code(&self, a: usize, b: usize, t: usize) -> Option<u8> {
        let (mut care, mut val) = (0usize, 0usize);
        if W == 1 {
            let (va, vb, m, t) = (self.sig[a], self.sig[b], self.mask[0], self.targets[t]);
            // The rows where the inputs are combination `c`: the target must be constant there.
            let mut part = |c: usize, rows: u64| {
                let on = t & rows;
                if on != 0 && on != rows {
                    return false;
                }
                if rows != 0 {
                    care |= 1 << c;
                    val |= usize::from(on != 0) << c;
                }
                true
            };
            if !(part(0, !va & !vb & m) && part(1, !va & vb & m) && part(2, va & !vb & m) && part(3, va & vb & m)) {
                return None;
            }
        } else {
            // Per `(a, b)` combination: whether rows with it exist, and whether the target is 1
            // on all of them or on none.
            let (mut some, mut all, mut none) = ([false; 4], [true; 4], [true; 4]);
            for (((&va, &vb), &m), &tv) in self.signal(a).iter().zip(self.signal(b)).zip(&self.mask).zip(self.target(t)) {
                let parts = [!va & !vb & m, !va & vb & m, va & !vb & m, va & vb & m];
                for (c, &p) in parts.iter().enumerate() {
                    let on = tv & p;
                    some[c] |= p != 0;
                    all[c] &= on == p;
                    none[c] &= on == 0;
                }
            }
            for c in 0..4 {
                if !some[c] {
                    continue;
                }
                if all[c] {
                    care |= 1 << c;
                    val |= 1 << c;
                } else if none[c] {
                    care |= 1 << c;
                } else {
                    return None;
                }
            }
        }
        let ci = self.lookup[care][val];
        (ci != NO_CODE).then_some(ci)
    }

    /// Whether the complement of signal `a` is target `t`.
    fn negates_to(&self, a: usize, t: usize) -> bool {
        self.signal(a)
            .iter()
            .zip(self.target(t))
            .zip(&self.mask)
            .all(|((x, t), m)| !x & m == *t)
    }

    /// A gate on `a` and `b` (in either order, distinct) computing target `t`, if the basis has
    /// one.
    #[inline(always)]
    fn pair_gate(&self, a: usize, b: usize, t: usize) -> Option<(usize, usize, u8)> {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        self.pair_code(a, b, t).map(|ci| (a, b, ci))
    }

    /// A negation of `a` computing target `t`, if negations are searched.
    #[inline(always)]
    fn neg_gate(&self, a: usize, t: usize) -> Option<(usize, usize, u8)> {
        (self.neg_ok && self.negates_to(a, t)).then_some((a, a, NEG))
    }

    /// Places `gate`, which computes target `t`.
    fn place_target(&mut self, (a, b, code): (usize, usize, u8), t: usize) {
        self.set_to_target(t, self.n + self.gates.len());
        self.place(a, b, code);
    }

    /// One gate and one output left: the gate must compute the output and
    /// read every signal that still needs a reader (at most two).
    fn last_gate(&mut self, need: u64) -> bool {
        let Some(t) = self.matched.iter().position(|&m| m == 0) else {
            return false;
        };
        let nsig = self.n + self.gates.len();
        let x = need.trailing_zeros() as usize;
        let gate = match need.count_ones() {
            2 => self.pair_gate(x, (need & (need - 1)).trailing_zeros() as usize, t),
            1 => (0..nsig)
                .filter(|&y| y != x)
                .find_map(|y| self.pair_gate(x, y, t))
                .or_else(|| self.neg_gate(x, t)),
            0 => (0..nsig).find_map(|b| (0..b).find_map(|a| self.pair_gate(a, b, t)).or_else(|| self.neg_gate(b, t))),
            _ => None,
        };
        match gate {
            Some(g) => {
                self.place_target(g, t);
                true
            }
            None => false,
        }
    }

    /// Every remaining gate must be a missing output; adding any output
    /// computable in one gate can only help the others, so a greedy closure
    /// decides whether a completion exists.
    fn finish_with_targets(&mut self) -> bool {
        let placed_before = self.gates.len();
        let mut progress = true;
        while progress {
            progress = false;
            for t in 0..self.matched.len() {
                if self.matched[t] > 0 {
                    continue;
                }
                let nsig = self.n + self.gates.len();
                self.stats.nodes += 1;
                let gate = (0..nsig).find_map(|b| self.neg_gate(b, t).or_else(|| (0..b).find_map(|a| self.pair_gate(a, b, t))));
                if let Some(g) = gate {
                    self.place_target(g, t);
                    progress = true;
                }
            }
        }
        let nsig = self.n + self.gates.len();
        if self.matched.iter().all(|&m| m > 0) && self.need_mask(nsig) == 0 {
            return true;
        }
        while self.gates.len() > placed_before {
            self.unplace();
        }
        false
    }

    /// Converts the gate stack into a circuit for `table`, restoring output
    /// polarities of normal circuits.
    fn to_circuit(&self, table: &Table) -> Circuit {
        let nsig = self.n + self.gates.len();
        // Gates whose complement the table wants.
        let flip = |s: usize| s >= self.n && self.target_at[s] != NO_TARGET && self.flipped[self.target_at[s] as usize];
        let sig = |s: usize| {
            if s < self.n {
                Signal::Input(s)
            } else {
                Signal::Gate(s - self.n)
            }
        };
        let mut c = Circuit::for_table(table);
        for (j, &(a, b, code)) in self.gates.iter().enumerate() {
            let (a, b) = (a as usize, b as usize);
            let expr = if code == NEG {
                neg_expr(self.neg.expect("negation only used when available"), sig(a))
            } else {
                let mut tt = self.codes[code as usize];
                if flip(a) {
                    tt = (tt >> 2 & 0b11) | (tt & 0b11) << 2;
                }
                if flip(b) {
                    tt = (tt >> 1 & 0b101) | (tt & 0b101) << 1;
                }
                if flip(self.n + j) {
                    tt ^= 0xF;
                }
                let (op, swapped) = self.code_op[tt as usize].expect("normal circuits use a full basis");
                let args = if swapped { vec![sig(b), sig(a)] } else { vec![sig(a), sig(b)] };
                GateExpr { op, args }
            };
            c.push(expr).expect("search gates only read earlier signals");
        }
        for (j, name) in table.output_names().iter().enumerate() {
            let want: Vec<u64> = table.output_bits(j).iter().zip(&self.mask).map(|(a, m)| a & m).collect();
            let s = if want.iter().all(|&x| x == 0) {
                Signal::Const(false)
            } else if want == self.mask {
                Signal::Const(true)
            } else {
                let is = |s: usize| {
                    let f = if flip(s) { !0 } else { 0 };
                    self.signal(s)
                        .iter()
                        .zip(&want)
                        .zip(&self.mask)
                        .all(|((v, x), m)| (v ^ f) & m == *x)
                };
                sig((0..nsig).find(|&s| is(s)).expect("every output is matched by a solution"))
            };
            c.set_output(name, s).expect("valid");
        }
        c
    }
}

/// Whether two truth tables are equal. Slice `==` calls `memcmp` when the length is not known at
/// compile time; this loop compiles to one comparison for one-word tables.
#[inline(always)]
fn same(x: &[u64], y: &[u64]) -> bool {
    x.iter().zip(y).all(|(a, b)| a == b)
}

/// Whether two truth tables are complements on the rows of `mask`.
#[inline(always)]
fn complements(x: &[u64], y: &[u64], mask: &[u64]) -> bool {
    x.iter().zip(y).zip(mask).all(|((a, b), m)| a ^ m == *b)
}
