//! Resynthesis pipeline for any circuit: DAG-aware rewriting
//! ([`crate::rewrite`]) alternated with resubstitution
//! ([`crate::repair::shrink`]) until neither finds a saving or the time
//! budget is spent.
//!
//! The two passes see different things: rewriting replaces cones of at most
//! four leaves with optimal subcircuits but cannot merge logic across cut
//! boundaries, while resubstitution re-expresses a gate over *any* earlier
//! signals of the circuit. Resubstitution needs the circuit's complete truth
//! table (it takes the table as its care set), so it only runs on circuits
//! with few inputs; the table is the circuit's own, so the function never
//! changes.
//!
//! After that converges, SAT window resynthesis, and finally, for small
//! circuits, the whole-function SAT search with a local search beside it
//! ([`OptimiseParams::exact`], [`OptimiseParams::local_search`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::circuit::Circuit;
use crate::circuit::{Op, BINARY_OPS};
use crate::local_search::{self, LocalSearchParams};
use crate::repair::{shrink, SHRINK_MAX_GATES};
use crate::rewrite::{rewrite, RewriteParams};
use crate::search::Basis;
use crate::symmetric::symmetric_circuit;
use crate::table::{Row, Table, MAX_OUTPUTS};
use crate::window_sat::{exact_whole_beside, resynthesize_windows, WindowParams, EXACT_WHOLE_MAX_GATES, EXACT_WHOLE_MAX_INPUTS};

/// Resubstitution is skipped when one pass would take more word operations
/// than this (about a second).
const RESUB_WORK_LIMIT: u64 = 1 << 30;

/// Parameters of [`optimise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptimiseParams {
    /// Parameters of each rewriting call (its timeout is capped by the
    /// pipeline's remaining time).
    pub rewrite: RewriteParams,
    /// Resubstitution runs only on circuits with at most this many inputs
    /// (at most 16; its cost grows with the `2^n` rows of the complete table
    /// and the cube of the gate count, and a pass that would take more than
    /// about a second is skipped).
    pub resub_max_inputs: usize,
    /// Most rewrite + resubstitution iterations per convergence.
    pub max_iterations: usize,
    /// Zero-gain reshaping attempts after convergence (each kept only if it
    /// leads to a smaller circuit).
    pub perturbations: usize,
    /// Wall-clock budget for the whole pipeline (`None`: unlimited).
    pub timeout: Option<Duration>,
    /// Also resynthesise from the circuit's truth table (at most
    /// [`RESTRUCTURE_MAX_INPUTS`] inputs) and keep the smaller result.
    pub restructure: bool,
    /// SAT-based window resynthesis after rewriting converges (`None`: off).
    /// Its timeout is capped by the pipeline's remaining time.
    pub windows: Option<WindowParams>,
    /// For circuits of at most [`EXACT_WHOLE_MAX_INPUTS`] inputs and
    /// [`EXACT_WHOLE_MAX_GATES`] gates, finally ask SAT for the whole function
    /// with fewer gates, downward until a size is refuted (proving the result
    /// minimum) or the remaining time ends.
    pub exact: bool,
    /// For circuits of at most [`LOCAL_SEARCH_MAX_INPUTS`] inputs, finally
    /// look for smaller circuits by local search ([`crate::local_search`]),
    /// beside the whole-function SAT search when that runs (which it caps
    /// with each circuit found, and which ends it), or alone until
    /// [`LOCAL_SEARCH_PATIENCE`] restarts in a row find nothing.
    pub local_search: bool,
}

/// Most inputs for which [`optimise`] runs the local search (its truth
/// tables have `2^n` rows).
pub const LOCAL_SEARCH_MAX_INPUTS: usize = 12;

/// Restarts in a row without a smaller circuit after which a local search
/// running without SAT beside it gives up.
pub const LOCAL_SEARCH_PATIENCE: u64 = 60;

/// Most inputs for which [`optimise`] also starts over from the truth table.
pub const RESTRUCTURE_MAX_INPUTS: usize = 12;

impl Default for OptimiseParams {
    fn default() -> Self {
        OptimiseParams {
            rewrite: RewriteParams::default(),
            resub_max_inputs: 16,
            max_iterations: 10,
            perturbations: 3,
            timeout: Some(Duration::from_secs(30)),
            restructure: true,
            windows: Some(WindowParams::default()),
            exact: true,
            local_search: true,
        }
    }
}

/// What [`optimise`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OptimiseStats {
    /// Iterations run.
    pub iterations: usize,
    /// Gates of the simplified input.
    pub gates_before: usize,
    /// Gates of the result.
    pub gates_after: usize,
    /// Gates removed by rewriting in the kept results.
    pub removed_by_rewrite: usize,
    /// Gates removed by resubstitution in the kept results.
    pub removed_by_resub: usize,
    /// Rewriting replacements applied (including discarded attempts).
    pub replacements: usize,
    /// Zero-gain reshapings that led to a smaller circuit.
    pub perturbations_kept: usize,
    /// Whether the time budget ran out.
    pub timed_out: bool,
    /// The result came from the truth table rather than the given structure.
    pub restructured: bool,
    /// Gates saved by restructuring beyond what rewriting and resubstitution of the given
    /// structure reached (so `gates_before − gates_after` is the sum of the `removed_by_`).
    pub removed_by_restructure: usize,
    /// Gates saved by SAT-based window resynthesis (and the rewriting it enabled).
    pub removed_by_windows: usize,
    /// Windows replaced by SAT-found circuits.
    pub windows_replaced: usize,
    /// Gates saved by whole-function SAT resynthesis.
    pub removed_by_exact: usize,
    /// Gates removed by the local search beyond what the SAT search beside
    /// it reached.
    pub removed_by_local_search: usize,
    /// The result is proven minimum by SAT (a circuit one gate smaller was refuted).
    pub proven_minimum: bool,
    /// Wall-clock time.
    pub seconds: f64,
}

/// The complete truth table of `c` (its own inputs and outputs), or `None`
/// when it has more than 16 inputs, more outputs than a table holds, or no
/// outputs.
pub fn complete_table(c: &Circuit) -> Option<Table> {
    let n = c.inputs().len();
    let m = c.outputs().len();
    if n > 16 || m > MAX_OUTPUTS || m == 0 {
        return None;
    }
    let rows = 1usize << n;
    let words = rows.div_ceil(64);
    // Input i is bit i of the row number.
    let cols: Vec<Vec<u64>> = (0..n).map(|i| crate::cuts::var_column(i, words)).collect();
    let outs = c.eval_columns(&cols, words);
    let table_rows = (0..rows)
        .map(|r| Row {
            inputs: r as u64,
            outputs: outs
                .iter()
                .enumerate()
                .fold(0u64, |acc, (j, o)| acc | ((o[r / 64] >> (r % 64)) & 1) << j),
            line: None,
        })
        .collect();
    let names = c.outputs().iter().map(|(n, _)| n.clone()).collect();
    Some(Table::from_rows("circuit", c.inputs().to_vec(), names, table_rows))
}

/// Optimises `circuit` for gate count (NOT counted as a gate). The result
/// computes the same function and never has more gates than
/// `circuit.simplify()`.
///
/// First rewriting and resubstitution alternate until neither saves a gate.
/// Then, up to [`OptimiseParams::perturbations`] times, the best circuit so
/// far is reshaped by one round of zero-gain rewriting (ABC's `rwz`: equal
/// size, different structure) and optimised again; the result is kept only
/// when it is smaller, so this phase can only help.
pub fn optimise(circuit: &Circuit, params: &OptimiseParams) -> (Circuit, OptimiseStats) {
    let start = Instant::now();
    // A timeout too large to add to the clock means no deadline.
    let deadline = params.timeout.and_then(|t| start.checked_add(t));
    let original = circuit.simplify();
    let mut stats = OptimiseStats {
        gates_before: original.num_gates(),
        ..Default::default()
    };
    let mut best = converge(original.clone(), params, deadline, &mut stats);
    // Rewriting keeps the structure it is given. For few inputs, also start
    // over from the function itself (a shared Shannon expansion of the
    // circuit's own truth table) and keep whichever converges smaller: a
    // learned circuit can sit in a poor structure that local moves never leave.
    if params.restructure && !stats.timed_out && original.inputs().len() <= RESTRUCTURE_MAX_INPUTS {
        if let Some(table) = complete_table(&original) {
            // A symmetric function also starts over from a counter (see
            // `symmetric`): sharing across outputs that no local move finds.
            let starts = [
                crate::search::fallback(&table, &crate::search::Basis::all(), usize::MAX).ok(),
                symmetric_circuit(&table, remaining(Some(Duration::from_secs(2)), deadline)),
            ];
            for alt in starts.into_iter().flatten() {
                if stats.timed_out {
                    break;
                }
                let mut trial = stats;
                let candidate = converge(alt, params, deadline, &mut trial);
                stats.iterations = trial.iterations;
                stats.replacements = trial.replacements;
                stats.timed_out = trial.timed_out;
                if candidate.num_gates() < best.num_gates() {
                    stats.restructured = true;
                    stats.removed_by_restructure += best.num_gates() - candidate.num_gates();
                    best = candidate;
                }
            }
        }
    }
    // Reshaping comes after the restarts from the function, so it also works on their result.
    for _ in 0..params.perturbations {
        if stats.timed_out || best.num_gates() == 0 {
            break;
        }
        let zero = RewriteParams {
            allow_zero_gain: true,
            max_rounds: 1,
            timeout: remaining(params.rewrite.timeout, deadline),
            ..params.rewrite
        };
        let (reshaped, rs) = rewrite(&best, &zero);
        stats.replacements += rs.replacements;
        if rs.replacements == 0 {
            break;
        }
        let mut trial = stats;
        trial.removed_by_rewrite += best.num_gates().saturating_sub(reshaped.num_gates());
        let candidate = converge(reshaped, params, deadline, &mut trial);
        if candidate.num_gates() < best.num_gates() {
            stats = trial;
            stats.perturbations_kept += 1;
            best = candidate;
        } else {
            // Work spent on a discarded attempt still counts; its savings do not.
            stats.iterations = trial.iterations;
            stats.replacements = trial.replacements;
            stats.timed_out = trial.timed_out;
            break;
        }
    }
    if let Some(wp) = params.windows {
        // Windows first reshape what rewriting converged to; rewriting then
        // gets another go at the new structure.
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stats.timed_out = true;
                break;
            }
            let before = best.num_gates();
            let wp = WindowParams {
                timeout: remaining(wp.timeout, deadline),
                ..wp
            };
            let (w, ws) = resynthesize_windows(&best, &wp);
            stats.windows_replaced += ws.replaced;
            if ws.timed_out {
                stats.timed_out = true;
            }
            if w.num_gates() >= before {
                break;
            }
            let mut trial = stats;
            let c = converge(w, params, deadline, &mut trial);
            stats.iterations = trial.iterations;
            stats.replacements = trial.replacements;
            stats.timed_out |= trial.timed_out;
            stats.removed_by_windows += before - c.num_gates();
            best = c;
            if stats.timed_out {
                break;
            }
        }
    }
    let exact = params.exact && best.inputs().len() <= EXACT_WHOLE_MAX_INPUTS && best.num_gates() <= EXACT_WHOLE_MAX_GATES;
    let local = params.local_search && best.inputs().len() <= LOCAL_SEARCH_MAX_INPUTS && best.num_gates() > 1;
    let left = remaining(None, deadline);
    if (exact || local) && left.is_none_or(|l| !l.is_zero()) {
        // The two searches run side by side: SAT refutes sizes and local
        // search finds circuits (a random 5-input function: 15 gates here,
        // 10 by local search in seconds, where SAT found no circuit of 14
        // in a minute). Each circuit found caps the SAT search, which skips
        // to the sizes below it, and a refutation there proves it minimum.
        let known = Arc::new(AtomicUsize::new(best.num_gates()));
        let table = if local { complete_table(&best) } else { None };
        let lp = LocalSearchParams {
            basis: Basis::new(&[BINARY_OPS.as_slice(), &[Op::Not]].concat()).expect("a valid basis"),
            timeout: left,
            patience: (!exact).then_some(LOCAL_SEARCH_PATIENCE),
            ..LocalSearchParams::default()
        };
        let (whole, shrunk) = local_search::beside(table.as_ref().map(|t| (t, &best)), lp, &known, || {
            exact.then(|| exact_whole_beside(&best, left, None, Some(&known)))
        });
        let before = best.num_gates();
        let whole_gates = whole.as_ref().map_or(usize::MAX, |(e, _)| e.num_gates());
        if let Some((e, es)) = whole {
            // The proof is for the smaller of SAT's circuit and the local search's.
            stats.proven_minimum = es.proven_minimum;
            if e.num_gates() < best.num_gates() {
                stats.removed_by_exact = best.num_gates() - e.num_gates();
                best = e;
            }
        }
        if let Some(l) = shrunk.filter(|l| l.num_gates() < best.num_gates()) {
            stats.removed_by_local_search = best.num_gates() - l.num_gates();
            best = l;
        }
        // The proof holds for the size SAT refuted below, the smaller of its
        // own circuit and the last one the local search published; a result
        // of any other size (a local circuit that failed its final check)
        // is not covered by it.
        let proven_size = whole_gates.min(known.load(Ordering::Relaxed));
        stats.proven_minimum &= best.num_gates() == proven_size;
        debug_assert!(best.num_gates() <= before);
        stats.timed_out |= deadline.is_some_and(|d| Instant::now() >= d);
    }
    // Last line of defence: a result that differs from the input on any
    // row (checked exhaustively where that is cheap) is discarded.
    if let (Some(a), Some(b)) = (complete_table(&original), complete_table(&best)) {
        if a.output_columns() != b.output_columns() {
            best = original;
        }
    }
    stats.gates_after = best.num_gates();
    stats.seconds = start.elapsed().as_secs_f64();
    (best, stats)
}

/// The smaller of a configured timeout and the time left before `deadline`.
fn remaining(timeout: Option<Duration>, deadline: Option<Instant>) -> Option<Duration> {
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match (timeout, left) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Alternates rewriting and resubstitution until neither saves a gate, the
/// iteration limit or the deadline.
fn converge(mut c: Circuit, params: &OptimiseParams, deadline: Option<Instant>, stats: &mut OptimiseStats) -> Circuit {
    let resub_ok = |c: &Circuit| {
        let n = c.inputs().len();
        let (g, words) = (c.num_gates() as u64, (1u64 << n.min(16)).div_ceil(64));
        // A pass compares each gate with the pairs of earlier signals over
        // every row: about words · g³ / 6 word operations.
        n <= params.resub_max_inputs.min(16) && c.num_gates() <= SHRINK_MAX_GATES && words * g * g * g / 6 <= RESUB_WORK_LIMIT
    };
    for _ in 0..params.max_iterations {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stats.timed_out = true;
            break;
        }
        stats.iterations += 1;
        let before = c.num_gates();
        let rp = RewriteParams {
            timeout: remaining(params.rewrite.timeout, deadline),
            ..params.rewrite
        };
        let (r, rs) = rewrite(&c, &rp);
        stats.replacements += rs.replacements;
        if r.num_gates() <= c.num_gates() {
            stats.removed_by_rewrite += c.num_gates() - r.num_gates();
            c = r;
        }
        if rs.timed_out {
            stats.timed_out = true;
            break;
        }
        if resub_ok(&c) {
            if let Some(table) = complete_table(&c) {
                let s = shrink(&c, &table);
                if s.num_gates() < c.num_gates() {
                    stats.removed_by_resub += c.num_gates() - s.num_gates();
                    c = s;
                }
            }
        }
        if c.num_gates() >= before {
            break;
        }
    }
    c
}
