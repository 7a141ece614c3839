//! Direct "same" convolutions in f32 on AVX-512: stride 1, dilation 1 and an output as large as
//! the input (`2 * padding + 1 == kernel` on both axes), the 3x3 / padding-1 layer of most small
//! CNNs. Used for the forward pass and, with the weight flipped and transposed, for the input's
//! gradient, which is the same kind of convolution.
//!
//! The im2col route writes a patch matrix `kh·kw` times the input's size and reads it back in
//! the product; at W6's 16 -> 32 layer those passes took about half of the forward's time on an
//! Emerald Rapids vCPU (the product itself ran near the FMA peak). Here the kernel reads the
//! input in place. One sample's input, with `ph` zero rows above and below each plane, stays in
//! L1 while every tile of the output is computed from it: a tile is 8 output channels by up to
//! 48 consecutive positions of the flattened `oh·ow` plane, 24 zmm accumulators. Each step along
//! the reduction (`c`, `dy`, `dx`) loads the input at one offset (three 16-lane vectors) and
//! broadcasts 8 weights against them; positions whose column `x + dx - pw` leaves the row are
//! masked off in the load, which is exactly the zero padding, so no columns of padding exist
//! and no work is wasted on them.
//!
//! Every output element is one fixed sequence of FMAs whatever the thread count (the samples are
//! split over threads, never a sum), and the reduction runs in the patch matrix's order, `c`,
//! then `dy`, then `dx`.

// The kernels index their register tiles by (row, vector) in fixed loops, which unroll.
#![allow(clippy::needless_range_loop)]

use super::pool;
use crate::backend::Window2d;
use crate::{Error, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Output channels per tile (rows of broadcast weights).
const ROWS: usize = 8;
/// Positions per vector.
const LANES: usize = 16;
/// Vectors of positions per full tile.
const MAX_NV: usize = 3;

/// The sizes of one same convolution: `[n, c, h, w]` by `[o, c, kh, kw]` into `[n, o, h, w]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct SameConv {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
}

impl SameConv {
    /// The direct kernel's convolution for `[n, c, h, w]` by `o` filters of `win`, when `win` is a
    /// same convolution this CPU runs directly: AVX-512F, unit strides and dilations, and padding
    /// that keeps the plane's size.
    pub(super) fn new((n, c, h, w): (usize, usize, usize, usize), o: usize, win: &Window2d) -> Option<SameConv> {
        let (kh, kw) = win.kernel;
        let same = |k: usize, p: usize| p.checked_mul(2).and_then(|p2| p2.checked_add(1)) == Some(k);
        let shape_ok = win.stride == (1, 1)
            && win.dilation == (1, 1)
            && same(kh, win.padding.0)
            && same(kw, win.padding.1)
            && [n, c, h, w, o].iter().all(|&v| v > 0)
            // Tiles of 8 channels: at most a third of their rows idle. (One output channel,
            // the input gradient of a first layer on grey images, ran at half the im2col
            // route's speed: 970 against 505 µs for W6's 28 x 28 layer.)
            && o.div_ceil(ROWS) * ROWS * 3 <= o * 4;
        (shape_ok && available()).then_some(SameConv { n, c, h, w, o, kh, kw })
    }
    /// The same convolution that computes this one's input gradient (the output gradient's `o`
    /// channels in, `c` channels out), when it runs directly.
    pub(super) fn transposed(&self, win: &Window2d) -> Option<SameConv> {
        SameConv::new((self.n, self.o, self.h, self.w), self.c, win)
    }
    fn plane(&self) -> usize {
        self.h * self.w
    }
    /// The reduction's length per output element.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// One padded input plane: `kh - 1` zero rows in all, half above and half below.
    fn padded_plane(&self) -> usize {
        (self.h + self.kh - 1) * self.w
    }
    /// One padded sample: a lead of `pw`, the padded planes, and a trail of `pw + 16` (a
    /// vector read starts at most 15 elements before the last lane it needs).
    fn padded_sample(&self) -> usize {
        self.kw / 2 + self.c * self.padded_plane() + self.kw / 2 + LANES
    }
}

fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let off = *OFF.get_or_init(|| std::env::var_os("KILN_CONV_DIRECT").is_some_and(|v| v == "0"));
        !off && is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The same convolution of the contiguous `x` (`[n, c, h, w]`) by the filters `weight(oc, k)`
/// (output channel `oc`, reduction index `k = (ci * kh + dy) * kw + dx`), plus `bias[oc]`:
/// the contiguous `[n, o, h, w]` output.
pub(super) fn same_conv_f32(
    d: &SameConv,
    x: &[f32],
    weight: impl Fn(usize, usize) -> f32,
    bias: Option<&[f64]>,
    op: &'static str,
) -> Result<Vec<f32>> {
    let (plane, k) = (d.plane(), d.k());
    if x.len() != d.n * d.c * plane {
        return Err(Error::shape(
            op,
            format!("the direct convolution got {} input elements for {d:?}", x.len()),
        ));
    }
    let groups = d.o.div_ceil(ROWS);
    // Filters packed as [group][k][ROWS], the missing channels of a last partial group zero.
    let mut wp: Vec<f32> = pool::filled(groups * k * ROWS, 0.0).map_err(|e| e.at(op))?;
    for (g, block) in wp.chunks_exact_mut(k * ROWS).enumerate() {
        for (kk, step) in block.chunks_exact_mut(ROWS).enumerate() {
            for (r, v) in step.iter_mut().enumerate() {
                let oc = g * ROWS + r;
                if oc < d.o {
                    *v = weight(oc, kk);
                }
            }
        }
    }
    // Added as each tile is stored, after the sum (as a broadcast add after the op would, so the
    // same bits as the im2col route's).
    let init: Option<Vec<f32>> = bias.map(|b| (0..groups * ROWS).map(|oc| b.get(oc).map_or(0.0, |&v| v as f32)).collect());
    let masks = column_masks(d);
    let len = d.n * d.o * plane;
    let mut out: Vec<f32> = pool::take(len).map_err(|e| e.at(op))?;
    let run = |pad: &mut Vec<f32>, (src, dst): (&[f32], &mut [MaybeUninit<f32>])| -> Result<()> {
        pad_samples(d, src, pad, op)?;
        sample(d, pad, &wp, init.as_deref(), &masks, dst);
        Ok(())
    };
    let (xs, ys) = (d.c * plane, d.o * plane);
    let spare = &mut out.spare_capacity_mut()[..len];
    if d.n > 1 && rayon::current_num_threads() > 1 {
        x.par_chunks_exact(xs)
            .zip(spare.par_chunks_exact_mut(ys))
            .try_for_each_init(Vec::new, run)?;
    } else {
        let mut pad = Vec::new();
        x.chunks_exact(xs)
            .zip(spare.chunks_exact_mut(ys))
            .try_for_each(|p| run(&mut pad, p))?;
    }
    // SAFETY: the capacity is at least `len` (the slice above checked it), and every sample's
    // tiles stored each of its `o` rows of `h·w` outputs (the tiles cover every channel group
    // and every position; the store masks drop only lanes past the plane's end).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Copies the samples `src` (`[s, c, h, w]`) into `pad` as padded samples of
/// [`SameConv::padded_sample`] elements each: a lead of `pw` elements, each plane with `ph` zero
/// rows above and below, and a trail that every vector read past the last plane stays inside.
/// `pad` is reused: only the planes' rows are rewritten when it already has the right length.
fn pad_samples(d: &SameConv, src: &[f32], pad: &mut Vec<f32>, op: &'static str) -> Result<()> {
    let (plane, per) = (d.plane(), d.padded_sample());
    let len = src.len() / (d.c * plane) * per;
    if pad.len() != len {
        pad.clear();
        pad.try_reserve_exact(len)
            .map_err(|_| pool::AllocError { elems: len, elem_bytes: 4 }.at(op))?;
        pad.resize(len, 0.0);
    }
    let top = d.kw / 2 + d.kh / 2 * d.w;
    for (si, sample) in src.chunks_exact(d.c * plane).enumerate() {
        for (ci, src_plane) in sample.chunks_exact(plane).enumerate() {
            let at = si * per + top + ci * d.padded_plane();
            pad[at..at + plane].copy_from_slice(src_plane);
        }
    }
    Ok(())
}

/// For each vector of 16 positions of the flattened plane and each column tap `dx`: the lanes
/// whose input column `x + dx - pw` lies inside the row (and whose position lies inside the plane).
fn column_masks(d: &SameConv) -> Vec<u16> {
    let plane = d.plane();
    let pw = d.kw / 2;
    let chunks = plane.div_ceil(LANES);
    let mut masks = vec![0u16; chunks * d.kw];
    for ch in 0..chunks {
        for dx in 0..d.kw {
            let mut m = 0u16;
            for lane in 0..LANES {
                let p = ch * LANES + lane;
                let col = p % d.w + dx;
                if p < plane && col >= pw && col - pw < d.w {
                    m |= 1 << lane;
                }
            }
            masks[ch * d.kw + dx] = m;
        }
    }
    masks
}

/// One sample: every tile of `[o, h·w]` from the padded input `pad`.
fn sample(d: &SameConv, pad: &[f32], wp: &[f32], bias: Option<&[f32]>, masks: &[u16], out: &mut [MaybeUninit<f32>]) {
    let plane = d.plane();
    let k = d.k();
    let chunks = plane.div_ceil(LANES);
    let step = MAX_NV * LANES;
    for p0 in (0..plane).step_by(step) {
        let nv = (plane - p0).div_ceil(LANES).min(MAX_NV);
        let ch0 = p0 / LANES;
        debug_assert!(ch0 + nv <= chunks);
        for (g, wg) in wp.chunks_exact(k * ROWS).enumerate() {
            let rows = ROWS.min(d.o - g * ROWS);
            let tile = Tile {
                d,
                pad,
                p0,
                weights: wg,
                bias: bias.map(|b| &b[g * ROWS..][..ROWS]),
                masks: &masks[ch0 * d.kw..][..nv * d.kw],
                out: &mut out[g * ROWS * plane..],
                rows,
            };
            #[cfg(target_arch = "x86_64")]
            match nv {
                1 => tile.run::<1>(),
                2 => tile.run::<2>(),
                _ => tile.run::<3>(),
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = tile;
                unreachable!("the direct convolution is only selected on x86-64");
            }
        }
    }
}

/// One tile's operands: `rows` output channels (of [`ROWS`]) by the positions `p0..` of up to
/// [`MAX_NV`] vectors.
struct Tile<'a> {
    d: &'a SameConv,
    /// The sample's padded input ([`pad_samples`]).
    pad: &'a [f32],
    p0: usize,
    /// This group's filters, `[k][ROWS]`.
    weights: &'a [f32],
    /// This group's biases.
    bias: Option<&'a [f32]>,
    /// `[nv][kw]` column masks of the tile's vectors.
    masks: &'a [u16],
    /// The output from this group's first channel on, rows of `h·w` (written, never read).
    out: &'a mut [MaybeUninit<f32>],
    rows: usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    fn run<const NV: usize>(self) {
        let d = self.d;
        let plane = d.plane();
        let (lead, pp) = (d.kw / 2, d.padded_plane());
        // Everything the kernel's unchecked accesses rely on. Reads: the furthest vector starts
        // at `p0 + 16 (NV - 1)` from the last tap's offset `(c - 1) pp + (kh - 1) w + kw - 1`
        // past `pad[0]` (the `lead` of `pw` elements is where `dx - pw` starts), and reads up to
        // 16 lanes on, which the `trail` of 16 + pw covers. Writes: `rows` rows of `plane` from
        // `out[0]`, masked to the positions below `plane`.
        assert!(is_x86_feature_detected!("avx512f"));
        assert!(self.rows >= 1 && self.rows <= ROWS && self.bias.is_none_or(|b| b.len() == ROWS));
        assert_eq!(self.weights.len(), d.k() * ROWS);
        assert_eq!(self.masks.len(), NV * d.kw);
        assert!(self.p0 + LANES * (NV - 1) < plane);
        let last_read = (d.c - 1) * pp + (d.kh - 1) * d.w + d.kw - 1 + self.p0 + LANES * NV;
        assert!(last_read <= self.pad.len());
        assert!(lead + d.c * pp <= self.pad.len());
        assert!(self.rows * plane <= self.out.len());
        let mut store = [0u16; NV];
        for v in 0..NV {
            let first = self.p0 + v * LANES;
            let valid = (plane - first).min(LANES);
            store[v] = if valid == LANES { u16::MAX } else { (1u16 << valid) - 1 };
        }
        // SAFETY: avx512f checked above; the extents the kernel reads and writes were checked
        // against the slices above (`p0 < plane <= pad.len()` and `<= out.len()`, so both
        // pointers stay inside their slices).
        unsafe {
            let (x, out) = (self.pad.as_ptr().add(self.p0), self.out.as_mut_ptr().add(self.p0).cast::<f32>());
            // The 3-wide kernel with its taps unrolled (its masks then stay in registers).
            if d.kw == 3 {
                kernel::<NV, 3>(d, x, self.weights, self.bias, self.masks, store, out, self.rows)
            } else {
                kernel::<NV, 0>(d, x, self.weights, self.bias, self.masks, store, out, self.rows)
            }
        }
    }
}

/// The tile's FMAs. `x` points at the tile's first position in the padded input (tap `(ci, dy,
/// dx)` of position `p0 + i` is `x[ci pp + dy w + dx + i]`, since the lead is `pw`), `out` at
/// its first output element.
///
/// # Safety
/// The CPU has AVX-512F, and every read of `x` at the offsets above (for unmasked lanes) and
/// every write to `out + r * plane + 16 v + lane` (r < rows, masked by `store`) is in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<const NV: usize, const KW: usize>(
    d: &SameConv,
    x: *const f32,
    weights: &[f32],
    bias: Option<&[f32]>,
    masks: &[u16],
    store: [u16; NV],
    out: *mut f32,
    rows: usize,
) {
    use std::arch::x86_64::*;
    // KW is the kernel's width when known at compile time, 0 otherwise.
    let (pp, w, kw) = (d.padded_plane(), d.w, if KW == 0 { d.kw } else { KW });
    let mut acc = [[_mm512_setzero_ps(); NV]; ROWS];
    let mut wk = weights.as_ptr();
    for ci in 0..d.c {
        for dy in 0..d.kh {
            let row = x.add(ci * pp + dy * w);
            for dx in 0..kw {
                let at = row.add(dx);
                let mut xv = [_mm512_setzero_ps(); NV];
                for v in 0..NV {
                    xv[v] = _mm512_maskz_loadu_ps(*masks.get_unchecked(v * kw + dx), at.add(v * LANES));
                }
                for r in 0..ROWS {
                    let b = _mm512_set1_ps(*wk.add(r));
                    for v in 0..NV {
                        acc[r][v] = _mm512_fmadd_ps(b, xv[v], acc[r][v]);
                    }
                }
                wk = wk.add(ROWS);
            }
        }
    }
    let plane = d.plane();
    for r in 0..rows {
        let b = bias.map(|b| _mm512_set1_ps(b[r]));
        for v in 0..NV {
            let y = match b {
                Some(b) => _mm512_add_ps(acc[r][v], b),
                None => acc[r][v],
            };
            _mm512_mask_storeu_ps(out.add(r * plane + v * LANES), store[v], y);
        }
    }
}

/// Partial sums of a weight's gradient (here and on the im2col route): blocks of samples are
/// summed in this many runs of consecutive blocks, and the runs' sums in order ([`sum_runs`]), so
/// results do not depend on the thread count.
pub(super) const WEIGHT_GRAD_RUNS: usize = 4;

/// The sum of the partial sums `run(0)`, ..., `run(runs - 1)`, added in that order. The runs go to
/// the pool when there are several and threads to take them; the order of the additions does not
/// depend on it, so neither do the bits. `runs` is at least 1.
pub(super) fn sum_runs<T: crate::Float>(runs: usize, run: impl Fn(usize) -> Result<Vec<T>> + Sync) -> Result<Vec<T>> {
    let parts: Vec<Vec<T>> = if runs > 1 && rayon::current_num_threads() > 1 {
        (0..runs).into_par_iter().map(&run).collect::<Result<_>>()?
    } else {
        (0..runs).map(&run).collect::<Result<_>>()?
    };
    let mut parts = parts.into_iter();
    let mut sums = parts.next().expect("at least one run");
    for part in parts {
        sums.iter_mut().zip(&part).for_each(|(a, &p)| *a += p);
    }
    Ok(sums)
}

/// The weight's gradient of the same convolution `d` (`torch.nn.grad.conv2d_weight`): `[o, c,
/// kh, kw]` from the contiguous input `x` (`[n, c, h, w]`) and output gradient `g` (`[n, o, h,
/// w]`), `dW[oc, k] = sum over samples and positions of g[oc, p] * x[tap k of p]`.
///
/// Kernels three columns wide with whole groups of 32 output channels take
/// [`weight_grad_by_channels`], which vectorises along the channels. Otherwise vectors run along
/// the positions: a tile is 8 output channels by up to 3 column taps of one
/// `(ci, dy)`, 24 accumulators of 16 lanes, fed per 16 positions by 8 loads of `g` and up to 3
/// masked loads of the padded input. The accumulators run over a block of samples that fits in
/// half of L2 before they are added to a per-run buffer of lane-wise sums, which is summed across
/// its lanes at the end.
pub(super) fn same_conv_weight_f32(d: &SameConv, x: &[f32], g: &[f32], op: &'static str) -> Result<Vec<f32>> {
    let (plane, k) = (d.plane(), d.k());
    if x.len() != d.n * d.c * plane || g.len() != d.n * d.o * plane {
        return Err(Error::shape(
            op,
            format!(
                "the direct convolution got {} input and {} gradient elements for {d:?}",
                x.len(),
                g.len()
            ),
        ));
    }
    if by_channels_applies(d) {
        return weight_grad_by_channels(d, x, g, op);
    }
    let groups = d.o.div_ceil(ROWS);
    let masks = column_masks(d);
    let per_sample = (d.padded_sample() + d.o * plane) * 4;
    let block = (super::gemm::cache_sizes().1 / 2 / per_sample.max(1)).clamp(1, d.n);
    let blocks = d.n.div_ceil(block);
    let runs = WEIGHT_GRAD_RUNS.min(blocks);
    // Within a block, each group of output channels runs over sub-blocks of samples whose
    // gradient rows (8 of them) and one input plane stay in two thirds of L1 while every tap's
    // tile reads them; a tile's accumulators are added to the sums once per sub-block. (Every
    // tile over the whole block instead re-read the block's gradient from L2 for each tap: 1.8 ms
    // for W6's 16 -> 32 layer, as slow as the im2col route.)
    let per_sub = (ROWS * plane + d.padded_plane()) * 4;
    let sub = (super::gemm::cache_sizes().0 * 2 / 3 / per_sub.max(1)).clamp(1, block);
    let taps: Vec<(usize, usize, usize)> = (0..d.c)
        .flat_map(|ci| (0..d.kh).flat_map(move |dy| (0..d.kw).step_by(3).map(move |dx0| (ci, dy, dx0))))
        .collect();
    // Lane-wise sums, `[group][k][ROWS][LANES]`.
    let sums_len = groups * k * ROWS * LANES;
    let run_sum = |r: usize| -> Result<Vec<f32>> {
        let mut sums: Vec<f32> = pool::filled(sums_len, 0.0).map_err(|e| e.at(op))?;
        let (mut pad, mut grows) = (Vec::new(), Vec::new());
        for b in r * blocks / runs..(r + 1) * blocks / runs {
            let (s0, s1) = (b * block, ((b + 1) * block).min(d.n));
            pad_samples(d, &x[s0 * d.c * plane..s1 * d.c * plane], &mut pad, op)?;
            let gb = &g[s0 * d.o * plane..s1 * d.o * plane];
            // Rows already a whole number of vectors are read in place: copying them cost more
            // than their misaligned loads (W6's 28 x 28 layer: 380 against 262 µs).
            let (grows, stride) = if plane.is_multiple_of(LANES) {
                (gb, plane)
            } else {
                (aligned_rows(gb, plane, &mut grows, op)?, row_stride(plane))
            };
            let per_g = d.o * stride;
            // The groups of output channels write disjoint sums, so they run in parallel too: a
            // layer's few runs alone (W6's 16 -> 32 layer has 3 blocks of samples) left one of two
            // threads idle for a third of the time.
            let group_sums = |(og, sums): (usize, &mut [f32])| {
                for t0 in (s0..s1).step_by(sub) {
                    let t1 = (t0 + sub).min(s1);
                    let (pad, gb) = (&pad[(t0 - s0) * d.padded_sample()..], &grows[(t0 - s0) * per_g..(t1 - s0) * per_g]);
                    for (ci, dy, dx0) in taps.iter().copied() {
                        let kk = (ci * d.kh + dy) * d.kw + dx0;
                        let tile = GradTile {
                            d,
                            pad,
                            g: gb,
                            stride,
                            og,
                            at: ci * d.padded_plane() + dy * d.w + dx0,
                            dx0,
                            masks: &masks,
                            sums: &mut sums[kk * ROWS * LANES..],
                        };
                        #[cfg(target_arch = "x86_64")]
                        match d.kw - dx0 {
                            1 => tile.run::<1>(),
                            2 => tile.run::<2>(),
                            _ => tile.run::<3>(),
                        }
                        #[cfg(not(target_arch = "x86_64"))]
                        {
                            let _ = tile;
                            unreachable!("the direct convolution is only selected on x86-64");
                        }
                    }
                }
            };
            if groups > 1 && rayon::current_num_threads() > 1 {
                sums.par_chunks_mut(k * ROWS * LANES).enumerate().for_each(group_sums);
            } else {
                sums.chunks_mut(k * ROWS * LANES).enumerate().for_each(group_sums);
            }
        }
        Ok(sums)
    };
    // At least one run: n > 0.
    let sums = sum_runs(runs, run_sum)?;
    let mut out: Vec<f32> = pool::take(d.o * k).map_err(|e| e.at(op))?;
    for oc in 0..d.o {
        let (og, r) = (oc / ROWS, oc % ROWS);
        for kk in 0..k {
            let lanes = &sums[((og * k + kk) * ROWS + r) * LANES..][..LANES];
            out.push(lanes.iter().sum());
        }
    }
    Ok(out)
}

/// Output channels per tile of [`weight_grad_by_channels`]: two vectors.
const OC_TILE: usize = 2 * LANES;
/// Rows of taps `(ci, dy)` per tile of [`weight_grad_by_channels`], each with its three column
/// taps: 4 x 3 x 2 = 24 accumulators.
const TAP_ROWS: usize = 4;

/// Whether the weight's gradient runs with vectors along the output channels
/// ([`weight_grad_by_channels`]): kernels three columns wide and whole tiles of 32 channels, on
/// x86-64 (where [`SameConv`] is only made on AVX-512F).
fn by_channels_applies(d: &SameConv) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var_os("KILN_CONV_WGRAD_CHANNELS").is_some_and(|v| v == "0"));
    cfg!(target_arch = "x86_64") && !off && d.kw == 3 && d.o.is_multiple_of(OC_TILE)
}

/// The weight's gradient with vectors along the output channels: `dW[oc, k]` for 32 channels
/// and 12 taps (four `(ci, dy)` rows of three columns) is a tile of 24 accumulators, fed per
/// position by two loads of the gradient (transposed to `[s, p, o]`, so a position's channels
/// are contiguous) and 12 broadcasts of the input (padded on all four sides, so no tap needs a
/// mask). [`same_conv_weight_f32`]'s tiles run along the positions instead: 3 masked unaligned
/// loads and 8 loads of the gradient per 24 FMAs, then a sum across lanes. On a Zen 4 vCPU
/// (2026-12-03, 1 thread, 3 interleaved rounds on a quiet host) W6's 16 -> 32 layer took
/// 1,414-1,425 us that way (about 70 % of the FMA peak) and 1,114-1,140 this way (90 %); on two
/// threads 821-1,255 against 590-712. `KILN_CONV_WGRAD_CHANNELS=0` turns this route off (for
/// side-by-side measurement).
///
/// The samples run in blocks whose padded input and transposed gradient fill half of L2, so
/// each tile's pass over the block reads them from L2; blocks are summed in the same fixed runs
/// as the other route, so results do not depend on the thread count.
fn weight_grad_by_channels(d: &SameConv, x: &[f32], g: &[f32], op: &'static str) -> Result<Vec<f32>> {
    let (plane, k, kw) = (d.plane(), d.k(), d.kw);
    // Checked: the padded sizes exceed the input's, which alone was checked by its length.
    let overflow = || Error::shape(op, format!("the padded sizes of the weight's gradient overflow for {d:?}"));
    let w2 = d.w.checked_add(kw - 1).ok_or_else(overflow)?;
    let h2 = d.h.checked_add(d.kh - 1).ok_or_else(overflow)?;
    let per_x = d.c.checked_mul(h2).and_then(|v| v.checked_mul(w2)).ok_or_else(overflow)?;
    let per_g = plane * d.o;
    let per_sample = per_x.checked_add(per_g).and_then(|v| v.checked_mul(4)).ok_or_else(overflow)?;
    let block = (super::gemm::cache_sizes().1 / 2 / per_sample.max(1)).clamp(1, d.n);
    let blocks = d.n.div_ceil(block);
    let runs = WEIGHT_GRAD_RUNS.min(blocks);
    let pairs = d.c * d.kh;
    // Sums `[og][k][OC_TILE]`: a tile's 12 taps of one group are one contiguous piece.
    let per_group = k * OC_TILE;
    let per_tile = TAP_ROWS * kw * OC_TILE;
    let run_sum = |r: usize| -> Result<Vec<f32>> {
        let mut sums: Vec<f32> = pool::filled(d.o * k, 0.0).map_err(|e| e.at(op))?;
        let (mut xp, mut gt) = (Vec::new(), Vec::new());
        for b in r * blocks / runs..(r + 1) * blocks / runs {
            let (s0, s1) = (b * block, ((b + 1) * block).min(d.n));
            pad_planes(d, &x[s0 * d.c * plane..s1 * d.c * plane], &mut xp, op)?;
            transpose_samples(d, &g[s0 * per_g..s1 * per_g], &mut gt, op)?;
            let tile = |og: usize, t: usize, sums: &mut [f32]| {
                let job = ChannelTile {
                    d,
                    xp: &xp,
                    gt: &gt,
                    samples: s1 - s0,
                    og,
                    q0: t * TAP_ROWS,
                    sums,
                };
                #[cfg(target_arch = "x86_64")]
                match pairs - t * TAP_ROWS {
                    1 => job.run::<1>(),
                    2 => job.run::<2>(),
                    3 => job.run::<3>(),
                    _ => job.run::<TAP_ROWS>(),
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = job;
                    unreachable!("the direct convolution is only selected on x86-64");
                }
            };
            if rayon::current_num_threads() > 1 {
                sums.par_chunks_mut(per_group)
                    .enumerate()
                    .for_each(|(og, group)| group.par_chunks_mut(per_tile).enumerate().for_each(|(t, s)| tile(og, t, s)));
            } else {
                for (og, group) in sums.chunks_mut(per_group).enumerate() {
                    group.chunks_mut(per_tile).enumerate().for_each(|(t, s)| tile(og, t, s));
                }
            }
        }
        Ok(sums)
    };
    // At least one run: n > 0.
    let sums = sum_runs(runs, run_sum)?;
    let mut out: Vec<f32> = pool::take(d.o * k).map_err(|e| e.at(op))?;
    for oc in 0..d.o {
        let (og, lane) = (oc / OC_TILE, oc % OC_TILE);
        out.extend((0..k).map(|kk| sums[(og * k + kk) * OC_TILE + lane]));
    }
    Ok(out)
}

/// Copies the samples `src` (`[s, c, h, w]`) into `pad` as planes of `(h + kh - 1) x (w + kw -
/// 1)` with the padding's zeros on all four sides. `pad` is reused: only the interiors are
/// rewritten when it already has the right length.
fn pad_planes(d: &SameConv, src: &[f32], pad: &mut Vec<f32>, op: &'static str) -> Result<()> {
    let plane = d.plane();
    let (w2, h2) = (d.w + d.kw - 1, d.h + d.kh - 1);
    let len = (src.len() / plane)
        .checked_mul(h2 * w2)
        .ok_or_else(|| Error::shape(op, format!("the padded input overflows for {d:?}")))?;
    if pad.len() != len {
        pad.clear();
        pad.try_reserve_exact(len)
            .map_err(|_| pool::AllocError { elems: len, elem_bytes: 4 }.at(op))?;
        pad.resize(len, 0.0);
    }
    let (top, left) = (d.kh / 2, d.kw / 2);
    for (src_plane, dst_plane) in src.chunks_exact(plane).zip(pad.chunks_exact_mut(h2 * w2)) {
        for (y, row) in src_plane.chunks_exact(d.w).enumerate() {
            let at = (y + top) * w2 + left;
            dst_plane[at..at + d.w].copy_from_slice(row);
        }
    }
    Ok(())
}

/// Each sample of `src` (`[s, o, plane]`) transposed into `dst` as `[s, plane, o]`.
fn transpose_samples(d: &SameConv, src: &[f32], dst: &mut Vec<f32>, op: &'static str) -> Result<()> {
    use super::gemm::GemmScalar;
    let per = d.o * d.plane();
    dst.clear();
    dst.try_reserve_exact(src.len()).map_err(|_| {
        pool::AllocError {
            elems: src.len(),
            elem_bytes: 4,
        }
        .at(op)
    })?;
    let spare = &mut dst.spare_capacity_mut()[..src.len()];
    for (s, t) in src.chunks_exact(per).zip(spare.chunks_exact_mut(per)) {
        f32::transpose_into(s, d.plane(), d.o, d.plane(), t, d.o);
    }
    // SAFETY: the capacity holds `src.len()` elements (reserved above), and each sample's
    // transpose wrote all `o x plane` elements of its part of them.
    unsafe { dst.set_len(src.len()) };
    Ok(())
}

/// One tile of [`weight_grad_by_channels`]: output channels `32 og..` by the taps of the `(ci,
/// dy)` rows `q0..`, over every sample of a block.
struct ChannelTile<'a> {
    d: &'a SameConv,
    /// The block's samples padded by [`pad_planes`].
    xp: &'a [f32],
    /// The block's gradient transposed by [`transpose_samples`].
    gt: &'a [f32],
    samples: usize,
    og: usize,
    /// The first `(ci, dy)` row, `ci * kh + dy`.
    q0: usize,
    /// The tile's sums, `[row][dx][OC_TILE]` from the start.
    sums: &'a mut [f32],
}

#[cfg(target_arch = "x86_64")]
impl ChannelTile<'_> {
    fn run<const R: usize>(self) {
        let d = self.d;
        let (w2, h2) = (d.w + d.kw - 1, d.h + d.kh - 1);
        // Everything the kernel's unchecked accesses rely on: the highest input read is row
        // `(c-1, kh-1)`'s tap `(h-1, w-1)` plus 2 columns, `(c-1) pp2 + (kh-1+h-1) w2 + w + 1 =
        // c pp2 - 1` within a padded sample; the gradient's channels `32 og..+32` of every
        // position of every sample; the sums' `R x 3` vectors pairs.
        assert!(is_x86_feature_detected!("avx512f"));
        assert!(d.kw == 3 && self.q0 + R <= d.c * d.kh);
        let extent = |a: usize, b: usize, c: usize| a.checked_mul(b).and_then(|v| v.checked_mul(c));
        assert!(extent(self.samples, d.c, h2 * w2).is_some_and(|e| self.xp.len() >= e));
        assert!(extent(self.samples, d.plane(), d.o).is_some_and(|e| self.gt.len() >= e));
        assert!((self.og + 1) * OC_TILE <= d.o);
        assert!(self.sums.len() >= R * 3 * OC_TILE);
        // SAFETY: avx512f and every extent checked above.
        unsafe { channel_grad_kernel::<R>(self) }
    }
}

/// [`ChannelTile`]'s FMAs over every sample of the block, added to its sums.
///
/// # Safety
/// The CPU has AVX-512F and the extents [`ChannelTile::run`] checks hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn channel_grad_kernel<const R: usize>(t: ChannelTile<'_>) {
    use std::arch::x86_64::*;
    let d = t.d;
    let (w2, h2, o) = (d.w + 2, d.h + d.kh - 1, d.o);
    let (per_x, per_g) = (d.c * h2 * w2, d.plane() * o);
    let mut base = [0usize; R];
    for (r, b) in base.iter_mut().enumerate() {
        let q = t.q0 + r;
        *b = (q / d.kh) * h2 * w2 + (q % d.kh) * w2;
    }
    let mut acc = [[[_mm512_setzero_ps(); 2]; 3]; R];
    for s in 0..t.samples {
        let xs = t.xp.as_ptr().add(s * per_x);
        let gs = t.gt.as_ptr().add(s * per_g + t.og * OC_TILE);
        for y in 0..d.h {
            let (xy, gy) = (xs.add(y * w2), gs.add(y * d.w * o));
            for xx in 0..d.w {
                let gp = gy.add(xx * o);
                let (g0, g1) = (_mm512_loadu_ps(gp), _mm512_loadu_ps(gp.add(LANES)));
                for r in 0..R {
                    let xr = xy.add(base[r] + xx);
                    for dx in 0..3 {
                        let b = _mm512_set1_ps(*xr.add(dx));
                        acc[r][dx][0] = _mm512_fmadd_ps(b, g0, acc[r][dx][0]);
                        acc[r][dx][1] = _mm512_fmadd_ps(b, g1, acc[r][dx][1]);
                    }
                }
            }
        }
    }
    let sums = t.sums.as_mut_ptr();
    for r in 0..R {
        for dx in 0..3 {
            for v in 0..2 {
                let at = sums.add((r * 3 + dx) * OC_TILE + v * LANES);
                _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), acc[r][dx][v]));
            }
        }
    }
}

/// Rows of `plane` elements padded to whole vectors.
fn row_stride(plane: usize) -> usize {
    plane.div_ceil(LANES) * LANES
}

/// The rows of `src` (each `plane` long) copied into `buf` at a 64-byte boundary, each padded
/// with zeros to [`row_stride`]: the weight-gradient kernel's loads of them are then aligned
/// (a misaligned 64-byte load reads two cache lines, and those loads were the kernel's limit).
fn aligned_rows<'b>(src: &[f32], plane: usize, buf: &'b mut Vec<f32>, op: &'static str) -> Result<&'b [f32]> {
    let stride = row_stride(plane);
    let rows = src.len() / plane;
    let len = rows * stride;
    buf.clear();
    buf.try_reserve_exact(len + LANES).map_err(|_| {
        pool::AllocError {
            elems: len + LANES,
            elem_bytes: 4,
        }
        .at(op)
    })?;
    buf.resize(len + LANES, 0.0);
    // `align_offset` may in principle decline (usize::MAX); an unaligned start is still correct.
    let off = buf.as_ptr().align_offset(64).min(LANES);
    let out = &mut buf[off..off + len];
    for (dst, row) in out.chunks_exact_mut(stride).zip(src.chunks_exact(plane)) {
        dst[..plane].copy_from_slice(row);
    }
    Ok(&buf[off..off + len])
}

/// One tile of the weight's gradient: output channels `8 og..` by the column taps `dx0..` of one
/// `(ci, dy)`, over every sample of a block.
struct GradTile<'a> {
    d: &'a SameConv,
    /// The block's padded samples ([`pad_samples`]).
    pad: &'a [f32],
    /// The block's output gradient, `[s, o, h·w]` in rows of `stride` elements (the padding
    /// lanes zero: [`aligned_rows`]).
    g: &'a [f32],
    stride: usize,
    og: usize,
    /// The offset of tap `(ci, dy, dx0)` within a padded sample.
    at: usize,
    dx0: usize,
    /// [`column_masks`].
    masks: &'a [u16],
    /// The tile's lane-wise sums, `[NT][ROWS][LANES]` from the start.
    sums: &'a mut [f32],
}

#[cfg(target_arch = "x86_64")]
impl GradTile<'_> {
    fn run<const NT: usize>(mut self) {
        let d = self.d;
        let (plane, per) = (d.plane(), d.padded_sample());
        let samples = self.g.len() / (d.o * self.stride);
        let rows = ROWS.min(d.o - self.og * ROWS);
        // Everything the kernel's unchecked accesses rely on: the padded samples' reads (the
        // tap offset plus a position below `plane`, plus at most 15 for a vector's start, stay
        // inside a padded sample: `at + dx <= (c-1) pp + (kh-1) w + kw - 1`, and `plane` more
        // is `c pp + kw - 1 - (pp - plane - (kh-1) w) = c pp + kw - 1`, within `per - 16`);
        // the gradient's rows `8 og + r` (r < rows) of every sample; the sums' `NT` tiles.
        assert!(is_x86_feature_detected!("avx512f"));
        assert!(self.dx0 + NT <= d.kw && self.at + NT - 1 + plane + LANES <= per);
        assert!(self.stride >= plane && self.stride.is_multiple_of(LANES));
        assert!(self.pad.len() >= samples * per && samples * d.o * self.stride == self.g.len());
        assert!(self.og * ROWS + rows <= d.o && self.sums.len() >= NT * ROWS * LANES);
        assert_eq!(self.masks.len(), plane.div_ceil(LANES) * d.kw);
        // SAFETY: avx512f and every extent checked above.
        unsafe {
            if rows == ROWS {
                grad_kernel::<NT, true>(&mut self, samples, rows)
            } else {
                grad_kernel::<NT, false>(&mut self, samples, rows)
            }
        }
    }
}

/// The weight-gradient tile's FMAs over every sample of the block, added to its sums. `FULL`:
/// all [`ROWS`] channels exist (no per-row test in the loop).
///
/// # Safety
/// The CPU has AVX-512F and the extents [`GradTile::run`] checks hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_kernel<const NT: usize, const FULL: bool>(t: &mut GradTile<'_>, samples: usize, rows: usize) {
    use std::arch::x86_64::*;
    let d = t.d;
    let (plane, per, kw) = (d.plane(), d.padded_sample(), d.kw);
    let (chunks, stride) = (plane.div_ceil(LANES), t.stride);
    let mut acc = [[_mm512_setzero_ps(); ROWS]; NT];
    for s in 0..samples {
        let xs = t.pad.as_ptr().add(s * per + t.at);
        let gs = t.g.as_ptr().add((s * d.o + t.og * ROWS) * stride);
        for c in 0..chunks {
            let mut xv = [_mm512_setzero_ps(); NT];
            for (tap, v) in xv.iter_mut().enumerate() {
                let m = *t.masks.get_unchecked(c * kw + t.dx0 + tap);
                *v = _mm512_maskz_loadu_ps(m, xs.add(tap + c * LANES));
            }
            for r in 0..ROWS {
                // Rows past the last channel are zeros, not read. The padding lanes of a row
                // are zeros and the input's lanes past the plane are masked to zeros.
                let gv = if FULL || r < rows {
                    _mm512_loadu_ps(gs.add(r * stride + c * LANES))
                } else {
                    _mm512_setzero_ps()
                };
                for tap in 0..NT {
                    acc[tap][r] = _mm512_fmadd_ps(gv, xv[tap], acc[tap][r]);
                }
            }
        }
    }
    let sums = t.sums.as_mut_ptr();
    for tap in 0..NT {
        for r in 0..ROWS {
            let at = sums.add((tap * ROWS + r) * LANES);
            _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), acc[tap][r]));
        }
    }
}

/// The element types a convolution kernel may run directly in f32 (f32 itself); the others
/// take the im2col route.
pub(super) trait DirectElem: Sized {
    /// `v` as f32 values, when this type is f32.
    fn f32s(v: &[Self]) -> Option<&[f32]>;
    /// A direct kernel's output as this type (only called when [`DirectElem::f32s`] gave values).
    fn from_f32s(v: Vec<f32>) -> Vec<Self>;
}

impl DirectElem for f32 {
    fn f32s(v: &[f32]) -> Option<&[f32]> {
        Some(v)
    }
    fn from_f32s(v: Vec<f32>) -> Vec<f32> {
        v
    }
}

impl DirectElem for f64 {
    fn f32s(_: &[f64]) -> Option<&[f32]> {
        None
    }
    fn from_f32s(v: Vec<f32>) -> Vec<f64> {
        v.into_iter().map(f64::from).collect()
    }
}
