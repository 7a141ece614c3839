//! im2col / col2im: the sliding-window gathers that turn convolutions into matrix products, and the
//! direct max-pooling kernel.

use super::{pool, CpuStorage, PAR_THRESHOLD};
use crate::backend::Window2d;
use crate::{Error, Float, Layout, Result};
use rayon::prelude::*;
use std::borrow::Cow;
use std::mem::MaybeUninit;

fn contiguous<'a, T: Copy + Send + Sync>(x: &'a [T], l: &Layout) -> Cow<'a, [T]> {
    let n = l.shape.elem_count();
    match l.contiguous_offset() {
        Some(o) => Cow::Borrowed(&x[o..o + n]),
        None => Cow::Owned(super::map1(x, l, |v| v)),
    }
}

/// For each kernel tap and output coordinate along one axis: the input coordinate, or None in padding.
fn taps(size: usize, out: usize, k: usize, s: usize, p: usize, d: usize) -> Vec<Option<usize>> {
    let mut v = Vec::with_capacity(k * out);
    for i in 0..k {
        for o in 0..out {
            let pos = (o * s + i * d) as isize - p as isize;
            v.push((pos >= 0 && (pos as usize) < size).then_some(pos as usize));
        }
    }
    v
}

fn im2col_t<T: Float>(x: &[T], l: &Layout, w: &Window2d) -> Vec<T> {
    let d = l.shape.dims();
    let (n, c, h, wd) = (d[0], d[1], d[2], d[3]);
    let (kh, kw) = w.kernel;
    let oh = w.out_len(h, 0).unwrap_or(0);
    let ow = w.out_len(wd, 1).unwrap_or(0);
    let ty = taps(h, oh, kh, w.stride.0, w.padding.0, w.dilation.0);
    let tx = taps(wd, ow, kw, w.stride.1, w.padding.1, w.dilation.1);
    let x = contiguous(x, l);
    let per_sample = c * kh * kw * oh * ow;
    let mut out = pool::filled(n * per_sample, T::zero());
    let fill = |b: usize, dst: &mut [T]| {
        let mut at = 0;
        for ch in 0..c {
            let plane = &x[(b * c + ch) * h * wd..(b * c + ch + 1) * h * wd];
            for i in 0..kh {
                for j in 0..kw {
                    for oy in 0..oh {
                        let row = &mut dst[at..at + ow];
                        at += ow;
                        let Some(iy) = ty[i * oh + oy] else { continue };
                        let src = &plane[iy * wd..(iy + 1) * wd];
                        for (ox, r) in row.iter_mut().enumerate() {
                            if let Some(ix) = tx[j * ow + ox] {
                                *r = src[ix];
                            }
                        }
                    }
                }
            }
        }
    };
    if out.len() >= PAR_THRESHOLD && n > 1 && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(per_sample).enumerate().for_each(|(b, dst)| fill(b, dst));
    } else {
        out.chunks_mut(per_sample.max(1)).enumerate().for_each(|(b, dst)| fill(b, dst));
    }
    out
}

fn col2im_t<T: Float>(x: &[T], l: &Layout, w: &Window2d, c: usize, (h, wd): (usize, usize)) -> Vec<T> {
    let n = l.shape.dims()[0];
    let (kh, kw) = w.kernel;
    let oh = w.out_len(h, 0).unwrap_or(0);
    let ow = w.out_len(wd, 1).unwrap_or(0);
    let ty = taps(h, oh, kh, w.stride.0, w.padding.0, w.dilation.0);
    let tx = taps(wd, ow, kw, w.stride.1, w.padding.1, w.dilation.1);
    let cols = contiguous(x, l);
    let per_in = c * kh * kw * oh * ow;
    let per_out = c * h * wd;
    let mut out = pool::filled(n * per_out, T::zero());
    let fill = |b: usize, dst: &mut [T]| {
        let src = &cols[b * per_in..(b + 1) * per_in];
        let mut at = 0;
        for ch in 0..c {
            let plane = &mut dst[ch * h * wd..(ch + 1) * h * wd];
            for i in 0..kh {
                for j in 0..kw {
                    for oy in 0..oh {
                        let row = &src[at..at + ow];
                        at += ow;
                        let Some(iy) = ty[i * oh + oy] else { continue };
                        for (ox, &v) in row.iter().enumerate() {
                            if let Some(ix) = tx[j * ow + ox] {
                                plane[iy * wd + ix] += v;
                            }
                        }
                    }
                }
            }
        }
    };
    if out.len() >= PAR_THRESHOLD && n > 1 && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(per_out).enumerate().for_each(|(b, dst)| fill(b, dst));
    } else {
        out.chunks_mut(per_out.max(1)).enumerate().for_each(|(b, dst)| fill(b, dst));
    }
    out
}

/// Max over each window of `[N, C, H, W]` (taps in the padding are skipped, i.e. act as -inf):
/// values `[N, C, oh, ow]` and, for each, the flat index `iy * W + ix` of its first maximum in its
/// plane (NaN wins, as in PyTorch). The caller guarantees every window holds at least one real tap.
fn max_pool_t<T: Float>(x: &[T], l: &Layout, w: &Window2d) -> (Vec<T>, Vec<i64>) {
    let d = l.shape.dims();
    let (n, c, h, wd) = (d[0], d[1], d[2], d[3]);
    let (kh, kw) = w.kernel;
    let oh = w.out_len(h, 0).unwrap_or(0);
    let ow = w.out_len(wd, 1).unwrap_or(0);
    let ty = taps(h, oh, kh, w.stride.0, w.padding.0, w.dilation.0);
    let tx = taps(wd, ow, kw, w.stride.1, w.padding.1, w.dilation.1);
    let x = contiguous(x, l);
    let (plane_in, plane_out) = (h * wd, oh * ow);
    let planes = n * c;
    let mut vals: Vec<T> = pool::take(planes * plane_out);
    let mut idxs: Vec<i64> = pool::take(planes * plane_out);
    #[allow(clippy::eq_op)]
    let is_nan = |v: T| v != v;
    // One plane at a time: its output values and indices.
    let fill = |p: usize, vo: &mut [MaybeUninit<T>], io: &mut [MaybeUninit<i64>]| {
        let src = &x[p * plane_in..(p + 1) * plane_in];
        // Fast path: 2x2 windows, stride 2, no padding or dilation (the common `MaxPool2d(2)`).
        if (kh, kw) == (2, 2) && w.stride == (2, 2) && w.padding == (0, 0) && w.dilation == (1, 1) {
            for oy in 0..oh {
                let r0 = &src[2 * oy * wd..(2 * oy + 1) * wd];
                let r1 = &src[(2 * oy + 1) * wd..(2 * oy + 2) * wd];
                for ox in 0..ow {
                    let (a, b, cc, dd) = (r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
                    let base = 2 * oy * wd + 2 * ox;
                    let (mut best, mut bi) = (a, base);
                    for (v, i) in [(b, base + 1), (cc, base + wd), (dd, base + wd + 1)] {
                        if !is_nan(best) && (v > best || is_nan(v)) {
                            best = v;
                            bi = i;
                        }
                    }
                    vo[oy * ow + ox].write(best);
                    io[oy * ow + ox].write(bi as i64);
                }
            }
            return;
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = T::NEG_INFINITY;
                let mut bi = usize::MAX;
                'win: for i in 0..kh {
                    let Some(iy) = ty[i * oh + oy] else { continue };
                    for j in 0..kw {
                        let Some(ix) = tx[j * ow + ox] else { continue };
                        let v = src[iy * wd + ix];
                        if bi == usize::MAX || v > best || is_nan(v) {
                            best = v;
                            bi = iy * wd + ix;
                            if is_nan(v) {
                                break 'win;
                            }
                        }
                    }
                }
                vo[oy * ow + ox].write(best);
                io[oy * ow + ox].write(if bi == usize::MAX { 0 } else { bi as i64 });
            }
        }
    };
    let total = planes * plane_out;
    let sv = &mut vals.spare_capacity_mut()[..total];
    let si = &mut idxs.spare_capacity_mut()[..total];
    if total > 0 {
        if total * kh * kw >= PAR_THRESHOLD && planes > 1 && rayon::current_num_threads() > 1 {
            sv.par_chunks_mut(plane_out)
                .zip(si.par_chunks_mut(plane_out))
                .enumerate()
                .for_each(|(p, (vo, io))| fill(p, vo, io));
        } else {
            sv.chunks_mut(plane_out)
                .zip(si.chunks_mut(plane_out))
                .enumerate()
                .for_each(|(p, (vo, io))| fill(p, vo, io));
        }
    }
    // SAFETY: `fill` writes every output position of each plane it is given, and the planes cover
    // all `total` slots.
    unsafe {
        vals.set_len(total);
        idxs.set_len(total);
    }
    (vals, idxs)
}

impl CpuStorage {
    pub(crate) fn im2col(&self, l: &Layout, w: &Window2d) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(im2col_t(v, l, w))),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(im2col_t(v, l, w))),
            o => Err(Error::DType {
                op: "unfold2d",
                expected: "f32 or f64",
                got: o.dtype(),
            }),
        }
    }
    pub(crate) fn max_pool2d(&self, l: &Layout, w: &Window2d) -> Result<(Self, Self)> {
        match self {
            CpuStorage::F32(v) => {
                let (a, i) = max_pool_t(v, l, w);
                Ok((CpuStorage::F32(a), CpuStorage::I64(i)))
            }
            CpuStorage::F64(v) => {
                let (a, i) = max_pool_t(v, l, w);
                Ok((CpuStorage::F64(a), CpuStorage::I64(i)))
            }
            o => Err(Error::DType {
                op: "max_pool2d",
                expected: "f32 or f64",
                got: o.dtype(),
            }),
        }
    }
    pub(crate) fn col2im(&self, l: &Layout, w: &Window2d, c: usize, out_hw: (usize, usize)) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(col2im_t(v, l, w, c, out_hw))),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(col2im_t(v, l, w, c, out_hw))),
            o => Err(Error::DType {
                op: "fold2d",
                expected: "f32 or f64",
                got: o.dtype(),
            }),
        }
    }
}
