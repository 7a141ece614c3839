//! im2col / col2im: the sliding-window gathers that turn convolutions into matrix products, and the
//! direct max-pooling kernel.

use super::{pool, AResult, CpuStorage, PAR_THRESHOLD};
use crate::backend::{PatchLayout, Window2d};
use crate::{Error, Float, Layout, Result};
use rayon::prelude::*;
use std::borrow::Cow;
use std::mem::MaybeUninit;

pub(super) fn contiguous<'a, T: Copy + Send + Sync>(x: &'a [T], l: &Layout) -> AResult<Cow<'a, [T]>> {
    let n = l.shape.elem_count();
    Ok(match l.contiguous_offset() {
        Some(o) => Cow::Borrowed(&x[o..o + n]),
        None => Cow::Owned(super::map1(x, l, |v| v)?),
    })
}

/// The input coordinate of tap `i` of output position `o` (`o * s + i * d - p`), or None when it
/// lies in the padding. Checked arithmetic: a padded coordinate too large for `usize` is past any
/// real input, so it is padding too (the caller's window geometry rules that out anyway).
fn tap(size: usize, o: usize, i: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    let padded = o.checked_mul(s)?.checked_add(i.checked_mul(d)?)?;
    padded.checked_sub(p).filter(|&pos| pos < size)
}

/// For each kernel tap and output coordinate along one axis: the input coordinate, or None in padding.
fn taps(size: usize, out: usize, k: usize, s: usize, p: usize, d: usize) -> AResult<Vec<Option<usize>>> {
    // `k * out` taps: at most the output's own size per channel, whose shape the op validated, but
    // checked anyway since an empty batch does not bound it.
    let n = k.checked_mul(out).ok_or(pool::AllocError {
        elems: usize::MAX,
        elem_bytes: std::mem::size_of::<Option<usize>>(),
    })?;
    let mut v = pool::try_with_capacity(n)?;
    for i in 0..k {
        for o in 0..out {
            v.push(tap(size, o, i, s, p, d));
        }
    }
    Ok(v)
}

/// A window's output size over an `h × wd` plane and its [`taps`] along each axis.
struct Grid {
    oh: usize,
    ow: usize,
    ty: Vec<Option<usize>>,
    tx: Vec<Option<usize>>,
}

impl Grid {
    /// The caller has checked the geometry (`Tensor::window_positions` or fold2d's check), so
    /// `out_len` succeeds; a window that does not fit gives no positions.
    fn new(w: &Window2d, h: usize, wd: usize) -> AResult<Grid> {
        let oh = w.out_len(h, 0).unwrap_or(0);
        let ow = w.out_len(wd, 1).unwrap_or(0);
        Ok(Grid {
            oh,
            ow,
            ty: taps(h, oh, w.kernel.0, w.stride.0, w.padding.0, w.dilation.0)?,
            tx: taps(wd, ow, w.kernel.1, w.stride.1, w.padding.1, w.dilation.1)?,
        })
    }
}

/// The output positions `ox` whose input column `ox * s + j * d - p` lies inside `0..size`, as a
/// range (they are contiguous), for stride-1 rows: `lo..hi` with input column `ox + j - p`.
fn valid_cols(size: usize, out: usize, j: usize, p: usize) -> (usize, usize) {
    let lo = p.saturating_sub(j).min(out);
    let hi = (size + p).saturating_sub(j).clamp(lo, out);
    (lo, hi)
}

/// "Same" rows: unit strides and dilations and an output as wide as the input. Tap `(i, j)`'s
/// patch row then reads its input plane shifted by one offset, so a patch row is one run of the
/// plane, except that the positions next to a row edge wrap round into the neighbouring row and
/// must read padding instead.
struct SameTaps {
    /// The plane's rows and columns (also the output's), and the output's rows.
    h: usize,
    wd: usize,
    oh: usize,
    padding: (usize, usize),
    /// `keep[j * oh * wd + e]`: whether patch position `e` of tap column `j` reads a real column
    /// (position `e`'s column is `e % wd`).
    keep: Vec<bool>,
}

impl SameTaps {
    /// The table for `w` over an `h x wd` plane with `oh x ow` window positions, or None when
    /// `w` does not make same rows.
    fn new(w: &Window2d, h: usize, wd: usize, oh: usize, ow: usize) -> AResult<Option<SameTaps>> {
        let same = w.stride == (1, 1) && w.dilation == (1, 1) && ow == wd;
        if !same {
            return Ok(None);
        }
        // `kw * oh * ow` flags: no more than one channel's patch rows, which the caller's buffers
        // already hold (the caller checked that product).
        let kw = w.kernel.1;
        let mut keep = pool::try_with_capacity(kw * oh * ow)?;
        for j in 0..kw {
            let (lo, hi) = valid_cols(wd, ow, j, w.padding.1);
            for _ in 0..oh {
                keep.extend((0..wd).map(|ox| (lo..hi).contains(&ox)));
            }
        }
        Ok(Some(SameTaps {
            h,
            wd,
            oh,
            padding: w.padding,
            keep,
        }))
    }

    /// Tap `(i, j)`'s run: patch positions `e0..e1` read input element `e + shift` of the plane
    /// (those of `e0..e1` outside [`SameTaps::keep`] excepted); the others read padding.
    fn run(&self, i: usize, j: usize) -> (usize, usize, isize) {
        let (h, wd, oh) = (self.h, self.wd, self.oh);
        let (p0, p1) = self.padding;
        // Output rows whose input row `oy + i - p0` exists.
        let oy_lo = p0.saturating_sub(i).min(oh);
        let oy_hi = (h + p0).saturating_sub(i).clamp(oy_lo, oh);
        let shift = (i as isize - p0 as isize) * wd as isize + j as isize - p1 as isize;
        let (r0, r1) = ((oy_lo * wd) as isize, (oy_hi * wd) as isize);
        let e0 = r0.max(-shift).min(r1);
        let e1 = r1.min((h * wd) as isize - shift).max(e0);
        if e0 >= e1 {
            // No position reads the plane (every row in the padding, or a kernel wider than the
            // plane): an empty run at 0, since `e0 + shift` may then lie outside the plane.
            return (0, 0, 0);
        }
        (e0 as usize, e1 as usize, shift)
    }

    /// Which positions `e0..e1` of tap column `j`'s row read a real column.
    fn keep(&self, j: usize, e0: usize, e1: usize) -> &[bool] {
        let positions = self.oh * self.wd;
        &self.keep[j * positions + e0..j * positions + e1]
    }
}

/// `dst[k] = src[k]` where `keep[k]`, zero elsewhere: one pass of selects over a whole patch row,
/// which vectorises (row by row, W6's 14-element rows were short loops with scalar tails).
fn select_copy<T: Float>(dst: &mut [MaybeUninit<T>], src: &[T], keep: &[bool]) {
    #[inline(always)]
    fn body<T: Float>(dst: &mut [MaybeUninit<T>], src: &[T], keep: &[bool]) {
        let zero = T::zero();
        for ((d, &s), &k) in dst.iter_mut().zip(src).zip(keep) {
            d.write(if k { s } else { zero });
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Float>(dst: &mut [MaybeUninit<T>], src: &[T], keep: &[bool]) {
            body(dst, src, keep)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above); the body is safe code.
            unsafe { avx2(dst, src, keep) };
            return;
        }
    }
    body(dst, src, keep)
}

/// `dst[k] += src[k]` where `keep[k]`. The kept sum is written back unchanged elsewhere (a select,
/// not `+ 0`, which would turn a `-0.0` into `+0.0`), so the result is bit for bit that of
/// adding the kept elements one by one.
fn select_add<T: Float>(dst: &mut [T], src: &[T], keep: &[bool]) {
    #[inline(always)]
    fn body<T: Float>(dst: &mut [T], src: &[T], keep: &[bool]) {
        for ((d, &s), &k) in dst.iter_mut().zip(src).zip(keep) {
            *d = if k { *d + s } else { *d };
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Float>(dst: &mut [T], src: &[T], keep: &[bool]) {
            body(dst, src, keep)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above); the body is safe code.
            unsafe { avx2(dst, src, keep) };
            return;
        }
    }
    body(dst, src, keep)
}

/// Patches of `x` (`[N, C, H, W]`) in `layout`: `[N, C·kh·kw, L]` or `[C·kh·kw, N, L]`.
fn im2col_t<T: Float>(x: &[T], l: &Layout, w: &Window2d, layout: PatchLayout) -> AResult<Vec<T>> {
    let d = l.shape.dims();
    let dims = (d[0], d[1], d[2], d[3]);
    if dims.0 * dims.1 == 0 {
        // No output element: skip the tap tables, whose size an empty batch does not bound.
        return Ok(Vec::new());
    }
    let x = contiguous(x, l)?;
    // The caller validated the output shape, so this product does not overflow.
    let total = dims.0 * dims.1 * w.kernel.0 * w.kernel.1 * w.out_len(dims.2, 0).unwrap_or(0) * w.out_len(dims.3, 1).unwrap_or(0);
    let mut out: Vec<T> = pool::take(total)?;
    // `take` guarantees capacity >= total; the slice checks it again before `set_len` relies on it.
    let par = total >= PAR_THRESHOLD && rayon::current_num_threads() > 1;
    im2col_into(&x, dims, w, layout, &mut out.spare_capacity_mut()[..total], par)?;
    // SAFETY: the capacity is at least `total` (the `[..total]` slice above would have failed
    // otherwise), and `im2col_into` wrote every one of those slots.
    unsafe { out.set_len(total) };
    Ok(out)
}

/// [`im2col_t`] of the contiguous `[N, C, H, W]` batch `x` (`dims`) into `spare`, whose every
/// element it writes; `spare` must hold exactly the patches. `par` splits the work over rayon's
/// threads.
pub(super) fn im2col_into<T: Float>(
    x: &[T],
    (n, c, h, wd): (usize, usize, usize, usize),
    w: &Window2d,
    layout: PatchLayout,
    spare: &mut [MaybeUninit<T>],
    par: bool,
) -> AResult<()> {
    let (kh, kw) = w.kernel;
    if n * c == 0 {
        return Ok(());
    }
    let Grid { oh, ow, ty, tx } = Grid::new(w, h, wd)?;
    let plane_len = oh * ow;
    let unit_cols = w.stride.1 == 1 && w.dilation.1 == 1;
    let zero = T::zero();
    let same = SameTaps::new(w, h, wd, oh, ow)?;
    // Writes all `oh * ow` slots of `row`: tap `(i, j)` of channel `ch` of sample `b` at every
    // window position (the buffer may be a reused one).
    let tap_row = |b: usize, ch: usize, i: usize, j: usize, row: &mut [MaybeUninit<T>]| {
        let plane = &x[(b * c + ch) * h * wd..(b * c + ch + 1) * h * wd];
        let (lo, hi) = valid_cols(wd, ow, j, w.padding.1);
        if let Some(same) = &same {
            // One shifted run of the plane, with selects for the positions that wrapped round a
            // row edge: per output row, the copies of a small plane (14 elements in W6's second
            // layer) had been `memmove` calls, a quarter of that convolution's time.
            let (e0, e1, shift) = same.run(i, j);
            let zero_fill = |r: &mut [MaybeUninit<T>]| {
                r.iter_mut().for_each(|v| {
                    v.write(zero);
                })
            };
            zero_fill(&mut row[..e0]);
            let src = &plane[(e0 as isize + shift) as usize..(e1 as isize + shift) as usize];
            select_copy(&mut row[e0..e1], src, same.keep(j, e0, e1));
            zero_fill(&mut row[e1..]);
            return;
        }
        for (oy, row) in row.chunks_exact_mut(ow).enumerate() {
            let Some(iy) = ty[i * oh + oy] else {
                row.iter_mut().for_each(|r| {
                    r.write(zero);
                });
                continue;
            };
            let src = &plane[iy * wd..(iy + 1) * wd];
            if unit_cols {
                // Stride 1: the valid taps are one contiguous run of the input row.
                row[..lo].iter_mut().for_each(|r| {
                    r.write(zero);
                });
                if hi > lo {
                    let s0 = lo + j - w.padding.1;
                    for (r, &v) in row[lo..hi].iter_mut().zip(&src[s0..s0 + (hi - lo)]) {
                        r.write(v);
                    }
                }
                row[hi..].iter_mut().for_each(|r| {
                    r.write(zero);
                });
            } else {
                for (ox, r) in row.iter_mut().enumerate() {
                    r.write(tx[j * ow + ox].map_or(zero, |ix| src[ix]));
                }
            }
        }
    };
    let rows = c * kh * kw;
    assert_eq!(spare.len(), n * rows * plane_len, "im2col: the output does not hold the patches");
    if plane_len > 0 {
        // The output in blocks of `plane_len` rows: per sample, sample `b`'s `[C·kh·kw, L]` block
        // holds its tap rows `r = (ch, i, j)` in turn; in the batch layout, block `r` holds tap
        // row `r` of every sample in turn.
        let batch = layout == PatchLayout::Batch;
        let (blocks, block) = if batch { (rows, n * plane_len) } else { (n, rows * plane_len) };
        // Tap row `r` is `(ch, i, j)` with `r = (ch * kh + i) * kw + j`; the divisions are done
        // once per block, not per row (three divisions per row of W6's 196 elements had cost
        // about as much as the row's copy).
        let fill = |outer: usize, dst: &mut [MaybeUninit<T>]| {
            let mut rows = dst.chunks_exact_mut(plane_len);
            if batch {
                let (ch, i, j) = (outer / (kh * kw), (outer / kw) % kh, outer % kw);
                for (b, row) in rows.enumerate() {
                    tap_row(b, ch, i, j, row);
                }
            } else {
                for ch in 0..c {
                    for i in 0..kh {
                        for j in 0..kw {
                            if let Some(row) = rows.next() {
                                tap_row(outer, ch, i, j, row);
                            }
                        }
                    }
                }
            }
        };
        if par && blocks > 1 {
            spare.par_chunks_mut(block).enumerate().for_each(|(o, dst)| fill(o, dst));
        } else {
            spare.chunks_mut(block).enumerate().for_each(|(o, dst)| fill(o, dst));
        }
    }
    // The chunks (of `rows * plane_len` or `n * plane_len` slots) cover all of `spare` in whole
    // `plane_len` rows, and `tap_row` writes every slot of each (zero where the tap lies in the
    // padding). With `plane_len == 0`, `spare` is empty.
    Ok(())
}

/// The adjoint of [`im2col_t`]: patches in `layout` summed back into `[N, C, H, W]`.
fn col2im_t<T: Float>(x: &[T], l: &Layout, w: &Window2d, c: usize, (h, wd): (usize, usize), layout: PatchLayout) -> AResult<Vec<T>> {
    let n = match layout {
        PatchLayout::PerSample => l.shape.dims()[0],
        PatchLayout::Batch => l.shape.dims()[1],
    };
    // The caller validated the output shape `[n, c, h, wd]`, so this product does not overflow.
    let mut out = pool::filled(n * c * h * wd, T::zero())?;
    if l.shape.elem_count() == 0 {
        // Nothing to add (and the tap tables, which an empty input does not bound, are skipped).
        return Ok(out);
    }
    let cols = contiguous(x, l)?;
    let par = out.len() >= PAR_THRESHOLD && rayon::current_num_threads() > 1;
    col2im_into(&cols, (n, c, h, wd), w, layout, &mut out, par)?;
    Ok(out)
}

/// [`col2im_t`] of the contiguous patches `cols` of an `[N, C, H, W]` batch (`dims`), added into
/// `out` (that batch, usually zeros). `par` splits the work over rayon's threads.
pub(super) fn col2im_into<T: Float>(
    cols: &[T],
    (n, c, h, wd): (usize, usize, usize, usize),
    w: &Window2d,
    layout: PatchLayout,
    out: &mut [T],
    par: bool,
) -> AResult<()> {
    let (kh, kw) = w.kernel;
    let per_out = c * h * wd;
    assert_eq!(out.len(), n * per_out, "col2im: the output is not the image");
    if cols.is_empty() {
        return Ok(());
    }
    let Grid { oh, ow, ty, tx } = Grid::new(w, h, wd)?;
    let plane_len = oh * ow;
    assert_eq!(cols.len(), n * c * kh * kw * plane_len, "col2im: the patches do not fit the image");
    let rows = c * kh * kw;
    // Where row `r` of sample `b`'s patches starts.
    let row_at = |b: usize, r: usize| match layout {
        PatchLayout::PerSample => (b * rows + r) * plane_len,
        PatchLayout::Batch => (r * n + b) * plane_len,
    };
    let unit_cols = w.stride.1 == 1 && w.dilation.1 == 1;
    let same = SameTaps::new(w, h, wd, oh, ow)?;
    // Adds tap `(i, j)` of channel plane `ch` of sample `b` (its patch row) into `plane`.
    let add_tap = |b: usize, ch: usize, i: usize, j: usize, plane: &mut [T]| {
        let (lo, hi) = valid_cols(wd, ow, j, w.padding.1);
        let at = row_at(b, (ch * kh + i) * kw + j);
        if let Some(same) = &same {
            // The adjoint of im2col's shifted run: one pass of selects instead of a short loop
            // per output row. Taps are still added one after another, in the same order.
            let (e0, e1, shift) = same.run(i, j);
            let dst = &mut plane[(e0 as isize + shift) as usize..(e1 as isize + shift) as usize];
            select_add(dst, &cols[at + e0..at + e1], same.keep(j, e0, e1));
            return;
        }
        for (oy, row) in cols[at..at + plane_len].chunks_exact(ow).enumerate() {
            let Some(iy) = ty[i * oh + oy] else { continue };
            if unit_cols {
                if hi == lo {
                    continue;
                }
                let s0 = iy * wd + lo + j - w.padding.1;
                for (p, &v) in plane[s0..s0 + (hi - lo)].iter_mut().zip(&row[lo..hi]) {
                    *p += v;
                }
            } else {
                for (ox, &v) in row.iter().enumerate() {
                    if let Some(ix) = tx[j * ow + ox] {
                        plane[iy * wd + ix] += v;
                    }
                }
            }
        }
    };
    let fill = |b: usize, dst: &mut [T]| {
        for (ch, plane) in dst.chunks_exact_mut(h * wd).enumerate() {
            for i in 0..kh {
                for j in 0..kw {
                    add_tap(b, ch, i, j, plane);
                }
            }
        }
    };
    if ow == 0 || per_out == 0 {
        return Ok(());
    }
    if par && n > 1 {
        out.par_chunks_mut(per_out).enumerate().for_each(|(b, dst)| fill(b, dst));
    } else {
        out.chunks_mut(per_out).enumerate().for_each(|(b, dst)| fill(b, dst));
    }
    Ok(())
}

/// Max over each window of `[N, C, H, W]` (taps in the padding are skipped, i.e. act as -inf):
/// values `[N, C, oh, ow]` and, for each, the flat index `iy * W + ix` of its first maximum in its
/// plane (NaN wins, the last NaN of a window, as in PyTorch's CPU kernel). The caller guarantees every window holds at least one real tap.
fn max_pool_t<T: Float>(x: &[T], l: &Layout, w: &Window2d) -> AResult<(Vec<T>, Vec<i64>)> {
    let d = l.shape.dims();
    let (n, c, h, wd) = (d[0], d[1], d[2], d[3]);
    let (kh, kw) = w.kernel;
    let planes = n * c;
    if planes == 0 {
        // No output element: skip the tap tables, whose size an empty batch does not bound.
        return Ok((Vec::new(), Vec::new()));
    }
    let Grid { oh, ow, ty, tx } = Grid::new(w, h, wd)?;
    let x = contiguous(x, l)?;
    // The caller validated the output shape `[n, c, oh, ow]`, so these products do not overflow.
    let (plane_in, plane_out) = (h * wd, oh * ow);
    let mut vals: Vec<T> = pool::take(planes * plane_out)?;
    let mut idxs: Vec<i64> = pool::take(planes * plane_out)?;
    #[allow(clippy::eq_op)]
    let is_nan = |v: T| v != v;
    // One plane at a time: its output values and indices.
    let fill = |p: usize, vo: &mut [MaybeUninit<T>], io: &mut [MaybeUninit<i64>]| {
        let src = &x[p * plane_in..(p + 1) * plane_in];
        // Fast path: 2x2 windows, stride 2, no padding or dilation (the common `MaxPool2d(2)`).
        if (kh, kw) == (2, 2) && w.stride == (2, 2) && w.padding == (0, 0) && w.dilation == (1, 1) && wd < i32::MAX as usize {
            pool2x2_dispatch(src, wd, oh, ow, vo, io);
            return;
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = T::NEG_INFINITY;
                let mut bi = usize::MAX;
                for i in 0..kh {
                    let Some(iy) = ty[i * oh + oy] else { continue };
                    for j in 0..kw {
                        let Some(ix) = tx[j * ow + ox] else { continue };
                        let v = src[iy * wd + ix];
                        // PyTorch's rule: a later NaN replaces an earlier one too.
                        if bi == usize::MAX || v > best || is_nan(v) {
                            best = v;
                            bi = iy * wd + ix;
                        }
                    }
                }
                vo[oy * ow + ox].write(best);
                io[oy * ow + ox].write(if bi == usize::MAX { 0 } else { bi as i64 });
            }
        }
    };
    let total = planes * plane_out;
    // `take` guarantees capacity >= total; the slices check it again before `set_len` relies on it.
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
    // SAFETY: both capacities are at least `total` (the `[..total]` slices above would have failed
    // otherwise); `fill` writes every output position of each plane it is given, and the planes
    // cover all `total` slots.
    unsafe {
        vals.set_len(total);
        idxs.set_len(total);
    }
    Ok((vals, idxs))
}

/// [`pool2x2_plane`] compiled for AVX2 where the CPU has it: 8-lane selects instead of SSE2's 4.
fn pool2x2_dispatch<T: Float>(src: &[T], wd: usize, oh: usize, ow: usize, vo: &mut [MaybeUninit<T>], io: &mut [MaybeUninit<i64>]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Float>(src: &[T], wd: usize, oh: usize, ow: usize, vo: &mut [MaybeUninit<T>], io: &mut [MaybeUninit<i64>]) {
            pool2x2_plane(src, wd, oh, ow, vo, io)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above); the body is safe code.
            unsafe { avx2(src, wd, oh, ow, vo, io) };
            return;
        }
    }
    pool2x2_plane(src, wd, oh, ow, vo, io)
}

/// Max pooling of one plane `src` (width `wd`) by 2x2 windows at stride 2 into `oh x ow` values
/// `vo` and plane indices `io`, with [`max_pool_t`]'s rule (first maximum, last NaN). The caller
/// guarantees `wd + 1` fits an `i32`.
///
/// Windows are taken `BLK` at a time in output order, across output rows (W6's planes are only
/// 14 and 7 windows wide): their four taps are first copied into four contiguous arrays, then the
/// winner is picked with selects over those arrays, which vectorise to blends. Which tap wins is
/// data-dependent, so branches here mispredict about every other window. The winning tap is kept
/// as an `i32` offset so that the select lanes are as wide as the values'.
#[inline(always)]
fn pool2x2_plane<T: Float>(src: &[T], wd: usize, oh: usize, ow: usize, vo: &mut [MaybeUninit<T>], io: &mut [MaybeUninit<i64>]) {
    const BLK: usize = 64;
    #[allow(clippy::eq_op)]
    let is_nan = |v: T| v != v;
    let (mut q, mut best, mut tap) = ([[T::zero(); BLK]; 4], [T::zero(); BLK], [0i32; BLK]);
    let mut corner = [0usize; BLK];
    let (wd1, wd2) = (wd as i32, wd as i32 + 1);
    let n = oh * ow;
    let mut flat0 = 0;
    while flat0 < n {
        let len = BLK.min(n - flat0);
        // Gather the block's taps, one output row's run at a time.
        let (mut k, mut f) = (0, flat0);
        while k < len {
            let (oy, ox) = (f / ow, f % ow);
            let run = (ow - ox).min(len - k);
            let top = 2 * oy * wd + 2 * ox;
            let (p0, p1) = (&src[top..top + 2 * run], &src[top + wd..top + wd + 2 * run]);
            let [q0, q1, q2, q3] = &mut q;
            for (j, (t, b)) in p0.chunks_exact(2).zip(p1.chunks_exact(2)).enumerate() {
                (q0[k + j], q1[k + j], q2[k + j], q3[k + j]) = (t[0], t[1], b[0], b[1]);
                corner[k + j] = top + 2 * j;
            }
            k += run;
            f += run;
        }
        for (((((m, t), &a), &b), &c2), &d2) in best[..len]
            .iter_mut()
            .zip(&mut tap[..len])
            .zip(&q[0][..len])
            .zip(&q[1][..len])
            .zip(&q[2][..len])
            .zip(&q[3][..len])
        {
            // PyTorch's scan: take v if v > best or v is NaN (first maximum, last NaN).
            let (mut bv, mut bt) = (a, 0i32);
            let u = (b > bv) | is_nan(b);
            bv = if u { b } else { bv };
            bt = if u { 1 } else { bt };
            let u = (c2 > bv) | is_nan(c2);
            bv = if u { c2 } else { bv };
            bt = if u { wd1 } else { bt };
            let u = (d2 > bv) | is_nan(d2);
            bv = if u { d2 } else { bv };
            bt = if u { wd2 } else { bt };
            *m = bv;
            *t = bt;
        }
        for ((v, i), ((&m, &t), &c)) in vo[flat0..flat0 + len]
            .iter_mut()
            .zip(&mut io[flat0..flat0 + len])
            .zip(best[..len].iter().zip(&tap[..len]).zip(&corner[..len]))
        {
            v.write(m);
            i.write(c as i64 + t as i64);
        }
        flat0 += len;
    }
}

impl CpuStorage {
    pub(crate) fn im2col(&self, l: &Layout, w: &Window2d, layout: PatchLayout) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(im2col_t(v, l, w, layout).map_err(|e| e.at("unfold2d"))?)),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(im2col_t(v, l, w, layout).map_err(|e| e.at("unfold2d"))?)),
            CpuStorage::F16(v) => Ok(CpuStorage::F16(im2col_t(v, l, w, layout).map_err(|e| e.at("unfold2d"))?)),
            CpuStorage::BF16(v) => Ok(CpuStorage::BF16(im2col_t(v, l, w, layout).map_err(|e| e.at("unfold2d"))?)),
            o => Err(Error::DType {
                op: "unfold2d",
                expected: "a float dtype (f16, bf16, f32 or f64)",
                got: o.dtype(),
            }),
        }
    }
    pub(crate) fn max_pool2d(&self, l: &Layout, w: &Window2d) -> Result<(Self, Self)> {
        match self {
            CpuStorage::F32(v) => {
                let (a, i) = max_pool_t(v, l, w).map_err(|e| e.at("max_pool2d"))?;
                Ok((CpuStorage::F32(a), CpuStorage::I64(i)))
            }
            CpuStorage::F64(v) => {
                let (a, i) = max_pool_t(v, l, w).map_err(|e| e.at("max_pool2d"))?;
                Ok((CpuStorage::F64(a), CpuStorage::I64(i)))
            }
            CpuStorage::F16(v) => {
                let (a, i) = max_pool_t(v, l, w).map_err(|e| e.at("max_pool2d"))?;
                Ok((CpuStorage::F16(a), CpuStorage::I64(i)))
            }
            CpuStorage::BF16(v) => {
                let (a, i) = max_pool_t(v, l, w).map_err(|e| e.at("max_pool2d"))?;
                Ok((CpuStorage::BF16(a), CpuStorage::I64(i)))
            }
            o => Err(Error::DType {
                op: "max_pool2d",
                expected: "a float dtype (f16, bf16, f32 or f64)",
                got: o.dtype(),
            }),
        }
    }
    pub(crate) fn col2im(&self, l: &Layout, w: &Window2d, c: usize, out_hw: (usize, usize), layout: PatchLayout) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(col2im_t(v, l, w, c, out_hw, layout).map_err(|e| e.at("fold2d"))?)),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(col2im_t(v, l, w, c, out_hw, layout).map_err(|e| e.at("fold2d"))?)),
            CpuStorage::F16(v) => Ok(CpuStorage::F16(col2im_t(v, l, w, c, out_hw, layout).map_err(|e| e.at("fold2d"))?)),
            CpuStorage::BF16(v) => Ok(CpuStorage::BF16(col2im_t(v, l, w, c, out_hw, layout).map_err(|e| e.at("fold2d"))?)),
            o => Err(Error::DType {
                op: "fold2d",
                expected: "a float dtype (f16, bf16, f32 or f64)",
                got: o.dtype(),
            }),
        }
    }
}
