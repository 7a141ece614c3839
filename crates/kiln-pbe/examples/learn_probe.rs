//! Tuning probe for the gradient learner: runs `learn` on built-in tables over several seeds and
//! prints one line per run (exact, restarts, steps, time, network size, the fired program).
//!
//! `cargo run --release -p kiln-pbe --example learn_probe -- circuit parity8 mux4`
//! Environment knobs (all optional) override the defaults being tuned: SEEDS, RES (residual init),
//! WIDTH, DEPTH, RANDOM (random tree wiring), LEARNED (learned wiring only), LR, RESTARTS, STEPS, TIMEOUT (seconds), POOL, TEMP (final temperature),
//! NOISE (gradient noise), NOREPAIR
//! (gradient search alone), TRACE (per-500-step progress).

use kiln_pbe::learn::{learn, LearnOptions, Space};
use kiln_pbe::library;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let space = match args.first().map(|s| s.as_str()) {
        Some("unit") => Space::Unit,
        Some("mlp") => Space::Mlp,
        _ => Space::Circuit,
    };
    let names: Vec<String> = args.iter().skip(1).cloned().collect();
    for name in names {
        let t = library::builtin(&name).expect("builtin");
        let seeds: u64 = std::env::var("SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        for seed in 0..seeds {
            let mut opts = LearnOptions {
                space,
                seed,
                timeout: Duration::from_secs(30),
                ..Default::default()
            };
            if let Ok(r) = std::env::var("RES") {
                opts.residual_init = r.parse().unwrap();
            }
            if let Ok(r) = std::env::var("WIDTH") {
                opts.width = Some(r.parse().unwrap());
            }
            if let Ok(r) = std::env::var("DEPTH") {
                opts.depth = Some(r.parse().unwrap());
            }
            if std::env::var("LEARNED").is_ok() {
                opts.wiring = Some(kiln_pbe::Wiring::Learned);
            }
            if std::env::var("RANDOM").is_ok() {
                opts.wiring = Some(kiln_pbe::Wiring::Random);
            }
            if let Ok(r) = std::env::var("LR") {
                opts.lr = Some(r.parse().unwrap());
            }
            if let Ok(r) = std::env::var("RESTARTS") {
                opts.restarts = Some(r.parse().unwrap());
            }
            if let Ok(r) = std::env::var("TEMP") {
                opts.final_temperature = r.parse().unwrap();
            }
            if let Ok(r) = std::env::var("NOISE") {
                opts.grad_noise = r.parse().unwrap();
            }
            if let Ok(r) = std::env::var("POOL") {
                opts.pool = r.parse().unwrap();
            }
            if std::env::var("NOREPAIR").is_ok() {
                opts.repair = false;
            }
            if let Ok(r) = std::env::var("TIMEOUT") {
                opts.timeout = Duration::from_secs_f64(r.parse().unwrap());
            }
            if let Ok(r) = std::env::var("STEPS") {
                opts.steps = r.parse().unwrap();
            }
            let r = learn(&t, &opts, |p| {
                if std::env::var("TRACE").is_ok() && p.step % 500 == 0 {
                    eprintln!(
                        "  r{} w{} d{} step {} loss {:.4} acc {:.3}",
                        p.restart, p.width, p.depth, p.step, p.loss, p.accuracy
                    )
                }
            })
            .unwrap();
            println!(
                "{name} seed {seed}: repaired {} exact {} acc {:.3} gates {} restarts {} steps {} {:.2}s w{} d{} :: {}",
                r.repaired_gates,
                r.exact,
                r.accuracy,
                r.circuit.num_gates(),
                r.restarts,
                r.steps,
                r.seconds,
                r.width,
                r.depth,
                kiln_pbe::grammar::to_expression(&r.circuit, "; ")
            );
            if let Some(n) = &r.note {
                println!("   note: {n}");
            }
            for u in &r.units {
                println!("   unit {} w {:?} b {:.2} -> {}", u.name, u.weights, u.bias, u.fired);
            }
        }
    }
}
