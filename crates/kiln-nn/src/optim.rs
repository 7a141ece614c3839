//! Optimisers (`torch.optim`: SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax, LBFGS)
//! matching PyTorch's update formulas step for step, and gradient clipping.
//!
//! Every optimiser updates its [`Var`]s under `no_grad`, skips parameters that are frozen or got
//! no gradient (PyTorch's `grad is None`), and can export/import its state for checkpoints.

pub use crate::lbfgs::{Lbfgs, LineSearch};
pub use crate::schedule as lr_scheduler;
use crate::{Error, Result};
use kiln_core::backend::{BinaryOp, UnaryOp};
use kiln_core::fused::{Kernel, Ops};
use kiln_core::{no_grad, Grads, Tensor, Var};
use std::collections::{BTreeMap, HashMap};

/// The optimiser interface.
pub trait Optimizer: Send {
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
    /// Back-propagates `loss`, lets its graph go, then steps; returns the loss detached.
    ///
    /// Taking the loss by value frees the graph before the update, as PyTorch's `backward` frees
    /// its saved tensors before `optimizer.step()`. Then no graph node holds the parameters, and
    /// the fused updates (SGD, Adam) write over them in place instead of into new buffers (see
    /// [`Var::fused_update`]). That moves about a third less memory. Prefer it to
    /// [`Optimizer::backward_step`] in a training loop that does not use the graph again. The
    /// results are the same bits either way.
    ///
    /// Build the loss in a `let` statement of its own. In
    /// `opt.minimize(cross_entropy(&model.forward(&x)?, &y)?)`, the temporary `model.forward(&x)?`
    /// lives until the end of the statement, so it holds the graph through the update.
    ///
    /// ```
    /// use kiln_core::{DType, Tensor};
    /// use kiln_nn::prelude::*;
    /// let vs = VarStore::new(DType::F32, 0);
    /// let model = Linear::new(&vs, 3, 1)?;
    /// let mut opt = Sgd::new(model.parameters(), 0.1)?.momentum(0.9);
    /// let x = Tensor::from_slice(&[1f32, 0., 2., 0., 1., 1., 3., 1., 0., 1., 2., 2.], [4, 3])?;
    /// let y = Tensor::from_slice(&[1f32, 0., 2., 1.], [4, 1])?;
    /// let loss = mse_loss(&model.forward(&x)?, &y, Reduction::Mean)?;
    /// let first = opt.minimize(loss)?.item()?;
    /// for _ in 0..20 {
    ///     let loss = mse_loss(&model.forward(&x)?, &y, Reduction::Mean)?;
    ///     opt.minimize(loss)?;
    /// }
    /// assert!(mse_loss(&model.forward(&x)?, &y, Reduction::Mean)?.item()? < first);
    /// # Ok::<(), kiln_nn::Error>(())
    /// ```
    fn minimize(&mut self, loss: Tensor) -> Result<Tensor> {
        let grads = loss.backward()?;
        let value = loss.detach();
        drop(loss);
        self.step(&grads)?;
        Ok(value)
    }
    /// PyTorch's `optimizer.step(closure)`: `closure` rebuilds the loss from the current
    /// parameters; returns the loss before the update. First-order optimisers evaluate it once and
    /// step on its gradients (through [`Optimizer::minimize`]); [`Lbfgs`] re-evaluates it inside
    /// its iterations and line search.
    fn step_closure(&mut self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<f64> {
        let loss = closure()?;
        let value = scalar_loss("Optimizer::step_closure", &loss)?;
        self.minimize(loss)?;
        Ok(value)
    }
}

/// The value of a closure's loss, which must be a single element (the closure-based steps
/// differentiate it).
pub(crate) fn scalar_loss(op: &'static str, loss: &Tensor) -> Result<f64> {
    if loss.elem_count() != 1 {
        return Err(Error::config(
            op,
            format!("the closure must return a scalar loss, got shape {}", loss.shape()),
        ));
    }
    Ok(loss.item()?)
}

/// One parameter and its state buffers.
struct Slot {
    var: Var,
    step: u64,
    state: BTreeMap<&'static str, Tensor>,
    /// Per-parameter scalars (NAdam's running `mu_product`), saved as 0-d tensors.
    scalars: BTreeMap<&'static str, f64>,
}

/// The parameter list shared by all optimisers.
struct Slots(Vec<Slot>);

impl Slots {
    /// PyTorch refuses an empty list ("optimizer got an empty parameter list"): an optimiser
    /// without parameters is almost always a model whose parameters were never collected.
    fn new(op: &'static str, vars: Vec<Var>) -> Result<Slots> {
        if vars.is_empty() {
            return Err(Error::config(op, "optimizer got an empty parameter list"));
        }
        Ok(Slots(
            vars.into_iter()
                .map(|var| Slot {
                    var,
                    step: 0,
                    state: BTreeMap::new(),
                    scalars: BTreeMap::new(),
                })
                .collect(),
        ))
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
            for (k, v) in &s.scalars {
                out.push((format!("{i}.{k}"), Tensor::scalar(*v)));
            }
        }
        out
    }
    /// Restores `state_tensors`' output: `names` are per-element buffers shaped like their
    /// parameter, `scalar_names` 0-d values.
    fn load(&mut self, names: &[&'static str], scalar_names: &[&'static str], st: &HashMap<String, Tensor>) -> Result<()> {
        for s in &mut self.0 {
            s.step = 0;
            s.state.clear();
            s.scalars.clear();
        }
        for (key, t) in st {
            let bad = || Error::config("Optimizer::load_state", format!("unknown state tensor `{key}`"));
            let (i, name) = key.split_once('.').ok_or_else(bad)?;
            let i: usize = i.parse().map_err(|_| bad())?;
            let slot = self.0.get_mut(i).ok_or_else(bad)?;
            if name == "step" {
                // A count: a NaN, fractional, negative or huge value (Adam takes it as an `i32`
                // exponent) would silently reset or corrupt the state.
                let v = t.item()?;
                if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_LOADED_STEP as f64) {
                    return Err(Error::config(
                        "Optimizer::load_state",
                        format!("state tensor `{key}` holds {v}, not a step count in 0..={MAX_LOADED_STEP}"),
                    ));
                }
                slot.step = v as u64;
                continue;
            }
            if let Some(name) = scalar_names.iter().find(|n| **n == name) {
                slot.scalars.insert(name, t.item()?);
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
    /// Runs `f(slot, param, grad)` for each trainable parameter that has a gradient, then stores
    /// the returned value, all without recording a graph. With `maximize` the gradient is negated
    /// first, so every update rule ascends (PyTorch's `maximize=True`).
    fn update(&mut self, grads: &Grads, maximize: bool, mut f: impl FnMut(&mut Slot, Tensor, Tensor) -> Result<Tensor>) -> Result<()> {
        self.update_with(grads, maximize, |s, g| {
            let p = s.var.tensor().detach();
            let new = f(s, p, g)?;
            Ok(s.var.set(&new)?)
        })
    }
    /// Runs `f(slot, grad)` for each trainable parameter that has a gradient, as [`Slots::update`]
    /// does, for rules that update `slot.var` themselves: through [`Var::fused_update`], which
    /// writes in place when nothing else holds the parameter's value.
    fn update_with(&mut self, grads: &Grads, maximize: bool, mut f: impl FnMut(&mut Slot, Tensor) -> Result<()>) -> Result<()> {
        no_grad(|| {
            for s in &mut self.0 {
                if !s.var.is_trainable() {
                    continue;
                }
                let Some(g) = s.var.grad(grads) else { continue };
                let g = g.detach();
                let (shape, dtype) = (s.var.shape(), s.var.dtype());
                if g.shape() != &shape {
                    return Err(Error::config(
                        "Optimizer::step",
                        format!("gradient {} does not match parameter {shape}", g.shape()),
                    ));
                }
                let g = g.to_dtype(dtype)?;
                let g = if maximize { g.neg()? } else { g };
                s.step += 1;
                f(s, g)?;
            }
            Ok(())
        })
    }
}

/// The [`Optimizer`] methods every optimiser implements the same way over its `slots` and `lr`;
/// `$names` / `$scalars` are the state it may load.
macro_rules! optimizer_common {
    ([$($names:literal),*], [$($scalars:literal),*]) => {
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
            self.slots.load(&[$($names),*], &[$($scalars),*], state)
        }
    };
}

/// Builder-style setters shared by the optimisers, each assigning the field of the same name
/// (`betas` takes `β1, β2`), so one option reads and behaves the same on every optimiser.
macro_rules! setters {
    ($($name:ident),* $(,)?) => { $(setters!(@one $name);)* };
    (@one betas) => {
        /// Sets `(β1, β2)`, the decay rates of the first and second moment estimates.
        pub fn betas(mut self, b1: f64, b2: f64) -> Self {
            self.betas = (b1, b2);
            self
        }
    };
    (@one eps) => { setters!(@field eps: f64, "Sets `eps`, the term that keeps the denominator away from zero."); };
    (@one weight_decay) => {
        setters!(@field weight_decay: f64, "Sets the weight decay (L2 penalty, or decoupled where the optimiser offers it).");
    };
    (@one maximize) => {
        setters!(@field maximize: bool, "Maximises the objective instead of minimising it (PyTorch's `maximize=True`).");
    };
    (@one decoupled_weight_decay) => {
        setters!(@field decoupled_weight_decay: bool, "Decoupled weight decay (`p *= 1 − lr·wd`, AdamW-style) on or off.");
    };
    (@one amsgrad) => {
        setters!(@field amsgrad: bool, "Turns AMSGrad (the running maximum of the second moment) on or off.");
    };
    (@one momentum_decay) => { setters!(@field momentum_decay: f64, "Sets NAdam's momentum decay `ψ` (default 4e-3)."); };
    (@field $name:ident : $t:ty, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(mut self, value: $t) -> Self {
            self.$name = value;
            self
        }
    };
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
    /// Ascend instead of descend: the gradient is negated before the update (PyTorch's `maximize`).
    pub maximize: bool,
}

impl Sgd {
    /// Plain SGD over `vars`.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Sgd> {
        check_lr("SGD", lr)?;
        Ok(Sgd {
            slots: Slots::new("SGD", vars)?,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
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
    /// Turns on Nesterov momentum (needs momentum > 0 and no dampening, as in PyTorch).
    pub fn nesterov(mut self, on: bool) -> Result<Self> {
        if on && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::config("SGD", "Nesterov momentum requires a momentum and zero dampening"));
        }
        self.nesterov = on;
        Ok(self)
    }
    setters!(maximize, weight_decay);
}

/// Whether `lr` is a learning rate an optimiser accepts: finite and >= 0.
pub(crate) fn valid_lr(lr: f64) -> bool {
    lr.is_finite() && lr >= 0.0
}

fn check_lr(op: &'static str, lr: f64) -> Result<()> {
    if !valid_lr(lr) {
        return Err(Error::config(op, format!("invalid learning rate {lr}")));
    }
    Ok(())
}

/// The largest step count a loaded state may hold: far past any run, and far enough below
/// `i32::MAX` (Adam's bias correction takes the count as an `i32` exponent) to keep counting.
const MAX_LOADED_STEP: u64 = 1 << 30;

/// The checks PyTorch makes when an optimiser is built, made here at each step because kiln's
/// setters are infallible builders: a learning rate that is finite and >= 0, betas in [0, 1), an
/// `eps` and an RMSprop `alpha` that are finite and >= 0. Outside them the parameters turn NaN or
/// infinite without an error.
fn check_hyper(op: &'static str, lr: f64, betas: Option<(f64, f64)>, eps: f64, alpha: Option<f64>) -> Result<()> {
    check_lr(op, lr)?;
    if let Some((b1, b2)) = betas {
        for (name, b) in [("beta1", b1), ("beta2", b2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(op, format!("invalid {name} {b}: expected a value in [0, 1)")));
            }
        }
    }
    for (name, v) in [("eps", Some(eps)), ("alpha", alpha)] {
        if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::config(op, format!("invalid {name} {v}: expected a finite value >= 0")));
        }
    }
    Ok(())
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_lr("SGD", self.lr)?;
        let (lr, mom, damp, wd, nest) = (self.lr, self.momentum, self.dampening, self.weight_decay, self.nesterov);
        self.slots.update_with(grads, self.maximize, |s, g| {
            if mom != 0.0 {
                // One fused pass over p, g and the buffer: the update is memory-bound (a W5 step
                // spent 14 % of its time in the two passes of the unfused form), and the kernel's
                // arithmetic is the unfused ops', so the results are the same bits. From the
                // second step it writes over p and the buffer when nothing else holds them.
                let h = SgdMomentumKernel {
                    lr,
                    momentum: mom,
                    dampening: damp,
                    weight_decay: wd,
                    nesterov: nest,
                };
                match s.state.get_mut("momentum_buffer") {
                    Some(buf) => s.var.fused_update::<_, 3, 2>(&mut [buf], &[&g], &h)?,
                    None => {
                        let [p, buf] = Tensor::fused_kernel([&s.var.tensor(), &g], &h)?;
                        s.var.set(&p)?;
                        s.state.insert("momentum_buffer", buf);
                    }
                }
                return Ok(());
            }
            Ok(s.var.fused_update(&mut [], &[&g], &SgdKernel { lr, weight_decay: wd })?)
        })
    }
    optimizer_common!(["momentum_buffer"], []);
}

/// The scalars of one SGD step with momentum: the fused kernel over `p, buf, g`
/// (`Kernel<3, 2>`) or, on the first step, `p, g` (`Kernel<2, 2>`: the buffer starts as the
/// gradient), with outputs `p', buf'`.
struct SgdMomentumKernel {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
}

const SGD_OUTPUTS: [&str; 2] = ["param", "momentum_buffer"];

/// Inputs `p, buf, g`: the two it overwrites first, for [`Var::fused_update`].
impl Kernel<3, 2> for SgdMomentumKernel {
    fn outputs(&self) -> [&'static str; 2] {
        SGD_OUTPUTS
    }
    #[inline(always)]
    fn eval<X: Ops>(&self, x: &mut X, [p, buf, g]: [X::V; 3]) -> [X::V; 2] {
        sgd_momentum_eval(self, x, p, g, Some(buf))
    }
}

impl Kernel<2, 2> for SgdMomentumKernel {
    fn outputs(&self) -> [&'static str; 2] {
        SGD_OUTPUTS
    }
    #[inline(always)]
    fn eval<X: Ops>(&self, x: &mut X, [p, g]: [X::V; 2]) -> [X::V; 2] {
        sgd_momentum_eval(self, x, p, g, None)
    }
}

/// The scalars of one SGD step without momentum: the fused kernel over `p, g` with output
/// `p' = p + (g + p·wd)·(-lr)` (the weight decay term only when `wd` is not 0), the unfused
/// `add_scaled` ops in the same order, so the same bits.
struct SgdKernel {
    lr: f64,
    weight_decay: f64,
}

impl Kernel<2, 1> for SgdKernel {
    fn outputs(&self) -> [&'static str; 1] {
        ["param"]
    }
    #[inline(always)]
    fn eval<X: Ops>(&self, x: &mut X, [p, mut g]: [X::V; 2]) -> [X::V; 1] {
        if self.weight_decay != 0.0 {
            g = x.binary(BinaryOp::AddScaled(self.weight_decay), g, p);
        }
        [x.binary(BinaryOp::AddScaled(-self.lr), p, g)]
    }
}

/// `torch.optim.SGD`'s update with momentum, written once for the recorded program and native
/// evaluation: `g + p·wd` (weight decay), `buf' = g + buf·μ` (no dampening) or
/// `buf·μ + g·(1 - dampening)`, or `buf' = g` on the first step; then `d = g + buf'·μ` (Nesterov)
/// or `buf'`, and `p' = p + d·(-lr)`. Each step is the unfused op (`add_scaled` is `a + b·alpha`,
/// `mul_scalar` an affine op with add 0), in the same order, so the results are the same bits.
#[inline(always)]
fn sgd_momentum_eval<X: Ops>(h: &SgdMomentumKernel, x: &mut X, p: X::V, mut g: X::V, buf: Option<X::V>) -> [X::V; 2] {
    if h.weight_decay != 0.0 {
        g = x.binary(BinaryOp::AddScaled(h.weight_decay), g, p);
    }
    let buf = match buf {
        None => g,
        Some(b) if h.dampening == 0.0 => x.binary(BinaryOp::AddScaled(h.momentum), g, b),
        Some(b) => {
            let scaled = x.unary(UnaryOp::Affine { mul: h.momentum, add: 0.0 }, b);
            x.binary(BinaryOp::AddScaled(1.0 - h.dampening), scaled, g)
        }
    };
    let d = if h.nesterov {
        x.binary(BinaryOp::AddScaled(h.momentum), g, buf)
    } else {
        buf
    };
    [x.binary(BinaryOp::AddScaled(-h.lr), p, d), buf]
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
    /// Ascend instead of descend: the gradient is negated before the update (PyTorch's `maximize`).
    pub maximize: bool,
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
            slots: Slots::new("Adam", vars)?,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
            maximize: false,
        })
    }
    setters!(maximize, betas, eps, weight_decay, amsgrad);
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_hyper("Adam", self.lr, Some(self.betas), self.eps, None)?;
        let (lr, (b1, b2), eps, wd, ams, decoupled) = (
            self.lr,
            self.betas,
            self.eps,
            self.weight_decay,
            self.amsgrad,
            self.decoupled_weight_decay,
        );
        self.slots.update_with(grads, self.maximize, |s, mut g| {
            let t = s.step as i32;
            let bc1 = 1.0 - b1.powi(t);
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
            if !ams {
                // One fused pass over p, g, m, v instead of about ten elementwise passes; the
                // kernel has the same arithmetic per element as those ops, so the same results.
                let h = AdamKernel {
                    beta1: b1,
                    beta2: b2,
                    lr,
                    weight_decay: wd,
                    decoupled,
                    step_size: lr / bc1,
                    inv_bias_correction2_sqrt: 1.0 / bc2_sqrt,
                    eps,
                };
                // From the second step the kernel writes over p, m and v when nothing else holds
                // them. The moments are moved out of the state for the call and back after it,
                // whatever its result (on failure it changes nothing).
                if s.state.contains_key("exp_avg") && s.state.contains_key("exp_avg_sq") {
                    let (mut m, mut v) = (
                        s.state.remove("exp_avg").expect("present"),
                        s.state.remove("exp_avg_sq").expect("present"),
                    );
                    let r = s.var.fused_update::<_, 4, 3>(&mut [&mut m, &mut v], &[&g], &h);
                    s.state.insert("exp_avg", m);
                    s.state.insert("exp_avg_sq", v);
                    return Ok(r?);
                }
                let [p, m, v] = Tensor::fused_kernel([&s.var.tensor(), &g], &h)?;
                s.state.insert("exp_avg", m);
                s.state.insert("exp_avg_sq", v);
                return Ok(s.var.set(&p)?);
            }
            let mut p = s.var.tensor().detach();
            if wd != 0.0 {
                if decoupled {
                    p = p.mul_scalar(1.0 - lr * wd)?;
                } else {
                    g = g.add_scaled(&p, wd)?;
                }
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
            Ok(s.var.set(&p.add_scaled(&upd, -lr / bc1)?)?)
        })
    }
    optimizer_common!(["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], []);
}

/// The scalars of one non-AMSGrad Adam step: the fused Adam kernel, over inputs `p, m, v, g`
/// (`Kernel<4, 3>`) or, before the first step, `p, g` (`Kernel<2, 3>`), with outputs `p', m', v'`.
struct AdamKernel {
    beta1: f64,
    beta2: f64,
    lr: f64,
    weight_decay: f64,
    decoupled: bool,
    /// `lr / (1 - β1^t)`.
    step_size: f64,
    /// `1 / sqrt(1 - β2^t)`.
    inv_bias_correction2_sqrt: f64,
    eps: f64,
}

const ADAM_OUTPUTS: [&str; 3] = ["param", "exp_avg", "exp_avg_sq"];

/// Inputs `p, m, v, g`: the three it overwrites first, for [`Var::fused_update`].
impl Kernel<4, 3> for AdamKernel {
    fn outputs(&self) -> [&'static str; 3] {
        ADAM_OUTPUTS
    }
    // Inlined so that the CPU backend's native loop is one straight-line body.
    #[inline(always)]
    fn eval<X: Ops>(&self, x: &mut X, [p, m, v, g]: [X::V; 4]) -> [X::V; 3] {
        adam_eval(self, x, p, g, Some((m, v)))
    }
}

impl Kernel<2, 3> for AdamKernel {
    fn outputs(&self) -> [&'static str; 3] {
        ADAM_OUTPUTS
    }
    #[inline(always)]
    fn eval<X: Ops>(&self, x: &mut X, [p, g]: [X::V; 2]) -> [X::V; 3] {
        adam_eval(self, x, p, g, None)
    }
}

/// Adam's update, written once for both the recorded program and native evaluation:
/// weight decay (`p·(1 - lr·wd)` for AdamW, `g + p·wd` for Adam's L2), then
/// `m' = m·β1 + g·(1-β1)`, `v' = v·β2 + (g·g)·(1-β2)`,
/// `p' = p + (m' / (sqrt(v')·inv_bc2_sqrt + eps))·(-step_size)`.
/// Each step is the op the unfused code used (`mul_scalar` is an affine op with add 0, `add_scaled`
/// is `a + b·alpha`), in the same order, so the results are the same bits. Before the first step
/// the moments are the constant 0, so `0·β + x` is evaluated exactly as with zero tensors.
#[inline(always)]
fn adam_eval<X: Ops>(h: &AdamKernel, pr: &mut X, mut p: X::V, mut g: X::V, moments: Option<(X::V, X::V)>) -> [X::V; 3] {
    if h.weight_decay != 0.0 {
        if h.decoupled {
            p = pr.unary(
                UnaryOp::Affine {
                    mul: 1.0 - h.lr * h.weight_decay,
                    add: 0.0,
                },
                p,
            );
        } else {
            g = pr.binary(BinaryOp::AddScaled(h.weight_decay), g, p);
        }
    }
    let (m, v) = match moments {
        Some(mv) => mv,
        None => {
            let z = pr.scalar(0.0);
            (z, z)
        }
    };
    let mut k = |x: f64| pr.scalar(x);
    let (b1, c1, b2, c2) = (k(h.beta1), k(1.0 - h.beta1), k(h.beta2), k(1.0 - h.beta2));
    let (ib, eps, step) = (k(h.inv_bias_correction2_sqrt), k(h.eps), k(-h.step_size));
    let mb = pr.binary(BinaryOp::Mul, m, b1);
    let gc = pr.binary(BinaryOp::Mul, g, c1);
    let m2 = pr.binary(BinaryOp::Add, mb, gc);
    let vb = pr.binary(BinaryOp::Mul, v, b2);
    let gg = pr.binary(BinaryOp::Mul, g, g);
    let ggc = pr.binary(BinaryOp::Mul, gg, c2);
    let v2 = pr.binary(BinaryOp::Add, vb, ggc);
    let sq = pr.unary(UnaryOp::Sqrt, v2);
    let sqb = pr.binary(BinaryOp::Mul, sq, ib);
    let denom = pr.binary(BinaryOp::Add, sqb, eps);
    let r = pr.binary(BinaryOp::Div, m2, denom);
    let upd = pr.binary(BinaryOp::Mul, r, step);
    let p2 = pr.binary(BinaryOp::Add, p, upd);
    [p2, m2, v2]
}

/// Adam's update recorded as a fused elementwise program (the kernel's portable form): inputs
/// `p, m, v, g` when the moments exist yet (`has_moments`), `p, g` with zero moments otherwise.
#[cfg(test)]
fn adam_program(h: AdamKernel, has_moments: bool) -> kiln_core::fused::Program {
    if has_moments {
        Kernel::<4, 3>::program(&h)
    } else {
        Kernel::<2, 3>::program(&h)
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
    /// Ascend instead of descend: the gradient is negated before the update (PyTorch's `maximize`).
    pub maximize: bool,
}

impl RmsProp {
    /// RMSprop over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<RmsProp> {
        check_lr("RMSprop", lr)?;
        Ok(RmsProp {
            slots: Slots::new("RMSprop", vars)?,
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        })
    }
    /// Sets alpha.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
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
    setters!(maximize, eps, weight_decay);
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_hyper("RMSprop", self.lr, None, self.eps, Some(self.alpha))?;
        let (lr, a, eps, wd, mom, centered) = (self.lr, self.alpha, self.eps, self.weight_decay, self.momentum, self.centered);
        self.slots.update(grads, self.maximize, |s, p, mut g| {
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
    optimizer_common!(["square_avg", "grad_avg", "momentum_buffer"], []);
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
    /// Ascend instead of descend: the gradient is negated before the update (PyTorch's `maximize`).
    pub maximize: bool,
}

impl Adagrad {
    /// Adagrad over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Adagrad> {
        check_lr("Adagrad", lr)?;
        Ok(Adagrad {
            slots: Slots::new("Adagrad", vars)?,
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        })
    }
    /// Sets lr decay.
    pub fn lr_decay(mut self, d: f64) -> Self {
        self.lr_decay = d;
        self
    }
    /// Sets the initial accumulator value.
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }
    setters!(maximize, weight_decay, eps);
}

impl Optimizer for Adagrad {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_hyper("Adagrad", self.lr, None, self.eps, None)?;
        let (lr, decay, wd, init, eps) = (self.lr, self.lr_decay, self.weight_decay, self.initial_accumulator_value, self.eps);
        self.slots.update(grads, self.maximize, |s, p, mut g| {
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
    optimizer_common!(["sum"], []);
}

/// `m·β + g·(1−β)` with `m` absent on the first step (PyTorch's zero-initialised `lerp_`).
fn ema(prev: Option<&Tensor>, g: &Tensor, beta: f64) -> Result<Tensor> {
    Ok(match prev {
        Some(m) => axpby(beta, m, 1.0 - beta, g)?,
        None => g.mul_scalar(1.0 - beta)?,
    })
}

/// Weight decay shared by the Adam family: decoupled (`p *= 1 − lr·wd`) or L2 added to the gradient.
fn adam_weight_decay(p: Tensor, g: Tensor, lr: f64, wd: f64, decoupled: bool) -> Result<(Tensor, Tensor)> {
    Ok(match (wd != 0.0, decoupled) {
        (false, _) => (p, g),
        (true, true) => (p.mul_scalar(1.0 - lr * wd)?, g),
        (true, false) => {
            let g = g.add_scaled(&p, wd)?;
            (p, g)
        }
    })
}

/// Adam with Nesterov momentum and momentum decay (`torch.optim.NAdam`).
///
/// The momentum coefficient warms up as `μ_t = β1·(1 − 0.5·0.96^(t·momentum_decay))`; the
/// running product of the `μ_t` is per-parameter state (`mu_product`), as in PyTorch.
pub struct NAdam {
    slots: Slots,
    /// Learning rate (PyTorch default 2e-3).
    pub lr: f64,
    /// `(β1, β2)`, default `(0.9, 0.999)`.
    pub betas: (f64, f64),
    /// Added to the bias-corrected `sqrt(v)`, default 1e-8.
    pub eps: f64,
    /// L2 penalty added to the gradient, or decoupled (AdamW-style) with `decoupled_weight_decay`.
    pub weight_decay: f64,
    /// Default 4e-3.
    pub momentum_decay: f64,
    /// Decay the weights directly instead of adding the L2 gradient (NAdamW).
    pub decoupled_weight_decay: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl NAdam {
    /// NAdam over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<NAdam> {
        check_lr("NAdam", lr)?;
        Ok(NAdam {
            slots: Slots::new("NAdam", vars)?,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        })
    }
    setters!(betas, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize);
}

impl Optimizer for NAdam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_hyper("NAdam", self.lr, Some(self.betas), self.eps, None)?;
        let (lr, (b1, b2), eps, wd, md, decoupled) = (
            self.lr,
            self.betas,
            self.eps,
            self.weight_decay,
            self.momentum_decay,
            self.decoupled_weight_decay,
        );
        self.slots.update(grads, self.maximize, |s, p, g| {
            let (p, g) = adam_weight_decay(p, g, lr, wd, decoupled)?;
            let t = s.step as f64;
            let bc2 = 1.0 - b2.powf(t);
            let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * md));
            let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * md));
            let mu_product = s.scalars.get("mu_product").copied().unwrap_or(1.0) * mu;
            s.scalars.insert("mu_product", mu_product);
            let m = ema(s.state.get("exp_avg"), &g, b1)?;
            let v = ema(s.state.get("exp_avg_sq"), &g.square()?, b2)?;
            let denom = v.div_scalar(bc2)?.sqrt()?.add_scalar(eps)?;
            // The Nesterov step mixes this gradient (weighted by the current μ) with the momentum
            // (weighted by the next μ), each with its own bias correction.
            let p = p.add_scaled(&g.div(&denom)?, -lr * (1.0 - mu) / (1.0 - mu_product))?;
            let p = p.add_scaled(&m.div(&denom)?, -lr * mu_next / (1.0 - mu_product * mu_next))?;
            s.state.insert("exp_avg", m);
            s.state.insert("exp_avg_sq", v);
            Ok(p)
        })
    }
    optimizer_common!(["exp_avg", "exp_avg_sq"], ["mu_product"]);
}

/// Rectified Adam (`torch.optim.RAdam`): plain bias-corrected momentum SGD while the variance
/// estimate is unreliable (approximated SMA length `ρ_t ≤ 5`), Adam scaled by the variance
/// rectification term afterwards.
pub struct RAdam {
    slots: Slots,
    /// Learning rate (PyTorch default 1e-3).
    pub lr: f64,
    /// `(β1, β2)`, default `(0.9, 0.999)`.
    pub betas: (f64, f64),
    /// Added to `sqrt(v)`, default 1e-8.
    pub eps: f64,
    /// L2 penalty added to the gradient, or decoupled with `decoupled_weight_decay`.
    pub weight_decay: f64,
    /// Decay the weights directly instead of adding the L2 gradient.
    pub decoupled_weight_decay: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl RAdam {
    /// RAdam over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<RAdam> {
        check_lr("RAdam", lr)?;
        Ok(RAdam {
            slots: Slots::new("RAdam", vars)?,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        })
    }
    setters!(betas, eps, weight_decay, decoupled_weight_decay, maximize);
}

impl Optimizer for RAdam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_hyper("RAdam", self.lr, Some(self.betas), self.eps, None)?;
        let (lr, (b1, b2), eps, wd, decoupled) = (self.lr, self.betas, self.eps, self.weight_decay, self.decoupled_weight_decay);
        self.slots.update(grads, self.maximize, |s, p, g| {
            let (p, g) = adam_weight_decay(p, g, lr, wd, decoupled)?;
            let t = s.step as f64;
            let m = ema(s.state.get("exp_avg"), &g, b1)?;
            let v = ema(s.state.get("exp_avg_sq"), &g.square()?, b2)?;
            let bc1 = 1.0 - b1.powf(t);
            let bc2 = 1.0 - b2.powf(t);
            let m_hat = m.div_scalar(bc1)?;
            let rho_inf = 2.0 / (1.0 - b2) - 1.0;
            let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
            let p = if rho_t > 5.0 {
                let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).sqrt();
                let adaptive = v.sqrt()?.add_scalar(eps)?.recip()?.mul_scalar(bc2.sqrt())?;
                p.sub(&m_hat.mul_scalar(lr)?.mul(&adaptive)?.mul_scalar(rect)?)?
            } else {
                p.sub(&m_hat.mul_scalar(lr)?)?
            };
            s.state.insert("exp_avg", m);
            s.state.insert("exp_avg_sq", v);
            Ok(p)
        })
    }
    optimizer_common!(["exp_avg", "exp_avg_sq"], []);
}

/// Adamax, Adam with the infinity norm (`torch.optim.Adamax`): the second moment is replaced by
/// the decayed running maximum `u = max(β2·u, |g| + eps)`.
pub struct Adamax {
    slots: Slots,
    /// Learning rate (PyTorch default 2e-3).
    pub lr: f64,
    /// `(β1, β2)`, default `(0.9, 0.999)`.
    pub betas: (f64, f64),
    /// Added to `|g|` inside the maximum, default 1e-8.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Adamax {
    /// Adamax over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Adamax> {
        check_lr("Adamax", lr)?;
        Ok(Adamax {
            slots: Slots::new("Adamax", vars)?,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        })
    }
    setters!(betas, eps, weight_decay, maximize);
}

impl Optimizer for Adamax {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        check_hyper("Adamax", self.lr, Some(self.betas), self.eps, None)?;
        let (lr, (b1, b2), eps, wd) = (self.lr, self.betas, self.eps, self.weight_decay);
        self.slots.update(grads, self.maximize, |s, p, mut g| {
            if wd != 0.0 {
                g = g.add_scaled(&p, wd)?;
            }
            let m = ema(s.state.get("exp_avg"), &g, b1)?;
            let g_eps = g.abs()?.add_scalar(eps)?;
            let u = match s.state.get("exp_inf") {
                Some(u) => u.mul_scalar(b2)?.maximum(&g_eps)?,
                None => g_eps,
            };
            let clr = lr / (1.0 - b1.powf(s.step as f64));
            let p = p.add_scaled(&m.div(&u)?, -clr)?;
            s.state.insert("exp_avg", m);
            s.state.insert("exp_inf", u);
            Ok(p)
        })
    }
    optimizer_common!(["exp_avg", "exp_inf"], []);
}

/// Scales the gradients of `vars` in place so their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`: coefficient `max_norm / (norm + 1e-6)`, capped at 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Grads, vars: &[Var], max_norm: f64) -> Result<f64> {
    clip_grad_norm_p(grads, vars, max_norm, 2.0)
}

/// [`clip_grad_norm`] with another `norm_type`: any `p > 0` (the p-norm of all gradient elements
/// together) or `f64::INFINITY` (the largest absolute element). Returns the norm before clipping.
///
/// As in PyTorch the total is the p-norm of the per-parameter p-norms, accumulated in f64.
pub fn clip_grad_norm_p(grads: &mut Grads, vars: &[Var], max_norm: f64, norm_type: f64) -> Result<f64> {
    if norm_type.is_nan() || norm_type <= 0.0 {
        return Err(Error::config(
            "clip_grad_norm",
            format!("norm_type must be positive or infinite, got {norm_type}"),
        ));
    }
    let mut norms = Vec::new();
    for v in vars {
        if let Some(g) = v.grad(grads) {
            let n = no_grad(|| -> kiln_core::Result<f64> {
                let a = g.to_dtype(kiln_core::DType::F64)?.abs()?;
                if a.elem_count() == 0 {
                    return Ok(0.0);
                }
                if norm_type.is_infinite() {
                    a.max_all()?.item()
                } else if norm_type == 2.0 {
                    Ok(a.square()?.sum_all()?.item()?.sqrt())
                } else {
                    Ok(a.powf(norm_type)?.sum_all()?.item()?.powf(1.0 / norm_type))
                }
            })?;
            norms.push(n);
        }
    }
    let norm = if norm_type.is_infinite() {
        // f64::max drops NaN; a NaN gradient must give a NaN norm, as in PyTorch.
        norms
            .iter()
            .fold(0.0f64, |a, &b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) })
    } else {
        norms.iter().map(|n| n.powf(norm_type)).sum::<f64>().powf(1.0 / norm_type)
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::{DType, Rng};

    fn v64(t: &Tensor) -> Vec<f64> {
        t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
    }

    /// `Sgd` with momentum (its fused kernel) against the composed ops of `torch.optim.SGD`'s
    /// update, bit for bit, over three steps with a transposed gradient: plain, weight decay,
    /// dampening, Nesterov, and maximize, in f64 and f32.
    #[test]
    fn fused_sgd_momentum_matches_the_composed_ops() {
        for dt in [DType::F64, DType::F32] {
            for (wd, damp, nest, maximize) in [
                (0.0, 0.0, false, false),
                (0.03, 0.0, false, false),
                (0.0, 0.25, false, false),
                (0.03, 0.0, true, false),
                (0.0, 0.0, false, true),
            ] {
                let (lr, mom) = (0.05, 0.9);
                let mut rng = Rng::new(131);
                let p0 = Tensor::rand([6, 4], -1.0, 1.0, dt, &mut rng).unwrap();
                let var = Var::new(&p0);
                let mut opt = Sgd::new(vec![var.clone()], lr)
                    .unwrap()
                    .momentum(mom)
                    .dampening(damp)
                    .weight_decay(wd);
                opt = opt.nesterov(nest).unwrap().maximize(maximize);
                let (mut pc, mut buf): (Tensor, Option<Tensor>) = (p0.clone(), None);
                for t in 0..3 {
                    let g = Tensor::rand([4, 6], -1.0, 1.0, dt, &mut rng).unwrap().t().unwrap();
                    let mut grads = Grads::default();
                    grads.insert(var.id(), g.clone());
                    opt.step(&grads).unwrap();
                    let mut gc = if maximize { g.neg().unwrap() } else { g };
                    if wd != 0.0 {
                        gc = gc.add_scaled(&pc, wd).unwrap();
                    }
                    let b = match &buf {
                        None => gc.clone(),
                        Some(b) if damp == 0.0 => gc.add_scaled(b, mom).unwrap(),
                        Some(b) => b.mul_scalar(mom).unwrap().add_scaled(&gc, 1.0 - damp).unwrap(),
                    };
                    let d = if nest { gc.add_scaled(&b, mom).unwrap() } else { b.clone() };
                    pc = pc.add_scaled(&d, -lr).unwrap();
                    buf = Some(b);
                    let ctx = format!("{dt:?} wd {wd} damp {damp} nesterov {nest} maximize {maximize} step {t}");
                    let bits = |t: &Tensor| v64(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(var.tensor().dtype(), dt, "{ctx}");
                    assert_eq!(bits(&var.tensor()), bits(&pc), "{ctx}: parameter");
                    let state = opt.state_tensors();
                    let (_, sb) = state
                        .iter()
                        .find(|(n, _)| n.ends_with("momentum_buffer"))
                        .expect("a momentum buffer");
                    assert_eq!(bits(sb), bits(buf.as_ref().unwrap()), "{ctx}: buffer");
                }
            }
        }
    }

    /// The fused Adam program against the composed tensor ops it replaced (the path AMSGrad still
    /// takes), over three steps with a transposed (non-contiguous) gradient, for Adam's L2 and
    /// AdamW's decoupled weight decay. Equality is exact; `==` on f64 lets a zero's sign differ,
    /// which the composed first step (`g·(1-β1)` against the program's `0 + g·(1-β1)`) may.
    #[test]
    fn fused_adam_program_matches_the_composed_ops() {
        for dt in [DType::F64, DType::F32] {
            for (wd, decoupled) in [(0.0, false), (0.05, false), (0.05, true)] {
                let mut rng = Rng::new(130);
                let p = Tensor::rand([7, 5], -1.0, 1.0, dt, &mut rng).unwrap();
                let (b1, b2, lr, eps) = (0.9, 0.999, 1e-2, 1e-8);
                let (mut pf, mut pc) = (p.clone(), p.clone());
                let (mut mf, mut vf): (Option<Tensor>, Option<Tensor>) = (None, None);
                let (mut mc, mut vc): (Option<Tensor>, Option<Tensor>) = (None, None);
                for t in 1..=3 {
                    let g = Tensor::rand([5, 7], -1.0, 1.0, dt, &mut rng).unwrap().t().unwrap();
                    let (bc1, bc2s) = (1.0 - f64::powi(b1, t), (1.0 - f64::powi(b2, t)).sqrt());
                    let h = || AdamKernel {
                        beta1: b1,
                        beta2: b2,
                        lr,
                        weight_decay: wd,
                        decoupled,
                        step_size: lr / bc1,
                        inv_bias_correction2_sqrt: 1.0 / bc2s,
                        eps,
                    };
                    let (prog, prog_h) = (adam_program(h(), mf.is_some()), h());
                    let ins = match (&mf, &vf) {
                        (Some(m), Some(v)) => vec![&pf, m, v, &g],
                        _ => vec![&pf, &g],
                    };
                    let mut out = Tensor::fused_elementwise(&ins, &prog).unwrap().into_iter();
                    let (np, nm, nv) = (out.next().unwrap(), out.next().unwrap(), out.next().unwrap());
                    assert!(out.next().is_none());
                    // The natively evaluated kernel (what `Adam::step` runs) gives the program's
                    // bits exactly, signed zeros included.
                    let native = match (&mf, &vf) {
                        (Some(m), Some(v)) => Tensor::fused_kernel([&pf, m, v, &g], &prog_h).unwrap(),
                        _ => Tensor::fused_kernel([&pf, &g], &prog_h).unwrap(),
                    };
                    for (a, b) in native.iter().zip([&np, &nm, &nv]) {
                        let bits = |t: &Tensor| v64(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(a), bits(b), "{dt:?} wd {wd} decoupled {decoupled} step {t}: native kernel");
                    }
                    (pf, mf, vf) = (np, Some(nm), Some(nv));

                    let (mut p2, mut g2) = (pc.clone(), g.clone());
                    if wd != 0.0 {
                        if decoupled {
                            p2 = p2.mul_scalar(1.0 - lr * wd).unwrap();
                        } else {
                            g2 = g2.add_scaled(&p2, wd).unwrap();
                        }
                    }
                    let m2 = match &mc {
                        Some(m) => m.mul_scalar(b1).unwrap().add_scaled(&g2, 1.0 - b1).unwrap(),
                        None => g2.mul_scalar(1.0 - b1).unwrap(),
                    };
                    let gsq = g2.square().unwrap();
                    let v2 = match &vc {
                        Some(v) => v.mul_scalar(b2).unwrap().add_scaled(&gsq, 1.0 - b2).unwrap(),
                        None => gsq.mul_scalar(1.0 - b2).unwrap(),
                    };
                    let denom = v2.sqrt().unwrap().affine(1.0 / bc2s, eps).unwrap();
                    pc = p2.add_scaled(&m2.div(&denom).unwrap(), -lr / bc1).unwrap();
                    (mc, vc) = (Some(m2), Some(v2));
                    let ctx = format!("{dt:?} wd {wd} decoupled {decoupled} step {t}");
                    assert_eq!(pf.dtype(), dt);
                    assert_eq!(v64(&pf), v64(&pc), "{ctx}: parameter");
                    assert_eq!(v64(mf.as_ref().unwrap()), v64(mc.as_ref().unwrap()), "{ctx}: exp_avg");
                    assert_eq!(v64(vf.as_ref().unwrap()), v64(vc.as_ref().unwrap()), "{ctx}: exp_avg_sq");
                }
            }
        }
    }
}
