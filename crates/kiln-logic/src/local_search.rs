//! Local search for smaller circuits: given a circuit that matches a table,
//! look for one with fewer gates by evolving gate lists of one gate fewer.
//!
//! This is the (1 + λ) evolution strategy of Cartesian genetic programming
//! (Miller), as Vasicek and Sekanina use it to resynthesise circuits: a
//! genome is a fixed-length list of gates, each with two fanins among the
//! earlier signals and a two-input operator of the basis, plus the signal
//! each output reads. Its fitness is the number of care bits it gets wrong.
//! Each generation mutates a few genes of the parent in `λ` ways and keeps
//! the best child when it is no worse than the parent, so the search drifts
//! across plateaus of equal fitness instead of stalling on them; that
//! neutral drift is what makes the method work on circuits.
//!
//! To go from `s` gates to fewer, the search removes one gate of the best
//! circuit (its readers read one of its fanins instead), and evolves that
//! `s - 1` gate list until it is exact again. A search that stalls restarts
//! from another removal, after some neutral drift of the best circuit
//! itself so that the restarts do not all begin from the same wiring.
//!
//! Why not SAT alone: the SAT engine refutes sizes well but finds the
//! circuits of random 5-input functions slowly. At 10 and 11 gates, where
//! such functions have circuits, it found none of `rand5_1`'s in 120 s,
//! while truth tables of 32 rows evaluate in a few nanoseconds a gate, so a
//! local search tries millions of gate lists a second. It proves nothing:
//! [`crate::search()`] runs it for the upper bound and SAT for the lower one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::circuit::{gate_from_truth_table, Circuit, GateExpr, Op, Signal};
use crate::search::{basis_code_table, Basis};
use crate::table::{SplitMix64, Table};
use crate::verify::verify;

/// Limits and knobs for [`shrink`].
#[derive(Debug, Clone)]
pub struct LocalSearchParams {
    /// Gate operations allowed; every gate of the result is in this basis.
    pub basis: Basis,
    /// Wall-clock budget (`None` = until `max_generations`).
    pub timeout: Option<Duration>,
    /// Generations in all (`None` = until the timeout). With neither
    /// limit the search stops at `lower_bound`.
    pub max_generations: Option<u64>,
    /// Stop once a circuit of this many gates is found (a proven lower
    /// bound, or 0).
    pub lower_bound: usize,
    /// Children per generation, the `λ` of (1 + λ).
    pub offspring: usize,
    /// Generations without a strictly better child before the search
    /// restarts from another gate removal.
    pub stall: u64,
    /// Seed of the random choices; the same seed and limits give the same
    /// result when the budget is in generations (and one thread).
    pub seed: u64,
    /// Independent searches run at once, seeded `seed`, `seed + 1`, …; the
    /// smallest result wins. Restarts are cheap and their outcomes vary
    /// widely (`rand5_1`'s 10-gate circuit came after 22 s on one seed of
    /// four, none of the others found it in 30 s), so idle cores are best
    /// spent on more of them.
    pub threads: usize,
    /// Restarts in a row without a smaller circuit after which the search
    /// gives up (`None` = never; it runs to its limits). For a search
    /// running alone, where no proof says when to stop.
    pub patience: Option<u64>,
    /// Set by another thread to stop the search early (it returns the best
    /// circuit so far).
    pub stop: Option<Arc<AtomicBool>>,
    /// Where the gate count of each smaller circuit is published as soon as
    /// it is found (only ever lowered), for a search running beside this one.
    pub progress: Option<Arc<AtomicUsize>>,
}

impl Default for LocalSearchParams {
    fn default() -> Self {
        LocalSearchParams {
            basis: Basis::all(),
            timeout: Some(Duration::from_secs(1)),
            max_generations: None,
            lower_bound: 0,
            offspring: 4,
            stall: 100_000,
            seed: 0x6b69_6c6e,
            threads: 1,
            patience: None,
            stop: None,
            progress: None,
        }
    }
}

/// What [`shrink`] did.
#[derive(Debug, Clone, Default)]
pub struct LocalSearchStats {
    /// Generations run, over all restarts.
    pub generations: u64,
    /// Restarts, each from a fresh gate removal.
    pub restarts: u64,
    /// Gate count of the circuit given (after simplification).
    pub gates_before: usize,
    /// Gate count of the circuit returned.
    pub gates_after: usize,
    /// Each smaller circuit found: its gates and the seconds it took.
    pub improvements: Vec<(usize, f64)>,
    /// Wall-clock time spent.
    pub seconds: f64,
}

/// Why [`shrink`] could not start.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LocalSearchError {
    /// The circuit given does not match the table on some care row, or
    /// does not fit it (inputs or outputs missing).
    #[error("local search needs a circuit that matches the table: {0}")]
    Mismatch(String),
    /// The circuit uses an operation outside the basis, which the search
    /// could not keep.
    #[error("local search: gate {gate} uses {op}, which is not in the basis {basis}")]
    OutsideBasis {
        /// 0-based gate index.
        gate: usize,
        /// The operation's name.
        op: &'static str,
        /// The basis, comma-separated.
        basis: String,
    },
}

/// One gate of a genome: fanins as signal indices (leaves first, then
/// gates) and a two-input truth table (bit `2a + b` = f(a, b)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gene {
    a: u32,
    b: u32,
    tt: u8,
}

#[derive(Debug, Clone)]
struct Genome {
    gates: Vec<Gene>,
    /// Signal each evolved output reads.
    outs: Vec<u32>,
}

/// The fixed parts of one search: leaf values, targets, care mask, the
/// operators allowed.
struct Problem {
    words: usize,
    /// Leaf signals: constants (when the circuit uses them) then inputs.
    leaves: usize,
    /// Values of the leaves, `words` each.
    leaf_vals: Vec<u64>,
    /// Targets of the evolved outputs, `words` each.
    targets: Vec<u64>,
    mask: Vec<u64>,
    tts: Vec<u8>,
    /// For the truth tables the basis writes, the op and whether its
    /// arguments are swapped.
    codes: [Option<(Op, bool)>; 16],
    not: bool,
    constants: bool,
}

#[inline]
fn apply(tt: u8, a: u64, b: u64) -> u64 {
    match tt {
        1 => !(a | b),
        2 => !a & b,
        3 => !a,
        4 => a & !b,
        5 => !b,
        6 => a ^ b,
        7 => !(a & b),
        8 => a & b,
        9 => !(a ^ b),
        10 => b,
        11 => !a | b,
        12 => a,
        13 => a | !b,
        14 => a | b,
        15 => !0,
        _ => 0,
    }
}

impl Problem {
    /// Values of every signal of `g` into `vals`, recomputing gates from
    /// `from` on (the ones before are already there).
    fn eval(&self, g: &Genome, vals: &mut Vec<u64>, from: usize) {
        let w = self.words;
        vals.resize((self.leaves + g.gates.len()) * w, 0);
        if from == 0 {
            vals[..self.leaves * w].copy_from_slice(&self.leaf_vals);
        }
        for (i, gene) in g.gates.iter().enumerate().skip(from) {
            let (a, b, o) = (gene.a as usize * w, gene.b as usize * w, (self.leaves + i) * w);
            for k in 0..w {
                vals[o + k] = apply(gene.tt, vals[a + k], vals[b + k]);
            }
        }
    }

    fn errors(&self, g: &Genome, vals: &[u64]) -> u64 {
        let w = self.words;
        let mut e = 0u64;
        for (j, &s) in g.outs.iter().enumerate() {
            let s = s as usize * w;
            for k in 0..w {
                e += ((vals[s + k] ^ self.targets[j * w + k]) & self.mask[k]).count_ones() as u64;
            }
        }
        e
    }

    /// Which gates the outputs read, directly or not.
    fn active(&self, g: &Genome) -> Vec<bool> {
        let mut act = vec![false; g.gates.len()];
        let mut stack: Vec<usize> = g.outs.iter().map(|&s| s as usize).collect();
        while let Some(s) = stack.pop() {
            if s < self.leaves || act[s - self.leaves] {
                continue;
            }
            let i = s - self.leaves;
            act[i] = true;
            let gene = g.gates[i];
            if reads_a(gene.tt) {
                stack.push(gene.a as usize);
            }
            if reads_b(gene.tt) {
                stack.push(gene.b as usize);
            }
        }
        act
    }

    fn random_signal(&self, rng: &mut SplitMix64, below: usize) -> u32 {
        // Constants are rarely useful; they stay reachable but are not
        // drawn as often as the inputs and gates.
        let first = if self.constants && !rng.next_u64().is_multiple_of(8) {
            2
        } else {
            0
        };
        let first = first.min(below - 1);
        (first + (rng.next_u64() % (below - first) as u64) as usize) as u32
    }

    fn mutate(&self, g: &mut Genome, rng: &mut SplitMix64) -> usize {
        let t = g.gates.len();
        let genes = 3 * t + g.outs.len();
        let mut first = t;
        // One gene, then more with halving probability (at most four).
        let mut count = 1;
        while count < 4 && rng.next_u64() & 1 == 1 {
            count += 1;
        }
        for _ in 0..count {
            let pick = (rng.next_u64() % genes as u64) as usize;
            if pick >= 3 * t {
                let j = pick - 3 * t;
                g.outs[j] = self.leaves as u32 + (rng.next_u64() % t as u64) as u32;
                continue;
            }
            let i = pick / 3;
            let below = self.leaves + i;
            match pick % 3 {
                0 => g.gates[i].a = self.random_signal(rng, below),
                1 => g.gates[i].b = self.random_signal(rng, below),
                _ => {
                    let tt = self.tts[(rng.next_u64() % self.tts.len() as u64) as usize];
                    g.gates[i].tt = tt;
                }
            }
            first = first.min(i);
        }
        first
    }

    /// The circuit of the active gates of `g`, outputs named as `template`'s.
    fn decode(&self, g: &Genome, template: &Circuit, evolved: &[usize]) -> Circuit {
        let act = self.active(g);
        let mut c = Circuit::new(template.inputs().to_vec());
        let mut map: Vec<Signal> = Vec::with_capacity(self.leaves + g.gates.len());
        if self.constants {
            map.push(Signal::Const(false));
            map.push(Signal::Const(true));
        }
        let n = self.leaves - map.len();
        map.extend((0..n).map(Signal::Input));
        for (i, gene) in g.gates.iter().enumerate() {
            if !act[i] {
                map.push(Signal::Const(false));
                continue;
            }
            let (a, b) = (map[gene.a as usize], map[gene.b as usize]);
            let expr = if gene.tt == 0b0011 && self.not {
                GateExpr {
                    op: Op::Not,
                    args: vec![a],
                }
            } else {
                match self.codes[gene.tt as usize] {
                    Some((op, false)) => GateExpr { op, args: vec![a, b] },
                    Some((op, true)) => GateExpr { op, args: vec![b, a] },
                    None => gate_from_truth_table(gene.tt, a, b),
                }
            };
            map.push(c.push(expr).expect("fanins precede the gate"));
        }
        for (j, (name, s)) in template.outputs().iter().enumerate() {
            let s = match evolved.iter().position(|&e| e == j) {
                Some(k) => map[g.outs[k] as usize],
                None => *s,
            };
            c.set_output(name, s).expect("signals exist");
        }
        c
    }
}

fn reads_a(tt: u8) -> bool {
    (tt >> 2 & 3) != (tt & 3)
}

fn reads_b(tt: u8) -> bool {
    (tt & 0b0101) != ((tt >> 1) & 0b0101)
}

/// Looks for a circuit with fewer gates than `circuit` that still matches
/// `table` on every care row, for the time or generations `params` allow.
///
/// Returns the smallest circuit found (the simplified original when none
/// is smaller), verified against the table, with what the search did.
///
/// ```
/// use kiln_logic::local_search::{shrink, LocalSearchParams};
/// use kiln_logic::{parse, Table};
///
/// // Majority of three written with five gates; four suffice.
/// let table = Table::from_fn(&["a", "b", "c"], &["y"], |x| vec![x.iter().filter(|&&v| v).count() >= 2]);
/// let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// let text = "Z1 = a AND b\nZ2 = a AND c\nZ3 = b AND c\nZ4 = Z1 OR Z2\ny = Z4 OR Z3";
/// let c = parse(text, &names(&["a", "b", "c"]), &names(&["y"])).unwrap();
/// let params = LocalSearchParams { timeout: None, max_generations: Some(200_000), lower_bound: 4, ..Default::default() };
/// let (smaller, stats) = shrink(&table, &c, &params).unwrap();
/// assert_eq!(smaller.num_gates(), 4);
/// assert_eq!(stats.gates_before, 5);
/// ```
pub fn shrink(table: &Table, circuit: &Circuit, params: &LocalSearchParams) -> Result<(Circuit, LocalSearchStats), LocalSearchError> {
    if params.threads <= 1 {
        return shrink_one(table, circuit, params);
    }
    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..params.threads.min(crate::MAX_THREADS) as u64)
            .map(|i| {
                let p = LocalSearchParams {
                    seed: params.seed.wrapping_add(i),
                    threads: 1,
                    ..params.clone()
                };
                scope.spawn(move || shrink_one(table, circuit, &p))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("local search thread panicked"))
            .collect()
    });
    let mut best: Option<(Circuit, LocalSearchStats)> = None;
    let mut generations = 0;
    let mut restarts = 0;
    for r in results {
        let (c, s) = r?;
        generations += s.generations;
        restarts += s.restarts;
        if best.as_ref().is_none_or(|(b, _)| c.num_gates() < b.num_gates()) {
            best = Some((c, s));
        }
    }
    let (c, mut stats) = best.expect("at least two threads ran");
    stats.generations = generations;
    stats.restarts = restarts;
    stats.seconds = start.elapsed().as_secs_f64();
    Ok((c, stats))
}

/// Runs `work`, an exact search on the same function, with a local search
/// shrinking `job`'s circuit beside it on one more thread for as long as
/// `work` runs (`None`: `work` alone). The local search publishes each
/// smaller circuit's gate count in `known`, for `work` to read, and is
/// stopped when `work` returns; its own limits in `params` still apply.
/// Returns `work`'s result and the local search's circuit when smaller than
/// the one it started from.
pub fn beside<R>(
    job: Option<(&Table, &Circuit)>,
    params: LocalSearchParams,
    known: &Arc<AtomicUsize>,
    work: impl FnOnce() -> R,
) -> (R, Option<Circuit>) {
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        let local = job.map(|(table, circuit)| {
            let p = LocalSearchParams {
                stop: Some(stop.clone()),
                progress: Some(known.clone()),
                ..params
            };
            scope.spawn(move || {
                shrink(table, circuit, &p)
                    .ok()
                    .map(|(c, _)| c)
                    .filter(|c| c.num_gates() < circuit.num_gates())
            })
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        (result, local.and_then(|h| h.join().ok()).flatten())
    })
}

fn shrink_one(table: &Table, circuit: &Circuit, params: &LocalSearchParams) -> Result<(Circuit, LocalSearchStats), LocalSearchError> {
    let start = Instant::now();
    let deadline = params.timeout.and_then(|t| start.checked_add(t));
    let given = circuit.simplify();
    match verify(&given, table) {
        Ok(v) if v.ok() => {}
        Ok(_) => return Err(LocalSearchError::Mismatch("it differs from the table on some row".into())),
        Err(e) => return Err(LocalSearchError::Mismatch(e.to_string())),
    }
    let mut stats = LocalSearchStats {
        gates_before: given.num_gates(),
        gates_after: given.num_gates(),
        ..Default::default()
    };
    let finish = |c: Circuit, mut stats: LocalSearchStats| {
        stats.gates_after = c.num_gates();
        stats.seconds = start.elapsed().as_secs_f64();
        Ok((c, stats))
    };
    let words = table.words();
    let mask = table.row_mask();
    let constants = given.gates().iter().flat_map(|g| &g.args).any(|s| matches!(s, Signal::Const(_)));
    let mut leaf_vals = Vec::new();
    if constants {
        leaf_vals.extend(std::iter::repeat_n(0u64, words));
        leaf_vals.extend(std::iter::repeat_n(!0u64, words));
    }
    for name in given.inputs() {
        let i = table
            .input_index(name)
            .ok_or_else(|| LocalSearchError::Mismatch(format!("input '{name}' is not a column of the table")))?;
        leaf_vals.extend_from_slice(table.input_bits(i));
    }
    let leaves = leaf_vals.len() / words;
    // Outputs read straight from a constant or an input stay as they are.
    let evolved: Vec<usize> = (0..given.outputs().len())
        .filter(|&j| matches!(given.outputs()[j].1, Signal::Gate(_)))
        .collect();
    let mut targets = Vec::new();
    for &j in &evolved {
        let name = &given.outputs()[j].0;
        let col = table
            .output_index(name)
            .ok_or_else(|| LocalSearchError::Mismatch(format!("output '{name}' is not a column of the table")))?;
        targets.extend_from_slice(table.output_bits(col));
    }
    let codes = basis_code_table(&params.basis);
    let not = params.basis.contains(Op::Not);
    let mut tts: Vec<u8> = (0..16u8).filter(|&t| codes[t as usize].is_some()).collect();
    if not {
        tts.push(0b0011);
    }
    let p = Problem {
        words,
        leaves,
        leaf_vals,
        targets,
        mask,
        tts,
        codes,
        not,
        constants,
    };
    // The given circuit as a genome: every gate must be a basis operator.
    let mut best = Genome {
        gates: Vec::with_capacity(given.num_gates()),
        outs: Vec::new(),
    };
    let index = |s: Signal| -> u32 {
        match s {
            Signal::Const(v) => v as u32,
            Signal::Input(i) => ((constants as usize) * 2 + i) as u32,
            Signal::Gate(g) => (leaves + g) as u32,
        }
    };
    // Simplification writes a negation as NOT even where the basis spells
    // it `x NAND x` or `x NOR x`; a gene reading one signal twice does that.
    let negation = p.tts.iter().copied().find(|&t| t & 0b1001 == 0b0001);
    for (i, g) in given.gates().iter().enumerate() {
        let (a, b) = match g.args.as_slice() {
            [a, b] => (index(*a), index(*b)),
            [a] => (index(*a), index(*a)),
            _ => (0, 0),
        };
        let tt = match g.op {
            Op::Not if !not => negation,
            Op::Not => Some(0b0011),
            op if g.args.len() == 2 => Some(op.truth_table()).filter(|&t| codes[t as usize].is_some()),
            _ => None,
        };
        let Some(tt) = tt else {
            return Err(LocalSearchError::OutsideBasis {
                gate: i,
                op: g.op.name(),
                basis: params.basis.to_string(),
            });
        };
        best.gates.push(Gene { a, b, tt });
    }
    best.outs = evolved.iter().map(|&j| index(given.outputs()[j].1)).collect();
    if evolved.is_empty() || best.gates.len() <= params.lower_bound.max(1) {
        return finish(given, stats);
    }

    let mut rng = SplitMix64::new(params.seed);
    // Children are kept for a generation: a count past any use is clamped, not allocated.
    let lambda = params.offspring.clamp(1, 1 << 16);
    let stopped = || params.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
    let out_of_time = |gens: u64| {
        params.max_generations.is_some_and(|m| gens >= m)
            || (gens.is_multiple_of(256) && (deadline.is_some_and(|d| Instant::now() >= d) || stopped()))
    };
    let mut vals = Vec::new();
    let mut child_vals = Vec::new();
    let mut best_vals = Vec::new();
    let mut fruitless = 0u64;
    'sizes: while best.gates.len() > params.lower_bound.max(1) {
        // Neutral drift of the best circuit: children that stay exact
        // replace it, so each restart removes a gate from a new wiring.
        p.eval(&best, &mut best_vals, 0);
        for _ in 0..(params.stall / 8).max(1) {
            if out_of_time(stats.generations) {
                break 'sizes;
            }
            stats.generations += 1;
            let mut child = best.clone();
            let from = p.mutate(&mut child, &mut rng);
            child_vals.clone_from(&best_vals);
            p.eval(&child, &mut child_vals, from);
            if p.errors(&child, &child_vals) == 0 {
                std::mem::swap(&mut best, &mut child);
                std::mem::swap(&mut best_vals, &mut child_vals);
            }
        }
        let mut parent = remove_gate(&best, p.leaves, &mut rng);
        p.eval(&parent, &mut vals, 0);
        let mut parent_err = p.errors(&parent, &vals);
        let mut since_better = 0u64;
        let mut kids: Vec<Genome> = vec![parent.clone(); lambda];
        let mut kid_vals: Vec<Vec<u64>> = vec![Vec::new(); lambda];
        while parent_err > 0 {
            if out_of_time(stats.generations) {
                break 'sizes;
            }
            stats.generations += 1;
            since_better += 1;
            if since_better > params.stall {
                stats.restarts += 1;
                fruitless += 1;
                if params.patience.is_some_and(|p| fruitless >= p) {
                    break 'sizes;
                }
                continue 'sizes;
            }
            let mut pick = 0;
            let mut pick_err = u64::MAX;
            for (k, (kid, kv)) in kids.iter_mut().zip(kid_vals.iter_mut()).enumerate() {
                kid.clone_from(&parent);
                let from = p.mutate(kid, &mut rng);
                kv.clone_from(&vals);
                p.eval(kid, kv, from);
                let e = p.errors(kid, kv);
                if e <= pick_err {
                    pick = k;
                    pick_err = e;
                }
            }
            if pick_err <= parent_err {
                if pick_err < parent_err {
                    since_better = 0;
                }
                parent_err = pick_err;
                std::mem::swap(&mut parent, &mut kids[pick]);
                std::mem::swap(&mut vals, &mut kid_vals[pick]);
            }
        }
        // Exact again: keep only the gates the outputs read.
        fruitless = 0;
        best = compact(&parent, &p);
        stats.improvements.push((best.gates.len(), start.elapsed().as_secs_f64()));
        if let Some(progress) = &params.progress {
            progress.fetch_min(best.gates.len(), Ordering::Relaxed);
        }
    }
    let c = p.decode(&best, &given, &evolved).remove_dead();
    if c.num_gates() < given.num_gates() && verify(&c, table).is_ok_and(|v| v.ok()) {
        finish(c, stats)
    } else {
        finish(given, stats)
    }
}

/// `g` without one gate, chosen at random: its readers and outputs read
/// one of its fanins instead.
fn remove_gate(g: &Genome, leaves: usize, rng: &mut SplitMix64) -> Genome {
    let t = g.gates.len();
    let r = (rng.next_u64() % t as u64) as usize;
    let gone = g.gates[r];
    let keep_a = if !reads_b(gone.tt) {
        true
    } else if !reads_a(gone.tt) {
        false
    } else {
        rng.next_u64() & 1 == 0
    };
    let replacement = if keep_a { gone.a } else { gone.b };
    let removed = (leaves + r) as u32;
    let fix = |s: u32| -> u32 {
        match s.cmp(&removed) {
            std::cmp::Ordering::Less => s,
            std::cmp::Ordering::Equal => replacement,
            std::cmp::Ordering::Greater => s - 1,
        }
    };
    let gates = g
        .gates
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != r)
        .map(|(_, gene)| Gene {
            a: fix(gene.a),
            b: fix(gene.b),
            tt: gene.tt,
        })
        .collect();
    let outs = g.outs.iter().map(|&s| fix(s)).collect();
    Genome { gates, outs }
}

/// `g` with its inactive gates dropped and the rest renumbered.
fn compact(g: &Genome, p: &Problem) -> Genome {
    let act = p.active(g);
    let mut new_index: Vec<u32> = (0..p.leaves as u32).collect();
    let mut gates = Vec::new();
    for (i, gene) in g.gates.iter().enumerate() {
        if act[i] {
            new_index.push((p.leaves + gates.len()) as u32);
            gates.push(Gene {
                a: new_index[gene.a as usize],
                b: new_index[gene.b as usize],
                tt: gene.tt,
            });
        } else {
            // Never read by an active gate; any index will do.
            new_index.push(0);
        }
    }
    let outs = g.outs.iter().map(|&s| new_index[s as usize]).collect();
    Genome { gates, outs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_reads_match_truth_tables() {
        for tt in 0..16u8 {
            let depends_a = (0..2u64).any(|b| apply(tt, 0, b) & 1 != apply(tt, 1, b) & 1);
            let depends_b = (0..2u64).any(|a| apply(tt, a, 0) & 1 != apply(tt, a, 1) & 1);
            assert_eq!(reads_a(tt), depends_a, "{tt:#06b}");
            assert_eq!(reads_b(tt), depends_b, "{tt:#06b}");
            for (a, b) in [(0u64, 0u64), (0, 1), (1, 0), (1, 1)] {
                assert_eq!(apply(tt, a, b) & 1, u64::from(tt >> (2 * a + b) & 1), "{tt:#06b} at ({a}, {b})");
            }
        }
    }
}
