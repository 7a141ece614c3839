//! Gradient search over relaxed programs, then firing into exact circuits.
//!
//! A program is written as `Y = f(X; W)` with real parameters: one sigmoid unit per output
//! ([`Space::Unit`]), a sigmoid MLP ([`Space::Mlp`]), or a network of two-input gates, each a softmax
//! mixture of the 16 boolean functions evaluated in probabilistic logic ([`Space::Circuit`], in the
//! style of difflogic). Adam fits `W` to the table; firing hardens every relaxed choice (threshold
//! or argmax) into a [`Circuit`], which is simplified and verified against every row. Training
//! stops as soon as the fired circuit is exact.

use kiln_core::{Rng, Tensor, Var};
use kiln_logic::circuit::{Circuit, CircuitError, Signal};
use kiln_logic::repair;
use kiln_logic::table::Table;
use kiln_logic::verify::verify;
use kiln_nn::{Adam, Optimizer};
use rayon::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod relaxed;

pub(crate) use relaxed::{fire_gate, gate_polynomials, PASS_A};
use relaxed::{layer_sizes, GateNet, Model, UnitNet};
pub use relaxed::{MAX_DEPTH, MAX_UNIT_INPUTS, MAX_WIDTH};

/// Which family of relaxed programs to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// One unit `sigmoid(w·X + b)` per output.
    Unit,
    /// Layers of softmax-mixed two-input gates (the default).
    Circuit,
    /// A sigmoid MLP whose hidden units fire into gates.
    Mlp,
}

/// How the gates of a [`Space::Circuit`] network pick their two inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// Each input fixed to a random earlier signal.
    Random,
    /// Each input a softmax over a random pool of earlier signals, learned with the gates.
    Learned,
}

/// How each relaxed two-input gate of a [`Space::Circuit`] network is parametrised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateParam {
    /// 16 logits, a softmax over the 16 two-input functions (difflogic).
    Softmax16,
    /// 4 logits, one per row of the gate's truth table: `σ(wᵢ)` is the probability that the gate
    /// outputs 1 on input combination `i` (the input-wise parametrisation of light difflogic). It
    /// spans the same relaxed gates as the softmax with a quarter of the parameters, and each
    /// logit's gradient is not damped by the other fifteen functions' share of the softmax.
    InputWise,
}

/// Settings of [`learn`]. `None` fields are sized from the table.
#[derive(Debug, Clone)]
pub struct LearnOptions {
    /// Program family.
    pub space: Space,
    /// Gates per hidden layer (circuit) or hidden units (mlp).
    pub width: Option<usize>,
    /// Gate layers, the output layer included (circuit).
    pub depth: Option<usize>,
    /// Wiring of the gate network; `None` lets restarts alternate between learned and random wiring.
    pub wiring: Option<Wiring>,
    /// Candidates per gate input with learned wiring.
    pub pool: usize,
    /// Adam steps per restart.
    pub steps: usize,
    /// Restarts; `None` = keep restarting (and growing the network) until exact or out of time.
    pub restarts: Option<usize>,
    /// Adam learning rate; `None` = the rate measured best for each kind of network (0.1 for
    /// softmax gate networks and units, 0.01 for the wide input-wise networks).
    pub lr: Option<f64>,
    /// Seed of every random choice: the same seed gives the same circuit.
    pub seed: u64,
    /// Wall-clock budget.
    pub timeout: Duration,
    /// Fire and verify every this many steps.
    pub check_every: usize,
    /// Logit added to each gate's pass-through function at initialisation (difflogic's residual
    /// initialisation, used by the learned-wiring restarts; 0 = plain random gates).
    pub residual_init: f64,
    /// Circuit space: when a restart ends a few rows short, try to fix the fired circuit by
    /// resubstitution over the trained network's own gates (at most 3 new gates); when time runs
    /// out with no exact circuit, rebuild the wrong outputs of the best one from its gates so the
    /// result is always exact (see [`kiln_logic::repair`]). The result says how many gates repair added.
    pub repair: bool,
    /// Circuit space, complete tables: shrink the final circuit by resubstitution (each gate
    /// replaced by an earlier signal or one gate over two earlier signals when that frees gates),
    /// which never changes the function ([`repair::shrink`]).
    pub shrink: bool,
    /// Circuit space: gate temperature at the last step. Each gate mixes its 16 functions by
    /// `softmax(logits / T)`, with `T` falling geometrically from 1 to this value over a restart's
    /// steps, so the relaxed circuit hardens toward the one that fires (1 = no annealing).
    ///
    /// Off by default because it lowered the per-restart success in our measurement (BENCHMARKS.md:
    /// 44 of 100 restarts exact without annealing, 39 with 0.3, 33 with 0.1).
    pub final_temperature: f64,
    /// Circuit space: standard deviation of Gaussian noise added to the gate-logit gradients,
    /// decaying as `sigma / (1 + step)^0.55` (Neelakantan et al., 2015); 0 = none.
    ///
    /// Off by default: Adam divides each gradient by its running scale, so on logits whose true
    /// gradient is near zero even sigma = 0.001 becomes a full-size random step (22 of 100
    /// restarts exact instead of 44).
    pub grad_noise: f64,
    /// Circuit space: how each gate's choice of function is relaxed; `None` lets the schedule
    /// choose (input-wise for its wide random-wired networks, the softmax for the others).
    pub gate_param: Option<GateParam>,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            space: Space::Circuit,
            width: None,
            depth: None,
            wiring: None,
            pool: 8,
            steps: 2000,
            restarts: None,
            lr: None,
            seed: 0,
            timeout: Duration::from_secs(120),
            check_every: 20,
            residual_init: 3.0,
            repair: true,
            shrink: true,
            final_temperature: 1.0,
            grad_noise: 0.0,
            gate_param: None,
        }
    }
}

/// A fired sigmoid unit: its weights and the gate it became.
#[derive(Debug, Clone)]
pub struct UnitReport {
    /// The signal the unit drives (an output name, or `Z1`-style for hidden units).
    pub name: String,
    /// Input weights.
    pub weights: Vec<f64>,
    /// Bias.
    pub bias: f64,
    /// The fired function in the grammar, e.g. `X1 OR X2`.
    pub fired: String,
}

/// Progress of a run, reported after every check.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Restart number (0-based).
    pub restart: usize,
    /// Step within the restart.
    pub step: usize,
    /// Current relaxed loss.
    pub loss: f64,
    /// Fraction of rows the fired program gets right.
    pub accuracy: f64,
    /// Network width and depth of this restart.
    pub width: usize,
    /// Network depth of this restart.
    pub depth: usize,
}

/// What [`learn`] found.
#[derive(Debug, Clone)]
pub struct LearnResult {
    /// The fired, simplified circuit (the best one if none was exact).
    pub circuit: Circuit,
    /// True when the circuit reproduces every row of the table.
    pub exact: bool,
    /// Fraction of rows reproduced.
    pub accuracy: f64,
    /// Restarts run.
    pub restarts: usize,
    /// Restarts whose fired circuit was exact without repair (the per-restart success count of
    /// gradient search; runs stop at the first exact circuit).
    pub exact_restarts: usize,
    /// Gates that repair added to the fired circuit (0 when gradient search alone was exact).
    pub repaired_gates: usize,
    /// Rows, summed over outputs, that the fired circuit got wrong before repair fixed them.
    pub repaired_rows: usize,
    /// How repair fixed them ([`repair::RepairMethod::None`] when it was not needed).
    pub repair_method: repair::RepairMethod,
    /// Gates of the fired (and repaired) circuit after simplification, before [`repair::shrink`].
    pub fired_gates: usize,
    /// Adam steps over all restarts.
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Relaxed loss at every step of the restart that produced `circuit`.
    pub loss_curve: Vec<f64>,
    /// Fired units (unit and mlp spaces).
    pub units: Vec<UnitReport>,
    /// Width and depth of the network that produced `circuit`.
    pub width: usize,
    /// Depth of that network.
    pub depth: usize,
    /// A plain-language remark, e.g. why no exact program was found.
    pub note: Option<String>,
    /// Fraction of rows the fired program got right at every check of the restart that produced
    /// `circuit`, as (step, accuracy); step 0 is the untrained network.
    pub accuracy_curve: Vec<(usize, f64)>,
    /// Every restart that counted, in order: its network and how it ended.
    pub restart_log: Vec<RestartSummary>,
    /// Index of the restart that produced `circuit`.
    pub chosen_restart: usize,
    /// Gates of the chosen restart's fired, simplified circuit before any repair.
    pub unrepaired_gates: usize,
    /// Circuit space, networks of at most [`MAX_HISTORY_GATES`] gates: each gate's distribution
    /// over the 16 functions at a few points of the chosen restart.
    pub gate_history: Option<GateHistory>,
}

/// One restart of a [`learn`] run, for reports.
#[derive(Debug, Clone)]
pub struct RestartSummary {
    /// Restart number (0-based).
    pub index: usize,
    /// Gates per hidden layer (circuit) or hidden units (mlp).
    pub width: usize,
    /// Gate layers (circuit).
    pub depth: usize,
    /// Wiring of the gate network.
    pub wiring: Wiring,
    /// Logit added to each gate's pass-through at initialisation.
    pub residual: f64,
    /// How its gates were relaxed.
    pub gate_param: GateParam,
    /// Adam steps it ran.
    pub steps: usize,
    /// Fraction of rows its best fired program got right, before repair.
    pub accuracy: f64,
    /// Gates of that fired program, simplified.
    pub gates: usize,
    /// Whether the cheap per-restart repair made it exact.
    pub repaired: bool,
}

/// Largest gate network whose gate distributions [`learn`] keeps for reports.
pub const MAX_HISTORY_GATES: usize = 200;

/// Each gate's softmax distribution over the 16 two-input functions at one point of training.
#[derive(Debug, Clone)]
pub struct GateSnapshot {
    /// Step (0 = at initialisation).
    pub step: usize,
    /// `probs[g][tt]`: probability gate `g` (network order, layer by layer) gives function `tt`
    /// (the bit order of [`gate_from_truth_table`](kiln_logic::circuit::gate_from_truth_table)), at temperature 1.
    pub probs: Vec<[f32; 16]>,
}

/// How the gates of the chosen restart's network settled.
#[derive(Debug, Clone)]
pub struct GateHistory {
    /// Gates per layer, the output layer last.
    pub layers: Vec<usize>,
    /// A few snapshots in step order (the first at step 0, the last at the kept check or later).
    pub snapshots: Vec<GateSnapshot>,
    /// Step of the check whose fired circuit was kept.
    pub fired_step: usize,
    /// The function each gate fired to at that check (its argmax).
    pub fired: Vec<u8>,
    /// Whether each gate drives an output of the fired circuit (before simplification).
    pub live: Vec<bool>,
}

/// Why learning could not run.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A tensor op failed.
    #[error(transparent)]
    Core(#[from] kiln_core::Error),
    /// The optimiser failed.
    #[error(transparent)]
    Nn(#[from] kiln_nn::Error),
    /// The fired program was malformed (an internal error).
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The options do not suit the table.
    #[error("learn: {0}")]
    Options(String),
}

/// The table as tensors: inputs `[rows, n]` and outputs `[rows, m]` of 0/1.
fn tensors(table: &Table) -> Result<(Tensor, Tensor), LearnError> {
    let (n, m, r) = (table.num_inputs(), table.num_outputs(), table.len());
    let mut x = Vec::with_capacity(r * n);
    let mut y = Vec::with_capacity(r * m);
    for row in table.rows() {
        x.extend((0..n).map(|i| ((row.inputs >> i) & 1) as f32));
        y.extend((0..m).map(|j| ((row.outputs >> j) & 1) as f32));
    }
    Ok((Tensor::from_vec(x, [r, n])?, Tensor::from_vec(y, [r, m])?))
}

/// Fraction of rows on which `c` matches the table (0 when it cannot be evaluated).
fn accuracy_of(c: &Circuit, table: &Table) -> f64 {
    verify(c, table).map(|v| v.accuracy()).unwrap_or(0.0)
}

/// Rows per chunk of the training loss: tables up to 13 inputs take one pass per step.
const LOSS_CHUNK_ROWS: usize = 8192;

/// One restart's network.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    width: usize,
    depth: usize,
    wiring: Wiring,
    residual: f64,
    param: GateParam,
    lr: f64,
}

/// Most memory one restart's gate network may need, by an estimate from its size: past it, a
/// `--width`/`--depth` the user gave is refused before anything is built. (`--width 2048 --depth
/// 32` on a 6-input table had aborted at 7.3 GB; `4096 × 64` spent minutes building its wiring.)
pub const MAX_NETWORK_BYTES: u64 = 6 << 30;

impl Attempt {
    /// Gates per layer, as [`GateNet::new`] builds them.
    fn layer_gates(&self, m: usize) -> impl Iterator<Item = usize> {
        layer_sizes(self.width, self.depth, m)
    }

    /// An estimate of the bytes a restart of this network needs on `rows` rows of an `n`-input,
    /// `m`-output table: about 128 bytes of activations and their gradients per gate and row of
    /// a loss chunk, and for learned wiring the dense `[signals, gates]` matrix of each layer
    /// and side, with its gradient and scatter buffers (about 16 bytes a cell per side). Building
    /// learned wiring also takes time in proportion to those cells.
    fn network_bytes(&self, n: usize, m: usize, rows: usize) -> u64 {
        let chunk = rows.min(LOSS_CHUNK_ROWS) as u64;
        let mut avail = n as u64;
        let mut bytes = 0u64;
        for gates in self.layer_gates(m) {
            let gates = gates as u64;
            bytes = bytes.saturating_add(gates.saturating_mul(chunk).saturating_mul(128));
            if self.wiring == Wiring::Learned {
                bytes = bytes.saturating_add(avail.saturating_mul(gates).saturating_mul(2 * 16));
            }
            avail += gates;
        }
        bytes
    }
}

/// Tables with this many inputs start with wide random-wired input-wise networks. Below, the
/// small learned-wiring networks already fit almost every function on their first restart (236 of
/// the 256 three-input functions) with fewer gates; above, wide networks of this size rarely fit
/// (5 of 36 restarts on the 6- to 8-input functions of the suite).
const WIDE_FIRST_INPUTS: std::ops::RangeInclusive<usize> = 4..=5;

/// The restarts to run, in order, growing the network level by level. Without a fixed wiring each
/// level tries several kinds of network:
/// * wide random-wired networks of input-wise gates (difflogic's layout with light difflogic's
///   parametrisation), the most reliable on small tables;
/// * learned wiring with or without residual initialisation (good at arithmetic and multiplexers);
/// * narrow difflogic-style random wiring that forms trees (the only kind that finds parity-8).
fn schedule(table: &Table, opts: &LearnOptions) -> Vec<Attempt> {
    let (n, m) = (table.num_inputs().max(1), table.num_outputs());
    let attempt = |width, depth, wiring, residual, param: GateParam| {
        let param = opts.gate_param.unwrap_or(param);
        Attempt {
            width,
            depth,
            wiring,
            residual,
            param,
            // Measured per kind (restart_study, 180 first restarts on the 18 functions of at most 5
            // inputs): input-wise gates fit best at 0.01 (138 exact, 134 at 0.015, 130 at 0.03;
            // 45 of 72 at 0.1), softmax gates at 0.1. The gain is on the hardest functions
            // (popcount5, the S-box, two random ones: 10 of 32 at 0.01 against 7 at 0.03).
            lr: opts.lr.unwrap_or(match param {
                GateParam::Softmax16 => 0.1,
                GateParam::InputWise => 0.01,
            }),
        }
    };
    let soft = GateParam::Softmax16;
    match opts.space {
        Space::Unit => vec![attempt(0, 1, Wiring::Learned, 0.0, soft)],
        Space::Mlp => {
            // The output units read every hidden unit, and firing enumerates a unit's inputs:
            // levels grow only up to that limit.
            let w0 = opts.width.unwrap_or(n.max(2));
            let levels = if opts.width.is_some() { 1 } else { 6 };
            let mut widths: Vec<usize> = (0..levels).map(|i| (w0 + i * n.max(2)).min(MAX_UNIT_INPUTS.max(w0))).collect();
            widths.dedup();
            widths.into_iter().map(|w| attempt(w, 2, Wiring::Learned, 0.0, soft)).collect()
        }
        Space::Circuit => {
            let log_n = (usize::BITS - (n - 1).leading_zeros()) as usize;
            let mut v = Vec::new();
            for i in 0..8usize {
                // Four gates per input and output to start: twice that of an earlier schedule,
                // which raised first-restart success on the three-input functions from 217 to 236
                // of 256 and on comparator2 from 0 to 4 of 20.
                let dense_w = opts.width.unwrap_or(((4 * n + 4 * m).clamp(8, 128) << i.min(4)).min(256));
                let dense_d = opts.depth.unwrap_or(log_n + 2 + i / 2);
                // Trees stay at the size that halves the signals each layer: growing them only
                // lowered the per-restart success on parity in our runs.
                let tree_w = opts.width.unwrap_or(n.div_ceil(2).max(m).max(2));
                let tree_d = opts.depth.unwrap_or(log_n + 1);
                // Wide nets: 64 × 6 made 56 of 72 first restarts exact on the ≤ 5-input suite
                // (48 × 6: 50, 128 × 6: 47, 64 × 8: 50); the softmax in the same net made 33.
                // They do not grow with the level: larger ones did no better.
                let wide_w = opts.width.unwrap_or((8 * (n + m)).clamp(64, 256));
                let wide_d = opts.depth.unwrap_or((log_n + 3).max(6));
                let wide = attempt(wide_w, wide_d, Wiring::Random, 0.0, GateParam::InputWise);
                let level = match opts.wiring {
                    Some(Wiring::Learned) => vec![
                        attempt(dense_w, dense_d, Wiring::Learned, opts.residual_init, soft),
                        attempt(dense_w, dense_d, Wiring::Learned, 0.0, soft),
                    ],
                    Some(Wiring::Random) => vec![attempt(tree_w, tree_d, Wiring::Random, 0.0, soft)],
                    // Residual initialisation is difflogic's remedy for depth: on the shallow
                    // networks of three-input tables, plain random gates first made the first
                    // restart exact for 217 of the 256 functions instead of 162; on the deeper
                    // networks of five- and six-input tables the residual restarts did better.
                    None => {
                        let (first, second) = if dense_d >= 5 {
                            (opts.residual_init, 0.0)
                        } else {
                            (0.0, opts.residual_init)
                        };
                        let dense = |residual| attempt(dense_w, dense_d, Wiring::Learned, residual, soft);
                        let tree = attempt(tree_w, tree_d, Wiring::Random, 0.0, soft);
                        if WIDE_FIRST_INPUTS.contains(&n) {
                            // Wide restarts fit parity-5 too (4 of 4), so small tables need no trees.
                            vec![wide, wide, dense(first), wide, wide]
                        } else {
                            // Tree restarts are cheap (few gates) and each finds parity-8 only
                            // about one time in four, so they get three of the five slots.
                            vec![dense(first), tree, tree, dense(second), tree]
                        }
                    }
                };
                v.extend(level);
                if opts.width.is_some() && opts.depth.is_some() {
                    break;
                }
            }
            v
        }
    }
}

/// What one restart produced: its best fired circuit (repaired when a cheap repair made it exact).
struct Outcome {
    circuit: Circuit,
    /// The unsimplified fired circuit (before any repair): every trained gate, for a final repair.
    raw: Circuit,
    accuracy: f64,
    /// Accuracy of the fired circuit before any repair.
    accuracy_before_repair: f64,
    exact_unrepaired: bool,
    /// (gates added, rows fixed, method) when repair made it exact.
    repair: Option<(usize, usize, repair::RepairMethod)>,
    units: Vec<UnitReport>,
    curve: Vec<f64>,
    /// (step, fired accuracy) at every check.
    accuracy_curve: Vec<(usize, f64)>,
    /// Gates of the best fired circuit before repair.
    unrepaired_gates: usize,
    history: Option<GateHistory>,
    steps: usize,
    attempt: Attempt,
}

/// Index of the largest of 16 probabilities (the first on ties, as the tensor argmax).
fn argmax16(p: &[f32; 16]) -> u8 {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best as u8
}

/// About five snapshots spread over the restart: the first, those nearest a quarter, half and
/// three quarters of the way, the kept check's and the last.
fn thin_snapshots(all: Vec<GateSnapshot>, kept: usize) -> Vec<GateSnapshot> {
    let last = all.len() - 1;
    let end = all[last].step.max(1) as f64;
    let mut pick = vec![0, kept, last];
    for q in [0.25, 0.5, 0.75] {
        let want = q * end;
        let i = (0..all.len())
            .min_by(|&a, &b| (all[a].step as f64 - want).abs().total_cmp(&(all[b].step as f64 - want).abs()))
            .unwrap_or(0);
        pick.push(i);
    }
    pick.sort_unstable();
    pick.dedup();
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| pick.contains(i))
        .map(|(_, s)| s)
        .collect()
}

/// Whether each gate of `c` is read, directly or through other gates, by an output.
fn live_gates(c: &Circuit) -> Vec<bool> {
    let mut live = vec![false; c.num_gates()];
    let mut stack: Vec<usize> = c
        .outputs()
        .iter()
        .filter_map(|(_, s)| match s {
            Signal::Gate(g) => Some(*g),
            _ => None,
        })
        .collect();
    while let Some(g) = stack.pop() {
        if std::mem::replace(&mut live[g], true) {
            continue;
        }
        for a in &c.gates()[g].args {
            if let Signal::Gate(h) = a {
                stack.push(*h);
            }
        }
    }
    live
}

/// What every restart of one [`learn`] call shares.
struct RestartContext<'a, F> {
    table: &'a Table,
    x: &'a Tensor,
    y: &'a Tensor,
    opts: &'a LearnOptions,
    start: Instant,
    progress: &'a Mutex<F>,
}

impl<F: FnMut(&Progress) + Send> RestartContext<'_, F> {
    /// Trains restart `index` (its seed is derived from the index alone) until its fired circuit is
    /// exact, it stops improving, its steps run out, or the time budget is spent.
    fn run(&self, index: usize, att: Attempt) -> Result<Outcome, LearnError> {
        let (table, opts) = (self.table, self.opts);
        let (n, m) = (table.num_inputs(), table.num_outputs());
        let check = opts.check_every.max(1);
        let mut rng = Rng::new(opts.seed.wrapping_mul(0x9E37_79B9).wrapping_add(index as u64));
        let model = match opts.space {
            Space::Circuit => Model::Gates(GateNet::new(
                n,
                m,
                att.width,
                att.depth,
                att.wiring,
                opts.pool,
                att.residual,
                att.param,
                &mut rng,
            )?),
            Space::Unit => Model::Units(UnitNet::new(&[n, m], &mut rng)?),
            Space::Mlp => Model::Units(UnitNet::new(&[n, att.width, m], &mut rng)?),
        };
        let mut adam = Adam::new(model.vars(), att.lr)?;
        // --steps may be huge while the timeout stops training long before; grow as steps happen.
        let mut curve = Vec::with_capacity(opts.steps.min(1 << 16));
        let mut units = Vec::new();
        // (simplified circuit, accuracy, unit reports, unsimplified circuit)
        let mut fired: Option<(Circuit, f64, Vec<UnitReport>, Circuit)> = None;
        let mut steps = 0;
        let gate_logits: Vec<Var> = match &model {
            Model::Gates(g) => g.layers.iter().map(|l| l.logits.clone()).collect(),
            Model::Units(_) => Vec::new(),
        };
        let cooling = opts.final_temperature.ln() / opts.steps.max(2) as f64;
        // For reports: fired accuracy at each check, and (small gate networks) each gate's
        // distribution at step 0 and every check, thinned to a few when the restart ends.
        let mut acc_curve: Vec<(usize, f64)> = Vec::new();
        let gate_net = match &model {
            Model::Gates(g) if g.total_gates() <= MAX_HISTORY_GATES => Some(g),
            _ => None,
        };
        let mut snapshots: Vec<GateSnapshot> = Vec::new();
        let mut kept_snapshot = 0;
        if let Some(g) = gate_net {
            snapshots.push(GateSnapshot {
                step: 0,
                probs: g.distributions()?,
            });
            let raw = g.fire(table)?;
            acc_curve.push((0, accuracy_of(&raw.simplify(), table)));
        }
        let rows = self.x.dims()[0];
        let vars = model.vars();
        let deadline = self
            .start
            .checked_add(opts.timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3_153_600_000));
        for step in 1..=opts.steps {
            let temperature = (cooling * (step - 1) as f64).exp();
            // The full-batch gradient, summed over chunks of rows so the deadline is read inside
            // a step: on a 16-input table one step of a wide learned-wiring network takes
            // seconds, longer than a short --timeout. Same gradient as one pass over all rows.
            let mut grads: Option<kiln_core::Grads> = None;
            let mut loss_sum = 0.0;

            let mut cut_short = false;
            for first in (0..rows).step_by(LOSS_CHUNK_ROWS) {
                if first > 0 && self.start.elapsed() >= opts.timeout {
                    cut_short = true;
                    break;
                }
                let len = LOSS_CHUNK_ROWS.min(rows - first);
                let (x, y) = if len == rows {
                    (self.x.clone(), self.y.clone())
                } else {
                    (self.x.narrow(0, first, len)?, self.y.narrow(0, first, len)?)
                };
                let part = model.loss(&x, &y, temperature)?.affine(len as f64 / rows as f64, 0.0)?;
                loss_sum += part.item()?;
                let g = part.backward()?;
                grads = Some(match grads {
                    None => g,
                    Some(mut total) => {
                        for v in &vars {
                            if let Some(gv) = g.get_id(v.id()) {
                                let sum = match total.get_id(v.id()) {
                                    Some(t) => t.add(gv)?,
                                    None => gv.clone(),
                                };
                                total.insert(v.id(), sum);
                            }
                        }
                        total
                    }
                });
            }
            let Some(mut grads) = grads.filter(|_| !cut_short) else {
                // Out of time inside the step: fire the network as it stands and stop.
                let raw = model.fire(table, &mut units, deadline)?;
                let c = raw.simplify();
                let acc = accuracy_of(&c, table);
                acc_curve.push((step - 1, acc));
                if let Some(g) = gate_net {
                    snapshots.push(GateSnapshot {
                        step: step - 1,
                        probs: g.distributions()?,
                    });
                }
                if fired.as_ref().is_none_or(|(_, a, _, _)| acc > *a) {
                    fired = Some((c, acc, units.clone(), raw));
                    kept_snapshot = snapshots.len().saturating_sub(1);
                }
                break;
            };
            curve.push(loss_sum);
            if opts.grad_noise > 0.0 {
                let sigma = opts.grad_noise / (1.0 + step as f64).powf(0.55);
                for v in &gate_logits {
                    if let Some(g) = grads.get_id(v.id()) {
                        let noise = Tensor::randn(g.dims().to_vec(), 0.0, sigma, g.dtype(), &mut rng)?;
                        let noisy = g.add(&noise)?;
                        grads.insert(v.id(), noisy);
                    }
                }
            }
            adam.step(&grads)?;
            steps += 1;
            // The deadline is read after every step, not only at checks: on a large table one
            // check interval can outlast the whole budget.
            let out_of_time = self.start.elapsed() >= opts.timeout;
            if step % check == 0 || step == opts.steps || out_of_time {
                let raw = model.fire(table, &mut units, deadline)?;
                let c = raw.simplify();
                let acc = accuracy_of(&c, table);
                acc_curve.push((step, acc));
                if let Some(g) = gate_net {
                    snapshots.push(GateSnapshot {
                        step,
                        probs: g.distributions()?,
                    });
                }
                if let Ok(mut report) = self.progress.lock() {
                    (*report)(&Progress {
                        restart: index,
                        step,
                        loss: curve[curve.len() - 1],
                        accuracy: acc,
                        width: att.width,
                        depth: att.depth,
                    });
                }
                if fired.as_ref().is_none_or(|(_, a, _, _)| acc > *a) {
                    fired = Some((c, acc, units.clone(), raw));
                    kept_snapshot = snapshots.len().saturating_sub(1);
                }
                if acc >= 1.0 || out_of_time {
                    break;
                }
                // A learned-wiring restart whose loss stopped falling is unlikely to recover: end it
                // early and spend the time on the next seed. Tree-wired restarts are exempt: on
                // parity their loss sits on a plateau for hundreds of steps before it drops.
                if att.wiring == Wiring::Learned && step >= 600 && curve[step - 1] > 0.98 * curve[step - 500] {
                    break;
                }
            }
        }
        let (circuit, accuracy, units, raw) = fired.expect("at least one check per restart");
        let history = gate_net.filter(|_| !snapshots.is_empty()).map(|g| {
            let fired_step = snapshots[kept_snapshot].step;
            let fired: Vec<u8> = snapshots[kept_snapshot].probs.iter().map(argmax16).collect();
            GateHistory {
                layers: g.layers.iter().map(|l| l.gates).collect(),
                snapshots: thin_snapshots(snapshots, kept_snapshot),
                fired_step,
                fired,
                live: live_gates(&raw),
            }
        });
        let mut out = Outcome {
            unrepaired_gates: circuit.num_gates(),
            accuracy_curve: acc_curve,
            history,
            exact_unrepaired: accuracy >= 1.0,
            accuracy_before_repair: accuracy,
            circuit,
            raw,
            accuracy,
            repair: None,
            units,
            curve,
            steps,
            attempt: att,
        };
        // A near miss is often one or two gates from exact, and those gates are usually among the
        // trained network's own signals; a cheap resubstitution finds them.
        if !out.exact_unrepaired && opts.repair && opts.space == Space::Circuit {
            if let Some(r) = repair::repair_until(&out.raw, table, 3, false, self.start.checked_add(opts.timeout)) {
                (out.circuit, out.accuracy) = (r.circuit, 1.0);
                out.repair = Some((r.added_gates, r.fixed_rows, r.method));
            }
        }
        Ok(out)
    }
}

/// Learns a circuit for `table` by gradient descent on a relaxed program, restarting and growing
/// the network until the fired circuit reproduces every row, the restarts run out, or the time
/// budget is spent. `progress` is called after every check.
///
/// Restarts run in parallel on rayon's threads; `progress` may be called from any of them.
pub fn learn(table: &Table, opts: &LearnOptions, progress: impl FnMut(&Progress) + Send) -> Result<LearnResult, LearnError> {
    if table.is_empty() {
        return Err(LearnError::Options("the table has no rows".into()));
    }
    // Its gates read earlier signals, and with no inputs there are none: building the first
    // layer's wiring would never end.
    if opts.space == Space::Circuit && table.num_inputs() == 0 {
        return Err(LearnError::Options(
            "the circuit space needs at least one input column (a table without inputs is a constant)".into(),
        ));
    }
    // Learned wiring builds a dense [signals, gates] matrix per layer, so sizes are bounded to
    // keep a typo like --width 100000 from exhausting memory.
    if let Some(w) = opts.width.filter(|&w| w == 0 || w > MAX_WIDTH) {
        return Err(LearnError::Options(format!("width {w} is outside 1..={MAX_WIDTH}")));
    }
    if let Some(d) = opts.depth.filter(|&d| d == 0 || d > MAX_DEPTH) {
        return Err(LearnError::Options(format!("depth {d} is outside 1..={MAX_DEPTH}")));
    }
    let valid = |v: f64, positive: bool| v.is_finite() && if positive { v > 0.0 } else { v >= 0.0 };
    if !valid(opts.final_temperature, true) || !valid(opts.grad_noise, false) {
        return Err(LearnError::Options(format!(
            "final temperature ({}) must be > 0 and gradient noise ({}) >= 0",
            opts.final_temperature, opts.grad_noise
        )));
    }
    if opts.pool == 0 || opts.steps == 0 {
        return Err(LearnError::Options(format!(
            "pool ({}) and steps ({}) must be at least 1",
            opts.pool, opts.steps
        )));
    }
    if opts.space == Space::Mlp && opts.width.is_some_and(|w| w > MAX_UNIT_INPUTS) {
        return Err(LearnError::Options(format!(
            "the mlp space fires its output units by enumerating the hidden units they read; width {} is more than {MAX_UNIT_INPUTS}",
            opts.width.unwrap_or(0)
        )));
    }
    if opts.space == Space::Mlp && table.num_inputs() > 10 {
        return Err(LearnError::Options(format!(
            "the mlp space fires hidden units by enumerating their inputs; {} inputs is more than 10",
            table.num_inputs()
        )));
    }
    let start = Instant::now();
    let attempts = schedule(table, opts);
    // The built-in schedules stay far below the limit; a size the user chose may not.
    if opts.space == Space::Circuit && (opts.width.is_some() || opts.depth.is_some()) {
        let (n, m, rows) = (table.num_inputs(), table.num_outputs(), table.len());
        let too_large = attempts
            .iter()
            .map(|a| (a, a.network_bytes(n, m, rows)))
            .find(|&(_, bytes)| bytes > MAX_NETWORK_BYTES);
        if let Some((a, bytes)) = too_large {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            return Err(LearnError::Options(format!(
                "a network of width {} and depth {} ({} wiring) would need about {:.1} GiB on this table (limit {:.0} GiB); choose a smaller --width or --depth",
                a.width,
                a.depth,
                if a.wiring == Wiring::Learned { "learned" } else { "random" },
                gib(bytes),
                gib(MAX_NETWORK_BYTES)
            )));
        }
    }
    let (x, y) = tensors(table)?;
    // With a fixed restart count, spread it over the attempts; otherwise run every attempt once
    // (the unit space: five seeds) and then keep cycling the largest level until time runs out.
    let budget = opts.restarts.unwrap_or(usize::MAX);
    let per_attempt = if opts.space == Space::Unit { 5 } else { 1 };
    let last_level = attempts
        .len()
        .saturating_sub(if opts.wiring.is_none() && opts.space == Space::Circuit {
            3
        } else {
            1
        });
    let mut best: Option<(LearnResult, Circuit)> = None;
    let mut restarts = 0;
    let mut exact_restarts = 0;
    let mut steps_total = 0;
    let mut restart_log = Vec::new();
    let mut plan =
        attempts
            .iter()
            .flat_map(|a| std::iter::repeat_n(*a, per_attempt))
            .chain(
                attempts[last_level..]
                    .iter()
                    .copied()
                    .cycle()
                    .take(if opts.restarts.is_some() || opts.space == Space::Unit {
                        0
                    } else {
                        usize::MAX
                    }),
            );
    // Restarts run in batches, one per thread. Each restart depends only on its index, and the
    // batch is read back in index order up to the first exact restart, so the result is the same
    // whatever the number of threads (short of the time budget running out).
    let threads = rayon::current_num_threads().max(1);
    let progress = Mutex::new(progress);
    let ctx = RestartContext {
        table,
        x: &x,
        y: &y,
        opts,
        start,
        progress: &progress,
    };
    'batches: while restarts < budget {
        if restarts > 0 && start.elapsed() >= opts.timeout {
            break;
        }
        let mut batch = Vec::with_capacity(threads);
        while batch.len() < threads && restarts + batch.len() < budget {
            let index = restarts + batch.len();
            match plan.next().or_else(|| opts.restarts.map(|_| attempts[index % attempts.len()])) {
                Some(att) => batch.push((index, att)),
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        let outcomes: Vec<Result<Outcome, LearnError>> = batch.par_iter().map(|&(index, att)| ctx.run(index, att)).collect();
        for outcome in outcomes {
            let o = outcome?;
            restarts += 1;
            steps_total += o.steps;
            exact_restarts += o.exact_unrepaired as usize;
            let exact = o.accuracy >= 1.0;
            restart_log.push(RestartSummary {
                index: restarts - 1,
                width: o.attempt.width,
                depth: o.attempt.depth,
                wiring: o.attempt.wiring,
                residual: o.attempt.residual,
                gate_param: o.attempt.param,
                steps: o.steps,
                accuracy: o.accuracy_before_repair,
                gates: o.unrepaired_gates,
                repaired: o.repair.is_some(),
            });
            if best.as_ref().is_none_or(|(b, _)| o.accuracy > b.accuracy) {
                best = Some((
                    LearnResult {
                        circuit: o.circuit,
                        exact,
                        accuracy: o.accuracy,
                        restarts,
                        exact_restarts,
                        repaired_gates: o.repair.as_ref().map_or(0, |r| r.0),
                        repaired_rows: o.repair.as_ref().map_or(0, |r| r.1),
                        repair_method: o.repair.as_ref().map_or(repair::RepairMethod::None, |r| r.2),
                        fired_gates: 0,
                        steps: steps_total,
                        seconds: 0.0,
                        loss_curve: o.curve,
                        units: o.units,
                        width: o.attempt.width,
                        depth: o.attempt.depth,
                        note: None,
                        accuracy_curve: o.accuracy_curve,
                        restart_log: Vec::new(),
                        chosen_restart: restarts - 1,
                        unrepaired_gates: o.unrepaired_gates,
                        gate_history: o.history,
                    },
                    o.raw,
                ));
            }
            if exact {
                break 'batches;
            }
        }
    }
    let (mut res, best_raw) = best.ok_or_else(|| LearnError::Options("no restart ran (timeout 0?)".into()))?;
    // Out of time or restarts: rebuild the best circuit's wrong outputs from its own gates, with a
    // sum of products as the last resort, so a circuit-space run always ends exact.
    if !res.exact && opts.repair && opts.space == Space::Circuit {
        if let Some(r) = repair::repair_until(&best_raw, table, 12, true, start.checked_add(opts.timeout)) {
            let right = (res.accuracy * table.len() as f64).round() as usize;
            res.note = Some(format!(
                "gradient search reached {right} of {} rows in {restarts} restarts; repair added {} gates ({}) to fix the other {} (output, row) pairs",
                table.len(),
                r.added_gates,
                r.method.describe(),
                r.fixed_rows
            ));
            (res.circuit, res.accuracy, res.exact) = (r.circuit, 1.0, true);
            (res.repaired_gates, res.repaired_rows, res.repair_method) = (r.added_gates, r.fixed_rows, r.method);
        }
    }
    res.fired_gates = res.circuit.num_gates();
    if opts.shrink && opts.space == Space::Circuit {
        res.circuit = repair::shrink_until(&res.circuit, table, start.checked_add(opts.timeout));
    }
    res.restarts = restarts;
    res.restart_log = restart_log;
    res.exact_restarts = exact_restarts;
    res.steps = steps_total;
    res.seconds = start.elapsed().as_secs_f64();
    if res.exact && res.repaired_gates > 0 && res.note.is_none() {
        res.note = Some(format!(
            "the fired circuit missed {} (output, row) pairs; repair added {} gates ({})",
            res.repaired_rows,
            res.repaired_gates,
            res.repair_method.describe()
        ));
    }
    if !res.exact {
        let right = (res.accuracy * table.len() as f64).round() as usize;
        res.note = Some(match opts.space {
            Space::Unit => format!(
                "one unit per output cannot represent this table: the best of {restarts} restarts gets {right} of {} rows right ({:.0}%); a single threshold unit only draws one straight line through the inputs",
                table.len(),
                res.accuracy * 100.0
            ),
            _ => format!(
                "no exact program found in {restarts} restarts and {:.1} s: the best gets {right} of {} rows right ({:.1}%)",
                res.seconds,
                table.len(),
                res.accuracy * 100.0
            ),
        });
    }
    Ok(res)
}
