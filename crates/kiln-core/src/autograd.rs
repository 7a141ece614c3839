//! Reverse-mode autodiff: the graph records, the derivative formulas, and the engine.
//!
//! Each op result that needs a gradient holds an `Op` naming its inputs; the graph lives in the
//! tensors and frees itself when the last handle drops. Derivative formulas are written with the
//! public tensor ops, so running backward with `create_graph` records a graph of the gradient
//! itself, which can be differentiated again. Without `create_graph` the engine runs in no-grad
//! mode and records nothing.

use crate::backend::{BinaryOp, PatchLayout, UnaryOp, Window2d};
use crate::tensor::{SmallDims, TensorId};
use crate::{Error, Result, Shape, Tensor};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
}

/// True unless inside [`no_grad`] (per thread).
#[inline]
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores a per-thread mode flag (grad mode, anomaly mode) to its previous value when dropped.
pub struct ModeGuard {
    flag: &'static std::thread::LocalKey<Cell<bool>>,
    prev: bool,
}
impl ModeGuard {
    fn set(flag: &'static std::thread::LocalKey<Cell<bool>>, on: bool) -> ModeGuard {
        let prev = flag.with(|f| f.replace(on));
        ModeGuard { flag, prev }
    }
}
impl Drop for ModeGuard {
    fn drop(&mut self) {
        self.flag.with(|f| f.set(self.prev));
    }
}
/// Sets grad mode for the current thread until the guard drops.
pub fn set_grad_enabled(on: bool) -> ModeGuard {
    ModeGuard::set(&GRAD_ENABLED, on)
}
/// Runs `f` without recording any graph, like `torch.no_grad()`.
///
/// The mode is per thread: work that `f` hands to other threads (rayon's `par_iter`, a spawned
/// thread) runs in those threads' own mode, which is grad-enabled by default, and records graphs.
/// Capture [`GradMode::current`] inside `no_grad` and run the worker closures under it
/// ([`GradMode::run`] or [`GradMode::wrap`]) to carry the mode over.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = set_grad_enabled(false);
    f()
}

/// A snapshot of the calling thread's autodiff modes (grad recording and anomaly detection), to
/// carry into worker threads.
///
/// Both modes are thread-local (so that one thread's `no_grad` does not switch off recording in
/// another that is training), which means rayon workers do not inherit them. A `GradMode` is a
/// plain `Copy` value: capture it where the mode is set and enter it on the worker.
///
/// ```
/// use kiln_core::{no_grad, GradMode, Tensor};
/// use rayon::prelude::*;
/// let w = Tensor::from_slice(&[2.0f64], [1])?.requires_grad(true)?;
/// let ys: Vec<Tensor> = no_grad(|| {
///     let mode = GradMode::current();
///     (0..4).into_par_iter().map(mode.wrap(|i| w.mul_scalar(i as f64).unwrap())).collect()
/// });
/// // No worker recorded a graph back to `w`.
/// assert!(ys.iter().all(|y| !y.requires_grad_flag()));
/// # Ok::<(), kiln_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradMode {
    /// Whether ops record graphs (false inside [`no_grad`]).
    pub grad_enabled: bool,
    /// Whether anomaly detection is on (see [`set_anomaly_detection`]).
    pub anomaly: bool,
}

impl GradMode {
    /// The calling thread's modes.
    pub fn current() -> GradMode {
        GradMode {
            grad_enabled: is_grad_enabled(),
            anomaly: anomaly_enabled(),
        }
    }
    /// Runs `f` on the calling thread with these modes, restoring the thread's own modes after
    /// (also when `f` panics).
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let _g = set_grad_enabled(self.grad_enabled);
        let _a = set_anomaly_detection(self.anomaly);
        f()
    }
    /// `f` wrapped to run under these modes on whichever thread calls it: a drop-in for the
    /// closure of `par_iter().map(..)`, `for_each(..)` and the like.
    pub fn wrap<A, R, F: Fn(A) -> R>(self, f: F) -> impl Fn(A) -> R {
        move |a| self.run(|| f(a))
    }
}

/// True while anomaly mode is on (per thread).
#[inline]
pub fn anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}
/// Turns anomaly mode on or off for the current thread until the guard drops. While on, every op
/// checks its output (and backward every gradient) for NaN and Inf, and returns
/// [`Error::Anomaly`] naming the first op that produced one.
pub fn set_anomaly_detection(on: bool) -> ModeGuard {
    ModeGuard::set(&ANOMALY, on)
}
/// Runs `f` with anomaly mode on.
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> R {
    let _g = set_anomaly_detection(true);
    f()
}

fn inputs_finite(op: Option<&Op>) -> bool {
    let mut v = Vec::new();
    if let Some(op) = op {
        op.inputs(&mut v);
    }
    v.iter().all(|t| t.0.storage.all_finite(&t.0.layout))
}

pub(crate) fn check_forward(t: &Tensor, name: &'static str) -> Result<()> {
    if t.0.storage.all_finite(&t.0.layout) {
        return Ok(());
    }
    let note = if t.op().is_some() && !inputs_finite(t.op()) {
        " (its inputs already held NaN or Inf)"
    } else {
        ""
    };
    Err(Error::Anomaly {
        op: name,
        phase: "forward",
        what: "NaN or Inf",
        note,
    })
}

type GradVec = smallvec::SmallVec<[Option<Tensor>; 2]>;

/// One recorded op: its differentiable inputs (and the non-differentiable ones it needs).
pub(crate) enum Op {
    Unary(Tensor, UnaryOp),
    Binary(Tensor, Tensor, BinaryOp),
    Sum(Tensor, SmallDims),
    MaxMin(Tensor, SmallDims, bool),
    Reshape(Tensor),
    Permute(Tensor, SmallDims),
    Narrow(Tensor, usize, usize),
    Expand(Tensor),
    Pad(Tensor, Vec<(usize, usize)>),
    Cat(Vec<Tensor>, usize),
    IndexSelect(Tensor, usize, Tensor),
    IndexAdd(Tensor, usize, Tensor, Tensor),
    Gather(Tensor, usize, Tensor),
    ScatterAdd(Tensor, usize, Tensor, Tensor),
    Scatter(Tensor, usize, Tensor, Tensor),
    Matmul(Tensor, Tensor),
    Where(Tensor, Tensor, Tensor),
    Cast(Tensor),
    Copy(Tensor),
    Unfold(Tensor, Window2d, PatchLayout),
    Fold(Tensor, Window2d, PatchLayout),
    Cumsum(Tensor, usize),
    /// Input, weight and the bias, if any.
    Conv2d(Tensor, Tensor, Option<Tensor>, Window2d),
    /// Weight, output gradient (the input's size is the upstream gradient's).
    Conv2dInput(Tensor, Tensor, Window2d),
    /// Input, output gradient.
    Conv2dWeight(Tensor, Tensor, Window2d),
}

impl Op {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Unary(_, u) => u.name(),
            Op::Binary(_, _, b) => b.name(),
            Op::Sum(..) => "sum",
            Op::MaxMin(_, _, true) => "max",
            Op::MaxMin(_, _, false) => "min",
            Op::Reshape(_) => "reshape",
            Op::Permute(..) => "permute",
            Op::Narrow(..) => "narrow",
            Op::Expand(_) => "broadcast_to",
            Op::Pad(..) => "pad",
            Op::Cat(..) => "cat",
            Op::IndexSelect(..) => "index_select",
            Op::IndexAdd(..) => "index_add",
            Op::Gather(..) => "gather",
            Op::ScatterAdd(..) => "scatter_add",
            Op::Scatter(..) => "scatter",
            Op::Matmul(..) => "matmul",
            Op::Where(..) => "where_cond",
            Op::Cast(_) => "to_dtype",
            Op::Copy(_) => "contiguous",
            Op::Unfold(..) => "unfold2d",
            Op::Fold(..) => "fold2d",
            Op::Cumsum(..) => "cumsum",
            Op::Conv2d(..) => "conv2d",
            Op::Conv2dInput(..) => "conv2d_input",
            Op::Conv2dWeight(..) => "conv2d_weight",
        }
    }

    /// Calls `f` on each input gradients flow to, in order.
    pub(crate) fn for_each_input<'a>(&'a self, mut f: impl FnMut(&'a Tensor)) {
        let mut v: smallvec::SmallVec<[&Tensor; 4]> = smallvec::SmallVec::new();
        self.inputs_into(&mut v);
        for t in v {
            f(t);
        }
    }

    /// The inputs gradients flow to, in order.
    pub(crate) fn inputs<'a>(&'a self, out: &mut Vec<&'a Tensor>) {
        let mut v: smallvec::SmallVec<[&Tensor; 4]> = smallvec::SmallVec::new();
        self.inputs_into(&mut v);
        out.extend(v);
    }

    fn inputs_into<'a>(&'a self, out: &mut smallvec::SmallVec<[&'a Tensor; 4]>) {
        match self {
            Op::Unary(x, _)
            | Op::Sum(x, _)
            | Op::MaxMin(x, ..)
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Narrow(x, ..)
            | Op::Expand(x)
            | Op::Pad(x, _)
            | Op::IndexSelect(x, ..)
            | Op::Gather(x, ..)
            | Op::Cast(x)
            | Op::Copy(x)
            | Op::Unfold(x, ..)
            | Op::Fold(x, ..)
            | Op::Cumsum(x, _) => out.push(x),
            Op::Binary(a, b, _) | Op::Matmul(a, b) | Op::Where(_, a, b) | Op::Conv2dInput(a, b, _) | Op::Conv2dWeight(a, b, _) => {
                out.push(a);
                out.push(b);
            }
            Op::Conv2d(x, k, b, _) => {
                out.push(x);
                out.push(k);
                out.extend(b.as_ref());
            }
            Op::IndexAdd(x, _, _, s) | Op::ScatterAdd(x, _, _, s) | Op::Scatter(x, _, _, s) => {
                out.push(x);
                out.push(s);
            }
            Op::Cat(xs, _) => out.extend(xs.iter()),
        }
    }

    /// Moves every tensor the op holds into `out` (for the iterative drop).
    pub(crate) fn into_inputs(self, out: &mut Vec<Tensor>) {
        match self {
            Op::Unary(x, _)
            | Op::Sum(x, _)
            | Op::MaxMin(x, ..)
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Narrow(x, ..)
            | Op::Expand(x)
            | Op::Pad(x, _)
            | Op::Cast(x)
            | Op::Copy(x)
            | Op::Unfold(x, ..)
            | Op::Fold(x, ..)
            | Op::Cumsum(x, _) => out.push(x),
            Op::IndexSelect(x, _, i) | Op::Gather(x, _, i) => {
                out.push(x);
                out.push(i);
            }
            Op::Binary(a, b, _) | Op::Matmul(a, b) | Op::Conv2dInput(a, b, _) | Op::Conv2dWeight(a, b, _) => {
                out.push(a);
                out.push(b);
            }
            Op::Conv2d(x, k, b, _) => {
                out.push(x);
                out.push(k);
                out.extend(b);
            }
            Op::Where(m, a, b) => {
                out.push(m);
                out.push(a);
                out.push(b);
            }
            Op::IndexAdd(x, _, i, s) | Op::ScatterAdd(x, _, i, s) | Op::Scatter(x, _, i, s) => {
                out.push(x);
                out.push(i);
                out.push(s);
            }
            Op::Cat(xs, _) => out.extend(xs),
        }
    }

    /// Vector-Jacobian products: given the output `out` and its gradient `g`, the gradient of each
    /// input in [`Op::inputs`] order (`None` where it is zero or not needed).
    fn backward(&self, out: &Tensor, g: &Tensor) -> Result<GradVec> {
        let float = |mask: Tensor| mask.to_dtype(g.dtype());
        Ok(match self {
            Op::Unary(x, op) => {
                let gx = match *op {
                    UnaryOp::Neg => g.neg()?,
                    UnaryOp::Abs => g.mul(&x.sign()?)?,
                    UnaryOp::Exp => g.mul(out)?,
                    UnaryOp::Log => g.div(x)?,
                    UnaryOp::Log1p => g.div(&x.add_scalar(1.0)?)?,
                    UnaryOp::Sqrt => g.div(&out.mul_scalar(2.0)?)?,
                    UnaryOp::Rsqrt => g.mul(&out.powf(3.0)?.mul_scalar(-0.5)?)?,
                    UnaryOp::Square => g.mul(&x.mul_scalar(2.0)?)?,
                    UnaryOp::Recip => g.mul(&out.square()?)?.neg()?,
                    UnaryOp::Sin => g.mul(&x.cos()?)?,
                    UnaryOp::Cos => g.mul(&x.sin()?)?.neg()?,
                    UnaryOp::Tanh => g.mul(&out.square()?.affine(-1.0, 1.0)?)?,
                    UnaryOp::Sigmoid => g.mul(&out.mul(&out.affine(-1.0, 1.0)?)?)?,
                    // PyTorch's threshold_backward: zero where x <= 0, else g. NaN is not <= 0,
                    // so a NaN input passes its gradient on (as in torch), where a `x > 0` mask
                    // would have stopped it.
                    UnaryOp::Relu => x.relu_backward(g)?,
                    UnaryOp::Softplus => {
                        let linear = x.gt_scalar(20.0)?;
                        linear.where_cond(g, &g.mul(&x.sigmoid()?)?)?
                    }
                    UnaryOp::Erf => {
                        let c = 2.0 / std::f64::consts::PI.sqrt();
                        g.mul(&x.square()?.neg()?.exp()?.mul_scalar(c)?)?
                    }
                    UnaryOp::Expm1 => g.mul(&out.add_scalar(1.0)?)?,
                    UnaryOp::Log2 => g.div(&x.mul_scalar(std::f64::consts::LN_2)?)?,
                    UnaryOp::Log10 => g.div(&x.mul_scalar(std::f64::consts::LN_10)?)?,
                    UnaryOp::Tan => g.mul(&out.square()?.add_scalar(1.0)?)?,
                    UnaryOp::Asin => g.mul(&x.square()?.affine(-1.0, 1.0)?.rsqrt()?)?,
                    UnaryOp::Acos => g.mul(&x.square()?.affine(-1.0, 1.0)?.rsqrt()?)?.neg()?,
                    UnaryOp::Atan => g.div(&x.square()?.add_scalar(1.0)?)?,
                    UnaryOp::Sinh => g.mul(&x.cosh()?)?,
                    UnaryOp::Cosh => g.mul(&x.sinh()?)?,
                    UnaryOp::Asinh => g.mul(&x.square()?.add_scalar(1.0)?.rsqrt()?)?,
                    UnaryOp::Acosh => g.mul(&x.square()?.add_scalar(-1.0)?.rsqrt()?)?,
                    UnaryOp::Atanh => g.div(&x.square()?.affine(-1.0, 1.0)?)?,
                    // Piecewise constant: the gradient is zero everywhere (PyTorch's rule too).
                    UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round | UnaryOp::Trunc => return Ok(smallvec::smallvec![None]),
                    UnaryOp::Affine { mul, .. } => g.mul_scalar(mul)?,
                    UnaryOp::PowScalar(e) => {
                        if e == 0.0 {
                            return Ok(smallvec::smallvec![None]);
                        }
                        g.mul(&x.powf(e - 1.0)?.mul_scalar(e)?)?
                    }
                    // PyTorch (2.x) passes the gradient only strictly inside the range: an input
                    // exactly at `lo` or `hi` (or NaN) gets 0, even for an infinite bound.
                    UnaryOp::Clamp { lo, hi } => {
                        let zero = g.scalar_like(0.0);
                        let inside_hi = x.lt_scalar(hi)?.where_cond(g, &zero)?;
                        x.gt_scalar(lo)?.where_cond(&inside_hi, &zero)?
                    }
                    UnaryOp::Sign | UnaryOp::InRange { .. } => return Ok(smallvec::smallvec![None]),
                };
                smallvec::smallvec![Some(gx)]
            }
            Op::Binary(a, b, op) => {
                // Only the operands that need a gradient get one computed.
                let (na, nb) = (a.0.requires_grad, b.0.requires_grad);
                let (ga, gb): (Option<Tensor>, Option<Tensor>) = match op {
                    BinaryOp::Add => (na.then(|| g.clone()), nb.then(|| g.clone())),
                    BinaryOp::AddScaled(alpha) => (na.then(|| g.clone()), nb.then(|| g.mul_scalar(*alpha)).transpose()?),
                    BinaryOp::Sub => (na.then(|| g.clone()), nb.then(|| g.neg()).transpose()?),
                    BinaryOp::Mul => (na.then(|| g.mul(b)).transpose()?, nb.then(|| g.mul(a)).transpose()?),
                    BinaryOp::Div => (
                        na.then(|| g.div(b)).transpose()?,
                        nb.then(|| g.mul(out)?.div(b)?.neg()).transpose()?,
                    ),
                    BinaryOp::Pow => {
                        // PyTorch's masks: where the exponent is 0, d/da is 0 (not 0 * 0^-1 =
                        // NaN at a = 0); where the base is 0 and the exponent >= 0, d/db is 0
                        // (not 0^b * log 0 = 0 * -inf = NaN). Masked with `where_cond`, so the
                        // masked entries carry no gradient at higher orders either.
                        let zero = g.scalar_like(0.0);
                        let ga = na
                            .then(|| {
                                let v = g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
                                b.eq_scalar(0.0)?.where_cond(&zero, &v)
                            })
                            .transpose()?;
                        let gb = nb
                            .then(|| {
                                let v = g.mul(out)?.mul(&a.log()?)?;
                                let base0 = a.eq_scalar(0.0)?;
                                // u8 masks have no `and`: pick `b >= 0` where the base is 0.
                                let masked = base0.where_cond(&b.ge_scalar(0.0)?, &base0)?;
                                masked.where_cond(&zero, &v)
                            })
                            .transpose()?;
                        (ga, gb)
                    }
                    BinaryOp::Atan2 => {
                        // d/da atan2(a, b) = b / (a² + b²), d/db = -a / (a² + b²).
                        let r = a.square()?.add(&b.square()?)?;
                        (
                            na.then(|| g.mul(b)?.div(&r)).transpose()?,
                            nb.then(|| g.mul(a)?.div(&r)?.neg()).transpose()?,
                        )
                    }
                    // Piecewise constant in the ReLU input; linear in the gradient it masks.
                    BinaryOp::ReluGrad => (None, nb.then(|| a.relu_backward(g)).transpose()?),
                    BinaryOp::Maximum | BinaryOp::Minimum => {
                        // PyTorch's rule: half the gradient to each side of a tie, none to the side
                        // that strictly loses, the whole gradient otherwise. With a NaN on either
                        // side nothing compares true, so both sides get the whole gradient (as in
                        // torch), not the 0/1 split a "wins" mask would give.
                        let zero = g.scalar_like(0.0);
                        let shared = a.eq(b)?.where_cond(&g.mul_scalar(0.5)?, g)?;
                        let (a_loses, b_loses) = if *op == BinaryOp::Maximum {
                            (a.lt(b)?, a.gt(b)?)
                        } else {
                            (a.gt(b)?, a.lt(b)?)
                        };
                        (
                            na.then(|| a_loses.where_cond(&zero, &shared)).transpose()?,
                            nb.then(|| b_loses.where_cond(&zero, &shared)).transpose()?,
                        )
                    }
                };
                smallvec::smallvec![
                    ga.map(|t| t.sum_to(a.shape())).transpose()?,
                    gb.map(|t| t.sum_to(b.shape())).transpose()?
                ]
            }
            Op::Sum(x, dims) => smallvec::smallvec![Some(keepdim_shape(g, x, dims)?.broadcast_to(x.shape().clone())?)],
            Op::MaxMin(x, dims, _) => {
                let out = keepdim_shape(out, x, dims)?;
                let g = keepdim_shape(g, x, dims)?;
                let dims: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
                let hit = float(x.eq(&out)?)?;
                let count = hit.sum_keepdim(&dims)?;
                smallvec::smallvec![Some(g.div(&count)?.mul(&hit)?)]
            }
            Op::Reshape(x) => smallvec::smallvec![Some(g.reshape(x.shape().clone())?)],
            Op::Permute(_, perm) => {
                let mut inv = SmallDims::from_elem(0, perm.len());
                for (i, &p) in perm.iter().enumerate() {
                    inv[p] = i;
                }
                smallvec::smallvec![Some(g.permute(&inv)?)]
            }
            Op::Narrow(x, dim, start) => {
                let size = x.dims()[*dim];
                let len = out.dims()[*dim];
                let mut pads = vec![(0usize, 0usize); x.rank()];
                pads[*dim] = (*start, size - start - len);
                smallvec::smallvec![Some(g.pad(&pads, 0.0)?)]
            }
            Op::Expand(x) => smallvec::smallvec![Some(g.sum_to(x.shape())?)],
            Op::Pad(x, pads) => {
                let mut gx = g.clone();
                for (d, &(before, _)) in pads.iter().enumerate() {
                    gx = gx.narrow(d as isize, before, x.dims()[d])?;
                }
                smallvec::smallvec![Some(gx)]
            }
            Op::Cat(xs, dim) => {
                let mut at = 0;
                let mut v = GradVec::with_capacity(xs.len());
                for x in xs {
                    let len = x.dims()[*dim];
                    v.push(x.0.requires_grad.then(|| g.narrow(*dim as isize, at, len)).transpose()?);
                    at += len;
                }
                v
            }
            Op::IndexSelect(x, dim, idx) => {
                smallvec::smallvec![Some(x.zeros_like()?.index_add(*dim as isize, idx, g)?)]
            }
            Op::IndexAdd(_, dim, idx, _) => {
                smallvec::smallvec![Some(g.clone()), Some(g.index_select(*dim as isize, idx)?)]
            }
            Op::Gather(x, dim, idx) => {
                // Scattered into an expanded zero scalar: the CPU kernel fills its output once
                // instead of allocating zeros and copying them.
                smallvec::smallvec![Some(x.scalar_like(0.0).expand(x.shape().clone())?.scatter_add(
                    *dim as isize,
                    idx,
                    g
                )?)]
            }
            Op::ScatterAdd(_, dim, idx, _) => {
                smallvec::smallvec![Some(g.clone()), Some(g.gather(*dim as isize, idx)?)]
            }
            // PyTorch's rule: the overwritten positions pass nothing back to `x`, and every source
            // element gets the gradient of the position it was sent to (with duplicate targets that
            // is each duplicate, although only the last write survives in the value). A source
            // larger than the index contributed only its leading part; the rest gets zeros.
            Op::Scatter(x, dim, idx, src) => {
                let d = *dim as isize;
                let gx =
                    x.0.requires_grad
                        .then(|| g.scatter(d, idx, &Tensor::zeros(idx.shape().clone(), g.dtype())?))
                        .transpose()?;
                let gs = src
                    .0
                    .requires_grad
                    .then(|| {
                        let picked = g.gather(d, idx)?;
                        let pads: Vec<(usize, usize)> = src.dims().iter().zip(idx.dims()).map(|(&s, &i)| (0, s - i)).collect();
                        picked.pad(&pads, 0.0)
                    })
                    .transpose()?;
                smallvec::smallvec![gx, gs]
            }
            Op::Matmul(a, b) => {
                // An operand stored transposed (a Linear weight used as `W.t()`) gets its gradient in
                // that same layout, `(gᵀa)ᵀ` rather than `aᵀg`: the transpose's backward then hands
                // the leaf a row-major gradient, with no strided copy (gemm reads either layout).
                let plain = a.rank() == 2 && b.rank() == 2;
                let ga = || {
                    a.0.requires_grad
                        .then(|| {
                            if plain && transposed(a) {
                                b.matmul(&g.t()?)?.t()
                            } else if a.rank() == 2 && b.rank() > 2 && a.dims()[0] < a.dims()[1] {
                                // A wide `a` shared by a batch (a convolution's `[O, C·kh·kw]`
                                // weight times its columns): `Σ (b gᵀ)ᵀ` instead of `Σ g bᵀ`, so
                                // the operand the product transposes is `g`, the narrower one,
                                // and `b` is read as it is stored. For W6's second convolution
                                // that is a 32-wide transposed operand instead of a 144-wide one.
                                let (o, k) = (a.dims()[0], a.dims()[1]);
                                b.matmul(&g.transpose(-2, -1)?)?.sum_to(&Shape::new(&[k, o]))?.t()
                            } else {
                                g.matmul(&b.t()?)?.sum_to(a.shape())
                            }
                        })
                        .transpose()
                };
                let gb = || {
                    b.0.requires_grad
                        .then(|| {
                            if plain && transposed(b) {
                                g.t()?.matmul(a)?.t()
                            } else {
                                a.t()?.matmul(g)?.sum_to(b.shape())
                            }
                        })
                        .transpose()
                };
                // The two gradients are independent products of the forward's size each
                // (`g`'s elements times the contracted length): side by side when both are
                // wanted and large enough (see `join_shares`).
                let (ga, gb) = if a.0.requires_grad && b.0.requires_grad {
                    let flops = g.elem_count().saturating_mul(a.dims().last().copied().unwrap_or(1));
                    crate::threads::join_shares(flops, ga, gb)
                } else {
                    (ga(), gb())
                };
                let (ga, gb) = (ga?, gb?);
                smallvec::smallvec![ga, gb]
            }
            Op::Where(mask, a, b) => {
                let zero = g.scalar_like(0.0);
                smallvec::smallvec![
                    a.0.requires_grad
                        .then(|| mask.where_cond(g, &zero)?.sum_to(a.shape()))
                        .transpose()?,
                    b.0.requires_grad
                        .then(|| mask.where_cond(&zero, g)?.sum_to(b.shape()))
                        .transpose()?,
                ]
            }
            Op::Cast(x) => smallvec::smallvec![Some(g.to_dtype(x.dtype())?)],
            Op::Copy(_) => smallvec::smallvec![Some(g.clone())],
            Op::Unfold(x, w, layout) => {
                let d = x.dims();
                smallvec::smallvec![Some(g.fold2d_in(*layout, (d[2], d[3]), w)?)]
            }
            Op::Fold(_, w, layout) => smallvec::smallvec![Some(g.unfold2d_in(*layout, w)?)],
            // The three convolution ops are bilinear, and each one's gradients are the other two
            // (or itself) with the upstream gradient in place of one operand.
            Op::Conv2d(x, k, b, w) => {
                let hw = (x.dims()[2], x.dims()[3]);
                // The kernels read g contiguously; a strided g (the expanded gradient of a sum)
                // is copied once here rather than by each of the three gradients (and summed for
                // the bias from the copy: 175 against 524 us over a broadcast of W6's first layer).
                let g = &g.contiguous()?;
                let mut v: GradVec = smallvec::smallvec![
                    x.0.requires_grad.then(|| Tensor::conv2d_input_in(hw, k, g, w)).transpose()?,
                    k.0.requires_grad.then(|| Tensor::conv2d_weight_in(x, g, w)).transpose()?,
                ];
                if let Some(b) = b {
                    v.push(b.0.requires_grad.then(|| g.sum(&[0, 2, 3], false)).transpose()?);
                }
                v
            }
            Op::Conv2dInput(k, gy, w) => smallvec::smallvec![
                k.0.requires_grad.then(|| Tensor::conv2d_weight_in(g, gy, w)).transpose()?,
                gy.0.requires_grad.then(|| g.conv2d_in(k, None, w)).transpose()?,
            ],
            Op::Conv2dWeight(x, gy, w) => {
                let hw = (x.dims()[2], x.dims()[3]);
                smallvec::smallvec![
                    x.0.requires_grad.then(|| Tensor::conv2d_input_in(hw, g, gy, w)).transpose()?,
                    gy.0.requires_grad.then(|| x.conv2d_in(g, None, w)).transpose()?,
                ]
            }
            // Each input feeds every later output: the gradient is the reversed running sum of g.
            Op::Cumsum(_, d) => {
                let d = [*d as isize];
                smallvec::smallvec![Some(g.flip(&d)?.cumsum(d[0])?.flip(&d)?)]
            }
        })
    }
}

/// `g` (shaped like a reduction's result) with the reduced `dims` of `x` put back as size 1.
fn keepdim_shape(g: &Tensor, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    if g.rank() == x.rank() {
        return Ok(g.clone());
    }
    let mut kd: SmallDims = x.dims().into();
    for &d in dims {
        kd[d] = 1;
    }
    g.reshape(kd.to_vec())
}

/// Hashes tensor ids (already unique counters) by identity: hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 ids are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
type IdMap<V> = HashMap<TensorId, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<TensorId, BuildHasherDefault<IdHasher>>;

/// Gradients of the leaves of one (or several accumulated) backward passes, keyed by tensor id.
#[derive(Default, Clone)]
pub struct Grads {
    map: IdMap<Tensor>,
}

impl std::fmt::Debug for Grads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.map.iter().map(|(k, v)| (k.0, v))).finish()
    }
}

impl Grads {
    /// The gradient of `t`, if any flowed to it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }
    /// The gradient of the tensor with this id.
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.map.get(&id)
    }
    /// Takes the gradient of `t` out of the store.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }
    /// Sets (replaces) the gradient stored for `id`.
    pub fn insert(&mut self, id: TensorId, g: Tensor) {
        self.map.insert(id, g);
    }
    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when no gradient is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Ids and gradients.
    pub fn iter(&self) -> impl Iterator<Item = (&TensorId, &Tensor)> {
        self.map.iter()
    }
    /// Adds another pass's gradients into this one (gradient accumulation over micro-batches).
    pub fn accumulate(&mut self, other: Grads) -> Result<()> {
        let _g = set_grad_enabled(false);
        for (id, g) in other.map {
            match self.map.remove(&id) {
                Some(prev) => {
                    self.map.insert(id, prev.add(&g)?);
                }
                None => {
                    self.map.insert(id, g);
                }
            }
        }
        Ok(())
    }
}

/// Ready-queue entry: nodes are processed in decreasing id order. Ids grow with creation and an op's
/// output is always created after its inputs, so every consumer of a node (larger id) has been
/// processed, and its gradient contribution accumulated, before the node itself is popped.
struct Ready(Tensor);
impl PartialEq for Ready {
    fn eq(&self, o: &Self) -> bool {
        self.0.id() == o.0.id()
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ready {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.id().cmp(&o.0.id())
    }
}

fn accumulate(map: &mut IdMap<Tensor>, id: TensorId, g: Tensor) -> Result<bool> {
    match map.entry(id) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            let sum = e.get().add(&g)?;
            e.insert(sum);
            Ok(false)
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(g);
            Ok(true)
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Graph nodes whose backward formula ran on this thread (for the pruning test).
    static NODES_RUN: Cell<usize> = const { Cell::new(0) };
}

/// The nodes of the graph above `roots` from which some tensor in `targets` can be reached
/// (targets included): the only ones whose gradients `grad` needs. Nodes are visited once each,
/// without recursion; a node's inputs were created before it, so visiting in increasing id order
/// settles every input before its consumers.
fn nodes_reaching(roots: &[Tensor], targets: &IdSet) -> IdSet {
    let mut seen = IdSet::default();
    let mut order: Vec<Tensor> = Vec::new();
    let mut stack: Vec<Tensor> = roots.iter().filter(|r| r.0.requires_grad).cloned().collect();
    while let Some(t) = stack.pop() {
        if !seen.insert(t.id()) {
            continue;
        }
        if let Some(op) = t.op() {
            op.for_each_input(|i| {
                if i.0.requires_grad && !seen.contains(&i.id()) {
                    stack.push(i.clone());
                }
            });
        }
        order.push(t);
    }
    order.sort_unstable_by_key(|t| t.id());
    let mut needed = IdSet::default();
    for t in &order {
        let mut reaches = targets.contains(&t.id());
        if !reaches {
            if let Some(op) = t.op() {
                op.for_each_input(|i| reaches |= needed.contains(&i.id()));
            }
        }
        if reaches {
            needed.insert(t.id());
        }
    }
    needed
}

/// The engine: propagates `seeds` from `roots` and returns the gradients of every leaf that requires
/// grad, plus those of the non-leaf tensors listed in `keep`. With `only`, gradients flow only into
/// the nodes it lists (see [`nodes_reaching`]): the other branches are never differentiated. No
/// recursion and no separate topological sort: a max-heap on tensor ids is the schedule.
fn run_backward(roots: &[Tensor], seeds: Vec<Tensor>, keep: &IdSet, only: Option<&IdSet>, create_graph: bool) -> Result<Grads> {
    let wanted = |t: &Tensor| only.is_none_or(|o| o.contains(&t.id()));
    let _mode = set_grad_enabled(create_graph);
    let anomaly = anomaly_enabled();
    let mut pending: IdMap<Tensor> = IdMap::default();
    let mut result = Grads::default();
    let mut ready = std::collections::BinaryHeap::new();
    for (r, s) in roots.iter().zip(seeds) {
        if !wanted(r) {
            continue;
        }
        if r.is_leaf() {
            accumulate(&mut result.map, r.id(), s)?;
        } else if accumulate(&mut pending, r.id(), s)? {
            ready.push(Ready(r.clone()));
        }
    }
    while let Some(Ready(t)) = ready.pop() {
        let g = pending.remove(&t.id()).expect("queued nodes have a gradient");
        if keep.contains(&t.id()) {
            accumulate(&mut result.map, t.id(), g.clone())?;
        }
        let op = t.op().expect("graph nodes have ops");
        #[cfg(test)]
        NODES_RUN.with(|n| n.set(n.get() + 1));
        // The formula's own ops must not trip the forward check: the culprit to name is `op`.
        let grads = if anomaly {
            let _quiet = set_anomaly_detection(false);
            op.backward(&t, &g)?
        } else {
            op.backward(&t, &g)?
        };
        let mut inputs: smallvec::SmallVec<[&Tensor; 4]> = smallvec::SmallVec::new();
        op.for_each_input(|i| inputs.push(i));
        for (inp, gi) in inputs.iter().zip(grads) {
            let Some(gi) = gi else { continue };
            if !inp.0.requires_grad || !wanted(inp) {
                continue;
            }
            if anomaly && !gi.0.storage.all_finite(&gi.0.layout) {
                return Err(Error::Anomaly {
                    op: op.name(),
                    phase: "backward",
                    what: "a NaN or Inf gradient",
                    note: if g.0.storage.all_finite(&g.0.layout) {
                        ""
                    } else {
                        " (the incoming gradient already held NaN or Inf)"
                    },
                });
            }
            if inp.is_leaf() {
                // Layout contract (as in PyTorch): a leaf's gradient comes out row-major, so the
                // optimiser's elementwise passes over it run on contiguous slices, not strided
                // gathers (a Linear weight's gradient otherwise arrives transposed).
                let gi = if gi.is_contiguous() { gi } else { gi.contiguous()? };
                accumulate(&mut result.map, inp.id(), gi)?;
            } else if accumulate(&mut pending, inp.id(), gi)? {
                ready.push(Ready((*inp).clone()));
            }
        }
    }
    Ok(result)
}

fn check_seed(root: &Tensor, seed: &Tensor) -> Result<()> {
    if seed.shape() != root.shape() || seed.dtype() != root.dtype() {
        return Err(Error::Backward(format!(
            "seed of shape {} ({}) does not match the output's shape {} ({})",
            seed.shape(),
            seed.dtype(),
            root.shape(),
            root.dtype()
        )));
    }
    Ok(())
}

impl Tensor {
    /// Gradients of this one-element tensor with respect to every leaf that requires grad.
    ///
    /// Calling it again accumulates nothing by itself: combine passes with [`Grads::accumulate`].
    pub fn backward(&self) -> Result<Grads> {
        if self.elem_count() != 1 {
            return Err(Error::Backward(format!(
                "grad can be implicitly created only for one-element outputs, this one has shape {}; use backward_with(seed)",
                self.shape()
            )));
        }
        self.backward_with(&self.ones_like()?)
    }
    /// Vector-Jacobian product: backpropagates `seed` (same shape as `self`).
    pub fn backward_with(&self, seed: &Tensor) -> Result<Grads> {
        if !self.0.requires_grad {
            return Err(Error::Backward(
                "this tensor does not require grad: no input was marked with requires_grad(true), or it was computed under no_grad".into(),
            ));
        }
        check_seed(self, seed)?;
        run_backward(std::slice::from_ref(self), vec![seed.detach()], &IdSet::default(), None, false)
    }
}

/// Gradients of `outputs` (seeded with `seeds`, or ones for one-element outputs) with respect to
/// `inputs`, like `torch.autograd.grad`. With `create_graph` the returned gradients are themselves
/// differentiable, giving Hessian-vector products and gradient penalties. Inputs that the outputs do
/// not depend on get `None`. Only the graph nodes on a path from the outputs to an input are
/// differentiated (as PyTorch prunes): branches that reach other leaves only cost nothing.
pub fn grad(outputs: &[Tensor], seeds: Option<&[Tensor]>, inputs: &[Tensor], create_graph: bool) -> Result<Vec<Option<Tensor>>> {
    let seeds: Vec<Tensor> = match seeds {
        Some(s) => {
            if s.len() != outputs.len() {
                return Err(Error::Backward(format!("{} seeds for {} outputs", s.len(), outputs.len())));
            }
            for (o, s) in outputs.iter().zip(s) {
                check_seed(o, s)?;
            }
            s.to_vec()
        }
        None => outputs
            .iter()
            .map(|o| {
                if o.elem_count() != 1 {
                    Err(Error::Backward(format!("output of shape {} needs a seed", o.shape())))
                } else {
                    o.ones_like()
                }
            })
            .collect::<Result<_>>()?,
    };
    for o in outputs {
        if !o.0.requires_grad {
            return Err(Error::Backward("an output does not require grad".into()));
        }
    }
    let keep: IdSet = inputs.iter().map(|t| t.id()).collect();
    let only = nodes_reaching(outputs, &keep);
    let grads = run_backward(outputs, seeds, &keep, Some(&only), create_graph)?;
    Ok(inputs.iter().map(|t| grads.get(t).cloned()).collect())
}

/// A rank-2 tensor laid out column-major (the transpose of a row-major matrix).
fn transposed(t: &Tensor) -> bool {
    let l = &t.0.layout;
    l.shape.rank() == 2 && !l.is_contiguous() && l.strides[0] == 1 && l.strides[1] == l.shape.0[0] && l.shape.0[0] > 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn nodes_run(f: impl FnOnce()) -> usize {
        NODES_RUN.with(|n| n.set(0));
        f();
        NODES_RUN.with(|n| n.get())
    }

    #[test]
    fn grad_differentiates_only_paths_to_the_requested_inputs() {
        let x = Tensor::from_slice(&[0.5f64, -1.0, 2.0], [3]).unwrap().requires_grad(true).unwrap();
        let w = Tensor::from_slice(&[1.5f64, 2.0, -0.5], [3]).unwrap().requires_grad(true).unwrap();
        // y = sum(3x) + sum(2 exp(w)^2): x's path is add, sum and affine (3 nodes); w's branch
        // adds sum, affine, square and exp (4 more).
        let side_x = x.mul_scalar(3.0).unwrap().sum_all().unwrap();
        let side_w = w.exp().unwrap().square().unwrap().mul_scalar(2.0).unwrap().sum_all().unwrap();
        let y = side_x.add(&side_w).unwrap();
        let mut gx = None;
        // Asking for x alone runs x's 3 nodes; w's branch is never differentiated.
        let pruned = nodes_run(|| gx = grad(std::slice::from_ref(&y), None, std::slice::from_ref(&x), false).unwrap()[0].clone());
        assert_eq!(pruned, 3);
        assert_eq!(gx.unwrap().to_vec::<f64>().unwrap(), vec![3.0; 3]);
        // Asking for both runs all 7 nodes, and the full backward does too.
        let both = nodes_run(|| {
            let g = grad(std::slice::from_ref(&y), None, &[x.clone(), w.clone()], false).unwrap();
            assert!(g.iter().all(|g| g.is_some()));
        });
        assert_eq!(both, 7);
        assert_eq!(nodes_run(|| drop(y.backward().unwrap())), 7);
        // An input the output does not depend on runs nothing and gets None.
        let z = Tensor::zeros([3], DType::F64).unwrap().requires_grad(true).unwrap();
        let mut gz = vec![];
        assert_eq!(
            nodes_run(|| gz = grad(std::slice::from_ref(&y), None, std::slice::from_ref(&z), false).unwrap()),
            0
        );
        assert!(gz[0].is_none());
    }

    #[test]
    fn pruned_higher_order_gradients_are_unchanged() {
        // d/dx of (x^2 * w).sum() is 2xw; its gradient w.r.t. x alone is 2w, with create_graph.
        let x = Tensor::from_slice(&[1.0f64, 2.0], [2]).unwrap().requires_grad(true).unwrap();
        let w = Tensor::from_slice(&[3.0f64, -1.0], [2]).unwrap().requires_grad(true).unwrap();
        let y = x.square().unwrap().mul(&w).unwrap().sum_all().unwrap();
        let dx = grad(std::slice::from_ref(&y), None, std::slice::from_ref(&x), true).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(dx.to_vec::<f64>().unwrap(), vec![6.0, -4.0]);
        let d2 = grad(&[dx.sum_all().unwrap()], None, std::slice::from_ref(&x), false).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(d2.to_vec::<f64>().unwrap(), vec![6.0, -2.0]);
        let dw = grad(&[dx.sum_all().unwrap()], None, std::slice::from_ref(&w), false).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(dw.to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
    }
}
