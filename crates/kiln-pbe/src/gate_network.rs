//! Wide differentiable gate networks trained in minibatches on samples (difflogic's recipe), fired
//! into circuits whose output is a threshold over a group of gates.
//!
//! Layer 0 reads the inputs and every later layer reads the one before it, through fixed random
//! wiring: each previous signal is read about equally often. Each gate holds 16 logits and computes
//! the softmax mixture of the 16 two-input functions in probabilistic logic. The last layer is
//! split into one group per output; the group's mean, centred and scaled, is the logit of a
//! binary cross-entropy. Firing takes every gate's argmax and turns each group into "at least `t`
//! of these gates are 1", with `t` chosen on the training rows.

use kiln_core::{Rng, Tensor, Var};
use kiln_logic::{Circuit, Op, SampleSet, Signal};
use kiln_nn::loss::{binary_cross_entropy_with_logits, Reduction};

use crate::learn::{fire_gate, gate_polynomials, LearnError, PASS_A};

/// Shape and training settings of a [`GateNetwork`].
#[derive(Debug, Clone, Copy)]
pub struct NetParams {
    /// Gates per hidden layer.
    pub width: usize,
    /// Number of gate layers, the output layer included.
    pub depth: usize,
    /// Gates per output in the last layer.
    pub group: usize,
    /// Residual initialisation: extra logit on the pass-through of the first input.
    pub residual: f64,
    /// Scale of the group mean: logit = `scale · (mean − ½)`.
    pub scale: f64,
    /// Rows per minibatch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
}

impl Default for NetParams {
    fn default() -> Self {
        NetParams {
            width: 256,
            depth: 4,
            group: 63,
            residual: 0.0,
            scale: 8.0,
            batch: 64,
            lr: 0.01,
        }
    }
}

struct Layer {
    logits: Var,
    wires: [Vec<usize>; 2],
    wires_t: [Tensor; 2],
}

/// A trainable network of relaxed two-input gates.
pub struct GateNetwork {
    layers: Vec<Layer>,
    poly: Tensor,
    inputs: usize,
    outputs: usize,
    params: NetParams,
}

/// Samples as dense 0/1 tensors: inputs `[rows, n]`, outputs `[rows, m]` and a care mask.
pub struct DenseSamples {
    x: Tensor,
    y: Tensor,
    care: Tensor,
    rows: usize,
}

impl DenseSamples {
    /// Unpacks `samples` into f32 tensors (unspecified outputs get weight 0).
    pub fn new(samples: &SampleSet) -> Result<DenseSamples, LearnError> {
        let (rows, n, m) = (samples.len(), samples.num_inputs(), samples.num_outputs());
        let len = rows
            .checked_mul(n)
            .ok_or_else(|| LearnError::Options(format!("{rows} rows of {n} inputs overflow")))?;
        let mut x = vec![0f32; len];
        for (i, col) in samples.input_columns().iter().enumerate() {
            for r in 0..rows {
                if col[r / 64] >> (r % 64) & 1 == 1 {
                    x[r * n + i] = 1.0;
                }
            }
        }
        let mut y = vec![0f32; rows * m];
        let mut care = vec![0f32; rows * m];
        for r in 0..rows {
            for j in 0..m {
                if let Some(v) = samples.output(r, j) {
                    care[r * m + j] = 1.0;
                    y[r * m + j] = if v { 1.0 } else { 0.0 };
                }
            }
        }
        Ok(DenseSamples {
            x: Tensor::from_vec(x, [rows, n])?,
            y: Tensor::from_vec(y, [rows, m])?,
            care: Tensor::from_vec(care, [rows, m])?,
            rows,
        })
    }
}

/// Wiring that reads each of `from` signals about equally often: shuffled copies of `0..from`.
fn spread_wires(from: usize, count: usize, rng: &mut Rng) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut perm: Vec<usize> = (0..from).collect();
        rng.shuffle(&mut perm);
        out.extend(perm);
    }
    out.truncate(count);
    out
}

/// Most gates a [`GateNetwork`] may have: 2^24 gates hold 1 GiB of logits, and Adam and a batch's
/// activations several times that.
pub const MAX_NETWORK_GATES: usize = 1 << 24;

impl GateNetwork {
    /// A fresh network for `inputs` inputs and `outputs` outputs, of at most
    /// [`MAX_NETWORK_GATES`] gates.
    pub fn new(inputs: usize, outputs: usize, params: NetParams, rng: &mut Rng) -> Result<GateNetwork, LearnError> {
        if params.depth == 0 || params.width == 0 || params.group == 0 || inputs == 0 {
            return Err(LearnError::Options(format!(
                "gate network needs inputs, width, depth and group ≥ 1 (got {inputs}, {}, {}, {})",
                params.width, params.depth, params.group
            )));
        }
        // Each gate holds 16 logits and as many Adam moments, and a step keeps activations per
        // gate and row: refused before anything is allocated when the sizes cannot be trained.
        let total = params
            .width
            .checked_mul(params.depth - 1)
            .and_then(|hidden| outputs.checked_mul(params.group).and_then(|last| hidden.checked_add(last)));
        if inputs > MAX_NETWORK_GATES {
            return Err(LearnError::Options(format!(
                "a gate network reads at most {MAX_NETWORK_GATES} inputs, not {inputs}"
            )));
        }
        if total.is_none_or(|g| g > MAX_NETWORK_GATES) {
            return Err(LearnError::Options(format!(
                "a gate network of width {}, depth {} and {} outputs of {} gates each has more than {MAX_NETWORK_GATES} gates",
                params.width, params.depth, outputs, params.group
            )));
        }
        let mut layers = Vec::with_capacity(params.depth);
        let mut prev = inputs;
        for l in 0..params.depth {
            let gates = if l + 1 == params.depth {
                outputs
                    .checked_mul(params.group)
                    .ok_or_else(|| LearnError::Options("output group too large".into()))?
            } else {
                params.width
            };
            let mut init: Vec<f32> = (0..gates * 16).map(|_| rng.normal() as f32).collect();
            for g in 0..gates {
                init[g * 16 + PASS_A] += params.residual as f32;
            }
            // The two inputs of a gate come from different shuffles, so they rarely coincide.
            let wires = [spread_wires(prev, gates, rng), spread_wires(prev, gates, rng)];
            let t = |w: &Vec<usize>| Tensor::from_vec(w.iter().map(|&i| i as i64).collect::<Vec<_>>(), [gates]);
            let wires_t = [t(&wires[0])?, t(&wires[1])?];
            layers.push(Layer {
                logits: Var::new(&Tensor::from_vec(init, [gates, 16])?),
                wires,
                wires_t,
            });
            prev = gates;
        }
        Ok(GateNetwork {
            layers,
            poly: gate_polynomials()?,
            inputs,
            outputs,
            params,
        })
    }

    /// The trainable parameters.
    pub fn vars(&self) -> Vec<Var> {
        self.layers.iter().map(|l| l.logits.clone()).collect()
    }

    /// Output logits `[rows, outputs]` of the relaxed network on `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor, LearnError> {
        let mut s = x.clone();
        for l in &self.layers {
            let a = s.index_select(1, &l.wires_t[0])?;
            let b = s.index_select(1, &l.wires_t[1])?;
            let k = l.logits.tensor().softmax(-1)?.matmul(&self.poly)?.t()?;
            let coef = |i: usize| k.select(0, i);
            s = coef(0)?
                .add(&a.mul(&coef(1)?)?)?
                .add(&b.mul(&coef(2)?)?)?
                .add(&a.mul(&b)?.mul(&coef(3)?)?)?;
        }
        let rows = s.dims()[0];
        let mean = s.reshape([rows, self.outputs, self.params.group])?.mean(&[-1], false)?;
        Ok(mean.affine(self.params.scale, -0.5 * self.params.scale)?)
    }

    /// Mean cross-entropy over the specified outputs of rows `batch` of `data`.
    pub fn loss(&self, data: &DenseSamples, batch: &Tensor) -> Result<Tensor, LearnError> {
        let x = data.x.index_select(0, batch)?;
        let y = data.y.index_select(0, batch)?;
        let care = data.care.index_select(0, batch)?;
        let per = binary_cross_entropy_with_logits(&self.forward(&x)?, &y, Reduction::None)?;
        let total = care.sum_all()?.to_vec::<f32>()?[0].max(1.0);
        Ok(per.mul(&care)?.sum_all()?.affine(1.0 / f64::from(total), 0.0)?)
    }

    /// One epoch of Adam over `data` in shuffled minibatches; returns the mean loss.
    pub fn epoch(&self, data: &DenseSamples, adam: &mut kiln_nn::Adam, rng: &mut Rng) -> Result<f64, LearnError> {
        use kiln_nn::Optimizer;
        let mut order: Vec<i64> = (0..data.rows as i64).collect();
        rng.shuffle(&mut order);
        let mut sum = 0.0;
        let mut count = 0usize;
        for chunk in order.chunks(self.params.batch.max(1)) {
            let idx = Tensor::from_vec(chunk.to_vec(), [chunk.len()])?;
            let loss = self.loss(data, &idx)?;
            sum += loss.to_vec::<f32>()?[0] as f64;
            count += 1;
            adam.step(&loss.backward()?)?;
        }
        Ok(sum / count.max(1) as f64)
    }

    /// The fired gates of the last layer, as signals of a new circuit over the inputs.
    fn fire_gates(&self, input_names: &[String]) -> Result<(Circuit, Vec<Signal>), LearnError> {
        let mut c = Circuit::new(input_names.to_vec());
        let mut signals: Vec<Signal> = (0..self.inputs).map(Signal::Input).collect();
        for l in &self.layers {
            let tts = l.logits.tensor().argmax(-1, false)?.to_vec::<i64>()?;
            let mut next = Vec::with_capacity(tts.len());
            for (g, &tt) in tts.iter().enumerate() {
                let (a, b) = (signals[l.wires[0][g]], signals[l.wires[1][g]]);
                next.push(c.push(fire_gate(tt as u8, a, b))?);
            }
            signals = next;
        }
        Ok((c, signals))
    }

    /// Fires the network: every gate its argmax, each output group "at least `t` of its gates",
    /// `t` chosen for the best accuracy on `train`. Returns the simplified circuit.
    pub fn fire(&self, train: &SampleSet) -> Result<Circuit, LearnError> {
        let (mut c, last) = self.fire_gates(train.input_names())?;
        let group = self.params.group;
        // Simulate the fired gates on the training rows to pick each output's threshold.
        let mut probe = c.clone();
        for (k, &s) in last.iter().enumerate() {
            probe.set_output(&format!("g{k}"), s)?;
        }
        let cols = probe.eval_columns(&train.input_words(), train.words());
        for j in 0..self.outputs {
            let counts: Vec<usize> = (0..train.len())
                .map(|r| (0..group).filter(|&k| cols[j * group + k][r / 64] >> (r % 64) & 1 == 1).count())
                .collect();
            let mut best = (0usize, group.div_ceil(2));
            for t in 0..=group + 1 {
                let right = (0..train.len())
                    .filter(|&r| train.output(r, j).is_some_and(|v| v == (counts[r] >= t)))
                    .count();
                if right > best.0 {
                    best = (right, t);
                }
            }
            let out = at_least(&mut c, &last[j * group..(j + 1) * group], best.1)?;
            c.set_output(&train.output_names()[j], out)?;
        }
        Ok(c.simplify())
    }
}

/// A signal that is 1 when at least `t` of `xs` are 1. Small thresholds use the counting
/// recurrence `c[i][k] = c[i-1][k] ∨ (x_i ∧ c[i-1][k-1])` (two gates per cell, `t·(n−t+1)` cells);
/// otherwise the bits are summed by a carry-save tree of full adders (five gates per three bits)
/// and the count compared with the constant `t`.
pub fn at_least(c: &mut Circuit, xs: &[Signal], t: usize) -> Result<Signal, kiln_logic::CircuitError> {
    if t == 0 {
        return Ok(Signal::Const(true));
    }
    if t > xs.len() {
        return Ok(Signal::Const(false));
    }
    let cells = t * (xs.len() - t + 1);
    if 2 * cells <= 6 * xs.len() {
        counting_threshold(c, xs, t)
    } else {
        let count = popcount(c, xs)?;
        count_at_least(c, &count, t)
    }
}

fn counting_threshold(c: &mut Circuit, xs: &[Signal], t: usize) -> Result<Signal, kiln_logic::CircuitError> {
    // reach[k] = "at least k of the inputs seen so far", k = 1..=t.
    let mut reach = vec![Signal::Const(false); t + 1];
    reach[0] = Signal::Const(true);
    for (i, &x) in xs.iter().enumerate() {
        // Counts above i+1 are unreachable so far; lower ones must stay reachable by the rest.
        let lo = (t + i + 1).saturating_sub(xs.len()).max(1);
        for k in (lo..=t.min(i + 1)).rev() {
            let carry = match reach[k - 1] {
                Signal::Const(true) => x,
                Signal::Const(false) => Signal::Const(false),
                prev => c.gate(Op::And, &[x, prev])?,
            };
            reach[k] = match (reach[k], carry) {
                (Signal::Const(false), s) | (s, Signal::Const(false)) => s,
                (a, b) => c.gate(Op::Or, &[a, b])?,
            };
        }
    }
    Ok(reach[t])
}

/// The binary count of the 1s among `xs`, least significant bit first.
pub fn popcount(c: &mut Circuit, xs: &[Signal]) -> Result<Vec<Signal>, kiln_logic::CircuitError> {
    kiln_logic::arith::popcount(c, xs)
}

/// Whether the binary number `bits` (least significant first) is at least `t`.
fn count_at_least(c: &mut Circuit, bits: &[Signal], t: usize) -> Result<Signal, kiln_logic::CircuitError> {
    crate::threshold::at_least_value(c, bits, t as u64)
}
