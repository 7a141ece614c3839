//! Symmetry breaking beyond the encoding's fixed rules: the symmetries of
//! the inputs (lex-leader constraints) and re-bracketing.

use crate::table::Table;

use super::encode::{Encoding, Problem, L};

impl Problem<'_> {
    /// The input permutations (input `x` becomes `perm[x]`) whose symmetry
    /// the encoding breaks; see [`input_symmetries`].
    pub(super) fn symmetries(&self) -> Vec<Vec<usize>> {
        input_symmetries(self.table, &self.targets, self.normal)
    }

    /// The re-bracketing constraint of [`super::SatParams::rebracketing`]: gate `j`
    /// on `(a, b)` read by no gate but `i`, which reads `(c, j)` with `c`
    /// before `j`, together compute a function `h(a, b, c)`. When `h` is
    /// also a gate on `(a, c)` feeding a gate with `b` (or one on `(b, c)`
    /// feeding one with `a`), that circuit has the same gates, is wired the
    /// same up to gate `j`, and there takes the pair `{a, c}`, which is
    /// co-lexicographically smaller when `c < b` (`{b, c}` when `c < a`). So
    /// the smallest fanin sequence never has the first form, and it is
    /// excluded. AND, OR and XOR chains (`(a ∧ b) ∧ c = (a ∧ c) ∧ b`) are
    /// the common case; which operator pairs qualify is decided here by
    /// truth tables.
    pub(super) fn no_smaller_rebracketing(&self, e: &mut Encoding) {
        let (n, k) = (self.n, e.k);
        // Normal-form operators (bit `2p + q`; bit 0 clear).
        let ops: Vec<u8> = (0..16u8).filter(|&t| t & 1 == 0 && self.allowed[t as usize]).collect();
        // Operator pairs (j's, i's) whose `h` regroups with `b` (then `a`)
        // as the outer gate's direct operand.
        let mut regroups: [Vec<(u8, u8)>; 2] = [Vec::new(), Vec::new()];
        for &fj in &ops {
            for &fi in &ops {
                let h = chain_function(fj, fi);
                for (list, outer) in regroups.iter_mut().zip([1, 0]) {
                    if splits_off(h, outer) {
                        list.push((fj, fi));
                    }
                }
            }
        }
        let mut clause: Vec<L> = Vec::new();
        for jg in 0..k {
            let gj = n + jg;
            for ig in jg + 1..k {
                // `shared`: gate j is read by a gate other than i, or is an
                // output; it may be true only when that holds.
                let shared = e.cnf.fresh();
                clause.clear();
                clause.push(L::Var(-shared));
                for m in (jg + 1..k).filter(|&m| m != ig) {
                    clause.extend(e.sel[m].iter().filter(|&&(x, y, _)| x == gj || y == gj).map(|&(_, _, s)| L::Var(s)));
                }
                clause.extend(e.out.iter().map(|o| L::Var(o[jg])));
                e.cnf.add(&clause);
                // One flag per regrouping, forced true by every qualifying
                // pair of operators.
                let (op_j, op_i) = (e.op[jg], e.op[ig]);
                let mut flags = [0i32; 2];
                for (flag, list) in flags.iter_mut().zip(&regroups) {
                    *flag = e.cnf.fresh();
                    for &(fj, fi) in list {
                        clause.clear();
                        clause.push(L::Var(*flag));
                        for b in 1..4 {
                            clause.push(L::Var(op_j[b]).is(fj >> b & 1 == 0));
                            clause.push(L::Var(op_i[b]).is(fi >> b & 1 == 0));
                        }
                        e.cnf.add(&clause);
                    }
                }
                let readers: Vec<(usize, i32)> = e.sel[ig].iter().filter(|&&(_, y, _)| y == gj).map(|&(c, _, s)| (c, s)).collect();
                for &(a, b, s_j) in &e.sel[jg] {
                    for &(c, s_i) in &readers {
                        if c == a || c == b {
                            continue; // re-application, excluded elsewhere
                        }
                        for (flag, smaller) in flags.iter().zip([c < b, c < a]) {
                            if smaller {
                                e.cnf.add(&[L::Var(-s_j), L::Var(-s_i), L::Var(shared), L::Var(-flag)]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether relabelling the inputs by `perm` (input `x` becomes `perm[x]`)
/// after complementing the inputs in `negate` maps the care rows onto
/// themselves and leaves every target unchanged: then a circuit for the
/// table, relabelled that way, is again a circuit for it.
fn is_symmetry(table: &Table, targets: &[Vec<u64>], position: &std::collections::HashMap<u64, usize>, perm: &[usize], negate: u64) -> bool {
    let bit = |v: &[u64], p: usize| v[p / 64] >> (p % 64) & 1 == 1;
    table.rows().iter().enumerate().all(|(p, r)| {
        let x = r.inputs ^ negate;
        let image = perm.iter().enumerate().fold(0u64, |acc, (i, &j)| acc | (x >> i & 1) << j);
        position
            .get(&image)
            .is_some_and(|&q| targets.iter().all(|t| bit(t, p) == bit(t, q)))
    })
}

/// Most inputs for which every permutation is tried as a symmetry.
const MAX_INPUTS_ALL_PERMUTATIONS: usize = 6;

/// The input permutations whose symmetry [`super::synthesize`] breaks: the swap of
/// every pair of interchangeable inputs and, on tables of at most
/// [`MAX_INPUTS_ALL_PERMUTATIONS`] inputs, the permutation of every other
/// symmetry that does not just permute interchangeable inputs among
/// themselves (a 4:1 multiplexer's swap of its select lines together with
/// the two middle data inputs). With `negations`, a symmetry may also
/// complement inputs (the multiplexer's `s0 → NOT s0` with its data inputs
/// swapped in pairs): complementing an input changes a normal circuit's
/// operators but not its wiring, and the constraint is on wiring alone.
/// Breaking every element of the group the swaps generate was measured too:
/// on majority-5 and the population counts it took as many conflicts,
/// ±25 %, as the swaps alone.
fn input_symmetries(table: &Table, targets: &[Vec<u64>], negations: bool) -> Vec<Vec<usize>> {
    let n = table.num_inputs();
    let position: std::collections::HashMap<u64, usize> = table.rows().iter().enumerate().map(|(p, r)| (r.inputs, p)).collect();
    let identity: Vec<usize> = (0..n).collect();
    // Classes of interchangeable inputs: swapping is transitive
    // ((a c) = (a b)(b c)(a b)), so each input joins the class of the first
    // input it can be swapped with.
    let mut class: Vec<usize> = (0..n).collect();
    for b in 0..n {
        for a in 0..b {
            let mut swap = identity.clone();
            swap.swap(a, b);
            if is_symmetry(table, targets, &position, &swap, 0) {
                class[b] = class[a];
                break;
            }
        }
    }
    // Every pair within a class is a symmetry.
    let mut perms = Vec::new();
    for b in 0..n {
        for a in 0..b {
            if class[a] == class[b] {
                let mut swap = identity.clone();
                swap.swap(a, b);
                perms.push(swap);
            }
        }
    }
    if (2..=MAX_INPUTS_ALL_PERMUTATIONS).contains(&n) && !targets.is_empty() {
        let mut perm = identity.clone();
        let masks = if negations { 1u64 << n } else { 1 };
        for_each_permutation(&mut perm, 0, &mut |p| {
            let within_classes = p.iter().enumerate().all(|(x, &y)| class[x] == class[y]);
            if !within_classes && (0..masks).any(|m| is_symmetry(table, targets, &position, p, m)) {
                perms.push(p.to_vec());
            }
        });
    }
    perms
}

/// The function `h(a, b, c) = op_i(c, op_j(a, b))` of a gate reading
/// `(c, j)` where gate `j` reads `(a, b)`, as a truth table over bit
/// `a + 2b + 4c` (operators indexed by bit `2p + q` of their first operand
/// `p` and second `q`).
fn chain_function(op_j: u8, op_i: u8) -> u8 {
    (0..8u8).fold(0, |h, x| {
        let (a, b, c) = (x & 1, x >> 1 & 1, x >> 2 & 1);
        let j = op_j >> (2 * a + b) & 1;
        h | (op_i >> (2 * c + j) & 1) << x
    })
}

/// Whether the three-input function `h` (bit `x0 + 2 x1 + 4 x2`) depends on
/// every input and is `F(x_outer, G(the other two))` for some two-input `F`
/// and `G`: the other two inputs take at most two patterns of the column
/// over `x_outer`.
fn splits_off(h: u8, outer: usize) -> bool {
    let depends = |v: usize| (0..8usize).any(|x| (h >> x & 1) != (h >> (x ^ 1 << v) & 1));
    if !(0..3).all(depends) {
        return false;
    }
    let inner: Vec<usize> = (0..3).filter(|&v| v != outer).collect();
    let mut columns: Vec<u8> = Vec::new();
    for m in 0..4usize {
        let x = (m & 1) << inner[0] | (m >> 1) << inner[1];
        let column = (h >> x & 1) | (h >> (x | 1 << outer) & 1) << 1;
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    columns.len() <= 2
}

/// Calls `visit` on every ordering of `perm[from..]`.
fn for_each_permutation(perm: &mut Vec<usize>, from: usize, visit: &mut impl FnMut(&[usize])) {
    if from == perm.len() {
        visit(perm);
        return;
    }
    for i in from..perm.len() {
        perm.swap(from, i);
        for_each_permutation(perm, from + 1, visit);
        perm.swap(from, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The truth-table tests behind re-bracketing: chains of one associative operator regroup
    /// both ways, mixed chains do not, and functions of fewer than three inputs never count.
    #[test]
    fn chain_regrouping() {
        const AND: u8 = 0b1000;
        const OR: u8 = 0b1110;
        const XOR: u8 = 0b0110;
        // a AND NOT b: first operand 1, second 0 is bit 2.
        const AND_NOT: u8 = 0b0100;
        for op in [AND, OR, XOR] {
            let h = chain_function(op, op);
            assert!(splits_off(h, 0) && splits_off(h, 1), "{op:#06b}");
        }
        // c AND NOT (a AND NOT b) = c AND (NOT a OR b): no regrouping.
        assert!(!splits_off(chain_function(AND_NOT, AND_NOT), 1));
        // (a XOR b) AND c: neither a nor b splits off.
        let h = chain_function(XOR, AND);
        assert!(!splits_off(h, 0) && !splits_off(h, 1));
        // c AND (a AND NOT b) = (a AND c) AND NOT b.
        assert!(splits_off(chain_function(AND_NOT, AND), 1));
        assert!(!splits_off(0b1111_0000, 0), "depends on c alone");
    }
}
