//! Convolutions as matrix products over cache-sized groups of samples: the forward pass
//! (`conv2d`), and its gradients with respect to the weight (`conv2d_weight`) and the input
//! (`conv2d_input`).
//!
//! Unfolding a whole batch first (`[C·kh·kw, N·L]` patches, then one product) writes and reads a
//! patch matrix many times the size of L2: 7.2 MB for W6's 16 -> 32 layer, whose unfold, fold and
//! products then ran at the speed of the L3 (on an Emerald Rapids vCPU, the fold alone took
//! 0.9 ms, about what reading 7.2 MB from L3 takes there). Here each group of samples is
//! unfolded into a buffer of about half of L2, multiplied while it is still there, and (for the
//! input's gradient) folded straight back; the buffers return to the pool for the next group.

use super::conv::{col2im_into, contiguous, im2col_into};
use super::conv_direct::{same_conv_f32, same_conv_weight_f32, sum_runs, DirectElem, SameConv, WEIGHT_GRAD_RUNS};
use super::gemm::{cache_sizes, GemmScalar};
use super::matmul::{product, Mat, PAR_FLOPS};
use super::{narrow_f32, pool, widen_f32, Compute, CpuStorage};
use crate::backend::{PatchLayout, Window2d};
use crate::{Error, Float, Layout, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The sizes of one convolution of `[n, c, h, w]` by `[o, c, kh, kw]` into `[n, o, oh, ow]`.
#[derive(Clone, Copy, Debug)]
struct ConvDims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    /// Rows of the patch matrix, `c * kh * kw`.
    k: usize,
}

impl ConvDims {
    /// The caller (the tensor op) validated every shape and that the window fits, so the window
    /// sizes exist and these products do not overflow.
    fn new((n, c, h, w): (usize, usize, usize, usize), o: usize, win: &Window2d) -> ConvDims {
        ConvDims {
            n,
            c,
            h,
            w,
            o,
            oh: win.out_len(h, 0).unwrap_or(0),
            ow: win.out_len(w, 1).unwrap_or(0),
            k: c * win.kernel.0 * win.kernel.1,
        }
    }
    /// Window positions per sample.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    /// Elements of one input sample.
    fn image(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Samples per group: one group's patches fill about half of L2, leaving the rest for the
    /// weight and the product's other operand. Groups are as even as that allows.
    fn group(&self, elem: usize) -> usize {
        let per_sample = self.k.saturating_mul(self.l()).saturating_mul(elem).max(1);
        let fit = (cache_sizes().1 / 2 / per_sample).clamp(1, self.n.max(1));
        let groups = self.n.div_ceil(fit).max(1);
        self.n.div_ceil(groups).max(1)
    }
}

/// The `gemm` threading for one group's product: every thread when there is a single group
/// (the groups themselves are split over the threads otherwise) and the product is large enough
/// to pay for the split.
fn group_par(groups: usize, flops: usize) -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    if groups == 1 && threads > 1 && flops >= PAR_FLOPS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// Runs `f(group, dst)` over `out` in chunks of `chunk` elements, on rayon's threads when there
/// are several chunks and threads.
fn for_groups<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) -> Result<()> + Sync) -> Result<()> {
    if out.len() > chunk && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(chunk).enumerate().try_for_each(|(g, dst)| f(g, dst))
    } else {
        out.chunks_mut(chunk).enumerate().try_for_each(|(g, dst)| f(g, dst))
    }
}

/// A pooled buffer of `len` elements, every one written by `fill`.
fn filled_by<T: Float>(len: usize, op: &'static str, fill: impl FnOnce(&mut [MaybeUninit<T>]) -> Result<()>) -> Result<Vec<T>> {
    let mut v: Vec<T> = pool::take(len).map_err(|e| e.at(op))?;
    fill(&mut v.spare_capacity_mut()[..len])?;
    // SAFETY: the capacity is at least `len` (the slice above would have failed otherwise), and
    // every caller's `fill` writes each of those elements (an unfold or a product with beta 0)
    // or returns an error, which skips this.
    unsafe { v.set_len(len) };
    Ok(v)
}

/// Group `s0..s0 + s` of the output gradient `g` (`[N, O, L]`, contiguous) as one `[O, s·L]`
/// matrix, the operand layout the group's products take.
fn group_rows<T: Float>(g: &[T], d: &ConvDims, s0: usize, s: usize, op: &'static str) -> Result<Vec<T>> {
    let (o, l) = (d.o, d.l());
    filled_by(o * s * l, op, |dst| {
        for (oi, row) in dst.chunks_exact_mut(s * l).enumerate() {
            for (si, part) in row.chunks_exact_mut(l).enumerate() {
                let src = &g[((s0 + si) * o + oi) * l..][..l];
                for (v, &x) in part.iter_mut().zip(src) {
                    v.write(x);
                }
            }
        }
        Ok(())
    })
}

/// The patches `[K, s·L]` of samples `s0..s0 + s` of the contiguous input `x`.
fn group_patches<T: Float>(x: &[T], d: &ConvDims, win: &Window2d, s0: usize, s: usize, op: &'static str) -> Result<Vec<T>> {
    let img = d.image();
    filled_by(d.k * s * d.l(), op, |spare| {
        im2col_into(
            &x[s0 * img..(s0 + s) * img],
            (s, d.c, d.h, d.w),
            win,
            PatchLayout::Batch,
            spare,
            false,
        )
        .map_err(|e| e.at(op))
    })
}

/// `conv2d`: `x` `[N, C, H, W]` by `weight` `[O, C, kh, kw]` into `[N, O, oh, ow]`, plus
/// `bias[o]` on output channel `o` when given (added as the product is copied out: one add per
/// element, as a separate broadcast add would make, without that op's pass over the output).
fn conv2d_t<T: Float + GemmScalar + DirectElem>(
    x: &[T],
    xl: &Layout,
    wt: &[T],
    wl: &Layout,
    win: &Window2d,
    bias: Option<&[f64]>,
) -> Result<Vec<T>> {
    const OP: &str = "conv2d";
    let xd = xl.shape.dims();
    let d = ConvDims::new((xd[0], xd[1], xd[2], xd[3]), wl.shape.dims()[0], win);
    let (o, k, l) = (d.o, d.k, d.l());
    let x = contiguous(x, xl).map_err(|e| e.at(OP))?;
    let w = contiguous(wt, wl).map_err(|e| e.at(OP))?;
    let direct = SameConv::new((d.n, d.c, d.h, d.w), o, win);
    if let (Some(sc), Some(xf), Some(wf)) = (direct, T::f32s(&x), T::f32s(&w)) {
        return same_conv_f32(&sc, xf, |oc, kk| wf[oc * k + kk], bias, OP).map(T::from_f32s);
    }
    let nc = d.group(std::mem::size_of::<T>());
    let groups = d.n.div_ceil(nc);
    filled_by(d.n * o * l, OP, |out| {
        if out.is_empty() {
            return Ok(());
        }
        for_groups(out, nc * o * l, |gi, dst| {
            let (s0, s) = (gi * nc, dst.len() / (o * l));
            let cols = group_patches(&x, &d, win, s0, s, OP)?;
            // `[O, K] · [K, s·L]`: the group's outputs with the samples inside, `[O, s, L]`.
            let par = group_par(groups, o.saturating_mul(k).saturating_mul(s * l));
            let y = filled_by(o * s * l, OP, |y| {
                product(
                    &w,
                    Mat { off: 0, rs: k, cs: 1 },
                    &cols,
                    Mat { off: 0, rs: s * l, cs: 1 },
                    y,
                    (o, k, s * l),
                    par,
                )
            })?;
            pool::give(cols);
            for (si, sample) in dst.chunks_exact_mut(o * l).enumerate() {
                for (oi, row) in sample.chunks_exact_mut(l).enumerate() {
                    let src = &y[(oi * s + si) * l..][..l];
                    match bias {
                        Some(b) => {
                            let b = T::from_f64(b[oi]);
                            for (v, &yv) in row.iter_mut().zip(src) {
                                v.write(yv + b);
                            }
                        }
                        None => {
                            for (v, &yv) in row.iter_mut().zip(src) {
                                v.write(yv);
                            }
                        }
                    }
                }
            }
            pool::give(y);
            Ok(())
        })
    })
}

/// `conv2d`'s gradient with respect to its weight (`torch.nn.grad.conv2d_weight`): `[O, C, kh, kw]`
/// from the input `x` `[N, C, H, W]` and the output's gradient `g` `[N, O, oh, ow]`, i.e.
/// `g · patches(x)ᵀ` summed over the batch.
fn conv2d_weight_t<T: Float + GemmScalar + DirectElem>(x: &[T], xl: &Layout, g: &[T], gl: &Layout, win: &Window2d) -> Result<Vec<T>> {
    const OP: &str = "conv2d_weight";
    let xd = xl.shape.dims();
    let d = ConvDims::new((xd[0], xd[1], xd[2], xd[3]), gl.shape.dims()[1], win);
    let (o, k, l) = (d.o, d.k, d.l());
    let x = contiguous(x, xl).map_err(|e| e.at(OP))?;
    let g = contiguous(g, gl).map_err(|e| e.at(OP))?;
    let direct = SameConv::new((d.n, d.c, d.h, d.w), o, win);
    if let (Some(sc), Some(xf), Some(gf)) = (direct, T::f32s(&x), T::f32s(&g)) {
        return same_conv_weight_f32(&sc, xf, gf, OP).map(T::from_f32s);
    }
    let nc = d.group(std::mem::size_of::<T>());
    let groups = d.n.div_ceil(nc);
    if o * k == 0 || groups == 0 || l == 0 {
        return pool::filled(o * k, T::zero()).map_err(|e| e.at(OP));
    }
    // One group's `[O, s·L] · [s·L, K]` (the patches read transposed, in place).
    let group_product = |gi: usize| -> Result<Vec<T>> {
        let s0 = gi * nc;
        let s = nc.min(d.n - s0);
        let cols = group_patches(&x, &d, win, s0, s, OP)?;
        let rows = group_rows(&g, &d, s0, s, OP)?;
        let par = group_par(groups, o.saturating_mul(k).saturating_mul(s * l));
        let part = filled_by(o * k, OP, |dst| {
            product(
                &rows,
                Mat { off: 0, rs: s * l, cs: 1 },
                &cols,
                Mat { off: 0, rs: 1, cs: s * l },
                dst,
                (o, s * l, k),
                par,
            )
        })?;
        pool::give(cols);
        pool::give(rows);
        Ok(part)
    };
    let runs = WEIGHT_GRAD_RUNS.min(groups);
    let run_sum = |r: usize| -> Result<Vec<T>> {
        let (lo, hi) = (r * groups / runs, (r + 1) * groups / runs);
        let mut acc = group_product(lo)?;
        for gi in lo + 1..hi {
            let part = group_product(gi)?;
            acc.iter_mut().zip(&part).for_each(|(a, &p)| *a += p);
        }
        Ok(acc)
    };
    // At least one run: groups > 0.
    sum_runs(runs, run_sum)
}

/// `conv2d`'s gradient with respect to its input (`torch.nn.grad.conv2d_input`): `[N, C, H, W]`
/// (`in_hw = (H, W)`) from the weight `[O, C, kh, kw]` and the output's gradient `g`
/// `[N, O, oh, ow]`, i.e. the patches `weightᵀ · g` folded back onto the image.
fn conv2d_input_t<T: Float + GemmScalar + DirectElem>(
    wt: &[T],
    wl: &Layout,
    g: &[T],
    gl: &Layout,
    win: &Window2d,
    (h, wd): (usize, usize),
) -> Result<Vec<T>> {
    const OP: &str = "conv2d_input";
    let (wdims, gd) = (wl.shape.dims(), gl.shape.dims());
    let d = ConvDims::new((gd[0], wdims[1], h, wd), wdims[0], win);
    let (o, k, l) = (d.o, d.k, d.l());
    let w = contiguous(wt, wl).map_err(|e| e.at(OP))?;
    let g = contiguous(g, gl).map_err(|e| e.at(OP))?;
    // With unit strides and a same-sized output the input's gradient is itself a same
    // convolution: of `g` by the weight with its two channel axes swapped and its taps flipped.
    let direct = SameConv::new((d.n, d.c, h, wd), o, win).and_then(|sc| sc.transposed(win));
    if let (Some(sc), Some(gf), Some(wf)) = (direct, T::f32s(&g), T::f32s(&w)) {
        let (c, (kh, kw)) = (d.c, win.kernel);
        let flipped = |ci: usize, kk: usize| {
            let (oi, dy, dx) = (kk / (kh * kw), kk / kw % kh, kk % kw);
            wf[((oi * c + ci) * kh + kh - 1 - dy) * kw + kw - 1 - dx]
        };
        return same_conv_f32(&sc, gf, flipped, None, OP).map(T::from_f32s);
    }
    let mut out = pool::filled(d.n * d.image(), T::zero()).map_err(|e| e.at(OP))?;
    if out.is_empty() || o * l == 0 {
        return Ok(out);
    }
    let nc = d.group(std::mem::size_of::<T>());
    let groups = d.n.div_ceil(nc);
    for_groups(&mut out, nc * d.image(), |gi, dst| {
        let (s0, s) = (gi * nc, dst.len() / d.image());
        let rows = group_rows(&g, &d, s0, s, OP)?;
        // `[K, O] · [O, s·L]` (the weight read transposed, in place): the group's patches.
        let par = group_par(groups, o.saturating_mul(k).saturating_mul(s * l));
        let cols = filled_by(k * s * l, OP, |cols| {
            product(
                &w,
                Mat { off: 0, rs: 1, cs: k },
                &rows,
                Mat { off: 0, rs: s * l, cs: 1 },
                cols,
                (k, o, s * l),
                par,
            )
        })?;
        pool::give(rows);
        col2im_into(&cols, (s, d.c, h, wd), win, PatchLayout::Batch, dst, false).map_err(|e| e.at(OP))?;
        pool::give(cols);
        Ok(())
    })?;
    Ok(out)
}

/// Runs a kernel on the f32 and f64 buffers directly and on f16 / bf16 ones widened to f32 (f32
/// accumulation, as PyTorch's CPU convolutions of half tensors), each result rounded once.
macro_rules! float_dispatch {
    ($op:expr, $kernel:ident, ($a:expr, $al:expr), ($b:expr, $bl:expr) $(, $extra:expr)*) => {{
        fn narrow<S: Compute<C = f32>>(a: &[S], al: &Layout, b: &[S], bl: &Layout, f: impl FnOnce(&[f32], &Layout, &[f32], &Layout) -> Result<Vec<f32>>) -> Result<Vec<S>> {
            let wa = widen_f32(a, al).map_err(|e| e.at($op))?;
            let wb = widen_f32(b, bl).map_err(|e| e.at($op))?;
            let (la, lb) = (Layout::contiguous(al.shape.clone()), Layout::contiguous(bl.shape.clone()));
            narrow_f32(&f(&wa, &la, &wb, &lb)?).map_err(|e| e.at($op))
        }
        match ($a, $b) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => Ok(CpuStorage::F32($kernel(a, $al, b, $bl $(, $extra)*)?)),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => Ok(CpuStorage::F64($kernel(a, $al, b, $bl $(, $extra)*)?)),
            (CpuStorage::F16(a), CpuStorage::F16(b)) => Ok(CpuStorage::F16(narrow(a, $al, b, $bl, |a, al, b, bl| $kernel(a, al, b, bl $(, $extra)*))?)),
            (CpuStorage::BF16(a), CpuStorage::BF16(b)) => Ok(CpuStorage::BF16(narrow(a, $al, b, $bl, |a, al, b, bl| $kernel(a, al, b, bl $(, $extra)*))?)),
            (a, b) if a.dtype() != b.dtype() => Err(Error::DTypeMismatch {
                op: $op,
                lhs: a.dtype(),
                rhs: b.dtype(),
            }),
            (a, _) => Err(Error::DType {
                op: $op,
                expected: "a float dtype (f16, bf16, f32 or f64)",
                got: a.dtype(),
            }),
        }
    }};
}

impl CpuStorage {
    pub(crate) fn conv2d(&self, l: &Layout, weight: &Self, wl: &Layout, bias: Option<(&Self, &Layout)>, win: &Window2d) -> Result<Self> {
        // The bias is one value per output channel: read as f64, which holds every value of
        // every float dtype exactly, so converting back to the output's dtype is exact.
        let bias = match bias {
            Some((b, bl)) => match &b.cast(bl, crate::DType::F64)? {
                CpuStorage::F64(v) => Some(v.to_vec()),
                other => unreachable!("a cast to f64 gave {:?}", other.dtype()),
            },
            None => None,
        };
        let bias = bias.as_deref();
        float_dispatch!("conv2d", conv2d_t, (self, l), (weight, wl), win, bias)
    }
    pub(crate) fn conv2d_weight(&self, l: &Layout, grad: &Self, gl: &Layout, win: &Window2d) -> Result<Self> {
        float_dispatch!("conv2d_weight", conv2d_weight_t, (self, l), (grad, gl), win)
    }
    pub(crate) fn conv2d_input(&self, l: &Layout, grad: &Self, gl: &Layout, win: &Window2d, in_hw: (usize, usize)) -> Result<Self> {
        float_dispatch!("conv2d_input", conv2d_input_t, (self, l), (grad, gl), win, in_hw)
    }
}
