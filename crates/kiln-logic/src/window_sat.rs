//! SAT-based window resynthesis: cut a small convex window out of a
//! circuit, compute what its outputs must be on the leaf patterns that can
//! occur (and, for a single-output window, where its output is observed at
//! all), and ask the SAT engine of [`crate::exact_sat`] for a replacement
//! with fewer gates.
//!
//! Rewriting ([`crate::rewrite`]) replaces single-output cones of at most
//! four leaves with precomputed optimum circuits. Windows here have up to six
//! (or eight) leaves and several outputs, so they capture the sharing between
//! outputs that a cone-by-cone library cannot, and the don't-cares make
//! replacements possible that are wrong on patterns which never happen.
//!
//! * **Satisfiability don't-cares**: leaf patterns that no input row
//!   produces are left out of the window's table. They are only known when
//!   the circuit is simulated on all of its `2^n` rows, so they are used for
//!   circuits of at most [`COMPLETE_SIM_MAX_INPUTS`] inputs.
//! * **Observability don't-cares**: for a window with one output, rows on
//!   which flipping that output changes no circuit output are left out too.
//!   With several outputs, flips interact, so only satisfiability
//!   don't-cares are used.
//!
//! Windows are convex (no path leaves the window and comes back), so a
//! replacement can always be placed between the logic it reads and the logic
//! that reads it. [`exact_whole`] treats the whole circuit as one window and
//! searches downward from its size, proving it minimum when a smaller size
//! is refuted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::circuit::{Circuit, GateExpr, Signal};
use crate::cuts::var_column;
use crate::exact_sat::{synthesize, SatParams, SatSolver};
use crate::optimise::complete_table;
use crate::search::Basis;
use crate::table::{Row, Table};

/// Circuits with at most this many inputs are simulated on every row, which
/// gives the don't-cares; larger ones get windows with none.
pub const COMPLETE_SIM_MAX_INPUTS: usize = 16;

/// Parameters of [`resynthesize_windows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowParams {
    /// Most leaves of a window (clamped to `2..=8`).
    pub max_leaves: usize,
    /// Most gates of a window before it stops growing.
    pub max_gates: usize,
    /// Conflicts the SAT solver may spend on one window size.
    pub conflict_limit: u64,
    /// Use satisfiability and observability don't-cares.
    pub dont_cares: bool,
    /// Passes over the whole circuit (a pass that saves nothing ends it).
    pub max_rounds: usize,
    /// Wall-clock budget (`None`: unlimited).
    pub timeout: Option<Duration>,
}

impl Default for WindowParams {
    fn default() -> Self {
        WindowParams {
            max_leaves: 6,
            max_gates: 10,
            conflict_limit: 20_000,
            dont_cares: true,
            max_rounds: 3,
            timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// What [`resynthesize_windows`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    /// Passes run.
    pub rounds: usize,
    /// Windows handed to the SAT solver.
    pub windows: usize,
    /// SAT calls (one per size tried).
    pub sat_calls: usize,
    /// Windows replaced by a smaller circuit.
    pub replaced: usize,
    /// Gates saved in all.
    pub gates_removed: usize,
    /// Whether the budget ran out.
    pub timed_out: bool,
    /// Wall-clock time spent.
    pub seconds: f64,
}

/// A convex set of gates, the signals it reads, and the gates read from
/// outside it.
#[derive(Debug, Clone)]
struct Window {
    gates: Vec<usize>,
    leaves: Vec<Signal>,
    outputs: Vec<usize>,
}

/// Where each gate is read: by which gates, and whether by a circuit output.
struct Readers {
    by_gates: Vec<Vec<usize>>,
    by_output: Vec<bool>,
}

impl Readers {
    fn of(c: &Circuit) -> Readers {
        let mut by_gates = vec![Vec::new(); c.num_gates()];
        for (i, g) in c.gates().iter().enumerate() {
            for s in &g.args {
                if let Signal::Gate(a) = *s {
                    if by_gates[a].last() != Some(&i) {
                        by_gates[a].push(i);
                    }
                }
            }
        }
        let mut by_output = vec![false; c.num_gates()];
        for (_, s) in c.outputs() {
            if let Signal::Gate(g) = *s {
                by_output[g] = true;
            }
        }
        Readers { by_gates, by_output }
    }
}

/// Every gate's value on every row, for circuits small enough to enumerate.
struct Simulation {
    words: usize,
    /// Valid-row mask (the last word may be partial).
    mask: Vec<u64>,
    inputs: Vec<Vec<u64>>,
    gates: Vec<Vec<u64>>,
}

impl Simulation {
    fn of(c: &Circuit) -> Option<Simulation> {
        let n = c.inputs().len();
        if n > COMPLETE_SIM_MAX_INPUTS {
            return None;
        }
        let rows = 1usize << n;
        let words = rows.div_ceil(64);
        let inputs: Vec<Vec<u64>> = (0..n).map(|i| var_column(i, words)).collect();
        let gates = c.gate_columns(&inputs, words);
        let mut mask = vec![!0u64; words];
        if !rows.is_multiple_of(64) {
            mask[words - 1] = (1u64 << rows) - 1;
        }
        Some(Simulation {
            words,
            mask,
            inputs,
            gates,
        })
    }

    fn column(&self, s: Signal) -> Vec<u64> {
        match s {
            Signal::Const(b) => vec![if b { !0 } else { 0 }; self.words],
            Signal::Input(i) => self.inputs[i].clone(),
            Signal::Gate(g) => self.gates[g].clone(),
        }
    }

    /// Rows on which flipping gate `root` changes some circuit output.
    fn observable(&self, c: &Circuit, root: usize) -> Vec<u64> {
        let mut flipped: Vec<Option<Vec<u64>>> = vec![None; c.num_gates()];
        flipped[root] = Some(self.gates[root].iter().map(|w| !w).collect());
        for (i, g) in c.gates().iter().enumerate().skip(root + 1) {
            if !g.args.iter().any(|s| matches!(s, Signal::Gate(a) if flipped[*a].is_some())) {
                continue;
            }
            let fetch = |s: Signal, w: usize| match s {
                Signal::Const(b) => {
                    if b {
                        !0
                    } else {
                        0
                    }
                }
                Signal::Input(k) => self.inputs[k][w],
                Signal::Gate(a) => flipped[a].as_ref().map_or(self.gates[a][w], |v| v[w]),
            };
            let col = (0..self.words)
                .map(|w| {
                    let a = g.args.first().map_or(0, |&s| fetch(s, w));
                    let b = g.args.get(1).map_or(0, |&s| fetch(s, w));
                    g.op.apply_word(a, b)
                })
                .collect();
            flipped[i] = Some(col);
        }
        let mut seen = vec![0u64; self.words];
        for (_, s) in c.outputs() {
            if let Signal::Gate(g) = *s {
                if let Some(f) = &flipped[g] {
                    for ((o, a), b) in seen.iter_mut().zip(f).zip(&self.gates[g]) {
                        *o |= a ^ b;
                    }
                }
            }
        }
        for (o, m) in seen.iter_mut().zip(&self.mask) {
            *o &= m;
        }
        seen
    }
}

/// Grows a window from `root` by repeatedly absorbing the gate leaf whose
/// expansion adds the fewest leaves, then adds outside gates computed from
/// the window's own signals (they may share logic with it). `None` if the
/// result is not convex or too small to gain from.
fn grow(c: &Circuit, readers: &Readers, root: usize, max_leaves: usize, max_gates: usize) -> Option<Window> {
    let gates = c.gates();
    let mut inside: BTreeSet<usize> = BTreeSet::from([root]);
    let leaves_of = |inside: &BTreeSet<usize>| -> Vec<Signal> {
        let mut ls: Vec<Signal> = Vec::new();
        for &g in inside {
            for &s in &gates[g].args {
                let outside = match s {
                    Signal::Const(_) => false,
                    Signal::Input(_) => true,
                    Signal::Gate(a) => !inside.contains(&a),
                };
                if outside && !ls.contains(&s) {
                    ls.push(s);
                }
            }
        }
        ls
    };
    let mut leaves = leaves_of(&inside);
    while inside.len() < max_gates {
        let mut best: Option<(usize, usize)> = None;
        for &l in &leaves {
            if let Signal::Gate(g) = l {
                inside.insert(g);
                let count = leaves_of(&inside).len();
                inside.remove(&g);
                // Fewest leaves first; among equals the gate nearest the root.
                if count <= max_leaves && best.is_none_or(|(bc, bg)| count < bc || (count == bc && g > bg)) {
                    best = Some((count, g));
                }
            }
        }
        let Some((_, g)) = best else { break };
        inside.insert(g);
        leaves = leaves_of(&inside);
    }
    // Gates outside computed only from the window and its leaves: they may
    // share logic with it (a sum beside a carry), which only a window with
    // several outputs can exploit.
    for (i, g) in gates.iter().enumerate() {
        if inside.len() >= max_gates {
            break;
        }
        if inside.contains(&i) || g.args.is_empty() {
            continue;
        }
        let covered = g.args.iter().all(|s| match s {
            Signal::Const(_) => true,
            Signal::Input(_) => leaves.contains(s),
            Signal::Gate(a) => inside.contains(a) || leaves.contains(s),
        });
        if covered {
            inside.insert(i);
        }
    }
    let leaves = leaves_of(&inside);
    if leaves.len() < 2 || leaves.len() > max_leaves {
        return None;
    }
    let mut members: Vec<usize> = inside.iter().copied().collect();
    members.sort_unstable();
    // Convexity: no leaf may depend on a window gate through outside logic.
    let hi = *members.last()?;
    let mut tainted = vec![false; hi + 1];
    for i in members[0]..=hi {
        if !inside.contains(&i) {
            tainted[i] = gates[i]
                .args
                .iter()
                .any(|s| matches!(s, Signal::Gate(a) if inside.contains(a) || (*a <= hi && tainted[*a])));
        }
    }
    if leaves.iter().any(|s| matches!(s, Signal::Gate(a) if *a <= hi && tainted[*a])) {
        return None;
    }
    let outputs: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&g| readers.by_output[g] || readers.by_gates[g].iter().any(|r| !inside.contains(r)))
        .collect();
    if outputs.is_empty() {
        return None;
    }
    Some(Window {
        gates: members,
        leaves,
        outputs,
    })
}

/// The window's outputs as truth tables over its leaf patterns (bit `p` of
/// the table is the value on the pattern whose bit `i` is leaf `i`).
fn local_tables(c: &Circuit, w: &Window) -> Vec<Vec<u64>> {
    let rows = 1usize << w.leaves.len();
    let words = rows.div_ceil(64);
    let mut vals: HashMap<usize, Vec<u64>> = HashMap::new();
    let value = |s: Signal, vals: &HashMap<usize, Vec<u64>>| -> Vec<u64> {
        if let Some(i) = w.leaves.iter().position(|l| *l == s) {
            return var_column(i, words);
        }
        match s {
            Signal::Const(b) => vec![if b { !0 } else { 0 }; words],
            Signal::Gate(g) => vals[&g].clone(),
            Signal::Input(_) => unreachable!("every input a window reads is one of its leaves"),
        }
    };
    for &g in &w.gates {
        let e = &c.gates()[g];
        let a = e.args.first().map(|&s| value(s, &vals));
        let b = e.args.get(1).map(|&s| value(s, &vals));
        let col = (0..words)
            .map(|k| e.op.apply_word(a.as_ref().map_or(0, |v| v[k]), b.as_ref().map_or(0, |v| v[k])))
            .collect();
        vals.insert(g, col);
    }
    w.outputs.iter().map(|g| vals[g].clone()).collect()
}

/// The leaf patterns the window must get right: all of them, or (with a
/// complete simulation) those that occur, restricted for a single-output
/// window to rows where its output is observed.
fn care_patterns(c: &Circuit, w: &Window, sim: Option<&Simulation>) -> Vec<u64> {
    let all = || (0..1u64 << w.leaves.len()).collect();
    let Some(sim) = sim else { return all() };
    let cols: Vec<Vec<u64>> = w.leaves.iter().map(|&l| sim.column(l)).collect();
    let mut care = sim.mask.clone();
    if w.outputs.len() == 1 {
        let obs = sim.observable(c, w.outputs[0]);
        for (m, o) in care.iter_mut().zip(&obs) {
            *m &= o;
        }
    }
    let mut seen = vec![false; 1 << w.leaves.len()];
    for (k, &m) in care.iter().enumerate() {
        let mut bits = m;
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let p = cols
                .iter()
                .enumerate()
                .fold(0usize, |acc, (i, col)| acc | ((col[k] >> b & 1) as usize) << i);
            seen[p] = true;
        }
    }
    (0..seen.len() as u64).filter(|&p| seen[p as usize]).collect()
}

/// `c` with window `w` replaced by `sub` (a circuit over the window's leaves
/// whose outputs are the window's outputs in order), simplified.
fn splice(c: &Circuit, w: &Window, sub: &Circuit) -> Circuit {
    let gates = c.gates();
    let inside: HashSet<usize> = w.gates.iter().copied().collect();
    let (lo, hi) = (w.gates[0], *w.gates.last().expect("windows are not empty"));
    let mut tainted = vec![false; gates.len()];
    for i in lo..=hi {
        if !inside.contains(&i) {
            tainted[i] = gates[i]
                .args
                .iter()
                .any(|s| matches!(s, Signal::Gate(a) if inside.contains(a) || tainted[*a]));
        }
    }
    let mut out = Circuit::new(c.inputs().to_vec());
    let mut map: Vec<Option<Signal>> = vec![None; gates.len()];
    let tr = |map: &[Option<Signal>], s: Signal| match s {
        Signal::Gate(g) => map[g].expect("a gate is placed before its readers"),
        other => other,
    };
    let copy = |out: &mut Circuit, map: &mut [Option<Signal>], i: usize| {
        let e = &gates[i];
        let args: Vec<Signal> = e.args.iter().map(|&s| tr(map, s)).collect();
        map[i] = Some(out.push(GateExpr { op: e.op, args }).expect("arguments already placed"));
    };
    // Logic the window does not depend on and that does not depend on it
    // goes first, then the replacement, then the logic reading the window.
    for (i, &t) in tainted.iter().enumerate().take(hi) {
        if !inside.contains(&i) && !t {
            copy(&mut out, &mut map, i);
        }
    }
    let leaves: Vec<Signal> = w.leaves.iter().map(|&l| tr(&map, l)).collect();
    let outs = out.append(sub, &leaves).expect("the replacement reads only the window's leaves");
    for (k, &g) in w.outputs.iter().enumerate() {
        // The SAT engine names the window's outputs o0, o1, … in order.
        let at = sub.outputs().iter().position(|(n, _)| *n == format!("o{k}"));
        map[g] = Some(outs[at.expect("the replacement has every window output")]);
    }
    for (i, &t) in tainted.iter().enumerate().skip(lo) {
        if !inside.contains(&i) && (i > hi || t) {
            copy(&mut out, &mut map, i);
        }
    }
    for (name, s) in c.outputs() {
        out.set_output(name, tr(&map, *s)).expect("outputs read placed signals");
    }
    out.simplify()
}

/// A table over the window's leaves: one row per care pattern.
fn window_table(w: &Window, tables: &[Vec<u64>], care: &[u64]) -> Table {
    let inputs = (0..w.leaves.len()).map(|i| format!("l{i}")).collect();
    let outputs = (0..w.outputs.len()).map(|j| format!("o{j}")).collect();
    let rows = care
        .iter()
        .map(|&p| Row {
            inputs: p,
            outputs: tables
                .iter()
                .enumerate()
                .fold(0u64, |acc, (j, t)| acc | (t[p as usize / 64] >> (p % 64) & 1) << j),
            line: None,
        })
        .collect();
    Table::from_rows("window", inputs, outputs, rows)
}

/// The solver asked for windows: many small instances, each under the
/// conflict limit the pass was tuned with on batsat. With CaDiCaL there,
/// `learn` ended larger on four suite functions and smaller on none
/// (BENCHMARKS.md, "Input symmetries and CaDiCaL").
const WINDOW_SOLVER: SatSolver = SatSolver::Batsat;

/// How [`downward`] searches: the conflict cap per size, the deadline, the
/// solver threads and kind, and whether to prove the result minimum.
#[derive(Clone, Copy)]
struct Downward<'a> {
    conflicts: Option<u64>,
    deadline: Option<Instant>,
    threads: usize,
    solver: SatSolver,
    prove: bool,
    /// The gate count of a circuit held elsewhere (a local search running
    /// beside this one), which may shrink meanwhile: the search goes below
    /// it, leaving any size it is solving once that size is beaten.
    known: Option<&'a Arc<AtomicUsize>>,
}

/// Searches downward from `size - 1` for a circuit of `table`, keeping the
/// smallest found. Returns it (if any) and, with `prove`, whether the last
/// size is proven minimum.
///
/// A refuted size alone proves nothing about the sizes below it: the
/// encoding's symmetry rules keep only circuits of the minimum size, so
/// one size below a circuit can be refuted while a smaller circuit exists
/// (two-input AND: 1 gate, no rule-abiding circuit of 2, one of 3). With
/// `prove`, a refuted size is followed by an upward search over every
/// smaller size, which either finds the minimum or completes the proof.
fn downward(table: &Table, size: usize, how: Downward, calls: &mut usize) -> (Option<Circuit>, bool) {
    let Downward {
        conflicts,
        deadline,
        threads,
        solver,
        prove,
        known,
    } = how;
    let mut best: Option<Circuit> = None;
    let mut k = size;
    let beaten = |k: usize| known.is_some_and(|u| u.load(Ordering::Relaxed) < k);
    while k > 0 {
        if let Some(u) = known {
            k = k.min(u.load(Ordering::Relaxed));
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return (best, false);
        }
        let params = SatParams {
            basis: Basis::all(),
            min_gates: k - 1,
            max_gates: k - 1,
            timeout: left,
            conflict_limit: conflicts,
            threads,
            solver,
            // Windows are small instances capped in conflicts: a cap per
            // cube would multiply it, and building a solver per cube costs
            // more than these instances take to solve.
            cubes: false,
            // A window asks for one size below a circuit it holds, not for
            // the first size above refuted ones; re-bracketing, like every
            // symmetry rule, keeps a circuit only of the smallest size, so
            // it turns some of these sizes unsatisfiable (the rewrite
            // test's windows removed 78 gates with it, 81 without).
            rebracketing: false,
            // Restriction bounds hold for every circuit, but each call would
            // first solve the window with each input fixed: worth it only
            // for the few calls of a whole table that is to be proven.
            restrictions: prove,
            known_upper_bound: known.cloned(),
            ..SatParams::default()
        };
        *calls += 1;
        let Ok(r) = synthesize(table, &params) else {
            return (best, false);
        };
        match r.circuit {
            Some(found) if found.num_gates() < k => {
                k = found.num_gates();
                best = Some(found);
            }
            // Left (or never started) because a circuit of this size turned
            // up beside: go on below that one.
            None if beaten(k) => {}
            // Below the lower bound (nothing tried) or refuted.
            None if !r.timed_out && !prove => return (best, false),
            None if !r.timed_out => {
                if k < 2 {
                    return (best, true);
                }
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let params = SatParams {
                    max_gates: k - 2,
                    timeout: left,
                    conflict_limit: conflicts,
                    threads,
                    solver,
                    ..SatParams::default()
                };
                *calls += 1;
                return match synthesize(table, &params) {
                    Ok(r) if r.circuit.is_some() => (r.circuit, true),
                    Ok(r) => (best, !r.timed_out),
                    Err(_) => (best, false),
                };
            }
            _ => return (best, false),
        }
    }
    (best, true)
}

/// Replaces windows of `circuit` by smaller circuits found by SAT, keeping
/// the function. Never returns more gates than `circuit.simplify()`.
pub fn resynthesize_windows(circuit: &Circuit, params: &WindowParams) -> (Circuit, WindowStats) {
    let start = Instant::now();
    let deadline = params.timeout.and_then(|t| start.checked_add(t));
    let max_leaves = params.max_leaves.clamp(2, 8);
    let mut stats = WindowStats::default();
    let mut c = circuit.simplify();
    let mut tried: HashSet<Vec<GateExpr>> = HashSet::new();
    'rounds: for _ in 0..params.max_rounds {
        stats.rounds += 1;
        let round_start = c.num_gates();
        let mut root = 0;
        let mut readers = Readers::of(&c);
        let mut sim = if params.dont_cares { Simulation::of(&c) } else { None };
        while root < c.num_gates() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stats.timed_out = true;
                break 'rounds;
            }
            let Some(w) = grow(&c, &readers, root, max_leaves, params.max_gates) else {
                root += 1;
                continue;
            };
            root += 1;
            // One gate shrinks only to a constant or a leaf, which needs
            // don't-cares.
            if w.gates.len() == 1 && sim.is_none() {
                continue;
            }
            // The same window (as gate expressions) fails the same way again.
            let key: Vec<GateExpr> = w.gates.iter().map(|&g| c.gates()[g].clone()).collect();
            if !tried.insert(key) {
                continue;
            }
            let tables = local_tables(&c, &w);
            let care = care_patterns(&c, &w, sim.as_ref());
            if care.is_empty() {
                continue;
            }
            let table = window_table(&w, &tables, &care);
            stats.windows += 1;
            let how = Downward {
                conflicts: Some(params.conflict_limit),
                deadline,
                threads: 1,
                solver: WINDOW_SOLVER,
                prove: false,
                known: None,
            };
            let (found, _) = downward(&table, w.gates.len(), how, &mut stats.sat_calls);
            let Some(sub) = found else { continue };
            let candidate = splice(&c, &w, &sub);
            if candidate.num_gates() < c.num_gates() {
                stats.replaced += 1;
                stats.gates_removed += c.num_gates() - candidate.num_gates();
                c = candidate;
                readers = Readers::of(&c);
                sim = if params.dont_cares { Simulation::of(&c) } else { None };
                root = root.saturating_sub(w.gates.len());
            }
        }
        if c.num_gates() >= round_start {
            break;
        }
    }
    stats.seconds = start.elapsed().as_secs_f64();
    (c, stats)
}

/// Most inputs for which [`exact_whole`] runs (the SAT instance has one
/// set of simulation variables per row).
pub const EXACT_WHOLE_MAX_INPUTS: usize = 8;

/// Most gates for which [`exact_whole`] runs.
pub const EXACT_WHOLE_MAX_GATES: usize = 30;

/// What [`exact_whole`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExactWholeStats {
    /// Sizes handed to the SAT solver.
    pub sat_calls: usize,
    /// Gates saved.
    pub gates_removed: usize,
    /// Whether the result is proven minimum (every smaller size was refuted).
    pub proven_minimum: bool,
    /// Wall-clock time spent.
    pub seconds: f64,
}

/// Resynthesises the whole function of a small circuit (at most
/// [`EXACT_WHOLE_MAX_INPUTS`] inputs and [`EXACT_WHOLE_MAX_GATES`] gates) by
/// SAT, downward from its size: one gate fewer, then fewer again, until a
/// size is refuted or the budget ends. After a refuted size, an upward
/// search over the smaller sizes finds the minimum or proves the last
/// circuit minimum (a refuted size alone does not: see `downward`).
/// Returns `circuit.simplify()` unchanged when it is out of range.
pub fn exact_whole(circuit: &Circuit, timeout: Option<Duration>, conflict_limit: Option<u64>) -> (Circuit, ExactWholeStats) {
    exact_whole_beside(circuit, timeout, conflict_limit, None)
}

/// [`exact_whole`] beside another search for smaller circuits of the same
/// function, which publishes each one's gate count in `known`: sizes at or
/// above it are skipped (or left mid-solve), and the result's proof, when
/// [`ExactWholeStats::proven_minimum`] says there is one, is for the smaller
/// of the circuit returned and the one `known` counts.
pub fn exact_whole_beside(
    circuit: &Circuit,
    timeout: Option<Duration>,
    conflict_limit: Option<u64>,
    known: Option<&Arc<AtomicUsize>>,
) -> (Circuit, ExactWholeStats) {
    let start = Instant::now();
    let deadline = timeout.and_then(|t| start.checked_add(t));
    let c = circuit.simplify();
    let mut stats = ExactWholeStats::default();
    if c.inputs().len() > EXACT_WHOLE_MAX_INPUTS || c.num_gates() > EXACT_WHOLE_MAX_GATES || c.num_gates() == 0 {
        stats.seconds = start.elapsed().as_secs_f64();
        return (c, stats);
    }
    let Some(table) = complete_table(&c) else {
        return (c, stats);
    };
    // One instance per size, each possibly long: a portfolio over the
    // machine's cores (windows, many small instances, stay single).
    let threads = crate::exact_sat::portfolio_threads();
    let how = Downward {
        conflicts: conflict_limit,
        deadline,
        threads,
        solver: SatSolver::Cadical,
        prove: true,
        known,
    };
    let (found, proven) = downward(&table, c.num_gates(), how, &mut stats.sat_calls);
    stats.proven_minimum = proven;
    let best = match found {
        Some(f) if f.num_gates() < c.num_gates() => {
            stats.gates_removed = c.num_gates() - f.num_gates();
            f
        }
        _ => c,
    };
    stats.seconds = start.elapsed().as_secs_f64();
    (best, stats)
}
