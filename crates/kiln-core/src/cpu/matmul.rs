//! Matrix products on the CPU: kiln's packed kernels (`cpu::gemm`, AVX-512 or AVX2 + FMA) for real
//! work, the `gemm` crate where they do not apply or measured slower (CPUs without AVX2, one-row
//! products, smaller products, threaded products with a row-major B), and a
//! plain loop for the tiny matrices of small models, where any packing costs more than the math.

use super::gemm::{self as packed, GemmScalar, MatRef};
use super::{narrow_f32, widen_f32, Compute, CpuStorage};
use crate::shape::Dims;
use crate::{Element, Error, Float, Layout, Result, Shape};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Products with at most this many multiply-adds use the plain loop.
const TINY_FLOPS: usize = 4096;
/// Products with at least this many multiply-adds let gemm use every rayon thread. Below it, gemm's
/// per-call thread synchronisation costs more than the second core gives (W4's 64x256x256 products
/// ran 1.3-1.7x faster single-threaded; W3 n = 64 gained nothing from two threads).
pub(super) const PAR_FLOPS: usize = 1 << 23;
/// Batches of products with at least this many multiply-adds in all are split over the threads.
const BATCH_PAR_FLOPS: usize = 1 << 18;

impl CpuStorage {
    pub(crate) fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout, batch: &Shape) -> Result<Self> {
        match (self, rhs) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => Ok(CpuStorage::F32(matmul_t(a, l, b, rl, batch)?)),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => Ok(CpuStorage::F64(matmul_t(a, l, b, rl, batch)?)),
            (CpuStorage::F16(a), CpuStorage::F16(b)) => Ok(CpuStorage::F16(matmul_narrow(a, l, b, rl, batch)?)),
            (CpuStorage::BF16(a), CpuStorage::BF16(b)) => Ok(CpuStorage::BF16(matmul_narrow(a, l, b, rl, batch)?)),
            (a, b) if a.dtype() != b.dtype() => Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: a.dtype(),
                rhs: b.dtype(),
            }),
            (a, _) => Err(Error::DType {
                op: "matmul",
                expected: "a float dtype (f16, bf16, f32 or f64)",
                got: a.dtype(),
            }),
        }
    }
}

/// A strided matrix in a buffer: element `(i, j)` at `off + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(super) struct Mat {
    pub(super) off: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl Mat {
    /// True when every element `off + i * rs + j * cs` (`i < rows`, `j < cols`) of this operand lies
    /// inside a buffer of `len` elements, and the strides fit the `isize` gemm takes. Checked
    /// arithmetic: an offset that overflows is outside any buffer.
    fn fits(&self, rows: usize, cols: usize, len: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| (cols - 1).checked_mul(self.cs).and_then(|c| r.checked_add(c)))
            .and_then(|rc| rc.checked_add(self.off));
        let strides_fit = isize::try_from(self.rs).is_ok() && isize::try_from(self.cs).is_ok();
        strides_fit && last.is_some_and(|e| e < len)
    }
}

/// The error for an operand layout that reaches outside its buffer. Layouts are built by the
/// tensor API and validated there, so this is a last line of defence before unchecked reads.
fn out_of_bounds(which: &str, m: Mat, rows: usize, cols: usize, len: usize) -> Error {
    Error::shape(
        "matmul",
        format!(
            "the {which} operand ({rows}x{cols} at offset {}, strides ({}, {})) reaches outside its buffer of {len} elements",
            m.off, m.rs, m.cs
        ),
    )
}

/// Checks that an `m x k` A, a `k x n` B and a row-major `m x n` output of `dst_len` elements
/// each lie inside their buffers: the bounds check before every path's reads and writes (the
/// unsafe ones, and the plain loop's, where an error beats a panic).
fn check_extents<T>(a: &[T], ma: Mat, b: &[T], mb: Mat, dst_len: usize, (m, k, n): (usize, usize, usize)) -> Result<()> {
    if !ma.fits(m, k, a.len()) {
        return Err(out_of_bounds("left", ma, m, k, a.len()));
    }
    if !mb.fits(k, n, b.len()) {
        return Err(out_of_bounds("right", mb, k, n, b.len()));
    }
    let dst = Mat { off: 0, rs: n, cs: 1 };
    if !dst.fits(m, n, dst_len) {
        return Err(out_of_bounds("output", dst, m, n, dst_len));
    }
    Ok(())
}

/// The offset of each batch entry's matrix. A batch of empty products can be far longer than
/// the output, so the list is allocated fallibly.
fn batch_offsets(l: &Layout, batch: &Shape) -> Result<smallvec::SmallVec<[usize; 1]>> {
    let r = l.shape.rank();
    if batch.rank() == 0 {
        return Ok(smallvec::smallvec![l.offset]);
    }
    let bl = Layout {
        shape: Shape(Dims::from_slice(&l.shape.0[..r - 2])),
        strides: Dims::from_slice(&l.strides[..r - 2]),
        offset: l.offset,
    };
    let strides = bl.broadcast_strides(batch);
    let nb = batch.elem_count();
    let mut out = smallvec::SmallVec::new();
    out.try_reserve_exact(nb).map_err(|_| {
        super::pool::AllocError {
            elems: nb,
            elem_bytes: std::mem::size_of::<usize>(),
        }
        .at("matmul")
    })?;
    let mut idx = vec![0usize; batch.rank()];
    for _ in 0..nb {
        out.push(l.offset + idx.iter().zip(strides.iter()).map(|(i, s)| i * s).sum::<usize>());
        for d in (0..batch.rank()).rev() {
            idx[d] += 1;
            if idx[d] < batch.0[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// Products with fewer multiply-adds go to the `gemm` crate. On the AVX2 Zen vCPU of 2026-12-01
/// (CPU time, same run): n = 64, 75 GFLOP/s for gemm against 69 for the packed kernel; n = 128,
/// 88 vs 84; n = 256 and 512 level within 1 %; n = 1024, 89 vs 91 (f32), and f64 n = 2048, 40.5
/// vs 43. On the AVX-512 Zen 5 vCPU of 2026-12-01 (f32, 1 thread): n = 64, 213 vs 191; n = 256,
/// 265 vs 252; n = 384, level; n = 512 to 2048, the packed kernel 3-7 % ahead; W5's
/// 128 x 784 x 512 and 128 x 512 x 512 products (with the transposing pack of `Wᵀ`), 7 % ahead
/// over a training step. So it takes over from 2^25 multiply-adds.
const PACKED_FLOPS: usize = 1 << 25;

/// The thread count a `gemm::Parallelism` asks for.
fn par_threads(par: gemm::Parallelism) -> usize {
    match par {
        gemm::Parallelism::Rayon(t) => t.max(1),
        _ => 1,
    }
}

/// Whether an `m x k x n` product on `threads` threads goes through kiln's packed kernel: on CPUs
/// that run it, from [`PACKED_FLOPS`], for products of at least two rows (one-row products are
/// matrix-vector work that packing only slows down). Threaded products with a row-major B take
/// the `gemm` crate, which split them better on the Zen 5 vCPU (2 threads, square f32: n = 256,
/// 408-440 against 307-399 GFLOP/s; n = 1024, 523-532 against 498-505); with a transposed B (a
/// Linear layer's `Wᵀ`), the packed kernel's register-transposing pack wins (W5 on 2 threads:
/// 76-87k samples/s against 68-77k).
///
/// On Intel CPUs products with a row-major B take the crate on one thread as well. On an Emerald
/// Rapids vCPU (2026-12-02, f32, 1 thread, n = 1024, 4 interleaved runs) the crate ran at
/// 158-163 GFLOP/s (92-94 % of the FMA peak) and the packed kernel at 144-148, whatever the
/// blocking (kc 256-1024, mc 96-1032, depth-first or row-first tile order); the crate's 6 x 64
/// tile reads A in place and streams B, the packed kernel's 12 x 32 tile does the reverse. With
/// a transposed B the packed kernel's transposing pack still wins there (W5 on 2 threads:
/// 39.5-42.6k samples/s against 35.3-41.1k; level on one thread). `KILN_GEMM=crate` or
/// `KILN_GEMM=packed` forces one path (for side-by-side measurement).
fn use_packed(m: usize, flops: usize, threads: usize, b_row_major: bool) -> bool {
    static FORCE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let force = *FORCE.get_or_init(|| match std::env::var("KILN_GEMM").as_deref() {
        Ok("crate") => Some(false),
        Ok("packed") => Some(true),
        _ => None,
    });
    let crate_for_row_major_b = threads > 1 || packed::intel_cpu();
    packed::packed_available() && m >= 2 && force.unwrap_or(flops >= PACKED_FLOPS && !(b_row_major && crate_for_row_major_b))
}

/// The path `Tensor::matmul` takes for one `m x k x n` product on `threads` threads, by the rule
/// it applies (`TINY_FLOPS`, `DOTS_MAX_N`, `use_packed` in this module): `"loop"`, `"dot products"`,
/// `"packed kernel"` or `"gemm crate"`, for contiguous f32 operands (B either row-major or the
/// transpose of a row-major matrix). For benchmark reports, which must name what ran rather
/// than repeat the rule.
pub fn product_path(m: usize, k: usize, n: usize, threads: usize, b_row_major: bool) -> &'static str {
    let flops = m.saturating_mul(n).saturating_mul(k);
    if flops <= TINY_FLOPS {
        "loop"
    } else if !b_row_major && n <= DOTS_MAX_N && k >= DOTS_MIN_K && packed::dots_available() && !dots_off() {
        "dot products"
    } else if use_packed(m, flops, threads, b_row_major) {
        "packed kernel"
    } else {
        "gemm crate"
    }
}

/// Products with at most this many columns, a row-major A and a transposed B (a classifier's
/// last layer, `x · Wᵀ` with a narrow W) are computed as dot products of rows ([`dots`]): the
/// tile kernels would leave most of their 16- or 32-column tile idle. Emerald Rapids vCPU,
/// 2026-12-03, 1 thread, medians of 400 calls against the `gemm` crate, which took them before
/// (`KILN_DOTS=0`): 128 x 512 x 10, W5's last layer, 14-18 us against 30-37 (PyTorch's MKL
/// 14-20); 128 x 512 x 12, 15-22 against 30-34; 1024 x 512 x 10, 118-175 against 201-242; 128 x
/// 512 x 16, 21-29 against 26-33, so 16 columns is still a gain.
const DOTS_MAX_N: usize = 16;
/// ... and at least this depth: below it the sums across lanes cost more than the products.
const DOTS_MIN_K: usize = 32;

/// Whether `KILN_DOTS=0` sends narrow products down the other paths (for side-by-side
/// measurement).
fn dots_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("KILN_DOTS").is_ok_and(|v| v == "0"))
}

/// `a · b` into `dst` as dot products of A's rows with B's columns (contiguous: B is a row-major
/// matrix transposed), split by rows over `threads`; false (nothing written) when the CPU has no
/// kernel for it.
fn dots<T: Float + GemmScalar>(
    a: &[T],
    ma: Mat,
    b: &[T],
    mb: Mat,
    dst: &mut [MaybeUninit<T>],
    (m, k, n): (usize, usize, usize),
    threads: usize,
) -> Result<bool> {
    if m == 0 || n == 0 || k == 0 || dots_off() {
        return Ok(false);
    }
    // Rows of A and columns of B must each be contiguous and apart from one another: a broadcast
    // operand (stride 0) or a view with overlapping rows takes the general paths. A single row or
    // column cannot overlap another, whatever its stride (size-1 dims often have stride 0).
    let (lda, ldw) = (if m == 1 { k } else { ma.rs }, if n == 1 { k } else { mb.cs });
    if ma.cs != 1 || mb.rs != 1 || lda < k || ldw < k {
        return Ok(false);
    }
    check_extents(a, ma, b, mb, dst.len(), (m, k, n))?;
    // Checked just above: rows of A start at `ma.off + i * ma.rs`, columns of B (rows of the
    // weight) at `mb.off + j * mb.cs`, each `k` long.
    let (a, w) = (&a[ma.off..], &b[mb.off..]);
    let rows = if threads > 1 {
        m.div_ceil(threads).next_multiple_of(packed::DOTS_ROWS_UNIT)
    } else {
        m
    };
    if rows >= m {
        return Ok(T::dots(a, lda, w, ldw, (m, n, k), dst, n));
    }
    let done = dst[..m * n]
        .par_chunks_mut(rows * n)
        .enumerate()
        .map(|(t, part)| {
            let r = part.len() / n;
            T::dots(&a[t * rows * lda..], lda, w, ldw, (r, n, k), part, n)
        })
        .collect::<Vec<bool>>();
    Ok(done.iter().all(|&d| d))
}

#[allow(clippy::too_many_arguments)]
fn tiny<T: Float>(a: &[T], ma: Mat, b: &[T], mb: Mat, out: &mut [MaybeUninit<T>], m: usize, k: usize, n: usize) {
    // i-p-j order: the inner loop runs along a row of `b` and of `out`, unit stride when `b` is row-major.
    // Bounds-checked indexing throughout (the caller also checked both operands with `Mat::fits`).
    for i in 0..m {
        let row = zeroed(&mut out[i * n..(i + 1) * n]);
        for p in 0..k {
            let av = a[ma.off + i * ma.rs + p * ma.cs];
            let bo = mb.off + p * mb.rs;
            if mb.cs == 1 {
                for (o, &bv) in row.iter_mut().zip(&b[bo..bo + n]) {
                    *o += av * bv;
                }
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    *o += av * b[bo + j * mb.cs];
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_one<T: Float>(
    a: &[T],
    ma: Mat,
    b: &[T],
    mb: Mat,
    out: &mut [MaybeUninit<T>],
    m: usize,
    k: usize,
    n: usize,
    par: gemm::Parallelism,
) -> Result<()> {
    if k == 0 || m == 0 || n == 0 {
        out.iter_mut().for_each(|v| {
            v.write(T::zero());
        });
        return Ok(());
    }
    // Local bounds check for the unchecked reads and writes below: the furthest element reachable
    // from each pointer with its strides and dims must lie inside its buffer.
    check_extents(a, ma, b, mb, out.len(), (m, k, n))?;
    // SAFETY: checked just above: every element gemm reads, `a[ma.off + i*ma.rs + p*ma.cs]` and
    // `b[mb.off + p*mb.rs + j*mb.cs]` for i < m, p < k, j < n, lies inside `a` and `b` (so the
    // `add` offsets are in bounds too), every element it writes, `out[i*n + j]`, lies inside
    // `out`, and all strides fit in isize. `out` is a unique borrow, so nothing aliases it. With
    // `read_dst` false gemm only writes the destination, through this raw pointer, so its
    // elements may be uninitialised (`MaybeUninit<T>` has `T`'s layout).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr().cast::<T>(),
            1,
            n as isize,
            false,
            a.as_ptr().add(ma.off),
            ma.cs as isize,
            ma.rs as isize,
            b.as_ptr().add(mb.off),
            mb.cs as isize,
            mb.rs as isize,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            par,
        )
    }
    Ok(())
}

/// One `m x k x n` product `a · b` into the row-major `dst` (`m * n` elements, all written) on
/// the path the size and the operands' layouts pick: the plain loop, dot products of rows
/// ([`dots`]), kiln's packed kernel or the `gemm` crate. `par` is the threading the crate may
/// use (the packed kernel and the dot products take its thread count).
pub(super) fn product<T: Float + GemmScalar>(
    a: &[T],
    ma: Mat,
    b: &[T],
    mb: Mat,
    dst: &mut [MaybeUninit<T>],
    (m, k, n): (usize, usize, usize),
    par: gemm::Parallelism,
) -> Result<()> {
    // Saturating: only compared against thresholds (a product this large fails its bounds check).
    let flops = m.saturating_mul(n).saturating_mul(k);
    if flops <= TINY_FLOPS {
        // Indexing in `tiny` is bounds-checked, but an error beats its panic.
        check_extents(a, ma, b, mb, dst.len(), (m, k, n))?;
        tiny(a, ma, b, mb, dst, m, k, n);
        Ok(())
    } else if n <= DOTS_MAX_N && k >= DOTS_MIN_K && dots(a, ma, b, mb, dst, (m, k, n), par_threads(par))? {
        Ok(())
    } else if use_packed(m, flops, par_threads(par), mb.cs == 1) {
        let threads = par_threads(par);
        let view = |data, x: Mat| MatRef {
            data,
            off: x.off,
            rs: x.rs,
            cs: x.cs,
        };
        // `gemm_uninit` checks all three extents itself before its unchecked accesses, and
        // writes every element of `dst` (beta 0).
        packed::gemm_uninit(m, n, k, view(a, ma), view(b, mb), dst, n, threads)
    } else {
        gemm_one(a, ma, b, mb, dst, m, k, n, par)
    }
}

fn matmul_t<T: Float + GemmScalar>(a: &[T], la: &Layout, b: &[T], lb: &Layout, batch: &Shape) -> Result<Vec<T>> {
    let (ra, rb) = (la.shape.rank(), lb.shape.rank());
    let (m, k, n) = (la.shape.0[ra - 2], la.shape.0[ra - 1], lb.shape.0[rb - 1]);
    // The caller validated the output shape `batch + [m, n]`, so these products do not overflow.
    let nb = batch.elem_count();
    let total = nb * m * n;
    // Not zero-filled: every path below writes each output element before anything reads it
    // (a memset of the output was 3-6 % of a W5/W6 training step).
    let mut out: Vec<T> = super::pool::take(total).map_err(|e| e.at("matmul"))?;
    if m * n == 0 {
        return Ok(out);
    }
    if k == 0 {
        // Empty sums: zeros, without the batch's offsets (a long batch of them cost more memory
        // than the output).
        out.resize(total, T::zero());
        return Ok(out);
    }
    let offs_a = batch_offsets(la, batch)?;
    let offs_b = batch_offsets(lb, batch)?;
    let mat = |off: usize, l: &Layout, r: usize| Mat {
        off,
        rs: l.strides[r - 2],
        cs: l.strides[r - 1],
    };
    // Saturating: only compared against thresholds (a product this large fails its bounds check).
    let flops = m.saturating_mul(n).saturating_mul(k);
    let threads = crate::threads::kernel_threads();
    let run = |i: usize, dst: &mut [MaybeUninit<T>], par: gemm::Parallelism| -> Result<()> {
        product(a, mat(offs_a[i], la, ra), b, mat(offs_b[i], lb, rb), dst, (m, k, n), par)
    };
    // Many products (a convolution's per-sample GEMMs): split the batch over the threads, each
    // product single-threaded. gemm's own threading on small matrices synchronises per call,
    // which cost more than it saved (W6's 64 products of 32x144x196 ran slower on 2 threads).
    // `take` guarantees capacity >= total; the slice checks it again before `set_len` relies on it.
    let spare = &mut out.spare_capacity_mut()[..total];
    if nb >= threads && threads > 1 && flops.saturating_mul(nb) >= BATCH_PAR_FLOPS {
        spare
            .par_chunks_mut(m * n)
            .enumerate()
            .try_for_each(|(i, dst)| run(i, dst, gemm::Parallelism::None))?;
    } else {
        let par = if flops >= PAR_FLOPS && threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        for (i, dst) in spare.chunks_mut(m * n).enumerate() {
            run(i, dst, par)?;
        }
    }
    // SAFETY: the capacity is at least `total` (the slice above would have failed otherwise), and
    // every product succeeded (an error returned above, leaving the length 0), so each of the `nb`
    // chunks of `m * n` was written in full: `tiny` zero-fills each row before adding to it, the
    // dot products write every element of the rows they are given (and report false, writing
    // nothing, when they do not run), the packed kernels and the gemm crate write every
    // destination element (both zero-fill when k == 0).
    unsafe { out.set_len(total) };
    Ok(out)
}

/// `dst` zero-filled, as the initialised slice it now is.
fn zeroed<T: Float>(dst: &mut [MaybeUninit<T>]) -> &mut [T] {
    for v in dst.iter_mut() {
        v.write(T::zero());
    }
    // SAFETY: every element was just initialised, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<T>(), dst.len()) }
}

/// A product of 16-bit operands: both widened to f32, multiplied by the f32 kernels (f32
/// accumulation throughout, as PyTorch's CPU matmul on half tensors), and each output rounded once.
fn matmul_narrow<S: Compute<C = f32>>(a: &[S], la: &Layout, b: &[S], lb: &Layout, batch: &Shape) -> Result<Vec<S>> {
    let widen = |x: &[S], l: &Layout| -> Result<(Vec<f32>, Layout)> {
        let w = widen_f32(x, l).map_err(|e| e.at("matmul"))?;
        Ok((w, Layout::contiguous(l.shape.clone())))
    };
    let (wa, wla) = widen(a, la)?;
    let (wb, wlb) = widen(b, lb)?;
    let out = matmul_t(&wa, &wla, &wb, &wlb, batch)?;
    narrow_f32(&out).map_err(|e| e.at("matmul"))
}

#[allow(dead_code)]
fn _assert_element<T: Element>() {}

#[cfg(test)]
mod tests {
    use super::*;

    // The tensor API only builds layouts inside their buffers, so these call the kernel directly
    // with the kind of layout an overflowed shape used to produce (a 128x128 window onto an empty
    // buffer), to show the check before the unsafe gemm call refuses it.

    #[test]
    fn product_path_names_the_rule() {
        // Up to TINY_FLOPS the plain loop; one-row products never pack; a large product takes
        // whichever `use_packed` says, on any CPU.
        assert_eq!(product_path(16, 16, 16, 1, true), "loop");
        assert_eq!(product_path(1, 4096, 4096, 1, true), "gemm crate");
        let big = 1024 * 1024 * 1024;
        let expect = if use_packed(1024, big, 1, false) {
            "packed kernel"
        } else {
            "gemm crate"
        };
        assert_eq!(product_path(1024, 1024, 1024, 1, false), expect);
        // A classifier's last layer (B the transpose of a narrow row-major weight).
        let narrow = if packed::dots_available() { "dot products" } else { "gemm crate" };
        assert_eq!(product_path(128, 512, 10, 1, false), narrow);
        assert_eq!(product_path(128, 512, 10, 1, true), "gemm crate");
        assert_eq!(product_path(128, 512, DOTS_MAX_N + 1, 1, false), "gemm crate");
    }

    /// The dot products split between threads at any row count (the last part shorter, here
    /// with three threads whatever the pool's size), and refuse operands whose rows repeat.
    #[test]
    fn dot_products_split_rows_and_refuse_repeated_rows() {
        if !packed::dots_available() {
            return;
        }
        let (m, k, n) = (2047, 37, 5);
        let a: Vec<f32> = (0..m * k).map(|x| ((x * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let w: Vec<f32> = (0..n * k).map(|x| ((x * 104_729) % 1000) as f32 / 500.0 - 1.0).collect();
        let ma = Mat { off: 0, rs: k, cs: 1 };
        let mb = Mat { off: 0, rs: 1, cs: k };
        for threads in [1, 2, 3] {
            let mut c = vec![MaybeUninit::new(f32::NAN); m * n];
            assert!(dots(&a, ma, &w, mb, &mut c, (m, k, n), threads).unwrap());
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: every slot was initialised (to NaN) before the call.
                    let got = unsafe { c[i * n + j].assume_init() } as f64;
                    let (dot, mag) = (0..k).fold((0.0f64, 0.0f64), |(d, g), p| {
                        let x = a[i * k + p] as f64 * w[j * k + p] as f64;
                        (d + x, g + x.abs())
                    });
                    assert!(
                        (got - dot).abs() <= (k + 2) as f64 * f32::EPSILON as f64 * mag,
                        "threads {threads} ({i}, {j}): {got} vs {dot}"
                    );
                }
            }
        }
        // Rows of A one and the same (stride 0), or columns of B: not this path.
        let mut c = vec![MaybeUninit::new(0.0f32); m * n];
        assert!(!dots(&a, Mat { rs: 0, ..ma }, &w, mb, &mut c, (m, k, n), 1).unwrap());
        assert!(!dots(&a, ma, &w, Mat { cs: 0, ..mb }, &mut c, (m, k, n), 1).unwrap());
        // A single row or column may have any stride.
        let mut c1 = vec![MaybeUninit::new(f32::NAN); n];
        assert!(dots(&a, Mat { rs: 0, ..ma }, &w, mb, &mut c1, (1, k, n), 1).unwrap());
        // SAFETY: initialised before the call.
        let first = unsafe { c1[0].assume_init() } as f64;
        let want: f64 = (0..k).map(|p| a[p] as f64 * w[p] as f64).sum();
        assert!((first - want).abs() < 1e-4, "{first} vs {want}");
    }

    #[test]
    fn gemm_refuses_operands_outside_their_buffers() {
        let (m, k, n) = (128, 128, 128);
        let big = vec![0.0f32; m * k];
        let mut out = vec![MaybeUninit::new(0.0f32); m * n];
        let strided = Mat { off: 0, rs: k, cs: 1 };
        let e = gemm_one(&big[..4], strided, &big, strided, &mut out, m, k, n, gemm::Parallelism::None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: the left operand (128x128 at offset 0, strides (128, 1)) reaches outside its buffer of 4 elements"
        );
        let e = gemm_one(
            &big,
            strided,
            &big[..m * k - 1],
            strided,
            &mut out,
            m,
            k,
            n,
            gemm::Parallelism::None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: the right operand (128x128 at offset 0, strides (128, 1)) reaches outside its buffer of 16383 elements"
        );
        // Offsets whose arithmetic overflows are outside too, not wrapped back inside.
        let wrap = Mat {
            off: 1,
            rs: usize::MAX,
            cs: 1,
        };
        assert!(gemm_one(&big, wrap, &big, strided, &mut out, m, k, n, gemm::Parallelism::None).is_err());
        // An output buffer too short for m x n.
        let e = gemm_one(&big, strided, &big, strided, &mut out[..10], m, k, n, gemm::Parallelism::None).unwrap_err();
        assert!(e.to_string().starts_with("matmul: the output operand"), "{e}");
        // In-bounds operands still multiply: identity times ones.
        let mut eye = vec![0.0f64; m * k];
        (0..m).for_each(|i| eye[i * k + i] = 1.0);
        let ones = vec![1.0f64; k * n];
        let mut o = vec![MaybeUninit::new(0.0f64); m * n];
        gemm_one(&eye, strided, &ones, strided, &mut o, m, k, n, gemm::Parallelism::None).unwrap();
        // SAFETY: initialised when created, and gemm only wrote values into it.
        assert!(o.iter().all(|v| unsafe { v.assume_init() } == 1.0));
    }

    #[test]
    fn fits_checks_the_furthest_element() {
        let mat = Mat { off: 2, rs: 3, cs: 1 };
        // Furthest element: 2 + 1*3 + 2*1 = 7.
        assert!(mat.fits(2, 3, 8));
        assert!(!mat.fits(2, 3, 7));
        assert!(mat.fits(0, 3, 0), "an empty operand reads nothing");
        let huge = Mat {
            off: 0,
            rs: isize::MAX as usize + 1,
            cs: 1,
        };
        assert!(!huge.fits(1, 1, usize::MAX), "strides must fit the isize gemm takes");
    }
}
