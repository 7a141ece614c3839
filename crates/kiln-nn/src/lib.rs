//! kiln-nn: modules, losses, optimisers, LR schedules, data loading and safetensors checkpoints on
//! top of kiln-core, with PyTorch's names, parameter layouts and formulas.
//!
//! ```
//! use kiln_nn::prelude::*;
//! use kiln_core::{DType, Tensor};
//! let vs = VarStore::new(DType::F32, 0);
//! let model = Sequential::new()
//!     .add(Linear::new(&vs.pp(0), 2, 16)?)
//!     .add(Tanh)
//!     .add(Linear::new(&vs.pp(2), 16, 2)?);
//! let mut opt = Adam::new(model.parameters(), 0.05)?;
//! let x = Tensor::from_slice(&[0f32, 0., 0., 1., 1., 0., 1., 1.], [4, 2])?;
//! let y = Tensor::from_slice(&[0i64, 1, 1, 0], [4])?;
//! for _ in 0..200 {
//!     let loss = cross_entropy(&model.forward(&x)?, &y)?;
//!     opt.minimize(loss)?; // the graph goes before the update
//! }
//! assert_eq!(accuracy(&model.forward(&x)?, &y)?, 1.0);
//! # Ok::<(), kiln_nn::Error>(())
//! ```

// The derive's generated code names `::kiln_nn::...`, which must also resolve inside this crate.
#![warn(missing_docs)]
extern crate self as kiln_nn;

pub mod activation;
pub mod attention;
pub mod container;
pub mod conv;
pub mod data;
mod error;
pub mod init;
mod lbfgs;
pub mod linear;
pub mod loss;
pub mod module;
pub mod norm;
pub mod optim;
pub mod schedule;
pub mod serialize;
pub mod train;

pub use activation::{
    Func, Hardswish, Hardtanh, Identity, LeakyReLU, LogSigmoid, LogSoftmax, Mish, ReLU, SiLU, Sigmoid, Softmax, Softplus, Softsign, Tanh,
    ELU, GELU, GLU, SELU,
};
pub use attention::{causal_mask, AttentionOptions, MultiheadAttention, MultiheadAttentionConfig};
pub use container::{Dropout, Sequential};
pub use conv::{
    AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, ConvTranspose1d, ConvTranspose1dConfig,
    ConvTranspose2d, ConvTranspose2dConfig, MaxPool1d, MaxPool2d,
};
pub use error::{Error, Result, TensorMismatch};
pub use init::{FanMode, Init, Nonlinearity};
/// `#[derive(Module)]`: implements [`Module`](trait@Module) from a struct's fields, so a custom
/// model reports every parameter, buffer and sub-module; the guide and a runnable example are in
/// the [`module`] docs.
pub use kiln_derive::Module;
pub use linear::{Embedding, Flatten, Linear};
pub use module::{Buffer, Module, ModuleField, VarStore};
pub use norm::{
    BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, GroupNorm, InstanceNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm, RMSNorm,
};
pub use optim::{
    clip_grad_norm, clip_grad_norm_p, clip_grad_value, Adagrad, Adam, AdamW, Adamax, Lbfgs, LineSearch, NAdam, Optimizer, RAdam, RmsProp,
    Sgd,
};

/// What `#[derive(Module)]`'s generated code names; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::module::{join, Buffer, ModuleField};
    pub use kiln_core::{Tensor, Var};

    /// Imported inside the derived `Module::forward`, whose body is `Self::forward(self, x)`.
    /// An inherent `forward` wins path lookup; without one this blanket method is a candidate
    /// too, so the call fails to compile (naming this trait) instead of recursing forever.
    pub trait DeriveModuleNeedsAnInherentForwardMethod {
        /// Never called: its signature matches no `forward` call.
        fn forward(&self, missing: std::convert::Infallible);
    }
    impl<T: ?Sized> DeriveModuleNeedsAnInherentForwardMethod for T {
        fn forward(&self, missing: std::convert::Infallible) {
            match missing {}
        }
    }
}

/// PyTorch's `torch.nn.functional` names for the stateless functions.
pub mod functional {
    pub use crate::activation::{elu, glu, hardswish, hardtanh, logsigmoid, mish, selu, softsign};
    pub use crate::attention::causal_mask;
    pub use crate::conv::{conv2d, conv_transpose1d, conv_transpose2d};
    pub use crate::loss::{
        binary_cross_entropy, binary_cross_entropy_with, binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_with,
        cross_entropy, cross_entropy_with, huber_loss, kl_div, l1_loss, mse_loss, nll_loss, nll_loss_with, smooth_l1_loss,
    };
}

/// `use kiln_nn::prelude::*` brings the layers, losses, optimisers and traits into scope.
pub mod prelude {
    pub use crate::data::{DataLoader, Dataset, TensorDataset};
    pub use crate::loss::{accuracy, cross_entropy, mse_loss, Reduction};
    pub use crate::schedule::LrScheduler;
    pub use crate::{
        Adam, AdamW, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Conv2dConfig, Dropout, Embedding, Flatten,
        LayerNorm, Linear, MaxPool2d, Module, MultiheadAttention, Optimizer, ReLU, Sequential, Sgd, Sigmoid, Tanh, VarStore, GELU,
    };
}
