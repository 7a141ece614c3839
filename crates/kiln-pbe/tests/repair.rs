//! Repair of near-exact circuits: resubstitution, decomposition on the inputs, and the sum-of-products
//! last resort. Every repaired circuit is checked by `verify` on every row.

use kiln_pbe::learn::{learn, LearnOptions};
use kiln_pbe::repair::{repair, RepairMethod};
use kiln_pbe::{library, parse, verify, Circuit, Row, Signal, SplitMix64, Table};
use std::time::Duration;

fn assert_exact(c: &Circuit, t: &Table, what: &str) {
    let v = verify(c, t).unwrap();
    assert!(v.ok(), "{what}: repaired circuit fails verification:\n{v}");
}

/// `text` parsed over `t`'s inputs and outputs.
fn program(t: &Table, text: &str) -> Circuit {
    parse(text, t.input_names(), t.output_names()).unwrap()
}

/// A circuit over `t`'s inputs whose outputs are all the constant 0.
fn blank(t: &Table) -> Circuit {
    let mut c = Circuit::for_table(t);
    for name in t.output_names() {
        c.set_output(name, Signal::Const(false)).unwrap();
    }
    c
}

#[test]
fn a_broken_gate_is_fixed_by_resubstitution_with_at_most_three_new_gates() {
    let t = library::full_adder();
    // The right full adder has Cout = (A AND B) OR (Cin AND (A XOR B)). Writing its OR as XOR is
    // still right (the two terms are never both 1); writing Cin's AND as OR is not, and S is right.
    let xor_spelling = program(&t, "Z1 = A XOR B; S = Z1 XOR Cin; Cout = (A AND B) XOR (Cin AND Z1)");
    let before = verify(&xor_spelling, &t).unwrap();
    assert_eq!(before.failures.len(), 0, "XOR is also right here: the two terms are never both 1");
    let broken = program(&t, "Z1 = A XOR B; S = Z1 XOR Cin; Cout = (A AND B) XOR (Cin OR Z1)");
    let before = verify(&broken, &t).unwrap();
    assert!(!before.failures.is_empty());
    let r = repair(&broken, &t, 3, false).expect("repairable");
    assert_exact(&r.circuit, &t, "full adder");
    assert_eq!(r.method, RepairMethod::Resubstitution);
    assert!(r.added_gates <= 3, "{} gates added", r.added_gates);
    assert_eq!(r.fixed_rows, before.failures.len());
}

#[test]
fn an_exact_circuit_comes_back_unchanged() {
    let t = library::xor();
    let c = program(&t, "Y = X1 XOR X2");
    let r = repair(&c, &t, 3, false).unwrap();
    assert_eq!((r.added_gates, r.fixed_rows, r.method), (0, 0, RepairMethod::None));
    assert_eq!(r.circuit, c.simplify());
}

#[test]
fn a_circuit_over_other_inputs_is_refused() {
    let t = library::xor();
    let c = Circuit::new(vec!["A".into(), "B".into()]);
    assert!(repair(&c, &t, 3, true).is_none());
}

#[test]
fn without_the_complete_switch_a_hopeless_circuit_is_left_alone() {
    let t = library::parity(6);
    assert!(repair(&blank(&t), &t, 2, false).is_none());
}

#[test]
fn decomposition_builds_parity_from_nothing_with_the_minimum_gate_count() {
    for n in [4, 7, 10] {
        let t = library::parity(n);
        // Two gates are too few for resubstitution to build parity-4 or more.
        let r = repair(&blank(&t), &t, 2, true).unwrap();
        assert_exact(&r.circuit, &t, &format!("parity{n}"));
        assert_eq!(r.method, RepairMethod::Decomposition);
        assert_eq!(r.circuit.num_gates(), n - 1, "parity{n}");
    }
}

#[test]
fn decomposition_splits_a_multiplexer_on_its_select_lines() {
    let t = library::mux4();
    let r = repair(&blank(&t), &t, 2, true).unwrap();
    assert_exact(&r.circuit, &t, "mux4");
    // Two levels of 2:1 multiplexers (three gates each) over the data lines.
    assert!(r.circuit.num_gates() <= 9, "{} gates:\n{}", r.circuit.num_gates(), r.circuit);
}

#[test]
fn random_partial_tables_with_several_outputs_always_end_exact() {
    let mut rng = SplitMix64::new(7);
    for case in 0..20 {
        let n = 5 + case % 5;
        let rows: Vec<Row> = (0..40 + case * 3)
            .map(|_| Row {
                inputs: rng.next_u64() & ((1 << n) - 1),
                outputs: rng.next_u64() & 0b11,
                line: None,
            })
            .collect();
        let inputs: Vec<String> = (1..=n).map(|i| format!("X{i}")).collect();
        let t = Table::from_rows("<random>", inputs, vec!["Y".into(), "C".into()], rows);
        let r = repair(&blank(&t), &t, 3, true).unwrap_or_else(|| panic!("case {case}: no repair"));
        assert_exact(&r.circuit, &t, &format!("case {case}"));
        assert!(r.fixed_rows > 0);
    }
}

#[test]
fn the_learner_reports_repairs_and_can_be_told_not_to_repair() {
    // Two short restarts are not enough for gradient search alone on majority-5 with these seeds;
    // repair turns the best fired circuit into an exact one and says so.
    let t = library::majority(5);
    let short = LearnOptions {
        steps: 60,
        restarts: Some(2),
        timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let plain = learn(
        &t,
        &LearnOptions {
            repair: false,
            ..short.clone()
        },
        |_| {},
    )
    .unwrap();
    assert!(
        !plain.exact,
        "gradient search alone was exact after 60 steps; pick a harder setting"
    );
    assert_eq!(plain.repaired_gates, 0);
    let fixed = learn(&t, &short, |_| {}).unwrap();
    assert!(fixed.exact);
    assert_exact(&fixed.circuit, &t, "majority5");
    assert!(fixed.repaired_gates > 0 && fixed.repaired_rows > 0);
    assert_eq!(fixed.exact_restarts, 0, "repairs are not counted as exact restarts");
    let note = fixed.note.expect("a repaired result says so");
    assert!(note.contains("repair added"), "{note}");
}

#[test]
fn shrink_removes_detours_without_changing_the_function() {
    use kiln_pbe::repair::shrink;
    // XOR spelled with four NANDs and a double negation, on a complete table: one gate suffices.
    let t = library::xor();
    let long = program(
        &t,
        "Z1 = X1 NAND X2; Z2 = X1 NAND Z1; Z3 = X2 NAND Z1; Z4 = Z2 NAND Z3; Y = NOT NOT Z4",
    );
    let short = shrink(&long, &t);
    assert_exact(&short, &t, "xor");
    assert_eq!(short.num_gates(), 1, "{short}");
    // The full adder as a learner might fire it (8 gates) shrinks to the minimum of 5.
    let t = library::full_adder();
    let fired = program(&t, "Z1 = A XOR B; Z2 = A AND B; Z3 = Cin AND Z1; Z4 = Z1 XOR Cin; Z5 = NOT Z2; Z6 = NOT Z5; S = Z4; Cout = (Z6 OR Z3) AND (A OR B OR Cin)");
    assert!(fired.simplify().num_gates() > 5);
    let short = shrink(&fired, &t);
    assert_exact(&short, &t, "full adder");
    assert_eq!(short.num_gates(), 5, "{short}");
}

#[test]
fn shrink_leaves_partial_tables_alone() {
    use kiln_pbe::repair::shrink;
    // On the rows 00, 01, 10 alone, X1 OR X2 could be XOR; shrink must not decide that.
    let full = library::two_input(0b1110);
    let rows: Vec<Row> = full.rows().iter().filter(|r| r.inputs != 0b11).cloned().collect();
    let t = Table::from_rows("<partial>", full.input_names().to_vec(), full.output_names().to_vec(), rows);
    let c = program(&t, "Z1 = X1 AND X2; Y = (X1 XOR X2) OR Z1");
    assert_eq!(shrink(&c, &t), c.simplify());
}

#[test]
fn symmetric_functions_are_rebuilt_with_shared_sub_functions() {
    // "More than half of the inputs are 1" over 10 inputs: a Shannon tree repeats the same
    // sub-functions hundreds of times; the shared decision diagram has one node per (inputs seen,
    // ones so far) pair.
    let names: Vec<String> = (1..=10).map(|i| format!("X{i}")).collect();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let t = Table::from_fn(&refs, &["Y"], |bits| vec![bits.iter().filter(|&&b| b).count() > 5]);
    let r = repair(&blank(&t), &t, 2, true).unwrap();
    assert_exact(&r.circuit, &t, "threshold 6 of 10");
    assert_eq!(r.method, RepairMethod::Decomposition);
    assert!(r.circuit.num_gates() <= 70, "{} gates", r.circuit.num_gates());
    let r = repair(&blank(&library::majority(5)), &library::majority(5), 2, true).unwrap();
    assert_exact(&r.circuit, &library::majority(5), "majority5");
    assert!(r.circuit.num_gates() <= 16, "{} gates", r.circuit.num_gates());
}
