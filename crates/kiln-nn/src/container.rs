//! `Sequential` and `Dropout`.

use crate::Module;
use crate::{Error, Result};
use kiln_core::{Rng, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Applies its children in order; their parameters are named `0.weight`, `1.bias`, ... like
/// `torch.nn.Sequential`.
#[derive(Default, Module)]
pub struct Sequential {
    // Flattened: children are `0`, `1`, ... directly, not `layers.0`.
    #[module(flatten)]
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty container.
    pub fn new() -> Sequential {
        Sequential { layers: Vec::new() }
    }
    /// Appends a layer (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add<M: Module + 'static>(mut self, m: M) -> Sequential {
        self.layers.push(Box::new(m));
        self
    }
    /// Appends a layer.
    pub fn push<M: Module + 'static>(&mut self, m: M) {
        self.layers.push(Box::new(m));
    }
    /// Number of children.
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    /// True without children.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    /// Child `i`.
    pub fn get(&self, i: usize) -> Option<&dyn Module> {
        self.layers.get(i).map(|b| b.as_ref())
    }
}

impl Sequential {
    /// Applies the children in order (what [`Module::forward`] runs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h)?;
        }
        Ok(h)
    }
}

/// Zeroes each element with probability `p` during training and scales the rest by `1/(1-p)`
/// (`torch.nn.Dropout`); the identity in eval mode. Masks come from the layer's own seeded
/// generator, so runs are reproducible.
pub struct Dropout {
    p: f64,
    training: AtomicBool,
    rng: Mutex<Rng>,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1]`, masks drawn from a generator seeded with `seed`.
    pub fn new(p: f64, seed: u64) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::config("Dropout", format!("probability must be in [0, 1], got {p}")));
        }
        Ok(Dropout {
            p,
            training: AtomicBool::new(true),
            rng: Mutex::new(Rng::new(seed)),
        })
    }
    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training.load(Ordering::Relaxed) || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return Ok(x.mul_scalar(0.0)?);
        }
        let scale = 1.0 / (1.0 - self.p);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mask: Vec<f64> = (0..x.elem_count())
            .map(|_| if rng.uniform01() < self.p { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape().clone())?.to_dtype(x.dtype())?;
        Ok(x.mul(&mask)?)
    }
    fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed)
    }
    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}
