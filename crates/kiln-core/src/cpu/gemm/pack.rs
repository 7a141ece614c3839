//! Packing: copies a block of an operand, with any strides, into the panel order the micro-kernel
//! streams through (contiguous, zero-padded to whole tiles). Safe, bounds-checked code: the
//! caller has checked that the whole operand lies inside its buffer, so no index here overflows.

use super::{GemmScalar, MatRef};

/// Packs rows `i0..i0+mc`, columns `p0..p0+kc` of `a` into `ceil(mc / mr)` panels of `kc * mr`
/// elements: panel `q`, step `p`, row `i` at `dst[q*kc*mr + p*mr + i]`; rows past `mc` are zero.
pub(super) fn pack_a<T: GemmScalar>(a: &MatRef<'_, T>, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize, dst: &mut [T]) {
    let panels = mc.div_ceil(mr);
    if a.rs == 1 {
        // Column-major A (a transposed operand): each step's rows are one contiguous run.
        pack_runs(a, i0, mc, p0, kc, mr, &mut dst[..panels * kc * mr]);
        return;
    }
    for (q, panel) in dst[..panels * kc * mr].chunks_exact_mut(kc * mr).enumerate() {
        let iq = i0 + q * mr;
        let h = mr.min(i0 + mc - iq);
        if a.cs == 1 && T::transpose_pack(a.data, a.off + iq * a.rs + p0, a.rs, h, kc, mr, panel) {
            // Row-major A through the CPU's register transpose.
            if h < mr {
                panel.chunks_exact_mut(mr).for_each(|step| step[h..].fill(T::zero()));
            }
        } else if a.cs == 1 {
            // Row-major A: a transpose. Taken 16 steps at a time, so that the writes of every row
            // land in the same 16 panel rows (a few KiB, in L1) and each source cache line is
            // read whole; row by row over the full depth, every write missed L1 once the panel
            // outgrew it (a 768-deep panel of 32 is 96 KiB).
            const STEPS: usize = 16;
            for (pb, steps) in panel.chunks_mut(STEPS * mr).enumerate() {
                let p = pb * STEPS;
                let len = STEPS.min(kc - p);
                for i in 0..h {
                    let s = a.off + (iq + i) * a.rs + p0 + p;
                    for (step, &v) in steps.chunks_exact_mut(mr).zip(&a.data[s..s + len]) {
                        step[i] = v;
                    }
                }
            }
            if h < mr {
                panel.chunks_exact_mut(mr).for_each(|step| step[h..].fill(T::zero()));
            }
        } else {
            for (p, step) in panel.chunks_exact_mut(mr).enumerate() {
                let base = a.off + (p0 + p) * a.cs;
                for (i, v) in step[..h].iter_mut().enumerate() {
                    *v = a.data[base + (iq + i) * a.rs];
                }
                step[h..].fill(T::zero());
            }
        }
    }
}

/// [`pack_a`] where each step's rows are one contiguous run (a column-major A, or a row-major B
/// seen through its transpose). Taken `STEPS` steps at a time across every panel, so the source
/// is read as `STEPS` sequential streams; panel by panel, each panel read one short run from each
/// of `kc` source lines a whole line stride apart (4 KiB at 1024 columns of f32), a new page at
/// every step, which the hardware prefetchers do not follow.
fn pack_runs<T: GemmScalar>(a: &MatRef<'_, T>, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize, dst: &mut [T]) {
    const STEPS: usize = 16;
    let panel_len = kc * mr;
    for pb in (0..kc).step_by(STEPS) {
        let len = STEPS.min(kc - pb);
        for (q, panel) in dst.chunks_exact_mut(panel_len).enumerate() {
            let iq = i0 + q * mr;
            let h = mr.min(i0 + mc - iq);
            for (p, step) in panel[pb * mr..(pb + len) * mr].chunks_exact_mut(mr).enumerate() {
                let s = a.off + iq + (p0 + pb + p) * a.cs;
                copy_run(&mut step[..h], &a.data[s..s + h]);
                step[h..].fill(T::zero());
            }
        }
    }
}

/// Packs rows `p0..p0+kc`, columns `j0..j0+nc` of `b` into `ceil(nc / nr)` panels of `kc * nr`
/// elements: panel `q`, step `p`, column `j` at `dst[q*kc*nr + p*nr + j]`; columns past `nc` are zero.
/// That is exactly [`pack_a`] of `bᵀ` (its columns are `bᵀ`'s rows), so the transposed view is
/// packed: a row-major B takes pack_a's contiguous-run path, a column-major one its row path.
pub(super) fn pack_b<T: GemmScalar>(b: &MatRef<'_, T>, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: &mut [T]) {
    let bt = MatRef {
        data: b.data,
        off: b.off,
        rs: b.cs,
        cs: b.rs,
    };
    pack_a(&bt, j0, nc, p0, kc, nr, dst);
}

/// `dst.copy_from_slice(src)` for the short runs of one panel step. At a kernel's tile sizes the
/// copy has a length known at compile time and is a few vector moves; `copy_from_slice` with a
/// run-time length is a call to `memcpy` per step (5 % of a W5 training step).
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    fn fixed<T: Copy, const N: usize>(dst: &mut [T], src: &[T]) -> bool {
        match (<&mut [T; N]>::try_from(dst), <&[T; N]>::try_from(src)) {
            (Ok(d), Ok(s)) => {
                *d = *s;
                true
            }
            _ => false,
        }
    }
    let done = match dst.len() {
        6 => fixed::<T, 6>(dst, src),
        8 => fixed::<T, 8>(dst, src),
        12 => fixed::<T, 12>(dst, src),
        16 => fixed::<T, 16>(dst, src),
        32 => fixed::<T, 32>(dst, src),
        _ => false,
    };
    if !done {
        dst.copy_from_slice(src);
    }
}
