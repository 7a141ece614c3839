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
use std::mem::MaybeUninit;

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

/// The checks shared by every wrapper (this file's and `avx512`'s), for a column of tiles: `mc` rows of C (tiles of `MR`
/// rows, the last possibly shorter) by `nr <= NR` columns over `kc` steps.
///
/// A: row `i` (panel `q = i / MR`, row `r = i % MR` in it), step `p` at
/// `q * a_ps + r * a_rs + p * a_cs`. With `a_ps >= MR * a_rs` every such offset is at most the
/// last row's at `p = kc - 1`, so checking that one offset bounds them all. B: `kc * NR`
/// elements. C: `c[i * ldc + j]` for `i < mc`, `j < nr`.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_tiles(
    kc: usize,
    mc: usize,
    a: (usize, usize, usize, usize),
    b: usize,
    c: usize,
    ldc: usize,
    nr: usize,
    tile: (usize, usize),
) {
    let (mr, nr_max) = tile;
    assert!(mc >= 1 && (1..=nr_max).contains(&nr), "block {mc}x{nr}");
    // The kernels form each tile's A address before their first step, so a block of depth 0
    // would form addresses past an empty A; `gemm` handles k = 0 without them.
    assert!(kc >= 1, "block of depth 0");
    let (a_len, a_ps, a_rs, a_cs) = a;
    assert!(a_rs.checked_mul(mr).is_some_and(|t| t <= a_ps), "A panels overlap");
    let a_last = ((mc - 1) / mr)
        .checked_mul(a_ps)
        .and_then(|q| ((mc - 1) % mr).checked_mul(a_rs).and_then(|r| q.checked_add(r)))
        .and_then(|qr| (kc - 1).checked_mul(a_cs).and_then(|p| p.checked_add(qr)));
    assert!(a_last.is_some_and(|e| e < a_len), "A block too short");
    assert!(kc.checked_mul(nr_max).is_some_and(|need| need <= b), "packed B panel too short");
    let last = (mc - 1).checked_mul(ldc).and_then(|r| r.checked_add(nr));
    assert!(last.is_some_and(|end| end <= c), "C block outside its buffer");
}

macro_rules! wrapper {
    ($name:ident, $t:ty, $mr:expr, $nr:expr, $block:ident) => {
        /// `C[..mc, ..nr] = alpha * (A_block · B_panel) + beta * C` for one column of 6-row tiles:
        /// the A block's row `i` at step `p` is `a[(i / 6) * a_ps + (i % 6) * a_rs + p * a_cs]`
        /// (packed panels: strides (6 kc, 1, 6); a row-major A read in place: (6 lda, lda, 1)),
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
            assert!(available(), "the AVX2 micro-kernel needs avx2 and fma");
            check_tiles(kc, mc, (a.len(), a_ps, a_rs, a_cs), b.len(), c.len(), ldc, nr, ($mr, $nr));
            // SAFETY: avx2 and fma are present (asserted) and `check_tiles` asserted that every A
            // element the tiles read (rows clamped to the block's last, steps < kc) and the kc*NR
            // B elements are inside `a` and `b`, and that every C element touched, `c[i*ldc + j]`
            // for i < mc, j < nr, is inside `c` (a unique borrow, so nothing aliases it).
            unsafe {
                $block(
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

macro_rules! block_kernel {
    ($name:ident, $kernel:ident, $t:ty, $mr:expr) => {
        /// The tiles of one block column, in one function so the per-tile call, checks and
        /// register setup are paid once per block rather than once per tile.
        ///
        /// # Safety
        /// The extents [`check_tiles`] checks must hold, and avx2 and fma must be available.
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
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
            for_each_tile!($kernel, $mr; kc, mc, a, a_strides, b, c, ldc, nr, alpha, beta);
        }
    };
}
block_kernel!(block_kernel_f32, kernel_f32, f32, MR_F32);
block_kernel!(block_kernel_f64, kernel_f64, f64, MR_F64);

/// # Safety
/// avx2 and fma must be available; `a` must be valid for reads at `min(i, mr-1) * a_rs + p * a_cs`
/// (`i < 6`, `p < kc`), `b` for `kc * 16`, and
/// `c[i * ldc + j]` for reads and writes for every `i < mr`, `j < nr` (`mr <= 6`, `nr <= 16`).
#[target_feature(enable = "avx2,fma")]
#[inline]
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
        // Pull the C tile towards L1 while the k loop runs (only rows that exist), both ends of
        // each row: a row of the tile spans two cache lines unless C is 64-byte aligned.
        for i in 0..mr {
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + nr - 1) as *const i8);
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        // Unrolled by two: halves the loop overhead relative to 12 FMAs per step.
        // Row r of the A panel; rows past the tile's last reuse it (their sums are discarded), so
        // an unpacked A is never read past its last row.
        let rows: [*const f32; 6] = std::array::from_fn(|r| a.add(r.min(mr - 1) * a_rs));
        let ld = |r: usize, o: usize| &*rows[r].add(o);
        let mut o = 0;
        for _ in 0..kc / 2 {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            tile_step!(_mm256_broadcast_ss, _mm256_fmadd_ps, ld, o, b0, b1, acc; 0 1 2 3 4 5);
            let b0 = _mm256_loadu_ps(b.add(16));
            let b1 = _mm256_loadu_ps(b.add(24));
            tile_step!(_mm256_broadcast_ss, _mm256_fmadd_ps, ld, o + a_cs, b0, b1, acc; 0 1 2 3 4 5);
            o += 2 * a_cs;
            b = b.add(32);
        }
        if kc % 2 == 1 {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            tile_step!(_mm256_broadcast_ss, _mm256_fmadd_ps, ld, o, b0, b1, acc; 0 1 2 3 4 5);
        }
        let va = _mm256_set1_ps(alpha);
        if mr == MR_F32 && nr == NR_F32 {
            // Written out per register (a loop over `acc` made LLVM spill the tile to the stack).
            if beta == 0.0 {
                let f = |_q: *mut f32, v| _mm256_mul_ps(va, v);
                tile_store!(_mm256_storeu_ps, c, ldc, 8, acc, f; 0 1 2 3 4 5);
            } else {
                let vb = _mm256_set1_ps(beta);
                let f = |q: *mut f32, v| _mm256_fmadd_ps(vb, _mm256_loadu_ps(q), _mm256_mul_ps(va, v));
                tile_store!(_mm256_storeu_ps, c, ldc, 8, acc, f; 0 1 2 3 4 5);
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
#[inline]
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
        // Both ends of each row: a row of the tile spans two cache lines unless C is 64-byte aligned.
        for i in 0..mr {
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + nr - 1) as *const i8);
        }
        let mut acc = [[_mm256_setzero_pd(); 2]; 6];
        // Row r of the A panel; rows past the tile's last reuse it (their sums are discarded), so
        // an unpacked A is never read past its last row.
        let rows: [*const f64; 6] = std::array::from_fn(|r| a.add(r.min(mr - 1) * a_rs));
        let ld = |r: usize, o: usize| &*rows[r].add(o);
        let mut o = 0;
        for _ in 0..kc / 2 {
            let b0 = _mm256_loadu_pd(b);
            let b1 = _mm256_loadu_pd(b.add(4));
            tile_step!(_mm256_broadcast_sd, _mm256_fmadd_pd, ld, o, b0, b1, acc; 0 1 2 3 4 5);
            let b0 = _mm256_loadu_pd(b.add(8));
            let b1 = _mm256_loadu_pd(b.add(12));
            tile_step!(_mm256_broadcast_sd, _mm256_fmadd_pd, ld, o + a_cs, b0, b1, acc; 0 1 2 3 4 5);
            o += 2 * a_cs;
            b = b.add(16);
        }
        if kc % 2 == 1 {
            let b0 = _mm256_loadu_pd(b);
            let b1 = _mm256_loadu_pd(b.add(4));
            tile_step!(_mm256_broadcast_sd, _mm256_fmadd_pd, ld, o, b0, b1, acc; 0 1 2 3 4 5);
        }
        let va = _mm256_set1_pd(alpha);
        if mr == MR_F64 && nr == NR_F64 {
            // Written out per register (a loop over `acc` made LLVM spill the tile to the stack).
            if beta == 0.0 {
                let f = |_q: *mut f64, v| _mm256_mul_pd(va, v);
                tile_store!(_mm256_storeu_pd, c, ldc, 4, acc, f; 0 1 2 3 4 5);
            } else {
                let vb = _mm256_set1_pd(beta);
                let f = |q: *mut f64, v| _mm256_fmadd_pd(vb, _mm256_loadu_pd(q), _mm256_mul_pd(va, v));
                tile_store!(_mm256_storeu_pd, c, ldc, 4, acc, f; 0 1 2 3 4 5);
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

/// Packs `h` rows of a row-major block into a panel of `mr` rows per step, as `pack::pack_a`'s
/// row-major path does (`dst[p * mr + i] = src[base + i * rs + p]` for `i < h`, `p < kc`), but a
/// tile of 8 rows by 8 steps at a time through an 8x8 register transpose: eight contiguous loads
/// and eight contiguous stores instead of 64 scalar moves. Rows and steps past the last whole
/// tile are moved one by one. Returns false (and writes nothing) when the CPU lacks AVX2.
///
/// Panics when a row reaches past `src` or the panel is shorter than `kc * mr` (`h <= mr`).
pub(super) fn transpose_pack_f32(src: &[f32], base: usize, rs: usize, h: usize, kc: usize, mr: usize, dst: &mut [f32]) -> bool {
    if !available() {
        return false;
    }
    assert!(
        h <= mr && kc.checked_mul(mr).is_some_and(|need| dst.len() >= need),
        "panel too short"
    );
    if h == 0 || kc == 0 {
        return true;
    }
    let last = (h - 1)
        .checked_mul(rs)
        .and_then(|r| r.checked_add(base))
        .and_then(|r| r.checked_add(kc - 1));
    assert!(last.is_some_and(|e| e < src.len()), "rows outside the source");
    let k8 = kc / 8 * 8;
    // SAFETY: avx2 is present (checked above). The bands read src[base + i * rs + p] for i < h
    // and p < k8 <= kc, inside the extent asserted above, and write dst[p * mr + i] for the same,
    // inside kc * mr since h <= mr.
    let h4 = unsafe { transpose_bands_f32(src.as_ptr(), base, rs, h, k8, mr, dst.as_mut_ptr()) };
    // The rest, one element at a time: the rows past the whole tiles over every step, and the
    // steps past them for the tiled rows.
    for i in 0..h {
        let p_from = if i < h4 { k8 } else { 0 };
        for p in p_from..kc {
            dst[p * mr + i] = src[base + i * rs + p];
        }
    }
    true
}

/// Writes the transpose of the `rows x cols` matrix `src` (row `i` at `src[i * lds..][..cols]`)
/// into `dst` (row `j` of the transpose at `dst[j * ldd..]`): `dst[j * ldd + i] = src[i * lds +
/// j]`, 8x8 tiles through the register transpose, the edges one element at a time. Returns false
/// (and writes nothing) when the CPU lacks AVX2.
///
/// Panics when `lds < cols`, `src` is too short for `rows` rows of `lds`, or `dst` too short for
/// `cols` rows of `ldd` with `ldd >= rows`.
pub(super) fn transpose_into_f32(src: &[f32], lds: usize, rows: usize, cols: usize, dst: &mut [MaybeUninit<f32>], ldd: usize) -> bool {
    if !available() {
        return false;
    }
    if rows == 0 || cols == 0 {
        return true;
    }
    // Checked: a wrapped extent would pass the test and let the tiles below reach past a buffer.
    let extent = |lines: usize, ld: usize, len: usize| (lines - 1).checked_mul(ld).and_then(|e| e.checked_add(len));
    assert!(
        lds >= cols && extent(rows, lds, cols).is_some_and(|e| src.len() >= e),
        "source too short"
    );
    assert!(
        ldd >= rows && extent(cols, ldd, rows).is_some_and(|e| dst.len() >= e),
        "destination too short"
    );
    let c8 = cols / 8 * 8;
    // SAFETY: avx2 is present (checked above). The bands read src[i * lds + j] for i < rows and
    // j < c8 <= cols <= lds, inside `src`, and write dst[j * ldd + i] for the same, inside `dst`
    // since j < cols and i < rows <= ldd. The writes store initialised values into `MaybeUninit`
    // slots.
    let r4 = unsafe { transpose_bands_f32(src.as_ptr(), 0, lds, rows, c8, ldd, dst.as_mut_ptr().cast::<f32>()) };
    for i in 0..rows {
        let j_from = if i < r4 { c8 } else { 0 };
        for j in j_from..cols {
            dst[j * ldd + i].write(src[i * lds + j]);
        }
    }
    true
}

/// Four rows of 8 steps, rearranged so that vector c holds the 4 rows' values at step c in its
/// low half and at step c + 4 in its high half: interleave pairs of rows, then pairs of pairs.
/// The first half of the 8x8 transpose, and all of the 4-row one.
#[target_feature(enable = "avx2")]
#[inline]
fn quad_steps(r: [__m256; 4]) -> [__m256; 4] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    [
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xEE>(t0, t2),
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xEE>(t1, t3),
    ]
}

/// [`transpose_tiles_f32`] for one band of 4 rows: 4 rows by 8 steps through half the 8x8
/// transpose, each step's 4 values one 128-bit store. A 12-row panel is one band of 8 and one of
/// 4; moved one element at a time, the 4 took twice as long as the 8 (1024 x 1024, Zen 4).
///
/// # Safety
/// avx2 must be available; `src` must be readable at `base + i * rs + p` for `i < 4`, `p < k8`,
/// and `dst` writable at `p * mr + i` for the same; `k8` is a multiple of 8.
#[target_feature(enable = "avx2")]
unsafe fn transpose_quad_f32(src: *const f32, base: usize, rs: usize, k8: usize, mr: usize, dst: *mut f32) {
    // SAFETY: every address is inside the extents the caller guarantees.
    unsafe {
        for p0 in (0..k8).step_by(8) {
            let u = quad_steps(std::array::from_fn(|q| _mm256_loadu_ps(src.add(base + q * rs + p0))));
            for (c, v) in u.into_iter().enumerate() {
                _mm_storeu_ps(dst.add((p0 + c) * mr), _mm256_castps256_ps128(v));
                _mm_storeu_ps(dst.add((p0 + c + 4) * mr), _mm256_extractf128_ps::<1>(v));
            }
        }
    }
}

/// Transposes the rows of `h` that fill bands of 8 rows, then one band of 4 if 4 or more rows
/// are left, over the first `k8` steps: `dst[p * mr + i] = src[base + i * rs + p]`. Returns the
/// rows covered; the caller moves the rest, and the steps from `k8` on, one element at a time.
///
/// # Safety
/// avx2 must be available; `src` must be readable at `base + i * rs + p` for `i < h`, `p < k8`,
/// and `dst` writable at `p * mr + i` for the same; `k8` is a multiple of 8.
#[target_feature(enable = "avx2")]
unsafe fn transpose_bands_f32(src: *const f32, base: usize, rs: usize, h: usize, k8: usize, mr: usize, dst: *mut f32) -> usize {
    let h8 = h / 8 * 8;
    // SAFETY: the 8-row bands cover rows below h8 <= h and the 4-row band rows h8..h8 + 4 <= h,
    // each over steps below k8, inside what the caller guarantees.
    unsafe {
        transpose_tiles_f32(src, base, rs, h8, k8, mr, dst);
        if h - h8 >= 4 {
            transpose_quad_f32(src, base + h8 * rs, rs, k8, mr, dst.add(h8));
            return h8 + 4;
        }
    }
    h8
}

/// # Safety
/// avx2 must be available; `src` must be readable at `base + i * rs + p` for `i < h8`, `p < k8`,
/// and `dst` writable at `p * mr + i` for the same; `h8` and `k8` are multiples of 8.
#[target_feature(enable = "avx2")]
unsafe fn transpose_tiles_f32(src: *const f32, base: usize, rs: usize, h8: usize, k8: usize, mr: usize, dst: *mut f32) {
    // SAFETY: every address is inside the extents the caller guarantees.
    unsafe {
        for i0 in (0..h8).step_by(8) {
            for p0 in (0..k8).step_by(8) {
                let row = |q: usize| _mm256_loadu_ps(src.add(base + (i0 + q) * rs + p0));
                // The standard 8x8 transpose: each band of 4 rows through `quad_steps`, then
                // the bands' 128-bit halves swapped; output vector c holds column c of the tile.
                let [u0, u1, u2, u3] = quad_steps(std::array::from_fn(row));
                let [u4, u5, u6, u7] = quad_steps(std::array::from_fn(|q| row(q + 4)));
                let cols = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                for (c, v) in cols.into_iter().enumerate() {
                    _mm256_storeu_ps(dst.add((p0 + c) * mr + i0), v);
                }
            }
        }
    }
}
