//! Loss functions (`torch.nn.functional.*_loss`), numerically stable, with PyTorch's reductions.

use crate::{Error, Result};
use kiln_core::{DType, Tensor};

/// How per-element losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Average (PyTorch's default).
    #[default]
    Mean,
    /// Sum.
    Sum,
    /// Per-element losses, unreduced.
    None,
}

fn reduce(l: Tensor, r: Reduction) -> Result<Tensor> {
    Ok(match r {
        Reduction::Mean => l.mean_all()?,
        Reduction::Sum => l.sum_all()?,
        Reduction::None => l,
    })
}

fn same_shape(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    if input.shape() != target.shape() {
        return Err(Error::config(
            op,
            format!("input {} and target {} must have the same shape", input.shape(), target.shape()),
        ));
    }
    Ok(())
}

/// Mean squared error `(input - target)²` (`F.mse_loss`).
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("mse_loss", input, target)?;
    reduce(input.sub(target)?.square()?, reduction)
}

/// Absolute error `|input - target|` (`F.l1_loss`).
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("l1_loss", input, target)?;
    reduce(input.sub(target)?.abs()?, reduction)
}

/// Huber-style loss (`F.smooth_l1_loss`): `0.5 d²/β` where `|d| < β`, else `|d| - β/2`.
pub fn smooth_l1_loss(input: &Tensor, target: &Tensor, beta: f64, reduction: Reduction) -> Result<Tensor> {
    same_shape("smooth_l1_loss", input, target)?;
    if beta < 0.0 {
        return Err(Error::config("smooth_l1_loss", format!("beta must be non-negative, got {beta}")));
    }
    let d = input.sub(target)?;
    let a = d.abs()?;
    if beta == 0.0 {
        return reduce(a, reduction);
    }
    let quad = d.square()?.mul_scalar(0.5 / beta)?;
    let lin = a.sub_scalar(0.5 * beta)?;
    reduce(a.lt_scalar(beta)?.where_cond(&quad, &lin)?, reduction)
}

/// Binary cross-entropy on probabilities in `[0, 1]` (`F.binary_cross_entropy`), matching PyTorch
/// at the edges: each log is clamped at −100, so a probability of exactly 0 or 1 gives a finite
/// loss, and the gradient with respect to the input is PyTorch's
/// `(p − t) / max(p·(1 − p), ε)` with ε the f32 value of 1e-12, finite everywhere (about −10¹² for
/// `p = 0, t = 1`, 0 for `p = t`).
pub fn binary_cross_entropy(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("binary_cross_entropy", input, target)?;
    // PyTorch's bound on the derivative's denominator: the f32 constant 1e-12 (≈ 9.99999996e-13),
    // also in f64, so the edge slope matches torch's to the last bits.
    const EPS: f64 = 1e-12f32 as f64;
    let one_minus_t = target.neg()?.add_scalar(1.0)?;
    // The loss with each log clamped at −100 (torch's value everywhere); built from a given
    // probability tensor so it can be taken on the input or on its detached copy.
    let clamped = |p: &Tensor| -> Result<Tensor> {
        let lp = p.log()?.clamp(-100.0, f64::INFINITY)?;
        let lq = p.neg()?.log1p()?.clamp(-100.0, f64::INFINITY)?;
        Ok(target.mul(&lp)?.add(&one_minus_t.mul(&lq)?)?.neg()?)
    };
    let pd = input.detach();
    // Where p(1 − p) > ε the logs are above −100 and their derivative is torch's formula, so the
    // plain expression is exact to every order. `p` is replaced by 1/2 elsewhere so that the
    // unused branch of the `where` never differentiates a log at 0 (0 · ∞ = NaN).
    let interior = pd.mul(&pd.neg()?.add_scalar(1.0)?)?.gt_scalar(EPS)?;
    let safe = interior.where_cond(input, &input.scalar_like(0.5))?;
    let inner = clamped(&safe)?;
    // At the edge torch's value is the clamped loss and its derivative the constant
    // (p − t) / ε: the value on the detached input plus a term that is zero in value and has
    // exactly that slope (higher derivatives there are 0).
    let slope = pd.sub(target)?.div_scalar(EPS)?.detach();
    let edge = clamped(&pd)?.add(&input.sub(&pd)?.mul(&slope)?)?;
    reduce(interior.where_cond(&inner, &edge)?, reduction)
}

/// Options of [`binary_cross_entropy_with`] (`torch.nn.BCELoss` arguments).
#[derive(Debug, Clone, Default)]
pub struct BCELoss {
    /// How per-element losses are combined.
    pub reduction: Reduction,
    /// Rescales each element's loss; must broadcast to the input's shape (same dtype).
    pub weight: Option<Tensor>,
}

/// [`binary_cross_entropy`] with an element `weight` (`F.binary_cross_entropy(weight=...)`): each
/// element's loss is multiplied by its weight before the reduction (`Mean` still divides by the
/// element count, as in PyTorch).
pub fn binary_cross_entropy_with(input: &Tensor, target: &Tensor, opts: &BCELoss) -> Result<Tensor> {
    let l = binary_cross_entropy(input, target, Reduction::None)?;
    let l = match &opts.weight {
        Some(w) => {
            broadcasts_onto("binary_cross_entropy", "weight", w, input)?;
            l.mul(w)?
        }
        None => l,
    };
    reduce(l, opts.reduction)
}

/// Checks that `w` has the input's dtype and broadcasts to its shape without enlarging it.
fn broadcasts_onto(op: &'static str, what: &str, w: &Tensor, input: &Tensor) -> Result<()> {
    if w.dtype() != input.dtype() {
        return Err(Error::config(
            op,
            format!("{what} has dtype {}, the input {}", w.dtype(), input.dtype()),
        ));
    }
    let fits = input.shape().broadcast(w.shape(), op).is_ok_and(|s| s == *input.shape());
    if !fits {
        return Err(Error::config(
            op,
            format!("{what} {} does not broadcast to input {}", w.shape(), input.shape()),
        ));
    }
    Ok(())
}

/// Binary cross-entropy on logits (`F.binary_cross_entropy_with_logits`), computed as
/// `(1 − t)·x − log σ(x)` with a stable [`logsigmoid`](crate::activation::logsigmoid), which never
/// overflows for large |x| and has PyTorch's gradient `σ(x) − t` everywhere, 0 included.
pub fn binary_cross_entropy_with_logits(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    binary_cross_entropy_with_logits_with(
        input,
        target,
        &BCEWithLogitsLoss {
            reduction,
            ..Default::default()
        },
    )
}

/// Options of [`binary_cross_entropy_with_logits_with`] (`torch.nn.BCEWithLogitsLoss` arguments).
#[derive(Debug, Clone, Default)]
pub struct BCEWithLogitsLoss {
    /// How per-element losses are combined.
    pub reduction: Reduction,
    /// Rescales each element's loss; must broadcast to the input's shape (same dtype).
    pub weight: Option<Tensor>,
    /// Weight of the positive term, usually one per class (the last dim); must broadcast to the
    /// input's shape. Values above 1 raise recall, below 1 precision.
    pub pos_weight: Option<Tensor>,
}

impl BCEWithLogitsLoss {
    /// Applies the loss to logits and same-shaped targets in `[0, 1]`.
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
        binary_cross_entropy_with_logits_with(logits, target, self)
    }
}

/// [`binary_cross_entropy_with_logits`] with `weight` and `pos_weight`:
/// `weight · ((1 − t)·x − (1 + (pos_weight − 1)·t)·log σ(x))`, PyTorch's formula. Gradients flow
/// to the input, the target and both weights.
///
/// ```
/// use kiln_core::Tensor;
/// use kiln_nn::loss::{binary_cross_entropy_with_logits_with, BCEWithLogitsLoss, Reduction};
/// let x = Tensor::from_slice(&[0.0f64, 0.0], [1, 2])?;
/// let t = Tensor::from_slice(&[1.0f64, 1.0], [1, 2])?;
/// let opts = BCEWithLogitsLoss {
///     reduction: Reduction::None,
///     pos_weight: Some(Tensor::from_slice(&[1.0f64, 3.0], [2])?),
///     ..Default::default()
/// };
/// let l = binary_cross_entropy_with_logits_with(&x, &t, &opts)?.to_vec::<f64>()?;
/// assert!((l[1] - 3.0 * l[0]).abs() < 1e-15);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn binary_cross_entropy_with_logits_with(input: &Tensor, target: &Tensor, opts: &BCEWithLogitsLoss) -> Result<Tensor> {
    const OP: &str = "binary_cross_entropy_with_logits";
    same_shape(OP, input, target)?;
    let one_minus_t = target.neg()?.add_scalar(1.0)?;
    let neg_ls = crate::activation::logsigmoid(input)?.neg()?;
    let pos = match &opts.pos_weight {
        Some(pw) => {
            broadcasts_onto(OP, "pos_weight", pw, input)?;
            pw.sub_scalar(1.0)?.mul(target)?.add_scalar(1.0)?.mul(&neg_ls)?
        }
        None => neg_ls,
    };
    let l = one_minus_t.mul(input)?.add(&pos)?;
    let l = match &opts.weight {
        Some(w) => {
            broadcasts_onto(OP, "weight", w, input)?;
            l.mul(w)?
        }
        None => l,
    };
    reduce(l, opts.reduction)
}

/// Options of [`cross_entropy_with`] / [`nll_loss_with`] (`torch.nn.CrossEntropyLoss` arguments).
#[derive(Debug, Clone, Default)]
pub struct CrossEntropyLoss {
    /// How per-sample losses are combined.
    pub reduction: Reduction,
    /// ε: mixes the target with the uniform distribution (0 = off). Ignored by NLL.
    pub label_smoothing: f64,
    /// Class-index targets equal to this contribute no loss and no gradient, and are not counted
    /// by `Mean`. Probability targets accept only `None` or a negative value, as in PyTorch.
    pub ignore_index: Option<i64>,
    /// Per-class weights `[C]` in the input's dtype (PyTorch's `weight`; not differentiated). With
    /// class-index targets, `Mean` divides by the summed weights of the non-ignored targets;
    /// with probability targets, by the number of samples.
    pub weight: Option<Tensor>,
}

impl CrossEntropyLoss {
    /// Applies the loss to logits `[N, C, d1, …]` and i64 class indices `[N, d1, …]` or
    /// probabilities shaped like the logits.
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
        cross_entropy_with(logits, target, self)
    }
}

/// Scores `[N, C, d1, …]` (or unbatched `[C]`) as rows `[M, C]` with the class dim last, and the
/// shape of the per-sample losses (`[N, d1, …]`, or `[]` when unbatched).
fn class_rows(op: &'static str, input: &Tensor) -> Result<(Tensor, Vec<usize>)> {
    let d = input.dims();
    match d.len() {
        0 => Err(Error::config(
            op,
            format!("expected input [N, C, d1, …] or [C], got a scalar {}", input.shape()),
        )),
        1 => Ok((input.unsqueeze(0)?, vec![])),
        2 => Ok((input.clone(), vec![d[0]])),
        r => {
            let mut perm = vec![0];
            perm.extend(2..r);
            perm.push(1);
            let mut out: Vec<usize> = vec![d[0]];
            out.extend_from_slice(&d[2..]);
            let m = out.iter().product::<usize>();
            Ok((input.permute(&perm)?.reshape([m, d[1]])?, out))
        }
    }
}

/// The class weights as a detached `[C]` tensor and their values, after checking shape and dtype.
fn class_weight(op: &'static str, weight: Option<&Tensor>, input: &Tensor, c: usize) -> Result<Option<(Tensor, Vec<f64>)>> {
    let Some(w) = weight else { return Ok(None) };
    if w.dims() != [c] {
        return Err(Error::config(
            op,
            format!("weight must be [C] = [{c}] for input {}, got {}", input.shape(), w.shape()),
        ));
    }
    if w.dtype() != input.dtype() {
        return Err(Error::config(
            op,
            format!("weight has dtype {}, the input {}", w.dtype(), input.dtype()),
        ));
    }
    Ok(Some((w.detach(), w.to_vec_f64()?)))
}

/// Class-index targets resolved against rows `[M, C]`.
struct Targets {
    /// Gather indices `[M, 1]` (ignored rows point at class 0).
    idx: Tensor,
    /// 1 for kept rows, 0 for ignored ones, `[M]` in the input dtype.
    keep: Tensor,
    /// The weight of each row's target class (0 when ignored), `[M]`.
    row_weight: Tensor,
    /// Number of kept rows.
    kept: usize,
    /// What `Mean` divides by: the kept rows' summed weights (their count when unweighted).
    denom: f64,
}

/// Validates i64 targets against rows `[M, C]` whose per-sample shape is `out`.
fn class_targets(
    op: &'static str,
    input: &Tensor,
    rows: &Tensor,
    out: &[usize],
    target: &Tensor,
    ignore: Option<i64>,
    weight: Option<&[f64]>,
) -> Result<Targets> {
    if target.dims() != out {
        return Err(Error::config(
            op,
            format!(
                "expected target {:?} for input {} (input [N, C, d1, …] takes target [N, d1, …]), got {}",
                out,
                input.shape(),
                target.shape()
            ),
        ));
    }
    if target.dtype() != DType::I64 {
        return Err(Error::config(
            op,
            format!("target must hold i64 class indices, got {}", target.dtype()),
        ));
    }
    let (m, c) = (rows.dims()[0], rows.dims()[1] as i64);
    let t = target.to_vec::<i64>()?;
    let mut idx = Vec::with_capacity(m);
    let mut keep = Vec::with_capacity(m);
    let mut rw = Vec::with_capacity(m);
    let (mut kept, mut denom) = (0, 0.0);
    for (i, &v) in t.iter().enumerate() {
        if Some(v) == ignore {
            idx.push(0);
            keep.push(0.0);
            rw.push(0.0);
        } else if v < 0 || v >= c {
            return Err(Error::config(op, format!("target[{i}] = {v} is not a class index in 0..{c}")));
        } else {
            let w = weight.map_or(1.0, |w| w[v as usize]);
            idx.push(v);
            keep.push(1.0);
            rw.push(w);
            kept += 1;
            denom += w;
        }
    }
    let dt = input.dtype();
    Ok(Targets {
        idx: Tensor::from_vec(idx, [m, 1])?,
        keep: Tensor::from_vec(keep, [m])?.to_dtype(dt)?,
        row_weight: Tensor::from_vec(rw, [m])?.to_dtype(dt)?,
        kept,
        denom,
    })
}

/// Reduces per-sample losses `l` `[M]`: `Mean` divides the sum by `denom`, or gives NaN with a zero
/// gradient when no sample counts; `None` reshapes to the per-sample shape `out`.
fn reduce_samples(l: Tensor, kept: usize, denom: f64, out: &[usize], r: Reduction) -> Result<Tensor> {
    match r {
        // With every target ignored PyTorch's mean is 0/0 = NaN, yet its gradient is zero: the
        // sum times 0 plus NaN gives that value and that gradient (dividing by 0 would scale
        // the zero gradient by ∞ and make it NaN).
        Reduction::Mean if kept == 0 => Ok(l.sum_all()?.mul_scalar(0.0)?.add_scalar(f64::NAN)?),
        Reduction::Mean => Ok(l.sum_all()?.div_scalar(denom)?),
        Reduction::Sum => Ok(l.sum_all()?),
        Reduction::None => Ok(l.reshape(out.to_vec())?),
    }
}

/// Negative log-likelihood of log-probabilities `[N, C]` at i64 class indices `[N]` (`F.nll_loss`).
pub fn nll_loss(log_probs: &Tensor, target: &Tensor) -> Result<Tensor> {
    nll_loss_with(log_probs, target, &CrossEntropyLoss::default())
}

/// [`nll_loss`] with a reduction, ignore index and class weights, on `[N, C, d1, …]` (or `[C]`)
/// log-probabilities with `[N, d1, …]` (or `[]`) targets. `label_smoothing` is not used.
pub fn nll_loss_with(log_probs: &Tensor, target: &Tensor, opts: &CrossEntropyLoss) -> Result<Tensor> {
    const OP: &str = "nll_loss";
    let (rows, out) = class_rows(OP, log_probs)?;
    let c = rows.dims()[1];
    let w = class_weight(OP, opts.weight.as_ref(), log_probs, c)?;
    let tg = class_targets(
        OP,
        log_probs,
        &rows,
        &out,
        target,
        opts.ignore_index,
        w.as_ref().map(|w| w.1.as_slice()),
    )?;
    let l = rows.gather(1, &tg.idx)?.squeeze(1)?.neg()?.mul(&tg.row_weight)?;
    reduce_samples(l, tg.kept, tg.denom, &out, opts.reduction)
}

/// Cross-entropy of logits `[N, C]` against i64 class indices `[N]`, mean over the batch
/// (`F.cross_entropy`), via a stable log-softmax.
///
/// ```
/// use kiln_core::Tensor;
/// let logits = Tensor::from_slice(&[0.0f64, 0.0], [1, 2])?;
/// let y = Tensor::from_slice(&[1i64], [1])?;
/// let l = kiln_nn::loss::cross_entropy(&logits, &y)?.item()?;
/// assert!((l - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    cross_entropy_with(logits, target, &CrossEntropyLoss::default())
}

/// [`cross_entropy`] with PyTorch's options, on logits `[N, C, d1, …]` (or unbatched `[C]`).
///
/// * i64 class-index targets `[N, d1, …]`: `loss = w[y]·(1−ε)·(−log p[y]) + ε/C·Σ_c w[c]·(−log p[c])`
///   (w = 1 without weights); ignored targets give 0; `Mean` divides by the summed `w[y]` of the
///   kept targets.
/// * Float probability targets shaped like the logits: `loss = −Σ_c w[c]·t'[c]·log p[c]` with
///   `t' = (1−ε)·t + ε/C`; `Mean` divides by the number of samples.
///
/// ```
/// use kiln_core::Tensor;
/// use kiln_nn::loss::{cross_entropy_with, CrossEntropyLoss};
/// let logits = Tensor::from_slice(&[2.0f64, 0.0, 0.0, 1.0], [2, 2])?;
/// let soft = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0], [2, 2])?;
/// let hard = Tensor::from_slice(&[0i64, 1], [2])?;
/// let opts = CrossEntropyLoss::default();
/// let (a, b) = (cross_entropy_with(&logits, &soft, &opts)?.item()?, cross_entropy_with(&logits, &hard, &opts)?.item()?);
/// assert!((a - b).abs() < 1e-12);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn cross_entropy_with(logits: &Tensor, target: &Tensor, opts: &CrossEntropyLoss) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::config(OP, format!("label_smoothing must be in [0, 1], got {eps}")));
    }
    let (rows, out) = class_rows(OP, logits)?;
    let c = rows.dims()[1];
    let w = class_weight(OP, opts.weight.as_ref(), logits, c)?;
    let lp = rows.log_softmax(-1)?;
    if target.dtype().is_float() {
        return soft_cross_entropy(logits, &lp, target, w.map(|w| w.0), &out, opts);
    }
    let tg = class_targets(
        OP,
        logits,
        &rows,
        &out,
        target,
        opts.ignore_index,
        w.as_ref().map(|w| w.1.as_slice()),
    )?;
    let mut l = lp.gather(1, &tg.idx)?.squeeze(1)?.neg()?.mul(&tg.row_weight)?;
    if eps > 0.0 {
        let smooth = match &w {
            Some((wt, _)) => lp.mul(wt)?.sum(&[1], false)?.neg()?.div_scalar(c as f64)?,
            None => lp.mean(&[1], false)?.neg()?,
        };
        l = l.mul_scalar(1.0 - eps)?.add(&smooth.mul(&tg.keep)?.mul_scalar(eps)?)?;
    }
    reduce_samples(l, tg.kept, tg.denom, &out, opts.reduction)
}

/// Cross-entropy against probability targets, given the log-softmax rows `lp` `[M, C]`.
fn soft_cross_entropy(
    logits: &Tensor,
    lp: &Tensor,
    target: &Tensor,
    weight: Option<Tensor>,
    out: &[usize],
    opts: &CrossEntropyLoss,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    if target.shape() != logits.shape() {
        return Err(Error::config(
            OP,
            format!(
                "a {} target {} is read as probabilities, which must have the input's shape {}; class indices must be i64 {:?}",
                target.dtype(),
                target.shape(),
                logits.shape(),
                out
            ),
        ));
    }
    if target.dtype() != logits.dtype() {
        return Err(Error::config(
            OP,
            format!("probability targets have dtype {}, the input {}", target.dtype(), logits.dtype()),
        ));
    }
    if let Some(i) = opts.ignore_index.filter(|&i| i >= 0) {
        return Err(Error::config(
            OP,
            format!("ignore_index {i} does not apply to probability targets {}", target.shape()),
        ));
    }
    let (mut t, _) = class_rows(OP, target)?;
    let (m, c) = (lp.dims()[0], lp.dims()[1]);
    let eps = opts.label_smoothing;
    if eps > 0.0 {
        t = t.affine(1.0 - eps, eps / c as f64)?;
    }
    if let Some(w) = weight {
        t = t.mul(&w)?;
    }
    let l = lp.mul(&t)?.sum(&[1], false)?.neg()?;
    reduce_samples(l, m, m as f64, out, opts.reduction)
}

/// How [`kl_div`] combines its per-element terms (`F.kl_div`'s `reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KlDivReduction {
    /// Mean over every element (PyTorch's default, which it warns about: not the KL divergence).
    #[default]
    Mean,
    /// Sum divided by the batch size (the first dim): the KL divergence per sample.
    BatchMean,
    /// Sum.
    Sum,
    /// Per-element terms, unreduced.
    None,
}

impl From<Reduction> for KlDivReduction {
    fn from(r: Reduction) -> Self {
        match r {
            Reduction::Mean => KlDivReduction::Mean,
            Reduction::Sum => KlDivReduction::Sum,
            Reduction::None => KlDivReduction::None,
        }
    }
}

/// Kullback–Leibler divergence `KL(target ‖ input)` (`F.kl_div`), with `input` the
/// log-probabilities of the model and `target` probabilities (or log-probabilities when
/// `log_target`), of the same shape. Per element: `t·(log t − x)`, with `0·log 0 = 0`; or
/// `eᵗ·(t − x)` when `log_target`.
///
/// ```
/// use kiln_core::Tensor;
/// use kiln_nn::loss::{kl_div, KlDivReduction};
/// let p = Tensor::from_slice(&[0.5f64, 0.5, 0.0, 1.0], [2, 2])?;
/// let same = kl_div(&p.add_scalar(1e-300)?.log()?, &p, KlDivReduction::BatchMean, false)?;
/// assert!(same.item()?.abs() < 1e-12);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn kl_div(input: &Tensor, target: &Tensor, reduction: KlDivReduction, log_target: bool) -> Result<Tensor> {
    same_shape("kl_div", input, target)?;
    let l = if log_target {
        target.exp()?.mul(&target.sub(input)?)?
    } else {
        // PyTorch's xlogy(t, t): log of 1 where t = 0, so that term is 0 and so is its gradient
        // (log 0 = −∞ would make both NaN).
        let safe = target.eq_scalar(0.0)?.where_cond(&target.scalar_like(1.0), target)?;
        target.mul(&safe.log()?)?.sub(&target.mul(input)?)?
    };
    Ok(match reduction {
        KlDivReduction::Mean => l.mean_all()?,
        KlDivReduction::Sum => l.sum_all()?,
        KlDivReduction::None => l,
        // PyTorch divides a scalar input's sum by nothing.
        KlDivReduction::BatchMean if input.rank() == 0 => l.sum_all()?,
        KlDivReduction::BatchMean => l.sum_all()?.div_scalar(input.dims()[0] as f64)?,
    })
}

/// Huber loss (`F.huber_loss`): `0.5·d²` where `|d| < delta`, else `delta·(|d| − delta/2)`, with
/// `d = input − target` and `delta > 0`. Equals `delta ·` [`smooth_l1_loss`] with `beta = delta`.
pub fn huber_loss(input: &Tensor, target: &Tensor, delta: f64, reduction: Reduction) -> Result<Tensor> {
    same_shape("huber_loss", input, target)?;
    if delta.is_nan() || delta <= 0.0 {
        return Err(Error::config("huber_loss", format!("delta must be positive, got {delta}")));
    }
    let d = input.sub(target)?;
    let a = d.abs()?;
    let quad = d.square()?.mul_scalar(0.5)?;
    let lin = a.sub_scalar(0.5 * delta)?.mul_scalar(delta)?;
    reduce(a.lt_scalar(delta)?.where_cond(&quad, &lin)?, reduction)
}

/// Fraction of rows of `logits` `[N, C]` whose argmax equals the i64 `target` `[N]`.
pub fn accuracy(logits: &Tensor, target: &Tensor) -> Result<f64> {
    let pred = logits.argmax(-1, false)?.to_vec::<i64>()?;
    let t = target.to_vec::<i64>()?;
    if pred.len() != t.len() || t.is_empty() {
        return Err(Error::config(
            "accuracy",
            format!("logits {} and targets {} do not match", logits.shape(), target.shape()),
        ));
    }
    Ok(pred.iter().zip(&t).filter(|(a, b)| a == b).count() as f64 / t.len() as f64)
}
