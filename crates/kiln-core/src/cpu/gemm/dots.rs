//! Products with a few output columns against a transposed weight, `C = A · Wᵀ` for a narrow
//! `W` (a classifier's last layer: 10 outputs), as dot products of rows.
//!
//! Both operands are row-major along the depth, so each output is the dot product of a row of A
//! and a row of W, read in place. The tile kernels pack B into panels of 32 (AVX-512) or 16
//! columns, so 10 columns leave most lanes idle, and the packing is paid for a handful of
//! columns; the `gemm` crate took 30-37 us for W5's 128 x 512 x 10 product where PyTorch (MKL)
//! took 14-20. With AVX-512 a block of 4 rows of A times 4 rows of W keeps 16 vector
//! accumulators along the depth (8 loads per 16 FMAs) and sums each one across its lanes at the
//! end. AVX2 has 16 vector registers, so its blocks take 2 rows of A (8 accumulators, 4 weight
//! vectors and one row vector live); that choice follows the register count and was not measured
//! (the machines at hand have AVX-512).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Rows of A per block with AVX-512 (32 vector registers).
const ROWS_AVX512: usize = 4;
/// Rows of A per block with AVX2 (16 vector registers).
const ROWS_AVX2: usize = 2;
/// A multiple of both blocks' rows: callers that split A's rows between threads split at
/// multiples of it, so that no block straddles two parts.
pub(super) const ROWS_UNIT: usize = 4;
/// Rows of W (output columns) per block.
const COLS: usize = 4;

/// Writes `c[i * ldc + j] = Σ_p a[i * lda + p] · w[j * ldw + p]` for `i < m`, `j < n`, `p < k`,
/// with the CPU's AVX-512 or AVX2 + FMA, and returns true; returns false (nothing written) on a
/// CPU with neither.
///
/// Panics when an operand is too short for its extent or a row stride is below its row's length.
#[allow(clippy::too_many_arguments)]
pub(super) fn dots_f32(
    a: &[f32],
    lda: usize,
    w: &[f32],
    ldw: usize,
    (m, n, k): (usize, usize, usize),
    c: &mut [MaybeUninit<f32>],
    ldc: usize,
) -> bool {
    let wide = super::avx512::available();
    if !wide && !super::avx2::available() {
        return false;
    }
    dots_with(wide, a, lda, w, ldw, (m, n, k), c, ldc);
    true
}

/// [`dots_f32`] through the AVX-512 kernel (`wide`) or the AVX2 one, which the caller checked the
/// CPU has.
#[allow(clippy::too_many_arguments)]
fn dots_with(
    wide: bool,
    a: &[f32],
    lda: usize,
    w: &[f32],
    ldw: usize,
    (m, n, k): (usize, usize, usize),
    c: &mut [MaybeUninit<f32>],
    ldc: usize,
) {
    assert!(
        if wide {
            super::avx512::available()
        } else {
            super::avx2::available()
        },
        "the CPU lacks the kernel's features"
    );
    if m == 0 || n == 0 {
        return;
    }
    // Every address the kernels touch: rows of A and W up to `k`, rows of C up to `n`.
    let extent = |rows: usize, ld: usize, len: usize| (rows - 1).checked_mul(ld).and_then(|r| r.checked_add(len));
    assert!(lda >= k && extent(m, lda, k).is_some_and(|e| e <= a.len()), "A too short");
    assert!(ldw >= k && extent(n, ldw, k).is_some_and(|e| e <= w.len()), "W too short");
    assert!(ldc >= n && extent(m, ldc, n).is_some_and(|e| e <= c.len()), "C too short");
    let (a, w, c) = (a.as_ptr(), w.as_ptr(), c.as_mut_ptr().cast::<f32>());
    let rows = if wide { ROWS_AVX512 } else { ROWS_AVX2 };
    for i in (0..m).step_by(rows) {
        for j in (0..n).step_by(COLS) {
            let (mi, nj) = (rows.min(m - i), COLS.min(n - j));
            // SAFETY: the CPU has the kernel's features (checked above). The block reads rows
            // i..i + mi of A and j..j + nj of W over 0..k and writes rows i..i + mi of C at columns
            // j..j + nj, all inside the extents asserted above. Stores write initialised values
            // into `MaybeUninit` slots.
            unsafe {
                let (ab, wb, cb) = (a.add(i * lda), w.add(j * ldw), c.add(i * ldc + j));
                macro_rules! run {
                    ($($mi:literal, $nj:literal);*) => {
                        match (mi, nj) {
                            $(($mi, $nj) => if wide {
                                block_avx512::<$mi, $nj>(ab, lda, wb, ldw, k, cb, ldc)
                            } else {
                                block_avx2::<$mi, $nj>(ab, lda, wb, ldw, k, cb, ldc)
                            },)*
                            _ => unreachable!("blocks are at most {ROWS_AVX512} x {COLS}"),
                        }
                    };
                }
                run!(4, 4; 4, 3; 4, 2; 4, 1; 3, 4; 3, 3; 3, 2; 3, 1; 2, 4; 2, 3; 2, 2; 2, 1; 1, 4; 1, 3; 1, 2; 1, 1);
            }
        }
    }
}

/// One `MI x NJ` block of dot products over depth `k`, 16 lanes at a time.
///
/// # Safety
/// avx512f must be available; `a` readable at `i * lda + p` and `w` at `j * ldw + p` for
/// `i < MI`, `j < NJ`, `p < k`; `c` writable at `i * ldc + j`.
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512<const MI: usize, const NJ: usize>(
    a: *const f32,
    lda: usize,
    w: *const f32,
    ldw: usize,
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: every load stays below depth k (the tail through a mask, which reads nothing past
    // it), inside the extents the caller guarantees; so do the stores.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NJ]; MI];
        let k16 = k / 16 * 16;
        for p in (0..k16).step_by(16) {
            step_avx512(&mut acc, a, lda, w, ldw, p, !0);
        }
        if k16 < k {
            step_avx512(&mut acc, a, lda, w, ldw, k16, (1u16 << (k - k16)) - 1);
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, s) in row.iter().enumerate() {
                *c.add(i * ldc + j) = _mm512_reduce_add_ps(*s);
            }
        }
    }
}

/// Adds the products at depths `p..p + 16` (the lanes `mask` keeps) to `acc`.
///
/// # Safety
/// As [`block_avx512`], for the depths `mask` keeps.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn step_avx512<const MI: usize, const NJ: usize>(
    acc: &mut [[__m512; NJ]; MI],
    a: *const f32,
    lda: usize,
    w: *const f32,
    ldw: usize,
    p: usize,
    mask: __mmask16,
) {
    // SAFETY: masked-off lanes are not read; the rest lie inside the caller's extents.
    unsafe {
        let mut wv = [_mm512_setzero_ps(); NJ];
        for (j, v) in wv.iter_mut().enumerate() {
            *v = _mm512_maskz_loadu_ps(mask, w.add(j * ldw + p));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm512_maskz_loadu_ps(mask, a.add(i * lda + p));
            for (s, v) in row.iter_mut().zip(&wv) {
                *s = _mm512_fmadd_ps(av, *v, *s);
            }
        }
    }
}

/// One `MI x NJ` block of dot products over depth `k`, 8 lanes at a time and the tail element by
/// element.
///
/// # Safety
/// avx2 and fma must be available; `a` readable at `i * lda + p` and `w` at `j * ldw + p` for
/// `i < MI`, `j < NJ`, `p < k`; `c` writable at `i * ldc + j`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2<const MI: usize, const NJ: usize>(
    a: *const f32,
    lda: usize,
    w: *const f32,
    ldw: usize,
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: every load stays below depth k, inside the extents the caller guarantees; so do
    // the stores.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NJ]; MI];
        let k8 = k / 8 * 8;
        for p in (0..k8).step_by(8) {
            let mut wv = [_mm256_setzero_ps(); NJ];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(w.add(j * ldw + p));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_loadu_ps(a.add(i * lda + p));
                for (s, v) in row.iter_mut().zip(&wv) {
                    *s = _mm256_fmadd_ps(av, *v, *s);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, s) in row.iter().enumerate() {
                // Lanes summed pairwise: 8 -> 4 -> 2 -> 1.
                let q = _mm_add_ps(_mm256_castps256_ps128(*s), _mm256_extractf128_ps::<1>(*s));
                let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
                let q = _mm_add_ss(q, _mm_shuffle_ps::<1>(q, q));
                let mut sum = _mm_cvtss_f32(q);
                for p in k8..k {
                    sum += *a.add(i * lda + p) * *w.add(j * ldw + p);
                }
                *c.add(i * ldc + j) = sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kernels (where the CPU has them) against a reference in f64 on odd shapes: every
    /// block size, depths with and without a tail, padded row strides, and the padding of C
    /// left alone.
    #[test]
    fn dot_products_match_the_reference() {
        let mut rng = crate::Rng::new(11);
        for wide in [true, false] {
            let has = if wide {
                crate::cpu::gemm::avx512::available()
            } else {
                crate::cpu::gemm::avx2::available()
            };
            if !has {
                continue;
            }
            for (m, n, k) in [
                (1, 1, 1),
                (1, 1, 16),
                (5, 7, 33),
                (4, 4, 64),
                (13, 10, 512),
                (3, 16, 15),
                (9, 5, 100),
                (2, 3, 8),
                (8, 1, 7),
            ] {
                let (lda, ldw, ldc) = (k + 3, k + 1, n + 2);
                let a: Vec<f32> = (0..m * lda).map(|_| rng.uniform01() as f32 * 2.0 - 1.0).collect();
                let w: Vec<f32> = (0..n * ldw).map(|_| rng.uniform01() as f32 * 2.0 - 1.0).collect();
                let mut c = vec![MaybeUninit::new(f32::NAN); m * ldc];
                dots_with(wide, &a, lda, &w, ldw, (m, n, k), &mut c, ldc);
                for i in 0..m {
                    for j in 0..ldc {
                        // SAFETY: every slot was initialised (to NaN) before the call.
                        let got = unsafe { c[i * ldc + j].assume_init() };
                        if j >= n {
                            assert!(got.is_nan(), "padding ({i}, {j}) written");
                            continue;
                        }
                        let (dot, mag) = (0..k).fold((0.0f64, 0.0f64), |(d, g), p| {
                            let x = a[i * lda + p] as f64 * w[j * ldw + p] as f64;
                            (d + x, g + x.abs())
                        });
                        let tol = (k + 2) as f64 * f32::EPSILON as f64 * mag + 1e-30;
                        assert!(
                            (got as f64 - dot).abs() <= tol,
                            "wide {wide} {m}x{n}x{k} ({i}, {j}): {got} vs {dot}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "W too short")]
    fn short_operands_are_refused() {
        if !crate::cpu::gemm::avx2::available() {
            panic!("W too short (no kernel on this CPU to check)");
        }
        let (a, w) = (vec![1.0f32; 40], vec![1.0f32; 39]);
        let mut c = vec![MaybeUninit::new(0.0f32); 4];
        dots_f32(&a, 20, &w, 20, (2, 2, 20), &mut c, 2);
    }
}
