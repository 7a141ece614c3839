//! Time of one SAT exact-synthesis size: `sat_size_probe TABLE.csv K [SECS]`.
use kiln_logic::exact_sat::{synthesize, SatParams};
use kiln_logic::Table;
use std::time::Duration;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let outs: Option<Vec<String>> = a.get(4).map(|s| s.split(',').map(String::from).collect());
    let t = Table::from_csv_path(&a[1], outs.as_deref()).unwrap();
    let k: usize = a[2].parse().unwrap();
    let secs: u64 = a.get(3).map(|s| s.parse().unwrap()).unwrap_or(60);
    let p = SatParams {
        min_gates: k,
        max_gates: k,
        timeout: Some(Duration::from_secs(secs)),
        threads: std::env::var("THREADS").map(|t| t.parse().unwrap()).unwrap_or(1),
        ..SatParams::default()
    };
    let r = synthesize(&t, &p).unwrap();
    println!(
        "{} k={} found={:?} lb={} timed_out={} {:.2}s conflicts={}",
        a[1],
        k,
        r.circuit.as_ref().map(|c| c.num_gates()),
        r.lower_bound,
        r.timed_out,
        r.seconds,
        r.stats.conflicts
    );
}
