//! im2col / col2im: the sliding-window gathers that turn convolutions into matrix products.

use super::{CpuStorage, PAR_THRESHOLD};
use crate::backend::Window2d;
use crate::{Error, Float, Layout, Result};
use rayon::prelude::*;
use std::borrow::Cow;

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
    let mut out = vec![T::zero(); n * per_sample];
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
    let mut out = vec![T::zero(); n * per_out];
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
