//! The second batch of issue #11's ops against central finite differences in f64, first and
//! second order (outer, einsum, sort / topk values, masked_select, scatter, index_put,
//! roll_dims), plus the exact behaviour finite differences cannot see: stable tie order, NaN
//! placement, last-write-wins scatters, the 0/1 results of the logical ops.

use kiln_core::{grad, gradcheck, gradgradcheck, DType, GradcheckOptions, Result, Rng, Tensor};

type F = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;

fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), lo, hi, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn check(name: &str, f: F, inputs: &[Tensor]) {
    let opts = GradcheckOptions::default();
    if let Err(e) = gradcheck(&f, inputs, &opts) {
        panic!("{name}: {e}");
    }
    if let Err(e) = gradgradcheck(&f, inputs, &opts) {
        panic!("{name} (second order): {e}");
    }
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

fn i64s(t: &Tensor) -> Vec<i64> {
    t.to_vec::<i64>().unwrap()
}

fn idx(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape.to_vec()).unwrap()
}

fn f64s(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape.to_vec()).unwrap()
}

#[test]
fn outer_first_and_second_order() {
    check(
        "outer",
        Box::new(|v: &[Tensor]| v[0].outer(&v[1])),
        &[rand(&[3], -1.0, 1.0, 2000), rand(&[4], -1.0, 1.0, 2001)],
    );
    let i = idx(&[1, 2], &[2]);
    assert_eq!(i64s(&i.outer(&i).unwrap()), vec![1, 2, 2, 4]);
}

#[test]
fn einsum_agrees_with_the_ops_it_names() {
    let a = rand(&[3, 4], -1.0, 1.0, 2010);
    let b = rand(&[4, 5], -1.0, 1.0, 2011);
    let sq = rand(&[4, 4], -1.0, 1.0, 2012);
    let close = |x: &Tensor, y: &Tensor| {
        assert_eq!(x.dims(), y.dims());
        for (p, q) in v64(x).iter().zip(v64(y)) {
            assert!((p - q).abs() < 1e-12, "{p} vs {q}");
        }
    };
    close(&Tensor::einsum("ij,jk->ik", &[&a, &b]).unwrap(), &a.matmul(&b).unwrap());
    close(&Tensor::einsum("ij,jk", &[&a, &b]).unwrap(), &a.matmul(&b).unwrap());
    close(&Tensor::einsum("ij->ji", &[&a]).unwrap(), &a.t().unwrap());
    close(&Tensor::einsum("ji", &[&a]).unwrap(), &a.t().unwrap());
    close(&Tensor::einsum("ij->", &[&a]).unwrap(), &a.sum_all().unwrap());
    close(&Tensor::einsum("ij->j", &[&a]).unwrap(), &a.sum(&[0], false).unwrap());
    let diag: Vec<f64> = (0..4).map(|i| v64(&sq)[i * 5]).collect();
    assert_eq!(v64(&Tensor::einsum("ii->i", &[&sq]).unwrap()), diag);
    let trace = Tensor::einsum("ii", &[&sq]).unwrap();
    assert_eq!(trace.rank(), 0);
    assert!((trace.item().unwrap() - diag.iter().sum::<f64>()).abs() < 1e-12);
    let (x, y) = (rand(&[3], -1.0, 1.0, 2013), rand(&[4], -1.0, 1.0, 2014));
    close(&Tensor::einsum("i,j->ij", &[&x, &y]).unwrap(), &x.outer(&y).unwrap());
    // The implicit output is in ASCII order: upper case first, as in torch.
    let p = rand(&[2, 3], -1.0, 1.0, 2015);
    let q = rand(&[2, 4], -1.0, 1.0, 2016);
    close(&Tensor::einsum("bA,bc", &[&p, &q]).unwrap(), &p.t().unwrap().matmul(&q).unwrap());
    close(&Tensor::einsum("bz,bA", &[&p, &q]).unwrap(), &q.t().unwrap().matmul(&p).unwrap());
    // A size-1 dim broadcasts against the same label elsewhere.
    let col = rand(&[3, 1], -1.0, 1.0, 2017);
    let row = rand(&[1, 4], -1.0, 1.0, 2018);
    close(&Tensor::einsum("ij,ij->ij", &[&col, &row]).unwrap(), &col.mul(&row).unwrap());
}

#[test]
fn einsum_first_and_second_order() {
    type Case = (&'static str, Vec<Vec<usize>>);
    let cases: Vec<Case> = vec![
        ("ij,jk->ik", vec![vec![3, 4], vec![4, 2]]),
        ("bij,bjk->bik", vec![vec![2, 3, 4], vec![2, 4, 2]]),
        ("bi,bj,ij->b", vec![vec![3, 4], vec![3, 2], vec![4, 2]]),
        ("bn,anm,bm->ba", vec![vec![2, 3], vec![2, 3, 2], vec![2, 2]]),
        ("iij,jk->ik", vec![vec![3, 3, 2], vec![2, 2]]),
        ("i,j->ij", vec![vec![3], vec![2]]),
        ("ij,ij->", vec![vec![3, 1], vec![1, 4]]),
        ("ab,bc,cd->da", vec![vec![2, 3], vec![3, 2], vec![2, 3]]),
        ("...ij,...jk->...ik", vec![vec![2, 1, 2, 3], vec![3, 3, 2]]),
        ("a...b,...b", vec![vec![2, 3, 2], vec![1, 2]]),
    ];
    for (i, (spec, shapes)) in cases.into_iter().enumerate() {
        let xs: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(j, s)| rand(s, -1.0, 1.0, 2100 + 10 * i as u64 + j as u64))
            .collect();
        check(spec, Box::new(move |v: &[Tensor]| Tensor::einsum(spec, v)), &xs);
    }
    // Single-operand specs are linear: square the result so the second order is not trivial.
    for (i, spec) in ["ii->i", "ii->", "iii->i", "ijk->kj", "...ii->...i", "...ij->j"]
        .into_iter()
        .enumerate()
    {
        let shape: &[usize] = match spec {
            "iii->i" | "...ii->...i" => &[3, 3, 3],
            "...ij->j" => &[2, 2, 3],
            "ijk->kj" => &[2, 3, 4],
            _ => &[4, 4],
        };
        let a = rand(shape, -1.0, 1.0, 2200 + i as u64);
        check(spec, Box::new(move |v: &[Tensor]| Tensor::einsum(spec, v)?.square()), &[a]);
    }
    // A transposed (strided) operand.
    let a = rand(&[4, 3], -1.0, 1.0, 2210);
    let b = rand(&[4, 2], -1.0, 1.0, 2211);
    check(
        "ij,jk->ik (transposed)",
        Box::new(|v: &[Tensor]| Tensor::einsum("ij,jk->ik", &[v[0].t()?, v[1].clone()])),
        &[a, b],
    );
}

#[test]
fn einsum_quadratic_form_has_the_exact_hessian() {
    // f(x) = xᵀAx: ∇f = (A + Aᵀ)x and ∇²f = A + Aᵀ, through einsum's graph at both orders.
    let a = f64s(&[1.0, 2.0, -1.0, 0.5, 3.0, 0.0, 2.0, -2.0, 1.0], &[3, 3]);
    let x = f64s(&[0.5, -1.0, 2.0], &[3]).requires_grad(true).unwrap();
    let f = Tensor::einsum("i,ij,j->", &[&x, &a, &x]).unwrap();
    let g = grad(&[f], None, std::slice::from_ref(&x), true).unwrap()[0].clone().unwrap();
    let sym = a.add(&a.t().unwrap()).unwrap();
    let near = |p: &Tensor, q: &Tensor| v64(p).iter().zip(v64(q)).all(|(a, b)| (a - b).abs() < 1e-12);
    assert!(near(&g, &sym.matmul(&x.detach()).unwrap()), "gradient {:?}", v64(&g));
    for r in 0..3 {
        let h = grad(&[g.select(0, r).unwrap()], None, std::slice::from_ref(&x), true).unwrap()[0]
            .clone()
            .unwrap();
        assert!(near(&h, &sym.select(0, r).unwrap()), "Hessian row {r}: {:?}", v64(&h));
    }
}

#[test]
fn sort_is_stable_and_puts_nan_last() {
    let nan = f64::NAN;
    let x = f64s(&[2.0, nan, -1.0, 2.0, f64::INFINITY, -1.0, nan, 0.0], &[8]);
    let (v, i) = x.sort(0, false).unwrap();
    assert_eq!(i64s(&i), vec![2, 5, 7, 0, 3, 4, 1, 6]);
    assert_eq!(&v64(&v)[..6], &[-1.0, -1.0, 0.0, 2.0, 2.0, f64::INFINITY]);
    assert!(v64(&v)[6..].iter().all(|x| x.is_nan()));
    // Descending keeps equal elements in their original order too; NaN comes first.
    let (_, i) = x.sort(0, true).unwrap();
    assert_eq!(i64s(&i), vec![1, 6, 4, 0, 3, 7, 2, 5]);
    assert_eq!(i64s(&x.argsort(-1, true).unwrap()), vec![1, 6, 4, 0, 3, 7, 2, 5]);
    // Along dim 0 of a strided view, in i64, and over an empty dim.
    let m = idx(&[3, 1, 2, 1, 1, 0], &[2, 3]);
    let (v, i) = m.t().unwrap().sort(0, false).unwrap();
    assert_eq!((v.dtype(), v.dims()), (DType::I64, &[3usize, 2][..]));
    assert_eq!(i64s(&v), vec![1, 0, 2, 1, 3, 1]);
    assert_eq!(i64s(&i), vec![1, 2, 2, 0, 0, 1]);
    let (v, i) = Tensor::zeros([2, 0], DType::F32).unwrap().sort(1, false).unwrap();
    assert_eq!((v.dims(), i.dims()), (&[2usize, 0][..], &[2usize, 0][..]));
    // A rank-0 tensor is one element.
    let (v, i) = Tensor::scalar(4.0f64).sort(-1, true).unwrap();
    assert_eq!((v.rank(), v.item().unwrap(), i.item().unwrap()), (0, 4.0, 0.0));
    assert!(Tensor::scalar(4.0f64).sort(1, true).is_err());
}

#[test]
fn topk_values_ties_and_k() {
    let x = f64s(&[1.0, 5.0, f64::NAN, 5.0, -2.0, 3.0], &[2, 3]);
    let (v, i) = x.topk(2, 1, true, true).unwrap();
    // NaN counts as the largest.
    assert_eq!(i64s(&i), vec![2, 1, 0, 2]);
    assert!(v64(&v)[0].is_nan());
    assert_eq!(v64(&v)[1..], [5.0, 5.0, 3.0]);
    let (v, i) = x.topk(2, 1, false, false).unwrap();
    assert_eq!((v64(&v), i64s(&i)), (vec![1.0, 5.0, -2.0, 3.0], vec![0, 1, 1, 2]));
    // Ties: the earlier element first, whichever direction.
    let t = f64s(&[1.0, 2.0, 2.0, 1.0, 2.0], &[5]);
    assert_eq!(i64s(&t.topk(3, 0, true, true).unwrap().1), vec![1, 2, 4]);
    assert_eq!(i64s(&t.topk(3, 0, false, true).unwrap().1), vec![0, 3, 1]);
    let (v, _) = t.topk(0, 0, true, true).unwrap();
    assert_eq!(v.dims(), &[0]);
    assert_eq!(v64(&t.topk(5, 0, true, true).unwrap().0), vec![2.0, 2.0, 2.0, 1.0, 1.0]);
}

#[test]
fn sort_and_topk_first_and_second_order() {
    // Continuous random values are distinct, so the sort is locally fixed and differentiable.
    for (i, (shape, d, desc)) in [
        (vec![6], 0isize, false),
        (vec![3, 4], 1, true),
        (vec![3, 4], 0, false),
        (vec![2, 3, 4], -1, true),
    ]
    .into_iter()
    .enumerate()
    {
        let a = rand(&shape, -2.0, 2.0, 2300 + i as u64);
        check("sort", Box::new(move |v: &[Tensor]| v[0].sort(d, desc)?.0.square()), &[a]);
    }
    for (i, (shape, k, d, largest)) in [(vec![6], 2usize, 0isize, true), (vec![3, 5], 3, 1, false), (vec![4, 3], 4, 0, true)]
        .into_iter()
        .enumerate()
    {
        let a = rand(&shape, -2.0, 2.0, 2400 + i as u64);
        check(
            "topk",
            Box::new(move |v: &[Tensor]| v[0].topk(k, d, largest, true)?.0.square()),
            &[a],
        );
    }
    let a = rand(&[4, 3], -2.0, 2.0, 2410);
    check(
        "sort (transposed)",
        Box::new(|v: &[Tensor]| v[0].t()?.sort(1, false)?.0.square()),
        &[a],
    );
}

#[test]
fn logical_ops_are_masks_without_gradients() {
    let a = f64s(&[0.0, 1.0, f64::NAN, 0.0, -0.0, 2.0], &[2, 3]).requires_grad(true).unwrap();
    let b = Tensor::from_slice(&[1u8, 0, 1], [3]).unwrap();
    let u8s = |t: Tensor| -> Vec<u8> {
        assert!(!t.requires_grad_flag(), "logical results carry no graph");
        t.to_vec::<u8>().unwrap()
    };
    assert_eq!(u8s(a.logical_and(&b).unwrap()), vec![0, 0, 1, 0, 0, 1]);
    assert_eq!(u8s(a.logical_or(&b).unwrap()), vec![1, 1, 1, 1, 0, 1]);
    assert_eq!(u8s(a.logical_xor(&b).unwrap()), vec![1, 1, 0, 1, 0, 0]);
    assert_eq!(u8s(a.logical_not().unwrap()), vec![1, 0, 0, 1, 1, 0]);
    assert_eq!(u8s(a.any(1, false).unwrap()), vec![1, 1]);
    assert_eq!(u8s(a.all(1, true).unwrap()), vec![0, 0]);
    assert_eq!(u8s(a.any(0, false).unwrap()), vec![0, 1, 1]);
    assert_eq!(u8s(a.all(-2, false).unwrap()), vec![0, 0, 1]);
    assert_eq!((u8s(a.any_all().unwrap()), u8s(a.all_all().unwrap())), (vec![1], vec![0]));
    assert_eq!(a.any(1, true).unwrap().dims(), &[2, 1]);
    // Empty reductions: any is false, all is true, as in torch.
    let e = Tensor::zeros([3, 0], DType::F32).unwrap();
    assert_eq!(
        (u8s(e.any(1, false).unwrap()), u8s(e.all(1, false).unwrap())),
        (vec![0; 3], vec![1; 3])
    );
    assert_eq!((u8s(e.any_all().unwrap()), u8s(e.all_all().unwrap())), (vec![0], vec![1]));
    // More than 255 ones must not wrap around in the count.
    let ones = Tensor::ones([300], DType::U8).unwrap();
    assert_eq!(
        (u8s(ones.all(0, false).unwrap()), u8s(ones.any(0, false).unwrap())),
        (vec![1], vec![1])
    );
}

#[test]
fn nonzero_and_masked_select() {
    let x = f64s(&[0.0, 1.5, 0.0, f64::NAN, -2.0, 0.0], &[2, 3]);
    let nz = x.nonzero().unwrap();
    assert_eq!((nz.dtype(), nz.dims()), (DType::I64, &[3usize, 2][..]));
    assert_eq!(i64s(&nz), vec![0, 1, 1, 0, 1, 1]);
    assert_eq!(Tensor::zeros([4], DType::F32).unwrap().nonzero().unwrap().dims(), &[0, 1]);
    assert_eq!(Tensor::scalar(3i64).nonzero().unwrap().dims(), &[1, 0]);
    assert_eq!(i64s(&x.t().unwrap().nonzero().unwrap()), vec![0, 1, 1, 0, 1, 1]);
    let m = Tensor::from_slice(&[1u8, 0, 1], [3]).unwrap();
    let s = x.masked_select(&m).unwrap();
    assert_eq!(v64(&s)[..2], [0.0, 0.0]);
    assert!(v64(&s)[2].is_nan() && v64(&s)[3] == 0.0);
    // masked_select's gradient: the mask positions (summed over broadcast copies), zero elsewhere.
    let row = f64s(&[1.0, 2.0, 3.0], &[1, 3]).requires_grad(true).unwrap();
    let mask = Tensor::from_slice(&[1u8, 0, 1, 1, 0, 0], [2, 3]).unwrap();
    let y = row.masked_select(&mask).unwrap();
    assert_eq!(v64(&y), vec![1.0, 3.0, 1.0]);
    let g = y
        .mul(&f64s(&[1.0, 10.0, 100.0], &[3]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(v64(g.get(&row).unwrap()), vec![101.0, 0.0, 10.0]);
    let a = rand(&[3, 4], -1.0, 1.0, 2500);
    let mask = Tensor::from_slice(&[1u8, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0], [3, 4]).unwrap();
    let m2 = mask.clone();
    check(
        "masked_select",
        Box::new(move |v: &[Tensor]| v[0].masked_select(&m2)?.square()),
        &[a],
    );
    let a = rand(&[1, 4], -1.0, 1.0, 2501);
    check(
        "masked_select (broadcast input)",
        Box::new(move |v: &[Tensor]| v[0].masked_select(&mask)?.square()),
        &[a],
    );
}

#[test]
fn scatter_values_duplicates_and_gradients() {
    let x = Tensor::zeros([2, 4], DType::F64).unwrap();
    let src = f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    // Row 0 writes column 1 twice: the last write (3.0) wins.
    let i = idx(&[1, 3, 1, 0, 2, 3], &[2, 3]);
    let y = x.scatter(1, &i, &src).unwrap();
    assert_eq!(v64(&y), vec![0.0, 3.0, 0.0, 2.0, 4.0, 0.0, 5.0, 6.0]);
    // Integer tensors scatter too.
    let yi = idx(&[0; 4], &[4]).scatter(0, &idx(&[2], &[1]), &idx(&[7], &[1])).unwrap();
    assert_eq!(i64s(&yi), vec![0, 0, 7, 0]);
    // Gradients are torch's even with duplicates: nothing to the overwritten positions of x,
    // and each duplicate source gets the gradient of the position it was sent to.
    let xg = x.requires_grad(true).unwrap();
    let sg = src.requires_grad(true).unwrap();
    let w = f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[2, 4]);
    let gs = xg
        .scatter(1, &i, &sg)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(v64(gs.get(&xg).unwrap()), vec![1.0, 0.0, 3.0, 0.0, 0.0, 6.0, 0.0, 0.0]);
    assert_eq!(v64(gs.get(&sg).unwrap()), vec![2.0, 4.0, 2.0, 5.0, 7.0, 8.0]);
    // Unique targets: first and second order, for both inputs; a source larger than the index
    // gets zeros past the index's extent.
    let cases = [
        (1isize, vec![3, 5], vec![3, 2], vec![4i64, 0, 1, 3, 2, 1], vec![3usize, 2]),
        (0, vec![4, 3], vec![3, 4], vec![3, 0, 1, 0, 2, 2], vec![2, 3]),
    ];
    for (k, (d, xs, ss, iv, is)) in cases.into_iter().enumerate() {
        let index = idx(&iv, &is);
        let a = rand(&xs, -1.0, 1.0, 2600 + k as u64);
        let b = rand(&ss, -1.0, 1.0, 2610 + k as u64);
        check(
            "scatter",
            Box::new(move |v: &[Tensor]| v[0].scatter(d, &index, &v[1])?.square()),
            &[a, b],
        );
    }
}

#[test]
fn index_put_values_and_gradients() {
    let x = Tensor::zeros([4, 2], DType::F64).unwrap();
    let rows = idx(&[3, 1, 3], &[3]);
    let v = f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
    // Without accumulate, row 3 named twice keeps the last values; with it, they add up.
    assert_eq!(
        v64(&x.index_put(std::slice::from_ref(&rows), &v, false).unwrap()),
        vec![0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 6.0]
    );
    assert_eq!(
        v64(&x.index_put(std::slice::from_ref(&rows), &v, true).unwrap()),
        vec![0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 6.0, 8.0]
    );
    // Two index tensors pick single elements; a length-1 index broadcasts; values broadcast.
    let y = x
        .index_put(&[idx(&[0, 2], &[2]), idx(&[1], &[1])], &Tensor::scalar(9.0f64), false)
        .unwrap();
    assert_eq!(v64(&y), vec![0.0, 9.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0]);
    let empty = x.index_put(&[idx(&[], &[0])], &f64s(&[1.0, 2.0], &[2]), false).unwrap();
    assert_eq!(v64(&empty), v64(&x));
    // Integer tensors without accumulate.
    let xi = idx(&[0; 3], &[3]).index_put(&[idx(&[2], &[1])], &idx(&[5], &[1]), false).unwrap();
    assert_eq!(i64s(&xi), vec![0, 0, 5]);
    type Case = (Vec<usize>, Vec<Tensor>, Vec<usize>, bool);
    let cases: Vec<Case> = vec![
        (vec![5, 3], vec![idx(&[0, 2, 4], &[3])], vec![3, 3], false),
        (vec![5, 3], vec![idx(&[1, 1, 3], &[3])], vec![3], true),
        (vec![4, 5, 2], vec![idx(&[0, 3, 2], &[3]), idx(&[1, 4, 0], &[3])], vec![3, 2], false),
        (vec![4, 5], vec![idx(&[2], &[1]), idx(&[0, 3, 4], &[3])], vec![1], true),
    ];
    for (k, (xs, ind, vs, acc)) in cases.into_iter().enumerate() {
        let a = rand(&xs, -1.0, 1.0, 2700 + k as u64);
        let b = rand(&vs, -1.0, 1.0, 2710 + k as u64);
        check(
            "index_put",
            Box::new(move |v: &[Tensor]| v[0].index_put(&ind, &v[1], acc)?.square()),
            &[a, b],
        );
    }
}

#[test]
fn roll_dims_values_and_gradients() {
    let x = Tensor::arange(0.0, 12.0, 1.0, DType::F64).unwrap().reshape([3, 4]).unwrap();
    let y = x.roll_dims(&[1, -1], &[0, 1]).unwrap();
    assert_eq!(v64(&y), vec![9.0, 10.0, 11.0, 8.0, 1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 7.0, 4.0]);
    // Shifts along a repeated dim add up.
    assert_eq!(v64(&x.roll_dims(&[1, 2], &[1, -1]).unwrap()), v64(&x.roll(3, 1).unwrap()));
    let a = rand(&[2, 3, 4], -1.0, 1.0, 2800);
    check(
        "roll_dims",
        Box::new(|v: &[Tensor]| v[0].roll_dims(&[5, -1], &[2, 0])?.mul(&v[0])),
        &[a],
    );
}

#[test]
fn reductions_of_a_rank0_tensor() {
    // einsum's "ij,ij->" returns a rank-0 tensor; summing one used to underflow `rank - 1` in
    // the reduce kernel (a panic in debug builds).
    let s = Tensor::scalar(2.5f64);
    assert_eq!(s.sum_all().unwrap().item().unwrap(), 2.5);
    assert_eq!(s.max_all().unwrap().item().unwrap(), 2.5);
    assert_eq!(s.mean_all().unwrap().item().unwrap(), 2.5);
}
