//! Differentiable ops on [`Tensor`]: elementwise maths with broadcasting, reductions, indexing,
//! concatenation and matrix products. Composite ops (softmax, logsumexp, var, gelu, ...) are built
//! from these, so their derivatives of every order come for free.

use crate::autograd::{self, Op};
use crate::backend::{BinaryOp, CmpOp, PatchLayout, ReduceOp, Storage, UnaryOp, Window2d};
use crate::tensor::SmallDims;
use crate::{DType, Error, Result, Shape, Tensor};

pub(crate) fn float_check(t: &Tensor, op: &'static str) -> Result<()> {
    if !t.dtype().is_float() {
        return Err(Error::DType {
            op,
            expected: "a float dtype (f16, bf16, f32 or f64)",
            got: t.dtype(),
        });
    }
    Ok(())
}

pub(crate) fn same_dtype(a: &Tensor, b: &Tensor, op: &'static str) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    Ok(())
}

/// The shape an op is about to produce, checked before any buffer is allocated: its element count
/// and its byte size in `dtype` must fit in `isize` (see [`Shape::checked_elem_count_for`]).
pub(crate) fn out_shape(dims: &[usize], dtype: DType, op: &'static str) -> Result<Shape> {
    let shape = Shape::new(dims);
    shape.checked_elem_count_for(dtype.size_in_bytes(), op)?;
    Ok(shape)
}

/// `a * b` or an error naming `op` and what was being sized.
pub(crate) fn mul_checked(a: usize, b: usize, op: &'static str, what: impl FnOnce() -> String) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| Error::shape(op, format!("{}: {a} x {b} overflows usize", what())))
}

pub(crate) fn tracking(ts: &[&Tensor]) -> bool {
    autograd::is_grad_enabled() && ts.iter().any(|t| t.0.requires_grad)
}

impl Tensor {
    // ---------------------------------------------------------------- elementwise

    pub(crate) fn unary_op(&self, op: UnaryOp) -> Result<Tensor> {
        let storage = self.0.storage.unary(&self.0.layout, op)?;
        let differentiable = !matches!(op, UnaryOp::Sign | UnaryOp::InRange { .. });
        let rec = (differentiable && tracking(&[self])).then(|| Op::Unary(self.clone(), op));
        Tensor::make(storage, self.shape().clone(), rec, op.name())
    }

    /// Both operands in `torch.promote_types` of their dtypes (f16 + f32 runs in f32, f16 + bf16
    /// in f32), or `None` when they already agree. The casts are recorded, so each operand's
    /// gradient comes back in its own dtype, as in PyTorch.
    fn promoted(&self, rhs: &Tensor, op: &'static str) -> Result<Option<(Tensor, Tensor)>> {
        if self.dtype() == rhs.dtype() {
            return Ok(None);
        }
        // Shapes first: a mismatch should not cost two casts before it is reported.
        self.shape().broadcast(rhs.shape(), op)?;
        let dt = DType::promote_types(self.dtype(), rhs.dtype());
        Ok(Some((self.to_dtype(dt)?, rhs.to_dtype(dt)?)))
    }

    pub(crate) fn binary_op(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        if let Some((a, b)) = self.promoted(rhs, op.name())? {
            return a.binary_op(&b, op);
        }
        let out = self.shape().broadcast(rhs.shape(), op.name())?;
        out.checked_elem_count_for(self.dtype().size_in_bytes(), op.name())?;
        let storage = self.0.storage.binary(&self.0.layout, &rhs.0.storage, &rhs.0.layout, op, &out)?;
        let rec = tracking(&[self, rhs]).then(|| Op::Binary(self.clone(), rhs.clone(), op));
        Tensor::make(storage, out, rec, op.name())
    }

    fn cmp_op(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        if let Some((a, b)) = self.promoted(rhs, op.name())? {
            return a.cmp_op(&b, op);
        }
        let out = self.shape().broadcast(rhs.shape(), op.name())?;
        let storage = self.0.storage.cmp(&self.0.layout, &rhs.0.storage, &rhs.0.layout, op, &out)?;
        Tensor::make(storage, out, None, op.name())
    }
}

macro_rules! binary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                #[doc = ""]
                #[doc = "Operands broadcast numpy-style; differing dtypes are promoted as by [`DType::promote_types`]."]
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    self.binary_op(rhs, BinaryOp::$op)
                }
            )*
        }
    };
}
binary_methods! {
    add => Add, "Elementwise `self + rhs`.";
    sub => Sub, "Elementwise `self - rhs`.";
    mul => Mul, "Elementwise `self * rhs`.";
    div => Div, "Elementwise `self / rhs`.";
    pow => Pow, "Elementwise `self ^ rhs`.";
    maximum => Maximum, "Elementwise maximum; NaN propagates. As in PyTorch, ties split the gradient evenly and a NaN on either side gives both sides the whole gradient.";
    minimum => Minimum, "Elementwise minimum; NaN propagates. Gradient as [`Tensor::maximum`]'s.";
    atan2 => Atan2, "Elementwise four-quadrant arctangent of `self / rhs` (`torch.atan2(self, rhs)`), in `[-π, π]`.";
    relu_backward => ReluGrad, "ReLU's backward with `self` the ReLU's input and `rhs` the output gradient: `rhs` where `self > 0` or is NaN, zero where `self <= 0` (PyTorch's `threshold_backward(rhs, self, 0)`), in one pass. Differentiable in `rhs` (the same mask); its gradient in `self` is zero.";
}

macro_rules! cmp_methods {
    ($($name:ident, $sname:ident => $op:ident;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("Elementwise `", stringify!($name), "` comparison; a u8 mask of 0/1, broadcast numpy-style.")]
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    self.cmp_op(rhs, CmpOp::$op)
                }
                #[doc = concat!("`", stringify!($name), "` against a scalar.")]
                pub fn $sname(&self, v: f64) -> Result<Tensor> {
                    self.cmp_op(&self.scalar_like(v), CmpOp::$op)
                }
            )*
        }
    };
}
cmp_methods! {
    eq, eq_scalar => Eq;
    ne, ne_scalar => Ne;
    lt, lt_scalar => Lt;
    le, le_scalar => Le;
    gt, gt_scalar => Gt;
    ge, ge_scalar => Ge;
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                pub fn $name(&self) -> Result<Tensor> {
                    self.unary_op(UnaryOp::$op)
                }
            )*
        }
    };
}
unary_methods! {
    neg => Neg, "Elementwise `-x`.";
    abs => Abs, "Elementwise `|x|`.";
    exp => Exp, "Elementwise `e^x`.";
    log => Log, "Elementwise natural logarithm.";
    log1p => Log1p, "Elementwise `ln(1 + x)`, accurate for small `x`.";
    sqrt => Sqrt, "Elementwise square root.";
    rsqrt => Rsqrt, "Elementwise `1 / sqrt(x)`.";
    square => Square, "Elementwise `x²`.";
    recip => Recip, "Elementwise `1 / x`.";
    sin => Sin, "Elementwise sine.";
    cos => Cos, "Elementwise cosine.";
    tanh => Tanh, "Elementwise hyperbolic tangent.";
    sigmoid => Sigmoid, "Elementwise logistic function `1 / (1 + e^-x)`, computed without overflow.";
    relu => Relu, "Elementwise `max(x, 0)`; NaN stays NaN. The gradient is 0 where x <= 0 and passes elsewhere, NaN included (PyTorch's rule).";
    softplus => Softplus, "Elementwise `ln(1 + e^x)` (PyTorch's default threshold of 20, above which it is `x`).";
    erf => Erf, "Elementwise error function.";
    expm1 => Expm1, "Elementwise `e^x - 1`, accurate for small `x`.";
    log2 => Log2, "Elementwise base-2 logarithm.";
    log10 => Log10, "Elementwise base-10 logarithm.";
    tan => Tan, "Elementwise tangent.";
    asin => Asin, "Elementwise arcsine (NaN outside `[-1, 1]`).";
    acos => Acos, "Elementwise arccosine (NaN outside `[-1, 1]`).";
    atan => Atan, "Elementwise arctangent.";
    sinh => Sinh, "Elementwise hyperbolic sine.";
    cosh => Cosh, "Elementwise hyperbolic cosine.";
    asinh => Asinh, "Elementwise inverse hyperbolic sine.";
    acosh => Acosh, "Elementwise inverse hyperbolic cosine (NaN below 1).";
    atanh => Atanh, "Elementwise inverse hyperbolic tangent (NaN outside `[-1, 1]`).";
    floor => Floor, "Elementwise floor (round toward -∞). The gradient is zero everywhere, as in PyTorch.";
    ceil => Ceil, "Elementwise ceiling (round toward +∞). The gradient is zero everywhere, as in PyTorch.";
    round => Round, "Elementwise rounding to the nearest integer, halves to even (`torch.round`: 0.5 → 0, 1.5 → 2, -2.5 → -2). The gradient is zero everywhere.";
    trunc => Trunc, "Elementwise rounding toward zero. The gradient is zero everywhere, as in PyTorch.";
    sign => Sign, "Elementwise sign (-1, 0, 1); not differentiable (gradient zero).";
}

impl Tensor {
    /// `self + alpha * rhs` in one pass, like `torch.add(self, rhs, alpha=alpha)`.
    pub fn add_scaled(&self, rhs: &Tensor, alpha: f64) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::AddScaled(alpha))
    }
    /// `x * mul + add` in one pass.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::Affine { mul, add })
    }
    /// `x + v`.
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, v)
    }
    /// `x - v`.
    pub fn sub_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, -v)
    }
    /// `x * v`.
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(v, 0.0)
    }
    /// `x / v`.
    pub fn div_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0 / v, 0.0)
    }
    /// `x ^ e` for a constant exponent.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::PowScalar(e))
    }
    /// Limits every element to `[min, max]`. The gradient passes strictly inside the range only: it
    /// is zero outside, at exactly `min` or `max`, and at NaN, as in PyTorch.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(Error::value("clamp", format!("min {min} is not ≤ max {max}")));
        }
        self.unary_op(UnaryOp::Clamp { lo: min, hi: max })
    }
    /// 1 where `lo <= x <= hi`, else 0, in this tensor's dtype (not differentiable).
    pub fn in_range(&self, lo: f64, hi: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::InRange { lo, hi })
    }
    /// Gaussian error linear unit, exact form `x Φ(x)` (PyTorch's default).
    pub fn gelu(&self) -> Result<Tensor> {
        let cdf = self.mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?.erf()?.affine(0.5, 0.5)?;
        self.mul(&cdf)
    }
    /// Gelu with the tanh approximation (PyTorch's `approximate="tanh"`).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        let inner = self.add(&self.powf(3.0)?.mul_scalar(0.044715)?)?.mul_scalar(c)?;
        self.mul(&inner.tanh()?.affine(0.5, 0.5)?)
    }
    /// `x * sigmoid(x)`.
    pub fn silu(&self) -> Result<Tensor> {
        self.mul(&self.sigmoid()?)
    }
    /// `max(0, x) + slope * min(0, x)`.
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        let pos = self.gt_scalar(0.0)?;
        self.where_from(&pos, &self.mul_scalar(slope)?)
    }
    /// Elementwise: `self` where `mask` is nonzero, else `other`.
    fn where_from(&self, mask: &Tensor, other: &Tensor) -> Result<Tensor> {
        mask.where_cond(self, other)
    }

    /// Picks `on_true` where this mask (u8) is nonzero and `on_false` elsewhere; all three broadcast.
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        same_dtype(on_true, on_false, "where_cond")?;
        let out = self
            .shape()
            .broadcast(on_true.shape(), "where_cond")?
            .broadcast(on_false.shape(), "where_cond")?;
        let s = Storage::where_cond(
            &self.0.storage,
            &self.0.layout,
            &on_true.0.storage,
            &on_true.0.layout,
            &on_false.0.storage,
            &on_false.0.layout,
            &out,
        )?;
        let rec = tracking(&[on_true, on_false]).then(|| Op::Where(self.clone(), on_true.clone(), on_false.clone()));
        Tensor::make(s, out, rec, "where_cond")
    }
    /// `value` where `mask` is nonzero, this tensor elsewhere.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let out = self.shape().broadcast(mask.shape(), "masked_fill")?;
        if out != *self.shape() {
            return Err(Error::shape(
                "masked_fill",
                format!("mask {} does not broadcast to {}", mask.shape(), self.shape()),
            ));
        }
        mask.where_cond(&self.scalar_like(value), self)
    }

    // ---------------------------------------------------------------- reductions

    /// Sums `to` the given shape by adding over broadcast dims (the inverse of broadcasting).
    pub fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let r = self.rank();
        let tr = shape.rank();
        if tr > r {
            return Err(Error::shape(
                "sum_to",
                format!("cannot sum {} to the larger rank {}", self.shape(), shape),
            ));
        }
        let mut dims: Vec<isize> = (0..r - tr).map(|d| d as isize).collect();
        for i in 0..tr {
            let (s, t) = (self.dims()[r - tr + i], shape.dims()[i]);
            if t == 1 && s != 1 {
                dims.push((r - tr + i) as isize);
            } else if t != s {
                return Err(Error::shape("sum_to", format!("cannot sum {} to {}", self.shape(), shape)));
            }
        }
        let s = if dims.is_empty() { self.clone() } else { self.sum_keepdim(&dims)? };
        s.reshape(shape.clone())
    }

    fn reduce_op(&self, dims: &[isize], keepdim: bool, op: ReduceOp, name: &'static str) -> Result<Tensor> {
        let dims = self.shape().reduce_dims(dims, name)?;
        if op != ReduceOp::Sum {
            if let Some(&d) = dims.iter().find(|&&d| self.dims()[d] == 0) {
                return Err(Error::shape(
                    name,
                    format!("cannot reduce the empty dimension {d} of shape {}", self.shape()),
                ));
            }
        }
        let storage = self.0.storage.reduce(&self.0.layout, &dims, op)?;
        // The kernel writes keepdim order, which is also the order without the unit dims, so the
        // result takes its final shape directly.
        let out: SmallDims = if keepdim {
            let mut kd: SmallDims = self.dims().into();
            for &d in &dims {
                kd[d] = 1;
            }
            kd
        } else {
            (0..self.rank()).filter(|d| !dims.contains(d)).map(|d| self.dims()[d]).collect()
        };
        let ds: SmallDims = dims.iter().copied().collect();
        let rec = (tracking(&[self]) && self.dtype().is_float()).then(|| match op {
            ReduceOp::Sum => Op::Sum(self.clone(), ds),
            ReduceOp::Max => Op::MaxMin(self.clone(), ds, true),
            ReduceOp::Min => Op::MaxMin(self.clone(), ds, false),
        });
        Tensor::make(storage, Shape(out), rec, name)
    }
    /// Sum over `dims` (empty = all), removing them unless `keepdim`.
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(dims, keepdim, ReduceOp::Sum, "sum")
    }
    /// Sum over `dims`, keeping them with size 1.
    pub fn sum_keepdim(&self, dims: &[isize]) -> Result<Tensor> {
        self.sum(dims, true)
    }
    /// Sum of every element, as a rank-0 tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }
    /// Mean over `dims` (empty = all).
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        float_check(self, "mean")?;
        let d = self.shape().reduce_dims(dims, "mean")?;
        let n: usize = d.iter().map(|&i| self.dims()[i]).product();
        if let Some(wide) = self.widened() {
            // PyTorch sums a half tensor in f32 and divides before rounding: rounding the sum to
            // 16 bits first, then scaling, is an ulp off now and then.
            return wide.mean(dims, keepdim)?.to_dtype(self.dtype());
        }
        self.sum(dims, keepdim)?.mul_scalar(1.0 / n as f64)
    }
    /// Mean of every element.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }
    /// Maximum over `dims` (PyTorch's `amax`: ties share the gradient).
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(dims, keepdim, ReduceOp::Max, "max")
    }
    /// Minimum over `dims` (PyTorch's `amin`).
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(dims, keepdim, ReduceOp::Min, "min")
    }
    /// Largest element.
    pub fn max_all(&self) -> Result<Tensor> {
        self.max(&[], false)
    }
    /// Smallest element.
    pub fn min_all(&self) -> Result<Tensor> {
        self.min(&[], false)
    }
    fn arg_op(&self, dim: isize, keepdim: bool, max: bool, name: &'static str) -> Result<Tensor> {
        let d = self.shape().dim(dim, name)?;
        if self.dims()[d] == 0 {
            // No element to pick (and the kernel would read one).
            return Err(Error::shape(
                name,
                format!("cannot reduce the empty dimension {d} of shape {}", self.shape()),
            ));
        }
        let storage = self.0.storage.arg_reduce(&self.0.layout, d, max)?;
        let mut dims: Vec<usize> = self.dims().to_vec();
        if keepdim {
            dims[d] = 1;
        } else {
            dims.remove(d);
        }
        Tensor::make(storage, Shape::new(&dims), None, name)
    }
    /// Index (i64) of the first maximum along `dim` (a NaN counts as the maximum; the first NaN wins).
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_op(dim, keepdim, true, "argmax")
    }
    /// Index (i64) of the first minimum along `dim` (a NaN counts as the minimum; the first NaN wins).
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_op(dim, keepdim, false, "argmin")
    }
    /// Flat row-major index (a rank-0 i64) of the first maximum of all elements (`torch.argmax(x)`).
    pub fn argmax_all(&self) -> Result<Tensor> {
        self.flatten_all()?.arg_op(0, false, true, "argmax")
    }
    /// Flat row-major index (a rank-0 i64) of the first minimum of all elements (`torch.argmin(x)`).
    pub fn argmin_all(&self) -> Result<Tensor> {
        self.flatten_all()?.arg_op(0, false, false, "argmin")
    }
    /// Values and positions of the extremes along `dim`: the index is [`Tensor::argmax`]'s (or
    /// argmin's) and the value a `gather` at it, so the gradient goes to that one element.
    fn extreme_dim(&self, dim: isize, keepdim: bool, max: bool, name: &'static str) -> Result<(Tensor, Tensor)> {
        let d = self.shape().dim(dim, name)?;
        let idx = self.arg_op(dim, true, max, name)?;
        // Recorded as a gather, so backward is gather's (a scatter-add into that index) and works
        // at every order, with no rule of its own.
        let vals = self.gather(d as isize, &idx)?;
        if keepdim {
            Ok((vals, idx))
        } else {
            Ok((vals.squeeze(d as isize)?, idx.squeeze(d as isize)?))
        }
    }
    /// Maximum along `dim` with its index, as PyTorch's `x.max(dim)` → `(values, indices)`: the
    /// index (i64) is the first maximum among ties (a NaN counts as the maximum), and the whole
    /// gradient goes to that element. [`Tensor::max`] (`amax`) instead splits it between ties.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim(dim, keepdim, true, "max_dim")
    }
    /// Minimum along `dim` with its index, as PyTorch's `x.min(dim)`; see [`Tensor::max_dim`].
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim(dim, keepdim, false, "min_dim")
    }
    /// An f16 or bf16 tensor widened to f32 (recorded, so gradients flow back narrowed), for the
    /// composite ops PyTorch fuses into one kernel that computes in f32 and rounds once: built
    /// from 16-bit steps instead, softmax would round five times and drift by several ulps.
    fn widened(&self) -> Option<Tensor> {
        if self.dtype().is_half() {
            self.to_dtype(DType::F32).ok()
        } else {
            None
        }
    }
    /// A finite shift (the detached max over `dims`, with infinities replaced by 0) that keeps
    /// `exp` from overflowing; detached because log-sum-exp's value does not depend on it.
    fn stable_shift(&self, dims: &[isize]) -> Result<Tensor> {
        let m = self.detach().max(dims, true)?;
        let finite = m.abs()?.lt_scalar(f64::INFINITY)?;
        m.masked_fill(&finite.eq_scalar(0.0)?, 0.0)
    }
    /// `log(sum(exp(x)))` over `dims`, computed without overflow.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        float_check(self, "logsumexp")?;
        if let Some(wide) = self.widened() {
            return wide.logsumexp(dims, keepdim)?.to_dtype(self.dtype());
        }
        let m = self.stable_shift(dims)?;
        let s = self.sub(&m)?.exp()?.sum_keepdim(dims)?.log()?.add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            let d = self.shape().reduce_dims(dims, "logsumexp")?;
            let shape: Vec<usize> = (0..self.rank()).filter(|i| !d.contains(i)).map(|i| self.dims()[i]).collect();
            s.reshape(shape)
        }
    }
    /// Softmax along `dim`, shifted by the max for stability.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        float_check(self, "softmax")?;
        // Over an empty dim there is nothing to normalise; the result is as empty (PyTorch).
        if self.dims()[self.shape().dim(dim, "softmax")?] == 0 {
            return Ok(self.clone());
        }
        if let Some(wide) = self.widened() {
            return wide.softmax(dim)?.to_dtype(self.dtype());
        }
        let m = self.stable_shift(&[dim])?;
        let e = self.sub(&m)?.exp()?;
        e.div(&e.sum_keepdim(&[dim])?)
    }
    /// Log of the softmax along `dim`: `x - logsumexp(x)`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        float_check(self, "log_softmax")?;
        // Over an empty dim there is nothing to normalise; the result is as empty (PyTorch).
        if self.dims()[self.shape().dim(dim, "log_softmax")?] == 0 {
            return Ok(self.clone());
        }
        if let Some(wide) = self.widened() {
            return wide.log_softmax(dim)?.to_dtype(self.dtype());
        }
        // `(x - m) - log(sum(exp(x - m)))`, PyTorch's order: subtracting the shift from `x` first
        // is exact for the largest entries, where `x - (m + log s)` would cancel two rounded
        // values and lose the small results' low bits (tens of f16 ulps after narrowing).
        let z = self.sub(&self.stable_shift(&[dim])?)?;
        z.sub(&z.exp()?.sum_keepdim(&[dim])?.log()?)
    }
    /// Variance over `dims` with divisor `N - correction` (PyTorch's default correction is 1).
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        float_check(self, "var")?;
        let d = self.shape().reduce_dims(dims, "var")?;
        let n: usize = d.iter().map(|&i| self.dims()[i]).product();
        if n <= correction {
            return Err(Error::value(
                "var",
                format!("{n} elements leave no degrees of freedom with correction {correction}"),
            ));
        }
        let centred = self.sub(&self.mean(dims, true)?)?;
        centred.square()?.sum(dims, keepdim)?.mul_scalar(1.0 / (n - correction) as f64)
    }
    /// Euclidean norm of all elements.
    pub fn norm(&self) -> Result<Tensor> {
        self.square()?.sum_all()?.sqrt()
    }

    // ---------------------------------------------------------------- matmul

    /// Matrix product with PyTorch's rules: two 1-d operands give their dot product (a 0-d
    /// tensor); otherwise 1-d operands are promoted (and the added dim removed), batch dims
    /// broadcast. Any strides are accepted.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        same_dtype(self, rhs, "matmul")?;
        let (ra, rb) = (self.rank(), rhs.rank());
        if ra == 0 || rb == 0 {
            return Err(Error::shape(
                "matmul",
                format!("both operands need at least 1 dim, got {} and {}", self.shape(), rhs.shape()),
            ));
        }
        if ra == 1 && rb == 1 {
            // `torch.matmul` of two vectors is their dot product. Promoting both would give a
            // [1, 1] result whose second squeeze has no dim -2 left, so this case is its own:
            // [1, k] x [k, 1] through the same kernel (and its recorded gradient), then a 0-d view.
            let (k, k2) = (self.dims()[0], rhs.dims()[0]);
            if k != k2 {
                return Err(Error::Matmul {
                    op: "matmul",
                    lhs: self.shape().clone(),
                    rhs: rhs.shape().clone(),
                    k_lhs: k,
                    k_rhs: k2,
                });
            }
            return self.unsqueeze(0)?.matmul(&rhs.unsqueeze(1)?)?.reshape(());
        }
        if ra == 1 {
            return self.unsqueeze(0)?.matmul(rhs)?.squeeze(-2);
        }
        if rb == 1 {
            return self.matmul(&rhs.unsqueeze(1)?)?.squeeze(-1);
        }
        let (m, k) = (self.dims()[ra - 2], self.dims()[ra - 1]);
        let (k2, n) = (rhs.dims()[rb - 2], rhs.dims()[rb - 1]);
        if k != k2 {
            return Err(Error::Matmul {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
                k_lhs: k,
                k_rhs: k2,
            });
        }
        let ba = Shape::new(&self.dims()[..ra - 2]);
        let bb = Shape::new(&rhs.dims()[..rb - 2]);
        let batch = ba.broadcast(&bb, "matmul").map_err(|e| match e {
            Error::Broadcast { .. } => Error::shape(
                "matmul",
                format!("batch dims of {} and {} cannot be broadcast together", self.shape(), rhs.shape()),
            ),
            // A batch too large to count keeps its own message.
            other => other,
        })?;
        let mut out: Vec<usize> = batch.dims().to_vec();
        out.push(m);
        out.push(n);
        // Checked before the kernel allocates: broadcast batch dims can make the output far
        // larger than either operand.
        let out = out_shape(&out, self.dtype(), "matmul")?;
        let storage = self.0.storage.matmul(&self.0.layout, &rhs.0.storage, &rhs.0.layout, &batch)?;
        let rec = tracking(&[self, rhs]).then(|| Op::Matmul(self.clone(), rhs.clone()));
        Tensor::make(storage, out, rec, "matmul")
    }

    // ---------------------------------------------------------------- joining and indexing

    /// Concatenates along `dim`; all other dims must agree.
    pub fn cat<T: std::borrow::Borrow<Tensor>>(tensors: &[T], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::shape("cat", "needs at least one tensor"))?
            .borrow();
        let d = first.shape().dim(dim, "cat")?;
        let mut total = 0;
        for t in tensors {
            let t = t.borrow();
            same_dtype(first, t, "cat")?;
            let ok = t.rank() == first.rank() && (0..t.rank()).all(|i| i == d || t.dims()[i] == first.dims()[i]);
            if !ok {
                return Err(Error::shape(
                    "cat",
                    format!("cannot join {} and {} along dimension {d}", first.shape(), t.shape()),
                ));
            }
            // Expanded views can be huge without memory behind them, so the sum may overflow.
            total = usize::checked_add(total, t.dims()[d]).ok_or_else(|| {
                Error::shape(
                    "cat",
                    format!("the joined size of dimension {d} overflows usize (at shape {})", t.shape()),
                )
            })?;
        }
        if tensors.len() == 1 {
            return Ok(first.clone());
        }
        let mut out: Vec<usize> = first.dims().to_vec();
        out[d] = total;
        let out = out_shape(&out, first.dtype(), "cat")?;
        let parts: Vec<(&Storage, &crate::Layout)> = tensors.iter().map(|t| (&*t.borrow().0.storage, &t.borrow().0.layout)).collect();
        let storage = Storage::cat(&parts, d, &out)?;
        let refs: Vec<&Tensor> = tensors.iter().map(|t| t.borrow()).collect();
        let rec = tracking(&refs).then(|| Op::Cat(refs.iter().map(|t| (*t).clone()).collect(), d));
        Tensor::make(storage, out, rec, "cat")
    }
    /// Stacks equal-shaped tensors along a new dimension `dim`.
    pub fn stack<T: std::borrow::Borrow<Tensor>>(tensors: &[T], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::shape("stack", "needs at least one tensor"))?
            .borrow();
        for t in tensors {
            if t.borrow().shape() != first.shape() {
                return Err(Error::shape(
                    "stack",
                    format!("shapes differ: {} and {}", first.shape(), t.borrow().shape()),
                ));
            }
        }
        // Checked here, so that a bad dim is blamed on `stack`, not on the unsqueeze inside it.
        let d = first.shape().new_dim(dim, "stack")? as isize;
        let us: Vec<Tensor> = tensors.iter().map(|t| t.borrow().unsqueeze(d)).collect::<Result<_>>()?;
        Tensor::cat(&us, d)
    }
    /// Splits along `dim` into pieces of the given sizes (views).
    pub fn split(&self, sizes: &[usize], dim: isize) -> Result<Vec<Tensor>> {
        let d = self.shape().dim(dim, "split")?;
        // Checked: a wrapped sum could match the dimension and pass.
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(self.dims()[d]) {
            return Err(Error::shape(
                "split",
                format!("sizes {sizes:?} do not add up to dimension {d} of {}", self.shape()),
            ));
        }
        let mut out = crate::cpu::pool::try_with_capacity(sizes.len()).map_err(|e| e.at("split"))?;
        let mut at = 0;
        for &s in sizes {
            out.push(self.narrow(d as isize, at, s)?);
            at += s;
        }
        Ok(out)
    }
    /// Splits along `dim` into `n` nearly equal pieces (the last may be smaller), like `torch.chunk`.
    pub fn chunk(&self, n: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.shape().dim(dim, "chunk")?;
        if n == 0 {
            return Err(Error::value("chunk", "cannot split into 0 chunks"));
        }
        let size = self.dims()[d];
        let step = size.div_ceil(n).max(1);
        // As many pieces as a huge empty dimension has rows: refused, not an abort.
        let mut sizes = crate::cpu::pool::try_with_capacity(size.div_ceil(step)).map_err(|e| e.at("chunk"))?;
        let mut left = size;
        while left > 0 {
            sizes.push(step.min(left));
            left -= step.min(left);
        }
        self.split(&sizes, dim)
    }
    fn index_check(index: &Tensor, op: &'static str) -> Result<()> {
        if index.dtype() != DType::I64 {
            return Err(Error::DType {
                op,
                expected: "i64 (indices)",
                got: index.dtype(),
            });
        }
        Ok(())
    }
    /// The entries of dimension `dim` named by the 1-d `index`.
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        Tensor::index_check(index, "index_select")?;
        let d = self.shape().dim(dim, "index_select")?;
        if index.rank() != 1 {
            return Err(Error::shape(
                "index_select",
                format!("index must be 1-d, got shape {}", index.shape()),
            ));
        }
        let mut out: Vec<usize> = self.dims().to_vec();
        out[d] = index.elem_count();
        // A long index over a wide tensor can name more elements than fit.
        let out = out_shape(&out, self.dtype(), "index_select")?;
        let storage = self.0.storage.index_select(&self.0.layout, d, &index.0.storage, &index.0.layout)?;
        let rec = tracking(&[self]).then(|| Op::IndexSelect(self.clone(), d, index.clone()));
        Tensor::make(storage, out, rec, "index_select")
    }
    /// Adds the slices of `src` into the entries of dimension `dim` named by `index`.
    pub fn index_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        Tensor::index_check(index, "index_add")?;
        let d = self.shape().dim(dim, "index_add")?;
        let mut want: Vec<usize> = self.dims().to_vec();
        want[d] = index.elem_count();
        if index.rank() != 1 || src.dims() != want.as_slice() {
            return Err(Error::shape(
                "index_add",
                format!(
                    "source {} must have shape {:?} for index {} into {}",
                    src.shape(),
                    want,
                    index.shape(),
                    self.shape()
                ),
            ));
        }
        same_dtype(self, src, "index_add")?;
        let storage = self
            .0
            .storage
            .index_add(&self.0.layout, d, &index.0.storage, &index.0.layout, &src.0.storage, &src.0.layout)?;
        let rec = tracking(&[self, src]).then(|| Op::IndexAdd(self.clone(), d, index.clone(), src.clone()));
        Tensor::make(storage, self.shape().clone(), rec, "index_add")
    }
    fn gather_shapes(&self, d: usize, index: &Tensor, op: &'static str) -> Result<()> {
        if index.rank() != self.rank() || (0..self.rank()).any(|i| i != d && index.dims()[i] > self.dims()[i]) {
            return Err(Error::shape(
                op,
                format!("index {} does not fit input {} along dimension {d}", index.shape(), self.shape()),
            ));
        }
        Ok(())
    }
    /// `out[i][j] = self[i][index[i][j]]` (for `dim = 1`), as `torch.gather`.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        Tensor::index_check(index, "gather")?;
        let d = self.shape().dim(dim, "gather")?;
        self.gather_shapes(d, index, "gather")?;
        let storage = self.0.storage.gather(&self.0.layout, d, &index.0.storage, &index.0.layout)?;
        let rec = tracking(&[self]).then(|| Op::Gather(self.clone(), d, index.clone()));
        Tensor::make(storage, index.shape().clone(), rec, "gather")
    }
    /// `out = self; out[i][index[i][j]] += src[i][j]` (for `dim = 1`), as `torch.scatter_add`.
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        Tensor::index_check(index, "scatter_add")?;
        let d = self.shape().dim(dim, "scatter_add")?;
        self.gather_shapes(d, index, "scatter_add")?;
        if src.rank() != index.rank() || (0..src.rank()).any(|i| index.dims()[i] > src.dims()[i]) {
            return Err(Error::shape(
                "scatter_add",
                format!("index {} does not fit source {}", index.shape(), src.shape()),
            ));
        }
        same_dtype(self, src, "scatter_add")?;
        let storage = self
            .0
            .storage
            .scatter_add(&self.0.layout, d, &index.0.storage, &index.0.layout, &src.0.storage, &src.0.layout)?;
        let rec = tracking(&[self, src]).then(|| Op::ScatterAdd(self.clone(), d, index.clone(), src.clone()));
        Tensor::make(storage, self.shape().clone(), rec, "scatter_add")
    }
    /// `out = self; out[i][index[i][j]] = src[i][j]` (for `dim = 1`), as `torch.scatter`: any
    /// dtype; `index` (i64) has `self`'s rank, and no dim larger than `src`'s or (except `dim`)
    /// than `self`'s; only the leading index-shaped part of `src` is used.
    ///
    /// When two index positions name the same target, PyTorch leaves the result unspecified; kiln
    /// writes in row-major order of `index`, so the last write wins. The gradient is torch's:
    /// zero at the overwritten positions of `self`, and for `src` the output gradient gathered at
    /// `index` (so each duplicate gets the gradient of the one surviving value).
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::zeros([2, 3], kiln_core::DType::F64)?;
    /// let idx = Tensor::from_slice(&[2i64, 0], [2, 1])?;
    /// let src = Tensor::from_slice(&[5.0f64, 7.0], [2, 1])?;
    /// let y = x.scatter(1, &idx, &src)?;
    /// assert_eq!(y.to_vec::<f64>()?, vec![0.0, 0.0, 5.0, 7.0, 0.0, 0.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn scatter(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        const OP: &str = "scatter";
        Tensor::index_check(index, OP)?;
        let d = self.shape().dim(dim, OP)?;
        self.gather_shapes(d, index, OP)?;
        if src.rank() != index.rank() || (0..src.rank()).any(|i| index.dims()[i] > src.dims()[i]) {
            return Err(Error::shape(
                OP,
                format!("index {} does not fit source {}", index.shape(), src.shape()),
            ));
        }
        same_dtype(self, src, OP)?;
        let storage = self
            .0
            .storage
            .scatter(&self.0.layout, d, &index.0.storage, &index.0.layout, &src.0.storage, &src.0.layout)?;
        let rec = tracking(&[self, src]).then(|| Op::Scatter(self.clone(), d, index.clone(), src.clone()));
        Tensor::make(storage, self.shape().clone(), rec, OP)
    }
    /// Pads with a constant: `pads[i] = (before, after)` for dim `i`, starting at dim 0
    /// (fewer entries than dims leave the trailing dims unpadded).
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        if pads.len() > self.rank() {
            return Err(Error::shape(
                "pad",
                format!("{} pad pairs for a tensor of rank {}", pads.len(), self.rank()),
            ));
        }
        let mut full: Vec<(usize, usize)> = pads.to_vec();
        full.resize(self.rank(), (0, 0));
        if full.iter().all(|&p| p == (0, 0)) {
            return Ok(self.clone());
        }
        let out: Vec<usize> = self
            .dims()
            .iter()
            .zip(&full)
            .enumerate()
            .map(|(i, (&d, &(a, b)))| {
                d.checked_add(a).and_then(|v| v.checked_add(b)).ok_or_else(|| {
                    Error::shape(
                        "pad",
                        format!("padding dimension {i} of shape {} by ({a}, {b}) overflows usize", self.shape()),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let out = out_shape(&out, self.dtype(), "pad")?;
        let storage = self.0.storage.pad(&self.0.layout, &full, value, &out)?;
        let rec = tracking(&[self]).then(|| Op::Pad(self.clone(), full));
        Tensor::make(storage, out, rec, "pad")
    }
}

impl Tensor {
    // ---------------------------------------------------------------- flips, triangles, running sums

    /// Reverses the order of elements along each of `dims` (`torch.flip`). Recorded as
    /// `index_select`s with a reversed index, so the gradient (and every higher order) is theirs.
    /// A dim named twice is an error, as in torch.
    pub fn flip(&self, dims: &[isize]) -> Result<Tensor> {
        let mut seen: Vec<usize> = Vec::with_capacity(dims.len());
        for &d in dims {
            let d = self.shape().dim(d, "flip")?;
            if seen.contains(&d) {
                return Err(Error::shape(
                    "flip",
                    format!("dimension {d} appears more than once in {dims:?} (shape {})", self.shape()),
                ));
            }
            seen.push(d);
        }
        let mut out = self.clone();
        // Nothing to reorder in an empty tensor, and its index could be huge ([2^40, 0]).
        if self.elem_count() == 0 {
            return Ok(out);
        }
        for d in seen {
            let n = self.dims()[d];
            if n <= 1 {
                continue;
            }
            let idx: Vec<i64> = (0..n as i64).rev().collect();
            out = out.index_select(d as isize, &Tensor::from_vec(idx, [n])?)?;
        }
        Ok(out)
    }

    /// The u8 mask over the last two dims of this tensor that keeps `col - row <= diagonal`
    /// (`lower`) or `col - row >= diagonal` (upper).
    fn triangle_mask(&self, diagonal: i64, lower: bool, op: &'static str) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::shape(op, format!("needs at least 2 dims, got shape {}", self.shape())));
        }
        let (rows, cols) = (self.dims()[self.rank() - 2], self.dims()[self.rank() - 1]);
        let n = mul_checked(rows, cols, op, || format!("the last two dims of {}", self.shape()))?;
        out_shape(&[rows, cols], DType::U8, op)?;
        let mut m = Vec::with_capacity(n);
        for r in 0..rows {
            for c in 0..cols {
                // i128: the difference of two usizes and an i64 cannot overflow it.
                let off = c as i128 - r as i128;
                let keep = if lower { off <= diagonal as i128 } else { off >= diagonal as i128 };
                m.push(keep as u8);
            }
        }
        Tensor::from_vec(m, [rows, cols])
    }
    /// The lower triangle of the last two dims (`torch.tril`): keeps `col - row <= diagonal`, zeros
    /// the rest (`diagonal` 0 is the main diagonal, positive above it). Needs rank ≥ 2. The
    /// gradient passes through the kept entries only (recorded as a `where_cond`).
    pub fn tril(&self, diagonal: i64) -> Result<Tensor> {
        let mask = self.triangle_mask(diagonal, true, "tril")?;
        mask.where_cond(self, &self.scalar_like(0.0))
    }
    /// The upper triangle of the last two dims (`torch.triu`): keeps `col - row >= diagonal`; see
    /// [`Tensor::tril`].
    pub fn triu(&self, diagonal: i64) -> Result<Tensor> {
        let mask = self.triangle_mask(diagonal, false, "triu")?;
        mask.where_cond(self, &self.scalar_like(0.0))
    }

    /// Running sums along `dim` (`torch.cumsum`), float dtypes only. The gradient is the reversed
    /// running sum of the output gradient (`flip(cumsum(flip(g)))`), built from differentiable ops.
    pub fn cumsum(&self, dim: isize) -> Result<Tensor> {
        float_check(self, "cumsum")?;
        let d = self.shape().dim(dim, "cumsum")?;
        let storage = self.0.storage.cumsum(&self.0.layout, d)?;
        let rec = tracking(&[self]).then(|| Op::Cumsum(self.clone(), d));
        Tensor::make(storage, self.shape().clone(), rec, "cumsum")
    }
}

impl Tensor {
    // ---------------------------------------------------------------- products and non-finite values

    /// Product over `dim` (`torch.prod(x, dim, keepdim)`), float dtypes only; an empty dim gives 1.
    /// Computed as a tree of elementwise products of the two halves of the dim (about log2(n)
    /// recorded `mul`s), so the gradient follows the product rule exactly: where the input holds
    /// zeros, each element's gradient is the product of the other elements (nonzero for the only
    /// zero, zero when there are two or more), as in PyTorch and with no `out / x` division; every
    /// higher order works too.
    pub fn prod(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        float_check(self, "prod")?;
        let d = self.shape().dim(dim, "prod")?;
        let mut x = self.clone();
        if x.dims()[d] == 0 {
            // The empty product, 1, computed from `x` (its sum, 0, times 0 plus 1) so that the
            // result stays in the graph and `x` gets its (empty) gradient, as in PyTorch.
            x = x.sum_keepdim(&[d as isize])?.affine(0.0, 1.0)?;
        }
        while x.dims()[d] > 1 {
            let n = x.dims()[d];
            let half = n / 2;
            let paired = x.narrow(d as isize, 0, half)?.mul(&x.narrow(d as isize, half, half)?)?;
            x = if n.is_multiple_of(2) {
                paired
            } else {
                Tensor::cat(&[paired, x.narrow(d as isize, n - 1, 1)?], d as isize)?
            };
        }
        if keepdim {
            Ok(x)
        } else {
            x.squeeze(d as isize)
        }
    }
    /// Running products along `dim` (`torch.cumprod`), float dtypes only. A log-step scan
    /// (`y[i] *= y[i - s]` for s = 1, 2, 4, ...) of recorded `mul`s and `cat`s, so zeros need no
    /// special case: the gradient is the exact product rule (PyTorch's values) at every order.
    pub fn cumprod(&self, dim: isize) -> Result<Tensor> {
        float_check(self, "cumprod")?;
        let d = self.shape().dim(dim, "cumprod")?;
        let n = self.dims()[d];
        let di = d as isize;
        let mut y = self.clone();
        let mut s = 1;
        while s < n {
            let head = y.narrow(di, 0, s)?;
            let tail = y.narrow(di, s, n - s)?.mul(&y.narrow(di, 0, n - s)?)?;
            y = Tensor::cat(&[head, tail], di)?;
            s = s.saturating_mul(2);
        }
        Ok(y)
    }
    /// 1 (u8) where the element is NaN (`torch.isnan`); integer tensors give all zeros.
    pub fn isnan(&self) -> Result<Tensor> {
        self.ne(self)
    }
    /// 1 (u8) where the element is +∞ or −∞ (`torch.isinf`); integer tensors give all zeros.
    pub fn isinf(&self) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return self.ne(self);
        }
        self.detach().abs()?.eq_scalar(f64::INFINITY)
    }
    /// Replaces NaN by `nan`, +∞ by `posinf` and −∞ by `neginf` (`torch.nan_to_num`); a `None`
    /// infinity bound means the dtype's largest (or lowest) finite value, as in torch. Float dtypes
    /// only. The gradient passes where the input is finite and is zero at the replaced elements.
    pub fn nan_to_num(&self, nan: f64, posinf: Option<f64>, neginf: Option<f64>) -> Result<Tensor> {
        float_check(self, "nan_to_num")?;
        let (lo, hi) = match self.dtype() {
            DType::F32 => (f32::MIN as f64, f32::MAX as f64),
            DType::F16 => (half::f16::MIN.to_f64(), half::f16::MAX.to_f64()),
            DType::BF16 => (half::bf16::MIN.to_f64(), half::bf16::MAX.to_f64()),
            _ => (f64::MIN, f64::MAX),
        };
        let x = self.detach();
        let y = x.isnan()?.where_cond(&self.scalar_like(nan), self)?;
        let y = x
            .eq_scalar(f64::INFINITY)?
            .where_cond(&self.scalar_like(posinf.unwrap_or(hi)), &y)?;
        x.eq_scalar(f64::NEG_INFINITY)?
            .where_cond(&self.scalar_like(neginf.unwrap_or(lo)), &y)
    }
}

impl Tensor {
    // ---------------------------------------------------------------- std, roll, repeat

    /// Standard deviation over `dims` (empty = all): the square root of [`Tensor::var`] with the
    /// same `correction` (PyTorch's default is 1). Its gradient is infinite or NaN where the
    /// variance is 0, as in torch.
    pub fn std(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        float_check(self, "std")?;
        self.var(dims, correction, keepdim)?.sqrt()
    }

    /// Rotates the elements along `dim` by `shift` places (`torch.roll(x, shift, dim)`): element `i`
    /// moves to `(i + shift) mod n`; negative shifts go the other way. Built from `narrow` and
    /// `cat`, so the gradient is the opposite roll, at every order.
    pub fn roll(&self, shift: i64, dim: isize) -> Result<Tensor> {
        let d = self.shape().dim(dim, "roll")?;
        let n = self.dims()[d];
        if n == 0 {
            return Ok(self.clone());
        }
        // rem_euclid of an i128 by a usize that fits: always in [0, n).
        let s = (shift as i128).rem_euclid(n as i128) as usize;
        if s == 0 {
            return Ok(self.clone());
        }
        let di = d as isize;
        Tensor::cat(&[self.narrow(di, n - s, s)?, self.narrow(di, 0, n - s)?], di)
    }

    /// Rolls along several dims at once (`torch.roll(x, shifts, dims)`): `shifts[i]` places along
    /// `dims[i]`, one [`Tensor::roll`] after another (a dim may appear twice; its shifts add up).
    /// The two lists must have the same, non-zero length.
    pub fn roll_dims(&self, shifts: &[i64], dims: &[isize]) -> Result<Tensor> {
        const OP: &str = "roll_dims";
        if shifts.len() != dims.len() || dims.is_empty() {
            return Err(Error::shape(
                OP,
                format!("needs one shift per dim and at least one dim, got shifts {shifts:?} and dims {dims:?}"),
            ));
        }
        for &d in dims {
            self.shape().dim(d, OP)?;
        }
        let mut out = self.clone();
        for (&shift, &d) in shifts.iter().zip(dims) {
            out = out.roll(shift, d)?;
        }
        Ok(out)
    }

    /// Tiles the tensor `reps[i]` times along dim `i` (`torch.Tensor.repeat`); `reps` may be
    /// longer than the rank, adding leading dims, but not shorter. Built from `expand` and
    /// `reshape`, so the gradient sums over the copies, at every order.
    pub fn repeat(&self, reps: &[usize]) -> Result<Tensor> {
        const OP: &str = "repeat";
        if reps.len() < self.rank() {
            return Err(Error::shape(
                OP,
                format!(
                    "{} repeats for a tensor of shape {} (need at least one per dim)",
                    reps.len(),
                    self.shape()
                ),
            ));
        }
        let lead = reps.len() - self.rank();
        let src: Vec<usize> = std::iter::repeat_n(1, lead).chain(self.dims().iter().copied()).collect();
        let mut inter = Vec::with_capacity(2 * src.len());
        let mut wide = Vec::with_capacity(2 * src.len());
        let mut out = Vec::with_capacity(src.len());
        for (i, (&d, &r)) in src.iter().zip(reps).enumerate() {
            inter.extend([1, d]);
            wide.extend([r, d]);
            out.push(mul_checked(r, d, OP, || {
                format!("dimension {i} of {} repeated {r} times", self.shape())
            })?);
        }
        let out = out_shape(&out, self.dtype(), OP)?;
        self.reshape(inter)?.expand(wide)?.reshape(out)
    }
}

impl Tensor {
    // ---------------------------------------------------------------- sorting

    /// The stable sorting permutation of the `k` first elements along `dim` (`None`: all), and
    /// the values it picks, recorded as a `gather` so that the gradient scatters back through the
    /// indices at every order. A rank-0 tensor is sorted as one element along dim 0 or -1.
    fn sorted(&self, dim: isize, descending: bool, k: Option<usize>, op: &'static str) -> Result<(Tensor, Tensor)> {
        if self.rank() == 0 {
            if dim != 0 && dim != -1 {
                return Err(Error::Dim {
                    op,
                    dim,
                    shape: self.shape().clone(),
                });
            }
            let (v, i) = self.reshape([1])?.sorted(0, descending, k, op)?;
            return Ok((v.reshape(())?, i.reshape(())?));
        }
        let d = self.shape().dim(dim, op)?;
        let n = self.dims()[d];
        let k = k.unwrap_or(n);
        if k > n {
            return Err(Error::value(
                op,
                format!("k = {k} is larger than dimension {d} of size {n} (shape {})", self.shape()),
            ));
        }
        let mut dims = self.dims().to_vec();
        dims[d] = k;
        let shape = out_shape(&dims, DType::I64, op)?;
        // An empty input gives an empty result, with no slices to sort.
        let idx = if self.elem_count() == 0 {
            Tensor::zeros(shape, DType::I64)?
        } else {
            Tensor::from_storage(self.0.storage.sort_indices(&self.0.layout, d, descending, k)?, shape)
        };
        let vals = self.gather(d as isize, &idx)?;
        Ok((vals, idx))
    }
    /// Sorts along `dim` (`torch.sort(x, dim, descending, stable=True)`): the sorted values and,
    /// as i64, where each came from. The sort is stable (equal elements keep their order, in
    /// both directions) and NaN counts as larger than everything, as in torch: last in ascending
    /// order, first in descending. The gradient of the values goes back to the positions they
    /// came from.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::from_slice(&[3.0f64, f64::NAN, 1.0, 3.0], [4])?;
    /// let (v, i) = x.sort(0, false)?;
    /// assert_eq!(i.to_vec::<i64>()?, vec![2, 0, 3, 1]);
    /// assert!(v.to_vec::<f64>()?[3].is_nan());
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn sort(&self, dim: isize, descending: bool) -> Result<(Tensor, Tensor)> {
        self.sorted(dim, descending, None, "sort")
    }
    /// The i64 permutation that sorts along `dim`: [`Tensor::sort`]'s indices (stable, NaN
    /// largest). Not differentiable.
    pub fn argsort(&self, dim: isize, descending: bool) -> Result<Tensor> {
        Ok(self.sorted(dim, descending, None, "argsort")?.1)
    }
    /// The `k` largest (or, with `largest = false`, smallest) elements along `dim` and their i64
    /// indices (`torch.topk`). NaN counts as larger than everything; among equal elements the
    /// earlier one comes first. kiln always returns them sorted (largest first, or smallest
    /// first), which `sorted = false` also allows: torch then leaves the order unspecified. `k`
    /// larger than the dim is an error. The gradient of the values goes back to their positions.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::from_slice(&[1.0f32, 5.0, 2.0, 4.0], [4])?;
    /// let (v, i) = x.topk(2, 0, true, true)?;
    /// assert_eq!((v.to_vec::<f32>()?, i.to_vec::<i64>()?), (vec![5.0, 4.0], vec![1, 3]));
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn topk(&self, k: usize, dim: isize, largest: bool, sorted: bool) -> Result<(Tensor, Tensor)> {
        // Selecting the k extremes already yields them in order; there is nothing cheaper to do
        // for `sorted = false`.
        let _ = sorted;
        self.sorted(dim, largest, Some(k), "topk")
    }
}

impl Tensor {
    // ---------------------------------------------------------------- logical ops
    //
    // Results are u8 masks of 0/1, the dtype comparisons return; inputs of any dtype count as
    // true where nonzero (NaN included, as in torch). None of these is differentiable: their
    // results carry no graph.

    /// 1 (u8) where the element is nonzero.
    fn truthy(&self) -> Result<Tensor> {
        self.detach().ne(&self.scalar_like(0.0))
    }
    /// Whether any element along `dim` is nonzero (`torch.any(x, dim, keepdim)`), as a u8 mask;
    /// an empty dim gives 0. Not differentiable.
    pub fn any(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = self.shape().dim(dim, "any")? as isize;
        // u8 sums count in i64, so long runs of ones cannot wrap to zero.
        self.truthy()?.sum(&[d], keepdim)?.gt_scalar(0.0)
    }
    /// Whether any element is nonzero, as a rank-0 u8 (0 for an empty tensor). Not differentiable.
    pub fn any_all(&self) -> Result<Tensor> {
        self.truthy()?.sum_all()?.gt_scalar(0.0)
    }
    /// Whether every element along `dim` is nonzero (`torch.all(x, dim, keepdim)`), as a u8 mask;
    /// an empty dim gives 1. Not differentiable.
    pub fn all(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = self.shape().dim(dim, "all")? as isize;
        self.logical_not()?.sum(&[d], keepdim)?.eq_scalar(0.0)
    }
    /// Whether every element is nonzero, as a rank-0 u8 (1 for an empty tensor). Not differentiable.
    pub fn all_all(&self) -> Result<Tensor> {
        self.logical_not()?.sum_all()?.eq_scalar(0.0)
    }
    /// 1 (u8) where the element is zero (`torch.logical_not`). Not differentiable.
    pub fn logical_not(&self) -> Result<Tensor> {
        self.detach().eq(&self.scalar_like(0.0))
    }
    /// Both operands as 0/1 masks, once their shapes are known to broadcast (so a mismatch is
    /// `op`'s error). The dtypes may differ, as in torch.
    fn truthy_pair(&self, rhs: &Tensor, op: &'static str) -> Result<(Tensor, Tensor)> {
        self.shape().broadcast(rhs.shape(), op)?;
        Ok((self.truthy()?, rhs.truthy()?))
    }
    /// Elementwise "both nonzero" (`torch.logical_and`), a u8 mask; broadcasts numpy-style, any
    /// dtypes. Not differentiable.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let a = Tensor::from_slice(&[0.0f32, 1.0, 2.0, f32::NAN], [4])?;
    /// let b = Tensor::from_slice(&[1i64, 0, 3, 1], [4])?;
    /// assert_eq!(a.logical_and(&b)?.to_vec::<u8>()?, vec![0, 0, 1, 1]);
    /// assert_eq!(a.logical_xor(&b)?.to_vec::<u8>()?, vec![1, 1, 0, 0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn logical_and(&self, rhs: &Tensor) -> Result<Tensor> {
        let (a, b) = self.truthy_pair(rhs, "logical_and")?;
        a.where_cond(&b, &a)
    }
    /// Elementwise "either nonzero" (`torch.logical_or`); see [`Tensor::logical_and`].
    pub fn logical_or(&self, rhs: &Tensor) -> Result<Tensor> {
        let (a, b) = self.truthy_pair(rhs, "logical_or")?;
        a.where_cond(&a, &b)
    }
    /// Elementwise "exactly one nonzero" (`torch.logical_xor`); see [`Tensor::logical_and`].
    pub fn logical_xor(&self, rhs: &Tensor) -> Result<Tensor> {
        let (a, b) = self.truthy_pair(rhs, "logical_xor")?;
        a.ne(&b)
    }
}

impl Tensor {
    // ---------------------------------------------------------------- masks and advanced indexing

    /// The positions of the nonzero elements (`torch.nonzero`): an i64 tensor `[n, rank]` holding
    /// the index of each, in row-major order. NaN counts as nonzero. Not differentiable.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::from_slice(&[0.0f64, 2.0, 3.0, 0.0], [2, 2])?;
    /// assert_eq!(x.nonzero()?.to_vec2::<i64>()?, vec![vec![0, 1], vec![1, 0]]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn nonzero(&self) -> Result<Tensor> {
        const OP: &str = "nonzero";
        // The output's size depends on the values, so they are read back here.
        let flags = self.truthy()?.to_vec::<u8>()?;
        let n = flags.iter().filter(|&&f| f != 0).count();
        let r = self.rank();
        let shape = out_shape(&[n, r], DType::I64, OP)?;
        let mut out: Vec<i64> = crate::cpu::pool::try_with_capacity(shape.elem_count()).map_err(|e| e.at(OP))?;
        let dims = self.dims();
        let mut pos = vec![0usize; r];
        for &f in &flags {
            if f != 0 {
                // Each coordinate is below its dim, which fits in isize and so in i64.
                out.extend(pos.iter().map(|&p| p as i64));
            }
            for d in (0..r).rev() {
                pos[d] += 1;
                if pos[d] < dims[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        Tensor::from_vec(out, shape)
    }
    /// The elements where the u8 `mask` is nonzero, as a 1-d tensor in row-major order
    /// (`torch.masked_select`); `self` and `mask` broadcast together. The gradient goes back to
    /// the selected positions (summed over broadcast copies) and is zero elsewhere.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0], [2, 2])?;
    /// let m = Tensor::from_slice(&[1u8, 0], [2])?;
    /// assert_eq!(x.masked_select(&m)?.to_vec::<f64>()?, vec![1.0, 3.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn masked_select(&self, mask: &Tensor) -> Result<Tensor> {
        const OP: &str = "masked_select";
        if mask.dtype() != DType::U8 {
            return Err(Error::DType {
                op: OP,
                expected: "u8 (a mask)",
                got: mask.dtype(),
            });
        }
        let shape = self.shape().broadcast(mask.shape(), OP)?;
        shape.checked_elem_count_for(DType::I64.size_in_bytes().max(self.dtype().size_in_bytes()), OP)?;
        let picked = mask.broadcast_to(shape.clone())?.flatten_all()?.nonzero()?;
        let n = picked.dims()[0];
        // Recorded as an index_select of the flattened values: its gradient is an index_add into
        // zeros, i.e. the output gradient scattered back to the mask positions.
        self.broadcast_to(shape)?.flatten_all()?.index_select(0, &picked.reshape([n])?)
    }
    /// `self` with the rows named by `indices` replaced by (or, with `accumulate`, increased by)
    /// `values` (`torch.Tensor.index_put` with a tuple of index tensors): `indices` holds `k`
    /// 1-d i64 tensors (each of length `n`, or 1 to broadcast) indexing the leading `k` dims, so
    /// the indexed part has shape `[n, dims[k..]]`, and `values` must broadcast to it.
    ///
    /// Negative indices are errors, as in kiln's other index ops. Without `accumulate`, a
    /// position named twice takes the last value (torch leaves it unspecified); with it,
    /// duplicates add up (f32/f64 only). Gradients are torch's: for `self`, zero at the replaced
    /// positions (unchanged with `accumulate`); for `values`, the output gradient at the indexed
    /// positions.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::zeros([3, 2], kiln_core::DType::F64)?;
    /// let rows = Tensor::from_slice(&[2i64, 0, 2], [3])?;
    /// let y = x.index_put(&[rows], &Tensor::from_slice(&[1.0f64, 2.0], [2])?, true)?;
    /// assert_eq!(y.to_vec::<f64>()?, vec![1.0, 2.0, 0.0, 0.0, 2.0, 4.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn index_put(&self, indices: &[Tensor], values: &Tensor, accumulate: bool) -> Result<Tensor> {
        const OP: &str = "index_put";
        let k = indices.len();
        if k == 0 || k > self.rank() {
            return Err(Error::shape(
                OP,
                format!(
                    "{k} index tensors for a tensor of shape {} (need between 1 and its rank)",
                    self.shape()
                ),
            ));
        }
        same_dtype(self, values, OP)?;
        if accumulate {
            float_check(self, OP)?;
        }
        let mut len = Shape::new(&[1]);
        for (j, ix) in indices.iter().enumerate() {
            Tensor::index_check(ix, OP)?;
            if ix.rank() != 1 {
                return Err(Error::shape(OP, format!("index tensor {j} must be 1-d, got shape {}", ix.shape())));
            }
            len = len.broadcast(ix.shape(), OP)?;
        }
        let n = len.dims()[0];
        let lead = &self.dims()[..k];
        // A sub-product of a valid shape fits (it is at most the product of the non-zero dims);
        // checked anyway, as the flat indices below are built from it.
        let product = |ds: &[usize]| {
            ds.iter().try_fold(1usize, |a, &b| {
                mul_checked(a, b, OP, || format!("the indexed dims of {}", self.shape()))
            })
        };
        let rows = product(lead)?;
        // Each index is checked against its own dim, so an error names the dim at fault; the
        // flat row index is then below `rows` and fits in i64.
        // `n` can be a broadcast index's huge length: allocate without aborting.
        let mut flat: Vec<i64> = crate::cpu::pool::try_with_capacity(n).map_err(|e| e.at(OP))?;
        flat.resize(n, 0);
        for (j, ix) in indices.iter().enumerate() {
            let v = ix.to_vec::<i64>()?;
            let stride = product(&lead[j + 1..])?;
            for (t, f) in flat.iter_mut().enumerate() {
                let i = if v.len() == 1 { v[0] } else { v[t] };
                if i < 0 || i as u64 >= lead[j] as u64 {
                    return Err(Error::Index {
                        op: OP,
                        index: i,
                        dim: j,
                        size: lead[j],
                    });
                }
                *f += (i as usize * stride) as i64;
            }
        }
        let rest = &self.dims()[k..];
        let sliced: Vec<usize> = std::iter::once(n).chain(rest.iter().copied()).collect();
        let sliced = out_shape(&sliced, self.dtype(), OP)?;
        if values.shape().broadcast(&sliced, OP)? != sliced {
            return Err(Error::shape(
                OP,
                format!("values of shape {} do not broadcast to the indexed shape {sliced}", values.shape()),
            ));
        }
        let vals = values.broadcast_to(sliced.clone())?;
        let x = self.reshape(std::iter::once(rows).chain(rest.iter().copied()).collect::<Vec<_>>())?;
        let idx = Tensor::from_vec(flat, [n])?;
        let out = if accumulate {
            x.index_add(0, &idx, &vals)?
        } else {
            // The row index repeated over the trailing dims: a scatter along dim 0 then writes
            // whole rows, and brings its gradient rules along.
            let col: Vec<usize> = std::iter::once(n).chain(rest.iter().map(|_| 1)).collect();
            x.scatter(0, &idx.reshape(col)?.expand(sliced)?, &vals)?
        };
        out.reshape(self.shape().clone())
    }
}

impl Tensor {
    pub(crate) fn window(
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        op: &'static str,
    ) -> Result<Window2d> {
        if kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 {
            return Err(Error::value(
                op,
                format!("kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be positive"),
            ));
        }
        Ok(Window2d {
            kernel,
            stride,
            padding,
            dilation,
        })
    }
    /// Output height and width of window `w` sliding over this `[N, C, H, W]` tensor, or the error
    /// `op` reports for another rank or a window that does not fit.
    pub(crate) fn window_positions(&self, w: &Window2d, op: &'static str) -> Result<(usize, usize)> {
        if self.rank() != 4 {
            return Err(Error::shape(op, format!("expected [N, C, H, W], got shape {}", self.shape())));
        }
        let d = self.dims();
        match Tensor::window_out_lens(w, (d[2], d[3]), op)? {
            Some(hw) => Ok(hw),
            None => Err(Error::shape(
                op,
                format!(
                    "kernel {:?} with dilation {:?} does not fit input {} padded by {:?}",
                    w.kernel,
                    w.dilation,
                    self.shape(),
                    w.padding
                ),
            )),
        }
    }
    /// Window positions `(oh, ow)` over an `(h, w)` plane: `None` when the kernel does not fit, an
    /// error naming `op` when the geometry (padded size or kernel span) overflows `usize`.
    pub(crate) fn window_out_lens(w: &Window2d, (h, wd): (usize, usize), op: &'static str) -> Result<Option<(usize, usize)>> {
        let overflow = |_| {
            Error::shape(
                op,
                format!(
                    "window geometry overflows usize: kernel {:?}, stride {:?}, padding {:?}, dilation {:?} over a {h}x{wd} plane",
                    w.kernel, w.stride, w.padding, w.dilation
                ),
            )
        };
        let oh = w.checked_out_len(h, 0).map_err(overflow)?;
        let ow = w.checked_out_len(wd, 1).map_err(overflow)?;
        Ok(oh.zip(ow))
    }
    /// Sliding-window patches of a `[N, C, H, W]` tensor as `[N, C*kh*kw, L]` (`torch.nn.functional.unfold`):
    /// row `c*kh*kw + i*kw + j` holds tap `(i, j)` of channel `c` for each of the `L` window positions.
    pub fn unfold2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        let w = Tensor::window(kernel, stride, padding, dilation, "unfold2d")?;
        self.unfold2d_in(PatchLayout::PerSample, &w)
    }
    /// The patches of [`Tensor::unfold2d`] with the batch moved inside: `[C*kh*kw, N, L]`, row
    /// `c*kh*kw + i*kw + j` holding tap `(i, j)` of channel `c` for sample 0's `L` window
    /// positions, then sample 1's, and so on. Reshaped to `[C*kh*kw, N*L]` it is one matrix for
    /// the whole batch, so a convolution is one large matrix product (`W [O, C*kh*kw]` times it)
    /// rather than `N` small ones. Its adjoint is [`Tensor::fold2d_batch`].
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let x = Tensor::arange(0.0, 8.0, 1.0, kiln_core::DType::F32)?.reshape([2, 1, 2, 2])?;
    /// let p = x.unfold2d_batch((2, 2), (1, 1), (0, 0), (1, 1))?; // one window per sample
    /// assert_eq!(p.dims(), &[4, 2, 1]);
    /// assert_eq!(p.to_vec::<f32>()?, vec![0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn unfold2d_batch(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        let w = Tensor::window(kernel, stride, padding, dilation, "unfold2d")?;
        self.unfold2d_in(PatchLayout::Batch, &w)
    }
    /// [`Tensor::unfold2d`] or [`Tensor::unfold2d_batch`] by `layout`.
    pub(crate) fn unfold2d_in(&self, layout: PatchLayout, w: &Window2d) -> Result<Tensor> {
        const OP: &str = "unfold2d";
        let kernel = w.kernel;
        let (oh, ow) = self.window_positions(w, OP)?;
        let d = self.dims();
        let taps = mul_checked(kernel.0, kernel.1, OP, || format!("kernel {kernel:?}"))?;
        let rows = mul_checked(d[1], taps, OP, || {
            format!("channels times taps of input {} and kernel {kernel:?}", self.shape())
        })?;
        let cols = mul_checked(oh, ow, OP, || format!("window positions over input {}", self.shape()))?;
        let dims = match layout {
            PatchLayout::PerSample => [d[0], rows, cols],
            PatchLayout::Batch => [rows, d[0], cols],
        };
        let out = out_shape(&dims, self.dtype(), OP)?;
        let storage = self.0.storage.im2col(&self.0.layout, w, layout)?;
        let rec = tracking(&[self]).then(|| Op::Unfold(self.clone(), *w, layout));
        Tensor::make(storage, out, rec, OP)
    }
    /// Max pooling of `[N, C, H, W]` (`torch.nn.functional.max_pool2d(..., return_indices=True)`):
    /// the window maxima `[N, C, oh, ow]` and, as `i64` of the same shape, the flat index
    /// `iy * W + ix` of each window's first maximum within its `H × W` plane. Padding taps act as −∞;
    /// NaN counts as the maximum. The gradient goes to each window's chosen element only (as in
    /// PyTorch); the result is recorded as a `gather` of the input flattened to `[N, C, H*W]`, so
    /// backward and higher-order gradients are those of `gather` / `scatter_add`.
    pub fn max_pool2d_with_indices(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "max_pool2d";
        float_check(self, OP)?;
        let w = Tensor::window(kernel, stride, padding, dilation, OP)?;
        let (oh, ow) = self.window_positions(&w, OP)?;
        let d = self.dims().to_vec();
        let plane = mul_checked(oh, ow, OP, || format!("window positions over input {}", self.shape()))?;
        out_shape(&[d[0], d[1], plane], self.dtype(), OP)?;
        // Every window needs a real element to pick (PyTorch asks for padding <= kernel / 2).
        // Window `o`'s taps are `o*s + i*dl` in padded coordinates; it is hit when the first tap
        // at or past the padding `p` is still a tap (`i < k`) and inside the input (`< p + size`).
        // `window_positions` bounds every tap by the padded size, so this arithmetic cannot
        // overflow; it is checked anyway, and an overflow counts as a miss.
        let hit = |o: usize, size: usize, k: usize, s: usize, p: usize, dl: usize| -> bool {
            let Some(t0) = o.checked_mul(s) else { return false };
            let first = if t0 >= p {
                Some(0)
            } else {
                (p - t0).checked_add(dl - 1).map(|v| v / dl)
            };
            first
                .filter(|&i| i < k)
                .and_then(|i| i.checked_mul(dl)?.checked_add(t0))
                .is_some_and(|t| t - p < size)
        };
        // Windows starting inside the input are hit by their first tap, so only those starting in
        // the leading padding (at most `p / s + 1`) and the last one need a look.
        let all_hit = |size: usize, out: usize, k: usize, s: usize, p: usize, dl: usize| {
            let leading = (p / s).saturating_add(1).min(out);
            (0..leading).all(|o| hit(o, size, k, s, p, dl)) && (out == 0 || hit(out - 1, size, k, s, p, dl))
        };
        if !all_hit(d[2], oh, kernel.0, stride.0, padding.0, dilation.0) || !all_hit(d[3], ow, kernel.1, stride.1, padding.1, dilation.1) {
            return Err(Error::value(
                OP,
                format!(
                    "padding {padding:?} leaves a window of kernel {kernel:?} (stride {stride:?}, dilation {dilation:?}) over input {} with no input element",
                    self.shape()
                ),
            ));
        }
        let (n, c) = (d[0], d[1]);
        let (vals, idx) = self.0.storage.max_pool2d(&self.0.layout, &w)?;
        let idx = Tensor::from_storage(idx, Shape::new(&[n, c, oh * ow]));
        let rec = if tracking(&[self]) {
            Some(Op::Gather(self.reshape([n, c, d[2] * d[3]])?, 2, idx.clone()))
        } else {
            None
        };
        let vals = Tensor::make(vals, Shape::new(&[n, c, oh * ow]), rec, OP)?;
        Ok((vals.reshape([n, c, oh, ow])?, idx.reshape([n, c, oh, ow])?))
    }
    /// The adjoint of [`Tensor::unfold2d`] (`torch.nn.functional.fold`): sums `[N, C*kh*kw, L]` patches
    /// back into a `[N, C, H, W]` image of size `output_size`.
    pub fn fold2d(
        &self,
        output_size: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        let w = Tensor::window(kernel, stride, padding, dilation, "fold2d")?;
        self.fold2d_in(PatchLayout::PerSample, output_size, &w)
    }
    /// The adjoint of [`Tensor::unfold2d_batch`]: sums `[C*kh*kw, N, L]` patches back into a
    /// `[N, C, H, W]` image of size `output_size`.
    pub fn fold2d_batch(
        &self,
        output_size: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<Tensor> {
        let w = Tensor::window(kernel, stride, padding, dilation, "fold2d")?;
        self.fold2d_in(PatchLayout::Batch, output_size, &w)
    }
    /// [`Tensor::fold2d`] or [`Tensor::fold2d_batch`] by `layout`.
    pub(crate) fn fold2d_in(&self, layout: PatchLayout, output_size: (usize, usize), w: &Window2d) -> Result<Tensor> {
        const OP: &str = "fold2d";
        let kernel = w.kernel;
        let k = mul_checked(kernel.0, kernel.1, OP, || format!("kernel {kernel:?}"))?;
        let (h, wd) = output_size;
        let l = match Tensor::window_out_lens(w, output_size, OP)? {
            Some((a, b)) => mul_checked(a, b, OP, || format!("window positions over output size {output_size:?}"))?,
            None => {
                return Err(Error::shape(
                    OP,
                    format!("kernel {kernel:?} does not fit output size {output_size:?}"),
                ))
            }
        };
        let (rows_dim, batch_dim, expected) = match layout {
            PatchLayout::PerSample => (1, 0, format!("[N, C*{k}, {l}]")),
            PatchLayout::Batch => (0, 1, format!("[C*{k}, N, {l}]")),
        };
        if self.rank() != 3 || !self.dims()[rows_dim].is_multiple_of(k) || self.dims()[2] != l {
            return Err(Error::shape(
                OP,
                format!(
                    "expected {expected} for output {output_size:?} and kernel {kernel:?}, got shape {}",
                    self.shape()
                ),
            ));
        }
        let c = self.dims()[rows_dim] / k;
        let out = out_shape(&[self.dims()[batch_dim], c, h, wd], self.dtype(), OP)?;
        let storage = self.0.storage.col2im(&self.0.layout, w, c, output_size, layout)?;
        let rec = tracking(&[self]).then(|| Op::Fold(self.clone(), *w, layout));
        Tensor::make(storage, out, rec, OP)
    }
}

// ---------------------------------------------------------------- operator overloads
//
// `&a + &b` returns `Result<Tensor>` (shapes may not broadcast), so write `(&a + &b)?`.
// Scalars work on either side for + - * /.

macro_rules! overload {
    ($tr:ident, $m:ident, $method:ident, $scalar:expr) => {
        impl std::ops::$tr<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$method(self, rhs)
            }
        }
        impl std::ops::$tr<Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$method(&self, &rhs)
            }
        }
        impl std::ops::$tr<f64> for &Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: f64) -> Result<Tensor> {
                let f: fn(&Tensor, f64) -> Result<Tensor> = $scalar;
                f(self, rhs)
            }
        }
        impl std::ops::$tr<f64> for Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: f64) -> Result<Tensor> {
                let f: fn(&Tensor, f64) -> Result<Tensor> = $scalar;
                f(&self, rhs)
            }
        }
    };
}
overload!(Add, add, add, |t, v| t.add_scalar(v));
overload!(Sub, sub, sub, |t, v| t.sub_scalar(v));
overload!(Mul, mul, mul, |t, v| t.mul_scalar(v));
overload!(Div, div, div, |t, v| t.div_scalar(v));

impl std::ops::Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}

impl Tensor {
    /// Runs an elementwise [`Program`](crate::fused::Program) over `inputs` in one pass and
    /// returns its outputs in declaration order.
    ///
    /// This is a kernel for optimisers and other code outside autodiff: the results record no
    /// graph, so it refuses inputs that would need one (a tensor requiring grad while grad mode
    /// is on); call it under [`no_grad`](crate::no_grad) or on detached tensors.
    ///
    /// Every input must have the same float dtype and shape (strided inputs are copied to
    /// contiguous buffers first); every output has that shape and dtype. Per element, each
    /// instruction does exactly what the corresponding unary or binary op does, so for f32 and
    /// f64 the outputs are bit-identical to running the ops one at a time, with each
    /// [`Scalar`](crate::fused::Instr::Scalar) rounded to the dtype as a scalar operand is. For
    /// f16 and bf16 the whole program runs in f32 (constants included) and only the outputs are
    /// rounded, once: more accurate than the unfused ops, which round after every op.
    pub fn fused_elementwise(inputs: &[&Tensor], program: &crate::fused::Program) -> Result<Vec<Tensor>> {
        const OP: &str = "fused_elementwise";
        program.validate(OP)?;
        if inputs.is_empty() {
            return Err(Error::value(OP, "no inputs: the output shape is taken from the inputs"));
        }
        if program.num_inputs() != inputs.len() {
            return Err(Error::value(
                OP,
                format!("the program reads {} inputs but {} were given", program.num_inputs(), inputs.len()),
            ));
        }
        let flats = fused_inputs(inputs, OP)?;
        let refs: Vec<&Storage> = flats.iter().map(|s| &**s).collect();
        let outs = Storage::fused_elementwise(&refs, program)?;
        Ok(outs
            .into_iter()
            .map(|s| Tensor::from_storage(s, inputs[0].shape().clone()))
            .collect())
    }

    /// Runs a [`Kernel`](crate::fused::Kernel) over `inputs` in one pass and returns its
    /// outputs in order: the same results, bit for bit, as
    /// [`fused_elementwise`](Tensor::fused_elementwise) on [`Kernel::program`](crate::fused::Kernel::program),
    /// with the same requirements on the inputs. The CPU backend evaluates the kernel natively
    /// (one compiled loop, intermediates in registers) instead of interpreting the program.
    pub fn fused_kernel<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(
        inputs: [&Tensor; I],
        kernel: &K,
    ) -> Result<[Tensor; O]> {
        const OP: &str = "fused_kernel";
        if O == 0 {
            return Err(Error::value(OP, "the kernel has no outputs"));
        }
        let flats = fused_inputs(&inputs, OP)?;
        let refs: [&Storage; I] = std::array::from_fn(|i| &*flats[i]);
        let outs = Storage::fused_kernel(refs, kernel)?;
        Ok(outs.map(|s| Tensor::from_storage(s, inputs[0].shape().clone())))
    }

    /// Runs a [`Kernel`](crate::fused::Kernel) whose first `O` inputs are also its outputs:
    /// `targets[j]` is input `j` and afterwards holds output `j`, and `rest` are inputs `O..I`.
    /// The results are those of [`fused_kernel`](Tensor::fused_kernel) on
    /// `targets ++ rest`, under the same requirements, and each target becomes what that call
    /// would return: a new leaf that does not require grad.
    ///
    /// When every target is the only handle on its elements (no clone of it, no view into it and
    /// no graph node shares them) and holds exactly them, contiguously, the outputs are written
    /// over them in place, as JAX does with a donated buffer. Otherwise they go to new buffers.
    /// No other tensor can tell the two apart: values stay immutable. The in-place form is for
    /// memory-bound updates such as an optimiser's step. Writing a fresh buffer first reads it
    /// into the cache, so the in-place form moves about a third less data.
    ///
    /// Nothing changes when it fails.
    ///
    /// ```
    /// use kiln_core::fused::{Kernel, Ops};
    /// use kiln_core::backend::BinaryOp;
    /// use kiln_core::Tensor;
    /// /// `acc + x`.
    /// struct Accumulate;
    /// impl Kernel<2, 1> for Accumulate {
    ///     fn outputs(&self) -> [&'static str; 1] {
    ///         ["acc"]
    ///     }
    ///     fn eval<X: Ops>(&self, o: &mut X, [acc, x]: [X::V; 2]) -> [X::V; 1] {
    ///         [o.binary(BinaryOp::Add, acc, x)]
    ///     }
    /// }
    /// let mut acc = Tensor::from_slice(&[1.0f32, 2.0], [2])?;
    /// let x = Tensor::from_slice(&[10.0f32, 20.0], [2])?;
    /// let before = acc.clone(); // a second handle: this call writes a new buffer
    /// Tensor::fused_kernel_assign([&mut acc], &[&x], &Accumulate)?;
    /// assert_eq!(acc.to_vec::<f32>()?, vec![11.0, 22.0]);
    /// assert_eq!(before.to_vec::<f32>()?, vec![1.0, 2.0]);
    /// drop(before); // now `acc` is the only handle: this call writes over it
    /// Tensor::fused_kernel_assign([&mut acc], &[&x], &Accumulate)?;
    /// assert_eq!(acc.to_vec::<f32>()?, vec![21.0, 42.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn fused_kernel_assign<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(
        mut targets: [&mut Tensor; O],
        rest: &[&Tensor],
        kernel: &K,
    ) -> Result<()> {
        const OP: &str = "fused_kernel_assign";
        if O == 0 {
            return Err(Error::value(OP, "the kernel has no outputs"));
        }
        if O + rest.len() != I {
            return Err(Error::value(
                OP,
                format!(
                    "the kernel reads {I} inputs but {O} targets and {} other inputs were given",
                    rest.len()
                ),
            ));
        }
        {
            let all: Vec<&Tensor> = targets.iter().map(|t| &**t).chain(rest.iter().copied()).collect();
            fused_checks(&all, OP)?;
        }
        // Every target's buffer, when each is the only handle on it; `None` otherwise.
        let unique: Option<[&mut Storage; O]> = targets
            .iter_mut()
            .map(|t| t.unique_whole_storage())
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.try_into().ok());
        if let Some(stores) = unique {
            let flats: Vec<std::sync::Arc<Storage>> = rest
                .iter()
                .map(|t| crate::no_grad(|| t.contiguous()).and_then(|c| flat(&c, OP)))
                .collect::<Result<_>>()?;
            let rest_refs: Vec<&Storage> = flats.iter().map(|s| &**s).collect();
            Storage::fused_kernel_assign(stores, &rest_refs, kernel)?;
        } else {
            let outs = {
                let all: Vec<&Tensor> = targets.iter().map(|t| &**t).chain(rest.iter().copied()).collect();
                let all: [&Tensor; I] = all.try_into().map_err(|_| Error::value(OP, "input count"))?;
                Tensor::fused_kernel(all, kernel)?
            };
            for (t, o) in targets.into_iter().zip(outs) {
                *t = o;
            }
            return Ok(());
        }
        for t in targets {
            t.become_new_leaf();
        }
        Ok(())
    }
}

/// The checks shared by the fused ops (see [`fused_checks`]), and the inputs as storages holding
/// exactly their elements.
fn fused_inputs(inputs: &[&Tensor], op: &'static str) -> Result<Vec<std::sync::Arc<Storage>>> {
    fused_checks(inputs, op)?;
    inputs
        .iter()
        .map(|t| crate::no_grad(|| t.contiguous()).and_then(|c| flat(&c, op)))
        .collect()
}

/// The checks shared by the fused ops: at least one input, one float dtype and one shape, and no
/// input that needs a graph.
fn fused_checks(inputs: &[&Tensor], op: &'static str) -> Result<()> {
    let Some(first) = inputs.first() else {
        return Err(Error::value(op, "no inputs: the output shape is taken from the inputs"));
    };
    for (i, t) in inputs.iter().enumerate() {
        float_check(t, op)?;
        same_dtype(first, t, op)?;
        if t.shape() != first.shape() {
            return Err(Error::shape(
                op,
                format!("input {i} has shape {} but input 0 has shape {}", t.shape(), first.shape()),
            ));
        }
        if t.requires_grad_flag() && crate::is_grad_enabled() {
            return Err(Error::value(
                op,
                format!(
                    "input {i} (shape {}) requires grad, but a fused program records no graph; run it under no_grad or detach the input",
                    t.shape()
                ),
            ));
        }
    }
    Ok(())
}

/// The storage of a contiguous tensor holding exactly its elements: shared when it already is
/// such a buffer, copied otherwise (a contiguous view into a larger buffer).
fn flat(t: &Tensor, op: &'static str) -> Result<std::sync::Arc<Storage>> {
    Ok(if t.holds_whole_buffer() {
        t.0.storage.clone()
    } else {
        std::sync::Arc::new(t.0.storage.copy_strided(&t.0.layout, op)?)
    })
}
