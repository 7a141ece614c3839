//! Parameter initialisers (PyTorch's `torch.nn.init`), all drawing from a seeded [`Rng`].
//!
//! Fans follow PyTorch: for a weight of shape `[out, in, k...]`, `fan_in = in * prod(k)` and
//! `fan_out = out * prod(k)`.

use crate::{Error, Result};
use kiln_core::{DType, Rng, Shape, Tensor};

/// Which fan the Kaiming initialisers scale by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the forward-pass variance (PyTorch's default).
    FanIn,
    /// Preserves the backward-pass variance.
    FanOut,
}

/// The non-linearity a layer feeds, which sets the recommended gain (`torch.nn.init.calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    /// Identity, convolutions and sigmoid: gain 1.
    Linear,
    /// Gain 1.
    Sigmoid,
    /// Gain 5/3.
    Tanh,
    /// Gain √2.
    ReLU,
    /// Gain √(2 / (1 + slope²)).
    LeakyReLU(f64),
    /// Gain 3/4.
    Selu,
}

/// `torch.nn.init.calculate_gain`.
pub fn calculate_gain(nl: Nonlinearity) -> f64 {
    match nl {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::ReLU => 2f64.sqrt(),
        Nonlinearity::LeakyReLU(a) => (2.0 / (1.0 + a * a)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight shape; needs at least 2 dims.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::config(
            "init",
            format!("fan in and fan out need a weight with at least 2 dims, got {shape:?}"),
        ));
    }
    let overflow = || Error::config("init", format!("fan in and fan out of {shape:?} overflow"));
    let receptive = shape[2..].iter().try_fold(1usize, |p, &d| p.checked_mul(d)).ok_or_else(overflow)?;
    let fan_in = shape[1].checked_mul(receptive).ok_or_else(overflow)?;
    let fan_out = shape[0].checked_mul(receptive).ok_or_else(overflow)?;
    Ok((fan_in, fan_out))
}

/// How to fill a new parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Every element equal to the value.
    Const(f64),
    /// Uniform in `[lo, hi)`.
    Uniform {
        /// Inclusive lower bound.
        lo: f64,
        /// Exclusive upper bound.
        hi: f64,
    },
    /// Normal with this mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// He/Kaiming uniform: bound `gain * sqrt(3 / fan)`.
    KaimingUniform {
        /// The nonlinearity that follows, which sets the gain.
        nonlinearity: Nonlinearity,
        /// Which fan the bound divides by.
        mode: FanMode,
    },
    /// He/Kaiming normal: std `gain / sqrt(fan)`.
    KaimingNormal {
        /// The nonlinearity that follows, which sets the gain.
        nonlinearity: Nonlinearity,
        /// Which fan the standard deviation divides by.
        mode: FanMode,
    },
    /// Glorot/Xavier uniform: bound `gain * sqrt(6 / (fan_in + fan_out))`.
    XavierUniform {
        /// Scale of the bound.
        gain: f64,
    },
    /// Glorot/Xavier normal: std `gain * sqrt(2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Scale of the standard deviation.
        gain: f64,
    },
}

impl Init {
    /// PyTorch's default for `Linear`/`Conv` weights: `kaiming_uniform_(a = √5)`, i.e. uniform in
    /// `±1/sqrt(fan_in)`.
    pub const DEFAULT_WEIGHT: Init = Init::KaimingUniform {
        nonlinearity: Nonlinearity::LeakyReLU(2.236_067_977_499_79),
        mode: FanMode::FanIn,
    };

    /// PyTorch's default bias of a layer whose weight has fan-in `fan_in`: uniform in `±1/sqrt(fan_in)`.
    pub fn default_bias(fan_in: usize) -> Init {
        let b = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
        Init::Uniform { lo: -b, hi: b }
    }

    /// A tensor of `shape` filled by this initialiser.
    pub fn tensor(&self, shape: &Shape, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        let dims = shape.dims();
        let t = match *self {
            Init::Const(v) => Tensor::full(shape.clone(), v, dtype)?,
            Init::Uniform { lo, hi } => Tensor::rand(shape.clone(), lo, hi, dtype, rng)?,
            Init::Normal { mean, std } => Tensor::randn(shape.clone(), mean, std, dtype, rng)?,
            Init::KaimingUniform { nonlinearity, mode } => {
                let std = kaiming_std(dims, nonlinearity, mode)?;
                let b = 3f64.sqrt() * std;
                Tensor::rand(shape.clone(), -b, b, dtype, rng)?
            }
            Init::KaimingNormal { nonlinearity, mode } => {
                let std = kaiming_std(dims, nonlinearity, mode)?;
                Tensor::randn(shape.clone(), 0.0, std, dtype, rng)?
            }
            Init::XavierUniform { gain } => {
                let (fi, fo) = fans(dims)?;
                let b = gain * (6.0 / (fi + fo) as f64).sqrt();
                Tensor::rand(shape.clone(), -b, b, dtype, rng)?
            }
            Init::XavierNormal { gain } => {
                let (fi, fo) = fans(dims)?;
                let std = gain * (2.0 / (fi + fo) as f64).sqrt();
                Tensor::randn(shape.clone(), 0.0, std, dtype, rng)?
            }
        };
        Ok(t)
    }
}

fn kaiming_std(dims: &[usize], nl: Nonlinearity, mode: FanMode) -> Result<f64> {
    let (fi, fo) = fans(dims)?;
    let fan = match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
    };
    if fan == 0 {
        return Err(Error::config("init", format!("zero fan for shape {dims:?}")));
    }
    Ok(calculate_gain(nl) / (fan as f64).sqrt())
}

/// `torch.nn.init.xavier_uniform_` as a new tensor.
pub fn xavier_uniform(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    Init::XavierUniform { gain }.tensor(&Shape::new(shape), dtype, rng)
}

/// `torch.nn.init.xavier_normal_` as a new tensor.
pub fn xavier_normal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    Init::XavierNormal { gain }.tensor(&Shape::new(shape), dtype, rng)
}

/// `torch.nn.init.kaiming_uniform_` as a new tensor.
pub fn kaiming_uniform(shape: &[usize], nonlinearity: Nonlinearity, mode: FanMode, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    Init::KaimingUniform { nonlinearity, mode }.tensor(&Shape::new(shape), dtype, rng)
}

/// `torch.nn.init.kaiming_normal_` as a new tensor.
pub fn kaiming_normal(shape: &[usize], nonlinearity: Nonlinearity, mode: FanMode, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    Init::KaimingNormal { nonlinearity, mode }.tensor(&Shape::new(shape), dtype, rng)
}
