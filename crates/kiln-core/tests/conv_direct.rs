//! The direct same convolutions (f32 on AVX-512: unit strides and dilations, an output as large
//! as the input) against the f64 ops, which take the im2col route that `conv_ops.rs` checks
//! against the composite: forward with and without bias, both gradients, on planes whose
//! positions are and are not whole vectors, planes smaller than the kernel, partial groups of
//! output channels, non-square kernels, 1x1 kernels and non-contiguous inputs. On CPUs without
//! AVX-512 the same assertions check the im2col route in f32.

use kiln_core::backend::Window2d;
use kiln_core::{DType, Rng, Tensor};

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), -1.0, 1.0, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// f32 results against the f64 op on the same (f32-representable) values: the sums differ
/// only by f32 rounding, a few ulps of the sum of the terms' magnitudes.
fn assert_close(got: &Tensor, want: &Tensor, terms: usize, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    assert_eq!(got.dtype(), DType::F32, "{what}: dtype");
    let tol = 4.0 * f32::EPSILON as f64 * terms as f64;
    for (i, (a, b)) in v64(got).iter().zip(v64(want)).enumerate() {
        assert!((a - b).abs() <= tol, "{what}, element {i}: {a} vs {b} (tolerance {tol})");
    }
}

/// `(n, c, h, w, o, (kh, kw))`, padding `(kh / 2, kw / 2)`.
type Case = (usize, usize, usize, usize, usize, (usize, usize));

const CASES: [Case; 17] = [
    // W6's two layers, batch cut down.
    (3, 1, 28, 28, 16, (3, 3)),
    (3, 16, 14, 14, 32, (3, 3)),
    // 35 positions: two full vectors and a tail of 3; a partial channel group (6 of 8).
    (2, 3, 5, 7, 6, (3, 3)),
    // Exactly one vector of positions, and 12 channels (one full group, one half).
    (2, 4, 4, 4, 12, (3, 3)),
    // A wide 5x5 kernel over a 17-wide plane (padding 2), and a plane smaller than the kernel.
    (1, 4, 3, 17, 8, (5, 5)),
    (2, 8, 2, 2, 8, (7, 7)),
    // Non-square kernels: only rows, only columns.
    (2, 3, 6, 6, 8, (3, 1)),
    (2, 3, 6, 9, 8, (1, 5)),
    // 1x1: no padding, every tap in place.
    (2, 5, 7, 5, 24, (1, 1)),
    // One row, one column.
    (2, 2, 1, 19, 16, (3, 3)),
    // Whole groups of 32 channels and kernels 3 wide: the weight's gradient with vectors along
    // the channels, on tiles of 4 (ci, dy) rows and the shorter last tiles (9 rows: 4, 4, 1;
    // 15: 4, 4, 4, 3; 10: 4, 4, 2), odd planes, one row, kernels 5 and 1 high.
    (2, 3, 5, 7, 32, (3, 3)),
    (1, 5, 1, 19, 64, (3, 3)),
    (2, 2, 9, 4, 32, (5, 3)),
    (3, 7, 6, 6, 32, (1, 3)),
    (2, 16, 3, 2, 96, (3, 3)),
    // One column (the padded rows are 3 wide), and a kernel 7 high over 9 rows.
    (2, 3, 4, 1, 64, (3, 3)),
    (1, 2, 9, 1, 32, (7, 3)),
];

#[test]
fn same_convolutions_match_f64() {
    for (t, &(n, c, h, w, o, (kh, kw))) in CASES.iter().enumerate() {
        let seed = 10 * t as u64;
        let f32_values = |x: Tensor| x.to_dtype(DType::F32).unwrap().to_dtype(DType::F64).unwrap();
        let x = f32_values(rand(&[n, c, h, w], seed));
        let wt = f32_values(rand(&[o, c, kh, kw], seed + 1));
        let g = f32_values(rand(&[n, o, h, w], seed + 2));
        let b = f32_values(rand(&[o], seed + 3));
        let (s, p, d) = ((1, 1), (kh / 2, kw / 2), (1, 1));
        let f = |v: &Tensor| v.to_dtype(DType::F32).unwrap();
        let what = format!("case {t}: [{n}, {c}, {h}, {w}] by [{o}, {c}, {kh}, {kw}]");
        let k = c * kh * kw;
        assert_close(
            &f(&x).conv2d(&f(&wt), None, s, p, d).unwrap(),
            &x.conv2d(&wt, None, s, p, d).unwrap(),
            k,
            &format!("conv2d, {what}"),
        );
        assert_close(
            &f(&x).conv2d(&f(&wt), Some(&f(&b)), s, p, d).unwrap(),
            &x.conv2d(&wt, Some(&b), s, p, d).unwrap(),
            k + 1,
            &format!("conv2d with bias, {what}"),
        );
        assert_close(
            &Tensor::conv2d_weight(&f(&x), (kh, kw), &f(&g), s, p, d).unwrap(),
            &Tensor::conv2d_weight(&x, (kh, kw), &g, s, p, d).unwrap(),
            n * h * w,
            &format!("conv2d_weight, {what}"),
        );
        assert_close(
            &Tensor::conv2d_input((h, w), &f(&wt), &f(&g), s, p, d).unwrap(),
            &Tensor::conv2d_input((h, w), &wt, &g, s, p, d).unwrap(),
            o * kh * kw,
            &format!("conv2d_input, {what}"),
        );
    }
}

/// A channels-last input (a permuted view) and a transposed weight are read through their
/// strides.
#[test]
fn non_contiguous_operands() {
    let (n, c, h, w, o) = (2, 8, 6, 5, 16);
    let x = rand(&[n, h, w, c], 40).permute(&[0, 3, 1, 2]).unwrap();
    let wt = rand(&[c, o, 3, 3], 41).permute(&[1, 0, 2, 3]).unwrap();
    let (s, p, d) = ((1, 1), (1, 1), (1, 1));
    let want = x.contiguous().unwrap().conv2d(&wt.contiguous().unwrap(), None, s, p, d).unwrap();
    let (xf, wf) = (x.to_dtype(DType::F32).unwrap(), wt.to_dtype(DType::F32).unwrap());
    assert_close(&xf.conv2d(&wf, None, s, p, d).unwrap(), &want, c * 9, "permuted operands");
}

/// Samples are split over threads, never a sum, and the weight gradient sums its blocks of
/// samples in fixed runs: one and two threads give the same bits, over several blocks.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (n, c, h, w, o) = (6, 16, 48, 48, 8);
    let x = rand(&[n, c, h, w], 50).to_dtype(DType::F32).unwrap();
    let wt = rand(&[o, c, 3, 3], 51).to_dtype(DType::F32).unwrap();
    let g = rand(&[n, o, h, w], 52).to_dtype(DType::F32).unwrap();
    let one = (1, 1);
    let run = |threads: usize| -> Vec<Vec<f32>> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            vec![
                x.conv2d(&wt, None, one, one, one).unwrap().to_vec::<f32>().unwrap(),
                Tensor::conv2d_weight(&x, (3, 3), &g, one, one, one)
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap(),
                Tensor::conv2d_input((h, w), &wt, &g, one, one, one)
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap(),
            ]
        })
    };
    let (a, b) = (run(1), run(2));
    for (i, name) in ["conv2d", "conv2d_weight", "conv2d_input"].iter().enumerate() {
        assert!(a[i] == b[i], "{name}: one and two threads differ");
    }
}

/// The same for the weight's gradient with vectors along 32 output channels, whose tiles of one
/// block also run in parallel: blocks of one or two samples here (each sample's padded input and
/// transposed gradient take 455 KB against half of L2), summed in fixed runs.
#[test]
fn channel_vectorised_weight_gradients_do_not_depend_on_the_thread_count() {
    let (n, c, h, w, o) = (6, 16, 48, 48, 32);
    let x = rand(&[n, c, h, w], 60).to_dtype(DType::F32).unwrap();
    let g = rand(&[n, o, h, w], 61).to_dtype(DType::F32).unwrap();
    let one = (1, 1);
    let run = |threads: usize| -> Vec<f32> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            Tensor::conv2d_weight(&x, (3, 3), &g, one, one, one)
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        })
    };
    let (a, b, c3) = (run(1), run(2), run(3));
    assert!(a == b && a == c3, "one, two and three threads differ");
    let want = Tensor::conv2d_weight(
        &x.to_dtype(DType::F64).unwrap(),
        (3, 3),
        &g.to_dtype(DType::F64).unwrap(),
        one,
        one,
        one,
    )
    .unwrap();
    let got = Tensor::from_vec(a, vec![o, c, 3, 3]).unwrap();
    assert_close(&got, &want, n * h * w, "conv2d_weight by channels");
}

/// Which convolutions run directly: same windows in the float dtypes, on AVX-512, with channel
/// groups no more than a third idle.
#[test]
fn the_direct_route_is_taken_where_it_applies() {
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    let win = |k: (usize, usize), s: (usize, usize), p: (usize, usize), d: (usize, usize)| Window2d {
        kernel: k,
        stride: s,
        padding: p,
        dilation: d,
    };
    let same = win((3, 3), (1, 1), (1, 1), (1, 1));
    let runs = kiln_core::cpu::conv2d_runs_direct;
    assert_eq!(runs((64, 1, 28, 28), 16, &same, DType::F32), avx512);
    assert_eq!(runs((64, 16, 14, 14), 32, &same, DType::BF16), avx512);
    assert_eq!(runs((2, 3, 5, 7), 6, &same, DType::F32), avx512);
    assert!(!runs((2, 3, 5, 7), 6, &same, DType::F64));
    // One output channel: seven of eight tile rows idle.
    assert!(!runs((64, 16, 28, 28), 1, &same, DType::F32));
    assert!(!runs((2, 3, 5, 7), 9, &same, DType::F32));
    // Strided, dilated, or an output smaller than the input.
    assert!(!runs((2, 3, 8, 8), 8, &win((3, 3), (2, 2), (1, 1), (1, 1)), DType::F32));
    assert!(!runs((2, 3, 8, 8), 8, &win((3, 3), (1, 1), (2, 2), (2, 2)), DType::F32));
    assert!(!runs((2, 3, 8, 8), 8, &win((3, 3), (1, 1), (0, 0), (1, 1)), DType::F32));
    assert!(!runs((0, 3, 8, 8), 8, &same, DType::F32));
}
