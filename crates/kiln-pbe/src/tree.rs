//! Decision trees on bit-packed samples, fired into multiplexer circuits.
//!
//! The most common approach of the IWLS 2020 contest and the baseline kiln's gradient learner is
//! judged against. Splits are chosen by Gini impurity, with every count a popcount over the
//! node's row mask, so a node costs one pass over the words where it still has rows. A tree is
//! grown once to the largest depth asked for; every shallower tree is the same tree cut at that
//! depth, with each cut node predicting its majority, so choosing the depth on validation costs
//! no extra training.

use kiln_logic::{Circuit, Op, SampleSet, Signal};

/// One node of a grown tree.
#[derive(Debug, Clone)]
struct Node {
    depth: usize,
    /// Majority output of the training rows that reach the node.
    majority: bool,
    /// `(input, child if the input is 0, child if 1)`; `None` for a leaf.
    split: Option<(usize, usize, usize)>,
    /// Impurity removed by the split (0 for a leaf).
    gain: f64,
}

/// Settings of [`DecisionTree::grow`].
#[derive(Debug, Clone, Copy)]
pub struct TreeParams {
    /// Deepest level grown (the root is depth 0).
    pub max_depth: usize,
    /// A node with fewer training rows than this is not split.
    pub min_split: u64,
    /// Inputs considered at each split, drawn at random (random forests); 0 considers all.
    pub max_features: usize,
    /// Seed of the feature draws.
    pub seed: u64,
}

/// A binary decision tree over the inputs of a sample set, for one output.
#[derive(Debug, Clone)]
pub struct DecisionTree {
    nodes: Vec<Node>,
}

fn gini(pos: u64, n: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let p = pos as f64 / n as f64;
    // Weighted by the node size, so children's impurities add up to compare with the parent's.
    n as f64 * 2.0 * p * (1.0 - p)
}

impl DecisionTree {
    /// Grows a tree for output `output` of `samples` (rows where the output is unspecified are
    /// ignored). Ties in the majority go to the overall majority.
    pub fn grow(samples: &SampleSet, output: usize, params: TreeParams) -> DecisionTree {
        Self::grow_on(
            samples.input_columns(),
            &samples.output_columns()[output],
            &samples.care_columns()[output],
            params,
        )
    }

    /// Grows a tree over arbitrary bit-packed feature columns `xs` (inputs, or inputs and
    /// features derived from them) for target bits `y` on the rows set in `care`.
    pub fn grow_on(xs: &[Vec<u64>], y: &[u64], care: &[u64], params: TreeParams) -> DecisionTree {
        let pos_all: u64 = y.iter().zip(care).map(|(a, c)| u64::from((a & c).count_ones())).sum();
        let n_all: u64 = care.iter().map(|c| u64::from(c.count_ones())).sum();
        let default = 2 * pos_all >= n_all;
        let mut nodes = Vec::new();
        // Each pending node carries its row mask as (word index, bits) for the words that are
        // non-zero: deep nodes hold few rows, and scanning only their words keeps growth cheap.
        let root: Vec<(usize, u64)> = care.iter().copied().enumerate().filter(|&(_, m)| m != 0).collect();
        let mut stack = vec![(0usize, root, usize::MAX, false)];
        let mut rng = kiln_logic::SplitMix64::new(params.seed);
        let n_inputs = xs.len();
        let mut features: Vec<usize> = (0..n_inputs).collect();
        let draw = params.max_features.min(n_inputs);
        while let Some((depth, mask, parent, side)) = stack.pop() {
            let count = |m: &[(usize, u64)], col: Option<&Vec<u64>>| -> (u64, u64) {
                let mut n = 0u64;
                let mut pos = 0u64;
                for &(w, bits) in m {
                    let b = match col {
                        Some(c) => bits & c[w],
                        None => bits,
                    };
                    n += u64::from(b.count_ones());
                    pos += u64::from((b & y[w]).count_ones());
                }
                (pos, n)
            };
            let (pos, n) = count(&mask, None);
            let majority = if 2 * pos == n { default } else { 2 * pos > n };
            let id = nodes.len();
            nodes.push(Node {
                depth,
                majority,
                split: None,
                gain: 0.0,
            });
            if parent != usize::MAX {
                if let Some((_, zero, one)) = nodes[parent].split.as_mut() {
                    if side {
                        *one = id;
                    } else {
                        *zero = id;
                    }
                }
            }
            if depth >= params.max_depth || n < params.min_split.max(2) || pos == 0 || pos == n {
                continue;
            }
            let parent_impurity = gini(pos, n);
            let mut best: Option<(f64, usize)> = None;
            if draw > 0 {
                // A partial Fisher-Yates shuffle puts `draw` random inputs first.
                for k in 0..draw {
                    let j = k + (rng.next_u64() % (n_inputs - k) as u64) as usize;
                    features.swap(k, j);
                }
            }
            let considered = if draw > 0 { &features[..draw] } else { &features[..] };
            for &i in considered {
                let col = &xs[i];
                let (p1, n1) = count(&mask, Some(col));
                if n1 == 0 || n1 == n {
                    continue;
                }
                let imp = gini(p1, n1) + gini(pos - p1, n - n1);
                // Splits that do not lower the impurity are allowed, as in CART implementations
                // such as scikit-learn's: on XOR-like functions no single input helps at first,
                // yet the split below it does.
                if imp <= parent_impurity + 1e-9 && best.is_none_or(|(b, _)| imp < b) {
                    best = Some((imp, i));
                }
            }
            let Some((imp, input)) = best else { continue };
            nodes[id].gain = parent_impurity - imp;
            let col = &xs[input];
            let split = |want: bool| -> Vec<(usize, u64)> {
                mask.iter()
                    .map(|&(w, bits)| (w, if want { bits & col[w] } else { bits & !col[w] }))
                    .filter(|&(_, b)| b != 0)
                    .collect()
            };
            nodes[id].split = Some((input, usize::MAX, usize::MAX));
            stack.push((depth + 1, split(true), id, true));
            stack.push((depth + 1, split(false), id, false));
        }
        DecisionTree { nodes }
    }

    /// Deepest level of the grown tree.
    pub fn depth(&self) -> usize {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// Impurity removed by splits on each of the first `features` features, summed over the
    /// tree (scikit-learn's unnormalised `feature_importances_`).
    pub fn importance(&self, features: usize) -> Vec<f64> {
        let mut out = vec![0.0; features];
        for node in &self.nodes {
            if let Some((f, _, _)) = node.split {
                if let Some(slot) = out.get_mut(f) {
                    *slot += node.gain;
                }
            }
        }
        out
    }

    /// Predictions of the tree cut at `depth`, as a bit vector over `samples`' rows.
    pub fn predict(&self, samples: &SampleSet, depth: usize) -> Vec<u64> {
        self.predict_on(samples.input_columns(), samples.row_mask(), depth)
    }

    /// Predictions of the tree cut at `depth` on the rows set in `rows`, given the feature
    /// columns it was grown on.
    pub fn predict_on(&self, xs: &[Vec<u64>], rows: Vec<u64>, depth: usize) -> Vec<u64> {
        let mut out = vec![0u64; rows.len()];
        // Route all rows at once: a node's rows are a mask, split by its input's column.
        let mut stack = vec![(0usize, rows)];
        while let Some((id, mask)) = stack.pop() {
            let node = &self.nodes[id];
            match node.split {
                Some((input, zero, one)) if node.depth < depth => {
                    let col = &xs[input];
                    let ones: Vec<u64> = mask.iter().zip(col).map(|(m, c)| m & c).collect();
                    let zeros: Vec<u64> = mask.iter().zip(col).map(|(m, c)| m & !c).collect();
                    stack.push((one, ones));
                    stack.push((zero, zeros));
                }
                _ => {
                    if node.majority {
                        for (o, m) in out.iter_mut().zip(&mask) {
                            *o |= m;
                        }
                    }
                }
            }
        }
        out
    }

    /// The tree cut at `depth` as gates of `circuit` over its inputs: each split is a multiplexer
    /// on its input, leaves are constants; [`Circuit::simplify`] later folds the constants.
    pub fn to_signal(&self, circuit: &mut Circuit, depth: usize) -> Result<Signal, kiln_logic::CircuitError> {
        self.to_signal_with(circuit, depth, &mut |_, i| Ok(Signal::Input(i)))
    }

    /// [`DecisionTree::to_signal`] for a tree grown on derived features: `feature(circuit, f)`
    /// gives the signal of feature `f` (it may add gates; it is called once per split).
    pub fn to_signal_with(
        &self,
        circuit: &mut Circuit,
        depth: usize,
        feature: &mut dyn FnMut(&mut Circuit, usize) -> Result<Signal, kiln_logic::CircuitError>,
    ) -> Result<Signal, kiln_logic::CircuitError> {
        // Children come after their parents in `nodes`, so a reverse pass sees children first.
        let mut signal = vec![Signal::Const(false); self.nodes.len()];
        for id in (0..self.nodes.len()).rev() {
            let node = &self.nodes[id];
            signal[id] = match node.split {
                Some((input, zero, one)) if node.depth < depth => {
                    let x = feature(circuit, input)?;
                    mux(circuit, x, signal[zero], signal[one])?
                }
                _ => Signal::Const(node.majority),
            };
        }
        Ok(signal[0])
    }
}

/// `x ? s1 : s0` as gates of `circuit`, folding constant and equal branches into one gate or none.
pub fn mux(circuit: &mut Circuit, x: Signal, s0: Signal, s1: Signal) -> Result<Signal, kiln_logic::CircuitError> {
    Ok(match (s0, s1) {
        (a, b) if a == b => a,
        (Signal::Const(false), Signal::Const(true)) => x,
        (Signal::Const(true), Signal::Const(false)) => circuit.gate(Op::Not, &[x])?,
        (Signal::Const(false), b) => circuit.gate(Op::And, &[x, b])?,
        (a, Signal::Const(false)) => circuit.gate(Op::Nimplies, &[a, x])?,
        (Signal::Const(true), b) => circuit.gate(Op::Implies, &[x, b])?,
        (a, Signal::Const(true)) => circuit.gate(Op::Or, &[x, a])?,
        (a, b) => {
            let hi = circuit.gate(Op::And, &[x, b])?;
            let lo = circuit.gate(Op::Nimplies, &[a, x])?;
            circuit.gate(Op::Or, &[hi, lo])?
        }
    })
}
