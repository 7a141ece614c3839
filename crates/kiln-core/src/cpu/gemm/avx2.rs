//! AVX2 + FMA micro-kernels: a 6x16 f32 tile and a 6x8 f64 tile, each held in 12 ymm accumulators.
//!
//! Per step along k the kernel loads one row of the packed B panel (two ymm vectors) and
//! broadcasts each of the six packed A values against it: 12 independent FMAs per 2 loads and 6
//! broadcasts. Twelve accumulators cover the FMA latency (4 cycles) times the two FMA ports with
//! margin, and 12 + 2 (B) + 1 (broadcast) = 15 of the 16 ymm registers stay live, so nothing
//! spills. This is the shape BLIS and OpenBLAS use on Haswell and Zen.
//!
//! Each safe wrapper checks everything its unsafe kernel relies on (CPU features, panel lengths,
//! the extent of the C tile) once per tile; the kernels themselves read and write through raw
//! pointers inside those checked extents.

use std::arch::x86_64::*;

/// Rows of the f32 tile.
pub(super) const MR_F32: usize = 6;
/// Columns of the f32 tile (two 8-lane vectors).
pub(super) const NR_F32: usize = 16;
/// Rows of the f64 tile.
pub(super) const MR_F64: usize = 6;
/// Columns of the f64 tile (two 4-lane vectors).
pub(super) const NR_F64: usize = 8;

/// True when this CPU runs the kernels in this file (std caches the CPUID answer).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// The checks shared by both wrappers: the tile fits the kernel, the A panel holds
/// `a[i * a_rs + p * a_cs]` for `i < mr`, `p < kc` (rows from `mr` on reuse row `mr - 1`), the
/// packed B panel holds `kc` steps, and every C element the kernel touches, `c[i * ldc + j]` for
/// `i < mr`, `j < nr` (or the full tile when `mr == MR && nr == NR`, which is the same extent),
/// lies inside `c`.
#[allow(clippy::too_many_arguments)]
fn check_tile(kc: usize, a: (usize, usize, usize), b: usize, c: usize, ldc: usize, mr: usize, nr: usize, tile: (usize, usize)) {
    assert!(available(), "the AVX2 micro-kernel needs avx2 and fma");
    assert!((1..=tile.0).contains(&mr) && (1..=tile.1).contains(&nr), "tile {mr}x{nr}");
    let (a_len, a_rs, a_cs) = a;
    let a_last = (mr - 1)
        .checked_mul(a_rs)
        .and_then(|r| kc.saturating_sub(1).checked_mul(a_cs).and_then(|p| p.checked_add(r)));
    assert!(kc == 0 || a_last.is_some_and(|e| e < a_len), "A panel too short");
    assert!(kc.checked_mul(tile.1).is_some_and(|need| need <= b), "packed B panel too short");
    let last = (mr - 1).checked_mul(ldc).and_then(|r| r.checked_add(nr));
    assert!(last.is_some_and(|end| end <= c), "C tile outside its buffer");
}

/// `C[..mr, ..nr] = alpha * (A_panel · B_panel) + beta * C` for one 6-row A panel (element
/// `(i, p)` at `a[i * a_rs + p * a_cs]`: a packed panel has strides (1, 6), a row-major A read in
/// place (lda, 1)) and one packed 16-column B panel of `kc` steps; `beta == 0` writes C without
/// reading it.
#[allow(clippy::too_many_arguments)]
pub(super) fn micro_f32(
    kc: usize,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    nr: usize,
    alpha: f32,
    beta: f32,
) {
    check_tile(kc, (a.len(), a_rs, a_cs), b.len(), c.len(), ldc, mr, nr, (MR_F32, NR_F32));
    // SAFETY: `check_tile` asserted that avx2 and fma are present, that `a` holds every
    // `a[min(i, mr-1)*a_rs + p*a_cs]` (i < 6, p < kc) and `b` kc*16 elements (all the kernel
    // reads from them), and that every C element the kernel reads
    // or writes, `c[i*ldc + j]` for i < mr, j < nr, is inside `c`; the full-width vector path is
    // taken only when mr == 6 and nr == 16, which is the same extent. `c` is a unique borrow.
    unsafe { kernel_f32(kc, a.as_ptr(), a_rs, a_cs, b.as_ptr(), c.as_mut_ptr(), ldc, mr, nr, alpha, beta) }
}

/// The f64 twin of [`micro_f32`]: a 6-row A panel against an 8-column B panel.
#[allow(clippy::too_many_arguments)]
pub(super) fn micro_f64(
    kc: usize,
    a: &[f64],
    a_rs: usize,
    a_cs: usize,
    b: &[f64],
    c: &mut [f64],
    ldc: usize,
    mr: usize,
    nr: usize,
    alpha: f64,
    beta: f64,
) {
    check_tile(kc, (a.len(), a_rs, a_cs), b.len(), c.len(), ldc, mr, nr, (MR_F64, NR_F64));
    // SAFETY: as in `micro_f32`, with 6x8 tiles: `a` holds every `a[min(i, mr-1)*a_rs + p*a_cs]`
    // and `b` kc*8 elements, and the C
    // extent was checked for the mr x nr tile the kernel touches.
    unsafe { kernel_f64(kc, a.as_ptr(), a_rs, a_cs, b.as_ptr(), c.as_mut_ptr(), ldc, mr, nr, alpha, beta) }
}

/// Expands the 6-row body of one k step: broadcast row `r`'s value (`$a[r]` plus the step
/// offset `$o`), two FMAs into `acc[r]`.
macro_rules! rows {
    ($bcast:ident, $fma:ident, $a:expr, $o:expr, $b0:expr, $b1:expr, $acc:ident) => {
        rows!(@one $bcast, $fma, $a, $o, $b0, $b1, $acc, 0);
        rows!(@one $bcast, $fma, $a, $o, $b0, $b1, $acc, 1);
        rows!(@one $bcast, $fma, $a, $o, $b0, $b1, $acc, 2);
        rows!(@one $bcast, $fma, $a, $o, $b0, $b1, $acc, 3);
        rows!(@one $bcast, $fma, $a, $o, $b0, $b1, $acc, 4);
        rows!(@one $bcast, $fma, $a, $o, $b0, $b1, $acc, 5);
    };
    (@one $bcast:ident, $fma:ident, $a:expr, $o:expr, $b0:expr, $b1:expr, $acc:ident, $r:tt) => {
        let ar = $bcast(&*$a[$r].add($o));
        $acc[$r][0] = $fma(ar, $b0, $acc[$r][0]);
        $acc[$r][1] = $fma(ar, $b1, $acc[$r][1]);
    };
}

/// # Safety
/// avx2 and fma must be available; `a` must be valid for reads at `min(i, mr-1) * a_rs + p * a_cs`
/// (`i < 6`, `p < kc`), `b` for `kc * 16`, and
/// `c[i * ldc + j]` for reads and writes for every `i < mr`, `j < nr` (`mr <= 6`, `nr <= 16`).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f32(
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
    // SAFETY (whole body): every pointer offset below stays inside the extents the caller
    // guarantees: step p reads a[min(i, mr-1)*a_rs + p*a_cs] for i < 6 and b[16p..16p+16] for
    // p < kc, and the stores touch c[i*ldc + j] only for i < mr, j < nr.
    unsafe {
        // Pull the C tile towards L1 while the k loop runs (only rows that exist).
        for i in 0..mr {
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc) as *const i8);
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        // Unrolled by two: halves the loop overhead relative to 12 FMAs per step.
        // Row r of the A panel; rows past the tile's last reuse it (their sums are discarded), so
        // an unpacked A is never read past its last row.
        let rows: [*const f32; 6] = std::array::from_fn(|r| a.add(r.min(mr - 1) * a_rs));
        let mut o = 0;
        for _ in 0..kc / 2 {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            rows!(_mm256_broadcast_ss, _mm256_fmadd_ps, rows, o, b0, b1, acc);
            let b0 = _mm256_loadu_ps(b.add(16));
            let b1 = _mm256_loadu_ps(b.add(24));
            rows!(_mm256_broadcast_ss, _mm256_fmadd_ps, rows, o + a_cs, b0, b1, acc);
            o += 2 * a_cs;
            b = b.add(32);
        }
        if kc % 2 == 1 {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            rows!(_mm256_broadcast_ss, _mm256_fmadd_ps, rows, o, b0, b1, acc);
        }
        let va = _mm256_set1_ps(alpha);
        if mr == MR_F32 && nr == NR_F32 {
            let vb = _mm256_set1_ps(beta);
            for (i, row) in acc.iter().enumerate() {
                let p = c.add(i * ldc);
                for (h, v) in row.iter().enumerate() {
                    let q = p.add(8 * h);
                    let r = if beta == 0.0 {
                        _mm256_mul_ps(va, *v)
                    } else {
                        _mm256_fmadd_ps(vb, _mm256_loadu_ps(q), _mm256_mul_ps(va, *v))
                    };
                    _mm256_storeu_ps(q, r);
                }
            }
        } else {
            // Edge tile: spill the accumulators and update only the mr x nr corner that exists.
            let mut tmp = [0.0f32; MR_F32 * NR_F32];
            for (i, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(tmp.as_mut_ptr().add(i * NR_F32), row[0]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(i * NR_F32 + 8), row[1]);
            }
            for i in 0..mr {
                for j in 0..nr {
                    let q = c.add(i * ldc + j);
                    let v = alpha * tmp[i * NR_F32 + j];
                    *q = if beta == 0.0 { v } else { beta * *q + v };
                }
            }
        }
    }
}

/// # Safety
/// avx2 and fma must be available; `a` must be valid for reads at `min(i, mr-1) * a_rs + p * a_cs`
/// (`i < 6`, `p < kc`), `b` for `kc * 8`, and
/// `c[i * ldc + j]` for reads and writes for every `i < mr`, `j < nr` (`mr <= 6`, `nr <= 8`).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f64(
    kc: usize,
    a: *const f64,
    a_rs: usize,
    a_cs: usize,
    mut b: *const f64,
    c: *mut f64,
    ldc: usize,
    mr: usize,
    nr: usize,
    alpha: f64,
    beta: f64,
) {
    // SAFETY (whole body): step p reads a[min(i, mr-1)*a_rs + p*a_cs] for i < 6 and b[8p..8p+8]
    // for p < kc, and the stores
    // touch c[i*ldc + j] only for i < mr, j < nr, all inside the caller's extents.
    unsafe {
        for i in 0..mr {
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc) as *const i8);
        }
        let mut acc = [[_mm256_setzero_pd(); 2]; 6];
        // Row r of the A panel; rows past the tile's last reuse it (their sums are discarded), so
        // an unpacked A is never read past its last row.
        let rows: [*const f64; 6] = std::array::from_fn(|r| a.add(r.min(mr - 1) * a_rs));
        let mut o = 0;
        for _ in 0..kc / 2 {
            let b0 = _mm256_loadu_pd(b);
            let b1 = _mm256_loadu_pd(b.add(4));
            rows!(_mm256_broadcast_sd, _mm256_fmadd_pd, rows, o, b0, b1, acc);
            let b0 = _mm256_loadu_pd(b.add(8));
            let b1 = _mm256_loadu_pd(b.add(12));
            rows!(_mm256_broadcast_sd, _mm256_fmadd_pd, rows, o + a_cs, b0, b1, acc);
            o += 2 * a_cs;
            b = b.add(16);
        }
        if kc % 2 == 1 {
            let b0 = _mm256_loadu_pd(b);
            let b1 = _mm256_loadu_pd(b.add(4));
            rows!(_mm256_broadcast_sd, _mm256_fmadd_pd, rows, o, b0, b1, acc);
        }
        let va = _mm256_set1_pd(alpha);
        if mr == MR_F64 && nr == NR_F64 {
            let vb = _mm256_set1_pd(beta);
            for (i, row) in acc.iter().enumerate() {
                let p = c.add(i * ldc);
                for (h, v) in row.iter().enumerate() {
                    let q = p.add(4 * h);
                    let r = if beta == 0.0 {
                        _mm256_mul_pd(va, *v)
                    } else {
                        _mm256_fmadd_pd(vb, _mm256_loadu_pd(q), _mm256_mul_pd(va, *v))
                    };
                    _mm256_storeu_pd(q, r);
                }
            }
        } else {
            let mut tmp = [0.0f64; MR_F64 * NR_F64];
            for (i, row) in acc.iter().enumerate() {
                _mm256_storeu_pd(tmp.as_mut_ptr().add(i * NR_F64), row[0]);
                _mm256_storeu_pd(tmp.as_mut_ptr().add(i * NR_F64 + 4), row[1]);
            }
            for i in 0..mr {
                for j in 0..nr {
                    let q = c.add(i * ldc + j);
                    let v = alpha * tmp[i * NR_F64 + j];
                    *q = if beta == 0.0 { v } else { beta * *q + v };
                }
            }
        }
    }
}
