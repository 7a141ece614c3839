//! Per-restart exactness of gradient search without repair (issue #9, item 3): runs single
//! restarts of `learn` on the suite's tables and counts how many fire to an exact circuit.
//!
//! ```text
//! cargo run --release -p kiln-logic --example write_suite -- /tmp/suite
//! cargo run --release -p kiln-pbe --example restart_study -- /tmp/suite
//! ```
//! Functions of at most `MAXIN` (5) inputs are used. Each function gets `SEEDS` (5) restarts, seeds
//! 0.., every one the first restart of its own `learn` call, so each restart is an independent
//! draw of the same network. Knobs (environment): PARAM (softmax | inputwise), WIDTH, DEPTH,
//! WIRING (learned | random), RES, LR, STEPS, POOL, TEMP (final temperature), TIMEOUT (seconds per restart), ONLY (names).
//!
//! With `RESTARTS=R` each seed is instead one `learn` call of up to R restarts through the default
//! schedule, stopping at the first exact one (what `kiln learn --no-repair --restarts R` does), and
//! the rate is exact restarts over restarts run.

use kiln_pbe::learn::{learn, GateParam, LearnOptions};
use kiln_pbe::table::Table;
use kiln_pbe::Wiring;
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// exact, accuracy, steps, unrepaired gates, width, last loss, restarts run, exact restarts.
type Run = (bool, f64, usize, usize, usize, f64, usize, usize);

fn env<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: restart_study SUITE_DIR");
    let tsv = std::fs::read_to_string(format!("{dir}/suite.tsv")).expect("suite.tsv");
    let max_inputs: usize = env("MAXIN").unwrap_or(5);
    let seeds: u64 = env("SEEDS").unwrap_or(5);
    let only: Option<Vec<String>> = std::env::var("ONLY").ok().map(|s| s.split_whitespace().map(String::from).collect());
    let mut opts = LearnOptions {
        restarts: Some(1),
        repair: false,
        shrink: false,
        timeout: Duration::from_secs_f64(env("TIMEOUT").unwrap_or(30.0)),
        ..Default::default()
    };
    match std::env::var("PARAM").as_deref() {
        Ok("inputwise") => opts.gate_param = Some(GateParam::InputWise),
        Ok("softmax") => opts.gate_param = Some(GateParam::Softmax16),
        Err(_) => {}
        Ok(other) => panic!("PARAM {other}"),
    }
    match std::env::var("WIRING").as_deref() {
        Ok("learned") => opts.wiring = Some(Wiring::Learned),
        Ok("random") => opts.wiring = Some(Wiring::Random),
        _ => {}
    }
    opts.width = env("WIDTH");
    opts.depth = env("DEPTH");
    if let Some(v) = env("RES") {
        opts.residual_init = v;
    }
    opts.lr = env("LR");
    if let Some(v) = env("STEPS") {
        opts.steps = v;
    }
    if let Some(v) = env("TEMP") {
        opts.final_temperature = v;
    }
    if let Some(v) = env("POOL") {
        opts.pool = v;
    }
    let schedule_restarts: Option<usize> = env("RESTARTS");
    if schedule_restarts.is_some() {
        opts.restarts = schedule_restarts;
    }
    let (mut total, mut exact, mut rate_sum, mut functions) = (0, 0, 0.0, 0);
    let start = Instant::now();
    for line in tsv.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, n) = (f[0], f[1].parse::<usize>().unwrap());
        if n > max_inputs || only.as_ref().is_some_and(|o| !o.iter().any(|x| x == name)) {
            continue;
        }
        let outputs: Vec<String> = f[4].split(',').map(String::from).collect();
        let table = Table::from_csv_path(format!("{dir}/{name}.csv"), Some(&outputs)).expect("table");
        let runs: Vec<Run> = (0..seeds)
            .into_par_iter()
            .map(|seed| {
                let r = learn(&table, &LearnOptions { seed, ..opts.clone() }, |_| {}).expect("learn");
                (
                    r.exact,
                    r.accuracy,
                    r.steps,
                    r.unrepaired_gates,
                    r.width,
                    r.loss_curve.last().copied().unwrap_or(f64::NAN),
                    r.restarts,
                    r.exact_restarts,
                )
            })
            .collect();
        let (ran, hits) = match schedule_restarts {
            Some(_) => (runs.iter().map(|r| r.6).sum(), runs.iter().map(|r| r.7).sum()),
            None => (runs.len(), runs.iter().filter(|r| r.0).count()),
        };
        let mean_acc = runs.iter().map(|r| r.1).sum::<f64>() / runs.len() as f64;
        let steps = runs.iter().map(|r| r.2).sum::<usize>() / runs.len();
        println!(
            "{name:14} {hits}/{ran}  mean acc {:.3}  loss {:?}  steps {steps}  width {}  gates {:?}",
            mean_acc,
            runs.iter().map(|r| (r.5 * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            runs[0].4,
            runs.iter().filter(|r| r.0).map(|r| r.3).collect::<Vec<_>>()
        );
        total += ran;
        exact += hits;
        rate_sum += hits as f64 / ran as f64;
        functions += 1;
    }
    println!(
        "overall {exact}/{total} exact ({:.1} %), mean per-function rate {:.1} %, {functions} functions, {:.0} s",
        100.0 * exact as f64 / total as f64,
        100.0 * rate_sum / functions as f64,
        start.elapsed().as_secs_f64()
    );
}
