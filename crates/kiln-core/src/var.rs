//! [`Var`]: the explicit mutable cell for parameters. Tensors are immutable; a `Var` swaps in a new
//! value while keeping one identity, so gradients computed against it stay keyed the same way.

use crate::autograd::Grads;
use crate::fused::Kernel;
use crate::tensor::TensorId;
use crate::{DType, Error, Result, Shape, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

struct VarInner {
    id: TensorId,
    value: RwLock<Tensor>,
    trainable: AtomicBool,
}

/// A trainable parameter: a shared, updatable slot holding a leaf tensor that requires grad.
///
/// Clones share the slot (as a module and its optimiser share an `nn.Parameter` in PyTorch).
///
/// ```
/// use kiln_core::{Tensor, Var};
/// let w = Var::new(&Tensor::from_slice(&[1.0f32, 2.0], [2])?);
/// let loss = w.tensor().square()?.sum_all()?;
/// let grads = loss.backward()?;
/// let g = w.grad(&grads).unwrap();
/// w.set(&w.tensor().sub(&g.mul_scalar(0.25)?)?)?;
/// assert_eq!(w.tensor().to_vec::<f32>()?, vec![0.5, 1.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Var(Arc<VarInner>);

impl Var {
    /// A parameter initialised to `value` (detached from any graph).
    pub fn new(value: &Tensor) -> Var {
        let id = TensorId::new();
        let t = Tensor::with_id(value.0.storage.clone(), value.0.layout.clone(), id, true);
        Var(Arc::new(VarInner {
            id,
            value: RwLock::new(t),
            trainable: AtomicBool::new(true),
        }))
    }
    /// The current value, as a leaf that requires grad while the parameter is trainable.
    pub fn tensor(&self) -> Tensor {
        self.0.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Identity shared by every value this parameter takes.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> Shape {
        self.tensor().shape().clone()
    }
    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.tensor().dtype()
    }
    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.tensor().elem_count()
    }
    /// Replaces the value; shape and dtype must stay the same.
    pub fn set(&self, value: &Tensor) -> Result<()> {
        let mut slot = self.0.value.write().unwrap_or_else(|e| e.into_inner());
        if value.shape() != slot.shape() || value.dtype() != slot.dtype() {
            return Err(Error::shape(
                "Var::set",
                format!(
                    "new value {} ({}) does not match the parameter's {} ({})",
                    value.shape(),
                    value.dtype(),
                    slot.shape(),
                    slot.dtype()
                ),
            ));
        }
        let trainable = self.0.trainable.load(Ordering::Relaxed);
        *slot = Tensor::with_id(value.0.storage.clone(), value.0.layout.clone(), self.0.id, trainable);
        Ok(())
    }
    /// Updates the parameter with a fused [`Kernel`]: the parameter is the kernel's input and
    /// output 0, `state[j]` its input and output `j + 1` (an optimiser's buffers), and `rest` its
    /// inputs `O..I`. This is [`Tensor::fused_kernel_assign`] with the parameter as the first
    /// target, and it keeps the parameter's identity. The update is written over the current
    /// value when nothing else holds it, and into a new buffer otherwise. Something holds it
    /// when a clone is kept from [`Var::tensor`], or when a graph recorded through the parameter
    /// is still alive. No other handle sees a change either way. It runs outside autodiff, like
    /// [`Var::set`]. Nothing changes when it fails.
    ///
    /// ```
    /// use kiln_core::backend::BinaryOp;
    /// use kiln_core::fused::{Kernel, Ops};
    /// use kiln_core::{Tensor, Var};
    /// /// `p - 0.5·g`.
    /// struct Descend;
    /// impl Kernel<2, 1> for Descend {
    ///     fn outputs(&self) -> [&'static str; 1] {
    ///         ["param"]
    ///     }
    ///     fn eval<X: Ops>(&self, o: &mut X, [p, g]: [X::V; 2]) -> [X::V; 1] {
    ///         [o.binary(BinaryOp::AddScaled(-0.5), p, g)]
    ///     }
    /// }
    /// let w = Var::new(&Tensor::from_slice(&[1.0f32, 2.0], [2])?);
    /// let g = Tensor::from_slice(&[2.0f32, 2.0], [2])?;
    /// w.fused_update(&mut [], &[&g], &Descend)?;
    /// assert_eq!(w.tensor().to_vec::<f32>()?, vec![0.0, 1.0]);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn fused_update<K: Kernel<I, O>, const I: usize, const O: usize>(
        &self,
        state: &mut [&mut Tensor],
        rest: &[&Tensor],
        kernel: &K,
    ) -> Result<()> {
        if state.len() + 1 != O {
            return Err(Error::value(
                "Var::fused_update",
                format!(
                    "the kernel has {O} outputs but the parameter and {} state tensors were given",
                    state.len()
                ),
            ));
        }
        let mut slot = self.0.value.write().unwrap_or_else(|e| e.into_inner());
        let targets: Vec<&mut Tensor> = std::iter::once(&mut *slot).chain(state.iter_mut().map(|t| &mut **t)).collect();
        let targets: [&mut Tensor; O] = targets.try_into().map_err(|_| Error::value("Var::fused_update", "target count"))?;
        crate::no_grad(|| Tensor::fused_kernel_assign(targets, rest, kernel))?;
        // The kernel's outputs have its inputs' shape and dtype, so the slot keeps both; only the
        // identity and the grad flag are restored.
        let trainable = self.0.trainable.load(Ordering::Relaxed);
        *slot = Tensor::with_id(slot.0.storage.clone(), slot.0.layout.clone(), self.0.id, trainable);
        Ok(())
    }
    /// Freezes (false) or unfreezes (true) the parameter: frozen values do not require grad.
    pub fn set_trainable(&self, on: bool) {
        self.0.trainable.store(on, Ordering::Relaxed);
        let mut slot = self.0.value.write().unwrap_or_else(|e| e.into_inner());
        *slot = Tensor::with_id(slot.0.storage.clone(), slot.0.layout.clone(), self.0.id, on);
    }
    /// True unless frozen.
    pub fn is_trainable(&self) -> bool {
        self.0.trainable.load(Ordering::Relaxed)
    }
    /// This parameter's gradient in `grads`, if one flowed to it.
    pub fn grad<'a>(&self, grads: &'a Grads) -> Option<&'a Tensor> {
        grads.get_id(self.0.id)
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?})", self.tensor())
    }
}
