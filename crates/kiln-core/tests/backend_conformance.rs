//! The backend conformance suite: the kernel contract of
//! [`BackendStorage`](kiln_core::backend::BackendStorage), checked through the tensor API against
//! naive references computed on the host in f64, on awkward shapes (size 1, primes, transposed
//! and narrowed views, broadcasting) and every dtype a kernel takes.
//!
//! Data is made on the CPU, moved to the device under test, and read back, so a new backend gets
//! every test by adding one line at the bottom: `backend_tests!(cuda, Device::Cuda(0));`.
//! (burn's `burn-backend-tests` and candle's `test_device!` are the models.)

use kiln_core::backend::{BinaryOp, Device, UnaryOp};
use kiln_core::fused::{Kernel, Ops, Program};
use kiln_core::{DType, Rng, Tensor};

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// Relative tolerance of one op against the f64 reference on inputs already rounded to `dt`:
/// f16/bf16 compute in f32 and round once (half an ulp of the format), f32 within a few ulps.
fn tol(dt: DType) -> f64 {
    match dt {
        DType::F64 => 1e-12,
        DType::F32 => 2e-6,
        DType::F16 => 1e-3,
        DType::BF16 => 8e-3,
        _ => 0.0,
    }
}

fn host(t: &Tensor) -> Vec<f64> {
    t.to_device(Device::Cpu).unwrap().to_vec_f64().unwrap()
}

fn close(got: &[f64], want: &[f64], rel: f64, ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= rel * w.abs().max(1.0);
        assert!(ok, "{ctx}: element {i}: got {g}, want {w}");
    }
}

/// Row-major multi-index of flat position `i`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// The flat position in a row-major `shape` of output index `idx` under numpy broadcasting.
fn bcast_at(idx: &[usize], shape: &[usize]) -> usize {
    let off = idx.len() - shape.len();
    shape
        .iter()
        .enumerate()
        .fold(0, |acc, (d, &n)| acc * n + if n == 1 { 0 } else { idx[off + d] })
}

fn bcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let x = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let y = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            x.max(y)
        })
        .collect()
}

/// The suite for one device: `backend_tests!(module_name, device)`.
macro_rules! backend_tests {
    ($name:ident, $dev:expr) => {
        mod $name {
            use super::*;

            fn dev() -> Device {
                $dev
            }

            /// A random tensor on the device under test and its host values (rounded to `dt`).
            fn rand(shape: &[usize], lo: f64, hi: f64, dt: DType, rng: &mut Rng) -> (Tensor, Vec<f64>) {
                let t = Tensor::rand(shape.to_vec(), lo, hi, dt, rng).unwrap();
                let v = t.to_vec_f64().unwrap();
                (t.to_device(dev()).unwrap(), v)
            }

            /// The same values as a transposed view (non-contiguous) of a `[cols, rows]` buffer.
            fn transposed(rows: usize, cols: usize, dt: DType, rng: &mut Rng) -> (Tensor, Vec<f64>) {
                let (t, _) = rand(&[cols, rows], -2.0, 2.0, dt, rng);
                let v = t.t().unwrap();
                // (With a dimension of 1 the transposed view is laid out contiguously anyway.)
                assert!(rows == 1 || cols == 1 || !v.is_contiguous());
                let h = host(&v.contiguous().unwrap());
                (v, h)
            }

            #[test]
            fn unary_ops_match_the_reference() {
                let ops: [(UnaryOp, fn(f64) -> f64, f64, f64); 8] = [
                    (UnaryOp::Neg, |x| -x, -3.0, 3.0),
                    (UnaryOp::Abs, f64::abs, -3.0, 3.0),
                    (UnaryOp::Exp, f64::exp, -3.0, 3.0),
                    (UnaryOp::Log, f64::ln, 0.1, 5.0),
                    (UnaryOp::Sqrt, f64::sqrt, 0.0, 5.0),
                    (UnaryOp::Tanh, f64::tanh, -3.0, 3.0),
                    (UnaryOp::Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -6.0, 6.0),
                    (UnaryOp::Affine { mul: 0.5, add: -1.25 }, |x| x * 0.5 - 1.25, -3.0, 3.0),
                ];
                let mut rng = Rng::new(1);
                for dt in FLOATS {
                    for shape in [&[1usize][..], &[7], &[13, 1], &[3, 5, 2]] {
                        for &(op, f, lo, hi) in &ops {
                            let (x, xv) = rand(shape, lo, hi, dt, &mut rng);
                            let y = Tensor::fused_elementwise(&[&x], &{
                                let mut p = Program::new();
                                let a = p.input(0);
                                let r = p.unary(op, a);
                                p.output("y", r);
                                p
                            })
                            .unwrap();
                            let want: Vec<f64> = xv.iter().map(|&v| f(v)).collect();
                            close(&host(&y[0]), &want, tol(dt), &format!("fused {op:?} {dt:?} {shape:?}"));
                        }
                        // The tensor methods of the same ops, on a transposed view.
                        let (x, xv) = transposed(3, 5, dt, &mut rng);
                        let want: Vec<f64> = xv.iter().map(|v| v.exp()).collect();
                        close(&host(&x.exp().unwrap()), &want, tol(dt), &format!("exp {dt:?} view"));
                        let want: Vec<f64> = xv.iter().map(|v| v.abs().sqrt()).collect();
                        close(
                            &host(&x.abs().unwrap().sqrt().unwrap()),
                            &want,
                            2.0 * tol(dt),
                            &format!("sqrt {dt:?} view"),
                        );
                    }
                }
            }

            #[test]
            fn binary_ops_broadcast_like_numpy() {
                let ops: [(&str, fn(&Tensor, &Tensor) -> kiln_core::Result<Tensor>, fn(f64, f64) -> f64); 6] = [
                    ("add", |a, b| a.add(b), |x, y| x + y),
                    ("sub", |a, b| a.sub(b), |x, y| x - y),
                    ("mul", |a, b| a.mul(b), |x, y| x * y),
                    ("div", |a, b| a.div(b), |x, y| x / y),
                    ("maximum", |a, b| a.maximum(b), f64::max),
                    ("minimum", |a, b| a.minimum(b), f64::min),
                ];
                let pairs: [(&[usize], &[usize]); 5] = [
                    (&[1], &[1]),
                    (&[7], &[7]),
                    (&[3, 1, 5], &[4, 1]),
                    (&[1], &[2, 3]),
                    (&[13, 11], &[11]),
                ];
                let mut rng = Rng::new(2);
                for dt in FLOATS {
                    for (sa, sb) in pairs {
                        let (a, av) = rand(sa, -2.0, 2.0, dt, &mut rng);
                        let (b, bv) = rand(sb, 0.5, 2.5, dt, &mut rng);
                        let out = bcast_shape(sa, sb);
                        for (name, op, f) in &ops {
                            let y = op(&a, &b).unwrap();
                            assert_eq!(y.dims(), &out[..], "{name} {dt:?}");
                            let n: usize = out.iter().product();
                            let want: Vec<f64> = (0..n)
                                .map(|i| {
                                    let idx = unravel(i, &out);
                                    f(av[bcast_at(&idx, sa)], bv[bcast_at(&idx, sb)])
                                })
                                .collect();
                            close(&host(&y), &want, tol(dt), &format!("{name} {dt:?} {sa:?} {sb:?}"));
                        }
                    }
                    // A transposed operand against a contiguous one.
                    let (a, av) = transposed(5, 3, dt, &mut rng);
                    let (b, bv) = rand(&[5, 3], -2.0, 2.0, dt, &mut rng);
                    let want: Vec<f64> = av.iter().zip(&bv).map(|(x, y)| x * y).collect();
                    close(&host(&a.mul(&b).unwrap()), &want, tol(dt), &format!("mul of a view {dt:?}"));
                }
                // Integers: exact.
                let a = Tensor::from_slice(&[3i64, -4, 5, 7, 0, -1], [2, 3])
                    .unwrap()
                    .to_device(dev())
                    .unwrap();
                let b = Tensor::from_slice(&[2i64, 5, -3], [3]).unwrap().to_device(dev()).unwrap();
                assert_eq!(host(&a.add(&b).unwrap()), vec![5.0, 1.0, 2.0, 9.0, 5.0, -4.0]);
                assert_eq!(host(&a.mul(&b).unwrap()), vec![6.0, -20.0, -15.0, 14.0, 0.0, 3.0]);
                assert_eq!(host(&a.maximum(&b).unwrap()), vec![3.0, 5.0, 5.0, 7.0, 5.0, -1.0]);
            }

            #[test]
            fn comparisons_and_where() {
                let mut rng = Rng::new(3);
                for dt in FLOATS {
                    let (a, av) = rand(&[4, 7], -1.0, 1.0, dt, &mut rng);
                    let (b, bv) = rand(&[7], -1.0, 1.0, dt, &mut rng);
                    let m = a.lt(&b).unwrap();
                    assert_eq!(m.dtype(), DType::U8);
                    let want: Vec<f64> = (0..28).map(|i| f64::from(u8::from(av[i] < bv[i % 7]))).collect();
                    assert_eq!(host(&m), want, "lt {dt:?}");
                    let y = m.where_cond(&a, &b).unwrap();
                    let want: Vec<f64> = (0..28).map(|i| if av[i] < bv[i % 7] { av[i] } else { bv[i % 7] }).collect();
                    assert_eq!(host(&y), want, "where {dt:?}");
                }
            }

            #[test]
            fn reductions_over_each_dim() {
                let mut rng = Rng::new(4);
                let shape = [3usize, 1, 5, 2];
                for dt in FLOATS {
                    let (x, xv) = rand(&shape, -2.0, 2.0, dt, &mut rng);
                    for d in 0..shape.len() {
                        let mut out = shape;
                        out[d] = 1;
                        let n: usize = out.iter().product();
                        let fold = |init: f64, f: fn(f64, f64) -> f64| -> Vec<f64> {
                            (0..n)
                                .map(|i| {
                                    let mut idx = unravel(i, &out);
                                    (0..shape[d]).fold(init, |acc, k| {
                                        idx[d] = k;
                                        f(acc, xv[bcast_at(&idx, &shape)])
                                    })
                                })
                                .collect()
                        };
                        let ctx = format!("{dt:?} dim {d}");
                        // Sums accumulate in f32 or wider; the bound covers the terms' rounding.
                        let sum_tol = tol(dt) * shape[d] as f64 * 2.0;
                        close(
                            &host(&x.sum(&[d as isize], true).unwrap()),
                            &fold(0.0, |a, b| a + b),
                            sum_tol,
                            &format!("sum {ctx}"),
                        );
                        close(
                            &host(&x.max(&[d as isize], true).unwrap()),
                            &fold(f64::NEG_INFINITY, f64::max),
                            0.0,
                            &format!("max {ctx}"),
                        );
                        close(
                            &host(&x.min(&[d as isize], true).unwrap()),
                            &fold(f64::INFINITY, f64::min),
                            0.0,
                            &format!("min {ctx}"),
                        );
                        // argmax: the first maximum.
                        let am = host(&x.argmax(d as isize, true).unwrap());
                        let want: Vec<f64> = (0..n)
                            .map(|i| {
                                let mut idx = unravel(i, &out);
                                let mut best = 0;
                                for k in 0..shape[d] {
                                    idx[d] = k;
                                    let v = xv[bcast_at(&idx, &shape)];
                                    idx[d] = best;
                                    if v > xv[bcast_at(&idx, &shape)] {
                                        best = k;
                                    }
                                }
                                best as f64
                            })
                            .collect();
                        assert_eq!(am, want, "argmax {ctx}");
                    }
                }
            }

            #[test]
            fn matmul_on_odd_transposed_and_batched_shapes() {
                let mut rng = Rng::new(5);
                for dt in FLOATS {
                    for (m, k, n) in [(1, 1, 1), (1, 7, 1), (5, 3, 7), (13, 17, 11)] {
                        let (a, av) = rand(&[m, k], -1.0, 1.0, dt, &mut rng);
                        let (b, bv) = transposed(k, n, dt, &mut rng);
                        let want: Vec<f64> = (0..m * n)
                            .map(|i| (0..k).map(|p| av[i / n * k + p] * bv[p * n + i % n]).sum())
                            .collect();
                        let rel = tol(dt) * (k as f64).sqrt() * 4.0 + if dt == DType::F32 { 1e-6 } else { 0.0 };
                        close(
                            &host(&a.matmul(&b).unwrap()),
                            &want,
                            rel,
                            &format!("matmul {dt:?} {m}x{k}x{n}"),
                        );
                    }
                    // Batch dimensions broadcast: [2, 1, 3, 4] x [5, 4, 2] -> [2, 5, 3, 2].
                    let (a, av) = rand(&[2, 1, 3, 4], -1.0, 1.0, dt, &mut rng);
                    let (b, bv) = rand(&[5, 4, 2], -1.0, 1.0, dt, &mut rng);
                    let y = a.matmul(&b).unwrap();
                    assert_eq!(y.dims(), &[2, 5, 3, 2]);
                    let want: Vec<f64> = (0..60)
                        .map(|i| {
                            let idx = unravel(i, &[2, 5, 3, 2]);
                            (0..4)
                                .map(|p| av[idx[0] * 12 + idx[2] * 4 + p] * bv[idx[1] * 8 + p * 2 + idx[3]])
                                .sum()
                        })
                        .collect();
                    close(&host(&y), &want, tol(dt) * 8.0, &format!("batched matmul {dt:?}"));
                }
            }

            #[test]
            fn casts_between_every_dtype() {
                let vals: [f64; 7] = [0.0, 1.0, -2.0, 3.0, 100.0, -7.0, 0.5];
                let x = Tensor::from_slice(&vals, [7]).unwrap().to_device(dev()).unwrap();
                for from in [DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64] {
                    let xf = x.to_dtype(from).unwrap();
                    for to in [DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64] {
                        let y = xf.to_dtype(to).unwrap();
                        assert_eq!(y.dtype(), to);
                        // Every value is exact in every dtype except 0.5 in i64 (truncated).
                        let want: Vec<f64> = vals
                            .iter()
                            .map(|&v| {
                                if from == DType::I64 || to == DType::I64 {
                                    v.trunc()
                                } else {
                                    v
                                }
                            })
                            .collect();
                        assert_eq!(host(&y), want, "{from:?} -> {to:?}");
                    }
                }
            }

            #[test]
            fn index_select_gather_and_scatter_add() {
                let mut rng = Rng::new(6);
                for dt in FLOATS {
                    let (x, xv) = rand(&[5, 3], -2.0, 2.0, dt, &mut rng);
                    let idx = Tensor::from_slice(&[4i64, 0, 4, 2], [4]).unwrap().to_device(dev()).unwrap();
                    let rows = host(&x.index_select(0, &idx).unwrap());
                    let want: Vec<f64> = [4usize, 0, 4, 2]
                        .iter()
                        .flat_map(|&r| xv[r * 3..r * 3 + 3].to_vec())
                        .collect();
                    assert_eq!(rows, want, "index_select {dt:?}");
                    let gi = Tensor::from_slice(&[2i64, 0, 1, 1, 1, 0], [2, 3])
                        .unwrap()
                        .to_device(dev())
                        .unwrap();
                    let g = host(&x.gather(0, &gi).unwrap());
                    let gw = [2usize, 0, 1, 1, 1, 0];
                    let want: Vec<f64> = (0..6).map(|i| xv[gw[i] * 3 + i % 3]).collect();
                    assert_eq!(g, want, "gather {dt:?}");
                    let z = Tensor::zeros([3, 3], dt).unwrap().to_device(dev()).unwrap();
                    let (src, sv) = rand(&[2, 3], -1.0, 1.0, dt, &mut rng);
                    let s = host(&z.scatter_add(0, &gi, &src).unwrap());
                    let mut want = vec![0.0; 9];
                    for i in 0..6 {
                        want[gw[i] * 3 + i % 3] += sv[i];
                    }
                    close(&s, &want, tol(dt), &format!("scatter_add {dt:?}"));
                    // Along the last dim onto an expanded scalar (how a gather's gradient starts),
                    // with a repeated target.
                    let base = Tensor::full([1, 1], 0.5, dt)
                        .unwrap()
                        .to_device(dev())
                        .unwrap()
                        .expand([3, 4])
                        .unwrap();
                    let li = Tensor::from_slice(&[3i64, 0, 1, 1, 2, 3], [3, 2])
                        .unwrap()
                        .to_device(dev())
                        .unwrap();
                    let (src, sv) = rand(&[3, 2], -1.0, 1.0, dt, &mut rng);
                    let s = host(&base.scatter_add(1, &li, &src).unwrap());
                    let mut want = vec![0.5; 12];
                    for (i, &t) in [3usize, 0, 1, 1, 2, 3].iter().enumerate() {
                        want[(i / 2) * 4 + t] += sv[i];
                    }
                    close(&s, &want, tol(dt), &format!("scatter_add onto an expanded scalar {dt:?}"));
                }
            }

            #[test]
            fn cat_pad_cumsum_and_copies_of_views() {
                let mut rng = Rng::new(7);
                for dt in FLOATS {
                    let (a, av) = rand(&[2, 3], -2.0, 2.0, dt, &mut rng);
                    let (b, bv) = transposed(2, 1, dt, &mut rng);
                    let c = Tensor::cat(&[&a, &b], 1).unwrap();
                    assert_eq!(c.dims(), &[2, 4]);
                    let want = vec![av[0], av[1], av[2], bv[0], av[3], av[4], av[5], bv[1]];
                    assert_eq!(host(&c), want, "cat {dt:?}");
                    let p = host(&a.pad(&[(1, 0), (0, 2)], 9.0).unwrap());
                    let mut want = vec![9.0; 15];
                    for r in 0..2 {
                        for k in 0..3 {
                            want[(r + 1) * 5 + k] = av[r * 3 + k];
                        }
                    }
                    assert_eq!(p, want, "pad {dt:?}");
                    let cs = host(&a.cumsum(1).unwrap());
                    let want: Vec<f64> = (0..6).map(|i| av[i / 3 * 3..=i].iter().sum()).collect();
                    close(&cs, &want, 3.0 * tol(dt), &format!("cumsum {dt:?}"));
                    // A narrowed, permuted view copied to contiguous memory.
                    let (x, xv) = rand(&[3, 4, 5], -2.0, 2.0, dt, &mut rng);
                    let v = x.narrow(1, 1, 2).unwrap().permute(&[2, 0, 1]).unwrap();
                    let want: Vec<f64> = (0..30)
                        .map(|i| {
                            let idx = unravel(i, &[5, 3, 2]);
                            xv[idx[1] * 20 + (idx[2] + 1) * 5 + idx[0]]
                        })
                        .collect();
                    assert_eq!(host(&v.contiguous().unwrap()), want, "view copy {dt:?}");
                }
            }

            /// `a·x + y` and `x/y` as a kernel with two outputs.
            struct Axpy;
            impl Kernel<2, 2> for Axpy {
                fn outputs(&self) -> [&'static str; 2] {
                    ["axpy", "ratio"]
                }
                fn eval<X: Ops>(&self, o: &mut X, [x, y]: [X::V; 2]) -> [X::V; 2] {
                    let a = o.scalar(-1.5);
                    let ax = o.binary(BinaryOp::Mul, x, a);
                    [o.binary(BinaryOp::Add, ax, y), o.binary(BinaryOp::Div, x, y)]
                }
            }

            #[test]
            fn fused_programs_and_kernels() {
                let mut rng = Rng::new(8);
                for dt in FLOATS {
                    for n in [1usize, 7, 8, 9, 1031] {
                        let (x, xv) = rand(&[n], -2.0, 2.0, dt, &mut rng);
                        let (y, yv) = rand(&[n], 0.5, 2.0, dt, &mut rng);
                        let [p, q] = Tensor::fused_kernel([&x, &y], &Axpy).unwrap();
                        let want_p: Vec<f64> = xv.iter().zip(&yv).map(|(a, b)| a * -1.5 + b).collect();
                        let want_q: Vec<f64> = xv.iter().zip(&yv).map(|(a, b)| a / b).collect();
                        close(&host(&p), &want_p, 2.0 * tol(dt), &format!("kernel axpy {dt:?} {n}"));
                        close(&host(&q), &want_q, tol(dt), &format!("kernel ratio {dt:?} {n}"));
                        // The recorded program gives the kernel's bits.
                        let r = Tensor::fused_elementwise(&[&x, &y], &Axpy.program()).unwrap();
                        assert_eq!(host(&r[0]), host(&p), "program axpy {dt:?} {n}");
                        assert_eq!(host(&r[1]), host(&q), "program ratio {dt:?} {n}");
                    }
                }
            }
        }
    };
}

backend_tests!(cpu, Device::Cpu);
