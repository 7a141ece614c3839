//! MultiStepLR and OneCycleLR against PyTorch (fixtures/schedules2.json from
//! `scripts/gen_nn_fixtures.py schedules2`).
mod common;
use common::*;
use kiln_nn::schedule::*;

#[test]
fn multistep_and_one_cycle_match_pytorch() {
    let f = fixture("schedules2.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    let mut worst = 0.0f64;
    for c in cases {
        let kw = &c["kwargs"];
        let name = format!("{} {}", c["scheduler"], kw);
        let series = |k: &str| -> Vec<f64> { c[k].as_array().map_or(vec![], |a| a.iter().map(|v| v.as_f64().unwrap()).collect()) };
        let (want_lr, want_mom) = (series("lrs"), series("momentums"));
        let f64_or = |k: &str, d: f64| kw[k].as_f64().unwrap_or(d);
        let (mut lrs, mut moms) = (vec![], vec![]);
        match c["scheduler"].as_str().unwrap() {
            "MultiStepLR" => {
                let ms: Vec<usize> = kw["milestones"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                let mut s = MultiStepLr::new(c["base_lr"].as_f64().unwrap(), &ms, kw["gamma"].as_f64().unwrap());
                for _ in 0..want_lr.len() {
                    lrs.push(s.lr());
                    s.step();
                }
            }
            "OneCycleLR" => {
                let total = match kw["total_steps"].as_u64() {
                    Some(t) => t as usize,
                    None => (kw["epochs"].as_u64().unwrap() * kw["steps_per_epoch"].as_u64().unwrap()) as usize,
                };
                let d = OneCycleLrConfig::default();
                let cfg = OneCycleLrConfig {
                    pct_start: f64_or("pct_start", d.pct_start),
                    anneal_strategy: if kw["anneal_strategy"] == "linear" {
                        AnnealStrategy::Linear
                    } else {
                        AnnealStrategy::Cos
                    },
                    base_momentum: f64_or("base_momentum", d.base_momentum),
                    max_momentum: f64_or("max_momentum", d.max_momentum),
                    div_factor: f64_or("div_factor", d.div_factor),
                    final_div_factor: f64_or("final_div_factor", d.final_div_factor),
                    three_phase: kw["three_phase"].as_bool().unwrap_or(false),
                };
                let mut s = OneCycleLr::with_config(kw["max_lr"].as_f64().unwrap(), total, &cfg).unwrap();
                for _ in 0..want_lr.len() {
                    lrs.push(s.lr());
                    moms.push(s.momentum());
                    s.step();
                }
                if want_mom.is_empty() {
                    moms.clear();
                }
            }
            other => panic!("unknown scheduler {other}"),
        }
        assert_eq!(moms.len(), want_mom.len(), "{name}");
        for (e, (g, w)) in lrs.iter().zip(&want_lr).chain(moms.iter().zip(&want_mom)).enumerate() {
            let err = (g - w).abs() / (1.0 + w.abs());
            assert!(err <= 1e-12, "{name} value {e}: got {g}, want {w}");
            worst = worst.max(err);
        }
    }
    eprintln!("schedules2.json: largest relative error vs torch {worst:e}");
}

#[test]
fn one_cycle_refuses_degenerate_configs_and_holds_after_the_end() {
    assert!(OneCycleLr::new(1.0, 0)
        .unwrap_err()
        .to_string()
        .contains("total_steps must be positive"));
    let bad = OneCycleLrConfig {
        pct_start: 1.5,
        ..Default::default()
    };
    assert_eq!(
        OneCycleLr::with_config(1.0, 10, &bad).unwrap_err().to_string(),
        "OneCycleLR: pct_start must be in [0, 1], got 1.5"
    );
    // pct_start · total = 1 puts the end of the warm-up at step 0, where PyTorch divides by zero.
    let one = OneCycleLrConfig {
        pct_start: 0.1,
        ..Default::default()
    };
    let e = OneCycleLr::with_config(1.0, 10, &one).unwrap_err().to_string();
    assert!(e.starts_with("OneCycleLR: phase 1 has zero length"), "{e}");
    let mut s = OneCycleLr::new(1.0, 4).unwrap();
    for _ in 0..4 {
        s.step();
    }
    let at_end = s.lr();
    s.step();
    assert_eq!(s.lr(), at_end);
}
