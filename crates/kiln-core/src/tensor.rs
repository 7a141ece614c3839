//! The [`Tensor`] handle: creation, accessors and zero-copy views.

use crate::autograd::{self, Op};
use crate::backend::{Device, Storage};
use crate::cpu::{CpuElement, CpuStorage};
use crate::shape::Dims;
use crate::{DType, Element, Error, Layout, Result, Shape};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Identity of a tensor value in the autodiff graph (a [`crate::Var`] keeps its id across updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub(crate) u64);

impl TensorId {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct Inner {
    pub(crate) id: TensorId,
    pub(crate) storage: Arc<Storage>,
    pub(crate) layout: Layout,
    pub(crate) requires_grad: bool,
    pub(crate) op: Option<Op>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A long chain of ops would otherwise drop recursively, one stack frame per op, and
        // overflow the stack. Unlink inputs into a work list instead and drop them one by one.
        let Some(op) = self.op.take() else { return };
        let mut stack: Vec<Tensor> = Vec::new();
        op.into_inputs(&mut stack);
        while let Some(t) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(t.0) {
                if let Some(op) = inner.op.take() {
                    op.into_inputs(&mut stack);
                }
            }
        }
    }
}

/// An n-dimensional array: a cheap-to-clone handle to immutable values.
///
/// Cloning copies a pointer. Views (reshape, transpose, narrow, expand) share the storage and only
/// change the layout. Every op returns a new tensor; when an input requires gradients and grad mode
/// is on, the result remembers the op so that [`Tensor::backward`] can differentiate through it.
///
/// ```
/// use kiln_core::{Tensor, DType};
/// let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0], [3])?.requires_grad(true)?;
/// let y = x.square()?.sum_all()?;
/// let grads = y.backward()?;
/// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![2.0, 4.0, 6.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

impl Tensor {
    /// Wraps fresh contiguous storage as an untracked tensor.
    pub(crate) fn from_storage(storage: Storage, shape: Shape) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::new(),
            storage: Arc::new(storage),
            layout: Layout::contiguous(shape),
            requires_grad: false,
            op: None,
        }))
    }

    /// Wraps the result of an op: records `op` when it is given (the caller decides whether to track),
    /// and runs the anomaly check when anomaly mode is on.
    pub(crate) fn make(storage: Storage, shape: Shape, op: Option<Op>, name: &'static str) -> Result<Tensor> {
        let t = Tensor(Arc::new(Inner {
            id: TensorId::new(),
            requires_grad: op.is_some(),
            storage: Arc::new(storage),
            layout: Layout::contiguous(shape),
            op,
        }));
        if autograd::anomaly_enabled() {
            autograd::check_forward(&t, name)?;
        }
        Ok(t)
    }

    /// A view of this tensor's storage with another layout.
    pub(crate) fn view(&self, layout: Layout, op: Option<Op>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout,
            requires_grad: op.is_some(),
            op,
        }))
    }

    // ---------------------------------------------------------------- creation

    /// A tensor from a vector and a shape, on the CPU. The element count must match, and the
    /// shape's element count must not overflow (checked: `[2^32, 2^32]` is an error, not 0).
    pub fn from_vec<T: CpuElement>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let expected = shape.checked_elem_count_for(T::DTYPE.size_in_bytes(), "from_vec")?;
        if data.len() != expected {
            return Err(Error::ElementCount {
                op: "from_vec",
                len: data.len(),
                expected,
                shape,
            });
        }
        Ok(Tensor::from_storage(Storage::Cpu(T::wrap(data)), shape))
    }
    /// A tensor copied from a slice, on the CPU.
    pub fn from_slice<T: CpuElement>(data: &[T], shape: impl Into<Shape>) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }
    /// A CPU tensor of `dtype` from its elements' little-endian bytes, as safetensors and
    /// PyTorch's `untyped_storage()` lay them out (f16 and bf16 as their raw 16-bit patterns, so
    /// NaN payloads and signed zeros survive). `bytes.len()` must be the element count times
    /// [`DType::size_in_bytes`].
    pub fn from_le_bytes(bytes: &[u8], dtype: DType, shape: impl Into<Shape>) -> Result<Tensor> {
        const OP: &str = "from_le_bytes";
        let shape = shape.into();
        let size = dtype.size_in_bytes();
        let expected = shape.checked_elem_count_for(size, OP)?;
        if bytes.len() != expected * size {
            return Err(Error::value(
                OP,
                format!(
                    "{} bytes cannot fill shape {shape} of {dtype} ({expected} elements of {size} bytes)",
                    bytes.len()
                ),
            ));
        }
        fn read<T: CpuElement, const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Result<CpuStorage> {
            let mut v = crate::cpu::pool::try_with_capacity(bytes.len() / N).map_err(|e| e.at(OP))?;
            // `chunks_exact` hands out slices of exactly N bytes, so the conversion cannot fail.
            v.extend(bytes.chunks_exact(N).map(|c| f(c.try_into().expect("N-byte chunk"))));
            Ok(T::wrap(v))
        }
        let storage = match dtype {
            DType::F16 => read(bytes, |b| half::f16::from_bits(u16::from_le_bytes(b)))?,
            DType::BF16 => read(bytes, |b| half::bf16::from_bits(u16::from_le_bytes(b)))?,
            DType::F32 => read(bytes, f32::from_le_bytes)?,
            DType::F64 => read(bytes, f64::from_le_bytes)?,
            DType::I64 => read(bytes, i64::from_le_bytes)?,
            DType::U8 => read(bytes, u8::from_le_bytes)?,
        };
        Ok(Tensor::from_storage(Storage::Cpu(storage), shape))
    }
    /// The elements' little-endian bytes in row-major order, the inverse of
    /// [`Tensor::from_le_bytes`] (what a safetensors writer stores).
    pub fn to_le_bytes(&self) -> Result<Vec<u8>> {
        fn write<T: CpuElement, const N: usize>(t: &Tensor, f: impl Fn(T) -> [u8; N]) -> Result<Vec<u8>> {
            let v = t.to_vec::<T>()?;
            let n = v
                .len()
                .checked_mul(N)
                .ok_or_else(|| Error::value("to_le_bytes", "byte count overflows usize"))?;
            let mut out = crate::cpu::pool::try_with_capacity(n).map_err(|e| e.at("to_le_bytes"))?;
            v.into_iter().for_each(|x| out.extend_from_slice(&f(x)));
            Ok(out)
        }
        match self.dtype() {
            DType::F16 => write(self, |x: half::f16| x.to_bits().to_le_bytes()),
            DType::BF16 => write(self, |x: half::bf16| x.to_bits().to_le_bytes()),
            DType::F32 => write(self, f32::to_le_bytes),
            DType::F64 => write(self, f64::to_le_bytes),
            DType::I64 => write(self, i64::to_le_bytes),
            DType::U8 => write(self, u8::to_le_bytes),
        }
    }
    /// A rank-0 tensor holding one value.
    pub fn scalar<T: CpuElement>(v: T) -> Tensor {
        Tensor::from_storage(Storage::Cpu(T::wrap(vec![v])), Shape::scalar())
    }
    /// A tensor of `shape` filled with `value` (converted to `dtype`), on `device`. A shape whose
    /// size overflows, or a buffer the allocator cannot provide, is an error naming `op`.
    fn filled(shape: Shape, value: f64, dtype: DType, device: Device, op: &'static str) -> Result<Tensor> {
        shape.checked_elem_count_for(dtype.size_in_bytes(), op)?;
        Ok(Tensor::from_storage(Storage::full(device, &shape, value, dtype, op)?, shape))
    }
    /// A tensor of `shape` filled with `value` (converted to `dtype`), on `device`. Errors when the
    /// shape's size overflows or the buffer cannot be allocated.
    pub fn full_on(shape: impl Into<Shape>, value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::filled(shape.into(), value, dtype, device, "full")
    }
    /// A CPU tensor of `shape` filled with `value` (errors as [`Tensor::full_on`]).
    pub fn full(shape: impl Into<Shape>, value: f64, dtype: DType) -> Result<Tensor> {
        Tensor::full_on(shape, value, dtype, Device::Cpu)
    }
    /// A CPU tensor of zeros (errors as [`Tensor::full_on`], naming `zeros`).
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::filled(shape.into(), 0.0, dtype, Device::Cpu, "zeros")
    }
    /// A CPU tensor of ones (errors as [`Tensor::full_on`], naming `ones`).
    pub fn ones(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::filled(shape.into(), 1.0, dtype, Device::Cpu, "ones")
    }
    /// Zeros with this tensor's shape, dtype and device. Fallible: an expanded view can have far
    /// more elements than memory holds.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::filled(self.shape().clone(), 0.0, self.dtype(), self.device(), "zeros_like")
    }
    /// Ones with this tensor's shape, dtype and device (fallible as [`Tensor::zeros_like`]).
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::filled(self.shape().clone(), 1.0, self.dtype(), self.device(), "ones_like")
    }
    /// `value` with this tensor's shape, dtype and device (fallible as [`Tensor::zeros_like`]).
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Tensor::filled(self.shape().clone(), value, self.dtype(), self.device(), "full_like")
    }
    /// A one-element tensor of this tensor's dtype and device, broadcastable against anything.
    pub fn scalar_like(&self, value: f64) -> Tensor {
        let storage = match self.device() {
            Device::Cpu => Storage::Cpu(match self.dtype() {
                DType::F32 => CpuStorage::F32(vec![value as f32]),
                DType::F64 => CpuStorage::F64(vec![value]),
                DType::I64 => CpuStorage::I64(vec![value as i64]),
                DType::U8 => CpuStorage::U8(vec![value as u8]),
                DType::F16 => CpuStorage::F16(vec![crate::dtype::f16_from_f64(value)]),
                DType::BF16 => CpuStorage::BF16(vec![crate::dtype::bf16_from_f64(value)]),
            }),
        };
        Tensor::from_storage(storage, Shape::scalar())
    }
    /// `start, start+step, ...` up to but excluding `end`, as in `torch.arange`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::value("arange", format!("invalid range {start}..{end} step {step}")));
        }
        let len = ((end - start) / step).ceil().max(0.0);
        // `as usize` saturates: a length past usize (or infinite, when `end - start` overflows
        // f64) must be an error, not a silently clamped tensor. `max` already turned NaN into 0.
        if len >= usize::MAX as f64 {
            return Err(Error::value(
                "arange",
                format!("range {start}..{end} step {step} has {len} elements, more than fit in usize"),
            ));
        }
        let n = len as usize;
        let shape = Shape::new(&[n]);
        shape.checked_elem_count_for(dtype.size_in_bytes(), "arange")?;
        Ok(Tensor::from_storage(Storage::arange(Device::Cpu, start, step, n, dtype)?, shape))
    }
    /// `steps` evenly spaced values from `start` to `end` inclusive.
    pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType) -> Result<Tensor> {
        if !start.is_finite() || !end.is_finite() {
            return Err(Error::value("linspace", format!("non-finite bounds {start}, {end}")));
        }
        Shape::new(&[steps]).checked_elem_count_for(DType::F64.size_in_bytes(), "linspace")?;
        let step = if steps > 1 { (end - start) / (steps - 1) as f64 } else { 0.0 };
        let mut v: Vec<f64> = crate::cpu::pool::try_with_capacity(steps).map_err(|e| e.at("linspace"))?;
        // The last value is `end` exactly, as in PyTorch, not `start + (steps-1)*step`.
        v.extend((0..steps).map(|i| {
            if i + 1 == steps && steps > 1 {
                end
            } else {
                start + step * i as f64
            }
        }));
        Tensor::from_vec(v, [steps])?.to_dtype(dtype)
    }
    /// The `n × n` identity matrix. Errors when `n × n` elements overflow or cannot be allocated.
    pub fn eye(n: usize, dtype: DType) -> Result<Tensor> {
        let shape = Shape::new(&[n, n]);
        shape.checked_elem_count_for(dtype.size_in_bytes(), "eye")?;
        // Built directly in `dtype`, with no f64 staging buffer.
        let mut storage = Storage::full(Device::Cpu, &shape, 0.0, dtype, "eye")?;
        // Element (i, i) sits at i * (n + 1), below n * n, which fits (checked above).
        let diag = (0..n).map(|i| i * (n + 1));
        let Storage::Cpu(cpu) = &mut storage;
        match cpu {
            CpuStorage::F32(v) => diag.for_each(|o| v[o] = 1.0),
            CpuStorage::F64(v) => diag.for_each(|o| v[o] = 1.0),
            CpuStorage::I64(v) => diag.for_each(|o| v[o] = 1),
            CpuStorage::U8(v) => diag.for_each(|o| v[o] = 1),
            CpuStorage::F16(v) => diag.for_each(|o| v[o] = half::f16::ONE),
            CpuStorage::BF16(v) => diag.for_each(|o| v[o] = half::bf16::ONE),
        }
        Ok(Tensor::from_storage(storage, shape))
    }

    // ---------------------------------------------------------------- accessors

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.layout.shape
    }
    /// The dimension sizes.
    pub fn dims(&self) -> &[usize] {
        self.0.layout.shape.dims()
    }
    /// Size of dimension `dim` (negative counts from the end).
    pub fn dim(&self, dim: isize) -> Result<usize> {
        Ok(self.dims()[self.shape().dim(dim, "dim")?])
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().rank()
    }
    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.shape().elem_count()
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }
    /// The device holding the values.
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }
    /// Shape, strides and offset into the storage.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    /// The backend buffer (shared with views).
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    /// This tensor's identity in the autodiff graph.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// True when gradients flow to or through this tensor.
    pub fn requires_grad_flag(&self) -> bool {
        self.0.requires_grad
    }
    /// True when this tensor was not produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.op.is_none()
    }
    pub(crate) fn op(&self) -> Option<&Op> {
        self.0.op.as_ref()
    }
    /// True when the elements are laid out row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// A leaf handle on the same values that does (or does not) require gradients.
    ///
    /// Asking for gradients is an error, as in PyTorch, on a non-leaf (a tensor recorded as the
    /// result of an op: the new leaf would silently cut it from its graph; call
    /// [`Tensor::detach`] first to start a new leaf deliberately) and on a non-float tensor
    /// (gradients only flow through the float dtypes: f16, bf16, f32 and f64). `false` always
    /// gives a detached leaf.
    pub fn requires_grad(&self, on: bool) -> Result<Tensor> {
        if on {
            if let Some(op) = self.op() {
                return Err(Error::value(
                    "requires_grad",
                    format!(
                        "the tensor of shape {} is the result of `{}`, not a leaf: gradients already flow through it; call detach() first to make a new leaf",
                        self.shape(),
                        op.name()
                    ),
                ));
            }
            if !self.dtype().is_float() {
                return Err(Error::DType {
                    op: "requires_grad",
                    expected: "f16, bf16, f32 or f64 (only floating-point tensors can require gradients)",
                    got: self.dtype(),
                });
            }
        }
        Ok(self.leaf(on))
    }
    /// A new leaf on the same values, with a fresh identity.
    fn leaf(&self, requires_grad: bool) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            requires_grad,
            op: None,
        }))
    }
    /// A view of the same values that is a graph node of its own (when tracked), so gradients can
    /// be asked for with respect to this use of the tensor alone: the function transforms
    /// differentiate through it, not through other uses of `self` a closure may have captured.
    pub(crate) fn alias(&self) -> Tensor {
        let op = self.track1().then(|| Op::Reshape(self.clone()));
        self.view(self.0.layout.clone(), op)
    }
    /// The same values cut off from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Tensor {
        if !self.0.requires_grad {
            return self.clone();
        }
        self.leaf(false)
    }
    /// The address of this tensor's first element in its buffer, as PyTorch's `data_ptr`: equal
    /// for two tensors that start at the same element of one buffer, and unchanged by an update
    /// written in place (see [`Tensor::fused_kernel_assign`]). For telling such cases apart, not
    /// for reading: the handle gives no access through it.
    ///
    /// ```
    /// use kiln_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], [2, 2])?;
    /// assert_eq!(a.t()?.data_ptr(), a.data_ptr());
    /// assert_eq!(a.narrow(0, 1, 1)?.data_ptr(), a.data_ptr() + 2 * 4);
    /// # Ok::<(), kiln_core::Error>(())
    /// ```
    pub fn data_ptr(&self) -> usize {
        let base = match &*self.0.storage {
            Storage::Cpu(c) => c.base_addr(),
        };
        base + self.0.layout.offset * self.dtype().size_in_bytes()
    }
    /// This tensor's buffer, writable, when this handle is the only one on it (no clone, no
    /// view, no graph node shares the tensor or its storage) and the buffer holds exactly its
    /// elements in order. Writing through it changes no other tensor's values.
    pub(crate) fn unique_whole_storage(&mut self) -> Option<&mut Storage> {
        if !self.holds_whole_buffer() {
            return None;
        }
        Arc::get_mut(&mut Arc::get_mut(&mut self.0)?.storage)
    }
    /// True when this tensor's buffer holds exactly its elements, in row-major order.
    pub(crate) fn holds_whole_buffer(&self) -> bool {
        self.0.layout.offset == 0 && self.0.layout.is_contiguous() && self.0.storage.elem_count() == self.elem_count()
    }
    /// Turns this handle into a new leaf over the same values: a new identity, no graph, not
    /// requiring grad (what an op outside autodiff returns).
    pub(crate) fn become_new_leaf(&mut self) {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => {
                inner.id = TensorId::new();
                inner.requires_grad = false;
                inner.op = None;
            }
            None => *self = self.leaf(false),
        }
    }
    /// Same values, keeping the identity: used by [`crate::Var`] updates.
    pub(crate) fn with_id(storage: Arc<Storage>, layout: Layout, id: TensorId, requires_grad: bool) -> Tensor {
        Tensor(Arc::new(Inner {
            id,
            storage,
            layout,
            requires_grad,
            op: None,
        }))
    }

    /// Copies the values out, row-major. The dtype must be `T`.
    pub fn to_vec<T: CpuElement>(&self) -> Result<Vec<T>> {
        let wrong = || Error::DType {
            op: "to_vec",
            expected: T::DTYPE.as_str(),
            got: self.dtype(),
        };
        let cpu = self.0.storage.as_cpu().ok_or_else(wrong)?;
        let l = &self.0.layout;
        let data = T::slice(cpu).ok_or_else(wrong)?;
        match l.contiguous_offset() {
            Some(o) => Ok(data[o..o + l.shape.elem_count()].to_vec()),
            None => crate::cpu::map1(data, l, |v| v).map_err(|e| e.at("to_vec")),
        }
    }
    /// The values as f64, whatever the dtype (convenient for tests and printing).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.to_dtype(DType::F64)?.to_vec::<f64>()
    }
    /// The rows of a rank-2 tensor.
    pub fn to_vec2<T: CpuElement>(&self) -> Result<Vec<Vec<T>>> {
        if self.rank() != 2 {
            return Err(Error::shape(
                "to_vec2",
                format!("expected a rank-2 tensor, got shape {}", self.shape()),
            ));
        }
        let (rows, cols) = (self.dims()[0], self.dims()[1]);
        let v = self.to_vec::<T>()?;
        Ok(if cols == 0 {
            // No elements, but one Vec per row: a [2^40, 0] tensor must fail, not abort.
            let mut out: Vec<Vec<T>> = crate::cpu::pool::try_with_capacity(rows).map_err(|e| e.at("to_vec2"))?;
            out.resize_with(rows, Vec::new);
            out
        } else {
            v.chunks(cols).map(|c| c.to_vec()).collect()
        })
    }
    /// The single value of a one-element tensor.
    pub fn to_scalar<T: CpuElement>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return Err(Error::shape(
                "to_scalar",
                format!("expected one element, got shape {}", self.shape()),
            ));
        }
        Ok(self.to_vec::<T>()?[0])
    }
    /// The single value of a one-element tensor as f64, whatever the dtype.
    pub fn item(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return Err(Error::shape("item", format!("expected one element, got shape {}", self.shape())));
        }
        Ok(self.to_vec_f64()?[0])
    }

    // ---------------------------------------------------------------- views

    fn track1(&self) -> bool {
        self.0.requires_grad && autograd::is_grad_enabled()
    }

    /// The same values with another shape of equal element count. A view when the layout allows,
    /// otherwise a copy.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.reshape_op(shape.into(), "reshape")
    }
    /// [`Tensor::reshape`], reporting errors as `op`'s. The target's element count is checked:
    /// a plain product could wrap to 0 and let an empty tensor take a huge shape whose strides
    /// point far outside its buffer.
    fn reshape_op(&self, shape: Shape, op: &'static str) -> Result<Tensor> {
        if shape.checked_elem_count_for(self.dtype().size_in_bytes(), op)? != self.elem_count() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot reshape {} ({} elements) into {} ({} elements)",
                    self.shape(),
                    self.elem_count(),
                    shape,
                    shape.elem_count()
                ),
            ));
        }
        if shape == *self.shape() {
            return Ok(self.clone());
        }
        let rec = self.track1().then(|| Op::Reshape(self.clone()));
        if self.is_contiguous() {
            let layout = Layout {
                strides: shape.contiguous_strides(),
                shape,
                offset: self.0.layout.offset,
            };
            return Ok(self.view(layout, rec));
        }
        let storage = self.0.storage.copy_strided(&self.0.layout, op)?;
        Tensor::make(storage, shape, rec, op)
    }
    /// Reshape where one dimension may be `-1`, inferred from the others.
    pub fn view_as(&self, dims: &[isize]) -> Result<Tensor> {
        let mut infer = None;
        let mut known = 1usize;
        for (i, &d) in dims.iter().enumerate() {
            if d == -1 {
                if infer.replace(i).is_some() {
                    return Err(Error::shape("reshape", format!("more than one -1 in {dims:?}")));
                }
            } else if d < 0 {
                return Err(Error::shape("reshape", format!("negative size in {dims:?}")));
            } else {
                known = known
                    .checked_mul(d as usize)
                    .ok_or_else(|| Error::shape("reshape", format!("the sizes in {dims:?} multiply past usize")))?;
            }
        }
        let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !self.elem_count().is_multiple_of(known) {
                return Err(Error::shape(
                    "reshape",
                    format!("cannot infer -1 in {dims:?} for {} elements", self.elem_count()),
                ));
            }
            out[i] = self.elem_count() / known;
        }
        self.reshape(out)
    }
    /// Collapses dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape([1]);
        }
        let s = self.shape().dim(start, "flatten")?;
        let e = self.shape().dim(end, "flatten")?;
        if s > e {
            return Err(Error::shape("flatten", format!("start dim {start} comes after end dim {end}")));
        }
        let d = self.dims();
        let mut out: Vec<usize> = d[..s].to_vec();
        // A sub-product of a valid shape fits (it is at most the product of the non-zero dims).
        let merged = d[s..=e].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        out.push(merged.ok_or_else(|| Error::shape("flatten", format!("dims {s}..={e} of {} multiply past usize", self.shape())))?);
        out.extend_from_slice(&d[e + 1..]);
        self.reshape(out)
    }
    /// All elements as one dimension.
    pub fn flatten_all(&self) -> Result<Tensor> {
        self.reshape([self.elem_count()])
    }
    /// Reorders the dimensions: result dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::shape(
                "permute",
                format!("{perm:?} is not a permutation of the {r} dims of {}", self.shape()),
            ));
        }
        let l = &self.0.layout;
        let layout = Layout {
            shape: Shape(perm.iter().map(|&p| l.shape.0[p]).collect()),
            strides: perm.iter().map(|&p| l.strides[p]).collect(),
            offset: l.offset,
        };
        let op = self.track1().then(|| Op::Permute(self.clone(), perm.iter().copied().collect()));
        Ok(self.view(layout, op))
    }
    /// Swaps two dimensions.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = self.shape().dim(d0, "transpose")?;
        let b = self.shape().dim(d1, "transpose")?;
        if a == b {
            return Ok(self.clone());
        }
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
    /// Transpose of a matrix (the last two dims).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::shape("t", format!("needs at least 2 dims, got shape {}", self.shape())));
        }
        self.transpose(-2, -1)
    }
    /// `len` entries of dimension `dim` starting at `start`, as a view.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.shape().dim(dim, "narrow")?;
        let size = self.dims()[d];
        if start.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::shape(
                "narrow",
                format!(
                    "range {start}..{} is outside dimension {d} of size {size} (shape {})",
                    start.saturating_add(len),
                    self.shape()
                ),
            ));
        }
        if start == 0 && len == size {
            return Ok(self.clone());
        }
        let l = &self.0.layout;
        let mut shape = l.shape.clone();
        shape.0[d] = len;
        // In bounds for a valid layout (start < size), but checked: the view's offset is what
        // later kernels trust to index the buffer.
        let skip = if len > 0 { start.checked_mul(l.strides[d]) } else { Some(0) };
        let offset = skip.and_then(|k| l.offset.checked_add(k)).ok_or_else(|| {
            Error::shape(
                "narrow",
                format!(
                    "the offset of range {start}.. of dimension {d} (shape {}) overflows usize",
                    self.shape()
                ),
            )
        })?;
        let layout = Layout {
            shape,
            strides: l.strides.clone(),
            offset,
        };
        let op = self.track1().then(|| Op::Narrow(self.clone(), d, start));
        Ok(self.view(layout, op))
    }
    /// Index `index` of dimension `dim`, with that dimension removed.
    pub fn select(&self, dim: isize, index: usize) -> Result<Tensor> {
        let d = self.shape().dim(dim, "select")?;
        let size = self.dims()[d];
        if index >= size {
            return Err(Error::Index {
                op: "select",
                index: i64::try_from(index).unwrap_or(i64::MAX),
                dim: d,
                size,
            });
        }
        self.narrow(d as isize, index, 1)?.squeeze(d as isize)
    }
    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.shape().dim(dim, "squeeze")?;
        if self.dims()[d] != 1 {
            return Err(Error::shape(
                "squeeze",
                format!("dimension {d} of shape {} has size {}, not 1", self.shape(), self.dims()[d]),
            ));
        }
        let mut dims: Vec<usize> = self.dims().to_vec();
        dims.remove(d);
        self.reshape_view(dims)
    }
    /// Inserts a dimension of size 1 at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.shape().new_dim(dim, "unsqueeze")?;
        let mut dims: Vec<usize> = self.dims().to_vec();
        dims.insert(d, 1);
        self.reshape_view(dims)
    }
    /// Reshape that only inserts or removes size-1 dims: always a view, whatever the strides.
    fn reshape_view(&self, dims: Vec<usize>) -> Result<Tensor> {
        let l = &self.0.layout;
        let mut strides: Dims = Dims::new();
        let mut src = l.shape.0.iter().zip(l.strides.iter()).filter(|(&d, _)| d != 1).peekable();
        for &d in &dims {
            if d == 1 {
                strides.push(0);
            } else {
                let (&sd, &st) = src.next().expect("same non-unit dims");
                debug_assert_eq!(sd, d);
                strides.push(st);
            }
        }
        let layout = Layout {
            shape: Shape::new(&dims),
            strides,
            offset: l.offset,
        };
        let op = self.track1().then(|| Op::Reshape(self.clone()));
        Ok(self.view(layout, op))
    }
    /// Broadcasts to `shape` (numpy rules) without copying: stretched dims get stride 0.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape == *self.shape() {
            return Ok(self.clone());
        }
        let b = self.shape().broadcast(&shape, "broadcast_to")?;
        // The view allocates nothing, but ops on it allocate its full size, so it must fit.
        b.checked_elem_count_for(self.dtype().size_in_bytes(), "broadcast_to")?;
        if b != shape {
            return Err(Error::shape(
                "broadcast_to",
                format!("cannot broadcast {} to {}", self.shape(), shape),
            ));
        }
        let layout = Layout {
            strides: self.0.layout.broadcast_strides(&shape),
            shape,
            offset: self.0.layout.offset,
        };
        let op = self.track1().then(|| Op::Expand(self.clone()));
        Ok(self.view(layout, op))
    }
    /// Alias of [`Tensor::broadcast_to`], PyTorch's name.
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.broadcast_to(shape)
    }
    /// A row-major copy, or the tensor itself when it already is one.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let storage = self.0.storage.copy_strided(&self.0.layout, "contiguous")?;
        let op = self.track1().then(|| Op::Copy(self.clone()));
        Tensor::make(storage, self.shape().clone(), op, "contiguous")
    }
    /// Converts the elements to another dtype (gradients flow between float dtypes).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        // The byte size changes with the dtype (an expanded u8 view may not fit as f64).
        self.shape().checked_elem_count_for(dtype.size_in_bytes(), "to_dtype")?;
        let storage = self.0.storage.cast(&self.0.layout, dtype)?;
        let op = (self.track1() && dtype.is_float()).then(|| Op::Cast(self.clone()));
        Tensor::make(storage, self.shape().clone(), op, "to_dtype")
    }
    /// Moves the values to `device` (only the CPU exists today, so this is the identity).
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        match device {
            Device::Cpu => Ok(self.clone()),
        }
    }
}

pub(crate) type SmallDims = SmallVec<[usize; 4]>;

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor[{}, {}", self.shape(), self.dtype())?;
        if self.0.requires_grad {
            write!(f, ", requires_grad")?;
        }
        write!(f, "]")
    }
}

#[allow(dead_code)]
fn _element_bound<T: Element>() {}
