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

/// Binary cross-entropy on logits (`F.binary_cross_entropy_with_logits`), computed as
/// `softplus(x) - t·x`, which never overflows for large |x|.
pub fn binary_cross_entropy_with_logits(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("binary_cross_entropy_with_logits", input, target)?;
    // relu(x) + log1p(exp(-|x|)) is softplus without the threshold approximation.
    let sp = input.relu()?.add(&input.abs()?.neg()?.exp()?.log1p()?)?;
    reduce(sp.sub(&target.mul(input)?)?, reduction)
}

/// Options of [`cross_entropy_with`] / [`nll_loss_with`] (`torch.nn.CrossEntropyLoss` arguments).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CrossEntropyLoss {
    /// How per-sample losses are combined.
    pub reduction: Reduction,
    /// ε: mixes the one-hot target with the uniform distribution (0 = off). Ignored by NLL.
    pub label_smoothing: f64,
    /// Targets equal to this contribute no loss and no gradient, and are not counted by `Mean`.
    pub ignore_index: Option<i64>,
}

impl CrossEntropyLoss {
    /// Applies the loss to logits `[N, C]` and i64 class indices `[N]`.
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
        cross_entropy_with(logits, target, self)
    }
}

/// Validates `[N, C]` scores against `[N]` i64 targets; returns gather indices `[N, 1]` (ignored
/// rows point at class 0) and per-row weights (0 for ignored rows) in the input dtype.
fn class_targets(op: &'static str, input: &Tensor, target: &Tensor, ignore: Option<i64>) -> Result<(Tensor, Tensor, usize)> {
    if input.rank() != 2 || target.rank() != 1 || target.dims()[0] != input.dims()[0] {
        return Err(Error::config(
            op,
            format!("expected input [N, C] and target [N], got {} and {}", input.shape(), target.shape()),
        ));
    }
    if target.dtype() != DType::I64 {
        return Err(Error::config(
            op,
            format!("target must hold i64 class indices, got {}", target.dtype()),
        ));
    }
    let (n, c) = (input.dims()[0], input.dims()[1] as i64);
    let t = target.to_vec::<i64>()?;
    let mut idx = Vec::with_capacity(n);
    let mut w = Vec::with_capacity(n);
    let mut kept = 0;
    for (i, &v) in t.iter().enumerate() {
        if Some(v) == ignore {
            idx.push(0);
            w.push(0.0);
        } else if v < 0 || v >= c {
            return Err(Error::config(op, format!("target[{i}] = {v} is not a class index in 0..{c}")));
        } else {
            idx.push(v);
            w.push(1.0);
            kept += 1;
        }
    }
    Ok((
        Tensor::from_vec(idx, [n, 1])?,
        Tensor::from_vec(w, [n])?.to_dtype(input.dtype())?,
        kept,
    ))
}

fn reduce_weighted(l: Tensor, kept: usize, r: Reduction) -> Result<Tensor> {
    match r {
        // With every target ignored PyTorch's mean is 0/0 = NaN, yet its gradient is zero: the
        // sum times 0 plus NaN gives that value and that gradient (dividing by 0 would scale
        // the zero gradient by ∞ and make it NaN).
        Reduction::Mean if kept == 0 => Ok(l.sum_all()?.mul_scalar(0.0)?.add_scalar(f64::NAN)?),
        // PyTorch divides by the number of non-ignored targets.
        Reduction::Mean => Ok(l.sum_all()?.div_scalar(kept as f64)?),
        _ => reduce(l, r),
    }
}

/// Negative log-likelihood of log-probabilities `[N, C]` at i64 class indices `[N]` (`F.nll_loss`).
pub fn nll_loss(log_probs: &Tensor, target: &Tensor) -> Result<Tensor> {
    nll_loss_with(log_probs, target, &CrossEntropyLoss::default())
}

/// [`nll_loss`] with a reduction and ignore index.
pub fn nll_loss_with(log_probs: &Tensor, target: &Tensor, opts: &CrossEntropyLoss) -> Result<Tensor> {
    let (idx, w, kept) = class_targets("nll_loss", log_probs, target, opts.ignore_index)?;
    let l = log_probs.gather(1, &idx)?.squeeze(1)?.neg()?.mul(&w)?;
    reduce_weighted(l, kept, opts.reduction)
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

/// [`cross_entropy`] with a reduction, label smoothing and ignore index:
/// `loss = (1-ε)·(−log p[target]) + ε·mean_c(−log p[c])`.
pub fn cross_entropy_with(logits: &Tensor, target: &Tensor, opts: &CrossEntropyLoss) -> Result<Tensor> {
    let (idx, w, kept) = class_targets("cross_entropy", logits, target, opts.ignore_index)?;
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::config(
            "cross_entropy",
            format!("label_smoothing must be in [0, 1], got {eps}"),
        ));
    }
    let lp = logits.log_softmax(-1)?;
    let mut l = lp.gather(1, &idx)?.squeeze(1)?.neg()?;
    if eps > 0.0 {
        let smooth = lp.mean(&[1], false)?.neg()?;
        l = l.mul_scalar(1.0 - eps)?.add(&smooth.mul_scalar(eps)?)?;
    }
    reduce_weighted(l.mul(&w)?, kept, opts.reduction)
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
