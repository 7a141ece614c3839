//! Losses, optimisers and LR schedules against PyTorch fixtures.
mod common;
use common::*;
use kiln_core::{DType, Tensor, Var};
use kiln_nn::loss::*;
use kiln_nn::optim::*;
use kiln_nn::schedule::*;

fn reduction(s: &str) -> Reduction {
    match s {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        _ => Reduction::None,
    }
}

#[test]
fn losses_match_pytorch() {
    let f = fixture("losses.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 33);
    for c in cases {
        let name = format!("{} {} {}", c["loss"], c["kwargs"], c["reduction"]);
        let x = tensor(&c["input"], DType::F64).requires_grad(true).unwrap();
        let tdt = if c["target_dtype"] == "i64" { DType::I64 } else { DType::F64 };
        let t = tensor(&c["target"], tdt);
        let r = reduction(c["reduction"].as_str().unwrap());
        let kw = &c["kwargs"];
        let ce = CrossEntropyLoss {
            reduction: r,
            label_smoothing: kw["label_smoothing"].as_f64().unwrap_or(0.0),
            ignore_index: kw["ignore_index"].as_i64(),
            ..Default::default()
        };
        let out = match c["loss"].as_str().unwrap() {
            "mse" => mse_loss(&x, &t, r),
            "l1" => l1_loss(&x, &t, r),
            "smooth_l1" => smooth_l1_loss(&x, &t, kw["beta"].as_f64().unwrap(), r),
            "bce" => binary_cross_entropy(&x, &t, r),
            "bce_with_logits" => binary_cross_entropy_with_logits(&x, &t, r),
            "cross_entropy" => cross_entropy_with(&x, &t, &ce),
            "nll" => nll_loss_with(&x, &t, &ce),
            other => panic!("unknown loss {other}"),
        }
        .unwrap();
        assert_close(&name, &out, &c["output"], 1e-10);
        let go = tensor(&c["grad_output"], DType::F64);
        let grads = out.mul(&go).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&format!("{name} grad"), grads.get(&x).unwrap(), &c["grad_input"], 1e-10);
    }
}

#[test]
fn loss_errors_name_shapes() {
    let x = Tensor::zeros([3, 4], DType::F64).unwrap();
    let e = mse_loss(&x, &Tensor::zeros([4, 3], DType::F64).unwrap(), Reduction::Mean).unwrap_err();
    assert!(e.to_string().contains("[3, 4]") && e.to_string().contains("[4, 3]"), "{e}");
    let bad = Tensor::from_slice(&[0i64, 7, 1], [3]).unwrap();
    let e = cross_entropy(&x, &bad).unwrap_err();
    assert!(e.to_string().contains("target[1] = 7"), "{e}");
    let e = cross_entropy(&x, &Tensor::zeros([3], DType::F64).unwrap()).unwrap_err();
    assert!(e.to_string().contains("i64"), "{e}");
}

#[test]
fn bce_with_logits_is_finite_for_huge_logits() {
    let x = Tensor::from_slice(&[1000.0f64, -1000.0], [2]).unwrap();
    let t = Tensor::from_slice(&[0.0f64, 1.0], [2]).unwrap();
    let l = binary_cross_entropy_with_logits(&x, &t, Reduction::None).unwrap();
    assert_eq!(l.to_vec::<f64>().unwrap(), vec![1000.0, 1000.0]);
}

fn make_opt(name: &str, kw: &serde_json::Value, vars: Vec<Var>) -> Box<dyn Optimizer> {
    let lr = kw["lr"].as_f64().unwrap();
    let g = |k: &str, d: f64| kw[k].as_f64().unwrap_or(d);
    match name {
        "SGD" => Box::new(
            Sgd::new(vars, lr)
                .unwrap()
                .momentum(g("momentum", 0.0))
                .dampening(g("dampening", 0.0))
                .weight_decay(g("weight_decay", 0.0))
                .nesterov(kw["nesterov"].as_bool().unwrap_or(false))
                .unwrap(),
        ),
        "Adam" => Box::new(
            Adam::new(vars, lr)
                .unwrap()
                .weight_decay(g("weight_decay", 0.0))
                .amsgrad(kw["amsgrad"].as_bool().unwrap_or(false)),
        ),
        "AdamW" => {
            let mut a = AdamW::new(vars, lr).unwrap();
            a.weight_decay = g("weight_decay", 0.01);
            Box::new(a)
        }
        "RMSprop" => Box::new(
            RmsProp::new(vars, lr)
                .unwrap()
                .momentum(g("momentum", 0.0))
                .centered(kw["centered"].as_bool().unwrap_or(false)),
        ),
        "Adagrad" => Box::new(
            Adagrad::new(vars, lr)
                .unwrap()
                .lr_decay(g("lr_decay", 0.0))
                .weight_decay(g("weight_decay", 0.0)),
        ),
        other => panic!("unknown optimiser {other}"),
    }
}

#[test]
fn optimisers_match_pytorch_step_for_step() {
    let f = fixture("optim.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for c in cases {
        let name = format!("{} {}", c["optimizer"], c["kwargs"]);
        let vars: Vec<Var> = c["params0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Var::new(&tensor(p, DType::F64)))
            .collect();
        let mut opt = make_opt(c["optimizer"].as_str().unwrap(), &c["kwargs"], vars.clone());
        for (s, (gs, ps)) in c["grads"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["params"].as_array().unwrap())
            .enumerate()
        {
            // Build a Grads holding exactly the fixture gradients: d/dp sum(p * g) = g.
            let mut loss = Tensor::scalar(0.0f64);
            for (v, g) in vars.iter().zip(gs.as_array().unwrap()) {
                let term = v.tensor().mul(&tensor(g, DType::F64)).unwrap().sum_all().unwrap();
                loss = loss.add(&term).unwrap();
            }
            opt.backward_step(&loss).unwrap();
            for (i, (v, p)) in vars.iter().zip(ps.as_array().unwrap()).enumerate() {
                assert_close(&format!("{name} step {s} param {i}"), &v.tensor(), p, 1e-6);
                assert_close(&format!("{name} step {s} param {i} (tight)"), &v.tensor(), p, 1e-10);
            }
        }
    }
}

#[test]
fn frozen_and_gradless_params_are_skipped() {
    let a = Var::new(&Tensor::ones([2], DType::F64).unwrap());
    let b = Var::new(&Tensor::ones([2], DType::F64).unwrap());
    let c = Var::new(&Tensor::ones([2], DType::F64).unwrap());
    b.set_trainable(false);
    let mut opt = Sgd::new(vec![a.clone(), b.clone(), c.clone()], 0.5).unwrap();
    let loss = a.tensor().add(&b.tensor()).unwrap().sum_all().unwrap();
    opt.backward_step(&loss).unwrap();
    assert_eq!(a.tensor().to_vec::<f64>().unwrap(), vec![0.5, 0.5]);
    assert_eq!(b.tensor().to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
    assert_eq!(c.tensor().to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
}

#[test]
fn gradient_clipping_by_norm_and_value() {
    let a = Var::new(&Tensor::from_slice(&[1.0f64, 2.0], [2]).unwrap());
    let b = Var::new(&Tensor::from_slice(&[0.0f64], [1]).unwrap());
    // grads: a -> [3, 4] (via 3a0 + 4a1), b -> [12]
    let w = Tensor::from_slice(&[3.0f64, 4.0], [2]).unwrap();
    let loss = a
        .tensor()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .add(&b.tensor().mul_scalar(12.0).unwrap().sum_all().unwrap())
        .unwrap();
    let mut g = loss.backward().unwrap();
    let vars = [a.clone(), b.clone()];
    let norm = clip_grad_norm(&mut g, &vars, 6.5).unwrap();
    assert!((norm - 13.0).abs() < 1e-12);
    let ga = a.grad(&g).unwrap().to_vec::<f64>().unwrap();
    let coef = 6.5 / (13.0 + 1e-6);
    assert!((ga[0] - 3.0 * coef).abs() < 1e-12 && (ga[1] - 4.0 * coef).abs() < 1e-12);
    // Below the limit nothing changes.
    let n2 = clip_grad_norm(&mut g, &vars, 100.0).unwrap();
    assert!((n2 - 6.5).abs() < 1e-5);
    clip_grad_value(&mut g, &vars, 2.0).unwrap();
    assert_eq!(b.grad(&g).unwrap().to_vec::<f64>().unwrap(), vec![2.0]);
    assert!(clip_grad_value(&mut g, &vars, -1.0).is_err());
}

#[test]
fn schedules_match_pytorch() {
    let f = fixture("schedules.json");
    for c in f["cases"].as_array().unwrap() {
        let kw = &c["kwargs"];
        let base = c["base_lr"].as_f64().unwrap();
        let want: Vec<f64> = c["lrs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let name = c["scheduler"].as_str().unwrap();
        let got: Vec<f64> = if name == "ReduceLROnPlateau" {
            let mut s = ReduceLrOnPlateau::new(base);
            s.factor = kw["factor"].as_f64().unwrap();
            s.patience = kw["patience"].as_u64().unwrap() as usize;
            s.threshold = kw["threshold"].as_f64().unwrap();
            let metrics = c["metrics"].as_array().unwrap();
            let mut out = vec![s.lr()];
            for m in &metrics[..want.len() - 1] {
                out.push(s.step(m.as_f64().unwrap()));
            }
            out
        } else {
            let u = |k: &str| kw[k].as_u64().unwrap() as usize;
            let mut s: Box<dyn LrScheduler> = match name {
                "StepLR" => Box::new(StepLr::new(base, u("step_size"), kw["gamma"].as_f64().unwrap()).unwrap()),
                "ExponentialLR" => Box::new(ExponentialLr::new(base, kw["gamma"].as_f64().unwrap())),
                "CosineAnnealingLR" => Box::new(CosineAnnealingLr::new(base, u("T_max"), kw["eta_min"].as_f64().unwrap()).unwrap()),
                "CosineAnnealingWarmRestarts" => Box::new(CosineAnnealingWarmRestarts::new(base, u("T_0"), u("T_mult"), 0.0).unwrap()),
                "LinearLR" => Box::new(LinearLr::new(base, kw["start_factor"].as_f64().unwrap(), 1.0, u("total_iters"))),
                other => panic!("unknown scheduler {other}"),
            };
            (0..want.len())
                .map(|_| {
                    let lr = s.lr();
                    s.step();
                    lr
                })
                .collect()
        };
        for (e, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{name} epoch {e}: got {g}, want {w}");
        }
    }
}

#[test]
fn scheduler_drives_optimizer_lr() {
    let v = Var::new(&Tensor::ones([1], DType::F64).unwrap());
    let mut opt = Sgd::new(vec![v], 0.1).unwrap();
    let mut s = StepLr::new(0.1, 1, 0.5).unwrap();
    s.step_optimizer(&mut opt);
    assert!((opt.learning_rate() - 0.05).abs() < 1e-15);
}

/// A fixture float: a JSON number, or "nan" / "inf" / "-inf".
fn edge_num(v: &serde_json::Value) -> f64 {
    match v.as_str() {
        Some("nan") => f64::NAN,
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        Some(o) => panic!("unknown float {o}"),
        None => v.as_f64().unwrap(),
    }
}

fn edge_tensor(v: &serde_json::Value, dtype: DType) -> Tensor {
    let data: Vec<f64> = v["data"].as_array().unwrap().iter().map(edge_num).collect();
    Tensor::from_vec(data, shape(v)).unwrap().to_dtype(dtype).unwrap()
}

/// Element-wise: NaN matches NaN only, finite values within `tol` relative.
fn edge_close(name: &str, got: &Tensor, want: &serde_json::Value, tol: f64) {
    assert_eq!(got.dims(), shape(want).as_slice(), "{name}: shape");
    let w: Vec<f64> = want["data"].as_array().unwrap().iter().map(edge_num).collect();
    for (i, (a, b)) in got.to_vec_f64().unwrap().iter().zip(&w).enumerate() {
        let ok = if b.is_nan() {
            a.is_nan()
        } else {
            (a - b).abs() <= tol * (1.0 + b.abs())
        };
        assert!(ok, "{name}: element {i}: got {a}, want {b}");
    }
}

#[test]
fn losses_at_domain_edges_match_pytorch() {
    // fixtures/loss_edges.json (scripts/gen_nn_fixtures.py loss_edges): BCE at p = 0 and 1 (logs
    // clamped at -100, torch's bounded gradient of about ±1e12), p below the bound, and
    // cross-entropy / NLL with every target ignored (mean NaN with zero gradient, sum 0).
    let f = fixture("loss_edges.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for c in cases {
        let (dtype, tol) = if c["dtype"] == "f32" {
            (DType::F32, 1e-5)
        } else {
            (DType::F64, 1e-12)
        };
        let name = format!("{} {} {} {}", c["loss"], c["kwargs"], c["reduction"], c["dtype"]);
        let x = edge_tensor(&c["input"], dtype).requires_grad(true).unwrap();
        let t = if c["target_dtype"] == "i64" {
            tensor(&c["target"], DType::I64)
        } else {
            edge_tensor(&c["target"], dtype)
        };
        let r = reduction(c["reduction"].as_str().unwrap());
        let kw = &c["kwargs"];
        let ce = CrossEntropyLoss {
            reduction: r,
            label_smoothing: kw["label_smoothing"].as_f64().unwrap_or(0.0),
            ignore_index: kw["ignore_index"].as_i64(),
            ..Default::default()
        };
        let out = match c["loss"].as_str().unwrap() {
            "bce" => binary_cross_entropy(&x, &t, r),
            "cross_entropy" => cross_entropy_with(&x, &t, &ce),
            "nll" => nll_loss_with(&x, &t, &ce),
            other => panic!("unknown loss {other}"),
        }
        .unwrap();
        edge_close(&name, &out, &c["output"], tol);
        let go = edge_tensor(&c["grad_output"], dtype);
        let g = kiln_core::grad(&[out], Some(&[go]), std::slice::from_ref(&x), false).unwrap();
        edge_close(&format!("{name} grad"), g[0].as_ref().unwrap(), &c["grad_input"], tol);
    }
}

#[test]
fn bce_is_exact_inside_and_has_second_derivatives() {
    // Inside (0, 1) the loss is the plain expression, so gradcheck (first and second order)
    // holds there in f64; the targets are soft and hard.
    let p = Tensor::from_slice(&[0.1f64, 0.5, 0.9, 0.3, 0.999], [5]).unwrap();
    let t = Tensor::from_slice(&[0.0f64, 1.0, 0.3, 1.0, 0.0], [5]).unwrap();
    let f = |v: &[Tensor]| -> kiln_core::Result<Tensor> { Ok(binary_cross_entropy(&v[0], &t, Reduction::Sum)?) };
    let o = kiln_core::GradcheckOptions::default();
    kiln_core::gradcheck(f, std::slice::from_ref(&p), &o).unwrap();
    kiln_core::gradgradcheck(f, std::slice::from_ref(&p), &o).unwrap();
    // The target's gradient is log(1 - p) - log(p), as torch's.
    let tt = t.requires_grad(true).unwrap();
    let g = binary_cross_entropy(&p, &tt, Reduction::Sum).unwrap().backward().unwrap();
    let want: Vec<f64> = [0.1f64, 0.5, 0.9, 0.3, 0.999].iter().map(|p| (1.0 - p).ln() - p.ln()).collect();
    for (a, b) in g.get(&tt).unwrap().to_vec::<f64>().unwrap().iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}
