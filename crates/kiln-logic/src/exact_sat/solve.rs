//! Running the SAT solvers: limits, one solver or a portfolio on one
//! instance, and the CaDiCaL and batsat adapters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use batsat::{lbool, Callbacks, Lit, SolverInterface, SolverOpts, Var};

use super::encode::Encoding;
use super::{SatSolver, SatStats};

/// Stops the solver at the deadline or after a number of conflicts. Every
/// learnt clause is one conflict, so counting them counts conflicts.
#[derive(Clone, Copy)]
pub(super) struct Limits<'a> {
    pub(super) deadline: Option<Instant>,
    pub(super) max_conflicts: Option<u64>,
    pub(super) conflicts: u64,
    /// Set when another solver of a portfolio has answered.
    pub(super) done: Option<&'a AtomicBool>,
    /// A circuit size known elsewhere and the size being solved: once a
    /// circuit that small exists, this size is no longer worth solving.
    pub(super) known: Option<(&'a AtomicUsize, usize)>,
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
    pub(super) fn stop_requested(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() > d)
            || self.done.is_some_and(|d| d.load(Ordering::Relaxed))
            || self.known.is_some_and(|(u, k)| u.load(Ordering::Relaxed) <= k)
    }
}

/// Result of one solver call.
pub(super) enum Answer {
    Sat(Vec<bool>),
    Unsat,
    Unknown,
}

/// Runs `threads` differently seeded solvers on `e` and returns the first
/// definite answer (all answers agree: the instance is the same).
pub(super) fn solve(e: &Encoding, limits: Limits, threads: usize, first: SatSolver, stats: &mut SatStats) -> Answer {
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
pub(super) fn on_threads<R: Send>(threads: usize, stats: &mut SatStats, work: impl Fn(usize, &mut SatStats) -> R + Sync) -> Vec<R> {
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

/// Stands in for CaDiCaL in builds without the `cadical` feature: a
/// differently seeded `batsat` for each portfolio member.
#[cfg(not(feature = "cadical"))]
pub(super) fn solve_cadical(e: &Encoding, units: &[i32], limits: Limits, _config: &str, member: usize, stats: &mut SatStats) -> Answer {
    solve_one(e, units, limits, if member == 0 { 0 } else { 100 + member }, stats)
}

/// Stops CaDiCaL whenever batsat would stop ([`Limits::stop_requested`]:
/// the deadline, another portfolio member's answer, a circuit found beside);
/// CaDiCaL polls this callback regularly during search. Its conflict cap is
/// applied by [`cadical_run`] instead.
#[cfg(feature = "cadical")]
pub(super) struct CadicalStop<'a>(Limits<'a>);

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
pub(super) const CADICAL_CONFIG: &str = "unsat";

/// One CaDiCaL call on `e` plus the unit clauses `units`, with the option
/// preset `config`. Its conflicts are not counted: the crate does not
/// expose the solver's statistics.
#[cfg(feature = "cadical")]
pub(super) fn solve_cadical(e: &Encoding, units: &[i32], limits: Limits, config: &str, _member: usize, _stats: &mut SatStats) -> Answer {
    match cadical_solver(e, units, &limits, config) {
        Some(mut solver) => cadical_run(e, &mut solver, limits.max_conflicts),
        None => Answer::Unknown,
    }
}

/// A CaDiCaL instance holding `e` and `units`, stopped whenever `limits`
/// would stop batsat; `None` if CaDiCaL rejects the preset `config` (its own
/// names).
#[cfg(feature = "cadical")]
pub(super) fn cadical_solver<'a>(
    e: &Encoding,
    units: &[i32],
    limits: &Limits<'a>,
    config: &str,
) -> Option<cadical::Solver<CadicalStop<'a>>> {
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
pub(super) fn cadical_run(e: &Encoding, solver: &mut cadical::Solver<CadicalStop>, max_conflicts: Option<u64>) -> Answer {
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

pub(super) fn solve_one(e: &Encoding, units: &[i32], limits: Limits, seed: usize, stats: &mut SatStats) -> Answer {
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
pub(super) fn batsat_solver<'a>(
    e: &Encoding,
    units: &[i32],
    limits: Limits<'a>,
    seed: usize,
) -> Option<(batsat::Solver<Limits<'a>>, Vec<Var>)> {
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
pub(super) fn batsat_run(solver: &mut batsat::Solver<Limits>, vars: &[Var]) -> Answer {
    let r = solver.solve_limited(&[]);
    if r == lbool::TRUE {
        Answer::Sat(vars.iter().map(|&v| solver.value_var(v) == lbool::TRUE).collect())
    } else if r == lbool::FALSE {
        Answer::Unsat
    } else {
        Answer::Unknown
    }
}

/// A solver without limits on `e` plus the unit clauses `cube`, for tests of the encoding's
/// parts.
#[cfg(test)]
pub(super) fn satisfiable(e: &Encoding, cube: &[i32]) -> bool {
    let limits = Limits {
        deadline: None,
        max_conflicts: None,
        conflicts: 0,
        done: None,
        known: None,
    };
    match solve_one(e, cube, limits, 0, &mut SatStats::default()) {
        Answer::Sat(_) => true,
        Answer::Unsat => false,
        Answer::Unknown => panic!("no limits were set"),
    }
}
