//! k-feasible cut enumeration with priority cuts.
//!
//! A *cut* of node `v` is a set of nodes (the leaves) such that every path
//! from the primary inputs to `v` passes through a leaf; it is k-feasible
//! when it has at most `k` leaves. The function of `v` in terms of its
//! leaves (the cut's truth table) is what rewriting and mapping look up.
//!
//! Cuts are built bottom-up: the cuts of a two-input gate are the pairwise
//! unions of its fanins' cuts (each fanin also contributing the trivial cut
//! `{fanin}`), dropping unions with more than `k` leaves and cuts whose leaf
//! set contains another cut's (dominated: the smaller cut sees the same
//! logic with fewer leaves). Keeping *all* cuts explodes on reconvergent
//! logic, so only the best `C` per node survive ("priority cuts", Mishchenko,
//! Cho, Chatterjee & Brayton, ICCAD 2007); here the best are the smallest,
//! since small cuts merge into more feasible cuts above.
//!
//! Truth tables are `u64` over 6 variables: leaf `j` of a cut is variable
//! `j` (`0xAAAA…` for leaf 0), and a cut of fewer leaves has a table that
//! ignores the missing variables. Leaves are kept sorted by node id.

use crate::circuit::{apply_tt_word, Circuit, Op, Signal};

/// Largest supported cut size (a `u64` truth table holds 6 variables).
pub const MAX_CUT_SIZE: usize = 6;

/// Truth tables of the six variables.
pub const VAR_TT: [u64; 6] = [
    0xAAAA_AAAA_AAAA_AAAA,
    0xCCCC_CCCC_CCCC_CCCC,
    0xF0F0_F0F0_F0F0_F0F0,
    0xFF00_FF00_FF00_FF00,
    0xFFFF_0000_FFFF_0000,
    0xFFFF_FFFF_0000_0000,
];

/// Variable `i`'s column over every assignment of `words * 64` rows, row `r`
/// setting variable `i` to bit `i` of `r` (the first six repeat [`VAR_TT`]).
pub fn var_column(i: usize, words: usize) -> Vec<u64> {
    (0..words)
        .map(|w| match VAR_TT.get(i) {
            Some(&tt) => tt,
            None if (w >> (i - 6)) & 1 == 1 => !0,
            None => 0,
        })
        .collect()
}

/// One cut: up to [`MAX_CUT_SIZE`] leaves (node ids, sorted) and the root's
/// function of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cut {
    leaves: [u32; MAX_CUT_SIZE],
    len: u8,
    /// The root's function: bit `m` is its value when leaf `j` has value
    /// `(m >> j) & 1`.
    pub tt: u64,
}

impl Cut {
    /// The trivial cut `{node}` (function: the node itself).
    pub fn trivial(node: u32) -> Cut {
        let mut leaves = [0; MAX_CUT_SIZE];
        leaves[0] = node;
        Cut {
            leaves,
            len: 1,
            tt: VAR_TT[0],
        }
    }

    /// The cut of a constant node: no leaves.
    pub fn constant(value: bool) -> Cut {
        Cut {
            leaves: [0; MAX_CUT_SIZE],
            len: 0,
            tt: if value { !0 } else { 0 },
        }
    }

    /// The leaves, sorted by node id.
    pub fn leaves(&self) -> &[u32] {
        &self.leaves[..usize::from(self.len)]
    }

    /// Number of leaves.
    pub fn size(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether every leaf of `self` is a leaf of `other`.
    fn is_subset_of(&self, other: &Cut) -> bool {
        let mut j = 0;
        let o = other.leaves();
        for &l in self.leaves() {
            while j < o.len() && o[j] < l {
                j += 1;
            }
            if j == o.len() || o[j] != l {
                return false;
            }
        }
        true
    }
}

/// Exchanges variables `i` and `j` of a 6-variable truth table.
pub fn swap_vars(tt: u64, i: usize, j: usize) -> u64 {
    if i == j || i >= MAX_CUT_SIZE || j >= MAX_CUT_SIZE {
        return tt;
    }
    let (i, j) = (i.min(j), i.max(j));
    let shift = (1u32 << j) - (1u32 << i);
    // Minterms with x_i = 1, x_j = 0 trade places with x_i = 0, x_j = 1.
    let up = VAR_TT[i] & !VAR_TT[j];
    let down = !VAR_TT[i] & VAR_TT[j];
    (tt & !(up | down)) | ((tt & up) << shift) | ((tt & down) >> shift)
}

/// Re-expresses `cut`'s table over the leaves of `target`, a superset of its
/// leaves (both sorted): leaf `i` of `cut` moves to its position in `target`.
fn stretch(cut: &Cut, target: &[u32]) -> u64 {
    let mut tt = cut.tt;
    // From the last leaf down: its new position is free, because the table
    // ignores every variable above the ones not yet moved.
    for (i, &l) in cut.leaves().iter().enumerate().rev() {
        if let Some(p) = target.iter().position(|&t| t == l) {
            tt = swap_vars(tt, i, p);
        }
    }
    tt
}

/// Parameters of cut enumeration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutParams {
    /// Largest number of leaves (clamped to `1..=MAX_CUT_SIZE`).
    pub cut_size: usize,
    /// Cuts kept per node besides the trivial one (at least 1).
    pub cuts_per_node: usize,
}

impl Default for CutParams {
    fn default() -> Self {
        CutParams {
            cut_size: 4,
            cuts_per_node: 12,
        }
    }
}

/// Counts from an enumeration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutStats {
    /// Nodes whose cuts were computed.
    pub nodes: usize,
    /// Non-trivial cuts kept, over all nodes.
    pub cuts: usize,
    /// Feasible, non-dominated cuts dropped by the per-node limit.
    pub dropped: usize,
}

/// The non-trivial cuts of a gate `tt(a, b)` (4-bit table, bit `2a + b`)
/// from its fanins' cut sets, each of which must list the fanin's trivial
/// cut (or the constant cut) among its cuts.
pub fn merge_cuts(tt: u8, a_cuts: &[Cut], b_cuts: &[Cut], params: &CutParams, stats: &mut CutStats) -> Vec<Cut> {
    let k = params.cut_size.clamp(1, MAX_CUT_SIZE);
    let mut out: Vec<Cut> = Vec::new();
    for ca in a_cuts {
        for cb in b_cuts {
            let Some(leaves) = union(ca.leaves(), cb.leaves(), k) else {
                continue;
            };
            let mut cut = Cut {
                leaves: [0; MAX_CUT_SIZE],
                len: leaves.len() as u8,
                tt: 0,
            };
            cut.leaves[..leaves.len()].copy_from_slice(&leaves);
            let (ta, tb) = (stretch(ca, &leaves), stretch(cb, &leaves));
            cut.tt = apply_tt_word(tt, ta, tb);
            insert_cut(&mut out, cut);
        }
    }
    // Smallest first; ties by leaf ids for determinism.
    out.sort_by(|x, y| x.len.cmp(&y.len).then_with(|| x.leaves().cmp(y.leaves())));
    let keep = params.cuts_per_node.max(1);
    if out.len() > keep {
        stats.dropped += out.len() - keep;
        out.truncate(keep);
    }
    stats.nodes += 1;
    stats.cuts += out.len();
    out
}

/// Adds `cut` unless a kept cut dominates it; drops kept cuts it dominates.
fn insert_cut(cuts: &mut Vec<Cut>, cut: Cut) {
    if cuts.iter().any(|c| c.is_subset_of(&cut)) {
        return;
    }
    cuts.retain(|c| !cut.is_subset_of(c));
    cuts.push(cut);
}

/// Sorted union of two sorted leaf lists, or `None` past `k` leaves.
fn union(a: &[u32], b: &[u32], k: usize) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(k);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(_), Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        if out.len() == k {
            return None;
        }
        out.push(next);
    }
    Some(out)
}

/// Cuts of every node of a circuit. Node ids: inputs `0..n`, then gate `g`
/// is `n + g`.
#[derive(Debug, Clone)]
pub struct CircuitCuts {
    num_inputs: usize,
    /// Per node: the trivial cut first, then the non-trivial ones.
    cuts: Vec<Vec<Cut>>,
}

impl CircuitCuts {
    /// Node id of a signal (`None` for constants).
    pub fn node(&self, s: Signal) -> Option<u32> {
        match s {
            Signal::Const(_) => None,
            Signal::Input(i) => Some(i as u32),
            Signal::Gate(g) => Some((self.num_inputs + g) as u32),
        }
    }

    /// The cuts of a node, the trivial cut first (empty for unknown ids).
    pub fn cuts(&self, node: u32) -> &[Cut] {
        self.cuts.get(node as usize).map_or(&[], |v| v.as_slice())
    }

    /// Number of nodes (inputs plus gates).
    pub fn num_nodes(&self) -> usize {
        self.cuts.len()
    }
}

/// Enumerates the cuts of every gate of `circuit`, in gate order (which is
/// topological, so no recursion is needed). Constant arguments contribute
/// constant cuts without leaves; a one-argument gate (NOT, BUF) is treated
/// as a two-input gate reading the same signal twice.
pub fn enumerate_cuts(circuit: &Circuit, params: &CutParams) -> (CircuitCuts, CutStats) {
    let n = circuit.inputs().len();
    let mut stats = CutStats::default();
    let mut all = CircuitCuts {
        num_inputs: n,
        cuts: (0..n).map(|i| vec![Cut::trivial(i as u32)]).collect(),
    };
    for (g, gate) in circuit.gates().iter().enumerate() {
        let id = (n + g) as u32;
        let fanin_cuts = |s: Option<&Signal>| -> Vec<Cut> {
            match s {
                None | Some(Signal::Const(false)) => vec![Cut::constant(false)],
                Some(Signal::Const(true)) => vec![Cut::constant(true)],
                Some(&s) => all.node(s).map_or_else(Vec::new, |v| all.cuts(v).to_vec()),
            }
        };
        let a = fanin_cuts(gate.args.first());
        // One-argument gates read their argument as `b` too, so the 4-bit
        // table of the op (which ignores `b`) is still right.
        let b = if gate.op.arity() == 1 {
            a.clone()
        } else {
            fanin_cuts(gate.args.get(1))
        };
        let tt = match gate.op {
            Op::Not => 0b0011,
            Op::Buf => 0b1100,
            op => op.truth_table(),
        };
        let mut cuts = vec![Cut::trivial(id)];
        cuts.extend(merge_cuts(tt, &a, &b, params, &mut stats));
        all.cuts.push(cuts);
    }
    (all, stats)
}
