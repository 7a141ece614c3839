//! Matrix products on the CPU: the `gemm` crate (AVX-512 kernels) for real work, a plain loop for
//! the tiny matrices of small models, where gemm's dispatch and packing cost more than the math.

use super::CpuStorage;
use crate::shape::Dims;
use crate::{Element, Error, Float, Layout, Result, Shape};
use rayon::prelude::*;

/// Products with at most this many multiply-adds use the plain loop.
const TINY_FLOPS: usize = 4096;
/// Products with at least this many multiply-adds let gemm use every rayon thread. Below it, gemm's
/// per-call thread synchronisation costs more than the second core gives (W4's 64x256x256 products
/// ran 1.3-1.7x faster single-threaded; W3 n = 64 gained nothing from two threads).
const PAR_FLOPS: usize = 1 << 23;
/// Batches of products with at least this many multiply-adds in all are split over the threads.
const BATCH_PAR_FLOPS: usize = 1 << 18;

impl CpuStorage {
    pub(crate) fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout, batch: &Shape) -> Result<Self> {
        match (self, rhs) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => Ok(CpuStorage::F32(matmul_t(a, l, b, rl, batch))),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => Ok(CpuStorage::F64(matmul_t(a, l, b, rl, batch))),
            (a, b) if a.dtype() != b.dtype() => Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: a.dtype(),
                rhs: b.dtype(),
            }),
            (a, _) => Err(Error::DType {
                op: "matmul",
                expected: "f32 or f64",
                got: a.dtype(),
            }),
        }
    }
}

#[derive(Clone, Copy)]
struct Mat {
    off: usize,
    rs: usize,
    cs: usize,
}

fn batch_offsets(l: &Layout, batch: &Shape) -> smallvec::SmallVec<[usize; 1]> {
    let r = l.shape.rank();
    if batch.rank() == 0 {
        return smallvec::smallvec![l.offset];
    }
    let bl = Layout {
        shape: Shape(Dims::from_slice(&l.shape.0[..r - 2])),
        strides: Dims::from_slice(&l.strides[..r - 2]),
        offset: l.offset,
    };
    let strides = bl.broadcast_strides(batch);
    let nb = batch.elem_count();
    let mut out = smallvec::SmallVec::with_capacity(nb);
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
    out
}

#[allow(clippy::too_many_arguments)]
fn tiny<T: Float>(a: &[T], ma: Mat, b: &[T], mb: Mat, out: &mut [T], m: usize, k: usize, n: usize) {
    // i-p-j order: the inner loop runs along a row of `b` and of `out`, unit stride when `b` is row-major.
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        row.iter_mut().for_each(|v| *v = T::zero());
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
fn gemm_one<T: Float>(a: &[T], ma: Mat, b: &[T], mb: Mat, out: &mut [T], m: usize, k: usize, n: usize, par: gemm::Parallelism) {
    if k == 0 {
        out.iter_mut().for_each(|v| *v = T::zero());
        return;
    }
    // SAFETY: the offsets and strides come from layouts validated against these buffers, so every
    // element gemm reads lies inside `a` and `b`; `out` is exactly m*n contiguous elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
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
}

fn matmul_t<T: Float>(a: &[T], la: &Layout, b: &[T], lb: &Layout, batch: &Shape) -> Vec<T> {
    let (ra, rb) = (la.shape.rank(), lb.shape.rank());
    let (m, k, n) = (la.shape.0[ra - 2], la.shape.0[ra - 1], lb.shape.0[rb - 1]);
    let offs_a = batch_offsets(la, batch);
    let offs_b = batch_offsets(lb, batch);
    let nb = batch.elem_count();
    let mut out = super::pool::filled(nb * m * n, T::zero());
    if m * n == 0 {
        return out;
    }
    let mat = |off: usize, l: &Layout, r: usize| Mat {
        off,
        rs: l.strides[r - 2],
        cs: l.strides[r - 1],
    };
    let flops = m * n * k;
    let threads = rayon::current_num_threads();
    let run = |i: usize, dst: &mut [T], par: gemm::Parallelism| {
        let (ma, mb) = (mat(offs_a[i], la, ra), mat(offs_b[i], lb, rb));
        if flops <= TINY_FLOPS {
            tiny(a, ma, b, mb, dst, m, k, n);
        } else {
            gemm_one(a, ma, b, mb, dst, m, k, n, par);
        }
    };
    // Many products (a convolution's per-sample GEMMs): split the batch over the threads, each
    // product single-threaded. gemm's own threading on small matrices synchronises per call,
    // which cost more than it saved (W6's 64 products of 32x144x196 ran slower on 2 threads).
    if nb >= threads && threads > 1 && flops * nb >= BATCH_PAR_FLOPS {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, dst)| run(i, dst, gemm::Parallelism::None));
    } else {
        let par = if flops >= PAR_FLOPS && threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        for (i, dst) in out.chunks_mut(m * n).enumerate() {
            run(i, dst, par);
        }
    }
    out
}

#[allow(dead_code)]
fn _assert_element<T: Element>() {}
