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
//! The solver is CaDiCaL (C++, through the `cadical` crate, built from its
//! bundled sources): on this encoding it refuted sizes 1.6× and found
//! circuits 3–5× faster than `batsat`, the pure-Rust MiniSat descendant
//! that stands in for it in builds without the `cadical` feature. Figures
//! in BENCHMARKS.md.
//!
//! One file per job: `encode` builds the CNF and decodes models,
//! `symmetry` finds and breaks symmetries, `restrict` computes the
//! restriction bounds, `solve` runs the solvers (one or a portfolio) and
//! `cubes` runs cube and conquer.

mod cubes;
mod encode;
mod restrict;
mod solve;
mod symmetry;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::circuit::Circuit;
use crate::search::{size_lower_bound, Basis};
use crate::table::Table;
use crate::verify::verify;

use cubes::solve_cubes;
use encode::Problem;
use restrict::restriction_bounds;
use solve::{solve, Answer, Limits};

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
    /// `min_gates` above `max_gates`: no size would be tried, and the lower bound reported would
    /// be the caller's own claim.
    #[error("min_gates ({min}) is above max_gates ({max})")]
    EmptyRange {
        /// The smallest size asked for.
        min: usize,
        /// The largest size asked for.
        max: usize,
    },
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
    if params.min_gates > params.max_gates {
        return Err(SatError::EmptyRange {
            min: params.min_gates,
            max: params.max_gates,
        });
    }
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
            p.first_gate_cubes(&e, params.threads.min(crate::MAX_THREADS))
        } else {
            Vec::new()
        };
        let answer = if cubes.is_empty() {
            solve(&e, limits, params.threads.min(crate::MAX_THREADS), params.solver, &mut stats)
        } else {
            solve_cubes(
                &e,
                &cubes,
                limits,
                params.threads.min(crate::MAX_THREADS),
                params.solver,
                &mut stats,
            )
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
