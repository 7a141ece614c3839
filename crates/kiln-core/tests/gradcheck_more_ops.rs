//! The ops added for issue #11 against central finite differences in f64: first order, and second
//! order wherever the op is twice differentiable; plus the exact values finite differences cannot
//! see (round's ties, the zero gradient of the rounding ops, expm1 near 0).

use kiln_core::{gradcheck, gradgradcheck, DType, GradcheckOptions, Result, Rng, Tensor};

type F = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;

fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), lo, hi, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn check(name: &str, f: F, inputs: &[Tensor], second: bool) {
    let opts = GradcheckOptions::default();
    if let Err(e) = gradcheck(&f, inputs, &opts) {
        panic!("{name}: {e}");
    }
    if second {
        if let Err(e) = gradgradcheck(&f, inputs, &opts) {
            panic!("{name} (second order): {e}");
        }
    }
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

fn unary_cases() -> Vec<(&'static str, F, f64, f64)> {
    vec![
        ("expm1", Box::new(|v: &[Tensor]| v[0].expm1()), -2.0, 2.0),
        ("log2", Box::new(|v: &[Tensor]| v[0].log2()), 0.5, 2.0),
        ("log10", Box::new(|v: &[Tensor]| v[0].log10()), 0.5, 2.0),
        ("tan", Box::new(|v: &[Tensor]| v[0].tan()), -1.2, 1.2),
        ("asin", Box::new(|v: &[Tensor]| v[0].asin()), -0.9, 0.9),
        ("acos", Box::new(|v: &[Tensor]| v[0].acos()), -0.9, 0.9),
        ("atan", Box::new(|v: &[Tensor]| v[0].atan()), -2.0, 2.0),
        ("sinh", Box::new(|v: &[Tensor]| v[0].sinh()), -2.0, 2.0),
        ("cosh", Box::new(|v: &[Tensor]| v[0].cosh()), -2.0, 2.0),
        ("asinh", Box::new(|v: &[Tensor]| v[0].asinh()), -2.0, 2.0),
        ("acosh", Box::new(|v: &[Tensor]| v[0].acosh()), 1.2, 3.0),
        ("atanh", Box::new(|v: &[Tensor]| v[0].atanh()), -0.9, 0.9),
    ]
}

#[test]
fn new_unary_ops_first_and_second_order() {
    for (i, (name, f, lo, hi)) in unary_cases().into_iter().enumerate() {
        let x = rand(&[3, 4], lo, hi, 1100 + i as u64);
        check(name, f, &[x], true);
    }
}

#[test]
fn new_unary_ops_on_non_contiguous_inputs() {
    for (i, (name, f, lo, hi)) in unary_cases().into_iter().enumerate() {
        let x = rand(&[4, 3], lo, hi, 1200 + i as u64);
        let g: F = Box::new(move |v: &[Tensor]| f(&[v[0].t()?]));
        check(name, g, &[x], false);
    }
}

#[test]
fn rounding_ops_values_and_zero_gradient() {
    let xs = [0.5f64, 1.5, 2.5, -0.5, -1.5, -2.5, 2.7, -2.7, 3.0, -0.0];
    let x = Tensor::from_slice(&xs, [xs.len()]).unwrap().requires_grad(true).unwrap();
    type R = fn(&Tensor) -> Result<Tensor>;
    let cases: [(&str, R, [f64; 10]); 4] = [
        ("floor", Tensor::floor, [0.0, 1.0, 2.0, -1.0, -2.0, -3.0, 2.0, -3.0, 3.0, -0.0]),
        ("ceil", Tensor::ceil, [1.0, 2.0, 3.0, -0.0, -1.0, -2.0, 3.0, -2.0, 3.0, -0.0]),
        // Halves go to the even neighbour, as torch.round.
        ("round", Tensor::round, [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 3.0, -3.0, 3.0, -0.0]),
        ("trunc", Tensor::trunc, [0.0, 1.0, 2.0, -0.0, -1.0, -2.0, 2.0, -2.0, 3.0, -0.0]),
    ];
    for (name, f, want) in cases {
        let y = f(&x).unwrap();
        assert_eq!(v64(&y), want.to_vec(), "{name}");
        // The output is still part of the graph (as in torch), with a zero gradient.
        let g = y.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(v64(g.get(&x).unwrap()), want.to_vec(), "{name}: d/dx (f(x) * x) = f(x)");
        let rounded = x.detach().requires_grad(true).unwrap();
        let g = f(&rounded).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = g.get(&rounded).map(v64).unwrap_or_else(|| vec![0.0; xs.len()]);
        assert!(gr.iter().all(|&v| v == 0.0), "{name}: gradient {gr:?}");
        check(name, Box::new(move |v: &[Tensor]| f(&v[0])), &[rand(&[3, 4], 0.1, 0.4, 7)], true);
    }
}

#[test]
fn expm1_is_accurate_near_zero() {
    let x = Tensor::from_slice(&[1e-10f64, -1e-12, 1e-300], [3]).unwrap();
    let y = v64(&x.expm1().unwrap());
    for (got, v) in y.iter().zip([1e-10f64, -1e-12, 1e-300]) {
        // Two Taylor terms are exact to f64 precision this close to 0; `exp(x) - 1` would lose
        // about half the digits at 1e-10 and give 0 at 1e-300.
        let want = v + v * v / 2.0;
        assert!((got - want).abs() <= 1e-15 * v.abs(), "expm1({v}) = {got}");
    }
    let y32 = x.to_dtype(DType::F32).unwrap().expm1().unwrap().to_vec_f64().unwrap();
    assert!((y32[0] - 1e-10).abs() < 1e-16, "f32 expm1(1e-10) = {}", y32[0]);
}

#[test]
fn atan2_first_and_second_order_with_broadcasting() {
    // Keep away from the branch cut (b < 0, a = 0) and the origin: sample a in [0.3, 2] with
    // random signs by shifting, b of both signs.
    for (i, (sa, sb)) in [(vec![3, 4], vec![3, 4]), (vec![3, 4], vec![4]), (vec![2, 1, 3], vec![4, 1])]
        .into_iter()
        .enumerate()
    {
        let a = rand(&sa, 0.3, 2.0, 1300 + i as u64);
        let b = rand(&sb, -2.0, 2.0, 1400 + i as u64);
        check("atan2", Box::new(|v: &[Tensor]| v[0].atan2(&v[1])), &[a, b], true);
    }
    let a = rand(&[4, 3], 0.3, 2.0, 1500);
    let b = rand(&[3, 4], -2.0, -0.3, 1501);
    check(
        "atan2 (transposed)",
        Box::new(|v: &[Tensor]| v[0].t()?.atan2(&v[1])),
        &[a, b],
        false,
    );
}

#[test]
fn atan2_quadrants() {
    let a = Tensor::from_slice(&[1.0f64, 1.0, -1.0, -1.0, 0.0, 0.0], [6]).unwrap();
    let b = Tensor::from_slice(&[1.0f64, -1.0, -1.0, 1.0, -1.0, 1.0], [6]).unwrap();
    let got = v64(&a.atan2(&b).unwrap());
    let pi = std::f64::consts::PI;
    let want = [pi / 4.0, 3.0 * pi / 4.0, -3.0 * pi / 4.0, -pi / 4.0, pi, 0.0];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
    }
    let i = Tensor::from_slice(&[1i64], [1]).unwrap();
    assert!(i.atan2(&i).is_err(), "atan2 on i64 should be a dtype error");
}

fn seq(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| i as f64).collect::<Vec<_>>(), shape.to_vec()).unwrap()
}

#[test]
fn flip_values_errors_and_gradients() {
    let x = seq(&[2, 3]);
    assert_eq!(v64(&x.flip(&[1]).unwrap()), vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
    assert_eq!(v64(&x.flip(&[0, -1]).unwrap()), vec![5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
    assert_eq!(v64(&x.flip(&[]).unwrap()), v64(&x));
    let e = x.flip(&[1, -1]).unwrap_err().to_string();
    assert!(e.contains("flip") && e.contains("more than once"), "{e}");
    assert!(x.flip(&[2]).is_err());
    for (i, dims) in [vec![0isize], vec![1, 2], vec![-1, 0, 1]].into_iter().enumerate() {
        let a = rand(&[2, 3, 4], -1.0, 1.0, 1600 + i as u64);
        // Multiplied by itself so the second order sees a non-constant first derivative.
        check("flip", Box::new(move |v: &[Tensor]| v[0].flip(&dims)?.mul(&v[0])), &[a], true);
    }
    let a = rand(&[4, 3], -1.0, 1.0, 1610);
    check("flip (transposed)", Box::new(|v: &[Tensor]| v[0].t()?.flip(&[1])), &[a], false);
}

#[test]
fn tril_triu_values_errors_and_gradients() {
    let x = seq(&[3, 4]).add_scalar(1.0).unwrap();
    assert_eq!(
        v64(&x.tril(0).unwrap()),
        vec![1.0, 0.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0, 9.0, 10.0, 11.0, 0.0]
    );
    assert_eq!(
        v64(&x.triu(1).unwrap()),
        vec![0.0, 2.0, 3.0, 4.0, 0.0, 0.0, 7.0, 8.0, 0.0, 0.0, 0.0, 12.0]
    );
    assert_eq!(v64(&x.triu(-5).unwrap()), v64(&x));
    assert_eq!(v64(&x.tril(-3).unwrap()), vec![0.0; 12]);
    assert_eq!(v64(&x.tril(i64::MAX).unwrap()), v64(&x));
    assert_eq!(v64(&x.triu(i64::MIN).unwrap()), v64(&x));
    let e = seq(&[4]).tril(0).unwrap_err().to_string();
    assert!(e.contains("tril") && e.contains("[4]"), "{e}");
    for (i, (shape, k)) in [(vec![4, 5], 0i64), (vec![2, 3, 4], -1), (vec![5, 3], 2)].into_iter().enumerate() {
        let a = rand(&shape, -1.0, 1.0, 1700 + i as u64);
        check(
            "tril",
            Box::new(move |v: &[Tensor]| v[0].tril(k)?.square()),
            std::slice::from_ref(&a),
            true,
        );
        check("triu", Box::new(move |v: &[Tensor]| v[0].triu(k)?.square()), &[a], true);
    }
}

#[test]
fn cumsum_values_errors_and_gradients() {
    let x = seq(&[2, 3]);
    assert_eq!(v64(&x.cumsum(1).unwrap()), vec![0.0, 1.0, 3.0, 3.0, 7.0, 12.0]);
    assert_eq!(v64(&x.cumsum(0).unwrap()), vec![0.0, 1.0, 2.0, 3.0, 5.0, 7.0]);
    // A strided view is read in its own order.
    assert_eq!(v64(&x.t().unwrap().cumsum(1).unwrap()), vec![0.0, 3.0, 1.0, 5.0, 2.0, 7.0]);
    assert_eq!(seq(&[0, 3]).cumsum(0).unwrap().dims(), &[0, 3]);
    assert!(x.cumsum(2).is_err());
    assert!(Tensor::from_vec(vec![1i64, 2], [2]).unwrap().cumsum(0).is_err());
    for (i, (shape, d)) in [(vec![5], 0isize), (vec![3, 4], 1), (vec![2, 3, 4], 1), (vec![2, 3, 4], -1)]
        .into_iter()
        .enumerate()
    {
        let a = rand(&shape, -1.0, 1.0, 1800 + i as u64);
        check("cumsum", Box::new(move |v: &[Tensor]| v[0].cumsum(d)?.square()), &[a], true);
    }
    let a = rand(&[4, 3], -1.0, 1.0, 1810);
    check("cumsum (transposed)", Box::new(|v: &[Tensor]| v[0].t()?.cumsum(1)), &[a], false);
}

/// `a` with the given flat positions set to exactly 0.
fn with_zeros(a: &Tensor, at: &[usize]) -> Tensor {
    let mut v = v64(a);
    for &i in at {
        v[i] = 0.0;
    }
    Tensor::from_vec(v, a.dims().to_vec()).unwrap()
}

#[test]
fn prod_and_cumprod_first_and_second_order_with_zeros() {
    type Case = (Vec<usize>, isize, Vec<usize>);
    let cases: Vec<Case> = vec![
        (vec![3, 4], 1, vec![]),
        (vec![7], 0, vec![]),
        // One zero in a slice, two zeros in another.
        (vec![2, 3, 5], 2, vec![1, 7, 8]),
        (vec![4, 3], 0, vec![0, 4, 10]),
    ];
    for (i, (shape, d, zeros)) in cases.into_iter().enumerate() {
        let a = with_zeros(&rand(&shape, -1.5, 1.5, 1900 + i as u64), &zeros);
        check(
            "prod",
            Box::new(move |v: &[Tensor]| v[0].prod(d, false)),
            std::slice::from_ref(&a),
            true,
        );
        check(
            "prod keepdim",
            Box::new(move |v: &[Tensor]| v[0].prod(d, true)),
            std::slice::from_ref(&a),
            true,
        );
        check("cumprod", Box::new(move |v: &[Tensor]| v[0].cumprod(d)), &[a], true);
    }
}

#[test]
fn prod_and_cumprod_values_and_zero_rule() {
    let x = Tensor::from_slice(&[2.0f64, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 1.0, 2.0], [3, 3]).unwrap();
    assert_eq!(v64(&x.prod(1, false).unwrap()), vec![0.0, 0.0, 10.0]);
    assert_eq!(v64(&x.cumprod(1).unwrap()), vec![2.0, 0.0, 0.0, 4.0, 0.0, 0.0, 5.0, 5.0, 10.0]);
    // One zero: that element gets the product of the others; two zeros: all zero (torch's rule).
    let xg = x.requires_grad(true).unwrap();
    let g = xg.prod(1, false).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(v64(g.get(&xg).unwrap()), vec![0.0, 6.0, 0.0, 0.0, 0.0, 0.0, 2.0, 10.0, 5.0]);
    // Empty dim: the empty product is 1.
    let e = Tensor::zeros([2, 0], DType::F64).unwrap();
    assert_eq!(v64(&e.prod(1, false).unwrap()), vec![1.0, 1.0]);
    assert_eq!(e.cumprod(1).unwrap().dims(), &[2, 0]);
    assert!(x.prod(2, false).is_err());
    assert!(Tensor::from_vec(vec![1i64, 2], [2]).unwrap().prod(0, false).is_err());
}

#[test]
fn isnan_isinf_and_nan_to_num() {
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    let x = Tensor::from_slice(&[1.0f64, nan, inf, -inf, -2.0], [5]).unwrap();
    assert_eq!(x.isnan().unwrap().to_vec::<u8>().unwrap(), vec![0, 1, 0, 0, 0]);
    assert_eq!(x.isinf().unwrap().to_vec::<u8>().unwrap(), vec![0, 0, 1, 1, 0]);
    let i = Tensor::from_vec(vec![3i64, -1], [2]).unwrap();
    assert_eq!(i.isnan().unwrap().to_vec::<u8>().unwrap(), vec![0, 0]);
    assert_eq!(i.isinf().unwrap().to_vec::<u8>().unwrap(), vec![0, 0]);
    assert_eq!(
        v64(&x.nan_to_num(0.5, Some(9.0), Some(-9.0)).unwrap()),
        vec![1.0, 0.5, 9.0, -9.0, -2.0]
    );
    // torch's defaults: the dtype's largest finite values.
    assert_eq!(
        v64(&x.nan_to_num(0.0, None, None).unwrap()),
        vec![1.0, 0.0, f64::MAX, f64::MIN, -2.0]
    );
    let x32 = x.to_dtype(DType::F32).unwrap();
    assert_eq!(
        v64(&x32.nan_to_num(0.0, None, None).unwrap()),
        vec![1.0, 0.0, f32::MAX as f64, f32::MIN as f64, -2.0]
    );
    // The gradient passes at finite elements only.
    let xg = x.requires_grad(true).unwrap();
    let g = xg
        .nan_to_num(0.0, None, None)
        .unwrap()
        .mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(v64(g.get(&xg).unwrap()), vec![3.0, 0.0, 0.0, 0.0, 3.0]);
    assert!(i.nan_to_num(0.0, None, None).is_err());
    let a = rand(&[3, 4], -1.0, 1.0, 2000);
    check(
        "nan_to_num",
        Box::new(|v: &[Tensor]| v[0].nan_to_num(0.0, None, None)?.square()),
        &[a],
        true,
    );
}

#[test]
fn std_roll_repeat_first_and_second_order() {
    let a = rand(&[3, 4, 5], -1.0, 1.0, 2100);
    for (dims, c) in [(vec![1isize], 1usize), (vec![0, 2], 0), (vec![], 1)] {
        check(
            "std",
            Box::new(move |v: &[Tensor]| v[0].std(&dims, c, false)),
            std::slice::from_ref(&a),
            true,
        );
    }
    for (shift, d) in [(2i64, 0isize), (-1, 1), (13, 2), (i64::MIN, -1)] {
        check(
            "roll",
            Box::new(move |v: &[Tensor]| v[0].roll(shift, d)?.mul(&v[0])),
            std::slice::from_ref(&a),
            true,
        );
    }
    let b = rand(&[2, 3], -1.0, 1.0, 2101);
    for reps in [vec![2usize, 1], vec![3, 1, 2], vec![1, 1]] {
        check(
            "repeat",
            Box::new(move |v: &[Tensor]| v[0].repeat(&reps)?.square()),
            std::slice::from_ref(&b),
            true,
        );
    }
}

#[test]
fn roll_and_repeat_values_and_errors() {
    let x = seq(&[2, 3]);
    assert_eq!(v64(&x.roll(1, 1).unwrap()), vec![2.0, 0.0, 1.0, 5.0, 3.0, 4.0]);
    assert_eq!(v64(&x.roll(-4, 1).unwrap()), vec![1.0, 2.0, 0.0, 4.0, 5.0, 3.0]);
    assert_eq!(v64(&x.roll(3, 1).unwrap()), v64(&x));
    assert!(x.roll(1, 2).is_err());
    let r = x.repeat(&[2, 1, 2]).unwrap();
    assert_eq!(r.dims(), &[2, 2, 6]);
    assert_eq!(v64(&r)[..6], [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    let e = x.repeat(&[2]).unwrap_err().to_string();
    assert!(e.contains("repeat") && e.contains("[2, 3]"), "{e}");
    let e = x.repeat(&[usize::MAX, 1]).unwrap_err().to_string();
    assert!(e.contains("repeat") && e.contains("overflow"), "{e}");
    assert!(seq(&[3]).std(&[0], 3, false).is_err());
}
