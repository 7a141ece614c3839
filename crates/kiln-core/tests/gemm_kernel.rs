//! kiln's packed matrix product (`kiln_core::cpu::gemm`) and `Tensor::matmul` through it, against
//! a naive f64 reference on odd shapes: ones, primes, shapes that cross the cache blocks (k past
//! `kc`, m past `mc`, n past `nc`), row-major, transposed and non-contiguous operands, batch
//! broadcast, accumulation (`beta != 0`), f32 and f64, one and two threads.
//!
//! Tolerance: the error bound of a k-term dot product, `(k + 2) · eps · Σ|a·b|` (+ the `beta·c`
//! term), so a wrong element, a missed tile edge or a doubled depth block fails while rounding
//! differences from another summation order pass.

use kiln_core::cpu::gemm::{gemm, gemm_with_isa, GemmScalar, Isa, MatRef};
use kiln_core::{Float, Tensor};
use std::mem::MaybeUninit;

/// Deterministic values in [-1, 1) (64-bit LCG), so failures reproduce.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// How an operand is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
enum Lay {
    /// Row-major, rows packed.
    Rows,
    /// Column-major (a transposed operand).
    Cols,
    /// Neither stride 1: every element two apart, rows padded, at an offset.
    Strided,
}

/// An `r x c` matrix of the given values stored with layout `lay`: (buffer, off, rs, cs).
fn store<T: Float>(vals: &[f64], r: usize, c: usize, lay: Lay, to: fn(f64) -> T) -> (Vec<T>, usize, usize, usize) {
    let (off, rs, cs) = match lay {
        Lay::Rows => (0, c, 1),
        Lay::Cols => (0, 1, r),
        Lay::Strided => (3, 2 * c + 5, 2),
    };
    let len = off + r.saturating_sub(1) * rs + c.saturating_sub(1) * cs + 1 + 7;
    // Fill the gaps with a large value so that reading one shows in the result.
    let mut buf = vec![to(1e6); len];
    for i in 0..r {
        for j in 0..c {
            buf[off + i * rs + j * cs] = to(vals[i * c + j]);
        }
    }
    (buf, off, rs, cs)
}

#[allow(clippy::too_many_arguments)]
fn check_one<T: GemmScalar>(
    isa: Option<Isa>,
    (m, k, n): (usize, usize, usize),
    la: Lay,
    lb: Lay,
    alpha: f64,
    beta: f64,
    threads: usize,
    to: fn(f64) -> T,
    from: fn(T) -> f64,
    eps: f64,
) {
    let av = values(m * k, (m * 31 + k) as u64);
    let bv = values(k * n, (k * 17 + n) as u64);
    let (abuf, aoff, ars, acs) = store(&av, m, k, la, to);
    let (bbuf, boff, brs, bcs) = store(&bv, k, n, lb, to);
    // C with two padding columns per row that must stay untouched.
    let ldc = n + 2;
    let c0 = values(m * ldc, 99);
    let mut c: Vec<T> = if beta == 0.0 {
        // beta = 0 must not read C: NaNs there must not reach the result.
        vec![to(f64::NAN); m * ldc]
    } else {
        c0.iter().map(|&v| to(v)).collect()
    };
    let a = MatRef {
        data: &abuf,
        off: aoff,
        rs: ars,
        cs: acs,
    };
    let b = MatRef {
        data: &bbuf,
        off: boff,
        rs: brs,
        cs: bcs,
    };
    match isa {
        None => gemm(m, n, k, to(alpha), a, b, to(beta), &mut c, ldc, threads).unwrap(),
        Some(isa) => gemm_with_isa(isa, m, n, k, to(alpha), a, b, to(beta), &mut c, ldc, threads).unwrap(),
    }
    for i in 0..m {
        for j in 0..n {
            let (mut dot, mut mag) = (0.0, 0.0);
            for p in 0..k {
                // The reference multiplies the values as stored in T (rounded to f32 for f32).
                let x = from(to(av[i * k + p])) * from(to(bv[p * n + j]));
                dot += x;
                mag += x.abs();
            }
            let cin = if beta == 0.0 { 0.0 } else { from(to(c0[i * ldc + j])) };
            let want = alpha * dot + beta * cin;
            let tol = (k as f64 + 2.0) * eps * (alpha.abs() * mag + (beta * cin).abs()) + 1e-30;
            let got = from(c[i * ldc + j]);
            assert!(
                (got - want).abs() <= tol,
                "{isa:?} {m}x{k}x{n} {la:?}/{lb:?} alpha {alpha} beta {beta} threads {threads}: C[{i},{j}] = {got}, want {want} (tol {tol})"
            );
        }
        for j in n..ldc {
            let untouched = if beta == 0.0 { f64::NAN } else { from(to(c0[i * ldc + j])) };
            let got = from(c[i * ldc + j]);
            assert!(
                got == untouched || (got.is_nan() && untouched.is_nan()),
                "padding C[{i},{j}] written"
            );
        }
    }
}

const SHAPES: [(usize, usize, usize); 12] = [
    (1, 1, 1),
    (7, 13, 5),
    (17, 31, 23),
    (67, 1, 129),
    (130, 257, 65),
    (6, 16, 16),
    (2, 600, 3),
    (259, 300, 37),
    (13, 5, 4113),
    // Past the AVX-512 kernel's depth block (kc = 768 on a 48 KiB L1d) with two threads' rows.
    (53, 801, 97),
    // Three balanced depth blocks (534, 534, 532) and two row blocks.
    (263, 1600, 33),
    // Rows of A 4 KiB apart (f32): twelve alias in an 8-way L1, so `gemm` takes the 6 x 64 tile
    // there; 125 columns end in a tile of 61 (a partial fourth vector), 31 rows in one of 1.
    (31, 1024, 125),
];

/// Every case through `gemm` (the kernel this CPU selects) and through each kernel family the
/// CPU has, so a machine with AVX-512 still tests the AVX2 kernels.
fn all_cases<T: GemmScalar>(to: fn(f64) -> T, from: fn(T) -> f64, eps: f64) {
    let lays = [Lay::Rows, Lay::Cols, Lay::Strided];
    let isas = std::iter::once(None).chain(Isa::ALL.into_iter().filter(|i| i.available()).map(Some));
    for isa in isas {
        for &shape in &SHAPES {
            for &la in &lays {
                for &lb in &lays {
                    check_one(isa, shape, la, lb, 1.0, 0.0, 1, to, from, eps);
                }
            }
            check_one(isa, shape, Lay::Rows, Lay::Cols, 0.5, 2.0, 1, to, from, eps);
            check_one(isa, shape, Lay::Strided, Lay::Rows, -1.5, 1.0, 2, to, from, eps);
            check_one(isa, shape, Lay::Rows, Lay::Rows, 1.0, 0.0, 2, to, from, eps);
            check_one(isa, shape, Lay::Cols, Lay::Cols, 1.0, 0.5, 2, to, from, eps);
        }
    }
}

#[test]
fn f32_products_match_the_reference() {
    all_cases::<f32>(|v| v as f32, |v| v as f64, f32::EPSILON as f64);
}

/// Rows of a row-major A 8 KiB apart (f32) under a B wider than 1024 columns: on an 8-way L1
/// `gemm` reads A in place with the 6 x 64 tile there (`WIDE_DIRECT_A_MAX_N`), elsewhere it packs
/// A. 7 rows end in a tile of 1 row, 1030 columns in one of 6.
#[test]
fn wide_b_under_rows_of_a_eight_kib_apart() {
    let shape = (7, 2048, 1030);
    for threads in [1, 2] {
        check_one(
            None,
            shape,
            Lay::Rows,
            Lay::Rows,
            1.0,
            0.0,
            threads,
            |v| v as f32,
            f64::from,
            f32::EPSILON as f64,
        );
        check_one(
            None,
            shape,
            Lay::Rows,
            Lay::Cols,
            -0.5,
            1.5,
            threads,
            |v| v as f32,
            f64::from,
            f32::EPSILON as f64,
        );
    }
}

#[test]
fn f64_products_match_the_reference() {
    all_cases::<f64>(|v| v, |v| v, f64::EPSILON);
}

#[test]
fn empty_depth_scales_or_clears_c() {
    let a: [f32; 0] = [];
    let ar = MatRef {
        data: &a,
        off: 0,
        rs: 0,
        cs: 1,
    };
    let mut c = [1.0f32, 2.0, 3.0, 4.0];
    gemm(2, 2, 0, 1.0, ar, ar, 3.0, &mut c, 2, 1).unwrap();
    assert_eq!(c, [3.0, 6.0, 9.0, 12.0]);
    let mut c = [f32::NAN; 4];
    gemm(2, 2, 0, 1.0, ar, ar, 0.0, &mut c, 2, 1).unwrap();
    assert_eq!(c, [0.0; 4]);
}

#[test]
fn operands_outside_their_buffers_are_errors() {
    let buf = vec![1.0f64; 64];
    let ok = MatRef {
        data: &buf,
        off: 0,
        rs: 8,
        cs: 1,
    };
    let mut c = vec![0.0f64; 64];
    let short = MatRef { data: &buf[..63], ..ok };
    let e = gemm(8, 8, 8, 1.0, short, ok, 0.0, &mut c, 8, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul: the left operand (8x8 at offset 0, strides (8, 1)) reaches outside its buffer of 63 elements"
    );
    let wrap = MatRef {
        off: 1,
        rs: usize::MAX,
        ..ok
    };
    assert!(gemm(8, 8, 8, 1.0, ok, wrap, 0.0, &mut c, 8, 1).is_err());
    let e = gemm(8, 8, 8, 1.0, ok, ok, 0.0, &mut c[..60], 8, 1).unwrap_err();
    assert!(e.to_string().starts_with("matmul: the output operand"), "{e}");
    // Nothing was written by the refused calls.
    assert!(c.iter().all(|&v| v == 0.0));
    gemm(8, 8, 8, 1.0, ok, ok, 0.0, &mut c, 8, 1).unwrap();
    assert!(c.iter().all(|&v| v == 8.0));
}

/// `Tensor::matmul` on views: transposed, narrowed (non-contiguous) and broadcast batches.
fn tensor_case(dtype_f64: bool) {
    let (m, k, n) = (67, 131, 259);
    let to_t = |v: Vec<f64>, shape: Vec<usize>| -> Tensor {
        if dtype_f64 {
            Tensor::from_vec(v, shape).unwrap()
        } else {
            Tensor::from_vec(v.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), shape).unwrap()
        }
    };
    let read = |t: &Tensor| -> Vec<f64> {
        if dtype_f64 {
            t.to_vec::<f64>().unwrap()
        } else {
            t.to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
        }
    };
    let eps = if dtype_f64 { f64::EPSILON } else { f32::EPSILON as f64 };
    // Left: [3, 1, m, k] built as the transpose of [3, 1, k, m+2] narrowed to m columns.
    let lbig = to_t(values(3 * k * (m + 2), 5), vec![3, 1, k, m + 2]);
    let lhs = lbig.narrow(3, 1, m).unwrap().transpose(2, 3).unwrap();
    // Right: [4, k, n] as a column-major (transposed) view, broadcast against lhs's batch of 1.
    let rbig = to_t(values(4 * n * k, 6), vec![4, n, k]);
    let rhs = rbig.transpose(1, 2).unwrap();
    let out = lhs.matmul(&rhs).unwrap();
    assert_eq!(out.shape().dims(), &[3, 4, m, n]);
    let (lv, rv, ov) = (read(&lhs.contiguous().unwrap()), read(&rhs.contiguous().unwrap()), read(&out));
    for b0 in 0..3 {
        for b1 in 0..4 {
            for i in 0..m {
                for j in 0..n {
                    let (mut dot, mut mag) = (0.0, 0.0);
                    for p in 0..k {
                        let x = lv[(b0 * m + i) * k + p] * rv[(b1 * k + p) * n + j];
                        dot += x;
                        mag += x.abs();
                    }
                    let got = ov[((b0 * 4 + b1) * m + i) * n + j];
                    assert!(
                        (got - dot).abs() <= (k as f64 + 2.0) * eps * mag,
                        "[{b0},{b1},{i},{j}]: {got} vs {dot}"
                    );
                }
            }
        }
    }
}

#[test]
fn tensor_matmul_on_views_and_broadcast_batches() {
    tensor_case(false);
    tensor_case(true);
}

/// Products large enough (past 2^27 multiply-adds) to take the packed kernel in `Tensor::matmul`,
/// with its rows split over the rayon pool: B row-major, and B transposed (a `[n, k]` tensor's
/// `t()`, as a Linear layer multiplies by its weight), which threaded products send to the packed
/// kernel's transposing pack.
#[test]
fn large_tensor_product_matches_a_blocked_reference() {
    large_product(false);
    large_product(true);
}

fn large_product(b_transposed: bool) {
    let (m, k, n) = (520, 530, 510);
    let a = values(m * k, 1);
    let b = values(k * n, 2);
    let at = Tensor::from_vec(a.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [m, k]).unwrap();
    let bt = if b_transposed {
        // The same k x n values, stored as their n x k transpose.
        let bt: Vec<f32> = (0..n * k).map(|q| b[(q % k) * n + q / k] as f32).collect();
        Tensor::from_vec(bt, [n, k]).unwrap().t().unwrap()
    } else {
        Tensor::from_vec(b.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [k, n]).unwrap()
    };
    let out = at.matmul(&bt).unwrap().to_vec::<f32>().unwrap();
    for i in (0..m).step_by(7) {
        for j in 0..n {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let x = (a[i * k + p] as f32 as f64) * (b[p * n + j] as f32 as f64);
                dot += x;
                mag += x.abs();
            }
            let got = out[i * n + j] as f64;
            assert!(
                (got - dot).abs() <= (k as f64 + 2.0) * f32::EPSILON as f64 * mag,
                "[{i},{j}] (B transposed: {b_transposed})"
            );
        }
    }
}

/// The kernels' safe entry points refuse extents they would read past. The AVX-512 kernel's
/// packed-A variant reads the padding rows of the last panel (13 rows need two 12-row panels:
/// 2 * 4 * 12 = 96 elements; 91 hold the block's own rows), so it refuses a shorter buffer; the
/// AVX2 kernel never reads past the block's last row, so the same cut is enough for it.
#[test]
fn short_packed_panels_are_refused() {
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let (mr, nr) = <f32 as GemmScalar>::tile(isa);
        let kc = 4;
        let mc = mr + 1;
        let b = vec![1.0f32; kc * nr];
        let mut c = vec![MaybeUninit::<f32>::uninit(); mc * nr];
        let whole = vec![1.0f32; 2 * kc * mr];
        // Whole panels: fine, and with beta 0 an uninitialised C is written in full.
        <f32 as GemmScalar>::block(isa, kc, mc, &whole, (kc * mr, 1, mr), &b, &mut c, nr, nr, 1.0, 0.0);
        // SAFETY: the block wrote every element of its mc x nr tile column (ldc = nr).
        assert!(c.iter().all(|v| unsafe { v.assume_init() } == kc as f32), "{isa:?}");
        let short = &whole[..2 * kc * mr - (mr - 1) / 2];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut c = vec![MaybeUninit::new(0.0f32); mc * nr];
            <f32 as GemmScalar>::block(isa, kc, mc, short, (kc * mr, 1, mr), &b, &mut c, nr, nr, 1.0, 0.0);
        }));
        match isa {
            Isa::Avx512 | Isa::Avx512Wide => assert!(r.is_err(), "{isa:?}: a short packed A was read"),
            Isa::Avx2 => assert!(r.is_ok(), "{isa:?}: the block's own rows were enough"),
        }
        // A block of depth 0 (which `gemm` never asks for) is refused rather than forming tile
        // addresses past an empty A.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut c = vec![MaybeUninit::new(0.0f32); mc * nr];
            <f32 as GemmScalar>::block(isa, 0, mc, &[], (mr, 1, mr), &b, &mut c, nr, nr, 1.0, 0.0);
        }));
        assert!(r.is_err(), "{isa:?}: a block of depth 0 ran");
    }
}

/// Products with a few output columns against a transposed weight (a classifier's last layer,
/// which `Tensor::matmul` computes as dot products of rows): odd shapes, depths with and without
/// a vector tail, a narrowed A (rows further apart than their length), a batch against one
/// weight, and a product large enough to split its rows over the pool.
#[test]
fn narrow_products_against_a_transposed_weight() {
    // All above the plain loop's 4,096 multiply-adds; (31, 64, 17) is one column past the path.
    let cases: [(usize, usize, usize, usize); 9] = [
        (1, 520, 10, 0),
        (130, 33, 1, 0),
        (128, 512, 10, 0),
        (13, 100, 16, 3),
        (97, 47, 9, 1),
        (64, 256, 3, 0),
        (2048, 512, 10, 0),
        (2045, 512, 7, 0),
        (31, 64, 17, 0),
    ];
    for (m, k, n, pad) in cases {
        for batch in [1usize, 3] {
            let a = values(batch * m * (k + pad), (m * 3 + k) as u64);
            let w = values(n * k, (n * 5 + k) as u64);
            let af = Tensor::from_vec(a.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [batch, m, k + pad]).unwrap();
            let lhs = af.narrow(2, pad, k).unwrap();
            let rhs = Tensor::from_vec(w.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [n, k])
                .unwrap()
                .t()
                .unwrap();
            let out = lhs.matmul(&rhs).unwrap();
            assert_eq!(out.shape().dims(), &[batch, m, n]);
            let ov = out.to_vec::<f32>().unwrap();
            for b0 in 0..batch {
                for i in 0..m {
                    for j in 0..n {
                        let (mut dot, mut mag) = (0.0f64, 0.0f64);
                        for p in 0..k {
                            let x = (a[(b0 * m + i) * (k + pad) + pad + p] as f32 as f64) * (w[j * k + p] as f32 as f64);
                            dot += x;
                            mag += x.abs();
                        }
                        let got = ov[(b0 * m + i) * n + j] as f64;
                        assert!(
                            (got - dot).abs() <= (k as f64 + 2.0) * f32::EPSILON as f64 * mag + 1e-30,
                            "{m}x{k}x{n} pad {pad} batch {batch} [{b0},{i},{j}]: {got} vs {dot}"
                        );
                    }
                }
            }
        }
    }
}

/// Narrow products whose operands repeat one row (stride 0, from `expand`) are not dot products
/// of distinct rows: they take the general paths, without a panic, and give the same values.
#[test]
fn narrow_products_with_broadcast_operands() {
    // Past the plain loop's 4,096 multiply-adds, so the dot-product path is asked.
    let (m, k, n) = (64, 128, 6);
    let row = values(k, 21);
    let w = values(n * k, 22);
    let rowt = Tensor::from_vec(row.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [1, k]).unwrap();
    let wt = Tensor::from_vec(w.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [n, k]).unwrap();
    // A = one row repeated m times; B = one weight row repeated n times, transposed.
    let a = rowt.expand([m, k]).unwrap();
    let b_rep = wt.narrow(0, 0, 1).unwrap().expand([n, k]).unwrap().t().unwrap();
    for (lhs, rhs, same_cols) in [(&a, wt.t().unwrap(), false), (&a.contiguous().unwrap(), b_rep, true)] {
        let out = lhs.matmul(&rhs).unwrap().to_vec::<f32>().unwrap();
        for i in 0..m {
            for j in 0..n {
                let wj = if same_cols { 0 } else { j };
                let dot: f64 = (0..k).map(|p| row[p] as f32 as f64 * (w[wj * k + p] as f32 as f64)).sum();
                let mag: f64 = (0..k).map(|p| (row[p] as f32 as f64 * (w[wj * k + p] as f32 as f64)).abs()).sum();
                let got = out[i * n + j] as f64;
                assert!(
                    (got - dot).abs() <= (k as f64 + 2.0) * f32::EPSILON as f64 * mag,
                    "[{i},{j}] {got} vs {dot}"
                );
            }
        }
    }
}
