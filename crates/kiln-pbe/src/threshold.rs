//! Linear threshold units learned from samples, optionally behind the parity of a few inputs.
//!
//! The relaxed program is one unit `σ(w·x̃ + b)` over the inputs in ±1 form, fitted to the
//! training rows by Adam on kiln-core tensors (logistic regression). Firing rounds the weights to
//! integers of at most `bits` bits and reads the unit as the comparator `Σ |wᵢ|·ℓᵢ ≥ T`, where the
//! literal `ℓᵢ` is `xᵢ` or `¬xᵢ` by the weight's sign and `T` is chosen on the training rows. The
//! comparator is built as a carry-save tree of full adders over the weights' bit columns and a
//! ripple comparison with the constant, so its size follows the weights' total number of 1 bits.
//!
//! Comparators, majorities and the carry of an adder are threshold functions; the bits of a sum
//! are the parity of two operand bits and a carry. A target is therefore also tried XOR the parity
//! of the one or two inputs that make it most nearly linear, found by a scan of fourth-order
//! correlations: for a parity `P`, `Σₖ corr(y ⊕ P, xₖ)²` is large when `y ⊕ P` is a threshold
//! function of the inputs and near `n / rows` when it is not.

use std::time::Instant;

use kiln_core::{Tensor, Var};
pub use kiln_logic::arith::{at_least_value, weighted_sum};
use kiln_logic::{Circuit, CircuitError, Op, SampleSet, Signal};
use kiln_nn::loss::{binary_cross_entropy_with_logits, Reduction};

use crate::learn::LearnError;

/// Training and firing settings of a threshold unit.
#[derive(Debug, Clone, Copy)]
pub struct ThresholdParams {
    /// Full-batch Adam steps of the logistic fit.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Widest integer weight tried when firing, in bits (every width from 1 up is tried).
    pub max_bits: u32,
    /// Largest parity (number of inputs XORed with the unit) searched: 0, 1 or 2.
    pub max_parity: usize,
}

impl Default for ThresholdParams {
    fn default() -> Self {
        ThresholdParams {
            // Measured on IWLS ex00 and ex30: 300 steps at 0.05 fire to 99.0-99.4 % validation
            // accuracy, 3000 at 0.1 to 99.6-99.7 %; the weights of a separable target keep
            // sharpening long after the loss looks flat.
            steps: 3000,
            lr: 0.1,
            max_bits: 12,
            max_parity: 2,
        }
    }
}

/// A fired threshold unit: output `parity(parity_inputs) ⊕ [Σ weightᵢ·ℓᵢ ≥ threshold]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredUnit {
    /// `(input, weight, negated)`: the literal is `¬x` when `negated`; weights are positive.
    pub terms: Vec<(usize, u64, bool)>,
    /// The comparator's constant.
    pub threshold: u64,
    /// Inputs whose parity is XORed with the comparator.
    pub parity_inputs: Vec<usize>,
    /// Weight width it was fired at.
    pub bits: u32,
}

impl FiredUnit {
    /// Appends the unit to `c` (whose inputs are the samples' inputs) and returns its output.
    pub fn to_signal(&self, c: &mut Circuit) -> Result<Signal, CircuitError> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for &(i, w, neg) in &self.terms {
            let s = if neg {
                c.gate(Op::Not, &[Signal::Input(i)])?
            } else {
                Signal::Input(i)
            };
            terms.push((s, w));
        }
        let sum = weighted_sum(c, &terms)?;
        let mut out = at_least_value(c, &sum, self.threshold)?;
        for &i in &self.parity_inputs {
            out = match out {
                Signal::Const(false) => Signal::Input(i),
                Signal::Const(true) => c.gate(Op::Not, &[Signal::Input(i)])?,
                o => c.gate(Op::Xor, &[o, Signal::Input(i)])?,
            };
        }
        Ok(out)
    }
}

/// Output `j`'s training target as packed words and its care mask.
fn target_words(train: &SampleSet, j: usize) -> (Vec<u64>, Vec<u64>) {
    let mask = train.row_mask();
    let care: Vec<u64> = train.care_columns()[j].iter().zip(&mask).map(|(c, m)| c & m).collect();
    let y: Vec<u64> = train.output_columns()[j].iter().zip(&care).map(|(y, c)| y & c).collect();
    (y, care)
}

/// Rows among `care` where `a` and `b` differ. The parity scan calls this for every triple of
/// inputs (22 million times on 512 inputs), and the baseline x86-64 target has no POPCNT
/// instruction, so the loop is compiled again for CPUs that have it (and AVX2, with which LLVM
/// vectorises the count) and chosen at run time.
fn differences(a: &[u64], b: &[u64], care: &[u64]) -> u32 {
    #[inline(always)]
    fn portable(a: &[u64], b: &[u64], care: &[u64]) -> u32 {
        a.iter().zip(b).zip(care).map(|((x, y), m)| ((x ^ y) & m).count_ones()).sum()
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "popcnt,avx2")]
        fn avx2(a: &[u64], b: &[u64], care: &[u64]) -> u32 {
            portable(a, b, care)
        }
        #[target_feature(enable = "popcnt")]
        fn popcnt(a: &[u64], b: &[u64], care: &[u64]) -> u32 {
            portable(a, b, care)
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has AVX2 and POPCNT, checked just above.
            return unsafe { avx2(a, b, care) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT, checked just above.
            return unsafe { popcnt(a, b, care) };
        }
    }
    portable(a, b, care)
}

/// `Σₖ corr(t, xₖ)²` over the care rows: how much of `t` a linear function of the inputs explains.
fn linear_score(t: &[u64], care: &[u64], xs: &[Vec<u64>], total: f64) -> f64 {
    xs.iter()
        .map(|x| {
            let corr = (total - 2.0 * f64::from(differences(t, x, care))) / total;
            corr * corr
        })
        .sum()
}

/// Most inputs for which [`parity_candidates`] scans pairs of inputs.
pub const MAX_PAIR_SCAN_INPUTS: usize = 1024;

/// The parity sets (of at most `max_parity` inputs) whose XOR with output `j` scores highest by
/// `Σₖ corr(y ⊕ parity, xₖ)²` over the care rows (how much of it a linear function of the inputs
/// explains): the empty set, the best single input (among those scanned by `deadline`) and
/// the best pair (on at most [`MAX_PAIR_SCAN_INPUTS`] inputs), each with its score.
/// The pair scan visits each unordered triple `{i, j, k}` once, since `corr(y ⊕ xᵢ ⊕ xⱼ, xₖ)` is
/// the same for all three ways of choosing the pair from it; a scan cut short by `deadline` offers
/// no pair, since its partial sums would favour the pairs it reached first.
pub fn parity_candidates(train: &SampleSet, j: usize, max_parity: usize, deadline: Instant) -> Vec<(Vec<usize>, f64)> {
    let (y, care) = target_words(train, j);
    let total = care.iter().map(|w| w.count_ones() as f64).sum::<f64>().max(1.0);
    let xs = train.input_columns();
    let n = xs.len();
    let words = y.len();
    let mut out = vec![(Vec::new(), linear_score(&y, &care, xs, total))];
    if max_parity >= 1 {
        let mut best: Option<(usize, f64)> = None;
        let mut t = vec![0u64; words];
        for i in 0..n {
            if Instant::now() >= deadline {
                break;
            }
            for (w, slot) in t.iter_mut().enumerate() {
                *slot = y[w] ^ xs[i][w];
            }
            let s = linear_score(&t, &care, xs, total);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        if let Some((i, s)) = best {
            out.push((vec![i], s));
        }
    }
    // The pair scan takes n² accumulators and n³/6 passes over the rows: past a thousand inputs
    // it could not finish in any budget, and 60,000 columns asked for 29 GB at once.
    if max_parity >= 2 && (2..=MAX_PAIR_SCAN_INPUTS).contains(&n) {
        // pair[i * n + j] (i < j) accumulates Σₖ corr(y ⊕ xᵢ ⊕ xⱼ, xₖ)² over k ∉ {i, j}.
        let mut pair = vec![0f64; n * n];
        let mut ti = vec![0u64; words];
        let mut tij = vec![0u64; words];
        for i in 0..n {
            if Instant::now() >= deadline {
                return out;
            }
            for (w, slot) in ti.iter_mut().enumerate() {
                *slot = y[w] ^ xs[i][w];
            }
            for j2 in i + 1..n {
                for (w, slot) in tij.iter_mut().enumerate() {
                    *slot = ti[w] ^ xs[j2][w];
                }
                for k in j2 + 1..n {
                    let differ = differences(&tij, &xs[k], &care);
                    let corr = (total - 2.0 * f64::from(differ)) / total;
                    let c2 = corr * corr;
                    pair[i * n + j2] += c2;
                    pair[i * n + k] += c2;
                    pair[j2 * n + k] += c2;
                }
            }
        }
        let mut best: Option<(usize, usize, f64)> = None;
        for i in 0..n {
            for j2 in i + 1..n {
                let s = pair[i * n + j2];
                if best.is_none_or(|(_, _, b)| s > b) {
                    best = Some((i, j2, s));
                }
            }
        }
        if let Some((i, j2, s)) = best {
            out.push((vec![i, j2], s));
        }
    }
    out
}

/// The inputs of `train` as a `[rows, n]` tensor of ±1.
pub fn signed_inputs(train: &SampleSet) -> Result<Tensor, LearnError> {
    let (rows, n) = (train.len(), train.num_inputs());
    let len = rows
        .checked_mul(n)
        .ok_or_else(|| LearnError::Options(format!("{rows} rows of {n} inputs overflow")))?;
    let mut x = vec![-1f32; len];
    for (i, col) in train.input_columns().iter().enumerate() {
        for r in 0..rows {
            if col[r / 64] >> (r % 64) & 1 == 1 {
                x[r * n + i] = 1.0;
            }
        }
    }
    Ok(Tensor::from_vec(x, [rows, n])?)
}

/// Fits `σ(x·w + b)` (`x` holds some or all of the inputs of `train` in ±1 form, one row per
/// sample) to output `j` XOR the parity of `parity_inputs` by full-batch Adam on the
/// mean cross-entropy over the care rows, for `params.steps` steps or until `deadline`; returns
/// `(w, b)`.
pub fn fit_unit(
    train: &SampleSet,
    x: &Tensor,
    j: usize,
    parity_inputs: &[usize],
    params: &ThresholdParams,
    deadline: Instant,
) -> Result<(Vec<f64>, f64), LearnError> {
    use kiln_nn::Optimizer;
    let (rows, n) = (train.len(), x.dims()[1]);
    let mut y = vec![0f32; rows];
    let mut care = vec![0f32; rows];
    for r in 0..rows {
        if let Some(v) = train.output(r, j) {
            let flip = parity_inputs.iter().fold(false, |acc, &i| acc ^ train.input(r, i));
            y[r] = f32::from(u8::from(v ^ flip));
            care[r] = 1.0;
        }
    }
    let count = care.iter().sum::<f32>().max(1.0);
    let y = Tensor::from_vec(y, [rows, 1])?;
    let care = Tensor::from_vec(care, [rows, 1])?;
    let w = Var::new(&Tensor::zeros([n, 1], kiln_core::DType::F32)?);
    let b = Var::new(&Tensor::zeros([1], kiln_core::DType::F32)?);
    let mut adam = kiln_nn::Adam::new(vec![w.clone(), b.clone()], params.lr)?;
    for _ in 0..params.steps {
        if Instant::now() >= deadline {
            break;
        }
        let logits = x.matmul(&w.tensor())?.add(&b.tensor())?;
        let per = binary_cross_entropy_with_logits(&logits, &y, Reduction::None)?;
        let loss = per.mul(&care)?.sum_all()?.affine(1.0 / f64::from(count), 0.0)?;
        adam.step(&loss.backward()?)?;
    }
    Ok((w.tensor().to_vec_f64()?, b.tensor().to_vec_f64()?[0]))
}

/// Fires the fitted unit `w` at `bits`-bit integer weights, choosing the comparator's constant for
/// the best accuracy on output `j` of `train` (XOR the parity). `None` when every weight rounds
/// to zero.
pub fn fire_unit(train: &SampleSet, j: usize, w: &[f64], parity_inputs: &[usize], bits: u32) -> Option<FiredUnit> {
    let top = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if top.is_nan() || top <= 0.0 || bits == 0 || bits > 40 {
        return None;
    }
    let scale = ((1u64 << bits) - 1) as f64 / top;
    let terms: Vec<(usize, u64, bool)> = w
        .iter()
        .enumerate()
        .filter_map(|(i, &v)| {
            let q = (v.abs() * scale).round() as u64;
            (q > 0).then_some((i, q, v < 0.0))
        })
        .collect();
    if terms.is_empty() {
        return None;
    }
    // Each care row's comparator sum and target, sorted by the sum.
    let mut rows: Vec<(u64, bool)> = (0..train.len())
        .filter_map(|r| {
            let v = train.output(r, j)?;
            let flip = parity_inputs.iter().fold(false, |acc, &i| acc ^ train.input(r, i));
            let sum = terms
                .iter()
                .map(|&(i, q, neg)| if train.input(r, i) != neg { q } else { 0 })
                .sum::<u64>();
            Some((sum, v ^ flip))
        })
        .collect();
    rows.sort_unstable();
    // Threshold just above the first k rows: right = zeros among them + ones after them.
    let ones_total = rows.iter().filter(|r| r.1).count();
    let (mut zeros_below, mut ones_below) = (0usize, 0usize);
    let mut best = (ones_total, 0u64); // T = 0: everything is 1.
    let mut k = 0;
    while k < rows.len() {
        let s = rows[k].0;
        while k < rows.len() && rows[k].0 == s {
            if rows[k].1 {
                ones_below += 1;
            } else {
                zeros_below += 1;
            }
            k += 1;
        }
        let right = zeros_below + (ones_total - ones_below);
        // Between two seen sums, sit halfway so unseen sums split evenly.
        let next = rows.get(k).map_or(s + 1, |r| r.0);
        let t = s + 1 + (next - s - 1) / 2;
        if right > best.0 {
            best = (right, t);
        }
    }
    Some(FiredUnit {
        terms,
        threshold: best.1,
        parity_inputs: parity_inputs.to_vec(),
        bits,
    })
}

impl FiredUnit {
    /// The unit's output on every row of `set`, packed 64 rows a word.
    pub fn predict(&self, set: &SampleSet) -> Vec<u64> {
        let mut out = vec![0u64; set.words()];
        for r in 0..set.len() {
            let sum = self
                .terms
                .iter()
                .map(|&(i, q, neg)| if set.input(r, i) != neg { q } else { 0 })
                .sum::<u64>();
            let flip = self.parity_inputs.iter().fold(false, |acc, &i| acc ^ set.input(r, i));
            if (sum >= self.threshold) ^ flip {
                out[r / 64] |= 1 << (r % 64);
            }
        }
        out
    }
}

/// Learns one threshold unit per output of `train` (with the parity search of
/// [`parity_candidates`]), firing each at every weight width up to `params.max_bits` and keeping
/// the one with the best accuracy on `valid` whose AIG fits `max_and_nodes` split evenly over the
/// outputs. Returns the circuit and a description, or `None` when no output has a unit.
pub fn learn_threshold(
    train: &SampleSet,
    valid: &SampleSet,
    params: &ThresholdParams,
    max_and_nodes: usize,
    deadline: Instant,
) -> Result<Option<(Circuit, String)>, LearnError> {
    let m = train.num_outputs();
    if m == 0 || train.num_inputs() == 0 {
        return Ok(None);
    }
    // The logistic fits run on at most MAX_DENSE_CELLS unpacked cells; scans, firing and scores
    // use every row.
    let fit_set = crate::generalise::dense_rows(train);
    let x = signed_inputs(&fit_set)?;
    let noise = train.num_inputs() as f64 / train.len().max(1) as f64;
    let mut c = Circuit::new(train.input_names().to_vec());
    let mut details = Vec::new();
    for j in 0..m {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // Each output gets an equal share of the time left; the scan at most half of it.
        let share = deadline.saturating_duration_since(now) / (m - j) as u32;
        let sets = parity_candidates(train, j, params.max_parity, now + share / 2);
        // Fit the plain unit, and the best parity if it explains clearly more than the plain one
        // and clearly more than chance.
        let plain = sets[0].1;
        let mut fits: Vec<Vec<usize>> = vec![Vec::new()];
        if let Some((p, s)) = sets[1..].iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            if *s > 1.2 * plain && *s > 4.0 * noise {
                fits.push(p.clone());
            }
        }
        let fit_end = now + share;
        let mut options: Vec<(f64, FiredUnit)> = Vec::new();
        for (f, p) in fits.iter().enumerate() {
            let left = fit_end.saturating_duration_since(Instant::now());
            let until = Instant::now() + left / (fits.len() - f) as u32;
            let (w, _) = fit_unit(
                &fit_set,
                &x,
                j,
                p,
                params,
                Instant::now() + (until.saturating_duration_since(Instant::now())) / 2,
            )?;
            // With hundreds of inputs the weights of irrelevant ones are noise that fires into
            // wrong terms at wide weights: refit on the inputs of largest weight only, at a few
            // sizes, and let validation choose.
            let mut order: Vec<usize> = (0..w.len()).collect();
            order.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()));
            let sizes: Vec<usize> = [8usize, 16, 32, 64].into_iter().filter(|&k| k < w.len()).collect();
            let mut weights = vec![w];
            for (s, &k) in sizes.iter().enumerate() {
                let left = until.saturating_duration_since(Instant::now());
                let keep: Vec<usize> = order[..k].to_vec();
                let idx = Tensor::from_vec(keep.iter().map(|&i| i as i64).collect::<Vec<_>>(), [k])?;
                let sub = x.index_select(1, &idx)?;
                let (ws, _) = fit_unit(&fit_set, &sub, j, p, params, Instant::now() + left / (sizes.len() - s) as u32)?;
                let mut full = vec![0.0; weights[0].len()];
                for (&i, &v) in keep.iter().zip(&ws) {
                    full[i] = v;
                }
                weights.push(full);
            }
            for w in &weights {
                for bits in 1..=params.max_bits {
                    if let Some(u) = fire_unit(train, j, w, p, bits) {
                        let acc = output_accuracy(valid, j, &u.predict(valid));
                        options.push((acc, u));
                    }
                }
            }
        }
        // Best accuracy first; among equals the unit with fewer weight bits (a smaller circuit).
        let size = |u: &FiredUnit| u.terms.iter().map(|t| t.1.count_ones() as u64).sum::<u64>();
        options.sort_by(|a, b| b.0.total_cmp(&a.0).then(size(&a.1).cmp(&size(&b.1))));
        let mut chosen = None;
        for (acc, u) in options {
            let mut probe = Circuit::new(train.input_names().to_vec());
            let s = u.to_signal(&mut probe)?;
            probe.set_output("y", s)?;
            let ands = crate::generalise::and_nodes(&probe.simplify())?;
            if ands <= max_and_nodes / m {
                chosen = Some((acc, u));
                break;
            }
        }
        let Some((_, u)) = chosen else {
            return Ok(None);
        };
        let s = u.to_signal(&mut c)?;
        c.set_output(&train.output_names()[j], s)?;
        let parity: Vec<&str> = u.parity_inputs.iter().map(|&i| train.input_names()[i].as_str()).collect();
        details.push(format!(
            "{} inputs at {} bits{}",
            u.terms.len(),
            u.bits,
            if parity.is_empty() {
                String::new()
            } else {
                format!(" XOR {}", parity.join(", "))
            }
        ));
    }
    Ok(Some((c.simplify(), details.join("; "))))
}

/// Accuracy of `predicted` on output `j` of `set`, over the rows whose output is specified.
fn output_accuracy(set: &SampleSet, j: usize, predicted: &[u64]) -> f64 {
    let mask = set.row_mask();
    let (mut right, mut total) = (0u64, 0u64);
    for w in 0..set.words() {
        let care = set.care_columns()[j][w] & mask[w];
        right += u64::from((!(set.output_columns()[j][w] ^ predicted[w]) & care).count_ones());
        total += u64::from(care.count_ones());
    }
    if total == 0 {
        1.0
    } else {
        right as f64 / total as f64
    }
}
