//! Exact synthesis by SAT: the smallest circuit of two-input gates that
//! matches a table, found by asking a SAT solver, for `k = lower bound,
//! lower bound + 1, …`, whether a circuit with exactly `k` gates exists.
//!
//! The encoding is the single-selection-variable ("SSV") one of
//! Kojevnikov, Kulikov and Yaroslavtsev (2009) as refined by Haaswijk et al.
//! (2018). Signals `0..n` are the inputs and `n..n+k` the gates; gate `i`
//! has
//!
//! * selection variables `s[i][j,l]` (`j < l < i`): its fanins are `j`, `l`;
//! * operator variables `f[i][p,q]`: its value when fanin `j` is `p` and
//!   fanin `l` is `q`;
//! * simulation variables `x[i][t]`: its value on care row `t` (rows absent
//!   from the table are don't-cares and simply have no variables);
//!
//! and each output function `h` has selection variables `g[h][i]` and a
//! polarity `p[h]`.
//!
//! **Normal form.** Over a basis that offers all ten non-trivial two-input
//! functions, every circuit can be rewritten, gate count unchanged, so that
//! every gate is 0 on the all-zero input (complement the gates that are not
//! and absorb the negation into their readers' operators, or into the output
//! polarity). Then `f[i][0,0] = 0`, the all-zero row needs no simulation
//! variables, and only five operators per gate remain. Two outputs on the
//! same gate must share its polarity: a circuit has no free output
//! inverters. A target equal to the complement of an input needs a
//! negation gate, which normal form cannot express, so such tables (and
//! restricted bases) use the plain encoding: all four operator bits, no
//! polarity, and negations (`NOT a`, `NOT b` of the fanin pair) allowed
//! when the basis can write them.
//!
//! **Symmetry breaking** (each keeps at least one minimum circuit):
//!
//! * only operators of the basis, never constants or projections;
//! * every gate is read by a later gate or is an output, and every input the
//!   outputs essentially depend on is read;
//! * fanin pairs of consecutive gates are non-decreasing in co-lexicographic
//!   order (`(l, j)` compared lexicographically): two adjacent gates where
//!   the second does not read the first can be swapped, and a gate reading
//!   its predecessor is automatically larger;
//! * in normal form, no operand re-application: a gate reading gate `j` and
//!   one of `j`'s own fanins computes a function of two signals, which one
//!   gate on those signals computes directly.
//! * symmetries of the inputs: when a permutation `τ` of the inputs (with
//!   some inputs complemented, in normal form) maps the table onto itself,
//!   the sequence of fanin pairs must be lexicographically no larger than
//!   its image under `τ` (a lex-leader constraint). Sound together with the
//!   co-lexicographic order: among all relabellings by the symmetry group
//!   and all gate orders of one circuit, the one with the smallest fanin
//!   sequence satisfies both (swapping two adjacent independent gates that
//!   break the order gives a smaller sequence), and relabelling or
//!   complementing inputs changes neither the gate count, nor normal form
//!   (complemented gates are absorbed into their readers, leaving the
//!   wiring as it is), nor the other constraints above. On majority-5 this
//!   cut the refutation of 7 gates from 122 s to 1.4 s.
//! * re-bracketing: a gate read by one gate only, which also reads a signal
//!   before it, is not wired so that a regrouping of the two (such as
//!   `(a ∧ b) ∧ c` into `(a ∧ c) ∧ b`) would give a smaller fanin sequence
//!   (see [`SatParams::rebracketing`]). All the rules above, this one
//!   included, hold for the circuit with the lexicographically smallest
//!   fanin sequence among all circuits of the minimum size: each rule
//!   forbids only wirings that a same-size change of the circuit makes
//!   smaller (swapping two gates, relabelling inputs, reading a fanin's
//!   fanin, regrouping), and a change that would leave a gate unread gives
//!   a smaller circuit instead.
//!
//! **Restriction bounds** (gate elimination, as in circuit lower-bound
//! proofs). Fix an input `x` of a `k`-gate circuit to a constant `c`: each
//! gate reading `x` becomes a constant or a literal of its other fanin, each
//! gate reading one that became a constant becomes a function of one
//! signal, and over the full basis the gates after them absorb that, so at
//! most `k - r` gates remain for the restricted function, where `r` gates
//! went. Its minimum `m`, proven first by a smaller search on one input
//! fewer, then bounds `r <= k - m` (a sequential counter over implied
//! per-gate "eliminated" variables), and every circuit has at least
//! `m + 1` gates. Unlike the symmetry rules this holds for every circuit,
//! not one kept representative, so it combines with all of them. Solvers
//! find such counting arguments hard to learn: the 4:1 mux with a data input
//! fixed needs 7 gates, so at 8 gates each data input has one reader and
//! feeds no gate that becomes constant, and that size is refuted 13x
//! faster.
//!
//! Each `k` is a fresh solver instance (the encodings of consecutive sizes
//! differ in their symmetry-breaking clauses). A decoded circuit is always
//! checked against the table by simulation before it is returned.
//!
//! **Cube and conquer.** A size is split into sub-instances by the first
//! gate's fanin pair, which threads take in turn, in time slices so that a
//! cube holding a circuit is not left waiting behind hard refutations. The
//! cubes partition the circuits, since every circuit's first gate has
//! exactly one pair, so the size is refuted exactly when every cube is.
//! Unlike a portfolio, where every member must finish the whole
//! refutation, the cubes divide it. A thread left without a cube while
//! another, long-running one is still being solved gets that cube split
//! further, by the next gate's pair, at the end of its current slice.
//!
//! The solver is `batsat` (a pure-Rust MiniSat descendant): it solved these
//! instances as fast as `varisat` and faster than `splr`, and builds in 2 s
//! against their 34 s and 14 s; CaDiCaL through `rustsat` needs a C++ build
//! of minutes plus libclang. Figures in BENCHMARKS.md.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batsat::{lbool, Callbacks, Lit, SolverInterface, SolverOpts, Var};
use thiserror::Error;

use crate::circuit::{Circuit, GateExpr, Op, Signal};
use crate::search::{neg_expr, neg_form, size_lower_bound, targets_of, Basis, NegForm};
use crate::table::Table;
use crate::verify::verify;

/// Limits and basis for [`synthesize`].
#[derive(Debug, Clone)]
pub struct SatParams {
    /// Gate operations allowed.
    pub basis: Basis,
    /// Largest gate count tried.
    pub max_gates: usize,
    /// Wall-clock budget for the whole search (`None` = unlimited). The
    /// solver polls it at every conflict, so it is honoured within
    /// milliseconds.
    pub timeout: Option<Duration>,
    /// Conflicts allowed per size before giving up (`None` = unlimited);
    /// with [`cubes`](Self::cubes), per cube.
    pub conflict_limit: Option<u64>,
    /// Smallest size to try; sizes below the built-in lower bound are
    /// skipped anyway. Lets a caller resume after sizes it already refuted.
    pub min_gates: usize,
    /// Solvers run on each size at once, differently seeded; the first
    /// answer wins and stops the others. Solve times of one instance vary by
    /// orders of magnitude with the search order, so on idle cores a
    /// portfolio cuts the long tail. 1 = a single solver on this thread.
    pub threads: usize,
    /// Break the symmetries of the inputs: when a permutation of the inputs
    /// (swapping two interchangeable ones, or on at most 6 inputs any
    /// permutation, with complemented inputs in normal form) leaves every
    /// care row and target unchanged, only circuits whose fanin sequence is
    /// lexicographically no larger than its image are searched (see the
    /// module notes). Off only to check that it never changes a minimum.
    pub input_symmetries: bool,
    /// Break the re-bracketing symmetry (normal form only): of two gates
    /// where the first is read only by the second, wired `(a, b)` and
    /// `(c, first)`, whose function is also a gate on `(a, c)` (or `(b, c)`)
    /// feeding a gate with the third signal, only the wiring with the
    /// smaller fanin sequence is searched. On one thread it refuted the
    /// 4:1 mux at 7 gates, a random 5-input function at 7 and majority-5 at
    /// 8 in 8, 23 and 27 % less time (BENCHMARKS.md, "Re-bracketing").
    /// Off only to compare.
    pub rebracketing: bool,
    /// The solver asked first. With `threads > 1` a second member runs
    /// beside it (CaDiCaL in its default preset, or CaDiCaL after
    /// `batsat`), then differently seeded `batsat`s.
    pub solver: SatSolver,
    /// Cube and conquer: solve each size as independent sub-instances, one
    /// per fanin pair the first gate may take, which `threads` solvers of
    /// kind `solver` take in turn, in time slices. A portfolio's members
    /// each redo the whole refutation; cubes divide it. On two threads
    /// (BENCHMARKS.md, "Cube and conquer"): 4:1 mux at 8 gates refuted in
    /// 137 s, where the portfolio had not in 7 minutes; a random 5-input
    /// function at 7 gates in 7.7 s against 28.3 s; the 4:1 mux's 9-gate
    /// circuit found in 14.4 s against 21.2 s. A cube still open after a
    /// million conflicts when a thread runs out of cubes is split by the
    /// next gate's pair (the mux at 8 gates: 99 s instead of 136 s). Where
    /// the input symmetries leave fewer than two pairs per thread, the
    /// whole instance is solved as without this. Off only to compare.
    pub cubes: bool,
    /// Bound the gates each input's restriction removes (tables in normal
    /// form): fixing input `x` to `c` turns every gate that
    /// reads it into a constant or a literal of its other fanin, and every
    /// gate reading a gate turned constant into a function of one signal;
    /// over the full basis the gates after them absorb that. So a `k`-gate
    /// circuit leaves at most `k - r` gates for `f` with `x = c`, where it
    /// removed `r`. With `m` a proven lower bound for that smaller function
    /// (solved here first, on one input fewer), at most `k - m` gates may be
    /// removed, and no circuit has fewer than `m + 1` gates. Every circuit
    /// obeys this, not only minimum ones, so it combines with the symmetry
    /// rules. On two threads: the 4:1 mux at 8 gates refuted in 5.5–6 s
    /// against 76 s, majority-5 at 8 in 0.3 s against 22 s, a random
    /// 5-input function at 8 in 84 s against 200 s (BENCHMARKS.md,
    /// "Restriction bounds"). Off only to compare, and in window
    /// resynthesis, whose thousands of small instances would each pay for
    /// the smaller searches.
    pub restrictions: bool,
    /// The gate count of a circuit found elsewhere, by a search running
    /// beside this one (it may shrink meanwhile): sizes from it up are not
    /// tried, and the search ends once every size below it is refuted,
    /// which proves that circuit minimum.
    pub known_upper_bound: Option<Arc<AtomicUsize>>,
}

/// Portfolio width for one long instance per size (a whole function, not
/// many small windows): the machine's cores, at most 4.
pub fn portfolio_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The SAT solvers [`synthesize`] can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SatSolver {
    /// CaDiCaL 1.9 (C++, through the `cadical` crate): on this encoding it
    /// refuted sizes 1.6× and found circuits 3–5× faster than `batsat`
    /// (BENCHMARKS.md, "Input symmetries and CaDiCaL"). In builds without the crate's
    /// `cadical` feature, differently seeded `batsat`s stand in.
    #[default]
    Cadical,
    /// `batsat`, a pure-Rust MiniSat descendant.
    Batsat,
}

impl Default for SatParams {
    fn default() -> Self {
        SatParams {
            basis: Basis::all(),
            max_gates: 12,
            timeout: Some(Duration::from_secs(10)),
            conflict_limit: None,
            min_gates: 0,
            threads: 1,
            input_symmetries: true,
            rebracketing: true,
            solver: SatSolver::default(),
            cubes: true,
            restrictions: true,
            known_upper_bound: None,
        }
    }
}

/// Effort spent by [`synthesize`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SatStats {
    /// Sizes handed to the solver (satisfiable or not).
    pub solves: usize,
    /// Variables of the largest instance.
    pub variables: usize,
    /// Clauses of the largest instance.
    pub clauses: usize,
    /// Conflicts over all solves.
    pub conflicts: u64,
    /// Decisions over all solves.
    pub decisions: u64,
    /// Seconds per size tried, in order: `(gates, seconds)`.
    pub per_size: Vec<(usize, f64)>,
    /// Input permutations whose symmetry was broken (see
    /// [`SatParams::input_symmetries`]).
    pub input_symmetries: usize,
    /// Sub-instances handed to a solver by cube and conquer (see
    /// [`SatParams::cubes`]), over all sizes.
    pub cubes: usize,
    /// Per input, the lower bounds proven for the table with that input
    /// fixed to 0 and to 1 (0 where none was computed), from which
    /// [`SatParams::restrictions`] bounds the gates each restriction removes.
    pub restriction_bounds: Vec<[usize; 2]>,
}

/// Outcome of [`synthesize`].
#[derive(Debug, Clone)]
pub struct SatResult {
    /// A circuit with `lower_bound` gates, verified against the table; `None`
    /// when the limits ran out first (or every size up to `max_gates` is
    /// impossible).
    pub circuit: Option<Circuit>,
    /// Every size below this is proven impossible (so a circuit of this size
    /// is minimum).
    pub lower_bound: usize,
    /// Whether a limit stopped the search: the timeout, the conflict limit,
    /// or an instance too large to build (past a million clauses).
    pub timed_out: bool,
    /// Solver effort.
    pub stats: SatStats,
    /// Wall-clock time spent.
    pub seconds: f64,
}

/// Why [`synthesize`] could not run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SatError {
    /// The table or basis is outside what the encoding handles; the
    /// enumeration search covers these cases.
    #[error("the SAT encoding does not apply: {0}")]
    Unsupported(&'static str),
    /// The decoded circuit failed the check against the table. This would be
    /// a bug in the encoding; it is reported instead of returning a wrong
    /// circuit.
    #[error("the SAT model decoded to a circuit that does not match the table ({0} gates)")]
    Unverified(usize),
}

/// Tables with more care rows than this are left to other engines: the
/// encoding grows linearly in rows and a solver call would not finish.
const MAX_ROWS: usize = 1 << 12;
/// Largest instance built, in clauses. Building is not interruptible, so
/// this also bounds how far past its deadline a call can run (about a
/// second); instances this large are far beyond what solves in minutes.
const MAX_CLAUSES: usize = 1_000_000;

/// A literal while building clauses: input values on a row are constants.
#[derive(Clone, Copy)]
enum L {
    Const(bool),
    Var(i32),
}

impl L {
    fn not(self) -> L {
        match self {
            L::Const(b) => L::Const(!b),
            L::Var(v) => L::Var(-v),
        }
    }
    /// The literal "this equals `value`".
    fn is(self, value: bool) -> L {
        if value {
            self
        } else {
            self.not()
        }
    }
}

/// The CNF for one size `k`, with the variable layout needed to decode it.
struct Encoding {
    /// Inputs (signals `0..inputs`; gate `i` is signal `inputs + i`).
    inputs: usize,
    k: usize,
    normal: bool,
    cnf: Cnf,
    /// Per gate: `(j, l, var)` for each candidate fanin pair, in
    /// co-lexicographic order of `(l, j)`.
    sel: Vec<Vec<(usize, usize, i32)>>,
    /// Per gate: variable of operator bit `2p + q`, 0 where fixed to 0.
    op: Vec<[i32; 4]>,
    /// Per target, per gate: "the target is this gate".
    out: Vec<Vec<i32>>,
    /// Per target: polarity variable (true = the output is the gate's complement).
    pol: Vec<i32>,
    /// Selection variables of the first gate that a unit clause rules out.
    first_excluded: Vec<i32>,
}

/// Clauses in DIMACS numbering (variables from 1, negative = negated).
#[derive(Default)]
struct Cnf {
    num_vars: i32,
    /// Literals, each clause terminated by 0.
    lits: Vec<i32>,
    num_clauses: usize,
}

/// What the encoding needs to know about the table, computed once for all sizes.
struct Problem<'a> {
    table: &'a Table,
    n: usize,
    /// Input patterns of the simulated rows (care rows, minus the all-zero
    /// row in normal form).
    rows: Vec<u64>,
    /// Per target, its value on each simulated row.
    target_rows: Vec<Vec<bool>>,
    /// Per target, its value on the all-zero row when that row is present
    /// and the encoding is normal (fixes the polarity).
    zero_value: Vec<Option<bool>>,
    targets: Vec<Vec<u64>>,
    essential: u64,
    normal: bool,
    /// Allowed operator truth tables (bit `2p + q`), over all four bits.
    allowed: [bool; 16],
    /// Op and argument order realising each allowed binary truth table.
    code_op: [Option<(Op, bool)>; 16],
    neg: Option<NegForm>,
}

/// Truth tables of the two negations of a fanin pair: `NOT a`, `NOT b`.
const NOT_A: u8 = 0b0011;
const NOT_B: u8 = 0b0101;

impl<'a> Problem<'a> {
    fn new(table: &'a Table, basis: &Basis) -> Result<Problem<'a>, SatError> {
        let n = table.num_inputs();
        if table.len() > MAX_ROWS {
            return Err(SatError::Unsupported("more than 4096 rows"));
        }
        let (targets, essential) = targets_of(table);
        let code_op = crate::search::basis_code_table(basis);
        let neg = neg_form(basis);
        let mut allowed = [false; 16];
        for (t, a) in allowed.iter_mut().enumerate() {
            *a = code_op[t].is_some();
        }
        let full = allowed.iter().filter(|&&a| a).count() == 10;
        if neg.is_some() {
            allowed[NOT_A as usize] = true;
            allowed[NOT_B as usize] = true;
        }
        if !targets.is_empty() && n < 2 {
            // One input: every gate would need two distinct fanins.
            return Err(SatError::Unsupported("fewer than two inputs"));
        }
        let mask = table.row_mask();
        let complement_of_input = (0..n).any(|i| {
            let c: Vec<u64> = table.input_bits(i).iter().zip(&mask).map(|(x, m)| !x & m).collect();
            targets.contains(&c)
        });
        let normal = full && !complement_of_input;
        let bit = |v: &[u64], p: usize| v[p / 64] >> (p % 64) & 1 == 1;
        let zero_pos = table.rows().iter().position(|r| r.inputs == 0);
        let mut rows = Vec::new();
        let mut target_rows = vec![Vec::new(); targets.len()];
        for (p, r) in table.rows().iter().enumerate() {
            if normal && Some(p) == zero_pos {
                continue;
            }
            rows.push(r.inputs);
            for (tr, t) in target_rows.iter_mut().zip(&targets) {
                tr.push(bit(t, p));
            }
        }
        let zero_value = targets
            .iter()
            .map(|t| if normal { zero_pos.map(|p| bit(t, p)) } else { None })
            .collect();
        Ok(Problem {
            table,
            n,
            rows,
            target_rows,
            zero_value,
            targets,
            essential,
            normal,
            allowed,
            code_op,
            neg,
        })
    }

    /// The input permutations (input `x` becomes `perm[x]`) whose symmetry
    /// the encoding breaks; see [`input_symmetries`].
    fn symmetries(&self) -> Vec<Vec<usize>> {
        input_symmetries(self.table, &self.targets, self.normal)
    }

    /// The cubes of [`SatParams::cubes`]: one per fanin pair `(j, l)` the
    /// first gate may take, with its selection variable, or none (solve the whole
    /// instance) when the input symmetries leave fewer than two pairs per
    /// thread. Majority-5 leaves one; splitting it further by the first
    /// gate's operator refuted 8 gates a little faster (16.5 s against
    /// 22.8 s on two threads) but found no 9-gate circuit in 200 s, where the
    /// whole instance finds one in 41 s.
    fn first_gate_cubes(&self, e: &Encoding, threads: usize) -> Vec<(usize, usize, i32)> {
        match e.sel.first() {
            Some(pairs) if e.k >= 2 => {
                let open: Vec<(usize, usize, i32)> = pairs.iter().copied().filter(|&(_, _, s)| !e.first_excluded.contains(&s)).collect();
                if open.len() >= 2 * threads {
                    open
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    /// The re-bracketing constraint of [`SatParams::rebracketing`]: gate `j`
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
    fn no_smaller_rebracketing(&self, e: &mut Encoding) {
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

    /// Builds the CNF for exactly `k` gates, breaking the input symmetries
    /// `perms`, and with `rebracket` the re-bracketing symmetry (see
    /// [`SatParams::rebracketing`]).
    fn encode(
        &self,
        k: usize,
        perms: &[Vec<usize>],
        rebracket: bool,
        restrictions: &[(usize, [Option<usize>; 2])],
    ) -> Result<Encoding, SatError> {
        let n = self.n;
        let nt = self.targets.len();
        let t_rows = self.rows.len();
        // Clause estimate: simulation (8 per fanin pair and row) and
        // at-most-one (a pair of pairs) dominate. Summed gate by gate so an
        // absurd `k` stops early instead of overflowing.
        let mut estimate = 0usize;
        for i in 0..k {
            let g = n + i;
            let pairs = g * g.saturating_sub(1) / 2;
            estimate = estimate.saturating_add(pairs.saturating_mul(8 * t_rows + pairs / 2));
            if estimate > MAX_CLAUSES {
                return Err(SatError::Unsupported("instance too large"));
            }
        }
        let mut e = Encoding {
            inputs: n,
            k,
            normal: self.normal,
            cnf: Cnf::default(),
            sel: Vec::with_capacity(k),
            op: Vec::with_capacity(k),
            out: Vec::with_capacity(nt),
            pol: Vec::with_capacity(nt),
            first_excluded: Vec::new(),
        };
        let mut sim: Vec<Vec<i32>> = Vec::with_capacity(k);
        for i in 0..k {
            let g = n + i;
            let mut pairs = Vec::new();
            for l in 1..g {
                for j in 0..l {
                    pairs.push((j, l, e.cnf.fresh()));
                }
            }
            e.sel.push(pairs);
            let mut op = [0i32; 4];
            for (b, slot) in op.iter_mut().enumerate() {
                if !(self.normal && b == 0) {
                    *slot = e.cnf.fresh();
                }
            }
            e.op.push(op);
            sim.push((0..t_rows).map(|_| e.cnf.fresh()).collect());
        }
        for _ in 0..nt {
            let row: Vec<i32> = (0..k).map(|_| e.cnf.fresh()).collect();
            e.out.push(row);
            let p = if self.normal { e.cnf.fresh() } else { 0 };
            e.pol.push(p);
        }
        // Value of signal `s` on simulated row `t`.
        let val = |s: usize, t: usize| -> L {
            if s < n {
                L::Const(self.rows[t] >> s & 1 == 1)
            } else {
                L::Var(sim[s - n][t])
            }
        };
        let mut clause: Vec<L> = Vec::with_capacity(8);
        for i in 0..k {
            let sel = &e.sel[i];
            // Exactly one fanin pair.
            let alo: Vec<L> = sel.iter().map(|&(_, _, v)| L::Var(v)).collect();
            e.cnf.add(&alo);
            for a in 0..sel.len() {
                for b in a + 1..sel.len() {
                    e.cnf.add(&[L::Var(-sel[a].2), L::Var(-sel[b].2)]);
                }
            }
            // Operator in the basis: exclude every disallowed truth table.
            let op = e.op[i];
            for tt in 0..16u8 {
                if self.allowed[tt as usize] || (self.normal && tt & 1 == 1) {
                    continue;
                }
                clause.clear();
                for (b, &v) in op.iter().enumerate() {
                    if v != 0 {
                        // Clause is falsified exactly by this truth table.
                        clause.push(L::Var(v).is(tt >> b & 1 == 0));
                    }
                }
                e.cnf.add(&clause);
            }
            // Simulation: s[i][j,l] ∧ x_j = p ∧ x_l = q → x_i = f[i][p,q].
            let sel = &e.sel[i];
            for &(j, l, s) in sel {
                for t in 0..t_rows {
                    let (xj, xl, xi) = (val(j, t), val(l, t), val(n + i, t));
                    for p in [false, true] {
                        for q in [false, true] {
                            let fb = op[2 * p as usize + q as usize];
                            let head = [L::Var(-s), xj.is(!p), xl.is(!q)];
                            if fb == 0 {
                                clause.clear();
                                clause.extend_from_slice(&head);
                                clause.push(xi.is(false));
                                e.cnf.add(&clause);
                            } else {
                                for v in [false, true] {
                                    clause.clear();
                                    clause.extend_from_slice(&head);
                                    clause.push(xi.is(!v));
                                    clause.push(L::Var(fb).is(v));
                                    e.cnf.add(&clause);
                                }
                            }
                        }
                    }
                }
            }
        }
        // Outputs: each target is some gate, with its polarity.
        for h in 0..nt {
            let gs: Vec<L> = e.out[h].iter().map(|&v| L::Var(v)).collect();
            e.cnf.add(&gs);
            if nt == 1 {
                // Nothing reads the last gate, so it is the output; an
                // earlier gate equal to the output would duplicate it.
                for (i, &g) in e.out[h].iter().enumerate() {
                    e.cnf.add(&[L::Var(g).is(i + 1 == k)]);
                }
            }
            let pol = e.pol[h];
            if let Some(z) = self.zero_value[h] {
                e.cnf.add(&[L::Var(pol).is(z)]);
            }
            for (&g, gate_sim) in e.out[h].iter().zip(&sim) {
                for (&x, &want) in gate_sim.iter().zip(&self.target_rows[h]) {
                    let xi = L::Var(x);
                    if pol == 0 {
                        e.cnf.add(&[L::Var(-g), xi.is(want)]);
                    } else {
                        // x XOR pol == want.
                        e.cnf.add(&[L::Var(-g), xi.is(want), L::Var(pol)]);
                        e.cnf.add(&[L::Var(-g), xi.is(!want), L::Var(-pol)]);
                    }
                }
            }
        }
        // Two outputs on one gate share its polarity (there are no free
        // output inverters).
        if self.normal {
            for h1 in 0..nt {
                for h2 in h1 + 1..nt {
                    let (p1, p2) = (e.pol[h1], e.pol[h2]);
                    for i in 0..k {
                        let (a, b) = (e.out[h1][i], e.out[h2][i]);
                        e.cnf.add(&[L::Var(-a), L::Var(-b), L::Var(-p1), L::Var(p2)]);
                        e.cnf.add(&[L::Var(-a), L::Var(-b), L::Var(p1), L::Var(-p2)]);
                    }
                }
            }
        }
        // Every gate is read later or is an output.
        for i in 0..k {
            let g = n + i;
            clause.clear();
            for later in i + 1..k {
                for &(j, l, s) in &e.sel[later] {
                    if j == g || l == g {
                        clause.push(L::Var(s));
                    }
                }
            }
            for h in 0..nt {
                clause.push(L::Var(e.out[h][i]));
            }
            e.cnf.add(&clause);
        }
        // Every essential input is read.
        for x in 0..n {
            if self.essential >> x & 1 == 0 {
                continue;
            }
            clause.clear();
            for i in 0..k {
                for &(j, l, s) in &e.sel[i] {
                    if j == x || l == x {
                        clause.push(L::Var(s));
                    }
                }
            }
            e.cnf.add(&clause);
        }
        // Co-lexicographic order of consecutive fanin pairs. Pairs are
        // generated in that order, so the allowed predecessors of pair `b`
        // of gate `i + 1` form a prefix of gate `i`'s pairs.
        for i in 0..k.saturating_sub(1) {
            let (prev, next) = (&e.sel[i], &e.sel[i + 1]);
            for &(j2, l2, s2) in next {
                if l2 == n + i {
                    continue; // reads gate i: larger than all of gate i's pairs
                }
                clause.clear();
                clause.push(L::Var(-s2));
                for &(j1, l1, s1) in prev {
                    if (l1, j1) <= (l2, j2) {
                        clause.push(L::Var(s1));
                    }
                }
                e.cnf.add(&clause);
            }
        }
        // Lex-leader constraint of each input permutation τ: the sequence of
        // fanin pairs is no larger than its image under τ. `equal` is "the
        // first `i` pairs are fixed by τ"; while it holds, gate `i` may not
        // take a pair that τ maps to a smaller one.
        for perm in perms {
            let swap = |x: usize| if x < n { perm[x] } else { x };
            let mut equal: Option<i32> = None; // None: true
            for i in 0..k {
                let mut moved = Vec::new();
                for &(j, l, s) in &e.sel[i] {
                    let (tj, tl) = (swap(j), swap(l));
                    let image = (tj.max(tl), tj.min(tl));
                    if image == (l, j) {
                        continue;
                    }
                    moved.push(s);
                    if image < (l, j) {
                        clause.clear();
                        if let Some(eq) = equal {
                            clause.push(L::Var(-eq));
                        } else if i == 0 {
                            e.first_excluded.push(s);
                        }
                        clause.push(L::Var(-s));
                        e.cnf.add(&clause);
                    }
                }
                if i + 1 == k || moved.is_empty() && equal.is_none() {
                    continue;
                }
                // equal ∧ (gate i's pair is fixed) → next.
                let next = e.cnf.fresh();
                clause.clear();
                if let Some(eq) = equal {
                    clause.push(L::Var(-eq));
                }
                clause.push(L::Var(next));
                clause.extend(moved.iter().map(|&s| L::Var(s)));
                e.cnf.add(&clause);
                equal = Some(next);
            }
        }
        if self.normal && rebracket {
            self.no_smaller_rebracketing(&mut e);
        }
        for &(x, most) in restrictions {
            bound_restriction(&mut e, x, most);
        }
        // No operand re-application (normal form only: it relies on every
        // two-input function being available).
        if self.normal {
            for i in 0..k {
                for jg in 0..i {
                    let gj = n + jg;
                    let (fanins_j, sel_i) = (&e.sel[jg], &e.sel[i]);
                    for &(a, b, s_j) in fanins_j {
                        for &(x, y, s_i) in sel_i {
                            if y == gj && (x == a || x == b) {
                                e.cnf.add(&[L::Var(-s_j), L::Var(-s_i)]);
                            }
                        }
                    }
                }
            }
        }
        Ok(e)
    }
}

/// The restriction bound of [`SatParams::restrictions`] for input `x`: with
/// `x` fixed to `c`, at most `most[c]` gates are eliminated. A gate is
/// eliminated when it reads `x` (it becomes a constant or a literal of its
/// other fanin), or when it reads a gate that `x = c` turns into a constant
/// (it becomes a function of its other fanin alone). Each such gate sets an
/// "eliminated" variable, counted by a sequential counter; the variables are
/// only implied, so a circuit that eliminates fewer gates is never excluded.
/// Propagating constants further (a gate whose operator ignores a constant
/// fanin is itself constant) was tried and changed nothing measurable.
fn bound_restriction(e: &mut Encoding, x: usize, most: [Option<usize>; 2]) {
    let (n, k) = (e.inputs, e.k);
    // Per gate: "reads x as its first fanin", "… as its second".
    let mut reads: Vec<[Option<i32>; 2]> = vec![[None, None]; k];
    for (i, slot) in reads.iter_mut().enumerate() {
        for (side, first) in [(0, true), (1, false)] {
            let sels: Vec<i32> = e.sel[i]
                .iter()
                .filter(|&&(j, l, _)| if first { j == x } else { l == x })
                .map(|&(_, _, s)| s)
                .collect();
            if sels.is_empty() {
                continue;
            }
            let v = e.cnf.fresh();
            for s in sels {
                e.cnf.add(&[L::Var(-s), L::Var(v)]);
            }
            slot[side] = Some(v);
        }
    }
    // Operator bit `2p + q` of gate i (first fanin `p`, second `q`).
    let bit = |e: &Encoding, i: usize, b: usize| match e.op[i][b] {
        0 => L::Const(false),
        v => L::Var(v),
    };
    for (c, most) in most.into_iter().enumerate() {
        let Some(most) = most else { continue };
        // Gate i is a constant under x = c: it reads x where its operator
        // ignores the other fanin (bits 2c, 2c + 1 of the first operand's
        // row c; bits c, 2 + c of the second's column c).
        let mut constant: Vec<Option<i32>> = vec![None; k];
        for (i, slot) in constant.iter_mut().enumerate() {
            if reads[i] == [None, None] {
                continue;
            }
            let kv = e.cnf.fresh();
            for (side, (b0, b1)) in [(0, (2 * c, 2 * c + 1)), (1, (c, 2 + c))] {
                if let Some(v) = reads[i][side] {
                    let (u, w) = (bit(e, i, b0), bit(e, i, b1));
                    e.cnf.add(&[L::Var(-v), u.not(), w.not(), L::Var(kv)]);
                    e.cnf.add(&[L::Var(-v), u, w, L::Var(kv)]);
                }
            }
            *slot = Some(kv);
        }
        let mut eliminated = Vec::new();
        for (i, read) in reads.iter().enumerate() {
            let via: Vec<(i32, i32)> = e.sel[i]
                .iter()
                .flat_map(|&(j, l, s)| [j, l].into_iter().filter(|&g| g >= n).map(move |g| (s, g - n)))
                .filter_map(|(s, g)| constant[g].map(|kv| (s, kv)))
                .collect();
            if *read == [None, None] && via.is_empty() {
                continue;
            }
            let gone = e.cnf.fresh();
            for &v in read.iter().flatten() {
                e.cnf.add(&[L::Var(-v), L::Var(gone)]);
            }
            for (s, kv) in via {
                e.cnf.add(&[L::Var(-s), L::Var(-kv), L::Var(gone)]);
            }
            eliminated.push(gone);
        }
        at_most(e, &eliminated, most);
    }
}

/// At most `most` of the variables `vars` are true (Sinz's sequential
/// counter: `most` auxiliary variables per position).
fn at_most(e: &mut Encoding, vars: &[i32], most: usize) {
    if vars.len() <= most {
        return;
    }
    if most == 0 {
        for &v in vars {
            e.cnf.add(&[L::Var(-v)]);
        }
        return;
    }
    // cur[c]: at least c + 1 of vars[..=i] are true.
    let mut prev: Vec<i32> = Vec::new();
    for (i, &v) in vars.iter().enumerate() {
        let cur: Vec<i32> = (0..most).map(|_| e.cnf.fresh()).collect();
        e.cnf.add(&[L::Var(-v), L::Var(cur[0])]);
        for (c, &now) in cur.iter().enumerate() {
            if let Some(&p) = prev.get(c) {
                e.cnf.add(&[L::Var(-p), L::Var(now)]);
            }
            if let Some(&p) = prev.get(c.wrapping_sub(1)) {
                e.cnf.add(&[L::Var(-v), L::Var(-p), L::Var(now)]);
            }
        }
        if i > 0 {
            e.cnf.add(&[L::Var(-v), L::Var(-prev[most - 1])]);
        }
        prev = cur;
    }
}

/// Share of the time left that [`restriction_bounds`] may spend, and the
/// most it spends without a deadline: the smaller searches pay off only
/// when they are a small part of the whole.
const RESTRICTION_SHARE: u32 = 8;
const RESTRICTION_UNLIMITED: Duration = Duration::from_secs(8);

/// The table with input `x` fixed to `c` and removed (care rows with `x = c`,
/// the other inputs shifted down).
fn restrict(table: &Table, x: usize, c: bool) -> Table {
    let names: Vec<String> = table
        .input_names()
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != x)
        .map(|(_, s)| s.clone())
        .collect();
    let low = (1u64 << x) - 1;
    let rows = table
        .rows()
        .iter()
        .filter(|r| (r.inputs >> x & 1 == 1) == c)
        .map(|r| crate::table::Row {
            inputs: (r.inputs & low) | (r.inputs >> (x + 1)) << x,
            outputs: r.outputs,
            line: None,
        })
        .collect();
    Table::from_rows(table.source(), names, table.output_names().to_vec(), rows)
}

/// Per input, a proven lower bound on the gates of the table with that
/// input fixed, the larger over both values (see
/// [`SatParams::restrictions`]); 0 where nothing is known. Inputs that a
/// symmetry of the table maps onto each other share one computation.
fn restriction_bounds(table: &Table, p: &Problem, perms: &[Vec<usize>], params: &SatParams, deadline: Option<Instant>) -> Vec<[usize; 2]> {
    let n = p.n;
    let mut bounds = vec![[0; 2]; n];
    // Restricting a gate to a literal relies on every two-input function
    // being a gate.
    if !p.normal || n < 3 {
        return bounds;
    }
    let start = Instant::now();
    let budget = match deadline {
        Some(d) => d.saturating_duration_since(start) / RESTRICTION_SHARE,
        None => RESTRICTION_UNLIMITED,
    };
    let end = start + budget;
    // Orbits of the symmetry group: `perm` maps the table onto itself, so
    // `f` with `x` fixed and `f` with `perm[x]` fixed (to the same or the
    // opposite value) need the same gates.
    let mut orbit: Vec<usize> = (0..n).collect();
    fn root(orbit: &mut [usize], mut x: usize) -> usize {
        while orbit[x] != x {
            orbit[x] = orbit[orbit[x]];
            x = orbit[x];
        }
        x
    }
    for perm in perms {
        for (x, &y) in perm.iter().enumerate() {
            let (a, b) = (root(&mut orbit, x), root(&mut orbit, y));
            if a != b {
                orbit[a.max(b)] = a.min(b);
            }
        }
    }
    let essential: Vec<usize> = (0..n).filter(|&x| p.essential >> x & 1 == 1).collect();
    let todo: Vec<usize> = essential.iter().copied().filter(|&x| root(&mut orbit, x) == x).collect();
    let mut searches_left = 2 * todo.len();
    'todo: for &x in &todo {
        for c in [false, true] {
            let now = Instant::now();
            // Each sub-search builds its own problem and symmetries before
            // it looks at its clock, and recurses on one input fewer: past
            // the slice, that work alone grew exponentially with the inputs
            // (an 8-input unit fired by `learn` took minutes).
            if now >= end {
                break 'todo;
            }
            let share = end.saturating_duration_since(now) / searches_left.max(1) as u32;
            searches_left -= 1;
            let sub = restrict(table, x, c);
            // The restricted circuit gives each output a signal and a
            // polarity of its own. Normal form counts the same only when no
            // output is a complemented input and no two outputs are
            // complements (on one gate they would need an inverter there);
            // otherwise nothing is bounded.
            let Ok(q) = Problem::new(&sub, &params.basis) else { continue };
            let mask = sub.row_mask();
            let complements = |a: &Vec<u64>, b: &Vec<u64>| a.iter().zip(b).zip(&mask).all(|((a, b), m)| (a ^ b) & m == *m);
            let paired = q
                .targets
                .iter()
                .enumerate()
                .any(|(i, a)| q.targets[..i].iter().any(|b| complements(a, b)));
            if !q.normal || paired {
                continue;
            }
            let sp = SatParams {
                timeout: Some(share),
                threads: 1,
                // A bound of `max_gates` or more already rules out every
                // size this search will try.
                max_gates: params.max_gates.saturating_sub(1),
                min_gates: 0,
                conflict_limit: None,
                // A circuit for the whole function bounds nothing here.
                known_upper_bound: None,
                ..params.clone()
            };
            if let Ok(r) = synthesize(&sub, &sp) {
                bounds[x][usize::from(c)] = r.lower_bound;
            }
        }
    }
    for &x in &essential {
        let r = root(&mut orbit, x);
        if r != x {
            // The symmetry may complement the input as well, which swaps the
            // two values: only the smaller bound holds for both.
            let m = bounds[r][0].min(bounds[r][1]);
            bounds[x] = [m, m];
        }
    }
    bounds
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

/// The input permutations whose symmetry [`synthesize`] breaks: the swap of
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

impl Cnf {
    fn fresh(&mut self) -> i32 {
        self.num_vars += 1;
        self.num_vars
    }

    /// Adds a clause, dropping false constants; a true constant satisfies it.
    fn add(&mut self, clause: &[L]) {
        let start = self.lits.len();
        for &l in clause {
            match l {
                L::Const(true) => {
                    self.lits.truncate(start);
                    return;
                }
                L::Const(false) => {}
                L::Var(v) => self.lits.push(v),
            }
        }
        self.lits.push(0);
        self.num_clauses += 1;
    }

    fn clauses(&self) -> impl Iterator<Item = &[i32]> {
        self.lits.split(|&x| x == 0).take(self.num_clauses)
    }

    /// The instance in DIMACS CNF form.
    fn dimacs(&self) -> String {
        let mut s = format!("p cnf {} {}\n", self.num_vars, self.num_clauses);
        for c in self.clauses() {
            for l in c {
                s.push_str(&l.to_string());
                s.push(' ');
            }
            s.push_str("0\n");
        }
        s
    }
}

/// Stops the solver at the deadline or after a number of conflicts. Every
/// learnt clause is one conflict, so counting them counts conflicts.
#[derive(Clone, Copy)]
struct Limits<'a> {
    deadline: Option<Instant>,
    max_conflicts: Option<u64>,
    conflicts: u64,
    /// Set when another solver of a portfolio has answered.
    done: Option<&'a AtomicBool>,
    /// A circuit size known elsewhere and the size being solved: once a
    /// circuit that small exists, this size is no longer worth solving.
    known: Option<(&'a AtomicUsize, usize)>,
}

impl Callbacks for Limits<'_> {
    fn on_new_clause(&mut self, _c: &[Lit], src: batsat::ClauseKind) {
        if src == batsat::ClauseKind::Learnt {
            self.conflicts += 1;
        }
    }

    fn stop(&self) -> bool {
        self.max_conflicts.is_some_and(|m| self.conflicts >= m) || self.stop_requested()
    }
}

impl Limits<'_> {
    /// The deadline has passed or another solver has answered: everything
    /// stops, whatever the conflict counts.
    fn stop_requested(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() > d)
            || self.done.is_some_and(|d| d.load(Ordering::Relaxed))
            || self.known.is_some_and(|(u, k)| u.load(Ordering::Relaxed) <= k)
    }
}

/// Result of one solver call.
enum Answer {
    Sat(Vec<bool>),
    Unsat,
    Unknown,
}

/// Runs `threads` differently seeded solvers on `e` and returns the first
/// definite answer (all answers agree: the instance is the same).
fn solve(e: &Encoding, limits: Limits, threads: usize, first: SatSolver, stats: &mut SatStats) -> Answer {
    // Member `i` of the portfolio: the chosen solver, then CaDiCaL in its
    // other configuration (or, after `batsat`, CaDiCaL), then seeded
    // batsats.
    let member = |i: usize, limits: Limits, stats: &mut SatStats| match (i, first) {
        (0, SatSolver::Cadical) | (1, SatSolver::Batsat) => solve_cadical(e, &[], limits, CADICAL_CONFIG, i, stats),
        (1, SatSolver::Cadical) => solve_cadical(e, &[], limits, "default", i, stats),
        (0, SatSolver::Batsat) => solve_one(e, &[], limits, 0, stats),
        _ => solve_one(e, &[], limits, i - 1, stats),
    };
    if threads <= 1 {
        return member(0, limits, stats);
    }
    let done = AtomicBool::new(false);
    let results = on_threads(threads, stats, |i, st| {
        let l = Limits {
            done: Some(&done),
            ..limits
        };
        let a = member(i, l, st);
        if !matches!(a, Answer::Unknown) {
            done.store(true, Ordering::Relaxed);
        }
        a
    });
    results
        .into_iter()
        .find(|a| !matches!(a, Answer::Unknown))
        .unwrap_or(Answer::Unknown)
}

/// Runs `work(i, stats)` for `i < threads` on scoped threads, each with its
/// own stats, and adds their effort to `stats`. The results of threads that
/// panicked are missing (they count as no answer).
fn on_threads<R: Send>(threads: usize, stats: &mut SatStats, work: impl Fn(usize, &mut SatStats) -> R + Sync) -> Vec<R> {
    let results: Vec<(R, SatStats)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let work = &work;
                s.spawn(move || {
                    let mut st = SatStats::default();
                    (work(i, &mut st), st)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    results
        .into_iter()
        .map(|(r, st)| {
            stats.conflicts += st.conflicts;
            stats.decisions += st.decisions;
            stats.cubes += st.cubes;
            r
        })
        .collect()
}

/// Conflicts of a cube's first time slice in [`solve_cubes`]; each later
/// slice is as long as all its earlier ones together, up to
/// [`LONGEST_SLICE`] when other threads may be waiting.
const FIRST_SLICE: u64 = 2_000;

/// Longest slice with more than one thread: a thread left without a cube
/// waits for the end of another's slice before that cube is split for it,
/// and this bounds the wait to a few seconds.
const LONGEST_SLICE: u64 = 200_000;

/// Conflicts a cube must have used before it is split for an idle thread.
/// Its parts start without what it learnt, and together they take more
/// conflicts than it had left: split after 128,000 conflicts, the last cube
/// of the 4:1 mux at 7 gates took 20 parts and 4.7–5.3 s on two threads
/// instead of 3.2–3.5 s. Past a million, the cubes worth splitting are the
/// ones that would hold a thread for tens of seconds more.
const SPLIT_AFTER: u64 = 1_000_000;

/// A cube waiting in [`solve_cubes`]'s queue: its literals (the fanin pairs
/// of gates `0..pairs.len()` fixed), its solver (built on its first slice,
/// then kept with everything it learnt) and the conflicts it has used.
struct Pending<'a> {
    cube: Vec<i32>,
    pairs: Vec<(usize, usize)>,
    solver: Option<CubeSolver<'a>>,
    spent: u64,
}

impl Pending<'_> {
    /// The cubes that partition this one by the fanin pair of the next
    /// gate, leaving out pairs that break the co-lexicographic order with
    /// the last fixed gate (those are refuted by a clause of the encoding).
    fn split<'b>(&self, e: &Encoding) -> Vec<Pending<'b>> {
        let d = self.pairs.len();
        let (j0, l0) = self.pairs[d - 1];
        e.sel[d]
            .iter()
            .filter(|&&(j, l, _)| l == e.inputs + d - 1 || (l, j) >= (l0, j0))
            .map(|&(j, l, s)| {
                let mut cube = self.cube.clone();
                cube.push(s);
                let mut pairs = self.pairs.clone();
                pairs.push((j, l));
                Pending {
                    cube,
                    pairs,
                    solver: None,
                    spent: 0,
                }
            })
            .collect()
    }
}

/// A cube held by a [`solve_cubes`] thread: the count of held cubes drops
/// when it does.
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Cube and conquer: `e` with the first gate's pair fixed to each of
/// `firsts` (`(j, l, selection variable)`) as a separate instance, solved
/// by `threads` solvers of kind `first` in time slices: a thread takes the
/// next cube from the queue, runs its solver for a slice of conflicts and,
/// if unfinished, queues it again with a doubled slice (at most
/// [`LONGEST_SLICE`] on several threads). Satisfiable as soon as one cube
/// is, unsatisfiable when every cube is. The slices matter when the size is
/// satisfiable: solved to the end one by one, the cubes before the one
/// holding a circuit must all be refuted first (majority-5 at 9 gates: no
/// circuit in 150 s, against 41 s whole). When a thread finds the queue
/// empty while cubes are still being solved, the next cube to end a slice
/// past [`SPLIT_AFTER`] conflicts is split by its next gate's fanin pair
/// instead of requeued, so the last hard cube does not leave the other
/// threads idle.
fn solve_cubes(
    e: &Encoding,
    firsts: &[(usize, usize, i32)],
    limits: Limits,
    threads: usize,
    first: SatSolver,
    stats: &mut SatStats,
) -> Answer {
    let done = AtomicBool::new(false);
    let pending: VecDeque<Pending> = firsts
        .iter()
        .map(|&(j, l, s)| Pending {
            cube: vec![s],
            pairs: vec![(j, l)],
            solver: None,
            spent: 0,
        })
        .collect();
    // Cubes not yet refuted, queued or being solved. Unsatisfiable only when
    // it reaches 0: a worker that died mid-cube must not turn into a proof.
    let open = AtomicUsize::new(pending.len());
    let queue: Mutex<VecDeque<Pending>> = Mutex::new(pending);
    // Threads waiting for a cube, and threads holding one.
    let idle = AtomicUsize::new(0);
    let busy = AtomicUsize::new(0);
    // The first outcome that ends the search: a model, or a cube left
    // unanswered at a limit (then nothing can be concluded).
    let outcome: Mutex<Option<Answer>> = Mutex::new(None);
    let threads = threads.clamp(1, firsts.len().max(1));
    let longest = if threads > 1 { LONGEST_SLICE } else { u64::MAX };
    let work = |st: &mut SatStats| {
        let limits = Limits {
            done: Some(&done),
            ..limits
        };
        loop {
            if done.load(Ordering::Relaxed) {
                return;
            }
            let popped = {
                let mut q = queue.lock().unwrap_or_else(|q| q.into_inner());
                match q.pop_front() {
                    Some(p) => {
                        busy.fetch_add(1, Ordering::AcqRel);
                        Some(p)
                    }
                    // Nothing queued and nothing held: every cube is
                    // answered (or a worker died, which `open` remembers).
                    None if busy.load(Ordering::Acquire) == 0 => return,
                    None => None,
                }
            };
            let Some(mut p) = popped else {
                // Every open cube is held by another thread; wait for one
                // to be requeued or split.
                idle.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(2));
                idle.fetch_sub(1, Ordering::AcqRel);
                continue;
            };
            // Released when this cube is requeued, split or answered, and
            // when a panic unwinds through here.
            let _held = Held(&busy);
            let slice = FIRST_SLICE.max(p.spent).min(longest);
            // The caller's conflict limit holds per cube.
            let (slice, last) = match limits.max_conflicts {
                Some(max) if p.spent + slice >= max => (max.saturating_sub(p.spent), true),
                _ => (slice, false),
            };
            let Pending { cube, solver, .. } = &mut p;
            let solver = solver.get_or_insert_with(|| {
                st.cubes += 1;
                CubeSolver::new(e, cube, limits, first)
            });
            let a = solver.run(e, slice, st);
            p.spent += slice;
            let stopped = limits.stop_requested();
            match a {
                Answer::Unsat => {
                    open.fetch_sub(1, Ordering::AcqRel);
                }
                Answer::Unknown if !last && !stopped => {
                    let mut q = queue.lock().unwrap_or_else(|q| q.into_inner());
                    // The last gate's pair is left to the solver.
                    let splittable = p.pairs.len() + 1 < e.k;
                    if q.is_empty() && idle.load(Ordering::Acquire) > 0 && splittable && p.spent >= SPLIT_AFTER {
                        let parts = p.split(e);
                        // The parts replace the cube; its solver is dropped.
                        open.fetch_add(parts.len(), Ordering::AcqRel);
                        open.fetch_sub(1, Ordering::AcqRel);
                        q.extend(parts);
                    } else {
                        q.push_back(p);
                    }
                }
                a => {
                    let mut slot = outcome.lock().unwrap_or_else(|o| o.into_inner());
                    if slot.is_none() {
                        *slot = Some(a);
                    }
                    done.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    };
    if threads == 1 {
        work(stats);
    } else {
        on_threads(threads, stats, |_, st| work(st));
    }
    match outcome.into_inner().unwrap_or_else(|o| o.into_inner()) {
        Some(a) => a,
        None if open.into_inner() == 0 => Answer::Unsat,
        None => Answer::Unknown,
    }
}

/// A solver for one cube of [`solve_cubes`], resumable: each
/// [`run`](Self::run) continues the search with what earlier runs learnt.
enum CubeSolver<'a> {
    #[cfg(feature = "cadical")]
    Cadical(Option<cadical::Solver<CadicalStop<'a>>>),
    /// `None` when adding the clauses already found a conflict. Boxed: the
    /// solver's state is large and cubes wait in a queue.
    Batsat(Option<Box<(batsat::Solver<Limits<'a>>, Vec<Var>)>>),
}

impl<'a> CubeSolver<'a> {
    fn new(e: &Encoding, cube: &[i32], limits: Limits<'a>, kind: SatSolver) -> CubeSolver<'a> {
        match kind {
            #[cfg(feature = "cadical")]
            SatSolver::Cadical => CubeSolver::Cadical(cadical_solver(e, cube, &limits, CADICAL_CONFIG)),
            _ => CubeSolver::Batsat(batsat_solver(e, cube, limits, 0).map(Box::new)),
        }
    }

    /// Searches on for at most `conflicts` more conflicts (or until the
    /// deadline or another thread's answer).
    // Only CaDiCaL's models are read back through `e`.
    #[cfg_attr(not(feature = "cadical"), allow(unused_variables))]
    fn run(&mut self, e: &Encoding, conflicts: u64, stats: &mut SatStats) -> Answer {
        match self {
            #[cfg(feature = "cadical")]
            CubeSolver::Cadical(solver) => match solver {
                Some(solver) => cadical_run(e, solver, Some(conflicts)),
                None => Answer::Unknown,
            },
            CubeSolver::Batsat(None) => Answer::Unsat,
            CubeSolver::Batsat(Some(boxed)) => {
                let (solver, vars) = &mut **boxed;
                let before = (solver.num_conflicts(), solver.num_decisions());
                let cb = solver.cb_mut();
                cb.max_conflicts = Some(cb.conflicts.saturating_add(conflicts));
                let a = batsat_run(solver, vars);
                stats.conflicts += solver.num_conflicts() - before.0;
                stats.decisions += solver.num_decisions() - before.1;
                a
            }
        }
    }
}

/// Stands in for CaDiCaL in builds without the `cadical` feature: a
/// differently seeded `batsat` for each portfolio member.
#[cfg(not(feature = "cadical"))]
fn solve_cadical(e: &Encoding, units: &[i32], limits: Limits, _config: &str, member: usize, stats: &mut SatStats) -> Answer {
    solve_one(e, units, limits, if member == 0 { 0 } else { 100 + member }, stats)
}

/// Stops CaDiCaL whenever batsat would stop ([`Limits::stop_requested`]:
/// the deadline, another portfolio member's answer, a circuit found beside);
/// CaDiCaL polls this callback regularly during search. Its conflict cap is
/// applied by [`cadical_run`] instead.
#[cfg(feature = "cadical")]
struct CadicalStop<'a>(Limits<'a>);

#[cfg(feature = "cadical")]
impl cadical::Callbacks for CadicalStop<'_> {
    fn terminate(&mut self) -> bool {
        self.0.stop_requested()
    }
}

/// CaDiCaL's option preset for [`SatSolver::Cadical`]. Its "unsat" preset
/// (no rephasing towards satisfying assignments, more elimination) refuted
/// as fast as the default on this encoding and found circuits much faster:
/// majority-5 at 8 gates refuted in 39 s against 36 s, its 9-gate circuit
/// found in 58 s against 243 s (BENCHMARKS.md, "Input symmetries and
/// CaDiCaL").
const CADICAL_CONFIG: &str = "unsat";

/// One CaDiCaL call on `e` plus the unit clauses `units`, with the option
/// preset `config`. Its conflicts are not counted: the crate does not
/// expose the solver's statistics.
#[cfg(feature = "cadical")]
fn solve_cadical(e: &Encoding, units: &[i32], limits: Limits, config: &str, _member: usize, _stats: &mut SatStats) -> Answer {
    match cadical_solver(e, units, &limits, config) {
        Some(mut solver) => cadical_run(e, &mut solver, limits.max_conflicts),
        None => Answer::Unknown,
    }
}

/// A CaDiCaL instance holding `e` and `units`, stopped whenever `limits`
/// would stop batsat; `None` if CaDiCaL rejects the preset `config` (its own
/// names).
#[cfg(feature = "cadical")]
fn cadical_solver<'a>(e: &Encoding, units: &[i32], limits: &Limits<'a>, config: &str) -> Option<cadical::Solver<CadicalStop<'a>>> {
    let mut solver = cadical::Solver::<CadicalStop>::with_config(config).ok()?;
    solver.set_callbacks(Some(CadicalStop(*limits)));
    solver.reserve(e.cnf.num_vars);
    for c in e.cnf.clauses() {
        solver.add_clause(c.iter().copied());
    }
    for &u in units {
        solver.add_clause([u]);
    }
    Some(solver)
}

/// Runs (or resumes) `solver` for at most `max_conflicts` conflicts.
#[cfg(feature = "cadical")]
fn cadical_run(e: &Encoding, solver: &mut cadical::Solver<CadicalStop>, max_conflicts: Option<u64>) -> Answer {
    if let Some(max) = max_conflicts {
        // The limit is an `int` in CaDiCaL, for the next call only; larger
        // limits are no limit.
        if let Ok(max) = i32::try_from(max) {
            if solver.set_limit("conflicts", max).is_err() {
                return Answer::Unknown;
            }
        }
    }
    match solver.solve() {
        Some(true) => Answer::Sat((1..=e.cnf.num_vars).map(|v| solver.value(v) == Some(true)).collect()),
        Some(false) => Answer::Unsat,
        None => Answer::Unknown,
    }
}

fn solve_one(e: &Encoding, units: &[i32], limits: Limits, seed: usize, stats: &mut SatStats) -> Answer {
    let Some((mut solver, vars)) = batsat_solver(e, units, limits, seed) else {
        return Answer::Unsat;
    };
    let answer = batsat_run(&mut solver, &vars);
    stats.conflicts += solver.num_conflicts();
    stats.decisions += solver.num_decisions();
    answer
}

/// A `batsat` instance holding `e` and `units`, stopped by `limits`, with
/// its variables; `None` when the clauses already conflict.
fn batsat_solver<'a>(e: &Encoding, units: &[i32], limits: Limits<'a>, seed: usize) -> Option<(batsat::Solver<Limits<'a>>, Vec<Var>)> {
    let opts = if seed == 0 {
        SolverOpts::default()
    } else {
        // Other members start from random activities and take an occasional
        // random decision, so they explore different parts of the search.
        SolverOpts {
            random_seed: 91_648_253.0 + 7_919.0 * seed as f64,
            rnd_init_act: true,
            random_var_freq: 0.01,
            ..SolverOpts::default()
        }
    };
    let mut solver = batsat::Solver::new(opts, limits);
    let vars: Vec<Var> = (0..e.cnf.num_vars).map(|_| solver.new_var_default()).collect();
    let lit = |v: i32| Lit::new(vars[(v.unsigned_abs() - 1) as usize], v > 0);
    let mut buf: Vec<Lit> = Vec::new();
    for c in e.cnf.clauses().chain(units.chunks(1)) {
        buf.clear();
        buf.extend(c.iter().map(|&v| lit(v)));
        if !solver.add_clause_reuse(&mut buf) {
            return None;
        }
    }
    Some((solver, vars))
}

/// Runs (or resumes) `solver` until its limits stop it.
fn batsat_run(solver: &mut batsat::Solver<Limits>, vars: &[Var]) -> Answer {
    let r = solver.solve_limited(&[]);
    if r == lbool::TRUE {
        Answer::Sat(vars.iter().map(|&v| solver.value_var(v) == lbool::TRUE).collect())
    } else if r == lbool::FALSE {
        Answer::Unsat
    } else {
        Answer::Unknown
    }
}

impl Problem<'_> {
    /// Turns a model into a circuit (not yet verified).
    fn decode(&self, e: &Encoding, model: &[bool]) -> Result<Circuit, SatError> {
        let n = self.n;
        let is = |v: i32| v > 0 && model.get((v - 1) as usize).copied().unwrap_or(false);
        let mut fanins = Vec::with_capacity(e.k);
        let mut tts = Vec::with_capacity(e.k);
        for i in 0..e.k {
            let Some(&(j, l, _)) = e.sel[i].iter().find(|&&(_, _, s)| is(s)) else {
                return Err(SatError::Unverified(e.k));
            };
            fanins.push((j, l));
            let tt = (0..4).fold(0u8, |acc, b| acc | (is(e.op[i][b]) as u8) << b);
            tts.push(tt);
        }
        // Output of each target: gate and polarity.
        let mut target_gate = Vec::with_capacity(self.targets.len());
        let mut flip = vec![false; n + e.k];
        for h in 0..self.targets.len() {
            let Some(i) = (0..e.k).find(|&i| is(e.out[h][i])) else {
                return Err(SatError::Unverified(e.k));
            };
            let p = e.normal && is(e.pol[h]);
            target_gate.push(n + i);
            flip[n + i] = p;
        }
        let sig = |s: usize| if s < n { Signal::Input(s) } else { Signal::Gate(s - n) };
        let mut c = Circuit::for_table(self.table);
        for i in 0..e.k {
            let (j, l) = fanins[i];
            let mut tt = tts[i];
            // Gates that are complemented outputs compute the complement
            // instead, and their readers absorb the change.
            if flip[j] {
                tt = (tt >> 2 & 0b11) | (tt & 0b11) << 2;
            }
            if flip[l] {
                tt = (tt >> 1 & 0b0101) | (tt & 0b0101) << 1;
            }
            if flip[n + i] {
                tt ^= 0xF;
            }
            let expr = match (tt, self.neg) {
                (NOT_A, Some(form)) => neg_expr(form, sig(j)),
                (NOT_B, Some(form)) => neg_expr(form, sig(l)),
                _ => match self.code_op[tt as usize] {
                    Some((op, false)) => GateExpr {
                        op,
                        args: vec![sig(j), sig(l)],
                    },
                    Some((op, true)) => GateExpr {
                        op,
                        args: vec![sig(l), sig(j)],
                    },
                    None => return Err(SatError::Unverified(e.k)),
                },
            };
            c.push(expr).map_err(|_| SatError::Unverified(e.k))?;
        }
        let mask = self.table.row_mask();
        for (o, name) in self.table.output_names().iter().enumerate() {
            let want: Vec<u64> = self.table.output_bits(o).iter().zip(&mask).map(|(a, m)| a & m).collect();
            let s = if want.iter().all(|&x| x == 0) {
                Signal::Const(false)
            } else if want == mask {
                Signal::Const(true)
            } else if let Some(h) = self.targets.iter().position(|t| *t == want) {
                sig(target_gate[h])
            } else {
                let input = (0..n).find(|&i| {
                    self.table
                        .input_bits(i)
                        .iter()
                        .zip(&mask)
                        .map(|(a, m)| a & m)
                        .eq(want.iter().copied())
                });
                match input {
                    Some(i) => Signal::Input(i),
                    None => return Err(SatError::Unverified(e.k)),
                }
            };
            c.set_output(name, s).map_err(|_| SatError::Unverified(e.k))?;
        }
        Ok(c)
    }
}

/// Whether [`synthesize`] handles `table` over `basis` (at least two
/// inputs when any output needs a gate, at most 4096 rows).
pub fn supports(table: &Table, basis: &Basis) -> bool {
    Problem::new(table, basis).is_ok()
}

/// The instance "is there a circuit with exactly `gates` gates over `basis`
/// for `table`" in DIMACS CNF, for running an external solver on it.
pub fn dimacs(table: &Table, basis: &Basis, gates: usize) -> Result<String, SatError> {
    let p = Problem::new(table, basis)?;
    Ok(p.encode(gates, &p.symmetries(), true, &[])?.cnf.dimacs())
}

/// Finds a minimum-size circuit for `table` over `params.basis` with a SAT
/// solver, trying sizes from a lower bound up to `params.max_gates`.
///
/// The returned circuit, if any, has been verified against every row of
/// the table, and is minimum: every smaller size was proven unsatisfiable.
pub fn synthesize(table: &Table, params: &SatParams) -> Result<SatResult, SatError> {
    let start = Instant::now();
    // A timeout too large to add to the clock means no deadline.
    let deadline = params.timeout.and_then(|t| start.checked_add(t));
    let p = Problem::new(table, &params.basis)?;
    let finish = |circuit, lower_bound, timed_out, stats| SatResult {
        circuit,
        lower_bound,
        timed_out,
        stats,
        seconds: start.elapsed().as_secs_f64(),
    };
    if params.timeout.is_some_and(|t| t.is_zero()) && !p.targets.is_empty() {
        // Nothing can be solved: skip the symmetries and restriction bounds,
        // which cost time of their own before any clock is read.
        let lower = size_lower_bound(&p.targets, p.essential).max(params.min_gates);
        return Ok(finish(None, lower, true, SatStats::default()));
    }
    // Only computed when asked: with up to 720 permutations of 6 inputs it
    // is not free, and windows ask thousands of times.
    let perms = if params.input_symmetries { p.symmetries() } else { Vec::new() };
    let mut stats = SatStats {
        input_symmetries: perms.len(),
        ..SatStats::default()
    };
    let bounds = if params.restrictions && !p.targets.is_empty() {
        restriction_bounds(table, &p, &perms, params, deadline)
    } else {
        Vec::new()
    };
    // A circuit reads each essential input at least once, so it has at
    // least one gate more than the function with that input fixed.
    let restricted = bounds.iter().flatten().filter(|&&m| m > 0).map(|&m| m + 1).max().unwrap_or(0);
    stats.restriction_bounds = bounds.clone();
    let first = size_lower_bound(&p.targets, p.essential).max(params.min_gates).max(restricted);
    let mut lower = first;
    if p.targets.is_empty() {
        // Every output is a constant or an input: no gates at all.
        let e = p.encode(0, &[], false, &[])?;
        let c = p.decode(&e, &[])?;
        return Ok(finish(Some(c), 0, false, stats));
    }
    for k in first..=params.max_gates {
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Ok(finish(None, lower, true, stats));
        }
        if params.known_upper_bound.as_ref().is_some_and(|u| u.load(Ordering::Relaxed) <= k) {
            return Ok(finish(None, lower, false, stats));
        }
        let t0 = Instant::now();
        // An instance past the size limit ends the search like a timeout:
        // the sizes refuted so far still stand.
        // With x fixed to c, at most k - m gates may go.
        let restrictions: Vec<(usize, [Option<usize>; 2])> = bounds
            .iter()
            .enumerate()
            .filter(|&(_, m)| m.iter().any(|&m| m > 0))
            .map(|(x, m)| (x, m.map(|m| (m > 0).then(|| k.saturating_sub(m)))))
            .collect();
        let Ok(e) = p.encode(k, &perms, params.rebracketing, &restrictions) else {
            return Ok(finish(None, lower, true, stats));
        };
        stats.solves += 1;
        stats.variables = stats.variables.max(e.cnf.num_vars as usize);
        stats.clauses = stats.clauses.max(e.cnf.num_clauses);
        let limits = Limits {
            deadline,
            max_conflicts: params.conflict_limit,
            conflicts: 0,
            done: None,
            known: params.known_upper_bound.as_deref().map(|u| (u, k)),
        };
        let cubes = if params.cubes {
            p.first_gate_cubes(&e, params.threads)
        } else {
            Vec::new()
        };
        let answer = if cubes.is_empty() {
            solve(&e, limits, params.threads, params.solver, &mut stats)
        } else {
            solve_cubes(&e, &cubes, limits, params.threads, params.solver, &mut stats)
        };
        stats.per_size.push((k, t0.elapsed().as_secs_f64()));
        match answer {
            Answer::Sat(model) => {
                let c = p.decode(&e, &model)?.remove_dead();
                if !verify(&c, table).map(|v| v.ok()).unwrap_or(false) {
                    return Err(SatError::Unverified(c.num_gates()));
                }
                return Ok(finish(Some(c), k, false, stats));
            }
            Answer::Unsat => lower = k + 1,
            Answer::Unknown => return Ok(finish(None, lower, true, stats)),
        }
    }
    Ok(finish(None, lower, false, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::SplitMix64;

    fn no_limits() -> Limits<'static> {
        Limits {
            deadline: None,
            max_conflicts: None,
            conflicts: 0,
            done: None,
            known: None,
        }
    }

    fn satisfiable(e: &Encoding, cube: &[i32]) -> bool {
        match solve_one(e, cube, no_limits(), 0, &mut SatStats::default()) {
            Answer::Sat(_) => true,
            Answer::Unsat => false,
            Answer::Unknown => panic!("no limits were set"),
        }
    }

    /// The sequential counter admits an assignment exactly when at most `most` of its variables
    /// are true: every assignment of 7 variables, every bound.
    #[test]
    fn at_most_counts_true_variables() {
        let count = 7;
        for most in 0..=count {
            let mut e = Encoding {
                inputs: 2,
                k: 0,
                normal: true,
                cnf: Cnf::default(),
                sel: Vec::new(),
                op: Vec::new(),
                out: Vec::new(),
                pol: Vec::new(),
                first_excluded: Vec::new(),
            };
            let vars: Vec<i32> = (0..count).map(|_| e.cnf.fresh()).collect();
            at_most(&mut e, &vars, most);
            for set in 0u32..1 << count {
                let cube: Vec<i32> = vars
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if set >> i & 1 == 1 { v } else { -v })
                    .collect();
                assert_eq!(
                    satisfiable(&e, &cube),
                    set.count_ones() as usize <= most,
                    "{set:#09b}, at most {most}"
                );
            }
        }
    }

    /// The parts of a split cube, and the parts of its parts, are satisfiable exactly when the
    /// cube is: on sizes below, at and above the minimum of random 4-input functions.
    #[test]
    fn split_cubes_partition_their_cube() {
        let mut rng = SplitMix64::new(0xc0be);
        for _ in 0..6 {
            let tt = rng.next_u64() & 0xffff;
            let table = crate::library::from_truth_table(4, tt);
            let p = Problem::new(&table, &Basis::all()).unwrap();
            let perms = p.symmetries();
            for k in 3..=6 {
                let e = p.encode(k, &perms, true, &[]).unwrap();
                for &(j, l, s) in &e.sel[0] {
                    let cube = Pending {
                        cube: vec![s],
                        pairs: vec![(j, l)],
                        solver: None,
                        spent: 0,
                    };
                    let whole = satisfiable(&e, &cube.cube);
                    let parts = cube.split(&e);
                    assert!(!parts.is_empty());
                    assert_eq!(
                        parts.iter().any(|q| satisfiable(&e, &q.cube)),
                        whole,
                        "{tt:#06x}, {k} gates, first pair ({j}, {l})"
                    );
                    if let Some(q) = parts.iter().find(|q| satisfiable(&e, &q.cube)).filter(|_| k > 3) {
                        assert!(q.split(&e).iter().any(|r| satisfiable(&e, &r.cube)), "{tt:#06x}, {k} gates");
                    }
                }
            }
        }
    }

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
