//! Every differentiable op against central finite differences in f64: first order over several
//! shapes (broadcast and non-contiguous operands included), second order for the elementwise ops,
//! matmul, reductions and softmax.

mod common;
use kiln_core::{gradcheck, gradgradcheck, DType, GradcheckOptions, Result, Rng, Tensor};

type F = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;

fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), lo, hi, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

fn check(name: &str, f: F, inputs: &[Tensor], second: bool) {
    if let Err(e) = gradcheck(&f, inputs, &opts()) {
        panic!("{name}: {e}");
    }
    if second {
        if let Err(e) = gradgradcheck(&f, inputs, &opts()) {
            panic!("{name} (second order): {e}");
        }
    }
}

fn unary_cases() -> Vec<(&'static str, F, f64, f64)> {
    vec![
        ("neg", Box::new(|v: &[Tensor]| v[0].neg()), -2.0, 2.0),
        ("abs", Box::new(|v: &[Tensor]| v[0].abs()), 0.1, 2.0),
        ("exp", Box::new(|v: &[Tensor]| v[0].exp()), -2.0, 2.0),
        ("log", Box::new(|v: &[Tensor]| v[0].log()), 0.5, 2.0),
        ("log1p", Box::new(|v: &[Tensor]| v[0].log1p()), -0.5, 2.0),
        ("sqrt", Box::new(|v: &[Tensor]| v[0].sqrt()), 0.5, 2.0),
        ("rsqrt", Box::new(|v: &[Tensor]| v[0].rsqrt()), 0.5, 2.0),
        ("square", Box::new(|v: &[Tensor]| v[0].square()), -2.0, 2.0),
        ("recip", Box::new(|v: &[Tensor]| v[0].recip()), 0.5, 2.0),
        ("sin", Box::new(|v: &[Tensor]| v[0].sin()), -2.0, 2.0),
        ("cos", Box::new(|v: &[Tensor]| v[0].cos()), -2.0, 2.0),
        ("tanh", Box::new(|v: &[Tensor]| v[0].tanh()), -2.0, 2.0),
        ("sigmoid", Box::new(|v: &[Tensor]| v[0].sigmoid()), -3.0, 3.0),
        ("relu", Box::new(|v: &[Tensor]| v[0].relu()), 0.1, 2.0),
        ("gelu", Box::new(|v: &[Tensor]| v[0].gelu()), -2.0, 2.0),
        ("gelu_tanh", Box::new(|v: &[Tensor]| v[0].gelu_tanh()), -2.0, 2.0),
        ("silu", Box::new(|v: &[Tensor]| v[0].silu()), -2.0, 2.0),
        ("softplus", Box::new(|v: &[Tensor]| v[0].softplus()), -3.0, 3.0),
        ("erf", Box::new(|v: &[Tensor]| v[0].erf()), -2.0, 2.0),
        ("affine", Box::new(|v: &[Tensor]| v[0].affine(-1.5, 0.25)), -2.0, 2.0),
        ("powf", Box::new(|v: &[Tensor]| v[0].powf(2.5)), 0.5, 2.0),
        ("clamp", Box::new(|v: &[Tensor]| v[0].clamp(-0.5, 0.5)), 0.6, 2.0),
        ("leaky_relu", Box::new(|v: &[Tensor]| v[0].leaky_relu(0.1)), 0.1, 2.0),
    ]
}

#[test]
fn unary_ops_first_and_second_order() {
    for (i, (name, f, lo, hi)) in unary_cases().into_iter().enumerate() {
        let x = rand(&[3, 4], lo, hi, i as u64);
        check(name, f, &[x], true);
    }
}

#[test]
fn unary_ops_on_non_contiguous_inputs() {
    for (i, (name, f, lo, hi)) in unary_cases().into_iter().enumerate() {
        let x = rand(&[4, 3], lo, hi, 100 + i as u64);
        // The transpose makes the op read a strided view.
        let g: F = Box::new(move |v: &[Tensor]| f(&[v[0].t()?]));
        check(name, g, &[x], false);
    }
}

#[test]
fn clamp_gradient_is_zero_outside_the_range() {
    let x = Tensor::from_slice(&[-2.0f64, 0.1, 3.0], [3]).unwrap().requires_grad(true).unwrap();
    let g = x.clamp(-1.0, 1.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![0.0, 1.0, 0.0]);
}

fn binary_cases() -> Vec<(&'static str, F, f64, f64)> {
    vec![
        ("add", Box::new(|v: &[Tensor]| v[0].add(&v[1])), -2.0, 2.0),
        ("sub", Box::new(|v: &[Tensor]| v[0].sub(&v[1])), -2.0, 2.0),
        ("mul", Box::new(|v: &[Tensor]| v[0].mul(&v[1])), -2.0, 2.0),
        ("div", Box::new(|v: &[Tensor]| v[0].div(&v[1])), 0.5, 2.0),
        ("pow", Box::new(|v: &[Tensor]| v[0].pow(&v[1])), 0.5, 2.0),
        ("maximum", Box::new(|v: &[Tensor]| v[0].maximum(&v[1])), -2.0, 2.0),
        ("minimum", Box::new(|v: &[Tensor]| v[0].minimum(&v[1])), -2.0, 2.0),
    ]
}

#[test]
fn binary_ops_with_broadcasting_first_and_second_order() {
    let shapes: [(&[usize], &[usize]); 4] = [(&[3, 4], &[3, 4]), (&[3, 4], &[4]), (&[2, 1, 3], &[4, 1]), (&[1], &[2, 3])];
    for (i, (name, f, lo, hi)) in binary_cases().into_iter().enumerate() {
        let f = std::rc::Rc::new(f);
        for (k, (sa, sb)) in shapes.iter().enumerate() {
            let a = rand(sa, lo, hi, (i * 10 + k) as u64);
            let b = rand(sb, lo, hi, (i * 10 + k + 500) as u64);
            let g = f.clone();
            check(name, Box::new(move |v: &[Tensor]| g(v)), &[a, b], k < 2);
        }
    }
}

#[test]
fn binary_ops_on_non_contiguous_inputs() {
    for (i, (name, f, lo, hi)) in binary_cases().into_iter().enumerate() {
        let a = rand(&[4, 3], lo, hi, 900 + i as u64);
        let b = rand(&[3, 4], lo, hi, 950 + i as u64);
        check(name, Box::new(move |v: &[Tensor]| f(&[v[0].t()?, v[1].clone()])), &[a, b], false);
    }
}

#[test]
fn reductions_first_and_second_order() {
    let x = rand(&[3, 4, 5], -2.0, 2.0, 7);
    let cases: Vec<(&str, F)> = vec![
        ("sum dim 1", Box::new(|v: &[Tensor]| v[0].sum(&[1], false))),
        ("sum dims 0,2 keepdim", Box::new(|v: &[Tensor]| v[0].sum(&[0, 2], true))),
        ("sum all", Box::new(|v: &[Tensor]| v[0].sum_all())),
        ("mean dim -1", Box::new(|v: &[Tensor]| v[0].mean(&[-1], false))),
        ("max dim 1", Box::new(|v: &[Tensor]| v[0].max(&[1], false))),
        ("min dims 0,1", Box::new(|v: &[Tensor]| v[0].min(&[0, 1], true))),
        ("logsumexp dim 2", Box::new(|v: &[Tensor]| v[0].logsumexp(&[2], false))),
        ("var dim 1", Box::new(|v: &[Tensor]| v[0].var(&[1], 1, false))),
        ("var all, correction 0", Box::new(|v: &[Tensor]| v[0].var(&[], 0, false))),
        ("softmax dim 1", Box::new(|v: &[Tensor]| v[0].softmax(1))),
        ("log_softmax dim -1", Box::new(|v: &[Tensor]| v[0].log_softmax(-1))),
        ("norm", Box::new(|v: &[Tensor]| v[0].norm())),
        (
            "sum of a permuted view",
            Box::new(|v: &[Tensor]| v[0].permute(&[2, 0, 1])?.sum(&[0], false)),
        ),
        (
            "softmax of a strided view",
            Box::new(|v: &[Tensor]| v[0].transpose(0, 2)?.softmax(0)),
        ),
    ];
    for (name, f) in cases {
        check(name, f, std::slice::from_ref(&x), true);
    }
}

#[test]
fn matmul_of_two_vectors_is_a_dot_product() {
    // As torch.matmul: 1-d x 1-d is the dot product, a 0-d tensor.
    let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0], [3]).unwrap().requires_grad(true).unwrap();
    let b = Tensor::from_slice(&[4.0f64, -5.0, 6.0], [3]).unwrap().requires_grad(true).unwrap();
    let y = a.matmul(&b).unwrap();
    assert_eq!(y.rank(), 0);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![12.0]);
    let g = y.backward().unwrap();
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>().unwrap(), vec![4.0, -5.0, 6.0]);
    assert_eq!(g.get(&b).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0]);
    assert_eq!(
        a.matmul(&Tensor::zeros([4], DType::F64).unwrap()).unwrap_err().to_string(),
        "matmul: cannot multiply [3] by [4]: inner dimensions 3 and 4 differ"
    );
}

#[test]
fn matmul_first_and_second_order() {
    let cases: Vec<(&[usize], &[usize])> = vec![
        (&[3, 4], &[4, 5]),
        (&[2, 3, 4], &[4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[4], &[4, 3]),
        (&[3, 4], &[4]),
        (&[4], &[4]),
        (&[2, 3, 4], &[4]),
        (&[4], &[2, 4, 3]),
        // A matrix shared by a batch: wide (a convolution's weight times its columns, whose
        // gradient is computed as `Σ (b gᵀ)ᵀ`), tall, and over two batch dims.
        (&[3, 5], &[2, 5, 4]),
        (&[5, 3], &[2, 3, 4]),
        (&[2, 6], &[2, 3, 6, 2]),
    ];
    for (k, (sa, sb)) in cases.into_iter().enumerate() {
        let a = rand(sa, -1.0, 1.0, 40 + k as u64);
        let b = rand(sb, -1.0, 1.0, 80 + k as u64);
        check("matmul", Box::new(|v: &[Tensor]| v[0].matmul(&v[1])), &[a, b], true);
    }
    // Transposed (column-major) operands go through the strided gemm path.
    let a = rand(&[4, 3], -1.0, 1.0, 1);
    let b = rand(&[5, 4], -1.0, 1.0, 2);
    check(
        "matmul of transposes",
        Box::new(|v: &[Tensor]| v[0].t()?.matmul(&v[1].t()?)),
        &[a, b],
        true,
    );
    // Large enough to take the gemm path rather than the tiny-matrix loop.
    let a = rand(&[20, 17], -1.0, 1.0, 3);
    let b = rand(&[17, 19], -1.0, 1.0, 4);
    check("matmul via gemm", Box::new(|v: &[Tensor]| v[0].matmul(&v[1])), &[a, b], false);
}

#[test]
fn shape_and_index_ops_first_order() {
    let x = rand(&[3, 4], -2.0, 2.0, 11);
    let y = rand(&[3, 2], -2.0, 2.0, 12);
    let idx = Tensor::from_slice(&[2i64, 0, 2], [3]).unwrap();
    let gidx = Tensor::from_slice(&[0i64, 3, 1, 1, 2, 0], [3, 2]).unwrap();
    let mask = Tensor::from_slice(&[1u8, 0, 0, 1], [4]).unwrap();
    let cases: Vec<(&str, F, Vec<Tensor>)> = vec![
        ("reshape", Box::new(|v: &[Tensor]| v[0].reshape([2, 6])), vec![x.clone()]),
        (
            "reshape of a transpose (copy)",
            Box::new(|v: &[Tensor]| v[0].t()?.reshape([12])),
            vec![x.clone()],
        ),
        (
            "permute",
            Box::new(|v: &[Tensor]| v[0].unsqueeze(0)?.permute(&[2, 0, 1])),
            vec![x.clone()],
        ),
        ("narrow", Box::new(|v: &[Tensor]| v[0].narrow(1, 1, 2)), vec![x.clone()]),
        ("select", Box::new(|v: &[Tensor]| v[0].select(0, 1)), vec![x.clone()]),
        (
            "squeeze/unsqueeze",
            Box::new(|v: &[Tensor]| v[0].unsqueeze(1)?.squeeze(1)?.unsqueeze(-1)),
            vec![x.clone()],
        ),
        (
            "broadcast_to",
            Box::new(|v: &[Tensor]| v[0].broadcast_to([2, 3, 4])),
            vec![x.clone()],
        ),
        ("contiguous", Box::new(|v: &[Tensor]| v[0].t()?.contiguous()), vec![x.clone()]),
        (
            "cat",
            Box::new(|v: &[Tensor]| Tensor::cat(&[v[0].clone(), v[1].clone()], 1)),
            vec![x.clone(), y.clone()],
        ),
        (
            "stack",
            Box::new(|v: &[Tensor]| Tensor::stack(&[v[0].clone(), v[0].mul_scalar(2.0)?], 1)),
            vec![x.clone()],
        ),
        (
            "split",
            Box::new(|v: &[Tensor]| v[0].split(&[1, 3], 1).map(|p| p[1].clone())),
            vec![x.clone()],
        ),
        (
            "chunk",
            Box::new(|v: &[Tensor]| v[0].chunk(2, 1).map(|p| p[0].clone())),
            vec![x.clone()],
        ),
        ("pad", Box::new(|v: &[Tensor]| v[0].pad(&[(1, 0), (2, 1)], 0.5)), vec![x.clone()]),
        (
            "index_select",
            Box::new(move |v: &[Tensor]| v[0].index_select(0, &idx)),
            vec![x.clone()],
        ),
        (
            "gather",
            Box::new({
                let gidx = gidx.clone();
                move |v: &[Tensor]| v[0].gather(1, &gidx)
            }),
            vec![x.clone()],
        ),
        (
            "scatter_add",
            Box::new({
                let gidx = gidx.clone();
                move |v: &[Tensor]| v[0].scatter_add(1, &gidx, &v[1])
            }),
            vec![x.clone(), y.clone()],
        ),
        (
            "index_add",
            Box::new(|v: &[Tensor]| {
                let i = Tensor::from_slice(&[1i64, 1], [2])?;
                v[0].index_add(1, &i, &v[1])
            }),
            vec![x.clone(), y.clone()],
        ),
        (
            "where_cond",
            Box::new({
                let mask = mask.clone();
                move |v: &[Tensor]| mask.where_cond(&v[0], &v[1].sum(&[1], true)?)
            }),
            vec![x.clone(), y.clone()],
        ),
        (
            "masked_fill",
            Box::new(move |v: &[Tensor]| v[0].masked_fill(&mask, 3.0)),
            vec![x.clone()],
        ),
        (
            "to_dtype f32 and back",
            Box::new(|v: &[Tensor]| v[0].to_dtype(DType::F32)?.to_dtype(DType::F64)?.mul(&v[0])),
            vec![x.clone()],
        ),
    ];
    for (name, f, inputs) in cases {
        // to_dtype through f32 loses precision, so its finite differences need a looser tolerance.
        let o = if name.starts_with("to_dtype") {
            GradcheckOptions {
                eps: 1e-3,
                atol: 1e-3,
                rtol: 1e-3,
                ..opts()
            }
        } else {
            opts()
        };
        if let Err(e) = gradcheck(&f, &inputs, &o) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn shape_ops_second_order_through_index_ops() {
    // Backward of gather is scatter_add and vice versa; differentiating twice exercises both.
    let x = rand(&[3, 4], -2.0, 2.0, 21);
    let gidx = Tensor::from_slice(&[0i64, 3, 1, 1, 2, 0], [3, 2]).unwrap();
    check(
        "gather then square",
        Box::new(move |v: &[Tensor]| v[0].gather(1, &gidx)?.square()),
        std::slice::from_ref(&x),
        true,
    );
    let idx = Tensor::from_slice(&[2i64, 0, 2], [3]).unwrap();
    check(
        "index_select then tanh",
        Box::new(move |v: &[Tensor]| v[0].index_select(0, &idx)?.tanh()),
        std::slice::from_ref(&x),
        true,
    );
    check(
        "pad then narrow then exp",
        Box::new(|v: &[Tensor]| v[0].pad(&[(1, 1)], 0.0)?.narrow(0, 0, 4)?.exp()),
        &[x],
        true,
    );
}

#[test]
fn unfold_and_fold_first_and_second_order() {
    let x = rand(&[2, 2, 5, 4], -1.0, 1.0, 31);
    check(
        "unfold2d",
        Box::new(|v: &[Tensor]| v[0].unfold2d((3, 2), (2, 1), (1, 1), (1, 2))?.square()),
        std::slice::from_ref(&x),
        true,
    );
    let cols = rand(&[2, 2 * 6, 12], -1.0, 1.0, 32);
    check(
        "fold2d",
        Box::new(|v: &[Tensor]| v[0].fold2d((5, 4), (3, 2), (2, 1), (1, 1), (1, 2))?.square()),
        &[cols],
        true,
    );
}

#[test]
fn batch_unfold_and_fold_first_and_second_order() {
    let x = rand(&[3, 2, 5, 4], -1.0, 1.0, 33);
    check(
        "unfold2d_batch",
        Box::new(|v: &[Tensor]| v[0].unfold2d_batch((3, 2), (2, 1), (1, 1), (1, 2))?.square()),
        std::slice::from_ref(&x),
        true,
    );
    let cols = rand(&[2 * 6, 3, 12], -1.0, 1.0, 34);
    check(
        "fold2d_batch",
        Box::new(|v: &[Tensor]| v[0].fold2d_batch((5, 4), (3, 2), (2, 1), (1, 1), (1, 2))?.square()),
        &[cols],
        true,
    );
}

/// Max pooling as it was composed before the direct kernel: pad with -inf, unfold, max over taps.
fn max_pool_composite(x: &Tensor, k: (usize, usize), s: (usize, usize), p: (usize, usize), d: (usize, usize)) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let xp = x.pad(&[(0, 0), (0, 0), (p.0, p.0), (p.1, p.1)], f64::NEG_INFINITY)?;
    let cols = xp.unfold2d(k, s, (0, 0), d)?;
    let l = cols.dims()[2];
    let oh = (dims[2] + 2 * p.0 - (d.0 * (k.0 - 1) + 1)) / s.0 + 1;
    cols.reshape([dims[0], dims[1], k.0 * k.1, l])?
        .max(&[2], false)?
        .reshape([dims[0], dims[1], oh, l / oh])
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

type Pool = ((usize, usize), (usize, usize), (usize, usize), (usize, usize));
const POOLS: [Pool; 4] = [
    ((2, 2), (2, 2), (0, 0), (1, 1)), // the 2x2 fast path
    ((3, 3), (2, 2), (1, 1), (1, 1)), // overlapping windows, -inf padding
    ((2, 3), (1, 2), (1, 0), (2, 1)), // dilation, uneven kernel
    ((3, 2), (3, 1), (0, 1), (1, 1)),
];

#[test]
fn max_pool_first_and_second_order() {
    for (i, &(k, s, p, d)) in POOLS.iter().enumerate() {
        let x = rand(&[2, 2, 7, 6], -1.0, 1.0, 60 + i as u64);
        check(
            "max_pool2d",
            Box::new(move |v: &[Tensor]| v[0].max_pool2d_with_indices(k, s, p, d)?.0.square()),
            std::slice::from_ref(&x),
            true,
        );
        // A non-contiguous input (a transposed view).
        let xt = rand(&[2, 2, 6, 7], -1.0, 1.0, 70 + i as u64);
        check(
            "max_pool2d (transposed input)",
            Box::new(move |v: &[Tensor]| v[0].transpose(2, 3)?.max_pool2d_with_indices(k, s, p, d)?.0.square()),
            &[xt],
            true,
        );
    }
}

#[test]
fn max_pool_matches_the_composite_pad_unfold_max() {
    for (i, &(k, s, p, d)) in POOLS.iter().enumerate() {
        for dt in [DType::F64, DType::F32] {
            let x = rand(&[3, 4, 9, 8], -2.0, 2.0, 80 + i as u64)
                .to_dtype(dt)
                .unwrap()
                .requires_grad(true)
                .unwrap();
            let (y, idx) = x.max_pool2d_with_indices(k, s, p, d).unwrap();
            let want = max_pool_composite(&x, k, s, p, d).unwrap();
            assert_eq!(y.dims(), want.dims());
            assert_eq!(v64(&y), v64(&want), "values, pool {i} {dt:?}");
            assert_eq!(idx.dims(), y.dims());
            // The indices name the chosen elements.
            let flat = x.reshape([3, 4, 72]).unwrap();
            let picked = flat.gather(2, &idx.reshape([3, 4, y.dims()[2] * y.dims()[3]]).unwrap()).unwrap();
            assert_eq!(v64(&picked), v64(&y));
            // Same gradients (random values: no ties, so amax and argmax routing agree).
            let go = rand(y.dims(), -1.0, 1.0, 90).to_dtype(dt).unwrap();
            let g1 = y.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = want.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
            // Overlapping windows add in another order: equal up to rounding.
            let (a, b) = (v64(g1.get(&x).unwrap()), v64(g2.get(&x).unwrap()));
            let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(worst <= 1e-6, "gradients, pool {i} {dt:?}: differ by {worst}");
        }
    }
}

#[test]
fn max_pool_2x2_windows_in_blocks_across_rows() {
    // The 2x2 fast path picks winners 64 windows at a time across output rows: planes of 9 x 18
    // windows (odd input sizes drop their last row and column), values from a small set for ties,
    // and NaNs, against the first-maximum, last-NaN rule written out here.
    let (n, c, h, w) = (2, 3, 19, 37);
    let mut rng = Rng::new(7);
    let vals: Vec<f32> = (0..n * c * h * w)
        .map(|_| match rng.below(50) {
            0 => f32::NAN,
            k => (k % 4) as f32,
        })
        .collect();
    let x = Tensor::from_slice(&vals, [n, c, h, w]).unwrap();
    let (y, idx) = x.max_pool2d_with_indices((2, 2), (2, 2), (0, 0), (1, 1)).unwrap();
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(y.dims(), &[n, c, oh, ow]);
    let (y, idx) = (y.to_vec::<f32>().unwrap(), idx.to_vec::<i64>().unwrap());
    for p in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = (f32::NEG_INFINITY, usize::MAX);
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let at = (2 * oy + dy) * w + 2 * ox + dx;
                    let v = vals[p * h * w + at];
                    if best.1 == usize::MAX || v > best.0 || v.is_nan() {
                        best = (v, at);
                    }
                }
                let o = (p * oh + oy) * ow + ox;
                assert_eq!(y[o].to_bits(), best.0.to_bits(), "value of window {o}");
                assert_eq!(idx[o], best.1 as i64, "index of window {o}");
            }
        }
    }
}

#[test]
fn max_pool_ties_nan_and_errors() {
    // Ties: the first maximum wins and takes the whole gradient (PyTorch's max_pool2d).
    let x = Tensor::from_slice(&[1.0f64, 1.0, 1.0, 1.0], [1, 1, 2, 2])
        .unwrap()
        .requires_grad(true)
        .unwrap();
    let (y, idx) = x.max_pool2d_with_indices((2, 2), (2, 2), (0, 0), (1, 1)).unwrap();
    assert_eq!(idx.to_vec::<i64>().unwrap(), vec![0]);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
    // NaN propagates, on both paths.
    let x = Tensor::from_slice(&[1.0f32, f32::NAN, 3.0, 2.0, 0.0, 5.0], [1, 1, 2, 3]).unwrap();
    for k in [(2, 2), (2, 3)] {
        let (y, idx) = x.max_pool2d_with_indices(k, (2, 2), (0, 0), (1, 1)).unwrap();
        assert!(y.to_vec::<f32>().unwrap()[0].is_nan(), "{k:?}");
        assert_eq!(idx.to_vec::<i64>().unwrap()[0], 1, "{k:?}");
    }
    // Windows with no input element, wrong rank, integer input: errors naming the op.
    let x = Tensor::zeros([1, 1, 4, 4], DType::F32).unwrap();
    let e = x.max_pool2d_with_indices((2, 2), (2, 2), (2, 2), (1, 1)).unwrap_err().to_string();
    assert!(e.contains("max_pool2d") && e.contains("no input element"), "{e}");
    let e = Tensor::zeros([4, 4], DType::F32)
        .unwrap()
        .max_pool2d_with_indices((2, 2), (2, 2), (0, 0), (1, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_pool2d") && e.contains("[4, 4]"), "{e}");
    assert!(Tensor::zeros([1, 1, 4, 4], DType::I64)
        .unwrap()
        .max_pool2d_with_indices((2, 2), (2, 2), (0, 0), (1, 1))
        .is_err());
    assert!(x.max_pool2d_with_indices((0, 2), (2, 2), (0, 0), (1, 1)).is_err());
    assert!(x.max_pool2d_with_indices((5, 2), (2, 2), (0, 0), (1, 1)).is_err());
}

type Win = ((usize, usize), (usize, usize), (usize, usize), (usize, usize));

/// Window geometries for the unfold tests. Stride-1 rows take the contiguous fast path; padding
/// wider than the kernel and inputs narrower than the window exercise its edges. The first and
/// the last two keep the output as wide as the input ("same" rows, one shifted run per tap), the
/// last with a kernel wider than the 3-column inputs.
const WINDOWS: [Win; 8] = [
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 2), (1, 1), (3, 3), (1, 1)),
    ((3, 5), (1, 1), (0, 4), (1, 1)),
    ((3, 2), (2, 1), (1, 2), (1, 1)),
    ((2, 3), (1, 2), (2, 1), (2, 1)),
    ((1, 4), (1, 1), (0, 1), (1, 1)),
    ((2, 3), (1, 1), (0, 1), (1, 1)),
    ((5, 5), (1, 1), (2, 2), (1, 1)),
];

/// `torch.nn.functional.unfold` written out element by element: `[N, C*kh*kw, L]`.
fn naive_unfold(x: &[f64], dims: [usize; 4], (k, s, p, d): Win) -> (Vec<f64>, usize, usize) {
    let [n, c, h, w] = dims;
    let oh = (h + 2 * p.0 - d.0 * (k.0 - 1) - 1) / s.0 + 1;
    let ow = (w + 2 * p.1 - d.1 * (k.1 - 1) - 1) / s.1 + 1;
    let mut out = vec![0.0; n * c * k.0 * k.1 * oh * ow];
    for b in 0..n {
        for ch in 0..c {
            for i in 0..k.0 {
                for j in 0..k.1 {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let iy = (oy * s.0 + i * d.0) as isize - p.0 as isize;
                            let ix = (ox * s.1 + j * d.1) as isize - p.1 as isize;
                            let row = (ch * k.0 + i) * k.1 + j;
                            let o = ((b * c * k.0 * k.1 + row) * oh + oy) * ow + ox;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                out[o] = x[((b * c + ch) * h + iy as usize) * w + ix as usize];
                            }
                        }
                    }
                }
            }
        }
    }
    (out, oh, ow)
}

#[test]
fn unfold_and_fold_match_a_naive_reference() {
    for (t, &win) in WINDOWS.iter().enumerate() {
        let dims = [2, 3, 5, 3];
        let x = rand(&dims, -1.0, 1.0, 100 + t as u64);
        let (k, s, p, d) = win;
        let (want, oh, ow) = naive_unfold(&x.to_vec::<f64>().unwrap(), dims, win);
        let got = x.unfold2d(k, s, p, d).unwrap();
        assert_eq!(got.dims(), &[2, 3 * k.0 * k.1, oh * ow], "window {t}");
        assert_eq!(got.to_vec::<f64>().unwrap(), want, "unfold2d, window {t}");
        // fold2d is the adjoint: <unfold(x), c> = <x, fold(c)>.
        let cols = rand(got.dims(), -1.0, 1.0, 200 + t as u64);
        let folded = cols.fold2d((5, 3), k, s, p, d).unwrap();
        let lhs: f64 = want.iter().zip(cols.to_vec::<f64>().unwrap()).map(|(a, b)| a * b).sum();
        let rhs: f64 = x
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(folded.to_vec::<f64>().unwrap())
            .map(|(a, b)| a * b)
            .sum();
        assert!((lhs - rhs).abs() < 1e-12, "fold2d adjoint, window {t}: {lhs} vs {rhs}");
    }
}

/// "Same" windows over planes smaller than the kernel: taps whose every row lies in the padding,
/// runs that wrap round several row edges, and empty planes.
#[test]
fn same_windows_over_planes_smaller_than_the_kernel() {
    let same: [Win; 4] = [
        ((3, 3), (1, 1), (1, 1), (1, 1)),
        ((5, 5), (1, 1), (2, 2), (1, 1)),
        ((5, 1), (1, 1), (2, 0), (1, 1)),
        ((1, 7), (1, 1), (0, 3), (1, 1)),
    ];
    for (t, &win) in same.iter().enumerate() {
        for dims in [[1, 2, 1, 8], [2, 1, 2, 8], [1, 1, 1, 1], [1, 2, 3, 2], [2, 1, 2, 1]] {
            let x = rand(&dims, -1.0, 1.0, 500 + t as u64);
            let (k, s, p, d) = win;
            let (want, oh, ow) = naive_unfold(&x.to_vec::<f64>().unwrap(), dims, win);
            let got = x.unfold2d(k, s, p, d).unwrap();
            assert_eq!(got.dims(), &[dims[0], dims[1] * k.0 * k.1, oh * ow], "window {t}, input {dims:?}");
            assert_eq!(got.to_vec::<f64>().unwrap(), want, "unfold2d, window {t}, input {dims:?}");
            let cols = rand(got.dims(), -1.0, 1.0, 600 + t as u64);
            let folded = cols.fold2d((dims[2], dims[3]), k, s, p, d).unwrap();
            let lhs: f64 = want.iter().zip(cols.to_vec::<f64>().unwrap()).map(|(a, b)| a * b).sum();
            let rhs: f64 = x
                .to_vec::<f64>()
                .unwrap()
                .iter()
                .zip(folded.to_vec::<f64>().unwrap())
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (lhs - rhs).abs() < 1e-12,
                "fold2d adjoint, window {t}, input {dims:?}: {lhs} vs {rhs}"
            );
        }
        // An empty plane: no positions along that axis, and nothing to read.
        let (k, s, p, d) = win;
        let x = rand(&[1, 2, 0, 3], -1.0, 1.0, 700);
        if let Ok(cols) = x.unfold2d(k, s, p, d) {
            assert!(cols.to_vec::<f64>().unwrap().iter().all(|&v| v == 0.0), "window {t}, empty plane");
        }
    }
}

/// The batch layout holds exactly the per-sample patches with the batch moved inside
/// (`[N, K, L]` permuted to `[K, N, L]`), for every window of the reference test, a single
/// sample, and a non-contiguous input; its fold is the per-sample fold of the same patches.
#[test]
fn batch_patches_are_the_per_sample_patches_permuted() {
    for (t, &(k, s, p, d)) in WINDOWS.iter().enumerate() {
        for n in [1, 4] {
            let base = rand(&[3, n, 5, 3], -1.0, 1.0, 300 + t as u64);
            // [C, N, H, W] permuted to [N, C, H, W]: a non-contiguous input.
            let x = base.permute(&[1, 0, 2, 3]).unwrap();
            let per = x.unfold2d(k, s, p, d).unwrap();
            let got = x.unfold2d_batch(k, s, p, d).unwrap();
            let pd = per.dims().to_vec();
            assert_eq!(got.dims(), &[pd[1], pd[0], pd[2]], "window {t}, batch {n}");
            let want = per.permute(&[1, 0, 2]).unwrap().contiguous().unwrap();
            assert_eq!(
                got.to_vec::<f64>().unwrap(),
                want.to_vec::<f64>().unwrap(),
                "unfold2d_batch, window {t}, batch {n}"
            );
            let cols = rand(got.dims(), -1.0, 1.0, 400 + t as u64);
            let folded = cols.fold2d_batch((5, 3), k, s, p, d).unwrap();
            let per_cols = cols.permute(&[1, 0, 2]).unwrap();
            let want = per_cols.fold2d((5, 3), k, s, p, d).unwrap();
            assert_eq!(folded.dims(), &[n, 3, 5, 3]);
            let (a, b) = (folded.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() < 1e-12,
                    "fold2d_batch, window {t}, batch {n}, element {i}: {x} vs {y}"
                );
            }
        }
    }
    // Shapes that do not match the layout are errors naming it.
    let e = rand(&[2, 6, 12], -1.0, 1.0, 5)
        .fold2d_batch((5, 4), (3, 2), (2, 1), (1, 1), (1, 2))
        .unwrap_err();
    assert!(e.to_string().contains("[C*6, N, 12]"), "{e}");
}

#[test]
fn unfold_matches_a_direct_convolution() {
    // conv2d as unfold + matmul equals the textbook six-loop convolution.
    let (n, c, h, w, o, k) = (2, 3, 6, 5, 4, 3);
    let x = rand(&[n, c, h, w], -1.0, 1.0, 41);
    let wt = rand(&[o, c, k, k], -1.0, 1.0, 42);
    let (stride, pad) = (2, 1);
    let cols = x.unfold2d((k, k), (stride, stride), (pad, pad), (1, 1)).unwrap();
    let oh = (h + 2 * pad - k) / stride + 1;
    let ow = (w + 2 * pad - k) / stride + 1;
    let y = wt
        .reshape([o, c * k * k])
        .unwrap()
        .matmul(&cols)
        .unwrap()
        .reshape([n, o, oh, ow])
        .unwrap();
    let xv = x.to_vec::<f64>().unwrap();
    let wv = wt.to_vec::<f64>().unwrap();
    let yv = y.to_vec::<f64>().unwrap();
    for b in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0.0;
                    for ic in 0..c {
                        for i in 0..k {
                            for j in 0..k {
                                let iy = (oy * stride + i) as isize - pad as isize;
                                let ix = (ox * stride + j) as isize - pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    s += xv[((b * c + ic) * h + iy as usize) * w + ix as usize] * wv[((oc * c + ic) * k + i) * k + j];
                                }
                            }
                        }
                    }
                    let got = yv[((b * o + oc) * oh + oy) * ow + ox];
                    assert!((got - s).abs() < 1e-12, "conv at {b},{oc},{oy},{ox}: {got} vs {s}");
                }
            }
        }
    }
}

#[test]
fn gradcheck_reports_a_wrong_gradient() {
    // A function whose value and gradient disagree: detach hides the dependence from autodiff.
    let x = rand(&[3], 0.5, 1.0, 5);
    let err = gradcheck(|v| v[0].mul(&v[0].detach()), &[x], &opts()).unwrap_err();
    assert!(err.to_string().contains("analytic"), "{err}");
}

#[test]
fn matmul_with_transposed_operands_first_and_second_order() {
    // A Linear layer's `x @ W.t()`: the backward produces the transposed operand's gradient in its
    // own layout, (gᵀa)ᵀ, so the leaf's gradient comes out row-major.
    let x = rand(&[5, 4], -1.0, 1.0, 120);
    let w = rand(&[3, 4], -1.0, 1.0, 121);
    check(
        "x @ w.t()",
        Box::new(|v: &[Tensor]| v[0].matmul(&v[1].t()?)?.square()),
        &[x.clone(), w.clone()],
        true,
    );
    check(
        "w.t().t() @ x.t()",
        Box::new(|v: &[Tensor]| v[1].matmul(&v[0].t()?)?.tanh()),
        &[x.clone(), w.clone()],
        true,
    );
    let x = x.requires_grad(true).unwrap();
    let w = w.requires_grad(true).unwrap();
    let g = x
        .matmul(&w.t().unwrap())
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(g.get(&w).unwrap().is_contiguous() && g.get(&x).unwrap().is_contiguous());
    // Same values as the plain formula aᵀg.
    let gy = x.matmul(&w.t().unwrap()).unwrap().mul_scalar(2.0).unwrap();
    let want = gy.t().unwrap().matmul(&x).unwrap();
    let got = g.get(&w).unwrap();
    let d = got.sub(&want).unwrap().abs().unwrap().max_all().unwrap().item().unwrap();
    assert!(d < 1e-12, "{d}");
}

#[test]
fn max_dim_and_min_dim_gradients() {
    // Distinct values, so the chosen index is stable under the finite-difference step; first and
    // second order, over each dim, with and without keepdim, and on a non-contiguous input.
    let x = rand(&[3, 4, 5], -2.0, 2.0, 41);
    for dim in [0isize, 1, -1] {
        for keep in [false, true] {
            check(
                "max_dim",
                Box::new(move |v: &[Tensor]| Ok(v[0].max_dim(dim, keep)?.0)),
                std::slice::from_ref(&x),
                true,
            );
            check(
                "min_dim",
                Box::new(move |v: &[Tensor]| Ok(v[0].min_dim(dim, keep)?.0)),
                std::slice::from_ref(&x),
                true,
            );
        }
    }
    check(
        "max_dim of a transposed input",
        Box::new(|v: &[Tensor]| v[0].t()?.max_dim(0, false)?.0.square()),
        &[rand(&[4, 6], -2.0, 2.0, 42)],
        true,
    );
}

/// `relu_backward` is the mask ReLU's old backward built from `le_scalar` and `where_cond`, bit
/// for bit (NaN inputs pass the gradient on, zero and negative ones stop it), with broadcasting
/// both ways, in f64 and f32; it is differentiable in the gradient it masks, at first and second
/// order, and through it ReLU keeps its gradients.
#[test]
fn relu_backward_is_the_masked_gradient() {
    for dt in [DType::F64, DType::F32] {
        let x = Tensor::from_slice(&[-1.5f64, 0.0, -0.0, 2.0, f64::NAN, 1e-300, -1e-300, 3.0], [2, 4])
            .unwrap()
            .to_dtype(dt)
            .unwrap();
        let g = Tensor::rand([2, 4], -1.0, 1.0, dt, &mut Rng::new(7)).unwrap();
        let bits = common::f64_bits;
        let masked = |x: &Tensor, g: &Tensor| x.le_scalar(0.0).unwrap().where_cond(&g.scalar_like(0.0), g).unwrap();
        assert_eq!(bits(&x.relu_backward(&g).unwrap()), bits(&masked(&x, &g)), "{dt:?}");
        // Broadcast: a row of inputs against a column of gradients, and the reverse.
        let (xr, gc) = (x.narrow(0, 0, 1).unwrap(), g.narrow(1, 0, 1).unwrap());
        assert_eq!(bits(&xr.relu_backward(&gc).unwrap()), bits(&masked(&xr, &gc)), "{dt:?} broadcast");
        assert_eq!(
            bits(&gc.relu_backward(&xr).unwrap()),
            bits(&masked(&gc, &xr)),
            "{dt:?} broadcast back"
        );
    }
    let x = rand(&[3, 4], -1.0, 1.0, 61);
    let g = rand(&[3, 4], -1.0, 1.0, 62);
    let xd = x.detach();
    check(
        "relu_backward in the gradient",
        Box::new(move |v: &[Tensor]| xd.relu_backward(&v[0])?.square()),
        &[g],
        true,
    );
    // The input's own gradient through relu_backward is zero (a step function).
    let xv = x.requires_grad(true).unwrap();
    let y = xv.relu_backward(&rand(&[3, 4], -1.0, 1.0, 63)).unwrap().sum_all().unwrap();
    let grads = y.backward().unwrap();
    assert!(grads.get(&xv).is_none_or(|t| t.to_vec::<f64>().unwrap().iter().all(|&v| v == 0.0)));
}
