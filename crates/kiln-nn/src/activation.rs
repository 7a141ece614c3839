//! Activation modules (stateless wrappers around kiln-core's elementwise ops) and [`Func`].

use crate::module::Module;
use crate::Result;
use kiln_core::Tensor;

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
