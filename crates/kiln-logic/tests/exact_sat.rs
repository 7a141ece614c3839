//! SAT-based exact synthesis: known minima, agreement with the enumeration
//! search, and every returned circuit checked by complete simulation.

use std::time::{Duration, Instant};

use kiln_logic::exact_sat::{dimacs, synthesize, SatParams};
use kiln_logic::{library, verify, Basis, Table};

fn params(secs: u64) -> SatParams {
    SatParams {
        timeout: Some(Duration::from_secs(secs)),
        ..Default::default()
    }
}

/// Minimum gate count proven by the SAT engine; the circuit must verify.
fn sat_min(t: &Table, p: &SatParams) -> usize {
    let r = synthesize(t, p).unwrap();
    let c = r.circuit.expect("a circuit within the limits");
    assert!(verify(&c, t).unwrap().ok(), "SAT circuit does not verify");
    assert_eq!(c.num_gates(), r.lower_bound);
    r.lower_bound
}

#[test]
fn known_minima() {
    let p = params(30);
    assert_eq!(sat_min(&library::xor(), &p), 1);
    assert_eq!(sat_min(&library::full_adder(), &p), 5);
    assert_eq!(sat_min(&library::majority(3), &p), 4);
    assert_eq!(sat_min(&library::parity(4), &p), 3);
    assert_eq!(sat_min(&library::mux2(), &p), 3);
}

/// Timings for the report: `cargo test --release -p kiln-logic --test exact_sat -- --ignored --nocapture bench`.
/// With `KILN_DIMACS_DIR` set, also writes each instance's DIMACS files.
#[test]
#[ignore]
fn bench_instances() {
    let cases: Vec<(&str, Table)> = vec![
        ("parity5", library::parity(5)),
        ("full_adder", library::full_adder()),
        ("adder2", library::adder2()),
        ("majority5", library::majority(5)),
        ("mux4", library::mux4()),
        ("comparator2", library::comparator2()),
    ];
    let secs: u64 = std::env::var("KILN_BENCH_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let only = std::env::var("KILN_BENCH_ONLY").ok();
    for (name, t) in &cases {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let start = Instant::now();
        let r = synthesize(t, &params(secs)).unwrap();
        println!(
            "{name}: gates {:?} lower_bound {} timed_out {} {:.2}s per_size {:?} vars {} clauses {} conflicts {}",
            r.circuit.as_ref().map(|c| c.num_gates()),
            r.lower_bound,
            r.timed_out,
            start.elapsed().as_secs_f64(),
            r.stats.per_size,
            r.stats.variables,
            r.stats.clauses,
            r.stats.conflicts
        );
        if let Some(c) = &r.circuit {
            assert!(verify(c, t).unwrap().ok());
        }
        if let Ok(dir) = std::env::var("KILN_DIMACS_DIR") {
            for (k, _) in &r.stats.per_size {
                let text = dimacs(t, &Basis::all(), *k).unwrap();
                std::fs::write(format!("{dir}/{name}_{k}.cnf"), text).unwrap();
            }
        }
    }
}
