//! The backend interface: devices and the op descriptions every backend implements.
//!
//! Autodiff and the tensor API talk only to [`Storage`]; each variant of it is one backend, a
//! type implementing [`BackendStorage`], the list of kernels the layers above need. Adding a
//! CUDA backend means implementing that trait, adding a variant here (and a [`Device`]), and
//! adding one line to the conformance suite (`crates/kiln-core/tests/backend_conformance.rs`);
//! nothing above changes.

use crate::cpu::CpuStorage;
use crate::{DType, Layout, Result, Shape};

/// Where a tensor's memory lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory, computed by kiln's CPU kernels.
    #[default]
    Cpu,
}

/// Elementwise maps of one float tensor. Parameters are held as f64 and converted per dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Log1p,
    Sqrt,
    Rsqrt,
    Square,
    Recip,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Erf,
    Expm1,
    Log2,
    Log10,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Floor,
    Ceil,
    Round,
    Trunc,
    /// -1, 0 or 1 (0 at 0); not differentiable, used inside derivative formulas.
    Sign,
    /// `x * mul + add`.
    Affine {
        mul: f64,
        add: f64,
    },
    /// `x ^ e` for a constant exponent.
    PowScalar(f64),
    /// `min(max(x, lo), hi)`.
    Clamp {
        lo: f64,
        hi: f64,
    },
    /// 1 where `lo <= x <= hi`, else 0 (the clamp's derivative mask).
    InRange {
        lo: f64,
        hi: f64,
    },
}

impl UnaryOp {
    /// The user-facing name, used in errors and anomaly reports.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Erf => "erf",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Log2 => "log2",
            UnaryOp::Log10 => "log10",
            UnaryOp::Tan => "tan",
            UnaryOp::Asin => "asin",
            UnaryOp::Acos => "acos",
            UnaryOp::Atan => "atan",
            UnaryOp::Sinh => "sinh",
            UnaryOp::Cosh => "cosh",
            UnaryOp::Asinh => "asinh",
            UnaryOp::Acosh => "acosh",
            UnaryOp::Atanh => "atanh",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
            UnaryOp::Trunc => "trunc",
            UnaryOp::Sign => "sign",
            UnaryOp::Affine { .. } => "affine",
            UnaryOp::PowScalar(_) => "powf",
            UnaryOp::Clamp { .. } => "clamp",
            UnaryOp::InRange { .. } => "in_range",
        }
    }
}

/// Elementwise ops of two broadcast operands.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    /// `a + alpha * b` in one pass (an optimiser's update).
    AddScaled(f64),
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
    /// Four-quadrant `atan(a / b)`.
    Atan2,
    /// `b` where `a > 0` (or is NaN), zero where `a <= 0`: ReLU's backward with `a` the ReLU's
    /// input and `b` the output gradient (PyTorch's `threshold_backward` at 0), in one pass.
    ReluGrad,
}

impl BinaryOp {
    /// The user-facing name.
    pub fn name(&self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::AddScaled(_) => "add_scaled",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::ReluGrad => "relu_backward",
        }
    }
}

/// Comparisons; results are u8 masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The user-facing name.
    pub fn name(&self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// Reductions over a set of dimensions (results keep the reduced dims with size 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

/// Geometry of a 2-d sliding window (kernel, stride, padding, dilation), as in `torch.nn.Unfold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window2d {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit zero padding on each side.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
}

/// How a batch's sliding-window patches are laid out (see [`crate::Tensor::unfold2d`] and
/// [`crate::Tensor::unfold2d_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchLayout {
    /// `[N, C·kh·kw, L]`: one patch matrix per sample (`torch.nn.functional.unfold`).
    PerSample,
    /// `[C·kh·kw, N, L]`: the whole batch as one matrix of `N·L` columns, so that a convolution is
    /// one matrix product instead of `N` small ones.
    Batch,
}

/// Window geometry whose arithmetic does not fit in `usize` (a huge padding or dilation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOverflow;

impl Window2d {
    /// Number of window positions along a dimension of size `size`, or `None` when the kernel does
    /// not fit or the geometry overflows (see [`Window2d::checked_out_len`] to tell them apart).
    pub fn out_len(&self, size: usize, axis: usize) -> Option<usize> {
        self.checked_out_len(size, axis).ok().flatten()
    }
    /// Number of window positions along a dimension of size `size` (`axis` 0 is the height, 1 the
    /// width): `Ok(None)` when the kernel does not fit the padded size, an error when the padded
    /// size `size + 2 * padding` or the kernel span `dilation * (kernel - 1) + 1` overflows `usize`,
    /// or the kernel or stride is 0. Every later tap coordinate `o * stride + i * dilation` is below
    /// the padded size, so it cannot overflow once this succeeds.
    pub fn checked_out_len(&self, size: usize, axis: usize) -> std::result::Result<Option<usize>, WindowOverflow> {
        let (k, s, p, d) = if axis == 0 {
            (self.kernel.0, self.stride.0, self.padding.0, self.dilation.0)
        } else {
            (self.kernel.1, self.stride.1, self.padding.1, self.dilation.1)
        };
        if k == 0 || s == 0 {
            return Err(WindowOverflow);
        }
        let span = d.checked_mul(k - 1).and_then(|v| v.checked_add(1)).ok_or(WindowOverflow)?;
        let padded = p.checked_mul(2).and_then(|v| v.checked_add(size)).ok_or(WindowOverflow)?;
        Ok(padded.checked_sub(span).map(|r| r / s + 1))
    }
}

/// The contract of a backend's buffer: every kernel the tensor and autodiff layers need.
///
/// The tensor layer never computes on elements itself: each op checks shapes and dtypes, builds
/// the output shape, and calls one of these methods on the operands' storage (through
/// [`Storage`], which dispatches to the backend the operands live on). So a backend is one type
/// implementing this trait; autodiff, which only composes tensor ops, needs nothing more. The
/// conformance suite in `crates/kiln-core/tests/backend_conformance.rs` checks an implementation
/// against naive references, once per device.
///
/// Conventions every method follows:
/// * operands come with their [`Layout`] (shape, strides, offset: views are never copied before
///   a kernel), may be non-contiguous and may broadcast (stride 0);
/// * the result is a new buffer holding exactly the output's elements, contiguous, row-major;
/// * the caller has validated shapes, dtypes and indices' ranges where the tensor op documents
///   it; a kernel still returns an error (naming the op) for what only it can detect, such as a
///   failed allocation or an out-of-range index value;
/// * float arithmetic is per element what the CPU backend does (f16/bf16 computed in f32 and
///   rounded once per op), so results agree across backends up to the documented tolerances.
///
/// Methods without `self` create storage on the backend's device or combine several buffers.
/// The trait is used through static dispatch (it has generic methods), as candle's
/// `BackendStorage` is.
pub trait BackendStorage: Sized + Clone + Send + Sync + std::fmt::Debug {
    /// The device this storage lives on.
    fn device(&self) -> Device;
    /// The element type.
    fn dtype(&self) -> DType;
    /// How many elements the buffer holds (a view may use fewer).
    fn elem_count(&self) -> usize;
    /// `shape` filled with `value` (converted to `dtype`); `op` names the caller in errors.
    fn full(shape: &Shape, value: f64, dtype: DType, op: &'static str) -> Result<Self>;
    /// `n` values `start + i·step` in `dtype`.
    fn arange(start: f64, step: f64, n: usize, dtype: DType) -> Result<Self>;
    /// An elementwise map of a float buffer.
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self>;
    /// An elementwise op of two buffers of one dtype broadcast to `out`.
    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp, out: &Shape) -> Result<Self>;
    /// An elementwise comparison broadcast to `out`, as a u8 buffer of 0 and 1.
    fn cmp(&self, l: &Layout, rhs: &Self, rl: &Layout, op: CmpOp, out: &Shape) -> Result<Self>;
    /// `mask ? a : b` elementwise (mask u8), broadcast to `out`.
    #[allow(clippy::too_many_arguments)]
    fn where_cond(mask: &Self, ml: &Layout, a: &Self, al: &Layout, b: &Self, bl: &Layout, out: &Shape) -> Result<Self>;
    /// A reduction over `dims` (sorted, distinct): one value per combination of the other
    /// dimensions, in row-major order. u8 masks are summed as i64 counts.
    fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Self>;
    /// The i64 index of the first maximum (`max`) or minimum along `dim` (NaN counts as the
    /// largest), one per combination of the other dimensions.
    fn arg_reduce(&self, l: &Layout, dim: usize, max: bool) -> Result<Self>;
    /// Batched matrix product of `[.., m, k]` and `[.., k, n]` operands whose batch dimensions
    /// broadcast to `batch`.
    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout, batch: &Shape) -> Result<Self>;
    /// A contiguous copy; `op` names the caller in an allocation error.
    fn copy_strided(&self, l: &Layout, op: &'static str) -> Result<Self>;
    /// The elements converted to `dtype`.
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self>;
    /// The slices at the i64 indices `idx` along `dim`.
    fn index_select(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout) -> Result<Self>;
    /// A copy of `self` with `src`'s slices added at the indices `idx` along `dim`.
    #[allow(clippy::too_many_arguments)]
    fn index_add(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self>;
    /// `out[i][j] = self[i][idx[i][j]]` along `dim` (the shape of `idx`).
    fn gather(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout) -> Result<Self>;
    /// A copy of `self` with `src` added at the positions `idx` gives along `dim`.
    #[allow(clippy::too_many_arguments)]
    fn scatter_add(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self>;
    /// A copy of `self` with `src` written at the positions `idx` gives along `dim`.
    #[allow(clippy::too_many_arguments)]
    fn scatter(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self>;
    /// The i64 positions of each slice's `k` first elements along `dim` in (stable) sorted order.
    fn sort_indices(&self, l: &Layout, dim: usize, descending: bool, k: usize) -> Result<Self>;
    /// The parts concatenated along `dim` into `out`.
    fn cat(parts: &[(&Self, &Layout)], dim: usize, out: &Shape) -> Result<Self>;
    /// Inclusive prefix sums along `dim`.
    fn cumsum(&self, l: &Layout, dim: usize) -> Result<Self>;
    /// Constant padding into `out`: `pads[d] = (before, after)` elements of `value` around
    /// dimension `d` (`pads` may be shorter than the rank: trailing dimensions unpadded).
    fn pad(&self, l: &Layout, pads: &[(usize, usize)], value: f64, out: &Shape) -> Result<Self>;
    /// Sliding-window patches of an `[N, C, H, W]` input as `[N, C·kh·kw, L]`
    /// (`torch.nn.functional.unfold`) or, in the [`PatchLayout::Batch`] layout, `[C·kh·kw, N, L]`:
    /// row `c·kh·kw + i·kw + j` holds tap `(i, j)` of channel `c` for each of the `L` window
    /// positions.
    fn im2col(&self, l: &Layout, w: &Window2d, layout: PatchLayout) -> Result<Self>;
    /// The adjoint of `im2col` (`fold`): columns in `layout` (`[N, channels·kh·kw, L]` or
    /// `[channels·kh·kw, N, L]`) summed back into an `[N, channels, out_hw.0, out_hw.1]` image.
    fn col2im(&self, l: &Layout, w: &Window2d, channels: usize, out_hw: (usize, usize), layout: PatchLayout) -> Result<Self>;
    /// The convolution (cross-correlation) of `self` `[N, C, H, W]` by `weight` `[O, C, kh, kw]`
    /// over windows `w`, plus `bias` `[O]` on each output channel when given: `[N, O, oh, ow]`.
    fn conv2d(&self, l: &Layout, weight: &Self, wl: &Layout, bias: Option<(&Self, &Layout)>, w: &Window2d) -> Result<Self>;
    /// The gradient of [`BackendStorage::conv2d`] with respect to its weight, from the input
    /// `self` `[N, C, H, W]` and the output's gradient `grad` `[N, O, oh, ow]`: `[O, C, kh, kw]`.
    fn conv2d_weight(&self, l: &Layout, grad: &Self, gl: &Layout, w: &Window2d) -> Result<Self>;
    /// The gradient of [`BackendStorage::conv2d`] with respect to its input, from the weight
    /// `self` `[O, C, kh, kw]` and the output's gradient `grad` `[N, O, oh, ow]`:
    /// `[N, C, in_hw.0, in_hw.1]`.
    fn conv2d_input(&self, l: &Layout, grad: &Self, gl: &Layout, w: &Window2d, in_hw: (usize, usize)) -> Result<Self>;
    /// Window maxima and the flat in-plane index of each.
    fn max_pool2d(&self, l: &Layout, w: &Window2d) -> Result<(Self, Self)>;
    /// True when every element is finite (always true for integer dtypes).
    fn all_finite(&self, l: &Layout) -> bool;
    /// Runs an elementwise [`Program`](crate::fused::Program) over contiguous buffers of one
    /// float dtype and length, each holding exactly its elements (see
    /// [`crate::Tensor::fused_elementwise`]); one buffer per program output.
    fn fused_elementwise(inputs: &[&Self], program: &crate::fused::Program) -> Result<Vec<Self>>;
    /// Runs a fused [`Kernel`](crate::fused::Kernel) over buffers as `fused_elementwise` runs its
    /// program. The default records the kernel and runs the program, which defines the results;
    /// a backend overrides it to evaluate kernels natively (the CPU backend does).
    fn fused_kernel<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(inputs: [&Self; I], kernel: &K) -> Result<[Self; O]> {
        let outs = Self::fused_elementwise(&inputs, &kernel.program())?;
        let n = outs.len();
        outs.try_into()
            .map_err(|_| crate::Error::value("fused_kernel", format!("the program gave {n} outputs for a kernel with {O}")))
    }
    /// Runs a fused [`Kernel`](crate::fused::Kernel) whose first `O` inputs are its outputs'
    /// buffers: `targets[j]` holds input `j` before and output `j` after, and `rest` are inputs
    /// `O..I` (`O + rest.len() == I`). The buffers are as for `fused_kernel`. Nothing is written
    /// when it fails. The default runs `fused_kernel` and moves its outputs into the targets; a
    /// backend overrides it to write them in place (the CPU backend does).
    fn fused_kernel_assign<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(
        targets: [&mut Self; O],
        rest: &[&Self],
        kernel: &K,
    ) -> Result<()> {
        let ins: Vec<&Self> = targets.iter().map(|t| &**t).chain(rest.iter().copied()).collect();
        let n = ins.len();
        let ins: [&Self; I] = ins
            .try_into()
            .map_err(|_| crate::Error::value("fused_kernel_assign", format!("{n} inputs given for a kernel with {I}")))?;
        let outs = Self::fused_kernel(ins, kernel)?;
        for (t, o) in targets.into_iter().zip(outs) {
            *t = o;
        }
        Ok(())
    }
}

/// A buffer on one of the backends: each variant holds one [`BackendStorage`] implementation and
/// every method dispatches to it, so the tensor layer is written once against the trait's contract.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
}

impl Storage {
    /// The device this storage lives on.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(s) => BackendStorage::device(s),
        }
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => BackendStorage::dtype(s),
        }
    }
    /// How many elements the buffer holds.
    pub(crate) fn elem_count(&self) -> usize {
        match self {
            Storage::Cpu(s) => BackendStorage::elem_count(s),
        }
    }
    /// The CPU buffer, if this storage is on the CPU.
    pub fn as_cpu(&self) -> Option<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Some(s),
        }
    }
    /// `shape` (validated by the caller) filled with `value`; `op` names the caller in errors.
    pub(crate) fn full(device: Device, shape: &Shape, value: f64, dtype: DType, op: &'static str) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(<CpuStorage as BackendStorage>::full(shape, value, dtype, op)?)),
        }
    }
    pub(crate) fn arange(device: Device, start: f64, step: f64, n: usize, dtype: DType) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(<CpuStorage as BackendStorage>::arange(start, step, n, dtype)?)),
        }
    }
    pub(crate) fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::unary(s, l, op)?)),
        }
    }
    pub(crate) fn binary(&self, l: &Layout, rhs: &Storage, rl: &Layout, op: BinaryOp, out: &Shape) -> Result<Storage> {
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => Ok(Storage::Cpu(BackendStorage::binary(a, l, b, rl, op, out)?)),
        }
    }
    pub(crate) fn cmp(&self, l: &Layout, rhs: &Storage, rl: &Layout, op: CmpOp, out: &Shape) -> Result<Storage> {
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => Ok(Storage::Cpu(BackendStorage::cmp(a, l, b, rl, op, out)?)),
        }
    }
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn where_cond(
        mask: &Storage,
        ml: &Layout,
        a: &Storage,
        al: &Layout,
        b: &Storage,
        bl: &Layout,
        out: &Shape,
    ) -> Result<Storage> {
        match (mask, a, b) {
            (Storage::Cpu(m), Storage::Cpu(a), Storage::Cpu(b)) => {
                Ok(Storage::Cpu(<CpuStorage as BackendStorage>::where_cond(m, ml, a, al, b, bl, out)?))
            }
        }
    }
    pub(crate) fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::reduce(s, l, dims, op)?)),
        }
    }
    pub(crate) fn arg_reduce(&self, l: &Layout, dim: usize, max: bool) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::arg_reduce(s, l, dim, max)?)),
        }
    }
    pub(crate) fn matmul(&self, l: &Layout, rhs: &Storage, rl: &Layout, batch: &Shape) -> Result<Storage> {
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => Ok(Storage::Cpu(BackendStorage::matmul(a, l, b, rl, batch)?)),
        }
    }
    /// A contiguous copy; `op` names the caller in an allocation error.
    pub(crate) fn copy_strided(&self, l: &Layout, op: &'static str) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::copy_strided(s, l, op)?)),
        }
    }
    pub(crate) fn cast(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::cast(s, l, dtype)?)),
        }
    }
    pub(crate) fn index_select(&self, l: &Layout, dim: usize, idx: &Storage, il: &Layout) -> Result<Storage> {
        match (self, idx) {
            (Storage::Cpu(s), Storage::Cpu(i)) => Ok(Storage::Cpu(BackendStorage::index_select(s, l, dim, i, il)?)),
        }
    }
    pub(crate) fn index_add(&self, l: &Layout, dim: usize, idx: &Storage, il: &Layout, src: &Storage, sl: &Layout) -> Result<Storage> {
        match (self, idx, src) {
            (Storage::Cpu(s), Storage::Cpu(i), Storage::Cpu(v)) => Ok(Storage::Cpu(BackendStorage::index_add(s, l, dim, i, il, v, sl)?)),
        }
    }
    pub(crate) fn gather(&self, l: &Layout, dim: usize, idx: &Storage, il: &Layout) -> Result<Storage> {
        match (self, idx) {
            (Storage::Cpu(s), Storage::Cpu(i)) => Ok(Storage::Cpu(BackendStorage::gather(s, l, dim, i, il)?)),
        }
    }
    pub(crate) fn scatter_add(&self, l: &Layout, dim: usize, idx: &Storage, il: &Layout, src: &Storage, sl: &Layout) -> Result<Storage> {
        match (self, idx, src) {
            (Storage::Cpu(s), Storage::Cpu(i), Storage::Cpu(v)) => Ok(Storage::Cpu(BackendStorage::scatter_add(s, l, dim, i, il, v, sl)?)),
        }
    }
    pub(crate) fn scatter(&self, l: &Layout, dim: usize, idx: &Storage, il: &Layout, src: &Storage, sl: &Layout) -> Result<Storage> {
        match (self, idx, src) {
            (Storage::Cpu(s), Storage::Cpu(i), Storage::Cpu(v)) => Ok(Storage::Cpu(BackendStorage::scatter(s, l, dim, i, il, v, sl)?)),
        }
    }
    /// The i64 positions of each slice's `k` first elements along `dim` in (stable) sorted order.
    pub(crate) fn sort_indices(&self, l: &Layout, dim: usize, descending: bool, k: usize) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::sort_indices(s, l, dim, descending, k)?)),
        }
    }
    pub(crate) fn cat(parts: &[(&Storage, &Layout)], dim: usize, out: &Shape) -> Result<Storage> {
        let cpu: Vec<(&CpuStorage, &Layout)> = parts
            .iter()
            .map(|(s, l)| match s {
                Storage::Cpu(c) => (c, *l),
            })
            .collect();
        Ok(Storage::Cpu(<CpuStorage as BackendStorage>::cat(&cpu, dim, out)?))
    }
    pub(crate) fn cumsum(&self, l: &Layout, dim: usize) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::cumsum(s, l, dim)?)),
        }
    }
    pub(crate) fn pad(&self, l: &Layout, pads: &[(usize, usize)], value: f64, out: &Shape) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::pad(s, l, pads, value, out)?)),
        }
    }
    pub(crate) fn im2col(&self, l: &Layout, w: &Window2d, layout: PatchLayout) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::im2col(s, l, w, layout)?)),
        }
    }
    /// Runs an elementwise [`Program`](crate::fused::Program) over contiguous buffers of one
    /// float dtype and length, each holding exactly its elements (see
    /// [`crate::Tensor::fused_elementwise`]); returns one buffer per program output.
    pub(crate) fn fused_elementwise(inputs: &[&Storage], program: &crate::fused::Program) -> Result<Vec<Storage>> {
        let cpu: Vec<&CpuStorage> = inputs
            .iter()
            .map(|s| match s {
                Storage::Cpu(c) => c,
            })
            .collect();
        Ok(<CpuStorage as BackendStorage>::fused_elementwise(&cpu, program)?
            .into_iter()
            .map(Storage::Cpu)
            .collect())
    }
    /// Runs a fused [`Kernel`](crate::fused::Kernel) over contiguous buffers as
    /// [`Storage::fused_elementwise`] runs its program (see [`crate::Tensor::fused_kernel`]).
    pub(crate) fn fused_kernel<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(
        inputs: [&Storage; I],
        kernel: &K,
    ) -> Result<[Storage; O]> {
        let cpu = inputs.map(|s| match s {
            Storage::Cpu(c) => c,
        });
        Ok(<CpuStorage as BackendStorage>::fused_kernel(cpu, kernel)?.map(Storage::Cpu))
    }
    /// Runs a fused [`Kernel`](crate::fused::Kernel) with its outputs written over its first
    /// `O` inputs (see [`BackendStorage::fused_kernel_assign`]).
    pub(crate) fn fused_kernel_assign<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(
        targets: [&mut Storage; O],
        rest: &[&Storage],
        kernel: &K,
    ) -> Result<()> {
        let targets = targets.map(|s| match s {
            Storage::Cpu(c) => c,
        });
        let rest: Vec<&CpuStorage> = rest
            .iter()
            .map(|s| match s {
                Storage::Cpu(c) => c,
            })
            .collect();
        <CpuStorage as BackendStorage>::fused_kernel_assign(targets, &rest, kernel)
    }
    pub(crate) fn conv2d(
        &self,
        l: &Layout,
        weight: &Storage,
        wl: &Layout,
        bias: Option<(&Storage, &Layout)>,
        w: &Window2d,
    ) -> Result<Storage> {
        let bias = bias.map(|(b, bl)| match b {
            Storage::Cpu(b) => (b, bl),
        });
        match (self, weight) {
            (Storage::Cpu(x), Storage::Cpu(k)) => Ok(Storage::Cpu(BackendStorage::conv2d(x, l, k, wl, bias, w)?)),
        }
    }
    pub(crate) fn conv2d_weight(&self, l: &Layout, grad: &Storage, gl: &Layout, w: &Window2d) -> Result<Storage> {
        match (self, grad) {
            (Storage::Cpu(x), Storage::Cpu(g)) => Ok(Storage::Cpu(BackendStorage::conv2d_weight(x, l, g, gl, w)?)),
        }
    }
    pub(crate) fn conv2d_input(&self, l: &Layout, grad: &Storage, gl: &Layout, w: &Window2d, in_hw: (usize, usize)) -> Result<Storage> {
        match (self, grad) {
            (Storage::Cpu(k), Storage::Cpu(g)) => Ok(Storage::Cpu(BackendStorage::conv2d_input(k, l, g, gl, w, in_hw)?)),
        }
    }
    /// Window maxima and the flat in-plane index of each (see [`crate::Tensor::max_pool2d_with_indices`]).
    pub(crate) fn max_pool2d(&self, l: &Layout, w: &Window2d) -> Result<(Storage, Storage)> {
        match self {
            Storage::Cpu(s) => {
                let (v, i) = BackendStorage::max_pool2d(s, l, w)?;
                Ok((Storage::Cpu(v), Storage::Cpu(i)))
            }
        }
    }
    pub(crate) fn col2im(&self, l: &Layout, w: &Window2d, channels: usize, out_hw: (usize, usize), layout: PatchLayout) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(BackendStorage::col2im(s, l, w, channels, out_hw, layout)?)),
        }
    }
    /// True when every element is finite (always true for integer dtypes).
    pub(crate) fn all_finite(&self, l: &Layout) -> bool {
        match self {
            Storage::Cpu(s) => BackendStorage::all_finite(s, l),
        }
    }
}
