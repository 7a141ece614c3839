//! Optimisers (`torch.optim`: SGD, Adam, AdamW, RMSprop, Adagrad) matching PyTorch's update
//! formulas step for step, and gradient clipping.
//!
//! Every optimiser updates its [`Var`]s under `no_grad`, skips parameters that are frozen or got
//! no gradient (PyTorch's `grad is None`), and can export/import its state for checkpoints.

pub use crate::schedule as lr_scheduler;
use crate::{Error, Result};
use kiln_core::{no_grad, AdamStep, Grads, Tensor, Var};
use std::collections::{BTreeMap, HashMap};

/// The optimiser interface.
pub trait Optimizer {
    /// One update of every parameter from `grads`.
    fn step(&mut self, grads: &Grads) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedulers call this).
    fn set_learning_rate(&mut self, lr: f64);
    /// The parameters this optimiser updates.
    fn vars(&self) -> Vec<Var>;
    /// Per-parameter state as named tensors (`"{i}.exp_avg"`, `"{i}.step"`, ...), `i` being the
    /// parameter's position in [`Optimizer::vars`].
    fn state_tensors(&self) -> Vec<(String, Tensor)>;
    /// Restores state written by [`Optimizer::state_tensors`]; unknown names are an error.
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
    /// Back-propagates `loss` and steps (candle's `backward_step`).
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }
}

/// One parameter and its state buffers.
struct Slot {
    var: Var,
    step: u64,
    state: BTreeMap<&'static str, Tensor>,
}

/// The parameter list shared by all optimisers.
struct Slots(Vec<Slot>);

impl Slots {
    fn new(vars: Vec<Var>) -> Slots {
        Slots(
            vars.into_iter()
                .map(|var| Slot {
                    var,
                    step: 0,
                    state: BTreeMap::new(),
                })
                .collect(),
        )
    }
    fn vars(&self) -> Vec<Var> {
        self.0.iter().map(|s| s.var.clone()).collect()
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, s) in self.0.iter().enumerate() {
            if s.step == 0 && s.state.is_empty() {
                continue;
            }
            out.push((format!("{i}.step"), Tensor::scalar(s.step as f64)));
            for (k, t) in &s.state {
                out.push((format!("{i}.{k}"), t.clone()));
            }
        }
        out
    }
    fn load(&mut self, names: &[&'static str], st: &HashMap<String, Tensor>) -> Result<()> {
        for s in &mut self.0 {
            s.step = 0;
            s.state.clear();
        }
        for (key, t) in st {
            let bad = || Error::config("Optimizer::load_state", format!("unknown state tensor `{key}`"));
            let (i, name) = key.split_once('.').ok_or_else(bad)?;
            let i: usize = i.parse().map_err(|_| bad())?;
            let slot = self.0.get_mut(i).ok_or_else(bad)?;
            if name == "step" {
                slot.step = t.item()? as u64;
                continue;
            }
            let name = *names.iter().find(|n| **n == name).ok_or_else(bad)?;
            let vs = slot.var.shape();
            if t.shape() != &vs {
                return Err(Error::config(
                    "Optimizer::load_state",
                    format!("state `{key}` has shape {}, parameter {i} has {vs}", t.shape()),
                ));
            }
            slot.state.insert(name, t.to_dtype(slot.var.dtype())?);
        }
        Ok(())
    }
    /// Runs `f(slot, grad)` for each trainable parameter that has a gradient, then stores the
    /// returned value, all without recording a graph.
    fn update(&mut self, grads: &Grads, mut f: impl FnMut(&mut Slot, Tensor, Tensor) -> Result<Tensor>) -> Result<()> {
        no_grad(|| {
            for s in &mut self.0 {
                if !s.var.is_trainable() {
                    continue;
                }
                let Some(g) = s.var.grad(grads) else { continue };
                let g = g.detach();
                let p = s.var.tensor().detach();
                if g.shape() != p.shape() {
                    return Err(Error::config(
                        "Optimizer::step",
                        format!("gradient {} does not match parameter {}", g.shape(), p.shape()),
                    ));
                }
                let g = g.to_dtype(p.dtype())?;
                s.step += 1;
                let new = f(s, p, g)?;
                s.var.set(&new)?;
            }
            Ok(())
        })
    }
}

/// `a * x + b * y`.
fn axpby(a: f64, x: &Tensor, b: f64, y: &Tensor) -> Result<Tensor> {
    Ok(x.mul_scalar(a)?.add_scaled(y, b)?)
}

/// Stochastic gradient descent with momentum, Nesterov, weight decay and dampening
/// (`torch.optim.SGD`): the momentum buffer starts as the first gradient.
pub struct Sgd {
    slots: Slots,
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum update.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Sgd {
    /// Plain SGD over `vars`.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Sgd> {
        check_lr("SGD", lr)?;
        Ok(Sgd {
            slots: Slots::new(vars),
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        })
    }
    /// Sets momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Sets dampening.
    pub fn dampening(mut self, d: f64) -> Self {
        self.dampening = d;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Turns on Nesterov momentum (needs momentum > 0 and no dampening, as in PyTorch).
    pub fn nesterov(mut self, on: bool) -> Result<Self> {
        if on && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::config("SGD", "Nesterov momentum requires a momentum and zero dampening"));
        }
        self.nesterov = on;
        Ok(self)
    }
}

fn check_lr(op: &'static str, lr: f64) -> Result<()> {
    if lr.is_nan() || lr < 0.0 {
        return Err(Error::config(op, format!("invalid learning rate {lr}")));
    }
    Ok(())
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let (lr, mom, damp, wd, nest) = (self.lr, self.momentum, self.dampening, self.weight_decay, self.nesterov);
        self.slots.update(grads, |s, p, mut g| {
            // Fused `a + alpha * b` passes: each full-size pass over a parameter costs as much as
            // the arithmetic, so the common no-dampening update takes two passes, not five.
            if wd != 0.0 {
                g = g.add_scaled(&p, wd)?;
            }
            if mom != 0.0 {
                let buf = match s.state.get("momentum_buffer") {
                    None => g.clone(),
                    Some(b) if damp == 0.0 => g.add_scaled(b, mom)?,
                    Some(b) => axpby(mom, b, 1.0 - damp, &g)?,
                };
                s.state.insert("momentum_buffer", buf.clone());
                g = if nest { g.add_scaled(&buf, mom)? } else { buf };
            }
            Ok(p.add_scaled(&g, -lr)?)
        })
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr
    }
    fn vars(&self) -> Vec<Var> {
        self.slots.vars()
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.slots.state_tensors()
    }
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.slots.load(&["momentum_buffer"], state)
    }
}

/// Adam (`torch.optim.Adam`) and, with `decoupled_weight_decay`, AdamW (`torch.optim.AdamW`).
pub struct Adam {
    slots: Slots,
    /// Learning rate.
    pub lr: f64,
    /// `(β1, β2)`, default `(0.9, 0.999)`.
    pub betas: (f64, f64),
    /// Added to the bias-corrected `sqrt(v)`, default 1e-8.
    pub eps: f64,
    /// Weight decay: L2 added to the gradient (Adam) or decoupled `p *= 1 - lr·wd` (AdamW).
    pub weight_decay: f64,
    /// Keep the running maximum of `v` (AMSGrad).
    pub amsgrad: bool,
    /// AdamW's decoupled weight decay.
    pub decoupled_weight_decay: bool,
}

/// `torch.optim.AdamW`: [`Adam`] with decoupled weight decay (default 0.01).
pub struct AdamW;

impl AdamW {
    /// AdamW over `vars` (weight decay 0.01, as PyTorch's default).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Adam> {
        let mut a = Adam::new(vars, lr)?;
        a.decoupled_weight_decay = true;
        a.weight_decay = 0.01;
        Ok(a)
    }
}

impl Adam {
    /// Adam over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Adam> {
        check_lr("Adam", lr)?;
        Ok(Adam {
            slots: Slots::new(vars),
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
        })
    }
    /// Sets betas.
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.betas = (b1, b2);
        self
    }
    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, on: bool) -> Self {
        self.amsgrad = on;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let (lr, (b1, b2), eps, wd, ams, decoupled) = (
            self.lr,
            self.betas,
            self.eps,
            self.weight_decay,
            self.amsgrad,
            self.decoupled_weight_decay,
        );
        self.slots.update(grads, |s, mut p, mut g| {
            if wd != 0.0 {
                if decoupled {
                    p = p.mul_scalar(1.0 - lr * wd)?;
                } else {
                    g = g.add_scaled(&p, wd)?;
                }
            }
            let t = s.step as i32;
            let bc1 = 1.0 - b1.powi(t);
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
            if !ams {
                // One fused pass over p, g, m, v (kiln-core's adam_step) instead of eight
                // elementwise passes; the same arithmetic per element, so the same results.
                let h = AdamStep {
                    beta1: b1,
                    beta2: b2,
                    step_size: lr / bc1,
                    inv_bias_correction2_sqrt: 1.0 / bc2_sqrt,
                    eps,
                };
                let (p, m, v) = p.adam_step(&g, s.state.get("exp_avg"), s.state.get("exp_avg_sq"), &h)?;
                s.state.insert("exp_avg", m);
                s.state.insert("exp_avg_sq", v);
                return Ok(p);
            }
            let m = match s.state.get("exp_avg") {
                Some(m) => axpby(b1, m, 1.0 - b1, &g)?,
                None => g.mul_scalar(1.0 - b1)?,
            };
            let g2 = g.square()?;
            let v = match s.state.get("exp_avg_sq") {
                Some(v) => axpby(b2, v, 1.0 - b2, &g2)?,
                None => g2.mul_scalar(1.0 - b2)?,
            };
            let vv = if ams {
                let mx = match s.state.get("max_exp_avg_sq") {
                    Some(mx) => mx.maximum(&v)?,
                    None => v.clone(),
                };
                s.state.insert("max_exp_avg_sq", mx.clone());
                mx
            } else {
                v.clone()
            };
            // One affine pass for `sqrt(v)/bc2 + eps` and one fused update pass, as PyTorch's
            // `addcdiv_(m, denom, value=-lr/bc1)`.
            let denom = vv.sqrt()?.affine(1.0 / bc2_sqrt, eps)?;
            let upd = m.div(&denom)?;
            s.state.insert("exp_avg", m);
            s.state.insert("exp_avg_sq", v);
            Ok(p.add_scaled(&upd, -lr / bc1)?)
        })
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr
    }
    fn vars(&self) -> Vec<Var> {
        self.slots.vars()
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.slots.state_tensors()
    }
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.slots.load(&["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], state)
    }
}

/// RMSprop with momentum and the centered variant (`torch.optim.RMSprop`).
pub struct RmsProp {
    slots: Slots,
    /// Learning rate (PyTorch default 0.01).
    pub lr: f64,
    /// Smoothing constant, default 0.99.
    pub alpha: f64,
    /// Added outside the square root, default 1e-8.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Normalise by the estimated variance `v - E[g]²` instead of `v`.
    pub centered: bool,
}

impl RmsProp {
    /// RMSprop over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<RmsProp> {
        check_lr("RMSprop", lr)?;
        Ok(RmsProp {
            slots: Slots::new(vars),
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        })
    }
    /// Sets alpha.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// Sets eps.
    pub fn eps(mut self, e: f64) -> Self {
        self.eps = e;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Sets momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Turns the centered variant on or off.
    pub fn centered(mut self, on: bool) -> Self {
        self.centered = on;
        self
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let (lr, a, eps, wd, mom, centered) = (self.lr, self.alpha, self.eps, self.weight_decay, self.momentum, self.centered);
        self.slots.update(grads, |s, p, mut g| {
            if wd != 0.0 {
                g = g.add(&p.mul_scalar(wd)?)?;
            }
            let g2 = g.square()?;
            let sq = match s.state.get("square_avg") {
                Some(v) => axpby(a, v, 1.0 - a, &g2)?,
                None => g2.mul_scalar(1.0 - a)?,
            };
            let avg = if centered {
                let ga = match s.state.get("grad_avg") {
                    Some(m) => axpby(a, m, 1.0 - a, &g)?,
                    None => g.mul_scalar(1.0 - a)?,
                };
                let avg = sq.sub(&ga.square()?)?.sqrt()?.add_scalar(eps)?;
                s.state.insert("grad_avg", ga);
                avg
            } else {
                sq.sqrt()?.add_scalar(eps)?
            };
            s.state.insert("square_avg", sq);
            let q = g.div(&avg)?;
            let upd = if mom > 0.0 {
                let buf = match s.state.get("momentum_buffer") {
                    Some(b) => b.mul_scalar(mom)?.add(&q)?,
                    None => q,
                };
                s.state.insert("momentum_buffer", buf.clone());
                buf
            } else {
                q
            };
            Ok(p.sub(&upd.mul_scalar(lr)?)?)
        })
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr
    }
    fn vars(&self) -> Vec<Var> {
        self.slots.vars()
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.slots.state_tensors()
    }
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.slots.load(&["square_avg", "grad_avg", "momentum_buffer"], state)
    }
}

/// Adagrad with learning-rate decay and weight decay (`torch.optim.Adagrad`).
pub struct Adagrad {
    slots: Slots,
    /// Learning rate (PyTorch default 0.01).
    pub lr: f64,
    /// `clr = lr / (1 + (t-1)·lr_decay)`.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum.
    pub initial_accumulator_value: f64,
    /// Added outside the square root, default 1e-10.
    pub eps: f64,
}

impl Adagrad {
    /// Adagrad over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Adagrad> {
        check_lr("Adagrad", lr)?;
        Ok(Adagrad {
            slots: Slots::new(vars),
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        })
    }
    /// Sets lr decay.
    pub fn lr_decay(mut self, d: f64) -> Self {
        self.lr_decay = d;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Sets the initial accumulator value.
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }
    /// Sets eps.
    pub fn eps(mut self, e: f64) -> Self {
        self.eps = e;
        self
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let (lr, decay, wd, init, eps) = (self.lr, self.lr_decay, self.weight_decay, self.initial_accumulator_value, self.eps);
        self.slots.update(grads, |s, p, mut g| {
            if wd != 0.0 {
                g = g.add(&p.mul_scalar(wd)?)?;
            }
            let clr = lr / (1.0 + (s.step - 1) as f64 * decay);
            let sum = match s.state.get("sum") {
                Some(v) => v.add(&g.square()?)?,
                None => g.square()?.add_scalar(init)?,
            };
            let std = sum.sqrt()?.add_scalar(eps)?;
            s.state.insert("sum", sum);
            Ok(p.sub(&g.div(&std)?.mul_scalar(clr)?)?)
        })
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr
    }
    fn vars(&self) -> Vec<Var> {
        self.slots.vars()
    }
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.slots.state_tensors()
    }
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.slots.load(&["sum"], state)
    }
}

/// Scales the gradients of `vars` in place so their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`: coefficient `max_norm / (norm + 1e-6)`, capped at 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Grads, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0.0;
    for v in vars {
        if let Some(g) = v.grad(grads) {
            total += no_grad(|| g.to_dtype(kiln_core::DType::F64)?.square()?.sum_all()?.item())?;
        }
    }
    let norm = total.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for v in vars {
            if let Some(g) = v.grad(grads) {
                let scaled = no_grad(|| g.detach().mul_scalar(coef))?;
                grads.insert(v.id(), scaled);
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient element of `vars` to `[-clip, clip]` (`torch.nn.utils.clip_grad_value_`).
pub fn clip_grad_value(grads: &mut Grads, vars: &[Var], clip: f64) -> Result<()> {
    if clip.is_nan() || clip < 0.0 {
        return Err(Error::config(
            "clip_grad_value",
            format!("clip value must be non-negative, got {clip}"),
        ));
    }
    for v in vars {
        if let Some(g) = v.grad(grads) {
            let c = no_grad(|| g.detach().clamp(-clip, clip))?;
            grads.insert(v.id(), c);
        }
    }
    Ok(())
}
