//! `Tensor::conv2d` and its two gradient ops (`conv2d_input`, `conv2d_weight`) against the
//! composite they replace (unfold, matmul, fold), gradchecked to second order in f64, on every
//! float dtype, over batches split into several cache-sized groups, independent of the thread
//! count, and with their errors.

use kiln_core::{gradcheck, gradgradcheck, DType, GradcheckOptions, Result, Rng, Tensor};

type Win = ((usize, usize), (usize, usize), (usize, usize), (usize, usize));

/// "Same" 3x3 windows (W6's), strided, dilated, uneven, padding wider than the kernel, and a
/// kernel wider than the input.
const WINDOWS: [Win; 6] = [
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2), (2, 1), (1, 2), (1, 1)),
    ((2, 3), (1, 2), (2, 1), (2, 1)),
    ((1, 4), (1, 1), (0, 1), (1, 1)),
    ((2, 2), (1, 1), (3, 3), (1, 1)),
    ((5, 5), (1, 1), (2, 2), (1, 1)),
];

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), -1.0, 1.0, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    for (i, (a, b)) in v64(got).iter().zip(v64(want)).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}, element {i}: {a} vs {b}");
    }
}

/// The composite definitions: `W · unfold(x)`, `Σ_n g_n · unfold(x)_nᵀ` and `fold(Wᵀ · g)`.
struct Reference {
    y: Tensor,
    gw: Tensor,
    gx: Tensor,
}

fn reference(x: &Tensor, w: &Tensor, g: &Tensor, (k, s, p, d): Win) -> Reference {
    let (n, c, h, wd) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    let o = w.dims()[0];
    let (oh, ow) = (g.dims()[2], g.dims()[3]);
    let kk = c * k.0 * k.1;
    let cols = x.unfold2d(k, s, p, d).unwrap(); // [N, K, L]
    let w2 = w.reshape([o, kk]).unwrap();
    let g3 = g.reshape([n, o, oh * ow]).unwrap();
    Reference {
        y: w2.matmul(&cols).unwrap().reshape([n, o, oh, ow]).unwrap(),
        gw: g3
            .matmul(&cols.transpose(1, 2).unwrap())
            .unwrap()
            .sum(&[0], false)
            .unwrap()
            .reshape([o, c, k.0, k.1])
            .unwrap(),
        gx: w2.t().unwrap().matmul(&g3).unwrap().fold2d((h, wd), k, s, p, d).unwrap(),
    }
}

/// Output size of window `w` over an `h x wd` plane.
fn out_hw(h: usize, wd: usize, (k, s, p, d): Win) -> (usize, usize) {
    (
        (h + 2 * p.0 - d.0 * (k.0 - 1) - 1) / s.0 + 1,
        (wd + 2 * p.1 - d.1 * (k.1 - 1) - 1) / s.1 + 1,
    )
}

#[test]
fn the_three_ops_match_unfold_matmul_and_fold() {
    for (t, &win) in WINDOWS.iter().enumerate() {
        let (k, s, p, d) = win;
        for n in [1, 3] {
            let (c, h, wd, o) = (2, 5, 3, 4);
            // A permuted (non-contiguous) input and gradient, as autograd hands them over.
            let x = rand(&[c, n, h, wd], 10 + t as u64).permute(&[1, 0, 2, 3]).unwrap();
            let w = rand(&[o, c, k.0, k.1], 20 + t as u64);
            let (oh, ow) = out_hw(h, wd, win);
            let g = rand(&[o, n, oh, ow], 30 + t as u64).permute(&[1, 0, 2, 3]).unwrap();
            let r = reference(&x, &w, &g, win);
            let what = format!("window {t}, batch {n}");
            assert_close(&x.conv2d(&w, None, s, p, d).unwrap(), &r.y, 1e-13, &format!("conv2d, {what}"));
            assert_close(
                &Tensor::conv2d_weight(&x, k, &g, s, p, d).unwrap(),
                &r.gw,
                1e-13,
                &format!("conv2d_weight, {what}"),
            );
            assert_close(
                &Tensor::conv2d_input((h, wd), &w, &g, s, p, d).unwrap(),
                &r.gx,
                1e-13,
                &format!("conv2d_input, {what}"),
            );
        }
    }
}

/// Per-sample patches larger than half of any current L2 (144 rows x 4096 positions of f64,
/// 4.7 MB), so each sample is its own group: five groups, summed for the weight's gradient in
/// runs of one and two groups.
#[test]
fn batches_of_many_groups_match_the_composite() {
    let win: Win = ((3, 3), (1, 1), (1, 1), (1, 1));
    let (n, c, h, wd, o) = (5, 16, 64, 64, 3);
    let x = rand(&[n, c, h, wd], 1);
    let w = rand(&[o, c, 3, 3], 2);
    let g = rand(&[n, o, h, wd], 3);
    let r = reference(&x, &w, &g, win);
    let (k, s, p, d) = win;
    assert_close(&x.conv2d(&w, None, s, p, d).unwrap(), &r.y, 1e-12, "conv2d");
    assert_close(&Tensor::conv2d_weight(&x, k, &g, s, p, d).unwrap(), &r.gw, 1e-12, "conv2d_weight");
    assert_close(
        &Tensor::conv2d_input((h, wd), &w, &g, s, p, d).unwrap(),
        &r.gx,
        1e-12,
        "conv2d_input",
    );
}

/// The weight's gradient sums the groups in a fixed order, so one and two threads give the same
/// bits (as the single product it replaces did).
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (n, c, h, wd, o) = (6, 16, 48, 48, 5);
    let x = rand(&[n, c, h, wd], 4).to_dtype(DType::F32).unwrap();
    let w = rand(&[o, c, 3, 3], 5).to_dtype(DType::F32).unwrap();
    let g = rand(&[n, o, h, wd], 6).to_dtype(DType::F32).unwrap();
    let run = |threads: usize| -> Vec<Vec<f32>> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            vec![
                x.conv2d(&w, None, (1, 1), (1, 1), (1, 1)).unwrap().to_vec::<f32>().unwrap(),
                Tensor::conv2d_weight(&x, (3, 3), &g, (1, 1), (1, 1), (1, 1))
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap(),
                Tensor::conv2d_input((h, wd), &w, &g, (1, 1), (1, 1), (1, 1))
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap(),
            ]
        })
    };
    let (one, two) = (run(1), run(2));
    for (i, name) in ["conv2d", "conv2d_weight", "conv2d_input"].iter().enumerate() {
        assert!(one[i] == two[i], "{name}: one and two threads differ");
    }
}

fn check(name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    let opts = GradcheckOptions::default();
    if let Err(e) = gradcheck(&f, inputs, &opts) {
        panic!("{name}: {e}");
    }
    if let Err(e) = gradgradcheck(&f, inputs, &opts) {
        panic!("{name} (second order): {e}");
    }
}

#[test]
fn the_three_ops_first_and_second_order() {
    for (t, &win) in WINDOWS[..3].iter().enumerate() {
        let (k, s, p, d) = win;
        let (n, c, h, wd, o) = (2, 2, 5, 4, 3);
        let (oh, ow) = out_hw(h, wd, win);
        let x = rand(&[n, c, h, wd], 40 + t as u64);
        let w = rand(&[o, c, k.0, k.1], 50 + t as u64);
        let g = rand(&[n, o, oh, ow], 60 + t as u64);
        // Squared, so that second order exercises every op's own gradient rule.
        check(
            &format!("conv2d, window {t}"),
            |v| v[0].conv2d(&v[1], None, s, p, d)?.square(),
            &[x.clone(), w.clone()],
        );
        check(
            &format!("conv2d_weight, window {t}"),
            |v| Tensor::conv2d_weight(&v[0], k, &v[1], s, p, d)?.square(),
            &[x.clone(), g.clone()],
        );
        check(
            &format!("conv2d_input, window {t}"),
            |v| Tensor::conv2d_input((h, wd), &v[0], &v[1], s, p, d)?.square(),
            &[w.clone(), g.clone()],
        );
    }
}

#[test]
fn every_float_dtype_matches_f64() {
    let win: Win = ((3, 3), (1, 1), (1, 1), (1, 1));
    let (k, s, p, d) = win;
    let x = rand(&[2, 3, 6, 5], 70);
    let w = rand(&[4, 3, 3, 3], 71);
    let g = rand(&[2, 4, 6, 5], 72);
    let want = [
        x.conv2d(&w, None, s, p, d).unwrap(),
        Tensor::conv2d_weight(&x, k, &g, s, p, d).unwrap(),
        Tensor::conv2d_input((6, 5), &w, &g, s, p, d).unwrap(),
    ];
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::F16, 1e-2), (DType::BF16, 4e-2)] {
        let (x, w, g) = (x.to_dtype(dtype).unwrap(), w.to_dtype(dtype).unwrap(), g.to_dtype(dtype).unwrap());
        let got = [
            x.conv2d(&w, None, s, p, d).unwrap(),
            Tensor::conv2d_weight(&x, k, &g, s, p, d).unwrap(),
            Tensor::conv2d_input((6, 5), &w, &g, s, p, d).unwrap(),
        ];
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.dtype(), dtype);
            // Inputs rounded to the dtype first: compare against f64 on the rounded values' scale.
            assert_close(a, b, tol * 10.0, &format!("{dtype:?}, op {i}"));
        }
    }
}

/// Planes smaller than the kernel (W6's windows over 1- and 2-row inputs): every op against the
/// composite, whose unfold the naive reference in `gradcheck_ops.rs` checks on the same planes.
#[test]
fn planes_smaller_than_the_kernel() {
    for (t, &win) in [WINDOWS[0], WINDOWS[5]].iter().enumerate() {
        let (k, s, p, d) = win;
        for (h, wd) in [(1, 8), (2, 8), (1, 1), (2, 1)] {
            let (n, c, o) = (2, 2, 3);
            let x = rand(&[n, c, h, wd], 110 + t as u64);
            let w = rand(&[o, c, k.0, k.1], 120 + t as u64);
            let (oh, ow) = out_hw(h, wd, win);
            let g = rand(&[n, o, oh, ow], 130 + t as u64);
            let r = reference(&x, &w, &g, win);
            let what = format!("window {t}, plane {h}x{wd}");
            assert_close(&x.conv2d(&w, None, s, p, d).unwrap(), &r.y, 1e-13, &format!("conv2d, {what}"));
            assert_close(
                &Tensor::conv2d_weight(&x, k, &g, s, p, d).unwrap(),
                &r.gw,
                1e-13,
                &format!("conv2d_weight, {what}"),
            );
            assert_close(
                &Tensor::conv2d_input((h, wd), &w, &g, s, p, d).unwrap(),
                &r.gx,
                1e-13,
                &format!("conv2d_input, {what}"),
            );
        }
    }
}

#[test]
fn empty_batches_and_channels() {
    let w = rand(&[4, 2, 3, 3], 80);
    let y = rand(&[0, 2, 5, 5], 81).conv2d(&w, None, (1, 1), (1, 1), (1, 1)).unwrap();
    assert_eq!(y.dims(), &[0, 4, 5, 5]);
    let g = rand(&[0, 4, 5, 5], 82);
    let gw = Tensor::conv2d_weight(&rand(&[0, 2, 5, 5], 83), (3, 3), &g, (1, 1), (1, 1), (1, 1)).unwrap();
    assert_eq!(v64(&gw), vec![0.0; 4 * 2 * 9]);
    let gx = Tensor::conv2d_input((5, 5), &w, &g, (1, 1), (1, 1), (1, 1)).unwrap();
    assert_eq!(gx.dims(), &[0, 2, 5, 5]);
    // No input channels: every output is an empty sum.
    let y = rand(&[2, 0, 4, 4], 84)
        .conv2d(&rand(&[3, 0, 3, 3], 85), None, (1, 1), (1, 1), (1, 1))
        .unwrap();
    assert_eq!(v64(&y), vec![0.0; 2 * 3 * 16]);
}

#[test]
fn bad_shapes_and_dtypes_are_errors_naming_them() {
    let x = rand(&[2, 3, 6, 5], 90);
    let w = rand(&[4, 3, 3, 3], 91);
    let err = |r: Result<Tensor>| r.unwrap_err().to_string();
    assert_eq!(
        err(x.conv2d(&rand(&[4, 2, 3, 3], 92), None, (1, 1), (1, 1), (1, 1))),
        "conv2d: weight [4, 2, 3, 3] does not match input [2, 3, 6, 5] (expected [O, 3, 3, 3])"
    );
    assert_eq!(
        err(x.conv2d(&rand(&[4, 27], 93), None, (1, 1), (1, 1), (1, 1))),
        "conv2d: the weight must be [O, C, kh, kw], got shape [4, 27]"
    );
    assert!(err(rand(&[3, 6, 5], 94).conv2d(&w, None, (1, 1), (1, 1), (1, 1))).contains("[N, C, H, W]"));
    assert!(err(x.conv2d(&w, None, (0, 1), (1, 1), (1, 1))).contains("must be positive"));
    assert!(err(x.conv2d(&rand(&[4, 3, 9, 3], 95), None, (1, 1), (0, 0), (1, 1))).contains("does not fit"));
    let mixed = x
        .conv2d(&w.to_dtype(DType::F32).unwrap(), None, (1, 1), (1, 1), (1, 1))
        .unwrap_err();
    assert!(matches!(mixed, kiln_core::Error::DTypeMismatch { op: "conv2d", .. }), "{mixed}");
    let xi = x.to_dtype(DType::I64).unwrap();
    assert!(err(xi.conv2d(&w.to_dtype(DType::I64).unwrap(), None, (1, 1), (1, 1), (1, 1))).contains("float"));
    let g = rand(&[2, 4, 6, 5], 96);
    assert_eq!(
        err(Tensor::conv2d_input((7, 5), &w, &g, (1, 1), (1, 1), (1, 1))),
        "conv2d_input: gradient [2, 4, 6, 5] does not fit weight [4, 3, 3, 3] over an input of size (7, 5) (stride (1, 1), padding (1, 1), dilation (1, 1))"
    );
    assert_eq!(
        err(Tensor::conv2d_weight(&x, (3, 3), &rand(&[3, 4, 6, 5], 97), (1, 1), (1, 1), (1, 1))),
        "conv2d_weight: gradient [3, 4, 6, 5] does not fit input [2, 3, 6, 5] (expected [2, O, 6, 5] for kernel (3, 3), stride (1, 1), padding (1, 1), dilation (1, 1))"
    );
    assert!(err(Tensor::conv2d_weight(&x, (3, 3), &rand(&[2, 4, 30], 98), (1, 1), (1, 1), (1, 1))).contains("[N, O, oh, ow]"));
}

/// The bias is added as the product is copied out: the same single add per element as a
/// broadcast add after the op, so the same bits, and its gradient is the output gradient summed
/// over the batch and positions.
#[test]
fn the_bias_is_the_broadcast_add_and_differentiates_to_the_summed_gradient() {
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[3, 2, 5, 4], 100).to_dtype(dtype).unwrap();
        let w = rand(&[4, 2, 3, 3], 101).to_dtype(dtype).unwrap();
        let b = rand(&[4], 102).to_dtype(dtype).unwrap();
        let got = x.conv2d(&w, Some(&b), (1, 1), (1, 1), (1, 1)).unwrap();
        let want = x
            .conv2d(&w, None, (1, 1), (1, 1), (1, 1))
            .unwrap()
            .add(&b.reshape([4, 1, 1]).unwrap())
            .unwrap();
        assert!(v64(&got) == v64(&want), "{dtype:?}: the fused bias differs from the broadcast add");
    }
    let (x, w, b) = (rand(&[2, 2, 5, 4], 103), rand(&[3, 2, 3, 2], 104), rand(&[3], 105));
    check(
        "conv2d with bias",
        |v| v[0].conv2d(&v[1], Some(&v[2]), (2, 1), (1, 0), (1, 2))?.square(),
        &[x.clone(), w.clone(), b],
    );
    let err = x
        .conv2d(&w, Some(&rand(&[2], 106)), (1, 1), (0, 0), (1, 1))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "conv2d: bias [2] must be [3], one per output channel");
}
