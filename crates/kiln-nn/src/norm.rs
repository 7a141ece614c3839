//! `LayerNorm`, `RMSNorm`, `GroupNorm`, `InstanceNorm1d`/`2d`, `BatchNorm1d` and `BatchNorm2d`.

use crate::init::Init;
use crate::module::{Buffer, VarStore};
// The derive (same name as the trait) lives at the crate root.
use crate::Module;
use crate::{Error, Result};
use kiln_core::{no_grad, DType, Tensor, Var};
use std::sync::atomic::{AtomicBool, Ordering};

/// Normalises over the trailing `normalized_shape` dims with the biased variance, then applies an
/// elementwise affine map (`torch.nn.LayerNorm`).
#[derive(Debug, Clone, Module)]
pub struct LayerNorm {
    /// The trailing dims normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Scale, initialised to ones.
    pub weight: Option<Var>,
    /// Shift, initialised to zeros.
    pub bias: Option<Var>,
}

impl LayerNorm {
    /// `LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True)`.
    pub fn new(vs: &VarStore, normalized_shape: &[usize]) -> Result<LayerNorm> {
        LayerNorm::with_options(vs, normalized_shape, 1e-5, true)
    }
    /// With explicit `eps` and `elementwise_affine`.
    pub fn with_options(vs: &VarStore, normalized_shape: &[usize], eps: f64, affine: bool) -> Result<LayerNorm> {
        if normalized_shape.is_empty() {
            return Err(Error::config("LayerNorm", "normalized_shape is empty"));
        }
        let (weight, bias) = if affine {
            (
                Some(vs.var("weight", normalized_shape, Init::Const(1.0))?),
                Some(vs.var("bias", normalized_shape, Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight,
            bias,
        })
    }
}

impl LayerNorm {
    /// Normalises `x` over its trailing `normalized_shape` dims (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.normalized_shape.len();
        if x.rank() < k || x.dims()[x.rank() - k..] != self.normalized_shape[..] {
            return Err(Error::config(
                "LayerNorm::forward",
                format!("input {} does not end in normalized_shape {:?}", x.shape(), self.normalized_shape),
            ));
        }
        let dims: Vec<isize> = (1..=k as isize).map(|i| -i).collect();
        let mean = x.mean(&dims, true)?;
        let c = x.sub(&mean)?;
        let var = c.square()?.mean(&dims, true)?;
        let mut y = c.mul(&var.add_scalar(self.eps)?.rsqrt()?)?;
        if let Some(w) = &self.weight {
            y = y.mul(&w.tensor())?;
        }
        if let Some(b) = &self.bias {
            y = y.add(&b.tensor())?;
        }
        Ok(y)
    }
}

/// Batch normalisation over the channel dim 1 (`torch.nn.BatchNorm1d` / `BatchNorm2d`).
///
/// Training mode normalises with the batch mean and biased variance and updates the running
/// statistics (`running = (1-momentum)·running + momentum·batch`, the variance unbiased; with
/// `momentum = None` the factor is `1/num_batches_tracked`, a cumulative average); eval mode normalises with the running statistics. Without running statistics
/// (`track_running_stats=false`) both modes normalise with the batch, as in PyTorch.
#[derive(Module)]
pub struct BatchNorm {
    num_features: usize,
    /// Input ranks accepted (`[2, 3]` for 1d, `[4]` for 2d).
    #[module(skip)]
    ranks: &'static [usize],
    name: &'static str,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Running-statistics momentum (default `Some(0.1)`); `None` is PyTorch's `momentum=None`, a
    /// cumulative moving average over all training batches.
    pub momentum: Option<f64>,
    /// Scale `[C]` (ones); `None` without affine parameters.
    pub weight: Option<Var>,
    /// Shift `[C]` (zeros); `None` without affine parameters.
    pub bias: Option<Var>,
    /// `[C]`, starts at zeros; `None` without running statistics.
    pub running_mean: Option<Buffer>,
    /// `[C]`, starts at ones; `None` without running statistics.
    pub running_var: Option<Buffer>,
    /// Scalar i64 count of training batches seen; `None` without running statistics.
    pub num_batches_tracked: Option<Buffer>,
    #[module(training)]
    training: AtomicBool,
}

/// `torch.nn.BatchNorm1d`: input `[N, C]` or `[N, C, L]`.
pub type BatchNorm1d = BatchNorm;
/// `torch.nn.BatchNorm2d`: input `[N, C, H, W]`.
pub type BatchNorm2d = BatchNorm;

/// `BatchNorm1d` / `BatchNorm2d` keyword arguments besides the channel count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance, default 1e-5.
    pub eps: f64,
    /// Running-statistics momentum, default `Some(0.1)`; `None` averages all batches equally
    /// (PyTorch's `momentum=None`).
    pub momentum: Option<f64>,
    /// Learnable per-channel scale and shift, default true.
    pub affine: bool,
    /// Keep running statistics for eval mode, default true.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

impl BatchNorm {
    fn build(vs: &VarStore, c: usize, cfg: &BatchNormConfig, ranks: &'static [usize], name: &'static str) -> Result<BatchNorm> {
        if let Some(m) = cfg.momentum {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::config(name, format!("momentum must be in [0, 1] or None, got {m}")));
            }
        }
        let dt = vs.dtype();
        let (weight, bias) = if cfg.affine {
            (
                Some(vs.var("weight", &[c], Init::Const(1.0))?),
                Some(vs.var("bias", &[c], Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        let (running_mean, running_var, num_batches_tracked) = if cfg.track_running_stats {
            (
                Some(vs.buffer("running_mean", Tensor::zeros([c], dt)?)),
                Some(vs.buffer("running_var", Tensor::ones([c], dt)?)),
                Some(vs.buffer("num_batches_tracked", Tensor::scalar(0i64))),
            )
        } else {
            (None, None, None)
        };
        Ok(BatchNorm {
            num_features: c,
            ranks,
            name,
            eps: cfg.eps,
            momentum: cfg.momentum,
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
            training: AtomicBool::new(true),
        })
    }
    /// `BatchNorm1d(c)` (eps 1e-5, momentum 0.1, affine).
    pub fn new_1d(vs: &VarStore, c: usize) -> Result<BatchNorm> {
        BatchNorm::new_1d_with_config(vs, c, &BatchNormConfig::default())
    }
    /// `BatchNorm2d(c)` (eps 1e-5, momentum 0.1, affine).
    pub fn new_2d(vs: &VarStore, c: usize) -> Result<BatchNorm> {
        BatchNorm::new_2d_with_config(vs, c, &BatchNormConfig::default())
    }
    /// 1d with explicit eps and momentum.
    pub fn new_1d_with(vs: &VarStore, c: usize, eps: f64, momentum: f64) -> Result<BatchNorm> {
        BatchNorm::new_1d_with_config(
            vs,
            c,
            &BatchNormConfig {
                eps,
                momentum: Some(momentum),
                ..Default::default()
            },
        )
    }
    /// 2d with explicit eps and momentum.
    pub fn new_2d_with(vs: &VarStore, c: usize, eps: f64, momentum: f64) -> Result<BatchNorm> {
        BatchNorm::new_2d_with_config(
            vs,
            c,
            &BatchNormConfig {
                eps,
                momentum: Some(momentum),
                ..Default::default()
            },
        )
    }
    /// `BatchNorm1d(c, eps, momentum, affine, track_running_stats)`.
    pub fn new_1d_with_config(vs: &VarStore, c: usize, cfg: &BatchNormConfig) -> Result<BatchNorm> {
        BatchNorm::build(vs, c, cfg, &[2, 3], "BatchNorm1d")
    }
    /// `BatchNorm2d(c, eps, momentum, affine, track_running_stats)`.
    pub fn new_2d_with_config(vs: &VarStore, c: usize, cfg: &BatchNormConfig) -> Result<BatchNorm> {
        BatchNorm::build(vs, c, cfg, &[4], "BatchNorm2d")
    }
    /// `C`.
    pub fn num_features(&self) -> usize {
        self.num_features
    }
}

impl BatchNorm {
    /// Normalises `x` per channel (dim 1) with batch statistics in training mode, running ones in
    /// eval mode (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.ranks.contains(&x.rank()) || x.dims()[1] != self.num_features {
            return Err(Error::config(
                self.name,
                format!(
                    "expected input of rank {:?} with {} channels in dim 1, got {}",
                    self.ranks,
                    self.num_features,
                    x.shape()
                ),
            ));
        }
        let c = self.num_features;
        let mut bshape = vec![1usize; x.rank()];
        bshape[1] = c;
        let red: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
        let running = match (&self.running_mean, &self.running_var, &self.num_batches_tracked) {
            (Some(m), Some(v), Some(nb)) => Some((m, v, nb)),
            _ => None,
        };
        let training = self.training.load(Ordering::Relaxed);
        let (mean, var) = match running {
            Some((rm, rv, _)) if !training => {
                let dt = x.dtype();
                (
                    rm.get().to_dtype(dt)?.reshape(bshape.clone())?,
                    rv.get().to_dtype(dt)?.reshape(bshape.clone())?,
                )
            }
            _ => {
                let n = x.elem_count() / c;
                if n < 2 {
                    return Err(Error::config(
                        self.name,
                        format!("batch statistics need more than 1 value per channel, got input {}", x.shape()),
                    ));
                }
                let mean = x.mean(&red, true)?;
                let var = x.sub(&mean)?.square()?.mean(&red, true)?;
                if let (Some((rm, rv, nb)), true) = (running, training) {
                    no_grad(|| -> Result<()> {
                        let count = nb.get().to_vec::<i64>()?[0] + 1;
                        // `momentum=None`: weight 1/n for the n-th batch keeps the running value
                        // the plain mean of all batch statistics (PyTorch's cumulative average).
                        let m = self.momentum.unwrap_or(1.0 / count as f64);
                        let bm = mean.detach().reshape([c])?.to_dtype(rm.get().dtype())?;
                        let bv = var
                            .detach()
                            .reshape([c])?
                            .mul_scalar(n as f64 / (n - 1) as f64)?
                            .to_dtype(rv.get().dtype())?;
                        rm.set(&rm.get().mul_scalar(1.0 - m)?.add(&bm.mul_scalar(m)?)?)?;
                        rv.set(&rv.get().mul_scalar(1.0 - m)?.add(&bv.mul_scalar(m)?)?)?;
                        nb.set(&Tensor::scalar(count))?;
                        Ok(())
                    })?;
                }
                (mean, var)
            }
        };
        let mut y = x.sub(&mean)?.mul(&var.add_scalar(self.eps)?.rsqrt()?)?;
        if let Some(w) = &self.weight {
            y = y.mul(&w.tensor().reshape(bshape.clone())?)?;
        }
        if let Some(b) = &self.bias {
            y = y.add(&b.tensor().reshape(bshape)?)?;
        }
        Ok(y)
    }
}

/// `x` normalised over `dims` with the biased variance: `(x − mean) / sqrt(var + eps)`.
fn standardize(x: &Tensor, dims: &[isize], eps: f64) -> Result<Tensor> {
    let c = x.sub(&x.mean(dims, true)?)?;
    let var = c.square()?.mean(dims, true)?;
    Ok(c.mul(&var.add_scalar(eps)?.rsqrt()?)?)
}

/// Per-channel `weight` / `bias` `[C]` applied along dim 1 of `y`.
fn channel_affine(y: Tensor, weight: &Option<Var>, bias: &Option<Var>) -> Result<Tensor> {
    let mut shape = vec![1usize; y.rank()];
    let mut y = y;
    if let Some(w) = weight {
        shape[1] = w.elem_count();
        y = y.mul(&w.tensor().reshape(shape.clone())?)?;
    }
    if let Some(b) = bias {
        shape[1] = b.elem_count();
        y = y.add(&b.tensor().reshape(shape)?)?;
    }
    Ok(y)
}

fn affine_params(vs: &VarStore, c: usize, affine: bool) -> Result<(Option<Var>, Option<Var>)> {
    Ok(if affine {
        (
            Some(vs.var("weight", &[c], Init::Const(1.0))?),
            Some(vs.var("bias", &[c], Init::Const(0.0))?),
        )
    } else {
        (None, None)
    })
}

/// Root-mean-square normalisation over the trailing `normalized_shape` dims,
/// `x / sqrt(mean(x²) + eps) · weight` (`torch.nn.RMSNorm`; no centring, no bias).
#[derive(Debug, Clone, Module)]
pub struct RMSNorm {
    /// The trailing dims normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the mean square; `None` (PyTorch's default) uses the input dtype's machine epsilon.
    pub eps: Option<f64>,
    /// Scale, initialised to ones.
    pub weight: Option<Var>,
}

impl RMSNorm {
    /// `RMSNorm(normalized_shape, eps=None, elementwise_affine=True)`.
    pub fn new(vs: &VarStore, normalized_shape: &[usize]) -> Result<RMSNorm> {
        RMSNorm::with_options(vs, normalized_shape, None, true)
    }
    /// With explicit `eps` and `elementwise_affine`.
    pub fn with_options(vs: &VarStore, normalized_shape: &[usize], eps: Option<f64>, affine: bool) -> Result<RMSNorm> {
        if normalized_shape.is_empty() {
            return Err(Error::config("RMSNorm", "normalized_shape is empty"));
        }
        let weight = if affine {
            Some(vs.var("weight", normalized_shape, Init::Const(1.0))?)
        } else {
            None
        };
        Ok(RMSNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight,
        })
    }
}

impl RMSNorm {
    /// Normalises `x` over its trailing `normalized_shape` dims (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.normalized_shape.len();
        if x.rank() < k || x.dims()[x.rank() - k..] != self.normalized_shape[..] {
            return Err(Error::config(
                "RMSNorm::forward",
                format!("input {} does not end in normalized_shape {:?}", x.shape(), self.normalized_shape),
            ));
        }
        let eps = self.eps.unwrap_or(match x.dtype() {
            DType::F32 => f32::EPSILON as f64,
            _ => f64::EPSILON,
        });
        let dims: Vec<isize> = (1..=k as isize).map(|i| -i).collect();
        let ms = x.square()?.mean(&dims, true)?;
        let mut y = x.mul(&ms.add_scalar(eps)?.rsqrt()?)?;
        if let Some(w) = &self.weight {
            y = y.mul(&w.tensor())?;
        }
        Ok(y)
    }
}

/// Group normalisation (`torch.nn.GroupNorm`): the `C` channels of an `[N, C, *]` input are split
/// into `num_groups` groups, each normalised per sample over its channels and positions with the
/// biased variance; then a per-channel affine map. Same in training and evaluation.
#[derive(Debug, Clone, Module)]
pub struct GroupNorm {
    /// Number of groups; divides `num_channels`.
    pub num_groups: usize,
    /// `C`.
    pub num_channels: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Scale `[C]` (ones).
    pub weight: Option<Var>,
    /// Shift `[C]` (zeros).
    pub bias: Option<Var>,
}

impl GroupNorm {
    /// `GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`.
    pub fn new(vs: &VarStore, num_groups: usize, num_channels: usize) -> Result<GroupNorm> {
        GroupNorm::with_options(vs, num_groups, num_channels, 1e-5, true)
    }
    /// With explicit `eps` and `affine`.
    pub fn with_options(vs: &VarStore, num_groups: usize, num_channels: usize, eps: f64, affine: bool) -> Result<GroupNorm> {
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(Error::config(
                "GroupNorm",
                format!("num_channels {num_channels} must be divisible by num_groups {num_groups} (> 0)"),
            ));
        }
        let (weight, bias) = affine_params(vs, num_channels, affine)?;
        Ok(GroupNorm {
            num_groups,
            num_channels,
            eps,
            weight,
            bias,
        })
    }
}

impl GroupNorm {
    /// Normalises each group of channels of `x` `[N, C, *]` per sample (what [`Module::forward`]
    /// runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() < 2 || x.dims()[1] != self.num_channels {
            return Err(Error::config(
                "GroupNorm",
                format!("expected input [N, {}, *], got {}", self.num_channels, x.shape()),
            ));
        }
        let n = x.dims()[0];
        let per_group = self.num_channels / self.num_groups * x.dims()[2..].iter().product::<usize>();
        let y = standardize(&x.reshape([n, self.num_groups, per_group])?, &[-1], self.eps)?;
        channel_affine(y.reshape(x.shape().clone())?, &self.weight, &self.bias)
    }
}

/// Instance normalisation (`torch.nn.InstanceNorm1d` / `InstanceNorm2d` with the default
/// `track_running_stats=False`): each channel of each sample is normalised over its positions with
/// the biased variance, in training and evaluation alike; then an optional per-channel affine map.
/// Accepts batched `[N, C, *spatial]` and unbatched `[C, *spatial]` inputs. Running statistics are
/// not supported.
#[derive(Debug, Clone, Module)]
pub struct InstanceNorm {
    num_features: usize,
    spatial: usize,
    name: &'static str,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Scale `[C]` (ones), when affine.
    pub weight: Option<Var>,
    /// Shift `[C]` (zeros), when affine.
    pub bias: Option<Var>,
}

/// `torch.nn.InstanceNorm1d`: input `[N, C, L]` or `[C, L]`.
pub type InstanceNorm1d = InstanceNorm;
/// `torch.nn.InstanceNorm2d`: input `[N, C, H, W]` or `[C, H, W]`.
pub type InstanceNorm2d = InstanceNorm;

impl InstanceNorm {
    /// `InstanceNorm1d(c)` (eps 1e-5, no affine parameters: PyTorch's defaults).
    pub fn new_1d(vs: &VarStore, c: usize) -> Result<InstanceNorm> {
        InstanceNorm::new_1d_with(vs, c, 1e-5, false)
    }
    /// `InstanceNorm2d(c)` (eps 1e-5, no affine parameters).
    pub fn new_2d(vs: &VarStore, c: usize) -> Result<InstanceNorm> {
        InstanceNorm::new_2d_with(vs, c, 1e-5, false)
    }
    /// 1d with explicit eps and `affine`.
    pub fn new_1d_with(vs: &VarStore, c: usize, eps: f64, affine: bool) -> Result<InstanceNorm> {
        InstanceNorm::build(vs, c, eps, affine, 1, "InstanceNorm1d")
    }
    /// 2d with explicit eps and `affine`.
    pub fn new_2d_with(vs: &VarStore, c: usize, eps: f64, affine: bool) -> Result<InstanceNorm> {
        InstanceNorm::build(vs, c, eps, affine, 2, "InstanceNorm2d")
    }
    fn build(vs: &VarStore, c: usize, eps: f64, affine: bool, spatial: usize, name: &'static str) -> Result<InstanceNorm> {
        let (weight, bias) = affine_params(vs, c, affine)?;
        Ok(InstanceNorm {
            num_features: c,
            spatial,
            name,
            eps,
            weight,
            bias,
        })
    }
    /// `C`.
    pub fn num_features(&self) -> usize {
        self.num_features
    }
}

impl InstanceNorm {
    /// Normalises each channel of each sample of `x` over its positions (what
    /// [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let batched = x.rank() == self.spatial + 2;
        let bad = |why: &str| {
            Err(Error::config(
                self.name,
                format!(
                    "expected input [N, {c}, {s}] or [{c}, {s}], got {} ({why})",
                    x.shape(),
                    c = self.num_features,
                    s = if self.spatial == 1 { "L" } else { "H, W" }
                ),
            ))
        };
        if !batched && x.rank() != self.spatial + 1 {
            return bad("wrong rank");
        }
        let xb = if batched { x.clone() } else { x.unsqueeze(0)? };
        if xb.dims()[1] != self.num_features {
            return bad("wrong channel count");
        }
        // PyTorch refuses a single position: its variance is 0 and the output all zeros.
        if xb.dims()[2..].iter().product::<usize>() == 1 {
            return bad("more than 1 spatial element is needed");
        }
        let dims: Vec<isize> = (2..xb.rank() as isize).collect();
        let y = channel_affine(standardize(&xb, &dims, self.eps)?, &self.weight, &self.bias)?;
        Ok(if batched { y } else { y.squeeze(0)? })
    }
}
