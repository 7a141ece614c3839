//! kiln-core: n-d tensors on the CPU, reverse-mode autodiff with higher-order gradients, function
//! transforms ([`func`]: vjp, jvp, Jacobians, Hessians, vmap), and gradcheck.
//!
//! ```
//! use kiln_core::{Tensor, grad};
//! // d/dx x³ = 3x², d²/dx² x³ = 6x
//! let x = Tensor::from_slice(&[2.0f64], [1])?.requires_grad(true)?;
//! let y = x.powf(3.0)?.sum_all()?;
//! let dy = grad(&[y], None, &[x.clone()], true)?[0].clone().unwrap();
//! assert_eq!(dy.to_vec::<f64>()?, vec![12.0]);
//! let d2y = grad(&[dy.sum_all()?], None, &[x.clone()], false)?[0].clone().unwrap();
//! assert_eq!(d2y.to_vec::<f64>()?, vec![12.0]);
//! # Ok::<(), kiln_core::Error>(())
//! ```

#![warn(missing_docs)]
pub mod autograd;
pub mod backend;
mod conv_ops;
pub mod cpu;
mod display;
mod dtype;
mod einsum;
mod error;
pub mod func;
pub mod fused;
pub mod gradcheck;
mod ops;
pub mod random;
mod shape;
mod tensor;
pub mod threads;
mod var;

/// The `half` crate kiln's f16 and bf16 elements come from, so callers name the same types
/// (`kiln_core::half::f16`) whatever version they depend on themselves.
pub use half;

pub use autograd::{detect_anomaly, grad, is_grad_enabled, no_grad, set_anomaly_detection, set_grad_enabled, GradMode, Grads};
pub use backend::Device;
pub use dtype::{DType, Element, Float};
pub use error::{Error, Result};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckOptions};
pub use random::Rng;
pub use shape::{Layout, Shape};
pub use tensor::{Tensor, TensorId};
pub use threads::on_thread_pool;
pub use var::Var;
