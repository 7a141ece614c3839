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
            let steps = &mut panel[pb * mr..(pb + len) * mr];
            if h == mr && copy_steps(steps, &a.data[a.off + iq + (p0 + pb) * a.cs..], a.cs, mr) {
                continue;
            }
            for (p, step) in steps.chunks_exact_mut(mr).enumerate() {
                let s = a.off + iq + (p0 + pb + p) * a.cs;
                step[..h].copy_from_slice(&a.data[s..s + h]);
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

/// Copies whole steps of one panel, `dst.len() / mr` runs of `mr` elements, run `p` from
/// `src[p * stride..]`, when `mr` is a tile size; false (nothing copied) otherwise.
///
/// Each size is its own function, not inlined: with the sizes as arms of one `match` around a
/// fixed-size copy, LLVM merged the arms into one `memcpy` call of variable length, and the
/// padding's `fill` added a `memset` call of length zero, two calls per run. Each is also
/// compiled for the widest vectors the CPU has: built for plain x86-64, a 128-byte run is eight
/// 16-byte moves, and packing B that way took 3.4-3.5 % of a 1024 x 1024 product where the
/// calls to glibc's AVX-512 `memcpy` took 2.6-2.8 % (Zen 4, 1 thread, `perf record`).
fn copy_steps<T: Copy>(dst: &mut [T], src: &[T], stride: usize, mr: usize) -> bool {
    let Some(runs) = runs_of::<T>(mr) else {
        return false;
    };
    // SAFETY: `runs_of` returns a variant compiled for vector features only when the CPU has them.
    unsafe { runs(dst, src, stride) };
    true
}

/// `dst.len() / N` runs of `N` elements, run `p` from `src[p * stride..]` (panics past `src`).
type Runs<T> = unsafe fn(&mut [T], &[T], usize);

/// The [`Runs`] copy for runs of `mr` elements on this CPU, if `mr` is a tile size.
fn runs_of<T: Copy>(mr: usize) -> Option<Runs<T>> {
    #[cfg(target_arch = "x86_64")]
    let (avx512, avx2) = (super::avx512::available(), super::avx2::available());
    macro_rules! pick {
        ($n:literal) => {{
            #[cfg(target_arch = "x86_64")]
            {
                if avx512 {
                    runs_avx512::<T, $n> as Runs<T>
                } else if avx2 {
                    runs_avx2::<T, $n> as Runs<T>
                } else {
                    runs_plain::<T, $n> as Runs<T>
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                runs_plain::<T, $n> as Runs<T>
            }
        }};
    }
    Some(match mr {
        6 => pick!(6),
        8 => pick!(8),
        12 => pick!(12),
        16 => pick!(16),
        32 => pick!(32),
        64 => pick!(64),
        _ => return None,
    })
}

#[inline(always)]
fn runs_body<T: Copy, const N: usize>(dst: &mut [T], src: &[T], stride: usize) {
    for (p, d) in dst.chunks_exact_mut(N).enumerate() {
        let d: &mut [T; N] = d.try_into().expect("chunks of N");
        let s: &[T; N] = src[p * stride..][..N].try_into().expect("a run of N");
        *d = *s;
    }
}

#[inline(never)]
fn runs_plain<T: Copy, const N: usize>(dst: &mut [T], src: &[T], stride: usize) {
    runs_body::<T, N>(dst, src, stride)
}

/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn runs_avx512<T: Copy, const N: usize>(dst: &mut [T], src: &[T], stride: usize) {
    runs_body::<T, N>(dst, src, stride)
}

/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
unsafe fn runs_avx2<T: Copy, const N: usize>(dst: &mut [T], src: &[T], stride: usize) {
    runs_body::<T, N>(dst, src, stride)
}
