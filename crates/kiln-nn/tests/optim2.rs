//! NAdam, RAdam, Adamax, `maximize`, LBFGS and p-norm gradient clipping against PyTorch
//! (fixtures/optim2.json from `scripts/gen_nn_fixtures.py optim2`), plus the empty-parameter-list
//! error and state round trips.
mod common;
use common::*;
use kiln_core::{DType, Tensor, Var};
use kiln_nn::optim::*;
use serde_json::Value;
use std::collections::HashMap;

fn make_opt(name: &str, kw: &Value, vars: Vec<Var>) -> Box<dyn Optimizer> {
    let lr = kw["lr"].as_f64().unwrap();
    let g = |k: &str, d: f64| kw[k].as_f64().unwrap_or(d);
    let b = |k: &str| kw[k].as_bool().unwrap_or(false);
    let betas = |d: (f64, f64)| match kw["betas"].as_array() {
        Some(a) => (a[0].as_f64().unwrap(), a[1].as_f64().unwrap()),
        None => d,
    };
    let wd = g("weight_decay", 0.0);
    match name {
        "NAdam" => {
            let (b1, b2) = betas((0.9, 0.999));
            Box::new(
                NAdam::new(vars, lr)
                    .unwrap()
                    .betas(b1, b2)
                    .weight_decay(wd)
                    .momentum_decay(g("momentum_decay", 4e-3))
                    .decoupled_weight_decay(b("decoupled_weight_decay"))
                    .maximize(b("maximize")),
            )
        }
        "RAdam" => {
            let (b1, b2) = betas((0.9, 0.999));
            Box::new(
                RAdam::new(vars, lr)
                    .unwrap()
                    .betas(b1, b2)
                    .weight_decay(wd)
                    .decoupled_weight_decay(b("decoupled_weight_decay"))
                    .maximize(b("maximize")),
            )
        }
        "Adamax" => {
            let (b1, b2) = betas((0.9, 0.999));
            Box::new(
                Adamax::new(vars, lr)
                    .unwrap()
                    .betas(b1, b2)
                    .weight_decay(wd)
                    .maximize(b("maximize")),
            )
        }
        "SGD" => Box::new(
            Sgd::new(vars, lr)
                .unwrap()
                .momentum(g("momentum", 0.0))
                .weight_decay(wd)
                .maximize(b("maximize")),
        ),
        "Adam" => Box::new(Adam::new(vars, lr).unwrap().amsgrad(b("amsgrad")).maximize(b("maximize"))),
        "AdamW" => {
            let mut a = AdamW::new(vars, lr).unwrap().maximize(b("maximize"));
            a.weight_decay = g("weight_decay", 0.01);
            Box::new(a)
        }
        "RMSprop" => Box::new(RmsProp::new(vars, lr).unwrap().centered(b("centered")).maximize(b("maximize"))),
        "Adagrad" => Box::new(Adagrad::new(vars, lr).unwrap().maximize(b("maximize"))),
        other => panic!("unknown optimiser {other}"),
    }
}

/// Steps `opt` with exactly `gs` as gradients (d/dp Σ p·g = g).
fn step_with(opt: &mut dyn Optimizer, vars: &[Var], gs: &[Tensor]) {
    let mut loss = Tensor::scalar(0.0f64);
    for (v, g) in vars.iter().zip(gs) {
        loss = loss.add(&v.tensor().mul(g).unwrap().sum_all().unwrap()).unwrap();
    }
    opt.backward_step(&loss).unwrap();
}

#[test]
fn new_optimisers_and_maximize_match_pytorch_step_for_step() {
    let f = fixture("optim2.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 16);
    let mut worst = 0.0f64;
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
            let gs: Vec<Tensor> = gs.as_array().unwrap().iter().map(|g| tensor(g, DType::F64)).collect();
            step_with(opt.as_mut(), &vars, &gs);
            for (i, (v, p)) in vars.iter().zip(ps.as_array().unwrap()).enumerate() {
                let e = rel_err(&v.tensor(), p);
                assert!(e <= 1e-12, "{name} step {s} param {i}: relative error {e:e}");
                worst = worst.max(e);
            }
        }
    }
    eprintln!("optim2.json trajectories: largest relative error vs torch {worst:e}");
}

/// The fixture's LBFGS problem, `sign · (Σ(x y − b)² + 0.1 Σx⁴ + 0.5 Σy²)`.
fn lbfgs_loss(x: &Var, y: &Var, b: &Tensor, sign: f64) -> kiln_nn::Result<Tensor> {
    let (xt, yt) = (x.tensor(), y.tensor());
    let r = xt.matmul(&yt.reshape([4, 1])?)?.reshape([3])?.sub(b)?;
    let loss = r
        .square()?
        .sum_all()?
        .add(&xt.powf(4.0)?.sum_all()?.mul_scalar(0.1)?)?
        .add(&yt.square()?.sum_all()?.mul_scalar(0.5)?)?;
    Ok(loss.mul_scalar(sign)?)
}

/// `torch.optim.LBFGS([x, y], **kw)` over fresh copies of the fixture's starting point.
fn lbfgs_case(f: &Value, kw: &Value) -> (Lbfgs, Var, Var) {
    let prob = &f["lbfgs_problem"];
    let x = Var::new(&tensor(&prob["x0"], DType::F64));
    let y = Var::new(&tensor(&prob["y0"], DType::F64));
    let mut opt = Lbfgs::new(vec![x.clone(), y.clone()], kw["lr"].as_f64().unwrap_or(1.0)).unwrap();
    if let Some(n) = kw["max_iter"].as_u64() {
        opt = opt.max_iter(n as usize);
    }
    if let Some(n) = kw["history_size"].as_u64() {
        opt = opt.history_size(n as usize);
    }
    if kw["line_search_fn"] == "strong_wolfe" {
        opt = opt.line_search(LineSearch::StrongWolfe);
    }
    opt = opt.maximize(kw["maximize"].as_bool().unwrap_or(false));
    (opt, x, y)
}

/// Asserts the parameters and evaluation count after fixture step `s`; returns the largest error.
fn check_lbfgs_step(name: &str, s: usize, want: &Value, opt: &Lbfgs, x: &Var, y: &Var) -> f64 {
    assert_eq!(
        opt.func_evals() as u64,
        want["func_evals"].as_u64().unwrap(),
        "{name} step {s}: func_evals"
    );
    let mut worst = 0.0f64;
    for (v, p) in [x, y].iter().zip(want["params"].as_array().unwrap()) {
        let e = rel_err(&v.tensor(), p);
        assert!(e <= 1e-9, "{name} step {s}: parameter relative error {e:e}");
        worst = worst.max(e);
    }
    worst
}

#[test]
fn lbfgs_matches_pytorch() {
    let f = fixture("optim2.json");
    let b = tensor(&f["lbfgs_problem"]["b"], DType::F64);
    let mut worst = 0.0f64;
    for c in f["lbfgs"].as_array().unwrap() {
        let name = c["kwargs"].to_string();
        let (mut opt, x, y) = lbfgs_case(&f, &c["kwargs"]);
        let sign = c["sign"].as_f64().unwrap();
        let mut closure = || lbfgs_loss(&x, &y, &b, sign);
        for (s, want) in c["steps"].as_array().unwrap().iter().enumerate() {
            // Through the Optimizer trait (PyTorch's `optimizer.step(closure)`), which is
            // `Lbfgs::step` for L-BFGS.
            let loss = Optimizer::step_closure(&mut opt, &mut closure).unwrap();
            let wl = want["loss"].as_f64().unwrap();
            let le = (loss - wl).abs() / (1.0 + wl.abs());
            assert!(le <= 1e-9, "{name} step {s}: loss {loss} vs {wl}");
            worst = worst.max(le).max(check_lbfgs_step(&name, s, want, &opt, &x, &y));
        }
    }
    eprintln!("optim2.json LBFGS: largest relative error vs torch {worst:e}");
}

#[test]
fn lbfgs_as_a_gradient_optimizer_matches_pytorch_one_iteration_steps() {
    let f = fixture("optim2.json");
    let b = tensor(&f["lbfgs_problem"]["b"], DType::F64);
    let c = f["lbfgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kwargs"]["max_iter"] == 1)
        .expect("a max_iter=1 case");
    let (mut opt, x, y) = lbfgs_case(&f, &c["kwargs"]);
    let steps = c["steps"].as_array().unwrap();
    // The first three steps through `backward_step` (the trait's gradient path), like any optimiser.
    assert_eq!(Optimizer::vars(&opt).len(), 2);
    for (s, want) in steps[..3].iter().enumerate() {
        opt.backward_step(&lbfgs_loss(&x, &y, &b, 1.0).unwrap()).unwrap();
        check_lbfgs_step("max_iter=1 via Optimizer::backward_step", s, want, &opt, &x, &y);
    }
    // The state survives a checkpoint: a fresh optimiser loaded from it continues identically.
    let state: HashMap<String, Tensor> = opt.state_tensors().into_iter().collect();
    for k in [
        "func_evals",
        "n_iter",
        "d",
        "t",
        "H_diag",
        "prev_flat_grad",
        "old_dirs",
        "old_stps",
        "ro",
    ] {
        assert!(state.contains_key(k), "state lacks {k}");
    }
    assert_eq!(
        state["old_dirs"].dims(),
        &[2, 16],
        "two curvature pairs after three steps, 12 + 4 elements"
    );
    let (mut fresh, x2, y2) = lbfgs_case(&f, &c["kwargs"]);
    x2.set(&x.tensor()).unwrap();
    y2.set(&y.tensor()).unwrap();
    fresh.load_state_tensors(&state).unwrap();
    for (s, want) in steps.iter().enumerate().skip(3) {
        let g = lbfgs_loss(&x2, &y2, &b, 1.0).unwrap().backward().unwrap();
        Optimizer::step(&mut fresh, &g).unwrap();
        check_lbfgs_step("max_iter=1 after load_state_tensors", s, want, &fresh, &x2, &y2);
    }
    // A default LBFGS (20 iterations) cannot step from gradients alone; the error says why.
    let (mut many, x3, y3) = lbfgs_case(&f, &Value::Null);
    let g = lbfgs_loss(&x3, &y3, &b, 1.0).unwrap().backward().unwrap();
    let e = Optimizer::step(&mut many, &g).unwrap_err().to_string();
    assert!(
        e.starts_with("LBFGS::step:") && e.contains("max_iter is 20") && e.contains("closure"),
        "{e}"
    );
    // Shapes that do not fit the parameters are refused by name.
    let mut bad = state.clone();
    bad.insert("d".into(), Tensor::zeros([3], DType::F64).unwrap());
    let e = fresh.load_state_tensors(&bad).unwrap_err().to_string();
    assert!(e.contains("`d` has shape [3]") && e.contains("[16]"), "{e}");
    bad.insert("momentum_buffer".into(), Tensor::zeros([3], DType::F64).unwrap());
    assert!(fresh
        .load_state_tensors(&bad)
        .unwrap_err()
        .to_string()
        .contains("unknown state tensor"));
}

#[test]
fn step_closure_of_a_first_order_optimizer_is_one_backward_step() {
    let f = fixture("optim2.json");
    let b = tensor(&f["lbfgs_problem"]["b"], DType::F64);
    let (_, x, y) = lbfgs_case(&f, &Value::Null);
    let (_, x2, y2) = lbfgs_case(&f, &Value::Null);
    let mut a = Adam::new(vec![x.clone(), y.clone()], 0.01).unwrap();
    let mut c = Adam::new(vec![x2.clone(), y2.clone()], 0.01).unwrap();
    for _ in 0..3 {
        let before = lbfgs_loss(&x, &y, &b, 1.0).unwrap().item().unwrap();
        let got = a.step_closure(&mut || lbfgs_loss(&x, &y, &b, 1.0)).unwrap();
        assert_eq!(got, before, "step_closure returns the loss before the update");
        c.backward_step(&lbfgs_loss(&x2, &y2, &b, 1.0).unwrap()).unwrap();
    }
    assert_eq!(x.tensor().to_vec_f64().unwrap(), x2.tensor().to_vec_f64().unwrap());
    let e = a.step_closure(&mut || Ok(x.tensor())).unwrap_err().to_string();
    assert!(e.contains("scalar loss") && e.contains("[3, 4]"), "{e}");
}

#[test]
fn clip_grad_norm_types_match_pytorch() {
    let f = fixture("optim2.json");
    for c in f["clip_grad_norm"].as_array().unwrap() {
        let nt = match &c["norm_type"] {
            Value::String(s) if s == "inf" => f64::INFINITY,
            v => v.as_f64().unwrap(),
        };
        let gs: Vec<Tensor> = c["grads"].as_array().unwrap().iter().map(|g| tensor(g, DType::F64)).collect();
        let vars: Vec<Var> = gs.iter().map(|g| Var::new(&g.zeros_like().unwrap())).collect();
        let mut loss = Tensor::scalar(0.0f64);
        for (v, g) in vars.iter().zip(&gs) {
            loss = loss.add(&v.tensor().mul(g).unwrap().sum_all().unwrap()).unwrap();
        }
        let mut grads = loss.backward().unwrap();
        let total = clip_grad_norm_p(&mut grads, &vars, c["max_norm"].as_f64().unwrap(), nt).unwrap();
        let want = c["total_norm"].as_f64().unwrap();
        assert!((total - want).abs() <= 1e-12 * want, "norm_type {nt}: {total} vs {want}");
        for (v, w) in vars.iter().zip(c["clipped"].as_array().unwrap()) {
            assert!(rel_err(v.grad(&grads).unwrap(), w) <= 1e-12, "norm_type {nt}");
        }
    }
    let v = Var::new(&Tensor::ones([2], DType::F64).unwrap());
    let mut g = v.tensor().sum_all().unwrap().backward().unwrap();
    for bad in [0.0, -1.0, f64::NAN] {
        let e = clip_grad_norm_p(&mut g, std::slice::from_ref(&v), 1.0, bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("clip_grad_norm: norm_type must be positive or infinite"), "{e}");
    }
    // A NaN gradient gives a NaN infinity norm (f64::max alone would hide it).
    let nan = Tensor::from_slice(&[f64::NAN, 1.0], [2]).unwrap();
    let mut g = v.tensor().mul(&nan).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(clip_grad_norm_p(&mut g, &[v], 1.0, f64::INFINITY).unwrap().is_nan());
}

#[test]
fn empty_parameter_lists_are_refused() {
    let errs = [
        Sgd::new(vec![], 0.1).err().map(|e| e.to_string()),
        Adam::new(vec![], 0.1).err().map(|e| e.to_string()),
        AdamW::new(vec![], 0.1).err().map(|e| e.to_string()),
        RmsProp::new(vec![], 0.1).err().map(|e| e.to_string()),
        Adagrad::new(vec![], 0.1).err().map(|e| e.to_string()),
        NAdam::new(vec![], 0.1).err().map(|e| e.to_string()),
        RAdam::new(vec![], 0.1).err().map(|e| e.to_string()),
        Adamax::new(vec![], 0.1).err().map(|e| e.to_string()),
        Lbfgs::new(vec![], 0.1).err().map(|e| e.to_string()),
    ];
    let names = ["SGD", "Adam", "Adam", "RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax", "LBFGS"];
    for (e, n) in errs.iter().zip(names) {
        assert_eq!(e.as_deref(), Some(format!("{n}: optimizer got an empty parameter list").as_str()));
    }
}

#[test]
fn nadam_state_round_trip_keeps_mu_product() {
    let mut rng = kiln_core::Rng::new(3);
    let p0 = Tensor::randn([4], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let gs: Vec<Tensor> = (0..6)
        .map(|_| Tensor::randn([4], 0.0, 1.0, DType::F64, &mut rng).unwrap())
        .collect();
    let a = Var::new(&p0);
    let mut oa = NAdam::new(vec![a.clone()], 0.01).unwrap();
    for g in &gs[..3] {
        step_with(&mut oa, std::slice::from_ref(&a), std::slice::from_ref(g));
    }
    let st: HashMap<String, Tensor> = oa.state_tensors().into_iter().collect();
    assert!(st.contains_key("0.mu_product") && st["0.mu_product"].rank() == 0);
    let b = Var::new(&a.tensor());
    let mut ob = NAdam::new(vec![b.clone()], 0.01).unwrap();
    ob.load_state_tensors(&st).unwrap();
    for g in &gs[3..] {
        step_with(&mut oa, std::slice::from_ref(&a), std::slice::from_ref(g));
        step_with(&mut ob, std::slice::from_ref(&b), std::slice::from_ref(g));
    }
    assert_eq!(a.tensor().to_vec::<f64>().unwrap(), b.tensor().to_vec::<f64>().unwrap());
    // Without the saved state the continuation differs (the test would catch a dropped mu_product).
    let c = Var::new(&p0);
    let mut oc = NAdam::new(vec![c.clone()], 0.01).unwrap();
    for g in &gs[..3] {
        step_with(&mut oc, std::slice::from_ref(&c), std::slice::from_ref(g));
    }
    let mut st2 = st.clone();
    st2.remove("0.mu_product");
    let d = Var::new(&c.tensor());
    let mut od = NAdam::new(vec![d.clone()], 0.01).unwrap();
    od.load_state_tensors(&st2).unwrap();
    for g in &gs[3..] {
        step_with(&mut od, std::slice::from_ref(&d), std::slice::from_ref(g));
    }
    assert_ne!(a.tensor().to_vec::<f64>().unwrap(), d.tensor().to_vec::<f64>().unwrap());
}
