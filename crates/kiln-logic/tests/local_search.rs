//! The local search keeps the function (checked by complete simulation of every circuit it
//! returns), stays in the basis, reaches known minima, and honours its limits.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kiln_logic::circuit::BINARY_OPS;
use kiln_logic::exact_sat::{synthesize, SatParams};
use kiln_logic::local_search::{shrink, LocalSearchError, LocalSearchParams};
use kiln_logic::search::fallback;
use kiln_logic::window_sat::exact_whole_beside;
use kiln_logic::{library, optimise, verify, Basis, Circuit, Op, OptimiseParams, Row, Signal, SplitMix64, Table};

fn generations(n: u64, lower_bound: usize) -> LocalSearchParams {
    LocalSearchParams {
        timeout: None,
        max_generations: Some(n),
        lower_bound,
        ..LocalSearchParams::default()
    }
}

/// Every row of the complete table of `c`'s inputs, by row-by-row evaluation (not the
/// bit-parallel simulator the search uses).
fn complete_outputs(c: &Circuit) -> Vec<Vec<bool>> {
    let n = c.inputs().len();
    (0..1u32 << n)
        .map(|r| c.eval_row(&(0..n).map(|i| r >> i & 1 == 1).collect::<Vec<_>>()))
        .collect()
}

fn random_circuit(rng: &mut SplitMix64, inputs: usize, gates: usize, outputs: usize) -> Circuit {
    let names: Vec<String> = (0..inputs).map(|i| format!("x{i}")).collect();
    let mut c = Circuit::new(names);
    let mut signals: Vec<Signal> = (0..inputs).map(Signal::Input).collect();
    for _ in 0..gates {
        let op = BINARY_OPS[(rng.next_u64() % BINARY_OPS.len() as u64) as usize];
        let a = signals[(rng.next_u64() % signals.len() as u64) as usize];
        let b = signals[(rng.next_u64() % signals.len() as u64) as usize];
        signals.push(c.gate(op, &[a, b]).unwrap());
    }
    for j in 0..outputs {
        c.set_output(&format!("y{j}"), signals[signals.len() - 1 - 3 * j]).unwrap();
    }
    c
}

fn table_of(c: &Circuit) -> Table {
    let ins: Vec<&str> = c.inputs().iter().map(String::as_str).collect();
    let outs: Vec<String> = c.outputs().iter().map(|(n, _)| n.clone()).collect();
    let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
    Table::from_fn(&ins, &outs, |x| c.eval_row(x))
}

#[test]
fn random_circuits_keep_their_function_and_never_grow() {
    let mut rng = SplitMix64::new(0x10ca1);
    for case in 0..12 {
        let outputs = 1 + case % 3;
        let c = random_circuit(&mut rng, 5, 25, outputs);
        let t = table_of(&c);
        let p = LocalSearchParams {
            seed: case as u64,
            ..generations(30_000, 0)
        };
        let (s, stats) = shrink(&t, &c, &p).unwrap();
        assert_eq!(complete_outputs(&s), complete_outputs(&c), "case {case}");
        assert!(s.num_gates() <= c.simplify().num_gates(), "case {case}");
        assert_eq!(stats.gates_after, s.num_gates());
        assert_eq!(stats.gates_before, c.simplify().num_gates());
        assert!(stats.generations <= 30_000);
    }
}

#[test]
fn reaches_known_minima_from_shannon_expansions() {
    let cases = [
        ("xor", library::xor(), 1),
        ("majority-3", library::majority(3), 4),
        ("parity-4", library::parity(4), 3),
        ("2:1 mux", library::mux2(), 3),
        ("full adder", library::full_adder(), 5),
    ];
    for (name, t, minimum) in cases {
        let start = fallback(&t, &Basis::all(), usize::MAX).unwrap();
        assert!(start.num_gates() > minimum, "{name}: the expansion is already minimum");
        let (s, stats) = shrink(&t, &start, &generations(3_000_000, minimum)).unwrap();
        assert!(verify(&s, &t).unwrap().ok(), "{name}");
        assert_eq!(s.num_gates(), minimum, "{name}: {stats:?}");
        assert_eq!(stats.improvements.last().map(|i| i.0), Some(minimum), "{name}");
    }
}

#[test]
fn stays_in_a_restricted_basis() {
    let basis = Basis::parse("AND,OR,NOT").unwrap();
    for t in [library::majority(3), library::full_adder(), library::mux2()] {
        let start = fallback(&t, &basis, usize::MAX).unwrap();
        let p = LocalSearchParams {
            basis: basis.clone(),
            ..generations(200_000, 0)
        };
        let (s, _) = shrink(&t, &start, &p).unwrap();
        assert!(verify(&s, &t).unwrap().ok());
        assert!(s.num_gates() <= start.simplify().num_gates());
        assert!(s.gates().iter().all(|g| basis.contains(g.op)), "{s}");
    }
    // A gate outside the basis is refused rather than silently kept.
    let mut xor = Circuit::new(vec!["a".into(), "b".into()]);
    let y = xor.gate(Op::Xor, &[Signal::Input(0), Signal::Input(1)]).unwrap();
    xor.set_output("y", y).unwrap();
    let t = table_of(&xor);
    let p = LocalSearchParams {
        basis: Basis::parse("AND,OR").unwrap(),
        ..generations(10, 0)
    };
    assert!(matches!(
        shrink(&t, &xor, &p),
        Err(LocalSearchError::OutsideBasis { op: "XOR", .. })
    ));
}

#[test]
fn dont_cares_are_free() {
    let mut rng = SplitMix64::new(0xdc);
    for case in 0..6 {
        let tt = rng.next_u64() & 0xffff_ffff;
        let full = library::from_truth_table(5, tt);
        // Drop a quarter of the rows: the result must match the rest, and may use the freedom.
        let rows: Vec<Row> = full.rows().iter().filter(|_| !rng.next_u64().is_multiple_of(4)).copied().collect();
        let t = Table::from_rows("dc", full.input_names().to_vec(), full.output_names().to_vec(), rows);
        let start = fallback(&full, &Basis::all(), usize::MAX).unwrap();
        let (s, _) = shrink(&t, &start, &generations(100_000, 0)).unwrap();
        assert!(verify(&s, &t).unwrap().ok(), "case {case}");
        assert!(
            s.num_gates() < start.simplify().num_gates(),
            "case {case}: no use of {} free rows",
            32 - t.len()
        );
    }
}

#[test]
fn a_circuit_that_does_not_match_is_refused() {
    let t = library::majority(3);
    let wrong = fallback(&library::parity(3), &Basis::all(), usize::MAX).unwrap();
    assert!(matches!(
        shrink(&t, &wrong, &generations(10, 0)),
        Err(LocalSearchError::Mismatch(_))
    ));
}

#[test]
fn stop_flag_and_progress_are_honoured() {
    let t = library::full_adder();
    let start = fallback(&t, &Basis::all(), usize::MAX).unwrap();
    let stop = Arc::new(AtomicBool::new(true));
    let p = LocalSearchParams {
        stop: Some(stop),
        ..generations(u64::MAX, 0)
    };
    let (s, stats) = shrink(&t, &start, &p).unwrap();
    assert!(stats.generations <= 256, "{} generations after the stop", stats.generations);
    assert!(verify(&s, &t).unwrap().ok());

    let progress = Arc::new(AtomicUsize::new(usize::MAX));
    let p = LocalSearchParams {
        progress: Some(progress.clone()),
        ..generations(3_000_000, 5)
    };
    let (s, _) = shrink(&t, &start, &p).unwrap();
    assert_eq!(progress.load(Ordering::Relaxed), s.num_gates());
}

#[test]
fn threads_return_the_smallest_result() {
    let t = library::full_adder();
    let start = fallback(&t, &Basis::all(), usize::MAX).unwrap();
    let p = LocalSearchParams {
        threads: 2,
        ..generations(3_000_000, 5)
    };
    let (s, stats) = shrink(&t, &start, &p).unwrap();
    assert_eq!(s.num_gates(), 5);
    assert!(verify(&s, &t).unwrap().ok());
    assert!(stats.generations > 0);
}

/// A circuit known elsewhere caps the SAT search: with the full adder's 5 gates known, SAT
/// refutes 4 and stops without solving 5, leaving the known circuit proven.
#[test]
fn sat_stops_below_a_known_circuit() {
    let t = library::full_adder();
    let known = Arc::new(AtomicUsize::new(5));
    let p = SatParams {
        timeout: None,
        known_upper_bound: Some(known),
        ..SatParams::default()
    };
    let r = synthesize(&t, &p).unwrap();
    assert!(r.circuit.is_none());
    assert_eq!(r.lower_bound, 5);
    assert!(!r.timed_out);
    let unknown = synthesize(
        &t,
        &SatParams {
            timeout: None,
            ..SatParams::default()
        },
    )
    .unwrap();
    assert_eq!(unknown.circuit.map(|c| c.num_gates()), Some(5));
}

/// The whole-function SAT search beside a circuit known elsewhere goes straight below it: with
/// the full adder's 5 gates known, it refutes 4 from a 9-gate start, and its proof covers the
/// known circuit.
#[test]
fn exact_whole_goes_below_a_known_circuit() {
    let t = library::full_adder();
    let start = fallback(&t, &Basis::all(), usize::MAX).unwrap();
    assert!(start.num_gates() > 6);
    let known = Arc::new(AtomicUsize::new(5));
    let (c, stats) = exact_whole_beside(&start, None, None, Some(&known));
    assert!(stats.proven_minimum);
    assert_eq!(stats.sat_calls, 2, "one refuted size, one upward proof");
    assert!(verify(&c, &t).unwrap().ok());
}

/// `optimise` runs the local search beside its SAT search and keeps the function; a proof it
/// reports is for the circuit it returns.
#[test]
fn optimise_with_local_search_keeps_the_function() {
    let mut rng = SplitMix64::new(0x0971);
    for case in 0..3 {
        let tt = rng.next_u64() & 0xffff_ffff;
        let t = library::from_truth_table(5, tt);
        let start = fallback(&t, &Basis::all(), usize::MAX).unwrap();
        let params = OptimiseParams {
            timeout: Some(Duration::from_secs(2)),
            ..OptimiseParams::default()
        };
        let (c, stats) = optimise(&start, &params);
        assert!(verify(&c, &t).unwrap().ok(), "case {case}");
        assert!(c.num_gates() < start.num_gates(), "case {case}");
        assert_eq!(stats.gates_after, c.num_gates());
    }
    let t = library::full_adder();
    let start = fallback(&t, &Basis::all(), usize::MAX).unwrap();
    let (c, stats) = optimise(
        &start,
        &OptimiseParams {
            timeout: None,
            ..OptimiseParams::default()
        },
    );
    assert!(stats.proven_minimum);
    assert_eq!(c.num_gates(), 5);
    assert!(verify(&c, &t).unwrap().ok());
}
