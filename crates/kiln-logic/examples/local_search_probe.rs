//! Local search from the optimised Shannon fallback of a table:
//! `local_search_probe TABLE.csv SECONDS [SEED] [STALL]`. Prints each smaller circuit found.
//! With `GENS=N` the budget is `N` generations instead of the seconds (same seed, same result).
use std::time::Duration;

use kiln_logic::local_search::{shrink, LocalSearchParams};
use kiln_logic::{Basis, OptimiseParams, Table};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let t = Table::from_csv_path(&a[1], None).unwrap();
    let secs: f64 = a[2].parse().unwrap();
    let seed: u64 = a.get(3).map_or(0, |s| s.parse().unwrap());
    let stall: u64 = a.get(4).map_or(100_000, |s| s.parse().unwrap());
    let gens: Option<u64> = std::env::var("GENS").ok().map(|g| g.parse().unwrap());
    let f = kiln_logic::search::fallback(&t, &Basis::all(), usize::MAX).unwrap();
    let (o, _) = kiln_logic::optimise(
        &f,
        &OptimiseParams {
            restructure: false,
            timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        },
    );
    let params = LocalSearchParams {
        timeout: gens.is_none().then(|| Duration::from_secs_f64(secs)),
        max_generations: gens,
        seed,
        stall,
        threads: std::env::var("THREADS").map_or(1, |t| t.parse().unwrap()),
        ..Default::default()
    };
    let (c, stats) = shrink(&t, &o, &params).unwrap();
    println!(
        "{}: fallback {} -> optimised {} -> local search {} in {:.2}s, {} generations, {} restarts, steps {:?}",
        a[1],
        f.num_gates(),
        o.num_gates(),
        c.num_gates(),
        stats.seconds,
        stats.generations,
        stats.restarts,
        stats.improvements
    );
    assert!(kiln_logic::verify(&c, &t).unwrap().ok());
}
