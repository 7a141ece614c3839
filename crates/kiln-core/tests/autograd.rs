//! Behaviour of the autodiff engine: long chains, grad modes, accumulation, higher order, errors.

use kiln_core::{detect_anomaly, grad, no_grad, DType, Error, Tensor, Var};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape.to_vec()).unwrap()
}

#[test]
fn hundred_thousand_op_chain_neither_overflows_on_backward_nor_on_drop() {
    // Run on a thread with a small stack: a recursive engine or drop would overflow here.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let x = t(&[1.0], &[1]).requires_grad(true).unwrap();
            let mut y = x.clone();
            for _ in 0..50_000 {
                y = y.mul_scalar(1.00001).unwrap().add_scalar(0.0).unwrap();
            }
            let g = y.backward().unwrap();
            let want = 1.00001f64.powi(50_000);
            let got = g.get(&x).unwrap().to_vec::<f64>().unwrap()[0];
            assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
            drop(y);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn w2_chain_gradient() {
    let x = Tensor::from_slice(&[1.0f32], [1]).unwrap().requires_grad(true).unwrap();
    let mut y = x.clone();
    for _ in 0..1000 {
        y = y.affine(1.0001, 0.0).unwrap().add_scalar(0.0001).unwrap();
    }
    let g = y.backward().unwrap().get(&x).unwrap().to_vec::<f32>().unwrap()[0];
    assert!((g - 1.10517).abs() < 1e-4, "{g}");
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let x = t(&[2.0], &[1]).requires_grad(true).unwrap();
    let y = no_grad(|| x.square().unwrap());
    assert!(!y.requires_grad_flag());
    let err = y.backward().unwrap_err();
    assert!(matches!(err, Error::Backward(_)), "{err}");
    let z = x.square().unwrap().detach().mul(&x).unwrap();
    // d/dx (c * x) with c = x² held constant = c = 4
    let g = z.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![4.0]);
}

#[test]
fn shared_subexpressions_accumulate() {
    // y = x*x + x*x*x, dy/dx = 2x + 3x² at x=3 → 33
    let x = t(&[3.0], &[1]).requires_grad(true).unwrap();
    let sq = x.mul(&x).unwrap();
    let y = sq.add(&sq.mul(&x).unwrap()).unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![33.0]);
}

#[test]
fn gradients_accumulate_across_backward_calls() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad(true).unwrap();
    let mut total = x.square().unwrap().sum_all().unwrap().backward().unwrap();
    let second = x.mul_scalar(3.0).unwrap().sum_all().unwrap().backward().unwrap();
    total.accumulate(second).unwrap();
    assert_eq!(total.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![5.0, 7.0]);
}

#[test]
fn backward_needs_a_seed_for_non_scalars() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad(true).unwrap();
    let y = x.mul_scalar(2.0).unwrap();
    let err = y.backward().unwrap_err().to_string();
    assert_eq!(
        err,
        "backward: grad can be implicitly created only for one-element outputs, this one has shape [2]; use backward_with(seed)"
    );
    let g = y.backward_with(&t(&[1.0, -1.0], &[2])).unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![2.0, -2.0]);
    let bad = y.backward_with(&t(&[1.0], &[1])).unwrap_err().to_string();
    assert!(bad.contains("seed of shape [1]"), "{bad}");
}

#[test]
fn hessian_vector_product_and_third_derivative() {
    // f(x) = Σ x_i³ x_j (i≠j-free form: f = (Σx³)(Σx)); check H·v by hand.
    let x = t(&[1.0, 2.0], &[2]).requires_grad(true).unwrap();
    let f = x.powf(3.0).unwrap().sum_all().unwrap().mul(&x.sum_all().unwrap()).unwrap();
    let g = grad(&[f], None, std::slice::from_ref(&x), true).unwrap()[0].clone().unwrap();
    // ∂f/∂x_k = 3x_k² S1 + S3, with S1 = Σx = 3, S3 = Σx³ = 9 → [18, 45]
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![18.0, 45.0]);
    let v = t(&[1.0, -1.0], &[2]);
    let hv = grad(&[g.mul(&v).unwrap().sum_all().unwrap()], None, std::slice::from_ref(&x), true).unwrap()[0]
        .clone()
        .unwrap();
    // H_kl = 6x_k S1 δ_kl + 3x_k² + 3x_l²  → H = [[18+6, 3+12],[15, 36+24]] = [[24,15],[15,60]]; H·v = [9, -45]
    assert_eq!(hv.to_vec::<f64>().unwrap(), vec![9.0, -45.0]);
    let third = grad(&[hv.sum_all().unwrap()], None, std::slice::from_ref(&x), false).unwrap()[0]
        .clone()
        .unwrap();
    // d/dx_m Σ_k (H v)_k, computed by hand: [6*S1*v0 + 6x0(v·1)+... ] → verify against finite differences
    let eps = 1e-6;
    let hv_sum = |x0: f64, x1: f64| {
        let s1 = x0 + x1;
        let h = [
            [6.0 * x0 * s1 + 6.0 * x0 * x0, 3.0 * x0 * x0 + 3.0 * x1 * x1],
            [3.0 * x0 * x0 + 3.0 * x1 * x1, 6.0 * x1 * s1 + 6.0 * x1 * x1],
        ];
        (h[0][0] - h[0][1]) + (h[1][0] - h[1][1])
    };
    let want = [
        (hv_sum(1.0 + eps, 2.0) - hv_sum(1.0 - eps, 2.0)) / (2.0 * eps),
        (hv_sum(1.0, 2.0 + eps) - hv_sum(1.0, 2.0 - eps)) / (2.0 * eps),
    ];
    let got = third.to_vec::<f64>().unwrap();
    for k in 0..2 {
        assert!((got[k] - want[k]).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

#[test]
fn grad_of_an_intermediate_and_unused_inputs() {
    let x = t(&[2.0], &[1]).requires_grad(true).unwrap();
    let u = t(&[5.0], &[1]).requires_grad(true).unwrap();
    let h = x.square().unwrap();
    let y = h.mul_scalar(3.0).unwrap().sum_all().unwrap();
    let gs = grad(&[y], None, &[h.clone(), x.clone(), u.clone()], false).unwrap();
    assert_eq!(gs[0].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![3.0]);
    assert_eq!(gs[1].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![12.0]);
    assert!(gs[2].is_none());
}

#[test]
fn first_order_backward_records_no_graph() {
    let x = t(&[2.0], &[1]).requires_grad(true).unwrap();
    let g = x.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert!(!g.get(&x).unwrap().requires_grad_flag());
    let g2 = grad(&[x.square().unwrap().sum_all().unwrap()], None, std::slice::from_ref(&x), true).unwrap();
    assert!(g2[0].as_ref().unwrap().requires_grad_flag());
}

#[test]
fn anomaly_mode_names_the_op() {
    let x = t(&[-1.0, 4.0], &[2]).requires_grad(true).unwrap();
    // Without anomaly mode the NaN flows silently.
    assert!(x.sqrt().unwrap().to_vec::<f64>().unwrap()[0].is_nan());
    let err = detect_anomaly(|| x.sqrt().map(|_| ())).unwrap_err();
    assert_eq!(err.to_string(), "anomaly: the forward of `sqrt` produced NaN or Inf");
    // A finite forward with an infinite derivative: sqrt at 0.
    let z = t(&[0.0, 4.0], &[2]).requires_grad(true).unwrap();
    let err = detect_anomaly(|| z.sqrt()?.sum_all()?.backward().map(|_| ())).unwrap_err();
    assert_eq!(err.to_string(), "anomaly: the backward of `sqrt` produced a NaN or Inf gradient");
}

#[test]
fn var_updates_keep_identity_and_old_graphs_keep_old_values() {
    let w = Var::new(&t(&[1.0, 2.0], &[2]));
    let before = w.tensor();
    let loss = before.square().unwrap().sum_all().unwrap();
    w.set(&t(&[10.0, 20.0], &[2])).unwrap();
    let g = loss.backward().unwrap();
    // The gradient is keyed by the Var's id and computed from the values the graph saw.
    assert_eq!(w.grad(&g).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
    assert_eq!(w.tensor().to_vec::<f64>().unwrap(), vec![10.0, 20.0]);
    let err = w.set(&t(&[1.0], &[1])).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    w.set_trainable(false);
    assert!(!w.tensor().requires_grad_flag());
}

#[test]
fn mixed_dtypes_promote_as_torch_and_gradients_keep_each_dtype() {
    // torch.promote_types: f32 + f64 -> f64, and each operand's gradient in its own dtype.
    let a = Tensor::ones([2], DType::F32).unwrap().requires_grad(true).unwrap();
    let b = Tensor::full([2], 2.0, DType::F64).unwrap().requires_grad(true).unwrap();
    let y = a.mul(&b).unwrap();
    assert_eq!(y.dtype(), DType::F64);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&a).unwrap().dtype(), DType::F32);
    assert_eq!(g.get(&a).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 2.0]);
    assert_eq!(g.get(&b).unwrap().dtype(), DType::F64);
    // Comparisons promote too; matmul does not (torch requires one dtype there).
    assert_eq!(a.lt(&b).unwrap().to_vec::<u8>().unwrap(), vec![1, 1]);
    let m = Tensor::ones([1, 2], DType::F64).unwrap();
    assert_eq!(
        a.reshape([2, 1]).unwrap().matmul(&m).unwrap_err().to_string(),
        "matmul: dtypes differ: f32 and f64"
    );
    // u8 + u8 has nothing to promote to and stays an error naming the op and dtype.
    let u = Tensor::ones([2], DType::U8).unwrap();
    assert!(u.add(&u).unwrap_err().to_string().starts_with("add: expected dtype"));
}

#[test]
fn gradients_at_edges_match_pytorch() {
    // clamp: torch 2.15 passes the gradient strictly inside (min, max) only: exactly at a bound,
    // and at NaN, it is 0 (checked against torch in fixtures/edges.json, see torch_edges.rs).
    let x = t(&[-1.0, 0.0, 0.5, 1.0, 2.0, f64::NAN], &[6]).requires_grad(true).unwrap();
    let g = x.clamp(0.0, 1.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    // relu: NaN passes through forward and passes the gradient (torch's threshold_backward zeroes
    // only x <= 0); 0 gets 0.
    let x = t(&[f64::NAN, 0.0, 2.0], &[3]).requires_grad(true).unwrap();
    let y = x.relu().unwrap();
    assert!(y.to_vec::<f64>().unwrap()[0].is_nan());
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0, 1.0]);
    // pow at base 0: d/db of 0^b is masked to 0 for b >= 0 (not 0 * log 0 = NaN), and d/da is 0
    // where b = 0 (not 0 * 0^-1 = NaN), as torch's pow_backward_self / pow_backward_exponent.
    let a = t(&[0.0, 0.0, 2.0, 0.0], &[4]).requires_grad(true).unwrap();
    let b = t(&[2.0, 0.0, 3.0, 0.5], &[4]).requires_grad(true).unwrap();
    let g = a.pow(&b).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>().unwrap(), vec![0.0, 0.0, 12.0, f64::INFINITY]);
    let gb = g.get(&b).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(gb[..3], [0.0, 0.0, 8.0 * 2f64.ln()]);
    assert_eq!(gb[3], 0.0);
    // A negative exponent at base 0 is not masked: torch also gives inf * -inf there.
    let a = t(&[0.0], &[1]).requires_grad(true).unwrap();
    let b = t(&[-1.0], &[1]).requires_grad(true).unwrap();
    let g = a.pow(&b).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&b).unwrap().to_vec::<f64>().unwrap(), vec![f64::NEG_INFINITY]);
}

#[test]
fn requires_grad_is_refused_on_non_leaves_and_integer_tensors() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad(true).unwrap();
    let y = x.exp().unwrap();
    // Making y a new leaf would silently cut it from x's graph.
    assert_eq!(
        y.requires_grad(true).unwrap_err().to_string(),
        "requires_grad: the tensor of shape [2] is the result of `exp`, not a leaf: gradients already flow through it; call detach() first to make a new leaf"
    );
    // Deliberately starting a new leaf works, and gradients stop there.
    let y2 = y.detach().requires_grad(true).unwrap();
    let g = y2.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).is_none());
    assert_eq!(
        g.get(&y2).unwrap().to_vec::<f64>().unwrap(),
        vec![2.0 * 1f64.exp(), 2.0 * 2f64.exp()]
    );
    // `false` is a detach, allowed on anything.
    assert!(!y.requires_grad(false).unwrap().requires_grad_flag());
    // Results computed under no_grad are leaves.
    let z = no_grad(|| x.exp()).unwrap();
    assert!(z.requires_grad(true).unwrap().requires_grad_flag());
    for dtype in [DType::I64, DType::U8] {
        let i = Tensor::zeros([2], dtype).unwrap();
        assert_eq!(
            i.requires_grad(true).unwrap_err().to_string(),
            format!("requires_grad: expected dtype f16, bf16, f32 or f64 (only floating-point tensors can require gradients), got {dtype}")
        );
        assert!(i.requires_grad(false).is_ok());
    }
}

#[test]
fn max_dim_routes_the_gradient_to_one_index_and_amax_splits_it() {
    let x = t(&[1.0, 3.0, 3.0, 2.0, 5.0, 5.0, 0.0, 5.0], &[2, 4]).requires_grad(true).unwrap();
    let (v, i) = x.max_dim(1, false).unwrap();
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![3.0, 5.0]);
    // The first index among ties, as PyTorch's CPU `max(dim)`.
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 0]);
    assert!(!i.requires_grad_flag());
    let g = v.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    );
    // `max` keeps amax semantics: ties share the gradient.
    let g = x.max(&[1], false).unwrap().sum_all().unwrap().backward().unwrap();
    let third = 1.0 / 3.0;
    assert_eq!(
        g.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 0.5, 0.5, 0.0, third, third, 0.0, third]
    );
    let (v, i) = x.min_dim(0, true).unwrap();
    assert_eq!(v.dims(), &[1, 4]);
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![1.0, 3.0, 0.0, 2.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 0, 1, 0]);
    // Under no_grad nothing is recorded.
    let (v, _) = no_grad(|| x.max_dim(1, false)).unwrap();
    assert!(!v.requires_grad_flag());
}

#[test]
fn argmax_all_and_empty_dims() {
    let x = t(&[1.0, 3.0, 3.0, 0.0, 0.0, 2.0], &[2, 3]);
    let a = x.argmax_all().unwrap();
    assert_eq!(a.rank(), 0);
    assert_eq!(a.to_scalar::<i64>().unwrap(), 1);
    assert_eq!(x.argmin_all().unwrap().to_scalar::<i64>().unwrap(), 3);
    // NaN counts as the extreme for both, the first NaN wins (as in torch).
    let n = t(&[1.0, f64::NAN, 2.0, f64::NAN], &[4]);
    assert_eq!(n.argmax_all().unwrap().to_scalar::<i64>().unwrap(), 1);
    assert_eq!(n.argmin_all().unwrap().to_scalar::<i64>().unwrap(), 1);
    // Integer tensors too.
    let i = Tensor::from_vec(vec![4i64, 9, 9, -1], [2, 2]).unwrap();
    assert_eq!(i.argmax_all().unwrap().to_scalar::<i64>().unwrap(), 1);
    let (v, idx) = i.max_dim(1, false).unwrap();
    assert_eq!((v.to_vec::<i64>().unwrap(), idx.to_vec::<i64>().unwrap()), (vec![9, 9], vec![1, 0]));
    // An empty dimension has no extreme: an error naming the op, not an out-of-bounds read.
    let e = Tensor::zeros([3, 0], DType::F64).unwrap();
    assert_eq!(
        e.argmax(1, false).unwrap_err().to_string(),
        "argmax: cannot reduce the empty dimension 1 of shape [3, 0]"
    );
    assert_eq!(
        e.argmin_all().unwrap_err().to_string(),
        "argmin: cannot reduce the empty dimension 0 of shape [0]"
    );
    assert_eq!(
        e.max_dim(-1, false).unwrap_err().to_string(),
        "max_dim: cannot reduce the empty dimension 1 of shape [3, 0]"
    );
    assert_eq!(
        e.min_dim(2, false).unwrap_err().to_string(),
        "min_dim: dimension 2 is out of range for a tensor of shape [3, 0]"
    );
    // Reducing the non-empty dim of an empty tensor is fine: no rows.
    assert_eq!(e.argmax(0, false).unwrap().dims(), &[0]);
}

mod grad_mode_on_workers {
    use super::t;
    use kiln_core::{is_grad_enabled, no_grad, set_anomaly_detection, GradMode, Tensor};
    use rayon::prelude::*;

    fn pool() -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
    }

    #[test]
    fn without_the_helper_workers_record_graphs() {
        // The documented pitfall: no_grad is per thread, and a pool's workers keep their own
        // (grad-enabled) mode, so tensors computed there still carry graphs.
        let w = t(&[2.0], &[1]).requires_grad(true).unwrap();
        let ys: Vec<Tensor> = no_grad(|| pool().install(|| (0..8).into_par_iter().map(|i| w.mul_scalar(i as f64).unwrap()).collect()));
        assert!(ys.iter().all(|y| y.requires_grad_flag()));
    }

    #[test]
    fn gradmode_carries_no_grad_into_rayon_workers() {
        let w = t(&[2.0], &[1]).requires_grad(true).unwrap();
        let pool = pool();
        let (ys, on_workers): (Vec<Tensor>, Vec<bool>) = no_grad(|| {
            let mode = GradMode::current();
            assert!(!mode.grad_enabled);
            pool.install(|| {
                (0..64)
                    .into_par_iter()
                    .map(mode.wrap(|i| (w.mul_scalar(i as f64).unwrap().exp().unwrap(), is_grad_enabled())))
                    .unzip()
            })
        });
        assert_eq!(ys.len(), 64);
        assert!(ys.iter().all(|y| !y.requires_grad_flag() && y.is_leaf()));
        assert!(on_workers.iter().all(|&on| !on));
        // The values are still computed.
        assert_eq!(ys[1].to_vec::<f64>().unwrap(), vec![2f64.exp()]);
        // The workers' own mode is restored afterwards.
        let after: Vec<bool> = pool.install(|| (0..8).into_par_iter().map(|_| is_grad_enabled()).collect());
        assert!(after.iter().all(|&on| on));
        // `run` in a for_each, and outside no_grad the token records as usual.
        let mode = GradMode::current();
        assert!(mode.grad_enabled);
        let recorded: Vec<bool> = pool.install(|| {
            (0..8)
                .into_par_iter()
                .map(|i| mode.run(|| w.mul_scalar(i as f64).unwrap().requires_grad_flag()))
                .collect()
        });
        assert!(recorded.iter().all(|&r| r));
    }

    #[test]
    fn gradmode_carries_anomaly_mode_too() {
        let x = Tensor::from_slice(&[0.0f64], [1]).unwrap();
        let mode = {
            let _a = set_anomaly_detection(true);
            GradMode::current()
        };
        assert!(mode.anomaly);
        let errs: Vec<bool> = pool().install(|| (0..4).into_par_iter().map(mode.wrap(|_| x.log().is_err())).collect());
        assert!(errs.iter().all(|&e| e), "log(0) = -inf is an anomaly on every worker");
    }
}
