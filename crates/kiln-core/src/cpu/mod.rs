//! The CPU backend: typed host buffers and the strided kernels over them.
//!
//! Every kernel accepts arbitrary strides and writes a fresh contiguous buffer. Loops are arranged
//! so that the innermost dimension runs as a tight slice loop, with fast paths for the contiguous
//! and scalar-operand cases; work above [`PAR_THRESHOLD`] elements is split over rayon's pool.

mod conv;
mod conv_direct;
mod conv_gemm;
pub(crate) mod fused;
pub mod gemm;
mod index;
mod matmul;
pub use matmul::product_path;

/// Whether `Tensor::conv2d` of an `[n, c, h, w]` input by `out_channels` filters of `window`
/// runs as a direct convolution on this CPU (f32, f16 and bf16; AVX-512F, unit strides and
/// dilations, a same-sized output), rather than as unfolded patches times the weight. Callers
/// that choose between the op and their own lowering (kiln-nn's small-kernel layers) ask this.
///
/// ```
/// use kiln_core::backend::Window2d;
/// let w = Window2d { kernel: (3, 3), stride: (1, 1), padding: (1, 1), dilation: (1, 1) };
/// let direct = kiln_core::cpu::conv2d_runs_direct((64, 1, 28, 28), 16, &w, kiln_core::DType::F32);
/// assert_eq!(direct, std::arch::is_x86_feature_detected!("avx512f"));
/// ```
pub fn conv2d_runs_direct(
    input: (usize, usize, usize, usize),
    out_channels: usize,
    window: &crate::backend::Window2d,
    dtype: crate::DType,
) -> bool {
    use crate::DType;
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16) && conv_direct::SameConv::new(input, out_channels, window).is_some()
}
pub(crate) mod pool;

use crate::backend::{BackendStorage, BinaryOp, CmpOp, Device, PatchLayout, ReduceOp, UnaryOp, Window2d};
use crate::shape::{coalesce, Dims, RowWalker};
use crate::{DType, Element, Error, Float, Layout, Result, Shape};
use pool::AllocError;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// What kernels return: a buffer, or the allocation that failed (the caller names the op).
pub(crate) type AResult<T> = std::result::Result<T, AllocError>;

/// Below this many output elements an op stays on the calling thread: spawning costs more than it
/// saves (at 2^15, W4's 64K-element optimiser and activation passes ran slower on two threads).
pub const PAR_THRESHOLD: usize = 1 << 17;

/// A typed host buffer.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    F16(Vec<half::f16>),
    BF16(Vec<half::bf16>),
}

/// Gives generic code typed access to a [`CpuStorage`].
pub trait CpuElement: Element {
    /// The buffer, when its dtype is `Self`.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// The buffer, writable, when its dtype is `Self`.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    /// Wraps a buffer of `Self`.
    fn wrap(v: Vec<Self>) -> CpuStorage;
}
macro_rules! cpu_element {
    ($t:ty, $v:ident) => {
        impl CpuElement for $t {
            #[inline]
            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$v(v)
            }
        }
    };
}
cpu_element!(f32, F32);
cpu_element!(f64, F64);
cpu_element!(i64, I64);
cpu_element!(u8, U8);
cpu_element!(half::f16, F16);
cpu_element!(half::bf16, BF16);

/// The type a float element is computed in: f32 and f64 compute in themselves, while f16 and
/// bf16 widen to f32 and round each op's result back once. That is PyTorch's CPU `opmath_type`:
/// rounding every intermediate step to 16 bits instead (sigmoid as four f16 ops) would drift
/// from its results by several ulps.
pub(crate) trait Compute: CpuElement + Float {
    /// The wider type the arithmetic runs in.
    type C: Float + CpuElement;
    /// Widens exactly.
    fn up(self) -> Self::C;
    /// Rounds to nearest, ties to even.
    fn down(c: Self::C) -> Self;
    /// [`Compute::up`] over a run: half's slice conversion uses F16C eight lanes at a time, where
    /// the per-element one checks the CPU on every call and does not vectorise.
    fn up_slice(src: &[Self], dst: &mut [Self::C]);
    /// [`Compute::down`] over a run.
    fn down_slice(src: &[Self::C], dst: &mut [Self]);
    /// The buffer viewed in the compute type when that is `Self` (f32, f64), `None` otherwise:
    /// lets the fused interpreter read such inputs in place instead of copying them.
    fn as_compute(x: &[Self]) -> Option<&[Self::C]>;
}
macro_rules! compute_self {
    ($t:ty) => {
        impl Compute for $t {
            type C = $t;
            #[inline(always)]
            fn up(self) -> $t {
                self
            }
            #[inline(always)]
            fn down(c: $t) -> $t {
                c
            }
            fn up_slice(src: &[$t], dst: &mut [$t]) {
                dst.copy_from_slice(src);
            }
            fn down_slice(src: &[$t], dst: &mut [$t]) {
                dst.copy_from_slice(src);
            }
            fn as_compute(x: &[$t]) -> Option<&[$t]> {
                Some(x)
            }
        }
    };
}
compute_self!(f32);
compute_self!(f64);
macro_rules! compute_f32 {
    ($t:ty) => {
        impl Compute for $t {
            type C = f32;
            #[inline(always)]
            fn up(self) -> f32 {
                self.to_f32()
            }
            #[inline(always)]
            fn down(c: f32) -> $t {
                <$t>::from_f32(c)
            }
            fn up_slice(src: &[$t], dst: &mut [f32]) {
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(src, dst);
            }
            fn down_slice(src: &[f32], dst: &mut [$t]) {
                half::slice::HalfFloatSliceExt::convert_from_f32_slice(dst, src);
            }
            fn as_compute(_: &[$t]) -> Option<&[f32]> {
                None
            }
        }
    };
}
compute_f32!(half::f16);
compute_f32!(half::bf16);

/// Widens a strided 16-bit buffer to a contiguous f32 one, runs `f` on it, and rounds `f`'s
/// output back: for the kernels (sums, scans, matrix products) that must accumulate in f32 and
/// round only the final values, as PyTorch does.
pub(crate) fn via_f32<S: Compute<C = f32>>(x: &[S], l: &Layout, f: impl FnOnce(&[f32], &Layout) -> AResult<Vec<f32>>) -> AResult<Vec<S>> {
    let wide = widen_f32(x, l)?;
    let r = f(&wide, &Layout::contiguous(l.shape.clone()))?;
    narrow_f32(&r)
}

/// Runs `f(src_run, dst_run)` over matching runs of two equal-length slices, in parallel for
/// large ones.
fn convert_runs<A: Sync, B: Send>(src: &[A], dst: &mut [B], f: impl Fn(&[A], &mut [B]) + Sync) {
    let n = src.len();
    let threads = rayon::current_num_threads();
    if n >= PAR_THRESHOLD && threads > 1 {
        let chunk = n.div_ceil(threads * 4).max(PAR_THRESHOLD / 4);
        dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| f(s, d));
    } else {
        f(src, dst);
    }
}

/// A strided 16-bit buffer widened to a contiguous f32 one (exact).
pub(crate) fn widen_f32<S: Compute<C = f32>>(x: &[S], l: &Layout) -> AResult<Vec<f32>> {
    match l.contiguous_offset() {
        Some(o) => {
            let x = &x[o..o + l.shape.elem_count()];
            let mut v = pool::filled(x.len(), 0.0f32)?;
            convert_runs(x, &mut v, S::up_slice);
            Ok(v)
        }
        None => map1(x, l, S::up),
    }
}

/// Rounds a contiguous f32 buffer to a 16-bit float type.
pub(crate) fn narrow_f32<S: Compute<C = f32>>(r: &[f32]) -> AResult<Vec<S>> {
    let mut v = pool::filled(r.len(), S::zero())?;
    convert_runs(r, &mut v, S::down_slice);
    Ok(v)
}

/// Runs `$body` with `$v` bound to the typed slice, for every dtype.
macro_rules! any_dtype {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => $body,
            CpuStorage::F64($v) => $body,
            CpuStorage::I64($v) => $body,
            CpuStorage::U8($v) => $body,
            CpuStorage::F16($v) => $body,
            CpuStorage::BF16($v) => $body,
        }
    };
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        // Large buffers go back to the cache for the next op's output (see `pool`).
        any_dtype!(self, v => pool::give(std::mem::take(v)))
    }
}

/// Builds a vector of `n` elements, letting `fill(start, chunk)` initialise every slot of each chunk.
/// Large outputs are filled in parallel chunks.
pub(crate) fn build<U: Copy + Send>(n: usize, fill: impl Fn(usize, &mut [MaybeUninit<U>]) + Sync) -> AResult<Vec<U>> {
    let mut v: Vec<U> = pool::take(n)?;
    // `take` guarantees capacity >= n; the slice bound checks it again before `set_len` relies on it.
    let spare = &mut v.spare_capacity_mut()[..n];
    let threads = rayon::current_num_threads();
    if n >= PAR_THRESHOLD && threads > 1 {
        let chunk = n.div_ceil(threads * 4).max(PAR_THRESHOLD / 4);
        spare.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| fill(i * chunk, c));
    } else {
        fill(0, spare);
    }
    // SAFETY: the capacity is at least `n` (the `[..n]` slice above would have failed otherwise),
    // every caller's `fill` writes each slot of the chunk it is given, and the chunks cover 0..n.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// Visits the row-major positions `start..start+len` of `shape` (already coalesced) in segments
/// that stay within one innermost row: `f(offsets, count)` gives the operands' storage offsets of
/// the segment's first element.
pub(crate) fn walk_range<const N: usize>(
    shape: &Dims,
    strides: &[Dims; N],
    base: [usize; N],
    start: usize,
    len: usize,
    mut f: impl FnMut([usize; N], usize),
) {
    if len == 0 {
        return;
    }
    let rank = shape.len();
    let inner = shape[rank - 1];
    let inner_strides: [usize; N] = std::array::from_fn(|k| strides[k][rank - 1]);
    let first_row = start / inner;
    let col = start % inner;
    let rows = (start + len).div_ceil(inner) - first_row;
    let walker = RowWalker::new(shape.clone(), strides.clone(), base, first_row, rows);
    let mut left = len;
    for (r, mut offs) in walker.enumerate() {
        let skip = if r == 0 { col } else { 0 };
        for k in 0..N {
            offs[k] += skip * inner_strides[k];
        }
        let cnt = (inner - skip).min(left);
        f(offs, cnt);
        left -= cnt;
    }
}

/// Elementwise map of one strided operand.
pub(crate) fn map1<T: Copy + Sync, U: Copy + Send>(x: &[T], l: &Layout, f: impl Fn(T) -> U + Sync) -> AResult<Vec<U>> {
    let n = l.shape.elem_count();
    if let Some(o) = l.contiguous_offset() {
        let x = &x[o..o + n];
        return build(n, |start, dst| apply1(dst, &x[start..], &f));
    }
    let mut strides = [l.strides.clone()];
    let shape = coalesce(l.shape.dims(), &mut strides);
    let si = strides[0][shape.len() - 1];
    build(n, |start, dst| {
        let mut pos = 0;
        walk_range(&shape, &strides, [l.offset], start, dst.len(), |[o], cnt| {
            let d = &mut dst[pos..pos + cnt];
            if si == 1 {
                // Unit-stride runs (a permutation that keeps the last dim): a loop over exact
                // slices, which LLVM vectorises.
                apply1(d, &x[o..o + cnt], &f);
            } else if si == 0 {
                // A broadcast run (the gradient of a sum, expanded): one value, a fill. The
                // indexed loop below re-read and bounds-checked it per element, 3.2 MB at 12 GB/s.
                let v = f(x[o]);
                for d in d.iter_mut() {
                    d.write(v);
                }
            } else {
                for (j, d) in d.iter_mut().enumerate() {
                    d.write(f(x[o + j * si]));
                }
            }
            pos += cnt;
        });
    })
}

/// `dst[i] = f(src[i])` over the common length. `f` comes in as a reference argument, which the
/// compiler may assume nothing in the loop writes: through a closure's captured environment, a
/// captured scalar (the 0 of `x > 0`) was reloaded at every element, since a `u8` store may alias
/// anything, and the loop stayed scalar.
#[inline(always)]
fn apply1<T: Copy, U>(dst: &mut [MaybeUninit<U>], src: &[T], f: &impl Fn(T) -> U) {
    for (d, &v) in dst.iter_mut().zip(src) {
        d.write(f(v));
    }
}

/// `dst[i] = f(a[i], b[i])` over the common length (see [`apply1`]).
#[inline(always)]
fn apply2<A: Copy, B: Copy, U>(dst: &mut [MaybeUninit<U>], a: &[A], b: &[B], f: &impl Fn(A, B) -> U) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        d.write(f(x, y));
    }
}

/// Elementwise map of two operands broadcast to `out`.
pub(crate) fn map2<A: Copy + Sync, B: Copy + Sync, U: Copy + Send>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    out: &Shape,
    f: impl Fn(A, B) -> U + Sync,
) -> AResult<Vec<U>> {
    let n = out.elem_count();
    let same = la.shape == *out && lb.shape == *out;
    if same {
        if let (Some(oa), Some(ob)) = (la.contiguous_offset(), lb.contiguous_offset()) {
            let (a, b) = (&a[oa..oa + n], &b[ob..ob + n]);
            return build(n, |start, dst| {
                let len = dst.len();
                apply2(dst, &a[start..start + len], &b[start..start + len], &f);
            });
        }
    }
    // `move`: the scalar lives in the closure itself, not behind a pointer (see `apply1`).
    let f = &f;
    if lb.shape.elem_count() == 1 && la.shape == *out {
        let y = b[lb.offset];
        return map1(a, la, move |x| f(x, y));
    }
    if la.shape.elem_count() == 1 && lb.shape == *out {
        let x = a[la.offset];
        return map1(b, lb, move |y| f(x, y));
    }
    let mut strides = [la.broadcast_strides(out), lb.broadcast_strides(out)];
    let shape = coalesce(out.dims(), &mut strides);
    let last = shape.len() - 1;
    let (sa, sb) = (strides[0][last], strides[1][last]);
    build(n, |start, dst| {
        let mut pos = 0;
        walk_range(&shape, &strides, [la.offset, lb.offset], start, dst.len(), |[oa, ob], cnt| {
            let d = &mut dst[pos..pos + cnt];
            match (sa, sb) {
                (1, 1) => apply2(d, &a[oa..oa + cnt], &b[ob..ob + cnt], &f),
                (1, 0) => {
                    let y = b[ob];
                    apply1(d, &a[oa..oa + cnt], &move |x| f(x, y));
                }
                (0, 1) => {
                    let x = a[oa];
                    apply1(d, &b[ob..ob + cnt], &move |y| f(x, y));
                }
                _ => {
                    for (j, d) in d.iter_mut().enumerate() {
                        d.write(f(a[oa + j * sa], b[ob + j * sb]));
                    }
                }
            }
            pos += cnt;
        });
    })
}

#[inline(always)]
fn sigmoid<T: Float>(v: T) -> T {
    // Two branches keep exp's argument non-positive, so neither overflows.
    if v >= T::zero() {
        T::one() / (T::one() + (-v).exp())
    } else {
        let e = v.exp();
        e / (T::one() + e)
    }
}

/// `f` applied in `S`'s compute type, rounded back once.
#[inline(always)]
fn map1_c<S: Compute<C = T>, T: Float>(x: &[S], l: &Layout, f: impl Fn(T) -> T + Sync) -> AResult<Vec<S>> {
    map1(x, l, move |v| S::down(f(S::up(v))))
}

/// A kernel generic over the per-element function of a [`UnaryOp`]: [`with_unary`] picks the
/// function and calls [`UnaryKernel::run`] with it, so every kernel that applies a unary op (the
/// plain strided map here, the fused programs in [`fused`]) shares one definition of its
/// arithmetic, monomorphised into each kernel's inner loop.
pub(crate) trait UnaryKernel<T> {
    /// What the kernel returns.
    type Out;
    /// Runs the kernel with the op's per-element function.
    fn run(self, f: impl Fn(T) -> T + Sync + Copy) -> Self::Out;
}

/// Calls `k` with the per-element function of `op` in the compute type `T`.
// Always inlined so that the kernel's loops are compiled inside the caller, with its target
// features (the fused interpreter's AVX2 copy relies on this).
#[inline(always)]
pub(crate) fn with_unary<T: Float, K: UnaryKernel<T>>(op: UnaryOp, k: K) -> K::Out {
    let zero = T::zero();
    let one = T::one();
    match op {
        UnaryOp::Neg => k.run(move |v| -v),
        UnaryOp::Abs => k.run(move |v| v.abs()),
        UnaryOp::Exp => k.run(move |v| v.exp()),
        UnaryOp::Log => k.run(move |v| v.ln()),
        UnaryOp::Log1p => k.run(move |v| v.ln_1p()),
        UnaryOp::Sqrt => k.run(move |v| v.sqrt()),
        UnaryOp::Rsqrt => k.run(move |v| one / v.sqrt()),
        UnaryOp::Square => k.run(move |v| v * v),
        UnaryOp::Recip => k.run(move |v| one / v),
        UnaryOp::Sin => k.run(move |v| v.sin()),
        UnaryOp::Cos => k.run(move |v| v.cos()),
        UnaryOp::Tanh => k.run(move |v| v.tanh()),
        UnaryOp::Sigmoid => k.run(sigmoid),
        // `v <= 0` is false for NaN, so NaN passes through as in PyTorch.
        UnaryOp::Relu => k.run(move |v| if v <= zero { zero } else { v }),
        UnaryOp::Softplus => {
            // PyTorch's default threshold: above 20, log1p(exp(x)) equals x in every float format.
            let th = T::from_f64(20.0);
            k.run(move |v| if v > th { v } else { v.exp().ln_1p() })
        }
        UnaryOp::Erf => k.run(move |v| v.erf()),
        UnaryOp::Expm1 => k.run(move |v| v.exp_m1()),
        UnaryOp::Log2 => k.run(move |v| v.log2()),
        UnaryOp::Log10 => k.run(move |v| v.log10()),
        UnaryOp::Tan => k.run(move |v| v.tan()),
        UnaryOp::Asin => k.run(move |v| v.asin()),
        UnaryOp::Acos => k.run(move |v| v.acos()),
        UnaryOp::Atan => k.run(move |v| v.atan()),
        UnaryOp::Sinh => k.run(move |v| v.sinh()),
        UnaryOp::Cosh => k.run(move |v| v.cosh()),
        UnaryOp::Asinh => k.run(move |v| v.asinh()),
        UnaryOp::Acosh => k.run(move |v| v.acosh()),
        UnaryOp::Atanh => k.run(move |v| v.atanh()),
        UnaryOp::Floor => k.run(move |v| v.floor()),
        UnaryOp::Ceil => k.run(move |v| v.ceil()),
        UnaryOp::Round => k.run(move |v| v.round_ties_even()),
        UnaryOp::Trunc => k.run(move |v| v.trunc()),
        UnaryOp::Sign => k.run(move |v| {
            if v > zero {
                one
            } else if v < zero {
                -one
            } else {
                v * zero
            }
        }),
        UnaryOp::Affine { mul, add } => {
            let (m, a) = (T::from_f64(mul), T::from_f64(add));
            k.run(move |v| v * m + a)
        }
        UnaryOp::PowScalar(e) => {
            if e == 2.0 {
                k.run(move |v| v * v)
            } else if e == 1.0 {
                k.run(move |v| v)
            } else if e == 0.5 {
                k.run(move |v| v.sqrt())
            } else {
                let e = T::from_f64(e);
                k.run(move |v| v.powf(e))
            }
        }
        UnaryOp::Clamp { lo, hi } => {
            let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
            k.run(move |v| {
                if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }
            })
        }
        UnaryOp::InRange { lo, hi } => {
            let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
            k.run(move |v| if v >= lo && v <= hi { one } else { zero })
        }
    }
}

/// [`UnaryKernel`] for the strided map of one buffer in its compute type.
struct Map1C<'a, S> {
    x: &'a [S],
    l: &'a Layout,
}
impl<S: Compute> UnaryKernel<S::C> for Map1C<'_, S> {
    type Out = AResult<Vec<S>>;
    fn run(self, f: impl Fn(S::C) -> S::C + Sync + Copy) -> AResult<Vec<S>> {
        map1_c(self.x, self.l, f)
    }
}

fn unary_float<S: Compute>(x: &[S], l: &Layout, op: UnaryOp) -> AResult<Vec<S>> {
    with_unary(op, Map1C { x, l })
}

/// `f` applied in `S`'s compute type to broadcast operands, rounded back once.
#[inline(always)]
fn map2_c<S: Compute<C = T>, T: Float>(
    a: &[S],
    la: &Layout,
    b: &[S],
    lb: &Layout,
    out: &Shape,
    f: impl Fn(T, T) -> T + Sync,
) -> AResult<Vec<S>> {
    map2(a, la, b, lb, out, move |x, y| S::down(f(S::up(x), S::up(y))))
}

/// A kernel generic over the per-element function of a [`BinaryOp`] (see [`UnaryKernel`]).
pub(crate) trait BinaryKernel<T> {
    /// What the kernel returns.
    type Out;
    /// Runs the kernel with the op's per-element function.
    fn run(self, f: impl Fn(T, T) -> T + Sync + Copy) -> Self::Out;
}

/// Calls `k` with the per-element function of `op` in the compute type `T`.
// Always inlined so that the kernel's loops are compiled inside the caller, with its target
// features (the fused interpreter's AVX2 copy relies on this).
#[inline(always)]
pub(crate) fn with_binary<T: Float, K: BinaryKernel<T>>(op: BinaryOp, k: K) -> K::Out {
    match op {
        BinaryOp::Add => k.run(move |x, y| x + y),
        BinaryOp::AddScaled(alpha) => {
            let alpha = T::from_f64(alpha);
            k.run(move |x, y| x + y * alpha)
        }
        BinaryOp::Sub => k.run(move |x, y| x - y),
        BinaryOp::Mul => k.run(move |x, y| x * y),
        BinaryOp::Div => k.run(move |x, y| x / y),
        BinaryOp::Pow => k.run(move |x, y| x.powf(y)),
        BinaryOp::Maximum => k.run(move |x, y| x.max_val(y)),
        BinaryOp::Minimum => k.run(move |x, y| x.min_val(y)),
        BinaryOp::Atan2 => k.run(move |x, y| x.atan2(y)),
        // `x <= 0` is false for NaN, so a NaN input passes the gradient on, as in PyTorch.
        BinaryOp::ReluGrad => k.run(move |x, y| if x <= T::zero() { T::zero() } else { y }),
    }
}

/// [`BinaryKernel`] for the broadcast map of two buffers in their compute type.
struct Map2C<'a, S> {
    a: &'a [S],
    la: &'a Layout,
    b: &'a [S],
    lb: &'a Layout,
    out: &'a Shape,
}
impl<S: Compute> BinaryKernel<S::C> for Map2C<'_, S> {
    type Out = AResult<Vec<S>>;
    fn run(self, f: impl Fn(S::C, S::C) -> S::C + Sync + Copy) -> AResult<Vec<S>> {
        map2_c(self.a, self.la, self.b, self.lb, self.out, f)
    }
}

fn binary_float<S: Compute>(a: &[S], la: &Layout, b: &[S], lb: &Layout, out: &Shape, op: BinaryOp) -> AResult<Vec<S>> {
    with_binary(op, Map2C { a, la, b, lb, out })
}

fn binary_i64(a: &[i64], la: &Layout, b: &[i64], lb: &Layout, out: &Shape, op: BinaryOp) -> Result<Vec<i64>> {
    let v = match op {
        BinaryOp::Add => map2(a, la, b, lb, out, move |x, y| x.wrapping_add(y)),
        BinaryOp::Sub => map2(a, la, b, lb, out, move |x, y| x.wrapping_sub(y)),
        BinaryOp::Mul => map2(a, la, b, lb, out, move |x, y| x.wrapping_mul(y)),
        BinaryOp::Maximum => map2(a, la, b, lb, out, move |x, y| x.max(y)),
        BinaryOp::Minimum => map2(a, la, b, lb, out, move |x, y| x.min(y)),
        BinaryOp::Div | BinaryOp::Pow | BinaryOp::AddScaled(_) | BinaryOp::Atan2 | BinaryOp::ReluGrad => {
            return Err(Error::DType {
                op: op.name(),
                expected: "f32 or f64",
                got: DType::I64,
            })
        }
    };
    v.map_err(|e| e.at(op.name()))
}

fn cmp_kernel<T: Copy + Sync + PartialOrd>(a: &[T], la: &Layout, b: &[T], lb: &Layout, out: &Shape, op: CmpOp) -> AResult<Vec<u8>> {
    match op {
        CmpOp::Eq => map2(a, la, b, lb, out, |x, y| (x == y) as u8),
        CmpOp::Ne => map2(a, la, b, lb, out, |x, y| (x != y) as u8),
        CmpOp::Lt => map2(a, la, b, lb, out, |x, y| (x < y) as u8),
        CmpOp::Le => map2(a, la, b, lb, out, |x, y| (x <= y) as u8),
        CmpOp::Gt => map2(a, la, b, lb, out, |x, y| (x > y) as u8),
        CmpOp::Ge => map2(a, la, b, lb, out, |x, y| (x >= y) as u8),
    }
}

/// Sum of a contiguous run with eight independent accumulators: vectorisable, and more accurate
/// than one running sum for long rows.
#[inline]
fn sum_slice<T: Float>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// Reduction over `dims` into a keepdim-shaped buffer. Input is read in its own row-major order;
/// each element lands in the output slot its kept coordinates name.
fn reduce_kernel<T: Copy + Send + Sync>(
    x: &[T],
    l: &Layout,
    dims: &[usize],
    init: T,
    combine: impl Fn(T, T) -> T + Sync,
    fold_row: impl Fn(T, &[T]) -> T + Sync,
) -> AResult<Vec<T>> {
    let rank = l.shape.rank();
    let mut out_dims: Dims = l.shape.0.clone();
    for &d in dims {
        out_dims[d] = 1;
    }
    let out_shape = Shape(out_dims);
    let out_n = out_shape.elem_count();
    let mut out_strides = out_shape.contiguous_strides();
    for &d in dims {
        out_strides[d] = 0;
    }
    let mut strides = [l.strides.clone(), out_strides];
    let shape = coalesce(l.shape.dims(), &mut strides);
    let mut out = pool::filled(out_n, init)?;
    if l.shape.elem_count() == 0 {
        return Ok(out);
    }
    // Fast paths for a contiguous input reduced over its trailing dims (row reductions: softmax,
    // losses) or its leading dims (bias gradients): plain slice loops, no index walking.
    if let Some(o) = l.contiguous_offset() {
        let n = l.shape.elem_count();
        let x = &x[o..o + n];
        let dims_sorted = dims.windows(2).all(|w| w[1] == w[0] + 1);
        // `d + 1 == rank`, not `d == rank - 1`: a rank-0 tensor (no dims to reduce) has no last dim.
        if dims_sorted && dims.last().is_some_and(|&d| d + 1 == rank) {
            let inner: usize = dims.iter().map(|&d| l.shape.0[d]).product();
            if inner > 0 {
                let rows = x.chunks_exact(inner);
                if n >= PAR_THRESHOLD && rayon::current_num_threads() > 1 {
                    out.par_iter_mut()
                        .zip(x.par_chunks_exact(inner))
                        .for_each(|(o, r)| *o = fold_row(init, r));
                } else {
                    for (o, r) in out.iter_mut().zip(rows) {
                        *o = fold_row(init, r);
                    }
                }
            }
            return Ok(out);
        }
        if dims_sorted && dims.first() == Some(&0) {
            let inner = out_n;
            if inner > 0 {
                for r in x.chunks_exact(inner) {
                    for (o, &v) in out.iter_mut().zip(r) {
                        *o = combine(*o, v);
                    }
                }
            }
            return Ok(out);
        }
    }
    let seq = |shape: &Dims, strides: &[Dims; 2], in_base: usize, out: &mut [T]| {
        let last = shape.len() - 1;
        let (si, so) = (strides[0][last], strides[1][last]);
        let total: usize = shape.iter().product();
        walk_range(shape, strides, [in_base, 0], 0, total, |[io, oo], cnt| {
            if so == 0 {
                let acc = if si == 1 {
                    fold_row(out[oo], &x[io..io + cnt])
                } else {
                    let mut acc = out[oo];
                    for j in 0..cnt {
                        acc = combine(acc, x[io + j * si]);
                    }
                    acc
                };
                out[oo] = acc;
            } else {
                for j in 0..cnt {
                    let o = oo + j * so;
                    out[o] = combine(out[o], x[io + j * si]);
                }
            }
        });
    };
    let os0 = strides[1][0];
    if l.shape.elem_count() >= PAR_THRESHOLD && rayon::current_num_threads() > 1 && shape.len() > 1 && os0 != 0 && shape[0] > 1 {
        let sub_shape: Dims = shape[1..].into();
        let sub_strides = [strides[0][1..].into(), strides[1][1..].into()];
        let is0 = strides[0][0];
        out.par_chunks_mut(os0)
            .enumerate()
            .for_each(|(i, chunk)| seq(&sub_shape, &sub_strides, l.offset + i * is0, chunk));
    } else {
        seq(&shape, &strides, l.offset, &mut out);
    }
    Ok(out)
}

fn reduce_float<T: Float>(x: &[T], l: &Layout, dims: &[usize], op: ReduceOp) -> AResult<Vec<T>> {
    match op {
        ReduceOp::Sum => reduce_kernel(x, l, dims, T::zero(), |a, b| a + b, |a, row| a + sum_slice(row)),
        ReduceOp::Max => reduce_kernel(
            x,
            l,
            dims,
            T::NEG_INFINITY,
            |a, b| a.max_val(b),
            |a, row| row.iter().fold(a, |m, &v| m.max_val(v)),
        ),
        ReduceOp::Min => reduce_kernel(
            x,
            l,
            dims,
            T::INFINITY,
            |a, b| a.min_val(b),
            |a, row| row.iter().fold(a, |m, &v| m.min_val(v)),
        ),
    }
}

fn reduce_i64(x: &[i64], l: &Layout, dims: &[usize], op: ReduceOp) -> AResult<Vec<i64>> {
    match op {
        ReduceOp::Sum => reduce_kernel(
            x,
            l,
            dims,
            0,
            |a, b| a.wrapping_add(b),
            |a, r| r.iter().fold(a, |s, &v| s.wrapping_add(v)),
        ),
        ReduceOp::Max => reduce_kernel(x, l, dims, i64::MIN, |a, b| a.max(b), |a, r| r.iter().fold(a, |s, &v| s.max(v))),
        ReduceOp::Min => reduce_kernel(x, l, dims, i64::MAX, |a, b| a.min(b), |a, r| r.iter().fold(a, |s, &v| s.min(v))),
    }
}

/// Index of the first maximum (or minimum) along `dim`; NaN counts as larger than everything,
/// as in PyTorch.
fn arg_kernel<T: Copy + Sync + PartialOrd>(x: &[T], l: &Layout, dim: usize, max: bool) -> AResult<Vec<i64>> {
    let rank = l.shape.rank();
    let mut shape: Dims = Dims::new();
    let mut strides: Dims = Dims::new();
    for d in (0..rank).filter(|&d| d != dim) {
        shape.push(l.shape.0[d]);
        strides.push(l.strides[d]);
    }
    let len = l.shape.0[dim];
    let step = l.strides[dim];
    shape.push(1);
    strides.push(0);
    let n: usize = shape.iter().product();
    #[allow(clippy::eq_op)]
    let is_nan = |v: T| v != v;
    let mut out = pool::try_with_capacity(n)?;
    walk_range(&shape, &[strides], [l.offset], 0, n, |[o], _| {
        let mut best = x[o];
        let mut bi = 0usize;
        if !is_nan(best) {
            for j in 1..len {
                let v = x[o + j * step];
                if is_nan(v) {
                    bi = j;
                    break;
                }
                if (max && v > best) || (!max && v < best) {
                    best = v;
                    bi = j;
                }
            }
        }
        out.push(bi as i64);
    });
    Ok(out)
}

fn fill_slice<T: Copy + Send + Sync>(n: usize, v: T) -> AResult<Vec<T>> {
    build(n, |_, dst| {
        for d in dst {
            d.write(v);
        }
    })
}

impl CpuStorage {
    /// The address of the buffer's first element.
    pub(crate) fn base_addr(&self) -> usize {
        any_dtype!(self, v => v.as_ptr() as usize)
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
        }
    }
    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        any_dtype!(self, v => v.len())
    }
    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `n` copies of `value`; `op` names the caller in an allocation error.
    pub(crate) fn full(n: usize, value: f64, dtype: DType, op: &'static str) -> Result<Self> {
        let s = match dtype {
            DType::F32 => fill_slice(n, value as f32).map(CpuStorage::F32),
            DType::F64 => fill_slice(n, value).map(CpuStorage::F64),
            DType::I64 => fill_slice(n, value as i64).map(CpuStorage::I64),
            DType::U8 => fill_slice(n, value as u8).map(CpuStorage::U8),
            DType::F16 => fill_slice(n, crate::dtype::f16_from_f64(value)).map(CpuStorage::F16),
            DType::BF16 => fill_slice(n, crate::dtype::bf16_from_f64(value)).map(CpuStorage::BF16),
        };
        s.map_err(|e| e.at(op))
    }
    /// `start + step * i` for `i` in `0..n`, converted to `dtype`.
    pub(crate) fn arange(start: f64, step: f64, n: usize, dtype: DType) -> Result<Self> {
        fn fill<T: Copy + Send>(n: usize, f: impl Fn(f64) -> T + Sync, start: f64, step: f64) -> AResult<Vec<T>> {
            build(n, |at, dst| {
                for (i, d) in dst.iter_mut().enumerate() {
                    d.write(f(start + step * (at + i) as f64));
                }
            })
        }
        let s = match dtype {
            DType::F32 => fill(n, |v| v as f32, start, step).map(CpuStorage::F32),
            DType::F64 => fill(n, |v| v, start, step).map(CpuStorage::F64),
            DType::I64 => fill(n, |v| v as i64, start, step).map(CpuStorage::I64),
            DType::U8 => fill(n, |v| v as u8, start, step).map(CpuStorage::U8),
            DType::F16 => fill(n, crate::dtype::f16_from_f64, start, step).map(CpuStorage::F16),
            DType::BF16 => fill(n, crate::dtype::bf16_from_f64, start, step).map(CpuStorage::BF16),
        };
        s.map_err(|e| e.at("arange"))
    }
    fn float_only(&self, op: &'static str) -> Error {
        Error::DType {
            op,
            expected: "a float dtype (f16, bf16, f32 or f64)",
            got: self.dtype(),
        }
    }
    pub(crate) fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        let s = match self {
            CpuStorage::F32(v) => unary_float(v, l, op).map(CpuStorage::F32),
            CpuStorage::F64(v) => unary_float(v, l, op).map(CpuStorage::F64),
            CpuStorage::F16(v) => unary_float(v, l, op).map(CpuStorage::F16),
            CpuStorage::BF16(v) => unary_float(v, l, op).map(CpuStorage::BF16),
            CpuStorage::I64(v) => match op {
                UnaryOp::Neg => map1(v, l, |x| x.wrapping_neg()).map(CpuStorage::I64),
                UnaryOp::Abs => map1(v, l, |x| x.wrapping_abs()).map(CpuStorage::I64),
                UnaryOp::Sign => map1(v, l, |x| x.signum()).map(CpuStorage::I64),
                _ => return Err(self.float_only(op.name())),
            },
            CpuStorage::U8(_) => return Err(self.float_only(op.name())),
        };
        s.map_err(|e| e.at(op.name()))
    }
    pub(crate) fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp, out: &Shape) -> Result<Self> {
        match (self, rhs) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                Ok(CpuStorage::F32(binary_float(a, l, b, rl, out, op).map_err(|e| e.at(op.name()))?))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                Ok(CpuStorage::F64(binary_float(a, l, b, rl, out, op).map_err(|e| e.at(op.name()))?))
            }
            (CpuStorage::F16(a), CpuStorage::F16(b)) => {
                Ok(CpuStorage::F16(binary_float(a, l, b, rl, out, op).map_err(|e| e.at(op.name()))?))
            }
            (CpuStorage::BF16(a), CpuStorage::BF16(b)) => {
                Ok(CpuStorage::BF16(binary_float(a, l, b, rl, out, op).map_err(|e| e.at(op.name()))?))
            }
            (CpuStorage::I64(a), CpuStorage::I64(b)) => Ok(CpuStorage::I64(binary_i64(a, l, b, rl, out, op)?)),
            (CpuStorage::U8(_), CpuStorage::U8(_)) => Err(self.float_only(op.name())),
            _ => Err(Error::DTypeMismatch {
                op: op.name(),
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            }),
        }
    }
    pub(crate) fn cmp(&self, l: &Layout, rhs: &Self, rl: &Layout, op: CmpOp, out: &Shape) -> Result<Self> {
        let v = match (self, rhs) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => cmp_kernel(a, l, b, rl, out, op),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => cmp_kernel(a, l, b, rl, out, op),
            (CpuStorage::I64(a), CpuStorage::I64(b)) => cmp_kernel(a, l, b, rl, out, op),
            (CpuStorage::U8(a), CpuStorage::U8(b)) => cmp_kernel(a, l, b, rl, out, op),
            (CpuStorage::F16(a), CpuStorage::F16(b)) => cmp_kernel(a, l, b, rl, out, op),
            (CpuStorage::BF16(a), CpuStorage::BF16(b)) => cmp_kernel(a, l, b, rl, out, op),
            _ => {
                return Err(Error::DTypeMismatch {
                    op: op.name(),
                    lhs: self.dtype(),
                    rhs: rhs.dtype(),
                })
            }
        };
        Ok(CpuStorage::U8(v.map_err(|e| e.at(op.name()))?))
    }
    pub(crate) fn where_cond(m: &Self, ml: &Layout, a: &Self, al: &Layout, b: &Self, bl: &Layout, out: &Shape) -> Result<Self> {
        let CpuStorage::U8(mask) = m else {
            return Err(Error::DType {
                op: "where_cond",
                expected: "u8 (a mask)",
                got: m.dtype(),
            });
        };
        fn tern<T: Copy + Send + Sync>(m: &[u8], ml: &Layout, a: &[T], al: &Layout, b: &[T], bl: &Layout, out: &Shape) -> AResult<Vec<T>> {
            let n = out.elem_count();
            let mut strides = [ml.broadcast_strides(out), al.broadcast_strides(out), bl.broadcast_strides(out)];
            let shape = coalesce(out.dims(), &mut strides);
            let last = shape.len() - 1;
            let (sm, sa, sb) = (strides[0][last], strides[1][last], strides[2][last]);
            build(n, |start, dst| {
                let mut pos = 0;
                walk_range(
                    &shape,
                    &strides,
                    [ml.offset, al.offset, bl.offset],
                    start,
                    dst.len(),
                    |[om, oa, ob], cnt| {
                        let d = &mut dst[pos..pos + cnt];
                        let m = &m[om..];
                        // Unit and broadcast strides get loops over exact slices, which LLVM turns
                        // into masked vector selects (ReLU's backward is one of these).
                        match (sm, sa, sb) {
                            (1, 1, 1) => {
                                let (m, a, b) = (&m[..cnt], &a[oa..oa + cnt], &b[ob..ob + cnt]);
                                for (((d, &c), &x), &y) in d.iter_mut().zip(m).zip(a).zip(b) {
                                    d.write(if c != 0 { x } else { y });
                                }
                            }
                            (1, 1, 0) => {
                                let (m, a, y) = (&m[..cnt], &a[oa..oa + cnt], b[ob]);
                                for ((d, &c), &x) in d.iter_mut().zip(m).zip(a) {
                                    d.write(if c != 0 { x } else { y });
                                }
                            }
                            (1, 0, 1) => {
                                let (m, x, b) = (&m[..cnt], a[oa], &b[ob..ob + cnt]);
                                for ((d, &c), &y) in d.iter_mut().zip(m).zip(b) {
                                    d.write(if c != 0 { x } else { y });
                                }
                            }
                            _ => {
                                for (j, d) in d.iter_mut().enumerate() {
                                    d.write(if m[j * sm] != 0 { a[oa + j * sa] } else { b[ob + j * sb] });
                                }
                            }
                        }
                        pos += cnt;
                    },
                );
            })
        }
        let s = match (a, b) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => tern(mask, ml, a, al, b, bl, out).map(CpuStorage::F32),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => tern(mask, ml, a, al, b, bl, out).map(CpuStorage::F64),
            (CpuStorage::I64(a), CpuStorage::I64(b)) => tern(mask, ml, a, al, b, bl, out).map(CpuStorage::I64),
            (CpuStorage::U8(a), CpuStorage::U8(b)) => tern(mask, ml, a, al, b, bl, out).map(CpuStorage::U8),
            (CpuStorage::F16(a), CpuStorage::F16(b)) => tern(mask, ml, a, al, b, bl, out).map(CpuStorage::F16),
            (CpuStorage::BF16(a), CpuStorage::BF16(b)) => tern(mask, ml, a, al, b, bl, out).map(CpuStorage::BF16),
            _ => {
                return Err(Error::DTypeMismatch {
                    op: "where_cond",
                    lhs: a.dtype(),
                    rhs: b.dtype(),
                })
            }
        };
        s.map_err(|e| e.at("where_cond"))
    }
    pub(crate) fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Self> {
        let name = match op {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        };
        let s = match self {
            CpuStorage::F32(v) => reduce_float(v, l, dims, op).map(CpuStorage::F32),
            CpuStorage::F64(v) => reduce_float(v, l, dims, op).map(CpuStorage::F64),
            // Accumulated in f32 and rounded once per output, as PyTorch sums half tensors.
            CpuStorage::F16(v) => via_f32(v, l, |w, wl| reduce_float(w, wl, dims, op)).map(CpuStorage::F16),
            CpuStorage::BF16(v) => via_f32(v, l, |w, wl| reduce_float(w, wl, dims, op)).map(CpuStorage::BF16),
            CpuStorage::I64(v) => reduce_i64(v, l, dims, op).map(CpuStorage::I64),
            CpuStorage::U8(v) => {
                // Masks are summed as counts, the common use (how many predictions were right).
                map1(v, l, |x| x as i64).and_then(|wide| {
                    let wl = Layout::contiguous(l.shape.clone());
                    reduce_i64(&wide, &wl, dims, op).map(CpuStorage::I64)
                })
            }
        };
        s.map_err(|e| e.at(name))
    }
    pub(crate) fn arg_reduce(&self, l: &Layout, dim: usize, max: bool) -> Result<Self> {
        if l.shape.0[dim] == 0 {
            return Err(Error::shape(
                if max { "argmax" } else { "argmin" },
                format!("cannot reduce an empty dimension {dim} of shape {}", l.shape),
            ));
        }
        let v = any_dtype!(self, v => arg_kernel(v, l, dim, max));
        Ok(CpuStorage::I64(v.map_err(|e| e.at(if max { "argmax" } else { "argmin" }))?))
    }
    /// Running sums along `dim`, as a contiguous buffer of the same shape (floats only).
    pub(crate) fn cumsum(&self, l: &Layout, dim: usize) -> Result<Self> {
        fn k<T: Float + Sync + Send>(x: &[T], l: &Layout, dim: usize) -> AResult<Vec<T>> {
            let mut buf = map1(x, l, |v| v)?;
            let dims = &l.shape.0;
            let n = dims[dim];
            // The product of a suffix of dims divides the element count, which fits in usize.
            let inner: usize = dims[dim + 1..].iter().product();
            let block = n * inner;
            if block == 0 {
                return Ok(buf);
            }
            for chunk in buf.chunks_exact_mut(block) {
                for i in 1..n {
                    let (done, rest) = chunk.split_at_mut(i * inner);
                    let prev = &done[(i - 1) * inner..];
                    for (c, &p) in rest[..inner].iter_mut().zip(prev) {
                        *c += p;
                    }
                }
            }
            Ok(buf)
        }
        let s = match self {
            CpuStorage::F32(v) => k(v, l, dim).map(CpuStorage::F32),
            CpuStorage::F64(v) => k(v, l, dim).map(CpuStorage::F64),
            // Running sums in f32, each output rounded, as PyTorch's cumsum on half tensors.
            CpuStorage::F16(v) => via_f32(v, l, |w, wl| k(w, wl, dim)).map(CpuStorage::F16),
            CpuStorage::BF16(v) => via_f32(v, l, |w, wl| k(w, wl, dim)).map(CpuStorage::BF16),
            _ => return Err(self.float_only("cumsum")),
        };
        s.map_err(|e| e.at("cumsum"))
    }
    /// A contiguous copy; `op` names the caller in an allocation error.
    pub(crate) fn copy_strided(&self, l: &Layout, op: &'static str) -> Result<Self> {
        let s = match self {
            CpuStorage::F32(v) => map1(v, l, |x| x).map(CpuStorage::F32),
            CpuStorage::F64(v) => map1(v, l, |x| x).map(CpuStorage::F64),
            CpuStorage::I64(v) => map1(v, l, |x| x).map(CpuStorage::I64),
            CpuStorage::U8(v) => map1(v, l, |x| x).map(CpuStorage::U8),
            CpuStorage::F16(v) => map1(v, l, |x| x).map(CpuStorage::F16),
            CpuStorage::BF16(v) => map1(v, l, |x| x).map(CpuStorage::BF16),
        };
        s.map_err(|e| e.at(op))
    }
    pub(crate) fn cast(&self, l: &Layout, dtype: DType) -> Result<Self> {
        fn conv<T: Element>(v: &[T], l: &Layout, dtype: DType) -> AResult<CpuStorage> {
            Ok(match dtype {
                DType::F32 => CpuStorage::F32(map1(v, l, |x| x.to_f64() as f32)?),
                DType::F64 => CpuStorage::F64(map1(v, l, |x| x.to_f64())?),
                DType::I64 => CpuStorage::I64(map1(v, l, |x| x.to_f64() as i64)?),
                DType::U8 => CpuStorage::U8(map1(v, l, |x| x.to_f64() as u8)?),
                // Through f64 then f32: exact from every source but f64 and i64, and for those
                // the double rounding PyTorch's casts do too (see `f16_from_f64`).
                DType::F16 => CpuStorage::F16(map1(v, l, |x| crate::dtype::f16_from_f64(x.to_f64()))?),
                DType::BF16 => CpuStorage::BF16(map1(v, l, |x| crate::dtype::bf16_from_f64(x.to_f64()))?),
            })
        }
        any_dtype!(self, v => conv(v, l, dtype)).map_err(|e| e.at("to_dtype"))
    }
    /// Constant padding into `out`, the padded shape (validated by the caller: `dims[i] + pads[i].0
    /// + pads[i].1`, whose element count fits).
    pub(crate) fn pad(&self, l: &Layout, pads: &[(usize, usize)], value: f64, out: &Shape) -> Result<Self> {
        fn pad_t<T: Element>(x: &[T], l: &Layout, pads: &[(usize, usize)], value: T, out: &Shape) -> AResult<Vec<T>> {
            let ostr = out.contiguous_strides();
            let mut buf = pool::filled(out.elem_count(), value)?;
            // Within the output buffer: each `a < out dim`, so the sum is at most its last index.
            let base: usize = pads.iter().zip(ostr.iter()).map(|(&(a, _), &s)| a * s).sum();
            copy_into(x, l, &mut buf, &ostr, base);
            Ok(buf)
        }
        let s = match self {
            CpuStorage::F32(v) => pad_t(v, l, pads, value as f32, out).map(CpuStorage::F32),
            CpuStorage::F64(v) => pad_t(v, l, pads, value, out).map(CpuStorage::F64),
            CpuStorage::I64(v) => pad_t(v, l, pads, value as i64, out).map(CpuStorage::I64),
            CpuStorage::U8(v) => pad_t(v, l, pads, value as u8, out).map(CpuStorage::U8),
            CpuStorage::F16(v) => pad_t(v, l, pads, crate::dtype::f16_from_f64(value), out).map(CpuStorage::F16),
            CpuStorage::BF16(v) => pad_t(v, l, pads, crate::dtype::bf16_from_f64(value), out).map(CpuStorage::BF16),
        };
        s.map_err(|e| e.at("pad"))
    }
    pub(crate) fn cat(parts: &[(&Self, &Layout)], dim: usize, out: &Shape) -> Result<Self> {
        fn cat_t<T: CpuElement>(parts: &[(&CpuStorage, &Layout)], dim: usize, out: &Shape) -> Result<Vec<T>> {
            let ostr = out.contiguous_strides();
            let mut buf = pool::filled(out.elem_count(), T::zero()).map_err(|e| e.at("cat"))?;
            let mut at = 0;
            for (s, l) in parts {
                let x = T::slice(s).ok_or(Error::DTypeMismatch {
                    op: "cat",
                    lhs: T::DTYPE,
                    rhs: s.dtype(),
                })?;
                copy_into(x, l, &mut buf, &ostr, at * ostr[dim]);
                at += l.shape.0[dim];
            }
            Ok(buf)
        }
        Ok(match parts[0].0 {
            CpuStorage::F32(_) => CpuStorage::F32(cat_t(parts, dim, out)?),
            CpuStorage::F64(_) => CpuStorage::F64(cat_t(parts, dim, out)?),
            CpuStorage::I64(_) => CpuStorage::I64(cat_t(parts, dim, out)?),
            CpuStorage::U8(_) => CpuStorage::U8(cat_t(parts, dim, out)?),
            CpuStorage::F16(_) => CpuStorage::F16(cat_t(parts, dim, out)?),
            CpuStorage::BF16(_) => CpuStorage::BF16(cat_t(parts, dim, out)?),
        })
    }
    pub(crate) fn all_finite(&self, l: &Layout) -> bool {
        fn fin<T: Float>(v: &[T], l: &Layout) -> bool {
            let mut ok = true;
            let mut strides = [l.strides.clone()];
            let shape = coalesce(l.shape.dims(), &mut strides);
            let si = strides[0][shape.len() - 1];
            walk_range(&shape, &strides, [l.offset], 0, l.shape.elem_count(), |[o], cnt| {
                for j in 0..cnt {
                    ok &= v[o + j * si].is_finite();
                }
            });
            ok
        }
        match self {
            CpuStorage::F32(v) => fin(v, l),
            CpuStorage::F64(v) => fin(v, l),
            CpuStorage::F16(v) => fin(v, l),
            CpuStorage::BF16(v) => fin(v, l),
            _ => true,
        }
    }
}

/// Copies a strided source into `dst`, whose layout has the source's shape with strides `dstr`
/// starting at `base`.
pub(crate) fn copy_into<T: Copy>(x: &[T], l: &Layout, dst: &mut [T], dstr: &[usize], base: usize) {
    if l.shape.elem_count() == 0 {
        return;
    }
    let mut strides = [l.strides.clone(), Dims::from_slice(dstr)];
    let shape = coalesce(l.shape.dims(), &mut strides);
    let last = shape.len() - 1;
    let (si, sd) = (strides[0][last], strides[1][last]);
    let n = l.shape.elem_count();
    walk_range(&shape, &strides, [l.offset, base], 0, n, |[o, d], cnt| {
        if si == 1 && sd == 1 {
            dst[d..d + cnt].copy_from_slice(&x[o..o + cnt]);
        } else {
            for j in 0..cnt {
                dst[d + j * sd] = x[o + j * si];
            }
        }
    });
}

/// The CPU backend: each kernel is the `CpuStorage` method of the same name (in `cpu/`).
impl BackendStorage for CpuStorage {
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn elem_count(&self) -> usize {
        self.len()
    }
    fn full(shape: &Shape, value: f64, dtype: DType, op: &'static str) -> Result<Self> {
        CpuStorage::full(shape.elem_count(), value, dtype, op)
    }
    fn arange(start: f64, step: f64, n: usize, dtype: DType) -> Result<Self> {
        CpuStorage::arange(start, step, n, dtype)
    }
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        CpuStorage::unary(self, l, op)
    }
    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp, out: &Shape) -> Result<Self> {
        CpuStorage::binary(self, l, rhs, rl, op, out)
    }
    fn cmp(&self, l: &Layout, rhs: &Self, rl: &Layout, op: CmpOp, out: &Shape) -> Result<Self> {
        CpuStorage::cmp(self, l, rhs, rl, op, out)
    }
    fn where_cond(mask: &Self, ml: &Layout, a: &Self, al: &Layout, b: &Self, bl: &Layout, out: &Shape) -> Result<Self> {
        CpuStorage::where_cond(mask, ml, a, al, b, bl, out)
    }
    fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Self> {
        CpuStorage::reduce(self, l, dims, op)
    }
    fn arg_reduce(&self, l: &Layout, dim: usize, max: bool) -> Result<Self> {
        CpuStorage::arg_reduce(self, l, dim, max)
    }
    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout, batch: &Shape) -> Result<Self> {
        CpuStorage::matmul(self, l, rhs, rl, batch)
    }
    fn copy_strided(&self, l: &Layout, op: &'static str) -> Result<Self> {
        CpuStorage::copy_strided(self, l, op)
    }
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self> {
        CpuStorage::cast(self, l, dtype)
    }
    fn index_select(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout) -> Result<Self> {
        CpuStorage::index_select(self, l, dim, idx, il)
    }
    fn index_add(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self> {
        CpuStorage::index_add(self, l, dim, idx, il, src, sl)
    }
    fn gather(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout) -> Result<Self> {
        CpuStorage::gather(self, l, dim, idx, il)
    }
    fn scatter_add(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self> {
        CpuStorage::scatter_add(self, l, dim, idx, il, src, sl)
    }
    fn scatter(&self, l: &Layout, dim: usize, idx: &Self, il: &Layout, src: &Self, sl: &Layout) -> Result<Self> {
        CpuStorage::scatter(self, l, dim, idx, il, src, sl)
    }
    fn sort_indices(&self, l: &Layout, dim: usize, descending: bool, k: usize) -> Result<Self> {
        CpuStorage::sort_indices(self, l, dim, descending, k)
    }
    fn cat(parts: &[(&Self, &Layout)], dim: usize, out: &Shape) -> Result<Self> {
        CpuStorage::cat(parts, dim, out)
    }
    fn cumsum(&self, l: &Layout, dim: usize) -> Result<Self> {
        CpuStorage::cumsum(self, l, dim)
    }
    fn pad(&self, l: &Layout, pads: &[(usize, usize)], value: f64, out: &Shape) -> Result<Self> {
        CpuStorage::pad(self, l, pads, value, out)
    }
    fn im2col(&self, l: &Layout, w: &Window2d, layout: PatchLayout) -> Result<Self> {
        CpuStorage::im2col(self, l, w, layout)
    }
    fn col2im(&self, l: &Layout, w: &Window2d, channels: usize, out_hw: (usize, usize), layout: PatchLayout) -> Result<Self> {
        CpuStorage::col2im(self, l, w, channels, out_hw, layout)
    }
    fn conv2d(&self, l: &Layout, weight: &Self, wl: &Layout, bias: Option<(&Self, &Layout)>, w: &Window2d) -> Result<Self> {
        CpuStorage::conv2d(self, l, weight, wl, bias, w)
    }
    fn conv2d_weight(&self, l: &Layout, grad: &Self, gl: &Layout, w: &Window2d) -> Result<Self> {
        CpuStorage::conv2d_weight(self, l, grad, gl, w)
    }
    fn conv2d_input(&self, l: &Layout, grad: &Self, gl: &Layout, w: &Window2d, in_hw: (usize, usize)) -> Result<Self> {
        CpuStorage::conv2d_input(self, l, grad, gl, w, in_hw)
    }
    fn max_pool2d(&self, l: &Layout, w: &Window2d) -> Result<(Self, Self)> {
        CpuStorage::max_pool2d(self, l, w)
    }
    fn all_finite(&self, l: &Layout) -> bool {
        CpuStorage::all_finite(self, l)
    }
    fn fused_elementwise(inputs: &[&Self], program: &crate::fused::Program) -> Result<Vec<Self>> {
        CpuStorage::fused_elementwise(inputs, program)
    }
    fn fused_kernel<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(inputs: [&Self; I], kernel: &K) -> Result<[Self; O]> {
        CpuStorage::fused_kernel(inputs, kernel)
    }
    fn fused_kernel_assign<K: crate::fused::Kernel<I, O>, const I: usize, const O: usize>(
        targets: [&mut Self; O],
        rest: &[&Self],
        kernel: &K,
    ) -> Result<()> {
        CpuStorage::fused_kernel_assign(targets, rest, kernel)
    }
}
