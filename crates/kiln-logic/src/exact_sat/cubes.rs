//! Cube and conquer (see the module notes of [`super`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::encode::{Encoding, Problem};
use batsat::{SolverInterface, Var};

use super::solve::{batsat_run, batsat_solver, on_threads, Answer, Limits};
#[cfg(feature = "cadical")]
use super::solve::{cadical_run, cadical_solver, CadicalStop, CADICAL_CONFIG};
use super::{SatSolver, SatStats};

impl Problem<'_> {
    /// The cubes of [`super::SatParams::cubes`]: one per fanin pair `(j, l)` the
    /// first gate may take, with its selection variable, or none (solve the whole
    /// instance) when the input symmetries leave fewer than two pairs per
    /// thread. Majority-5 leaves one; splitting it further by the first
    /// gate's operator refuted 8 gates a little faster (16.5 s against
    /// 22.8 s on two threads) but found no 9-gate circuit in 200 s, where the
    /// whole instance finds one in 41 s.
    pub(super) fn first_gate_cubes(&self, e: &Encoding, threads: usize) -> Vec<(usize, usize, i32)> {
        match e.sel.first() {
            Some(pairs) if e.k >= 2 => {
                let open: Vec<(usize, usize, i32)> = pairs.iter().copied().filter(|&(_, _, s)| !e.first_excluded.contains(&s)).collect();
                if open.len() >= threads.saturating_mul(2) {
                    open
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }
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
    pub(super) fn split<'b>(&self, e: &Encoding) -> Vec<Pending<'b>> {
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
pub(super) fn solve_cubes(
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
    pub(super) fn new(e: &Encoding, cube: &[i32], limits: Limits<'a>, kind: SatSolver) -> CubeSolver<'a> {
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
    pub(super) fn run(&mut self, e: &Encoding, conflicts: u64, stats: &mut SatStats) -> Answer {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact_sat::solve::satisfiable;
    use crate::search::Basis;
    use crate::table::SplitMix64;

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
}
