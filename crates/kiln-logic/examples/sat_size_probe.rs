//! Time of one SAT exact-synthesis size: `sat_size_probe TABLE.csv K [SECS]`.
//! With `DIMACS=FILE` it writes the size-`K` instance there instead, for an external solver;
//! `SOLVER=batsat` asks batsat instead of CaDiCaL, `SYM=0` leaves the input symmetries unbroken,
//! `REBRACKET=0` the re-bracketing symmetry, `RESTRICT=0` the restriction bounds on readers,
//! `THREADS=N` runs a portfolio, or
//! N solvers over the cubes (`CUBES=0`: the whole instance per size).
use kiln_logic::exact_sat::{dimacs, synthesize, SatParams, SatSolver};
use kiln_logic::Table;
use std::time::Duration;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let outs: Option<Vec<String>> = a.get(4).map(|s| s.split(',').map(String::from).collect());
    let t = Table::from_csv_path(&a[1], outs.as_deref()).unwrap();
    let k: usize = a[2].parse().unwrap();
    if let Ok(path) = std::env::var("DIMACS") {
        std::fs::write(path, dimacs(&t, &SatParams::default().basis, k).unwrap()).unwrap();
        return;
    }
    let secs: u64 = a.get(3).map(|s| s.parse().unwrap()).unwrap_or(60);
    let p = SatParams {
        min_gates: k,
        max_gates: k,
        timeout: Some(Duration::from_secs(secs)),
        threads: std::env::var("THREADS").map(|t| t.parse().unwrap()).unwrap_or(1),
        input_symmetries: std::env::var("SYM").map(|v| v != "0").unwrap_or(true),
        rebracketing: std::env::var("REBRACKET").map(|v| v != "0").unwrap_or(true),
        cubes: std::env::var("CUBES").map(|v| v != "0").unwrap_or(true),
        restrictions: std::env::var("RESTRICT").map(|v| v != "0").unwrap_or(true),
        solver: match std::env::var("SOLVER").as_deref() {
            Ok("batsat") => SatSolver::Batsat,
            _ => SatSolver::Cadical,
        },
        ..SatParams::default()
    };
    let r = synthesize(&t, &p).unwrap();
    println!(
        "{} k={} found={:?} lb={} timed_out={} {:.2}s conflicts={} symmetries={} restrictions={:?}",
        a[1],
        k,
        r.circuit.as_ref().map(|c| c.num_gates()),
        r.lower_bound,
        r.timed_out,
        r.seconds,
        r.stats.conflicts,
        r.stats.input_symmetries,
        r.stats.restriction_bounds
    );
    if let Some(c) = &r.circuit {
        println!("{c}");
    }
}
