//! The [`Module`] trait, buffers (non-trainable state such as running statistics) and the
//! parameter store [`VarStore`] that creates parameters with PyTorch's default initialisation.
//!
//! # `#[derive(Module)]`
//!
//! A hand-written `visit_parameters` can forget a field, and the optimiser then silently never
//! updates it. `#[derive(Module)]` writes `visit_parameters`, `visit_buffers`, `set_training` and
//! `is_training` from the struct's fields, in declaration order, each under its field name as
//! PyTorch's `named_parameters()` and `state_dict()` do (`encoder.weight`, `blocks.0.bias`). The
//! forward pass stays hand-written as an inherent `forward` method, which the derived
//! [`Module::forward`] calls.
//!
//! Every field must be something [`ModuleField`] knows: a [`Var`] (parameter), a [`Buffer`], any
//! [`Module`], an `Option`, `Vec` or array of those (elements named `name.0`, `name.1`, ... like
//! `nn.ModuleList`), or a plain value (numbers, `bool`, `String`, [`DType`]). Any other type is a
//! compile error, so a field cannot be left out by accident. Field attributes:
//!
//! - `#[module(skip)]`: holds no state (a generator, a cached tensor);
//! - `#[module(rename = "name")]`: a different state-dict name (to match a PyTorch checkpoint);
//! - `#[module(flatten)]`: the field's contents without its name (`0.weight`, as `nn.Sequential`);
//! - `#[module(training)]`: an `AtomicBool` that is the module's own train/eval flag.
//!
//! A generic struct derives too (`struct Residual<M: Module> { inner: M }`); its inherent
//! `forward` must then exist for every type argument (`impl<M: Module> Residual<M>`), since the
//! derived impl is generic.
//!
//! ```
//! use kiln_core::{DType, Tensor, Var};
//! use kiln_nn::{Adam, Dropout, Init, Linear, Module, Optimizer, VarStore};
//!
//! #[derive(Module)]
//! struct Net {
//!     embed: Linear,
//!     blocks: Vec<Linear>,
//!     head: Option<Linear>,
//!     scale: Var,
//!     dropout: Dropout,
//!     hidden: usize,
//! }
//!
//! impl Net {
//!     fn forward(&self, x: &Tensor) -> kiln_nn::Result<Tensor> {
//!         let mut h = self.embed.forward(x)?.relu()?;
//!         for b in &self.blocks {
//!             h = b.forward(&h)?.relu()?;
//!         }
//!         h = self.dropout.forward(&h)?.mul(&self.scale.tensor())?;
//!         Ok(match &self.head {
//!             Some(head) => head.forward(&h)?,
//!             None => h,
//!         })
//!     }
//! }
//!
//! let vs = VarStore::new(DType::F32, 0);
//! let hidden = 8;
//! let net = Net {
//!     embed: Linear::new(&vs.pp("embed"), 4, hidden)?,
//!     blocks: (0..2).map(|i| Linear::new(&vs.pp("blocks").pp(i), hidden, hidden)).collect::<kiln_nn::Result<_>>()?,
//!     head: Some(Linear::new(&vs.pp("head"), hidden, 3)?),
//!     scale: vs.var("scale", &[1], Init::Const(1.0))?,
//!     dropout: Dropout::new(0.1, 7)?,
//!     hidden,
//! };
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(
//!     names,
//!     ["embed.weight", "embed.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
//!      "head.weight", "head.bias", "scale"]
//! );
//! // The names are the ones the VarStore gave the parameters, so checkpoints of either agree.
//! assert_eq!(names, vs.named_vars().into_iter().map(|(n, _)| n).collect::<Vec<_>>());
//! net.eval(); // reaches the dropout inside
//! assert!(!net.is_training());
//! let mut opt = Adam::new(net.parameters(), 1e-3)?;
//! let loss = net.forward(&Tensor::ones([2, 4], DType::F32)?)?.sum_all()?;
//! opt.backward_step(&loss)?;
//! # Ok::<(), kiln_nn::Error>(())
//! ```
//!
//! A field of a type that is neither state nor a plain value does not compile until it is marked
//! (here a cached tensor, which might have been meant as a buffer):
//!
//! ```compile_fail,E0277
//! use kiln_core::Tensor;
//! use kiln_nn::{Linear, Module};
//! #[derive(Module)]
//! struct Cached {
//!     fc: Linear,
//!     last_input: Tensor, // needs #[module(skip)] or to be a Buffer
//! }
//! impl Cached {
//!     fn forward(&self, x: &Tensor) -> kiln_nn::Result<Tensor> {
//!         self.fc.forward(x)
//!     }
//! }
//! ```
//!
//! and neither does a derived module without its inherent `forward` (rather than recursing):
//!
//! ```compile_fail,E0034
//! use kiln_nn::{Linear, Module};
//! #[derive(Module)]
//! struct NoForward {
//!     fc: Linear,
//! }
//! ```

use crate::init::Init;
use crate::{Error, Result};
use kiln_core::{DType, Rng, Shape, Tensor, Var};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Joins a hierarchical name: `join("layers.0", "weight") == "layers.0.weight"`.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A non-trainable tensor that belongs to a module's state (PyTorch's `register_buffer`), such as
/// BatchNorm's `running_mean`. Clones share the slot, so a checkpoint loader can update it.
#[derive(Clone)]
pub struct Buffer(Arc<RwLock<Tensor>>);

impl Buffer {
    /// A buffer holding `t` (detached).
    pub fn new(t: Tensor) -> Buffer {
        Buffer(Arc::new(RwLock::new(t.detach())))
    }
    /// The current value.
    pub fn get(&self) -> Tensor {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Replaces the value (detached); shape and dtype must stay the same.
    pub fn set(&self, t: &Tensor) -> Result<()> {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
        if t.shape() != slot.shape() || t.dtype() != slot.dtype() {
            return Err(Error::config(
                "Buffer::set",
                format!(
                    "new value {} ({}) does not match the buffer's {} ({})",
                    t.shape(),
                    t.dtype(),
                    slot.shape(),
                    slot.dtype()
                ),
            ));
        }
        *slot = t.detach();
        Ok(())
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({:?})", self.get())
    }
}

/// A layer or model: a differentiable function of a tensor plus the parameters and buffers it owns.
///
/// Implementors provide [`Module::forward`] and, when they own state, the `visit_*` methods; names
/// are then collected hierarchically like PyTorch's `named_parameters()` (`layers.0.weight`).
/// `#[derive(Module)]` writes the `visit_*` and train/eval methods from the struct's fields (see
/// the [module docs](self)), so a custom model cannot forget a parameter.
///
/// ```
/// use kiln_nn::{Module, Linear, Sequential, ReLU, VarStore};
/// use kiln_core::{DType, Tensor};
/// let vs = VarStore::new(DType::F32, 0);
/// let model = Sequential::new()
///     .add(Linear::new(&vs.pp("0"), 4, 8)?)
///     .add(ReLU)
///     .add(Linear::new(&vs.pp("2"), 8, 3)?);
/// let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// assert_eq!(model.num_parameters(), 4 * 8 + 8 + 8 * 3 + 3);
/// let y = model.forward(&Tensor::zeros([5, 4], DType::F32)?)?;
/// assert_eq!(y.dims(), &[5, 3]);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub trait Module: Send + Sync {
    /// Applies the module to `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Calls `f(full_name, var)` for every parameter, children first-to-last in definition order.
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}

    /// Calls `f(full_name, buffer)` for every buffer.
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Buffer)) {}

    /// Switches training mode (true) or evaluation mode (false); containers forward it to children.
    fn set_training(&self, _on: bool) {}

    /// Whether the module is in training mode (modules without mode-dependent behaviour say true).
    fn is_training(&self) -> bool {
        true
    }

    /// Training mode (PyTorch's `model.train()`).
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode (PyTorch's `model.eval()`): dropout off, batch norm uses running statistics.
    fn eval(&self) {
        self.set_training(false)
    }

    /// All parameters with their hierarchical names.
    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        self.visit_parameters("", &mut |n, v| out.push((n, v.clone())));
        out
    }

    /// All parameters (frozen ones included).
    fn parameters(&self) -> Vec<Var> {
        self.named_parameters().into_iter().map(|(_, v)| v).collect()
    }

    /// The parameters that are not frozen: what an optimiser should update.
    fn trainable_parameters(&self) -> Vec<Var> {
        self.parameters().into_iter().filter(|v| v.is_trainable()).collect()
    }

    /// All buffers with their hierarchical names.
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |n, b| out.push((n, b.clone())));
        out
    }

    /// Number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|v| v.elem_count()).sum()
    }

    /// Number of scalar parameters that are not frozen.
    fn num_trainable_parameters(&self) -> usize {
        self.trainable_parameters().iter().map(|v| v.elem_count()).sum()
    }

    /// Freezes every parameter (`requires_grad_(False)` on all of them).
    fn freeze(&self) {
        for v in self.parameters() {
            v.set_trainable(false);
        }
    }

    /// Unfreezes every parameter.
    fn unfreeze(&self) {
        for v in self.parameters() {
            v.set_trainable(true);
        }
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        (**self).visit_parameters(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer)) {
        (**self).visit_buffers(prefix, f)
    }
    fn set_training(&self, on: bool) {
        (**self).set_training(on)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
}

impl<M: Module + ?Sized> Module for Arc<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        (**self).visit_parameters(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer)) {
        (**self).visit_buffers(prefix, f)
    }
    fn set_training(&self, on: bool) {
        (**self).set_training(on)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
}

/// How `#[derive(Module)]` reports one field: a parameter ([`Var`]), a [`Buffer`], a sub-module,
/// an `Option`, `Vec` or array of those, or a plain configuration value (numbers, `bool`,
/// `String`, [`DType`]), which holds no state.
///
/// `name` is the field's full hierarchical name (`encoder.layers`); containers extend it with the
/// element index (`encoder.layers.0`), as PyTorch's `nn.ModuleList` does. Implement it for your own
/// non-module field types when they hold parameters; the defaults report nothing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a parameter, buffer, module or plain value, so #[derive(Module)] cannot report it",
    label = "field type not known to #[derive(Module)]",
    note = "mark the field `#[module(skip)]` if it holds no parameters or buffers, or implement `kiln_nn::module::ModuleField` for it"
)]
pub trait ModuleField {
    /// Calls `f(full_name, var)` for each parameter the field holds.
    fn visit_field_parameters(&self, _name: &str, _f: &mut dyn FnMut(String, &Var)) {}
    /// Calls `f(full_name, buffer)` for each buffer the field holds.
    fn visit_field_buffers(&self, _name: &str, _f: &mut dyn FnMut(String, &Buffer)) {}
    /// Forwards train/eval mode to the modules the field holds.
    fn set_field_training(&self, _on: bool) {}
    /// False when a module the field holds is in eval mode.
    fn field_is_training(&self) -> bool {
        true
    }
}

impl ModuleField for Var {
    fn visit_field_parameters(&self, name: &str, f: &mut dyn FnMut(String, &Var)) {
        f(name.to_string(), self)
    }
}

impl ModuleField for Buffer {
    fn visit_field_buffers(&self, name: &str, f: &mut dyn FnMut(String, &Buffer)) {
        f(name.to_string(), self)
    }
}

impl<M: Module> ModuleField for M {
    fn visit_field_parameters(&self, name: &str, f: &mut dyn FnMut(String, &Var)) {
        self.visit_parameters(name, f)
    }
    fn visit_field_buffers(&self, name: &str, f: &mut dyn FnMut(String, &Buffer)) {
        self.visit_buffers(name, f)
    }
    fn set_field_training(&self, on: bool) {
        self.set_training(on)
    }
    fn field_is_training(&self) -> bool {
        self.is_training()
    }
}

/// `None` holds nothing (PyTorch's `bias=None`); `Some` is reported under the same name.
impl<T: ModuleField> ModuleField for Option<T> {
    fn visit_field_parameters(&self, name: &str, f: &mut dyn FnMut(String, &Var)) {
        if let Some(t) = self {
            t.visit_field_parameters(name, f)
        }
    }
    fn visit_field_buffers(&self, name: &str, f: &mut dyn FnMut(String, &Buffer)) {
        if let Some(t) = self {
            t.visit_field_buffers(name, f)
        }
    }
    fn set_field_training(&self, on: bool) {
        if let Some(t) = self {
            t.set_field_training(on)
        }
    }
    fn field_is_training(&self) -> bool {
        self.as_ref().is_none_or(|t| t.field_is_training())
    }
}

/// Elements are named `name.0`, `name.1`, ... (`nn.ModuleList` / `nn.ParameterList`).
impl<T: ModuleField> ModuleField for [T] {
    fn visit_field_parameters(&self, name: &str, f: &mut dyn FnMut(String, &Var)) {
        for (i, t) in self.iter().enumerate() {
            t.visit_field_parameters(&join(name, &i.to_string()), f)
        }
    }
    fn visit_field_buffers(&self, name: &str, f: &mut dyn FnMut(String, &Buffer)) {
        for (i, t) in self.iter().enumerate() {
            t.visit_field_buffers(&join(name, &i.to_string()), f)
        }
    }
    fn set_field_training(&self, on: bool) {
        for t in self {
            t.set_field_training(on)
        }
    }
    fn field_is_training(&self) -> bool {
        self.iter().all(|t| t.field_is_training())
    }
}

/// Delegates to the slice impl (each element `name.i`); used by `Vec` and arrays.
macro_rules! module_field_as_slice {
    ($($t:ty => [$($g:tt)*]),*) => {$(
        impl<$($g)*> ModuleField for $t {
            fn visit_field_parameters(&self, name: &str, f: &mut dyn FnMut(String, &Var)) {
                self[..].visit_field_parameters(name, f)
            }
            fn visit_field_buffers(&self, name: &str, f: &mut dyn FnMut(String, &Buffer)) {
                self[..].visit_field_buffers(name, f)
            }
            fn set_field_training(&self, on: bool) {
                self[..].set_field_training(on)
            }
            fn field_is_training(&self) -> bool {
                self[..].field_is_training()
            }
        }
    )*};
}
module_field_as_slice!(Vec<T> => [T: ModuleField], [T; N] => [T: ModuleField, const N: usize]);

/// Configuration values: no parameters, buffers or mode.
macro_rules! module_field_plain {
    ($($t:ty),*) => {$( impl ModuleField for $t {} )*};
}
module_field_plain!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    String,
    &'static str,
    DType
);

struct StoreInner {
    vars: Vec<(String, Var)>,
    buffers: Vec<(String, Buffer)>,
    index: HashMap<String, usize>,
    rng: Rng,
    dtype: DType,
}

/// The parameter store: creates named parameters with an initialiser drawn from one seeded
/// generator, and keeps them (in creation order) for optimisers and checkpoints.
///
/// `pp` ("push prefix") gives a handle whose names live under a sub-path; all handles share one
/// store. Asking twice for the same name returns the same [`Var`] (shapes must agree).
///
/// ```
/// use kiln_nn::{VarStore, Init};
/// use kiln_core::DType;
/// let vs = VarStore::new(DType::F64, 42);
/// let w = vs.pp("encoder").pp(0).var("weight", &[3, 2], Init::Const(0.5))?;
/// assert_eq!(vs.named_vars()[0].0, "encoder.0.weight");
/// assert_eq!(w.tensor().to_vec::<f64>()?, vec![0.5; 6]);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
#[derive(Clone)]
pub struct VarStore {
    inner: Arc<Mutex<StoreInner>>,
    prefix: String,
}

impl VarStore {
    /// An empty store creating parameters of `dtype`, initialised from a generator seeded with `seed`.
    pub fn new(dtype: DType, seed: u64) -> VarStore {
        VarStore {
            inner: Arc::new(Mutex::new(StoreInner {
                vars: Vec::new(),
                buffers: Vec::new(),
                index: HashMap::new(),
                rng: Rng::new(seed),
                dtype,
            })),
            prefix: String::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle whose names are prefixed by `name` (`vs.pp("layers").pp(0)` → `layers.0.`).
    pub fn pp(&self, name: impl std::fmt::Display) -> VarStore {
        VarStore {
            inner: self.inner.clone(),
            prefix: join(&self.prefix, &name.to_string()),
        }
    }

    /// The current prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The dtype new parameters get.
    pub fn dtype(&self) -> DType {
        self.lock().dtype
    }

    /// Runs `f` with the store's generator (for seeded dropout masks, data shuffles, ...).
    pub fn with_rng<R>(&self, f: impl FnOnce(&mut Rng) -> R) -> R {
        f(&mut self.lock().rng)
    }

    /// Draws a fresh seed from the store's generator (so that dropout layers get distinct streams).
    pub fn next_seed(&self) -> u64 {
        self.with_rng(|r| r.next_u64())
    }

    /// The parameter `name` under this prefix, created with `init` if it does not exist yet.
    pub fn var(&self, name: &str, shape: &[usize], init: Init) -> Result<Var> {
        let full = join(&self.prefix, name);
        let mut g = self.lock();
        if let Some(&i) = g.index.get(&full) {
            let v = g.vars[i].1.clone();
            if v.shape().dims() != shape {
                return Err(Error::config(
                    "VarStore::var",
                    format!("`{full}` exists with shape {}, requested {:?}", v.shape(), shape),
                ));
            }
            return Ok(v);
        }
        let dtype = g.dtype;
        let t = init.tensor(&Shape::new(shape), dtype, &mut g.rng)?;
        let v = Var::new(&t);
        let n = g.vars.len();
        g.index.insert(full.clone(), n);
        g.vars.push((full, v.clone()));
        Ok(v)
    }

    /// Registers a buffer `name` under this prefix holding `t` (returns the existing one if present).
    pub fn buffer(&self, name: &str, t: Tensor) -> Buffer {
        let full = join(&self.prefix, name);
        let mut g = self.lock();
        if let Some((_, b)) = g.buffers.iter().find(|(n, _)| *n == full) {
            return b.clone();
        }
        let b = Buffer::new(t);
        g.buffers.push((full, b.clone()));
        b
    }

    /// Every parameter in the store with its full name, in creation order.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        self.lock().vars.clone()
    }

    /// Every parameter in the store, in creation order.
    pub fn all_vars(&self) -> Vec<Var> {
        self.lock().vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Every trainable parameter in the store.
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.all_vars().into_iter().filter(|v| v.is_trainable()).collect()
    }

    /// Every buffer in the store with its full name.
    pub fn named_buffers(&self) -> Vec<(String, Buffer)> {
        self.lock().buffers.clone()
    }

    /// Number of scalar parameters in the store.
    pub fn num_parameters(&self) -> usize {
        self.all_vars().iter().map(|v| v.elem_count()).sum()
    }
}

impl std::fmt::Debug for VarStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        write!(
            f,
            "VarStore(prefix {:?}, {} vars, {} buffers, {})",
            self.prefix,
            g.vars.len(),
            g.buffers.len(),
            g.dtype
        )
    }
}
