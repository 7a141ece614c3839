//! The gradient learner: every gate, XOR by composition, the limits of one unit, harder tables, and
//! reproducibility. Each learned circuit is checked by `verify` on every row.

use kiln_pbe::learn::{learn, LearnOptions, Space, Wiring};
use kiln_pbe::{library, verify, Table};
use std::time::Duration;

/// Gradient search alone: these tests measure the learner, so repair (tested in repair.rs) is off.
fn opts(space: Space, seed: u64) -> LearnOptions {
    LearnOptions {
        space,
        seed,
        timeout: Duration::from_secs(60),
        repair: false,
        ..Default::default()
    }
}

fn assert_exact(t: &Table, r: &kiln_pbe::LearnResult, what: &str) {
    assert!(r.exact, "{what}: not exact ({:?})", r.note);
    assert_eq!(r.repaired_gates, 0, "{what}: repaired");
    let v = verify(&r.circuit, t).unwrap();
    assert!(v.ok(), "{what}: fired circuit fails verification:\n{v}");
}

#[test]
fn every_two_input_gate_is_learned_and_fired_exactly_by_the_gate_network() {
    for tt in 0..16u8 {
        let t = library::two_input(tt);
        for seed in 0..3 {
            let r = learn(&t, &opts(Space::Circuit, seed), |_| {}).unwrap();
            assert_exact(&t, &r, &format!("gate {tt:04b} seed {seed}"));
            // The fired network may spell a gate with a detour; the hybrid minimise step removes it.
            assert!(r.circuit.num_gates() <= 4, "gate {tt:04b}: {} gates", r.circuit.num_gates());
            let small = kiln_pbe::minimise(&r.circuit, &t, &kiln_pbe::SearchOptions::default()).unwrap();
            assert!(small.gates <= 1, "gate {tt:04b}: minimised to {} gates", small.gates);
        }
    }
}

#[test]
fn one_unit_learns_every_linearly_separable_gate_and_names_it() {
    // All but XOR (0110) and XNOR (1001) are threshold functions of two inputs.
    for tt in (0..16u8).filter(|&t| t != 0b0110 && t != 0b1001) {
        let t = library::two_input(tt);
        let r = learn(&t, &opts(Space::Unit, 0), |_| {}).unwrap();
        assert_exact(&t, &r, &format!("unit gate {tt:04b}"));
        assert_eq!(r.units.len(), 1);
    }
    let or = library::two_input(0b1110);
    let r = learn(&or, &opts(Space::Unit, 0), |_| {}).unwrap();
    assert_eq!(r.units[0].fired, "Y = X1 OR X2");
    assert!(
        r.units[0].weights.iter().all(|&w| w > 0.0) && r.units[0].bias < 0.0,
        "{:?}",
        r.units[0]
    );
    let nand = library::two_input(0b0111);
    let r = learn(&nand, &opts(Space::Unit, 0), |_| {}).unwrap();
    assert_eq!(r.units[0].fired, "Y = X1 NAND X2");
}

#[test]
fn one_unit_cannot_learn_xor_and_says_so() {
    let t = library::xor();
    let r = learn(&t, &opts(Space::Unit, 0), |_| {}).unwrap();
    assert!(!r.exact);
    assert_eq!(r.accuracy, 0.75);
    assert_eq!(r.restarts, 5);
    let note = r.note.unwrap();
    assert!(
        note.starts_with("one unit per output cannot represent this table: the best of 5 restarts gets 3 of 4 rows right (75%)"),
        "{note}"
    );
}

#[test]
fn xor_by_composition_of_units() {
    let t = library::xor();
    let mut o = opts(Space::Mlp, 0);
    o.width = Some(2);
    let r = learn(&t, &o, |_| {}).unwrap();
    assert_exact(&t, &r, "mlp xor");
    // Two hidden units and the output unit, each fired into one gate.
    assert_eq!(r.units.len(), 3);
    assert!(r.circuit.num_gates() <= 3);
    for u in &r.units {
        assert_eq!(u.fired.matches(" = ").count(), 1, "{u:?}");
    }
}

#[test]
fn harder_tables_are_learned_exactly() {
    for name in ["full_adder", "majority3", "mux2", "parity4", "parity6", "adder2"] {
        let t = library::builtin(name).unwrap();
        let r = learn(&t, &opts(Space::Circuit, 0), |_| {}).unwrap();
        assert_exact(&t, &r, name);
    }
}

#[test]
fn random_wiring_trees_learn_parity_8() {
    let t = library::parity(8);
    let mut o = opts(Space::Circuit, 2);
    o.wiring = Some(Wiring::Random);
    let r = learn(&t, &o, |_| {}).unwrap();
    assert_exact(&t, &r, "parity8");
    assert_eq!((r.width, r.depth), (4, 4));
}

#[test]
fn a_sample_of_three_input_functions() {
    for tt in (0..=255u8).step_by(17) {
        let t = library::three_input(tt);
        let r = learn(&t, &opts(Space::Circuit, 0), |_| {}).unwrap();
        assert_exact(&t, &r, &format!("three-input {tt:#04x}"));
    }
}

#[test]
fn same_seed_same_circuit() {
    let t = library::full_adder();
    let a = learn(&t, &opts(Space::Circuit, 5), |_| {}).unwrap();
    let b = learn(&t, &opts(Space::Circuit, 5), |_| {}).unwrap();
    assert_eq!(kiln_pbe::print(&a.circuit), kiln_pbe::print(&b.circuit));
    assert_eq!(a.steps, b.steps);
}

#[test]
fn partial_tables_fit_the_given_rows() {
    let full = library::majority(3);
    let (train, _) = full.split_holdout(0.25, 1);
    assert!(train.len() < full.len());
    let r = learn(&train, &opts(Space::Circuit, 0), |_| {}).unwrap();
    assert_exact(&train, &r, "partial majority");
}

#[test]
fn empty_tables_and_oversized_mlps_are_errors() {
    let t = library::parity(10);
    let mut o = opts(Space::Mlp, 0);
    o.width = Some(2);
    o.timeout = Duration::from_millis(1);
    // 10 inputs are allowed for the mlp space; 11 are not.
    assert!(learn(&t, &o, |_| {}).is_ok());
    let big = Table::from_fn(&["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"], &["Y"], |b| vec![b[0]]);
    let err = learn(&big, &o, |_| {}).unwrap_err().to_string();
    assert!(err.contains("more than 10"), "{err}");
}

#[test]
fn minimised_learned_circuits_match_the_proven_minimum_for_all_three_input_functions() {
    // The hybrid step: gradient search proposes, exact search shrinks. For every 2- and 3-input
    // table the result must be exactly as small as brute force proves possible.
    let search_opts = kiln_pbe::SearchOptions::default();
    let mut tables: Vec<Table> = (0..16u8).map(library::two_input).collect();
    tables.extend((0..=255u8).map(library::three_input));
    for (i, t) in tables.iter().enumerate() {
        let r = learn(t, &opts(Space::Circuit, 0), |_| {}).unwrap();
        assert_exact(t, &r, &format!("table {i}"));
        let small = kiln_pbe::minimise(&r.circuit, t, &search_opts).unwrap();
        let best = kiln_pbe::search(t, &search_opts).unwrap();
        assert!(best.optimal, "table {i}: discrete search did not prove its minimum");
        assert_eq!(
            small.gates, best.gates,
            "table {i}: minimised {} vs proven minimum {}",
            small.gates, best.gates
        );
        assert!(verify(&small.circuit, t).unwrap().ok());
    }
}

#[test]
fn oversized_networks_are_refused_before_allocating() {
    let t = library::xor();
    let mut o = opts(Space::Circuit, 0);
    o.width = Some(100_000);
    assert_eq!(
        learn(&t, &o, |_| {}).unwrap_err().to_string(),
        "learn: width 100000 is outside 1..=4096"
    );
    o.width = None;
    o.depth = Some(1000);
    assert_eq!(
        learn(&t, &o, |_| {}).unwrap_err().to_string(),
        "learn: depth 1000 is outside 1..=64"
    );
}

#[test]
fn the_result_does_not_depend_on_the_number_of_threads() {
    // Restarts run in parallel batches; the full adder needs several restarts, so batches of 1 and
    // of 3 end at different points and must still pick the same restart.
    let t = library::full_adder();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| learn(&t, &opts(Space::Circuit, 2), |_| {}).unwrap())
    };
    let (one, three) = (run(1), run(3));
    assert!(one.restarts > 1, "one restart was enough; the test needs a seed that takes several");
    assert_eq!(one.circuit, three.circuit);
    assert_eq!((one.restarts, one.steps), (three.restarts, three.steps));
}

#[test]
fn annealing_and_gradient_noise_are_options_that_still_fire_exact_circuits() {
    // Noise costs many restarts on the full adder (see BENCHMARKS.md), so it runs on mux2.
    for (t, temperature, noise) in [(library::full_adder(), 0.3, 0.0), (library::mux2(), 1.0, 0.01)] {
        let o = LearnOptions {
            final_temperature: temperature,
            grad_noise: noise,
            ..opts(Space::Circuit, 0)
        };
        let r = learn(&t, &o, |_| {}).unwrap();
        assert_exact(&t, &r, &format!("T={temperature} noise={noise}"));
        let again = learn(&t, &o, |_| {}).unwrap();
        assert_eq!(r.circuit, again.circuit, "noise is seeded: same seed, same circuit");
    }
    let t = library::xor();
    for (temperature, noise) in [(0.0, 0.0), (f64::NAN, 0.0), (1.0, -1.0)] {
        let o = LearnOptions {
            final_temperature: temperature,
            grad_noise: noise,
            ..opts(Space::Circuit, 0)
        };
        let e = learn(&t, &o, |_| {}).unwrap_err().to_string();
        assert!(e.contains("temperature") && e.contains("noise"), "{e}");
    }
}
