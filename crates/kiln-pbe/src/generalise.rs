//! Learning from samples that generalises: a few thousand examples of a function of many inputs,
//! judged on rows nobody showed (the IWLS 2020 "learning from examples" setting).
//!
//! Two paths produce candidate circuits, and the one with the best validation accuracy within the
//! AND-node budget wins:
//! * a wide differentiable gate network ([`crate::gate_network`]) trained in minibatches with Adam
//!   on kiln-core tensors and fired after every epoch (the first-class path);
//! * decision trees grown once and cut at every depth ([`crate::tree`]).
//!
//! The budget is counted in AND nodes of the structurally hashed And-Inverter Graph, as ABC's
//! `&ps` counts them, so the figure is the one the contest judged.

use std::time::{Duration, Instant};

use kiln_core::Rng;
use kiln_logic::aig::Aig;
use kiln_logic::{Circuit, SampleSet, Signal};

use crate::gate_network::{DenseSamples, GateNetwork, NetParams};
use crate::learn::LearnError;
use crate::tree::{DecisionTree, TreeParams};

/// Which learner produced a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A differentiable gate network trained by gradient descent, fired.
    GateNetwork,
    /// A decision tree per output, cut at the depth chosen on validation.
    DecisionTree,
}

impl Method {
    /// The name used in JSON and reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::GateNetwork => "gate-network",
            Method::DecisionTree => "decision-tree",
        }
    }
}

/// Settings of [`learn_samples`].
#[derive(Debug, Clone)]
pub struct SampleLearnOptions {
    /// Wall-clock budget for the whole call.
    pub timeout: Duration,
    /// Largest AIG (AND nodes after structural hashing) a candidate may have.
    pub max_and_nodes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Train the gate network.
    pub network: bool,
    /// Grow decision trees.
    pub tree: bool,
    /// Gate-network shape and training settings; `None` sizes them from the samples.
    pub net: Option<NetParams>,
    /// Deepest decision tree tried.
    pub max_tree_depth: usize,
}

impl Default for SampleLearnOptions {
    fn default() -> Self {
        SampleLearnOptions {
            timeout: Duration::from_secs(60),
            max_and_nodes: 5000,
            seed: 0,
            network: true,
            tree: true,
            net: None,
            max_tree_depth: 24,
        }
    }
}

/// A circuit one path produced, with its scores.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The path.
    pub method: Method,
    /// What was chosen inside the path (depth, epoch, shape).
    pub detail: String,
    /// The fired, simplified circuit.
    pub circuit: Circuit,
    /// AND nodes of its AIG.
    pub and_nodes: usize,
    /// Accuracy on the training samples.
    pub train_accuracy: f64,
    /// Accuracy on the validation samples (the training samples when none were given).
    pub valid_accuracy: f64,
}

/// Progress of [`learn_samples`], reported after each epoch or tree.
#[derive(Debug, Clone)]
pub struct SampleProgress {
    /// The path running.
    pub method: Method,
    /// Epoch (network) or depth (tree).
    pub step: usize,
    /// Training loss of the network (NaN for trees).
    pub loss: f64,
    /// Best validation accuracy so far over all paths.
    pub best_valid: f64,
    /// Time since the start.
    pub elapsed: Duration,
}

/// What [`learn_samples`] found.
#[derive(Debug, Clone)]
pub struct SampleLearnResult {
    /// The winning candidate.
    pub best: Candidate,
    /// The best candidate of each path that ran (the winner included).
    pub per_method: Vec<Candidate>,
    /// Epochs the gate network trained.
    pub epochs: usize,
    /// Wall-clock time used.
    pub elapsed: Duration,
}

/// Number of AND nodes of `c` after structural hashing and constant propagation.
pub fn and_nodes(c: &Circuit) -> Result<usize, LearnError> {
    Ok(Aig::from_circuit(c)
        .map_err(|e| LearnError::Options(format!("AIG: {e}")))?
        .num_ands())
}

fn score(c: &Circuit, set: &SampleSet) -> f64 {
    set.accuracy(&c.eval_columns(&set.input_words(), set.words())).fraction()
}

/// Whether `a` is better than `b`: higher validation accuracy, then fewer AND nodes.
fn better(a: &Candidate, b: &Candidate) -> bool {
    (a.valid_accuracy, std::cmp::Reverse(a.and_nodes)) > (b.valid_accuracy, std::cmp::Reverse(b.and_nodes))
}

/// Gate-network shape for `n` inputs: wide enough to read every input a few times, shallow enough
/// that the fired network fits a few thousand AND nodes.
pub fn default_net(n: usize) -> NetParams {
    NetParams {
        width: (2 * n).clamp(64, 1024),
        ..NetParams::default()
    }
}

/// Learns a circuit from `train` that generalises, choosing among paths and their settings by
/// accuracy on `valid` (on `train` when `valid` is `None`) within the AND-node budget.
pub fn learn_samples(
    train: &SampleSet,
    valid: Option<&SampleSet>,
    opts: &SampleLearnOptions,
    mut progress: impl FnMut(&SampleProgress),
) -> Result<SampleLearnResult, LearnError> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    if train.is_empty() {
        return Err(LearnError::Options(format!("{}: no training samples", train.source())));
    }
    if let Some(v) = valid {
        if v.input_names() != train.input_names() || v.output_names() != train.output_names() {
            return Err(LearnError::Options(format!(
                "{} and {} have different columns ({} and {} inputs, {} and {} outputs)",
                train.source(),
                v.source(),
                train.num_inputs(),
                v.num_inputs(),
                train.num_outputs(),
                v.num_outputs()
            )));
        }
    }
    let valid_set = valid.unwrap_or(train);
    let mut per_method: Vec<Candidate> = Vec::new();
    let mut best_valid = 0.0f64;
    let offer = |cand: Candidate, per_method: &mut Vec<Candidate>| {
        if cand.and_nodes > opts.max_and_nodes {
            return;
        }
        match per_method.iter_mut().find(|c| c.method == cand.method) {
            Some(old) if better(&cand, old) => *old = cand,
            Some(_) => {}
            None => per_method.push(cand),
        }
    };

    if opts.tree {
        let m = train.num_outputs();
        let trees: Vec<DecisionTree> = (0..m)
            .map(|j| {
                DecisionTree::grow(
                    train,
                    j,
                    TreeParams {
                        max_depth: opts.max_tree_depth,
                        min_split: 2,
                    },
                )
            })
            .collect();
        let deepest = trees.iter().map(DecisionTree::depth).max().unwrap_or(0);
        for depth in 0..=deepest {
            if Instant::now() >= deadline {
                break;
            }
            let mut c = Circuit::new(train.input_names().to_vec());
            for (j, t) in trees.iter().enumerate() {
                let s = t.to_signal(&mut c, depth)?;
                c.set_output(&train.output_names()[j], s)?;
            }
            let c = c.simplify();
            let cand = Candidate {
                method: Method::DecisionTree,
                detail: format!("depth {depth}"),
                and_nodes: and_nodes(&c)?,
                train_accuracy: score(&c, train),
                valid_accuracy: score(&c, valid_set),
                circuit: c,
            };
            best_valid = best_valid.max(cand.valid_accuracy);
            progress(&SampleProgress {
                method: Method::DecisionTree,
                step: depth,
                loss: f64::NAN,
                best_valid,
                elapsed: start.elapsed(),
            });
            let over = cand.and_nodes > opts.max_and_nodes;
            offer(cand, &mut per_method);
            if over {
                break;
            }
        }
    }

    let mut epochs = 0;
    if opts.network && Instant::now() < deadline {
        let params = opts.net.unwrap_or_else(|| default_net(train.num_inputs()));
        let mut rng = Rng::new(opts.seed);
        let net = GateNetwork::new(train.num_inputs(), train.num_outputs(), params, &mut rng)?;
        let data = DenseSamples::new(train)?;
        let mut adam = kiln_nn::Adam::new(net.vars(), params.lr)?;
        let mut epoch_time = Duration::ZERO;
        while Instant::now() + epoch_time < deadline {
            let t0 = Instant::now();
            let loss = net.epoch(&data, &mut adam, &mut rng)?;
            epochs += 1;
            let c = net.fire(train)?;
            let cand = Candidate {
                method: Method::GateNetwork,
                detail: format!(
                    "{} layers of {}, group {}, epoch {epochs}",
                    params.depth, params.width, params.group
                ),
                and_nodes: and_nodes(&c)?,
                train_accuracy: score(&c, train),
                valid_accuracy: score(&c, valid_set),
                circuit: c,
            };
            best_valid = best_valid.max(cand.valid_accuracy);
            offer(cand, &mut per_method);
            epoch_time = t0.elapsed();
            progress(&SampleProgress {
                method: Method::GateNetwork,
                step: epochs,
                loss,
                best_valid,
                elapsed: start.elapsed(),
            });
        }
    }

    let best = per_method.iter().fold(None::<&Candidate>, |acc, c| match acc {
        Some(b) if !better(c, b) => Some(b),
        _ => Some(c),
    });
    let best = match best {
        Some(b) => b.clone(),
        // Nothing fit the budget (or no path ran): the constant majority is always within it.
        None => {
            let mut c = Circuit::new(train.input_names().to_vec());
            for j in 0..train.num_outputs() {
                let ones = train.output_columns()[j].iter().map(|w| w.count_ones() as u64).sum::<u64>();
                let all = train.care_columns()[j].iter().map(|w| w.count_ones() as u64).sum::<u64>();
                c.set_output(&train.output_names()[j], Signal::Const(2 * ones >= all))?;
            }
            Candidate {
                method: Method::DecisionTree,
                detail: "depth 0 (nothing else fit the budget)".into(),
                and_nodes: 0,
                train_accuracy: score(&c, train),
                valid_accuracy: score(&c, valid_set),
                circuit: c,
            }
        }
    };
    Ok(SampleLearnResult {
        best,
        per_method,
        epochs,
        elapsed: start.elapsed(),
    })
}
