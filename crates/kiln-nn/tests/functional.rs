//! The activations and losses added for issue #11 against PyTorch fixtures (values, input
//! gradients, second-order gradients of the activations), f64 gradchecks, and shape errors.
mod common;
use common::*;
use kiln_core::{gradcheck, gradgradcheck, DType, GradcheckOptions, Tensor};
use kiln_nn::activation::*;
use kiln_nn::loss::*;
use kiln_nn::Module;
use serde_json::Value;

fn activation(c: &Value, x: &Tensor) -> kiln_nn::Result<Tensor> {
    let kw = &c["kwargs"];
    match c["activation"].as_str().unwrap() {
        "elu" => elu(x, kw["alpha"].as_f64().unwrap()),
        "selu" => selu(x),
        "hardtanh" => hardtanh(x, kw["min_val"].as_f64().unwrap(), kw["max_val"].as_f64().unwrap()),
        "hardswish" => hardswish(x),
        "mish" => mish(x),
        "logsigmoid" => logsigmoid(x),
        "softsign" => softsign(x),
        "glu" => glu(x, kw["dim"].as_i64().unwrap() as isize),
        other => panic!("unknown activation {other}"),
    }
}

#[test]
fn activations_match_pytorch_to_second_order() {
    let f = fixture("activations.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for c in cases {
        let name = format!("{} {}", c["activation"], c["kwargs"]);
        let x = tensor(&c["input"], DType::F64).requires_grad(true).unwrap();
        let out = activation(c, &x).unwrap();
        assert_close(&name, &out, &c["output"], 1e-12);
        let go = tensor(&c["grad_output"], DType::F64);
        let gi = kiln_core::grad(&[out], Some(&[go]), std::slice::from_ref(&x), true).unwrap()[0]
            .clone()
            .unwrap();
        assert_close(&format!("{name} grad"), &gi, &c["grad_input"], 1e-12);
        let v = tensor(&c["v"], DType::F64);
        let g2 = if gi.requires_grad_flag() {
            let s = gi.mul(&v).unwrap().sum_all().unwrap();
            kiln_core::grad(&[s], None, std::slice::from_ref(&x), false).unwrap()[0].clone()
        } else {
            None
        };
        let g2 = g2.unwrap_or_else(|| x.zeros_like().unwrap());
        assert_close(&format!("{name} grad2"), &g2, &c["grad2_input"], 1e-12);
    }
}

#[test]
fn activation_modules_apply_their_functions() {
    let x = Tensor::from_slice(&[-4.0f64, -3.0, -0.7, 0.0, 0.4, 3.0, 5.0, 30.0], [2, 4]).unwrap();
    let same = |m: &dyn Module, f: &dyn Fn(&Tensor) -> kiln_nn::Result<Tensor>| {
        assert_eq!(
            m.forward(&x).unwrap().to_vec::<f64>().unwrap(),
            f(&x).unwrap().to_vec::<f64>().unwrap()
        );
    };
    same(&ELU::default(), &|x| elu(x, 1.0));
    same(&ELU(0.3), &|x| elu(x, 0.3));
    same(&SELU, &selu);
    same(&Hardtanh::default(), &|x| hardtanh(x, -1.0, 1.0));
    same(&Hardswish, &hardswish);
    same(&Mish, &mish);
    same(&LogSigmoid, &logsigmoid);
    same(&Softsign, &softsign);
    same(&GLU::default(), &|x| glu(x, -1));
    same(&GLU(0), &|x| glu(x, 0));
}

#[test]
fn activations_gradcheck_first_and_second_order() {
    // Away from the kinks (|x| ≠ 0, ±1, ±3) the finite differences are valid on both sides.
    let x = Tensor::from_slice(&[-5.2f64, -2.6, -1.4, -0.3, 0.2, 0.9, 1.7, 2.8, 4.1, 26.0, -30.0, 0.55], [3, 4]).unwrap();
    let opts = GradcheckOptions::default();
    type F = fn(&Tensor) -> kiln_nn::Result<Tensor>;
    let fs: [(&str, F); 9] = [
        ("elu", |x| elu(x, 0.7)),
        ("selu", selu),
        ("hardtanh", |x| hardtanh(x, -2.0, 1.5)),
        ("hardswish", hardswish),
        ("mish", mish),
        ("logsigmoid", logsigmoid),
        ("softsign", softsign),
        ("glu0", |x| glu(&x.narrow(0, 0, 2)?, 0)),
        ("glu1", |x| glu(x, 1)),
    ];
    for (name, f) in fs {
        gradcheck(|v| Ok(f(&v[0])?), std::slice::from_ref(&x), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        gradgradcheck(|v| Ok(f(&v[0])?), std::slice::from_ref(&x), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn activations_stay_finite_at_extremes() {
    let x = Tensor::from_slice(&[-1000.0f64, 1000.0, -1e300, 1e300], [4])
        .unwrap()
        .requires_grad(true)
        .unwrap();
    for (name, f) in [
        ("elu", (|x: &Tensor| elu(x, 1.0)) as fn(&Tensor) -> kiln_nn::Result<Tensor>),
        ("selu", selu),
        ("mish", mish),
        ("logsigmoid", logsigmoid),
        ("softsign", softsign),
        ("hardswish", hardswish),
    ] {
        let y = f(&x).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let (yv, gv) = (y.to_vec::<f64>().unwrap(), g.get(&x).unwrap().to_vec::<f64>().unwrap());
        assert!(yv.iter().chain(&gv).all(|v| v.is_finite()), "{name}: {yv:?} {gv:?}");
    }
    let ls = logsigmoid(&Tensor::from_slice(&[-1000.0f64, 1000.0], [2]).unwrap()).unwrap();
    assert_eq!(ls.to_vec::<f64>().unwrap(), vec![-1000.0, 0.0]);
    // f32: the large-input branch of elu must not overflow through exp either.
    let x32 = Tensor::from_slice(&[100.0f32, -100.0], [2]).unwrap().requires_grad(true).unwrap();
    let g = elu(&x32, 1.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x32).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 0.0]);
}

#[test]
fn activation_errors_name_op_and_shape() {
    let x = Tensor::zeros([2, 5], DType::F64).unwrap();
    let e = glu(&x, 1).unwrap_err().to_string();
    assert!(e.contains("glu") && e.contains("[2, 5]") && e.contains("odd"), "{e}");
    let e = glu(&x, 2).unwrap_err().to_string();
    assert!(e.contains("glu") && e.contains("dim 2"), "{e}");
    let e = glu(&x, -3).unwrap_err().to_string();
    assert!(e.contains("glu") && e.contains("dim -3"), "{e}");
    assert!(glu(&Tensor::scalar(1.0f64), 0).is_err());
    let e = hardtanh(&x, 1.0, -1.0).unwrap_err().to_string();
    assert!(e.contains("hardtanh") && e.contains("[2, 5]"), "{e}");
    assert!(hardtanh(&x, f64::NAN, 1.0).is_err());
}

fn reduction(s: &str) -> Reduction {
    match s {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        _ => Reduction::None,
    }
}

fn kl_reduction(s: &str) -> KlDivReduction {
    match s {
        "batchmean" => KlDivReduction::BatchMean,
        other => reduction(other).into(),
    }
}

#[test]
fn losses2_match_pytorch() {
    let f = fixture("losses2.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 77);
    for c in cases {
        let name = format!(
            "{} {} {} {}",
            c["loss"],
            c["kwargs"],
            c["reduction"],
            c["tensors"].as_object().unwrap().len()
        );
        let x = tensor(&c["input"], DType::F64).requires_grad(true).unwrap();
        let tdt = if c["target_dtype"] == "i64" { DType::I64 } else { DType::F64 };
        let t = tensor(&c["target"], tdt);
        let rs = c["reduction"].as_str().unwrap();
        let r = reduction(rs);
        let kw = &c["kwargs"];
        let arg = |k: &str| (!c["tensors"][k].is_null()).then(|| tensor(&c["tensors"][k], DType::F64));
        let ce = CrossEntropyLoss {
            reduction: r,
            label_smoothing: kw["label_smoothing"].as_f64().unwrap_or(0.0),
            ignore_index: kw["ignore_index"].as_i64(),
            weight: arg("weight"),
        };
        let out = match c["loss"].as_str().unwrap() {
            "cross_entropy" => cross_entropy_with(&x, &t, &ce),
            "nll" => nll_loss_with(&x, &t, &ce),
            "bce_with_logits" => binary_cross_entropy_with_logits_with(
                &x,
                &t,
                &BCEWithLogitsLoss {
                    reduction: r,
                    weight: arg("weight"),
                    pos_weight: arg("pos_weight"),
                },
            ),
            "bce" => binary_cross_entropy_with(
                &x,
                &t,
                &BCELoss {
                    reduction: r,
                    weight: arg("weight"),
                },
            ),
            "kl_div" => kl_div(&x, &t, kl_reduction(rs), kw["log_target"].as_bool().unwrap()),
            "huber" => huber_loss(&x, &t, kw["delta"].as_f64().unwrap(), r),
            "smooth_l1" => smooth_l1_loss(&x, &t, kw["beta"].as_f64().unwrap(), r),
            other => panic!("unknown loss {other}"),
        }
        .unwrap();
        assert_close(&name, &out, &c["output"], 1e-10);
        let go = tensor(&c["grad_output"], DType::F64);
        let grads = out.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&format!("{name} grad"), grads.get(&x).unwrap(), &c["grad_input"], 1e-10);
    }
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape.to_vec(), 0.0, 1.0, DType::F64, &mut kiln_core::Rng::new(seed)).unwrap()
}

fn check(name: &str, f: impl Fn(&[Tensor]) -> kiln_nn::Result<Tensor>, inputs: &[Tensor]) {
    let opts = GradcheckOptions::default();
    let g = |v: &[Tensor]| Ok(f(v)?);
    gradcheck(g, inputs, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    gradgradcheck(g, inputs, &opts).unwrap_or_else(|e| panic!("{name} (second order): {e}"));
}

#[test]
fn losses2_gradcheck_first_and_second_order() {
    let w = Tensor::from_slice(&[0.3f64, 1.0, 2.5, 0.7], [4]).unwrap();
    let logits = randn(&[5, 4], 1);
    let idx = Tensor::from_slice(&[0i64, 3, 2, 1, 3], [5]).unwrap();
    for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let opts = CrossEntropyLoss {
            reduction: r,
            label_smoothing: 0.15,
            ignore_index: Some(1),
            weight: Some(w.clone()),
        };
        check(
            "weighted ce",
            |v| cross_entropy_with(&v[0], &v[1], &opts),
            &[logits.clone(), idx.clone()],
        );
        check(
            "weighted nll",
            |v| nll_loss_with(&v[0].log_softmax(1)?, &v[1], &opts),
            &[logits.clone(), idx.clone()],
        );
    }
    // [N, C, d1, d2] logits with index targets, and soft targets (differentiated too).
    let lk = randn(&[2, 4, 3, 2], 2);
    let tk = Tensor::from_slice(&[0i64, 1, 2, 3, 3, 2, 1, 0, 0, 2, 1, 3], [2, 3, 2]).unwrap();
    let opts = CrossEntropyLoss {
        label_smoothing: 0.1,
        weight: Some(w.clone()),
        ..Default::default()
    };
    check("k-dim ce", |v| cross_entropy_with(&v[0], &v[1], &opts), &[lk.clone(), tk]);
    let pk = randn(&[2, 4, 3, 2], 3).softmax(1).unwrap();
    check("soft ce", |v| cross_entropy_with(&v[0], &v[1], &opts), &[lk, pk]);
    // BCE with logits: input, target and both weights.
    let z = randn(&[4, 3], 4);
    let t = randn(&[4, 3], 5).sigmoid().unwrap();
    let pw = Tensor::from_slice(&[2.0f64, 0.5, 1.5], [3]).unwrap();
    let ew = randn(&[4, 3], 6).abs().unwrap();
    check(
        "bce_with_logits",
        |v| {
            let opts = BCEWithLogitsLoss {
                reduction: Reduction::Sum,
                weight: Some(v[3].clone()),
                pos_weight: Some(v[2].clone()),
            };
            binary_cross_entropy_with_logits_with(&v[0], &v[1], &opts)
        },
        &[z.clone(), t.clone(), pw, ew],
    );
    // KL divergence in both target forms; targets bounded away from 0.
    let li = randn(&[3, 5], 7).log_softmax(1).unwrap();
    let pt = randn(&[3, 5], 8).softmax(1).unwrap();
    check(
        "kl_div",
        |v| kl_div(&v[0], &v[1], KlDivReduction::BatchMean, false),
        &[li.clone(), pt.clone()],
    );
    check(
        "kl_div log",
        |v| kl_div(&v[0], &v[1], KlDivReduction::Mean, true),
        &[li, pt.log().unwrap()],
    );
    // Huber: differences away from 0 and ±delta.
    let xh = Tensor::from_slice(&[0.3f64, -0.6, 1.9, -2.4, 0.05, 0.8], [2, 3]).unwrap();
    check(
        "huber",
        |v| huber_loss(&v[0], &v[1], 0.5, Reduction::Mean),
        &[xh.clone(), xh.zeros_like().unwrap()],
    );
}

#[test]
fn kl_div_zero_targets_give_zero_terms_and_gradients() {
    let x = Tensor::from_slice(&[-1.0f64, -2.0], [2]).unwrap().requires_grad(true).unwrap();
    let t = Tensor::from_slice(&[0.0f64, 1.0], [2]).unwrap().requires_grad(true).unwrap();
    let l = kl_div(&x, &t, KlDivReduction::None, false).unwrap();
    assert_eq!(l.to_vec::<f64>().unwrap(), vec![0.0, 2.0]);
    let g = l.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![0.0, -1.0]);
    // d/dt [t·log t − t·x] = log t + 1 − x, taken as −x at t = 0 (finite, unlike torch's NaN).
    assert_eq!(g.get(&t).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 3.0]);
    let s = kl_div(&Tensor::scalar(-1.0f64), &Tensor::scalar(0.5f64), KlDivReduction::BatchMean, false).unwrap();
    assert!((s.item().unwrap() - 0.5 * (0.5f64.ln() + 1.0)).abs() < 1e-15);
}

#[test]
fn cross_entropy_options_compose() {
    // Unit weights equal no weights; the unbatched form equals a batch of one.
    let logits = randn(&[3, 4], 9);
    let y = Tensor::from_slice(&[2i64, 0, 3], [3]).unwrap();
    let plain = cross_entropy(&logits, &y).unwrap().item().unwrap();
    let ones = CrossEntropyLoss {
        weight: Some(Tensor::ones([4], DType::F64).unwrap()),
        ..Default::default()
    };
    assert!((cross_entropy_with(&logits, &y, &ones).unwrap().item().unwrap() - plain).abs() < 1e-14);
    let one = cross_entropy_with(&logits.select(0, 1).unwrap(), &Tensor::scalar(0i64), &ones).unwrap();
    assert_eq!(one.dims(), &[] as &[usize]);
    let batch = cross_entropy_with(&logits.narrow(0, 1, 1).unwrap(), &Tensor::from_slice(&[0i64], [1]).unwrap(), &ones).unwrap();
    assert!((one.item().unwrap() - batch.item().unwrap()).abs() < 1e-15);
    // Every target ignored, with weights: NaN and a zero gradient (PyTorch's).
    let x = logits.requires_grad(true).unwrap();
    let opts = CrossEntropyLoss {
        ignore_index: Some(-1),
        ..ones.clone()
    };
    let l = cross_entropy_with(&x, &Tensor::from_slice(&[-1i64, -1, -1], [3]).unwrap(), &opts).unwrap();
    assert!(l.item().unwrap().is_nan());
    let g = l.backward().unwrap();
    assert!(g.get(&x).unwrap().to_vec::<f64>().unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn bce_with_logits_gradient_at_zero_is_pytorchs() {
    // σ(0) − t = 0.5 − t; a relu/abs composition would give −t at exactly 0.
    let x = Tensor::from_slice(&[0.0f64, 0.0, 0.0], [3]).unwrap().requires_grad(true).unwrap();
    let t = Tensor::from_slice(&[0.0f64, 1.0, 0.25], [3]).unwrap();
    let g = binary_cross_entropy_with_logits(&x, &t, Reduction::Sum)
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![0.5, -0.5, 0.25]);
}

fn err(r: kiln_nn::Result<Tensor>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn loss_shape_errors_name_op_and_shapes() {
    let x = Tensor::zeros([3, 4], DType::F64).unwrap();
    let y = Tensor::from_slice(&[0i64, 1, 2], [3]).unwrap();
    let with_w = |w: Tensor| CrossEntropyLoss {
        weight: Some(w),
        ..Default::default()
    };
    let e = err(cross_entropy_with(&x, &y, &with_w(Tensor::ones([3], DType::F64).unwrap())));
    assert!(e.contains("cross_entropy") && e.contains("[3]") && e.contains("[3, 4]"), "{e}");
    let e = err(cross_entropy_with(&x, &y, &with_w(Tensor::ones([4], DType::F32).unwrap())));
    assert!(e.contains("cross_entropy") && e.contains("dtype"), "{e}");
    let e = err(nll_loss_with(&x, &y, &with_w(Tensor::ones([2, 2], DType::F64).unwrap())));
    assert!(e.contains("nll_loss") && e.contains("[2, 2]"), "{e}");
    // K-dim: the target must drop exactly the class dim.
    let xk = Tensor::zeros([2, 4, 3], DType::F64).unwrap();
    let e = err(cross_entropy(&xk, &Tensor::zeros([2, 4], DType::I64).unwrap()));
    assert!(
        e.contains("cross_entropy") && e.contains("[2, 4, 3]") && e.contains("[2, 4]") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = err(cross_entropy(&Tensor::scalar(1.0f64), &Tensor::scalar(0i64)));
    assert!(e.contains("cross_entropy") && e.contains("scalar"), "{e}");
    // Probability targets: shape, dtype, ignore_index.
    let e = err(cross_entropy(&x, &Tensor::zeros([3, 5], DType::F64).unwrap()));
    assert!(e.contains("cross_entropy") && e.contains("[3, 4]") && e.contains("[3, 5]"), "{e}");
    let e = err(cross_entropy(&x, &Tensor::zeros([3, 4], DType::F32).unwrap()));
    assert!(e.contains("cross_entropy") && e.contains("dtype"), "{e}");
    let ig = CrossEntropyLoss {
        ignore_index: Some(0),
        ..Default::default()
    };
    let e = err(cross_entropy_with(&x, &Tensor::zeros([3, 4], DType::F64).unwrap(), &ig));
    assert!(e.contains("ignore_index"), "{e}");
    let neg = CrossEntropyLoss {
        ignore_index: Some(-100),
        ..Default::default()
    };
    assert!(cross_entropy_with(&x, &Tensor::zeros([3, 4], DType::F64).unwrap(), &neg).is_ok());
    // BCE weights must broadcast onto the input without enlarging it.
    let t = Tensor::zeros([3, 4], DType::F64).unwrap();
    let bad = BCEWithLogitsLoss {
        pos_weight: Some(Tensor::ones([3], DType::F64).unwrap()),
        ..Default::default()
    };
    let e = err(binary_cross_entropy_with_logits_with(&x, &t, &bad));
    assert!(
        e.contains("binary_cross_entropy_with_logits") && e.contains("pos_weight [3]") && e.contains("[3, 4]"),
        "{e}"
    );
    let big = BCEWithLogitsLoss {
        weight: Some(Tensor::ones([2, 3, 4], DType::F64).unwrap()),
        ..Default::default()
    };
    let e = err(binary_cross_entropy_with_logits_with(&x, &t, &big));
    assert!(e.contains("weight [2, 3, 4]"), "{e}");
    let e = err(binary_cross_entropy_with(
        &x.sigmoid().unwrap(),
        &t,
        &BCELoss {
            weight: Some(Tensor::ones([5], DType::F64).unwrap()),
            ..Default::default()
        },
    ));
    assert!(e.contains("binary_cross_entropy") && e.contains("[5]"), "{e}");
    // KL and Huber.
    let e = err(kl_div(&x, &Tensor::zeros([4, 3], DType::F64).unwrap(), KlDivReduction::Sum, false));
    assert!(e.contains("kl_div") && e.contains("[3, 4]") && e.contains("[4, 3]"), "{e}");
    let e = err(huber_loss(&x, &t, 0.0, Reduction::Mean));
    assert!(e.contains("huber_loss") && e.contains("delta"), "{e}");
    assert!(huber_loss(&x, &t, f64::NAN, Reduction::Mean).is_err());
    let e = err(huber_loss(&x, &Tensor::zeros([4], DType::F64).unwrap(), 1.0, Reduction::Mean));
    assert!(e.contains("huber_loss") && e.contains("[4]"), "{e}");
}
