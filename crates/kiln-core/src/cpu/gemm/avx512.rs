//! AVX-512 micro-kernels: a 12x32 f32 tile and a 12x16 f64 tile, each held in 24 zmm accumulators,
//! and a 6x64 f32 tile (also 24 accumulators) for row-major A operands read in place whose rows
//! would alias in L1 as 12 (see [`super::Isa::Avx512Wide`]).
//!
//! Per step along k the kernel loads one row of the packed B panel (two zmm vectors) and
//! broadcasts each of the twelve A values against it: 24 independent FMAs per 2 loads and 12
//! broadcasts. Two 512-bit FMA pipes with a 4-cycle latency need at least 8 accumulators in
//! flight; 24 leave room for the loads, and 24 + 2 (B) + 1 (broadcast) = 27 of the 32 zmm
//! registers stay live, so nothing spills. Twice the AVX2 tile's rows halves the B traffic per
//! FMA, which is what a core with two full-width FMA pipes and two loads per cycle needs.
//!
//! The kernel is generic over whether A is packed: packed panels have compile-time strides (row
//! `r` of step `p` at `p * 12 + r`), so every A address is a base register plus a constant and
//! the twelve row pointers of the in-place (row-major A) variant do not compete for registers.
//!
//! Each safe wrapper checks everything its unsafe kernel relies on once per block column (the
//! checks are [`super::avx2`]'s, with this tile's sizes).

use super::avx2::check_tiles;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Rows of the f32 tile.
pub(super) const MR_F32: usize = 12;
/// Columns of the f32 tile (two 16-lane vectors).
pub(super) const NR_F32: usize = 32;
/// Rows of the f64 tile.
pub(super) const MR_F64: usize = 12;
/// Columns of the f64 tile (two 8-lane vectors).
pub(super) const NR_F64: usize = 16;

/// True when this CPU runs the kernels in this file (std caches the CPUID answer).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

macro_rules! wrapper {
    ($name:ident, $t:ty, $mr:expr, $nr:expr, $block:ident) => {
        /// `C[..mc, ..nr] = alpha * (A_block · B_panel) + beta * C` for one column of tiles: the A
        /// block's row `i` at step `p` is `a[(i / MR) * a_ps + (i % MR) * a_rs + p * a_cs]`
        /// (packed panels: strides (MR kc, 1, MR); a row-major A read in place: (MR lda, lda, 1)),
        /// the B panel is packed (NR columns per step); `beta == 0` writes C without reading it.
        #[allow(clippy::too_many_arguments)]
        pub(super) fn $name(
            kc: usize,
            mc: usize,
            a: &[$t],
            a_strides: (usize, usize, usize),
            b: &[$t],
            c: &mut [MaybeUninit<$t>],
            ldc: usize,
            nr: usize,
            alpha: $t,
            beta: $t,
        ) {
            let (a_ps, a_rs, a_cs) = a_strides;
            assert!(available(), "the AVX-512 micro-kernel needs avx512f");
            check_tiles(kc, mc, (a.len(), a_ps, a_rs, a_cs), b.len(), c.len(), ldc, nr, ($mr, $nr));
            let panel = kc.checked_mul($mr);
            let packed = panel.is_some_and(|ps| a_strides == (ps, 1, $mr));
            if packed {
                // The packed variant reads every row of the last panel, padding included, where
                // `check_tiles` only vouches for the block's rows.
                let need = panel.and_then(|ps| mc.div_ceil($mr).checked_mul(ps));
                assert!(need.is_some_and(|need| need <= a.len()), "packed A panels too short");
            }
            // The packed and in-place variants differ in type, not in signature.
            let block: unsafe fn(usize, usize, *const $t, (usize, usize, usize), *const $t, *mut $t, usize, usize, $t, $t) =
                if packed { $block::<true> } else { $block::<false> };
            // SAFETY: avx512f is present (asserted) and `check_tiles` asserted that every A
            // element the tiles read (rows clamped to the block's last, steps < kc; with packed
            // strides, every row of every panel, asserted just above), the kc*NR B elements and
            // every C element touched (`c[i*ldc + j]`, i < mc, j < nr) lie inside `a`, `b` and
            // `c` (a unique borrow, so nothing aliases it).
            unsafe {
                block(
                    kc,
                    mc,
                    a.as_ptr(),
                    a_strides,
                    b.as_ptr(),
                    c.as_mut_ptr().cast(),
                    ldc,
                    nr,
                    alpha,
                    beta,
                )
            }
        }
    };
}
wrapper!(block_f32, f32, MR_F32, NR_F32, block_kernel_f32);
wrapper!(block_f64, f64, MR_F64, NR_F64, block_kernel_f64);

macro_rules! kernel {
    (
        $block:ident, $kernel:ident, $t:ty, $mr:expr, $nr:expr, $lanes:expr,
        $zero:ident, $set1:ident, $fma:ident, $load:ident, $store:ident, $mul:ident,
        $mask:ident, $mload:ident, $mstore:ident
    ) => {
        /// The tiles of one block column, in one function so the per-tile setup is paid once per
        /// block rather than once per tile.
        ///
        /// # Safety
        /// The extents `check_tiles` checks must hold, avx512f must be available, and with
        /// `PACKED` the A strides must be `(kc * MR, 1, MR)`.
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $block<const PACKED: bool>(
            kc: usize,
            mc: usize,
            a: *const $t,
            a_strides: (usize, usize, usize),
            b: *const $t,
            c: *mut $t,
            ldc: usize,
            nr: usize,
            alpha: $t,
            beta: $t,
        ) {
            for_each_tile!($kernel::<PACKED>, $mr; kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta);
        }

        /// # Safety
        /// avx512f must be available; `a` must be valid for reads at
        /// `min(i, mr-1) * a_rs + p * a_cs` (`i < MR`, `p < kc`; with `PACKED`, `a_rs = 1` and
        /// `a_cs = MR` and all MR rows are readable), `b` for `kc * NR`, and `c[i * ldc + j]`
        /// for reads and writes for every `i < mr`, `j < nr`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $kernel<const PACKED: bool>(
            kc: usize,
            a: *const $t,
            a_rs: usize,
            a_cs: usize,
            mut b: *const $t,
            c: *mut $t,
            ldc: usize,
            mr: usize,
            nr: usize,
            alpha: $t,
            beta: $t,
        ) {
            // SAFETY (whole body): step p reads A row r (clamped to mr - 1 unless packed, where
            // padding rows exist) at step p < kc and b[NR p..NR p + NR]; the stores touch
            // c[i*ldc + j] only for i < mr, j < nr, all inside the caller's extents.
            unsafe {
                for i in 0..mr {
                    _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + nr - 1) as *const i8);
                }
                let mut acc = [[$zero(); 2]; $mr];
                // Row r of A: compile-time offsets when packed; otherwise one pointer per row,
                // rows past the tile's last reusing it (their sums are discarded).
                let rows: [*const $t; $mr] = std::array::from_fn(|r| if PACKED { a.add(r) } else { a.add(r.min(mr - 1) * a_rs) });
                let step = if PACKED { $mr } else { a_cs };
                let mut o = 0usize;
                let ld = |r: usize, o: usize| -> $t {
                    if PACKED {
                        *a.add(o + r)
                    } else {
                        *rows[r].add(o)
                    }
                };
                for _ in 0..kc {
                    let b0 = $load(b);
                    let b1 = $load(b.add($lanes));
                    tile_step!($set1, $fma, ld, o, b0, b1, acc; 0 1 2 3 4 5 6 7 8 9 10 11);
                    o += step;
                    b = b.add($nr);
                }
                let va = $set1(alpha);
                if mr == $mr && nr == $nr {
                    if beta == 0.0 {
                        let f = |_q: *mut $t, v| $mul(va, v);
                        tile_store!($store, c, ldc, $lanes, acc, f; 0 1 2 3 4 5 6 7 8 9 10 11);
                    } else {
                        let vb = $set1(beta);
                        let f = |q: *mut $t, v| $fma(vb, $load(q as *const $t), $mul(va, v));
                        tile_store!($store, c, ldc, $lanes, acc, f; 0 1 2 3 4 5 6 7 8 9 10 11);
                    }
                } else {
                    // Edge tile: masked loads and stores of the mr x nr corner that exists.
                    let m0 = $mask(nr.min($lanes));
                    let m1 = $mask(nr.saturating_sub($lanes));
                    let vb = $set1(beta);
                    for (i, row) in acc.iter().enumerate().take(mr) {
                        let q0 = c.add(i * ldc);
                        // Past C's row when nr <= lanes (then m1 is empty and nothing is
                        // accessed), so computed without the in-bounds promise of `add`.
                        let q1 = q0.wrapping_add($lanes);
                        let (v0, v1) = if beta == 0.0 {
                            ($mul(va, row[0]), $mul(va, row[1]))
                        } else {
                            (
                                $fma(vb, $mload(m0, q0 as *const $t), $mul(va, row[0])),
                                $fma(vb, $mload(m1, q1 as *const $t), $mul(va, row[1])),
                            )
                        };
                        $mstore(q0, m0, v0);
                        $mstore(q1, m1, v1);
                    }
                }
            }
        }
    };
}
kernel!(
    block_kernel_f32,
    kernel_f32,
    f32,
    MR_F32,
    NR_F32,
    16,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_mul_ps,
    mask16,
    _mm512_maskz_loadu_ps,
    _mm512_mask_storeu_ps
);
kernel!(
    block_kernel_f64,
    kernel_f64,
    f64,
    MR_F64,
    NR_F64,
    8,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_mul_pd,
    mask8,
    _mm512_maskz_loadu_pd,
    _mm512_mask_storeu_pd
);

/// The lane mask of the first `n` (at most 16) lanes of an f32 vector.
fn mask16(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// The lane mask of the first `n` (at most 8) lanes of an f64 vector.
fn mask8(n: usize) -> __mmask8 {
    ((1u32 << n.min(8)) - 1) as __mmask8
}

/// Rows of the wide f32 tile.
pub(super) const MR_F32_WIDE: usize = 6;
/// Columns of the wide f32 tile (four 16-lane vectors).
pub(super) const NR_F32_WIDE: usize = 64;

wrapper!(block_f32_wide, f32, MR_F32_WIDE, NR_F32_WIDE, block_kernel_f32_wide);

/// One k step of the wide tile, for each listed row `r`: broadcast row `r`'s A value and four
/// FMAs into `acc[r]` against the four B vectors. Written out per row, as `tile_step!` is.
macro_rules! wide_step {
    ($ld:ident, $o:expr, $bv:ident, $acc:ident; $($r:tt)+) => {
        $(
            let ar = _mm512_set1_ps($ld($r, $o));
            $acc[$r][0] = _mm512_fmadd_ps(ar, $bv[0], $acc[$r][0]);
            $acc[$r][1] = _mm512_fmadd_ps(ar, $bv[1], $acc[$r][1]);
            $acc[$r][2] = _mm512_fmadd_ps(ar, $bv[2], $acc[$r][2]);
            $acc[$r][3] = _mm512_fmadd_ps(ar, $bv[3], $acc[$r][3]);
        )+
    };
}

/// The wide tiles of one block column.
///
/// # Safety
/// The extents `check_tiles` checks must hold, avx512f must be available, and with `PACKED` the
/// A strides must be `(kc * 6, 1, 6)`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_kernel_f32_wide<const PACKED: bool>(
    kc: usize,
    mc: usize,
    a: *const f32,
    a_strides: (usize, usize, usize),
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    nr: usize,
    alpha: f32,
    beta: f32,
) {
    for_each_tile!(kernel_f32_wide::<PACKED>, MR_F32_WIDE; kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta);
}

/// A 6x64 f32 tile: per step four B vectors and six broadcasts feed 24 FMAs, against two and
/// twelve for the 12x32 tile. Six rows a power-of-two stride apart take six ways of one L1 set,
/// which an 8-way L1 holds; twelve do not fit.
///
/// # Safety
/// avx512f must be available; `a` must be valid for reads at `min(i, mr-1) * a_rs + p * a_cs`
/// (`i < 6`, `p < kc`; with `PACKED`, `a_rs = 1` and `a_cs = 6` and all 6 rows are readable), `b`
/// for `kc * 64`, and `c[i * ldc + j]` for reads and writes for every `i < mr`, `j < nr`.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f32_wide<const PACKED: bool>(
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    mut b: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    alpha: f32,
    beta: f32,
) {
    const MR: usize = MR_F32_WIDE;
    // SAFETY (whole body): step p reads A row r (clamped to mr - 1 unless packed, where padding
    // rows exist) at step p < kc and b[64 p..64 p + 64]; the C accesses touch c[i*ldc + j] only
    // for i < mr, j < nr (masked past nr), all inside the caller's extents.
    unsafe {
        for i in 0..mr {
            for v in (0..nr).step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + v) as *const i8);
            }
        }
        let mut acc = [[_mm512_setzero_ps(); 4]; MR];
        let rows: [*const f32; MR] = std::array::from_fn(|r| if PACKED { a.add(r) } else { a.add(r.min(mr - 1) * a_rs) });
        let step = if PACKED { MR } else { a_cs };
        let mut o = 0usize;
        let ld = |r: usize, o: usize| -> f32 {
            if PACKED {
                *a.add(o + r)
            } else {
                *rows[r].add(o)
            }
        };
        for _ in 0..kc {
            let bv = [
                _mm512_loadu_ps(b),
                _mm512_loadu_ps(b.add(16)),
                _mm512_loadu_ps(b.add(32)),
                _mm512_loadu_ps(b.add(48)),
            ];
            wide_step!(ld, o, bv, acc; 0 1 2 3 4 5);
            o += step;
            b = b.add(NR_F32_WIDE);
        }
        let va = _mm512_set1_ps(alpha);
        let vb = _mm512_set1_ps(beta);
        let masks: [__mmask16; 4] = std::array::from_fn(|v| mask16(nr.saturating_sub(v * 16)));
        for (i, row) in acc.iter().enumerate().take(mr) {
            for (v, &sum) in row.iter().enumerate() {
                let m = masks[v];
                if m == 0 {
                    continue;
                }
                // Vector v has a lane below nr, so its address is inside C's row.
                let q = c.add(i * ldc + v * 16);
                let val = if beta == 0.0 {
                    _mm512_mul_ps(va, sum)
                } else if m == 0xFFFF {
                    _mm512_fmadd_ps(vb, _mm512_loadu_ps(q), _mm512_mul_ps(va, sum))
                } else {
                    _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, q), _mm512_mul_ps(va, sum))
                };
                if m == 0xFFFF {
                    _mm512_storeu_ps(q, val);
                } else {
                    _mm512_mask_storeu_ps(q, m, val);
                }
            }
        }
    }
}
