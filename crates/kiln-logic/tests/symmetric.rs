//! Symmetric functions: detection on complete tables, and the counter-based
//! circuit computing exactly the table.

use std::time::Duration;

use kiln_logic::optimise::{optimise, OptimiseParams};
use kiln_logic::symmetric::{symmetric_circuit, symmetric_values};
use kiln_logic::{verify, Table};

fn counts(n: usize, outputs: &[&str], f: impl Fn(usize) -> Vec<bool>) -> Table {
    let names: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Table::from_fn(&refs, outputs, |xs| f(xs.iter().filter(|&&b| b).count()))
}

#[test]
fn counter_circuits_compute_the_table() {
    let cases: Vec<(usize, Table)> = vec![
        (5, counts(5, &["c2", "c1", "c0"], |k| vec![k & 4 != 0, k & 2 != 0, k & 1 != 0])),
        (7, counts(7, &["maj"], |k| vec![k >= 4])),
        (6, counts(6, &["par", "two"], |k| vec![k % 2 == 1, k == 2])),
        (9, counts(9, &["life_like"], |k| vec![k == 3 || k == 4])),
    ];
    for (n, t) in cases {
        let values = symmetric_values(&t).expect("symmetric");
        assert_eq!(values[0].len(), n + 1);
        let c = symmetric_circuit(&t, Some(Duration::from_secs(5))).expect("built");
        let v = verify(&c, &t).unwrap();
        assert!(v.ok(), "n={n}: {} failures", v.failures.len());
    }
}

#[test]
fn a_five_input_population_count_takes_two_full_adders_and_a_half_adder() {
    let t = counts(5, &["c2", "c1", "c0"], |k| vec![k & 4 != 0, k & 2 != 0, k & 1 != 0]);
    let c = symmetric_circuit(&t, None).unwrap();
    assert_eq!(c.num_gates(), 12);
    // optimise finds it from a poor start: the Shannon expansion of the table.
    let start = kiln_logic::search::fallback(&t, &kiln_logic::Basis::all(), usize::MAX).unwrap();
    assert!(start.num_gates() > 12);
    let params = OptimiseParams {
        windows: None,
        exact: false,
        ..Default::default()
    };
    let (o, stats) = optimise(&start, &params);
    assert!(verify(&o, &t).unwrap().ok());
    assert!(o.num_gates() <= 12, "{} gates, {stats:?}", o.num_gates());
}

#[test]
fn non_symmetric_or_incomplete_tables_are_refused() {
    let t = Table::from_fn(&["a", "b", "c"], &["y"], |x| vec![x[0] && !x[1] || x[2]]);
    assert!(symmetric_values(&t).is_none());
    assert!(symmetric_circuit(&t, None).is_none());
    let full = counts(4, &["y"], |k| vec![k >= 2]);
    let (part, _) = full.split_holdout(0.25, 1);
    assert!(symmetric_values(&part).is_none());
    // Two inputs: nothing to gain from a counter.
    let two = counts(2, &["y"], |k| vec![k == 1]);
    assert!(symmetric_circuit(&two, None).is_none());
}
