//! DAG-aware rewriting of gate circuits with precomputed optimal subcircuits
//! (after Mishchenko, Chatterjee & Brayton, "DAG-aware AIG rewriting", DAC
//! 2006, adapted from AIGs to circuits over all two-input gates).
//!
//! Each gate `v`, in topological order, looks at its cuts of at most four
//! leaves. The function of `v` over a cut's leaves belongs to one of the 222
//! NPN classes, whose minimum circuit is in [`crate::npn_library`]; mapped
//! onto the leaves (input permutation and negations folded into the gates'
//! tables) it is a candidate replacement for `v`. Its value is measured on
//! the whole DAG, not on the cone alone:
//!
//! * replacing `v` frees its *maximum fanout-free cone* above the leaves:
//!   the gates that only `v` (directly or through each other) reads, found
//!   by dereferencing reference counts;
//! * building the candidate costs only the gates that do not exist yet
//!   (structural hashing finds the others), plus existing gates that would
//!   otherwise have been freed.
//!
//! A class circuit can be wired onto the leaves in several ways, one per
//! symmetry of the class representative ([`crate::npn::automorphisms`]);
//! up to [`RewriteParams::structures`] distinct wirings are costed, since
//! each may reuse different existing gates.
//!
//! The best positive gain (or a zero gain, with
//! [`RewriteParams::allow_zero_gain`], which reshapes logic so that later
//! rounds may find gains) is applied at once: new gates are hashed in, `v`'s
//! readers are forwarded to the new root and the freed cone is deleted.
//! Rounds repeat until one makes no replacement, `max_rounds` is reached or
//! the time budget runs out.
//!
//! Gates are counted as kiln counts them: every gate, NOT included, costs 1.
//! Negations never need gates inside a replacement (they fold into the
//! two-input tables); only a replacement that is a negated leaf costs a NOT.
//!
//! Acyclicity: every node has a *rank* (its id for the nodes a round starts
//! with; the rank of the replaced root for gates built by a replacement).
//! Fanins have smaller ranks, except inside one replacement's own gates, so a
//! candidate may only use leaves and existing gates ranked below the root;
//! that rules out cycles through stale cuts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::circuit::{gate_from_truth_table, Circuit, GateExpr, Op, Signal};
use crate::cuts::{merge_cuts, Cut, CutParams, CutStats};
use crate::npn::{automorphisms, canonise, expand_to_4, optimum, NpnTransform, CONST_SIGNAL};

/// Parameters of [`rewrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewriteParams {
    /// Largest cut size tried (clamped to `2..=4`: the library covers 4-input functions).
    pub cut_size: usize,
    /// Priority cuts kept per node.
    pub cuts_per_node: usize,
    /// Most rounds over the whole circuit.
    pub max_rounds: usize,
    /// Wall-clock budget (`None`: unlimited). A round cut short still
    /// returns a correct circuit.
    pub timeout: Option<Duration>,
    /// Structurally different mappings of a class's circuit tried per cut
    /// (through the representative's symmetries; at least 1). More find
    /// more sharing with existing logic, at a proportional cost.
    pub structures: usize,
    /// Also apply replacements that save nothing (they can open up gains in
    /// later rounds). Rounds then only stop at `max_rounds` or when nothing
    /// at all changes.
    pub allow_zero_gain: bool,
}

impl Default for RewriteParams {
    fn default() -> Self {
        RewriteParams {
            cut_size: 4,
            cuts_per_node: 12,
            max_rounds: 20,
            timeout: Some(Duration::from_secs(10)),
            structures: 4,
            allow_zero_gain: false,
        }
    }
}

/// What [`rewrite`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RewriteStats {
    /// Rounds run (including the last one, which may have found nothing).
    pub rounds: usize,
    /// Gates of the simplified input circuit.
    pub gates_before: usize,
    /// Gates of the result.
    pub gates_after: usize,
    /// Replacements applied, over all rounds.
    pub replacements: usize,
    /// Cuts whose replacement was evaluated.
    pub cuts_evaluated: usize,
    /// Whether the time budget ran out.
    pub timed_out: bool,
    /// Wall-clock time.
    pub seconds: f64,
}

/// Rewrites `circuit` into an equivalent circuit with at most as many gates
/// (both counted after [`Circuit::simplify`]). Never fails: a circuit it
/// cannot improve comes back simplified.
pub fn rewrite(circuit: &Circuit, params: &RewriteParams) -> (Circuit, RewriteStats) {
    let start = Instant::now();
    // A timeout too large to add to the clock means no deadline.
    let deadline = params.timeout.and_then(|t| start.checked_add(t));
    let mut current = circuit.simplify();
    let mut stats = RewriteStats {
        gates_before: current.num_gates(),
        ..Default::default()
    };
    while stats.rounds < params.max_rounds {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stats.timed_out = true;
            break;
        }
        stats.rounds += 1;
        let mut net = Net::from_circuit(&current);
        let changes = net.round(params, deadline, &mut stats);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stats.timed_out = true;
        }
        let Some(next) = net.build_circuit(&current) else {
            break;
        };
        let next = next.simplify();
        let smaller = next.num_gates() < current.num_gates();
        if next.num_gates() <= current.num_gates() {
            current = next;
        }
        if changes == 0 || (!smaller && !params.allow_zero_gain) || stats.timed_out {
            break;
        }
    }
    stats.gates_after = current.num_gates();
    stats.seconds = start.elapsed().as_secs_f64();
    (current, stats)
}

const CONST0: u32 = 0;
const CONST1: u32 = 1;
/// Marker for "not built yet" while a candidate is only being costed.
const PLACEHOLDER: u32 = u32::MAX / 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Const,
    Input,
    /// A gate `tt(a, b)`; `a == b` encodes a NOT (`tt = 0b0011`).
    Gate {
        tt: u8,
        a: u32,
        b: u32,
    },
}

/// What a gate request reduces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Norm {
    /// An existing node (constant, argument or the negation folded away).
    Node(u32),
    /// A genuine gate with this normalised key (`a <= b`).
    Gate(u8, u32, u32),
}

/// The working network: nodes 0 and 1 are the constants, then the inputs,
/// then gates (no longer in topological order once replacements append).
struct Net {
    kinds: Vec<Kind>,
    /// Readers of each node, counting each argument slot and each output.
    refs: Vec<u32>,
    dead: Vec<bool>,
    /// Replacement of a node (itself if none).
    fwd: Vec<u32>,
    rank: Vec<u32>,
    strash: HashMap<(u8, u32, u32), u32>,
    cuts: Vec<Vec<Cut>>,
    outputs: Vec<u32>,
    num_inputs: usize,
    /// Scratch marks for cone computations.
    stamp: Vec<u32>,
    cur_stamp: u32,
}

/// A replacement: the library circuit mapped onto a cut.
#[derive(Clone, PartialEq, Eq)]
struct Plan {
    /// Gates `(tt, a, b)` over leaf node ids and `PLACEHOLDER + k` for step `k`.
    steps: Vec<(u8, u32, u32)>,
    /// Output: a node id or `PLACEHOLDER + k`; negated when the flag is set.
    output: u32,
    negate_output: bool,
}

fn swap_args(tt: u8) -> u8 {
    (tt & 0b1001) | ((tt & 0b0010) << 1) | ((tt & 0b0100) >> 1)
}

impl Net {
    fn from_circuit(c: &Circuit) -> Net {
        let n = c.inputs().len();
        let mut net = Net {
            kinds: vec![Kind::Const, Kind::Const],
            refs: vec![0, 0],
            dead: vec![false, false],
            fwd: vec![CONST0, CONST1],
            rank: vec![0, 1],
            strash: HashMap::new(),
            cuts: vec![vec![Cut::constant(false)], vec![Cut::constant(true)]],
            outputs: Vec::new(),
            num_inputs: n,
            stamp: vec![0, 0],
            cur_stamp: 0,
        };
        for i in 0..n {
            net.add_node(Kind::Input, 2 + i as u32);
        }
        let mut map: Vec<u32> = Vec::with_capacity(c.num_gates());
        let sig = |map: &Vec<u32>, s: Signal| match s {
            Signal::Const(false) => CONST0,
            Signal::Const(true) => CONST1,
            Signal::Input(i) => 2 + i as u32,
            Signal::Gate(g) => map.get(g).copied().unwrap_or(CONST0),
        };
        for g in c.gates() {
            let a = g.args.first().map_or(CONST0, |&s| sig(&map, s));
            let b = g.args.get(1).map_or(a, |&s| sig(&map, s));
            let tt = match g.op {
                Op::Not => 0b0011,
                Op::Buf => 0b1100,
                op => op.truth_table(),
            };
            let rank = net.kinds.len() as u32;
            let id = net.make_gate(tt, a, b, rank, None);
            map.push(id);
        }
        for (_, s) in c.outputs() {
            let id = sig(&map, *s);
            net.refs[id as usize] += 1;
            net.outputs.push(id);
        }
        net
    }

    fn add_node(&mut self, kind: Kind, rank: u32) -> u32 {
        let id = self.kinds.len() as u32;
        self.kinds.push(kind);
        self.refs.push(0);
        self.dead.push(false);
        self.fwd.push(id);
        self.rank.push(rank);
        self.stamp.push(0);
        self.cuts.push(vec![Cut::trivial(id)]);
        id
    }

    fn find(&mut self, mut x: u32) -> u32 {
        let mut root = x;
        while self.fwd[root as usize] != root {
            root = self.fwd[root as usize];
        }
        // Path compression keeps later lookups short.
        while self.fwd[x as usize] != root {
            let next = self.fwd[x as usize];
            self.fwd[x as usize] = root;
            x = next;
        }
        root
    }

    fn fanins(&self, x: u32) -> Option<(u32, u32)> {
        match self.kinds.get(x as usize) {
            Some(&Kind::Gate { a, b, .. }) => Some((a, b)),
            _ => None,
        }
    }

    fn is_gate(&self, x: u32) -> bool {
        matches!(self.kinds.get(x as usize), Some(Kind::Gate { .. }))
    }

    /// Reduces `tt(a, b)` (constants, repeated or ignored arguments, double
    /// negation) to an existing node or a normalised gate key. Placeholder
    /// ids are treated as ordinary gates.
    fn normalize(&self, tt: u8, a: u32, b: u32) -> Norm {
        let tt = tt & 0xF;
        let bit = |x: u8, y: u8| tt >> (2 * x + y) & 1 == 1;
        let unary = |x: u32, t0: bool, t1: bool| -> Norm {
            match (t0, t1) {
                (false, false) => Norm::Node(CONST0),
                (true, true) => Norm::Node(CONST1),
                (false, true) => Norm::Node(x),
                (true, false) => match x {
                    CONST0 => Norm::Node(CONST1),
                    CONST1 => Norm::Node(CONST0),
                    _ => match self.kinds.get(x as usize) {
                        Some(&Kind::Gate { tt: 0b0011, a, b }) if a == b => Norm::Node(a),
                        _ => Norm::Gate(0b0011, x, x),
                    },
                },
            }
        };
        if a <= CONST1 {
            let ca = (a == CONST1) as u8;
            return unary(b, bit(ca, 0), bit(ca, 1));
        }
        if b <= CONST1 {
            let cb = (b == CONST1) as u8;
            return unary(a, bit(0, cb), bit(1, cb));
        }
        if a == b {
            return unary(a, bit(0, 0), bit(1, 1));
        }
        if bit(0, 0) == bit(0, 1) && bit(1, 0) == bit(1, 1) {
            return unary(a, bit(0, 0), bit(1, 0));
        }
        if bit(0, 0) == bit(1, 0) && bit(0, 1) == bit(1, 1) {
            return unary(b, bit(0, 0), bit(0, 1));
        }
        if a > b {
            Norm::Gate(swap_args(tt), b, a)
        } else {
            Norm::Gate(tt, a, b)
        }
    }

    /// Returns the node computing `tt(a, b)`, creating (and hashing) a gate
    /// with the given rank if none exists. With `params`, a new gate's cuts
    /// are computed from its fanins' cuts.
    fn make_gate(&mut self, tt: u8, a: u32, b: u32, rank: u32, params: Option<(&CutParams, &mut CutStats)>) -> u32 {
        match self.normalize(tt, a, b) {
            Norm::Node(x) => x,
            Norm::Gate(tt, a, b) => {
                if let Some(&x) = self.strash.get(&(tt, a, b)) {
                    return x;
                }
                let id = self.add_node(Kind::Gate { tt, a, b }, rank);
                self.refs[a as usize] += 1;
                self.refs[b as usize] += 1;
                self.strash.insert((tt, a, b), id);
                if let Some((p, st)) = params {
                    self.compute_cuts(id, p, st);
                }
                id
            }
        }
    }

    fn compute_cuts(&mut self, v: u32, params: &CutParams, stats: &mut CutStats) {
        let Some(Kind::Gate { tt, a, b }) = self.kinds.get(v as usize).copied() else {
            return;
        };
        let mut cuts = vec![Cut::trivial(v)];
        cuts.extend(merge_cuts(tt, &self.cuts[a as usize], &self.cuts[b as usize], params, stats));
        self.cuts[v as usize] = cuts;
    }

    /// Drops one reference to `x`, deleting it and (iteratively) every gate
    /// only it kept alive.
    fn deref(&mut self, x: u32) {
        let mut stack = vec![x];
        while let Some(x) = stack.pop() {
            let r = &mut self.refs[x as usize];
            *r = r.saturating_sub(1);
            if *r == 0 && self.is_gate(x) && !self.dead[x as usize] && self.fwd[x as usize] == x {
                self.dead[x as usize] = true;
                if let Some(Kind::Gate { tt, a, b }) = self.kinds.get(x as usize).copied() {
                    if self.strash.get(&(tt, a, b)) == Some(&x) {
                        self.strash.remove(&(tt, a, b));
                    }
                    let (fa, fb) = (self.find(a), self.find(b));
                    stack.push(fa);
                    stack.push(fb);
                }
            }
        }
    }

    /// Points every reader of `v` at `r` and deletes `v`'s freed cone.
    fn substitute(&mut self, v: u32, r: u32) {
        if v == r {
            return;
        }
        let moved = self.refs[v as usize];
        self.refs[r as usize] += moved;
        self.fwd[v as usize] = r;
        if let Some(Kind::Gate { tt, a, b }) = self.kinds.get(v as usize).copied() {
            if self.strash.get(&(tt, a, b)) == Some(&v) {
                self.strash.remove(&(tt, a, b));
            }
            self.refs[v as usize] = 0;
            self.dead[v as usize] = true;
            let (fa, fb) = (self.find(a), self.find(b));
            self.deref(fa);
            self.deref(fb);
        }
    }

    /// Gates freed if `v` lost all its readers, stopping at `leaves`
    /// (reference counts are restored afterwards). Marks them with a new stamp.
    fn mffc(&mut self, v: u32, leaves: &[u32]) -> usize {
        self.cur_stamp = self.cur_stamp.wrapping_add(1).max(1);
        let stamp = self.cur_stamp;
        let mut cone = Vec::new();
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            if self.stamp[x as usize] == stamp {
                continue;
            }
            self.stamp[x as usize] = stamp;
            cone.push(x);
            if let Some((a, b)) = self.fanins(x) {
                for f in [a, b] {
                    let f = self.find(f);
                    let r = &mut self.refs[f as usize];
                    *r = r.saturating_sub(1);
                    if *r == 0 && self.is_gate(f) && !leaves.contains(&f) {
                        stack.push(f);
                    }
                }
            }
        }
        for &x in &cone {
            if let Some((a, b)) = self.fanins(x) {
                for f in [a, b] {
                    let f = self.find(f);
                    self.refs[f as usize] += 1;
                }
            }
        }
        cone.len()
    }

    /// Maps the library circuit for class `class` onto `leaves` through `t`
    /// (which takes the cut's function to the class representative).
    fn plan(&self, leaves: &[u32], class: u8, t: &NpnTransform) -> Option<Plan> {
        let entry = optimum(class)?;
        // Library input j reads leaf perm[j], negated when bit j is set.
        let input = |j: u8| -> Option<(u32, bool)> {
            let leaf = *leaves.get(usize::from(*t.perm.get(usize::from(j))?))?;
            Some((leaf, t.input_negations >> j & 1 == 1))
        };
        let negate = t.output_negated ^ entry.output_negated;
        let mut steps = Vec::with_capacity(entry.gates.len());
        for (k, &(tt, a, b)) in entry.gates.iter().enumerate() {
            let arg = |s: u8| -> Option<(u32, bool)> {
                if s < 4 {
                    input(s)
                } else {
                    Some((PLACEHOLDER + u32::from(s - 4), false))
                }
            };
            let ((x, nx), (y, ny)) = (arg(a)?, arg(b)?);
            let mut tt = tt;
            if nx {
                tt = ((tt >> 2) & 0b0011) | ((tt << 2) & 0b1100);
            }
            if ny {
                tt = ((tt >> 1) & 0b0101) | ((tt << 1) & 0b1010);
            }
            // Output negation folds into the last gate, which is the output.
            if negate && k + 1 == entry.gates.len() && usize::from(entry.output) == 4 + k {
                tt ^= 0xF;
            }
            steps.push((tt, x, y));
        }
        let (output, negate_output) = if entry.output == CONST_SIGNAL {
            (if negate { CONST1 } else { CONST0 }, false)
        } else if entry.output < 4 {
            let (leaf, neg) = input(entry.output)?;
            (leaf, neg ^ negate)
        } else {
            let k = u32::from(entry.output - 4);
            let folded = negate && usize::from(entry.output) == 3 + entry.gates.len();
            (PLACEHOLDER + k, negate && !folded)
        };
        Some(Plan {
            steps,
            output,
            negate_output,
        })
    }

    /// Gates `plan` would add at root `v` (existing gates in the marked cone
    /// count as added: they would otherwise be freed), or `None` if it would
    /// use a node not ranked below `v` or leave `v` as it is.
    fn cost(&self, plan: &Plan, v: u32) -> Option<usize> {
        let stamp = self.cur_stamp;
        let limit = self.rank[v as usize];
        let mut resolved: Vec<u32> = Vec::with_capacity(plan.steps.len());
        let mut counted: Vec<u32> = Vec::new();
        let mut cost = 0usize;
        let mut next_new = 0u32;
        let resolve = |resolved: &Vec<u32>, x: u32| -> u32 {
            if (PLACEHOLDER..PLACEHOLDER * 2).contains(&x) {
                resolved.get((x - PLACEHOLDER) as usize).copied().unwrap_or(x)
            } else {
                x
            }
        };
        // New gates get ids past every real node so they never hit the hash.
        let fresh_base = PLACEHOLDER * 2 - 64;
        let mut lookup = |tt: u8, a: u32, b: u32, cost: &mut usize, counted: &mut Vec<u32>| -> Option<u32> {
            match self.normalize(tt, a, b) {
                Norm::Node(x) => Some(x),
                Norm::Gate(tt, a, b) => {
                    let hit = if a >= fresh_base || b >= fresh_base {
                        None
                    } else {
                        self.strash.get(&(tt, a, b)).copied()
                    };
                    match hit {
                        Some(x) => {
                            if self.rank[x as usize] >= limit && x != v {
                                return None;
                            }
                            if self.stamp[x as usize] == stamp && !counted.contains(&x) {
                                counted.push(x);
                                *cost += 1;
                            }
                            Some(x)
                        }
                        None => {
                            *cost += 1;
                            next_new += 1;
                            Some(fresh_base + next_new)
                        }
                    }
                }
            }
        };
        for &(tt, a, b) in &plan.steps {
            let (a, b) = (resolve(&resolved, a), resolve(&resolved, b));
            let x = lookup(tt, a, b, &mut cost, &mut counted)?;
            resolved.push(x);
        }
        let mut out = resolve(&resolved, plan.output);
        if plan.negate_output {
            out = lookup(0b0011, out, out, &mut cost, &mut counted)?;
        }
        // Rebuilding v as itself changes nothing; reusing v inside its own
        // replacement would make a cycle.
        if out == v || resolved.contains(&v) {
            return None;
        }
        Some(cost)
    }

    /// Builds `plan` for root `v` and substitutes it.
    fn apply(&mut self, plan: &Plan, v: u32, params: &CutParams, stats: &mut CutStats) {
        let rank = self.rank[v as usize];
        let mut built: Vec<u32> = Vec::with_capacity(plan.steps.len());
        let resolve = |built: &Vec<u32>, x: u32| -> u32 {
            if x >= PLACEHOLDER {
                built.get((x - PLACEHOLDER) as usize).copied().unwrap_or(CONST0)
            } else {
                x
            }
        };
        for &(tt, a, b) in &plan.steps {
            let (a, b) = (resolve(&built, a), resolve(&built, b));
            let x = self.make_gate(tt, a, b, rank, Some((params, &mut *stats)));
            built.push(x);
        }
        let mut out = resolve(&built, plan.output);
        if plan.negate_output {
            out = self.make_gate(0b0011, out, out, rank, Some((params, &mut *stats)));
        }
        // The new root must outlive the substitution's dereferencing.
        self.refs[out as usize] += 1;
        self.substitute(v, out);
        self.deref(out);
        // Intermediate gates nobody ended up reading (cannot happen with
        // minimum circuits, but costs nothing to clean up).
        for &x in &built {
            if self.refs[x as usize] == 0 && self.is_gate(x) && !self.dead[x as usize] && x != out {
                self.refs[x as usize] = 1;
                self.deref(x);
            }
        }
    }

    /// One pass over the gates present at the start; returns replacements made.
    fn round(&mut self, params: &RewriteParams, deadline: Option<Instant>, stats: &mut RewriteStats) -> usize {
        let cut_params = CutParams {
            cut_size: params.cut_size.clamp(2, 4),
            cuts_per_node: params.cuts_per_node.max(1),
        };
        let mut cut_stats = CutStats::default();
        let mut changes = 0;
        let first_gate = 2 + self.num_inputs as u32;
        let end = self.kinds.len() as u32;
        for v in first_gate..end {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if self.dead[v as usize] || self.fwd[v as usize] != v {
                continue;
            }
            let Some(Kind::Gate { tt, a, b }) = self.kinds.get(v as usize).copied() else {
                continue;
            };
            // Arguments may have been replaced since v was built.
            let (ra, rb) = (self.find(a), self.find(b));
            if (ra, rb) != (a, b) {
                if self.strash.get(&(tt, a, b)) == Some(&v) {
                    self.strash.remove(&(tt, a, b));
                }
                match self.normalize(tt, ra, rb) {
                    Norm::Node(x) => {
                        self.substitute(v, x);
                        changes += 1;
                        continue;
                    }
                    Norm::Gate(nt, na, nb) => {
                        if let Some(&u) = self.strash.get(&(nt, na, nb)) {
                            if u != v && self.rank[u as usize] < self.rank[v as usize] {
                                self.substitute(v, u);
                                changes += 1;
                                continue;
                            }
                        }
                        // Same argument slots, possibly swapped or merged:
                        // take the new references before dropping the old.
                        self.refs[na as usize] += 1;
                        self.refs[nb as usize] += 1;
                        self.kinds[v as usize] = Kind::Gate { tt: nt, a: na, b: nb };
                        self.deref(ra);
                        self.deref(rb);
                        self.strash.entry((nt, na, nb)).or_insert(v);
                    }
                }
            }
            self.compute_cuts(v, &cut_params, &mut cut_stats);
            let mut best: Option<(isize, Plan)> = None;
            let cuts = self.cuts[v as usize].clone();
            for cut in cuts.iter().skip(1) {
                if cut.size() > 4 {
                    continue;
                }
                let ok = cut.leaves().iter().all(|&l| {
                    let l = l as usize;
                    !self.dead[l] && self.fwd[l] == l as u32 && self.rank[l] < self.rank[v as usize]
                });
                if !ok {
                    continue;
                }
                stats.cuts_evaluated += 1;
                let canon = canonise(expand_to_4(cut.tt, cut.size()));
                let freed = self.mffc(v, cut.leaves()) as isize;
                // Each symmetry of the representative gives another wiring of
                // its circuit; distinct ones may share different existing gates.
                let mut tried: Vec<Plan> = Vec::new();
                let wanted = params.structures.max(1);
                for s in automorphisms(canon.class).iter().take(wanted.saturating_mul(8)) {
                    if tried.len() >= wanted {
                        break;
                    }
                    let Some(plan) = self.plan(cut.leaves(), canon.class, &canon.transform.then(s)) else {
                        continue;
                    };
                    if tried.contains(&plan) {
                        continue;
                    }
                    if let Some(cost) = self.cost(&plan, v) {
                        let gain = freed - cost as isize;
                        if best.as_ref().is_none_or(|(g, _)| gain > *g) {
                            best = Some((gain, plan.clone()));
                        }
                    }
                    tried.push(plan);
                }
            }
            if let Some((gain, plan)) = best {
                if gain > 0 || (gain == 0 && params.allow_zero_gain) {
                    self.apply(&plan, v, &cut_params, &mut cut_stats);
                    changes += 1;
                    stats.replacements += 1;
                }
            }
        }
        changes
    }

    /// Reads the live network back into a circuit (topologically sorted by
    /// an explicit-stack DFS from the outputs). `None` if a cycle is found.
    fn build_circuit(&mut self, like: &Circuit) -> Option<Circuit> {
        let mut c = Circuit::new(like.inputs().to_vec());
        let mut sig: Vec<Option<Signal>> = vec![None; self.kinds.len()];
        sig[CONST0 as usize] = Some(Signal::Const(false));
        sig[CONST1 as usize] = Some(Signal::Const(true));
        for i in 0..self.num_inputs {
            sig[2 + i] = Some(Signal::Input(i));
        }
        let mut on_stack = vec![false; self.kinds.len()];
        let outputs: Vec<u32> = self.outputs.clone().into_iter().map(|o| self.find(o)).collect();
        for &o in &outputs {
            let mut stack = vec![(o, false)];
            while let Some((x, expanded)) = stack.pop() {
                if sig[x as usize].is_some() {
                    continue;
                }
                let (a, b) = self.fanins(x)?;
                let (a, b) = (self.find(a), self.find(b));
                if expanded {
                    on_stack[x as usize] = false;
                    let (sa, sb) = (sig[a as usize]?, sig[b as usize]?);
                    let tt = match self.kinds[x as usize] {
                        Kind::Gate { tt, .. } => tt,
                        _ => return None,
                    };
                    let expr = if a == b && tt == 0b0011 {
                        GateExpr {
                            op: Op::Not,
                            args: vec![sa],
                        }
                    } else {
                        gate_from_truth_table(tt, sa, sb)
                    };
                    sig[x as usize] = Some(c.push(expr).ok()?);
                } else {
                    if on_stack[x as usize] {
                        return None;
                    }
                    on_stack[x as usize] = true;
                    stack.push((x, true));
                    for f in [b, a] {
                        if sig[f as usize].is_none() {
                            if on_stack[f as usize] {
                                return None;
                            }
                            stack.push((f, false));
                        }
                    }
                }
            }
        }
        for ((name, _), &o) in like.outputs().iter().zip(&outputs) {
            c.set_output(name, sig[o as usize]?).ok()?;
        }
        Some(c)
    }
}
