//! Activation modules (stateless wrappers around kiln-core's elementwise ops), the activation
//! functions kiln-core lacks ([`elu`], [`selu`], [`hardtanh`], [`hardswish`], [`mish`],
//! [`logsigmoid`], [`softsign`], [`glu`]) and [`Func`].
//!
//! The functions are compositions of differentiable kiln-core ops, so first and higher-order
//! gradients come from autograd. Where PyTorch's hand-written backward picks a side at a kink, the
//! composition is arranged so that kiln picks the same one (first and second order).

use crate::module::Module;
use crate::{Error, Result};
use kiln_core::Tensor;

/// `x` where `keep` is set, else the constant 0: an input for a branch of a `where` that is only
/// used under `keep`, so the unused branch neither overflows nor sends `0 · ∞ = NaN` back.
fn masked_input(x: &Tensor, keep: &Tensor) -> Result<Tensor> {
    Ok(keep.where_cond(x, &x.scalar_like(0.0))?)
}

/// Exponential linear unit (`F.elu`): `x` for `x > 0`, `alpha · (eˣ − 1)` otherwise.
///
/// As in PyTorch, the slope at exactly 0 is `alpha` (the negative side's) and the second derivative
/// there is 0.
///
/// ```
/// use kiln_core::Tensor;
/// let x = Tensor::from_slice(&[-1.0f64, 0.0, 2.0], [3])?;
/// let y = kiln_nn::activation::elu(&x, 1.0)?.to_vec::<f64>()?;
/// assert!((y[0] - (-1f64).exp_m1()).abs() < 1e-15 && y[1] == 0.0 && y[2] == 2.0);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn elu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    let pos = x.gt_scalar(0.0)?;
    let neg = x.lt_scalar(0.0)?;
    // expm1 only sees non-positive inputs: on large positive ones it would overflow to ∞ and the
    // discarded branch would turn the gradient into NaN.
    let curve = masked_input(x, &neg)?.expm1()?.mul_scalar(alpha)?;
    // At exactly 0 torch's first derivative is `alpha` and its second 0: the line `alpha · x`.
    let kink = x.mul_scalar(alpha)?;
    Ok(pos.where_cond(x, &neg.where_cond(&curve, &kink)?)?)
}

/// SELU's `alpha` (`torch.nn.SELU`).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's `scale` (`torch.nn.SELU`).
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// Scaled exponential linear unit (`F.selu`): `scale · elu(x, alpha)` with the self-normalising
/// constants [`SELU_SCALE`] and [`SELU_ALPHA`].
pub fn selu(x: &Tensor) -> Result<Tensor> {
    Ok(elu(x, SELU_ALPHA)?.mul_scalar(SELU_SCALE)?)
}

/// `x` clamped to `[min_val, max_val]` (`F.hardtanh`, PyTorch defaults −1 and 1). The gradient is 0
/// at and beyond the bounds, as PyTorch's.
pub fn hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Result<Tensor> {
    if min_val.is_nan() || max_val.is_nan() || min_val > max_val {
        return Err(Error::config(
            "hardtanh",
            format!("min_val {min_val} must be ≤ max_val {max_val} (input {})", x.shape()),
        ));
    }
    Ok(x.clamp(min_val, max_val)?)
}

/// Hard swish (`F.hardswish`): `x · clamp(x + 3, 0, 6) / 6`.
///
/// PyTorch's gradient is `x/3 + 1/2` strictly between −3 and 3, 0 at and below −3 and 1 at and
/// above 3; so is kiln's, and the second derivative is 1/3 strictly inside, 0 elsewhere.
pub fn hardswish(x: &Tensor) -> Result<Tensor> {
    let quad = x.mul(&x.add_scalar(3.0)?)?.div_scalar(6.0)?;
    let upper = x.ge_scalar(3.0)?.where_cond(x, &quad)?;
    Ok(x.le_scalar(-3.0)?.where_cond(&x.scalar_like(0.0), &upper)?)
}

/// Mish (`F.mish`): `x · tanh(softplus(x))`.
pub fn mish(x: &Tensor) -> Result<Tensor> {
    // kiln's softplus is linear above 20, so large inputs stay finite where torch's
    // `log1p(exp(x))` overflows in the second derivative.
    Ok(x.mul(&x.softplus()?.tanh()?)?)
}

/// `log(sigmoid(x))` (`F.logsigmoid`), computed as `min(x, 0) − log1p(e^−|x|)`: finite for every
/// finite `x` (`x` itself far below 0), with PyTorch's smooth first and second derivatives
/// (`sigmoid(−x)` and `−sigmoid(x)·sigmoid(−x)`, also at 0).
pub fn logsigmoid(x: &Tensor) -> Result<Tensor> {
    let neg = x.lt_scalar(0.0)?;
    // Each branch sees only the inputs it is used for, so neither `exp` can overflow.
    let xn = masked_input(x, &neg)?;
    let xp = neg.where_cond(&x.scalar_like(0.0), x)?;
    let left = xn.sub(&xn.exp()?.log1p()?)?;
    let right = xp.neg()?.exp()?.log1p()?.neg()?;
    Ok(neg.where_cond(&left, &right)?)
}

/// Softsign (`F.softsign`): `x / (1 + |x|)`.
pub fn softsign(x: &Tensor) -> Result<Tensor> {
    Ok(x.div(&x.abs()?.add_scalar(1.0)?)?)
}

/// Gated linear unit (`F.glu`): splits `x` in halves `a`, `b` along `dim` and returns
/// `a · sigmoid(b)`. The size of `dim` must be even.
///
/// ```
/// use kiln_core::{DType, Tensor};
/// let x = Tensor::zeros([2, 6], DType::F32)?;
/// assert_eq!(kiln_nn::activation::glu(&x, -1)?.dims(), &[2, 3]);
/// assert!(kiln_nn::activation::glu(&Tensor::zeros([2, 5], DType::F32)?, -1).is_err());
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub fn glu(x: &Tensor, dim: isize) -> Result<Tensor> {
    let rank = x.rank() as isize;
    let d = if dim < 0 { dim + rank } else { dim };
    if rank == 0 || !(0..rank).contains(&d) {
        return Err(Error::config("glu", format!("dim {dim} is out of range for input {}", x.shape())));
    }
    let n = x.dims()[d as usize];
    if !n.is_multiple_of(2) {
        return Err(Error::config(
            "glu",
            format!("dim {dim} of input {} has odd size {n}; it must split into two halves", x.shape()),
        ));
    }
    let a = x.narrow(d, 0, n / 2)?;
    let b = x.narrow(d, n / 2, n / 2)?;
    Ok(a.mul(&b.sigmoid()?)?)
}

macro_rules! activation {
    ($($name:ident => $method:ident, $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $name;
            impl Module for $name {
                fn forward(&self, x: &Tensor) -> Result<Tensor> {
                    Ok(x.$method()?)
                }
            }
        )*
    };
}

activation! {
    ReLU => relu, "`max(x, 0)` (`torch.nn.ReLU`).";
    Sigmoid => sigmoid, "`1 / (1 + e^-x)` (`torch.nn.Sigmoid`).";
    Tanh => tanh, "Hyperbolic tangent (`torch.nn.Tanh`).";
    GELU => gelu, "Exact GELU `0.5 x (1 + erf(x/√2))` (`torch.nn.GELU()`).";
    SiLU => silu, "`x * sigmoid(x)` (`torch.nn.SiLU`).";
    Softplus => softplus, "`ln(1 + e^x)` with PyTorch's threshold of 20 (`torch.nn.Softplus()`).";
}

/// `x` if positive, else `negative_slope * x` (`torch.nn.LeakyReLU`, default slope 0.01).
#[derive(Debug, Clone, Copy)]
pub struct LeakyReLU(pub f64);

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU(0.01)
    }
}

impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.leaky_relu(self.0)?)
    }
}

/// Softmax along a dim (`torch.nn.Softmax(dim)`).
#[derive(Debug, Clone, Copy)]
pub struct Softmax(pub isize);

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.softmax(self.0)?)
    }
}

/// Log-softmax along a dim (`torch.nn.LogSoftmax(dim)`).
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax(pub isize);

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.log_softmax(self.0)?)
    }
}

/// [`elu`] as a module (`torch.nn.ELU(alpha)`, default alpha 1).
#[derive(Debug, Clone, Copy)]
pub struct ELU(pub f64);

impl Default for ELU {
    fn default() -> Self {
        ELU(1.0)
    }
}

impl Module for ELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        elu(x, self.0)
    }
}

/// [`hardtanh`] as a module (`torch.nn.Hardtanh(min_val, max_val)`, default −1 and 1).
#[derive(Debug, Clone, Copy)]
pub struct Hardtanh {
    /// Lower bound.
    pub min_val: f64,
    /// Upper bound.
    pub max_val: f64,
}

impl Default for Hardtanh {
    fn default() -> Self {
        Hardtanh {
            min_val: -1.0,
            max_val: 1.0,
        }
    }
}

impl Module for Hardtanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        hardtanh(x, self.min_val, self.max_val)
    }
}

/// [`glu`] as a module (`torch.nn.GLU(dim)`, default dim −1).
#[derive(Debug, Clone, Copy)]
pub struct GLU(pub isize);

impl Default for GLU {
    fn default() -> Self {
        GLU(-1)
    }
}

impl Module for GLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        glu(x, self.0)
    }
}

macro_rules! function_activation {
    ($($name:ident => $f:ident, $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $name;
            impl Module for $name {
                fn forward(&self, x: &Tensor) -> Result<Tensor> {
                    $f(x)
                }
            }
        )*
    };
}

function_activation! {
    SELU => selu, "[`selu`] as a module (`torch.nn.SELU`).";
    Hardswish => hardswish, "[`hardswish`] as a module (`torch.nn.Hardswish`).";
    Mish => mish, "[`mish`] as a module (`torch.nn.Mish`).";
    LogSigmoid => logsigmoid, "[`logsigmoid`] as a module (`torch.nn.LogSigmoid`).";
    Softsign => softsign, "[`softsign`] as a module (`torch.nn.Softsign`).";
}

/// Returns its input (`torch.nn.Identity`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Module for Identity {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}

/// A parameter-free module from a closure, for one-off reshapes inside a [`crate::Sequential`].
///
/// ```
/// use kiln_nn::{Func, Module};
/// use kiln_core::{DType, Tensor};
/// let double = Func::new(|x| Ok(x.mul_scalar(2.0)?));
/// assert_eq!(double.forward(&Tensor::ones([2], DType::F32)?)?.to_vec::<f32>()?, vec![2.0, 2.0]);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub struct Func(Box<FuncFn>);

type FuncFn = dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync;

impl Func {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Func {
        Func(Box::new(f))
    }
}

impl Module for Func {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (self.0)(x)
    }
}
