//! Input-symmetry breaking in the SAT engine must never lose a minimum: the
//! engine with it agrees with the enumeration (and with the precomputed
//! 4-input optima) on functions that have symmetries of every kind the
//! engine looks for — interchangeable inputs, permutations that move
//! inputs between classes, and permutations combined with complemented
//! inputs.

mod common;

use std::time::Duration;

use kiln_logic::exact_sat::{synthesize, SatParams};
use kiln_logic::npn::{canonise, optimum, representatives, NpnTransform, NUM_CLASSES};
use kiln_logic::{library, verify, SplitMix64, Table};

fn params(input_symmetries: bool) -> SatParams {
    SatParams {
        timeout: Some(Duration::from_secs(60)),
        input_symmetries,
        ..SatParams::default()
    }
}

/// Minimum proven by SAT; the circuit is checked by complete simulation.
/// Returns the size and how many input permutations were broken.
fn sat_min(t: &Table, input_symmetries: bool) -> (usize, usize) {
    let r = common::proven_minimum(t, &params(input_symmetries));
    (r.lower_bound, r.stats.input_symmetries)
}

/// Minimum size of a 4-input function from the precomputed NPN optima
/// (found by the enumeration, checked by simulation in `npn_library`'s tests).
fn library_min(tt: u16) -> usize {
    let opt = optimum(canonise(tt).class).unwrap();
    assert!(opt.optimal);
    opt.gates.len()
}

/// The 4-input function whose value at count-of-ones `c` is bit `c` of
/// `values`, as a truth table.
fn symmetric4(values: u16) -> u16 {
    (0..16u16).fold(0, |acc, x| acc | (values >> x.count_ones() & 1) << x)
}

#[test]
fn every_symmetric_four_input_function_keeps_its_minimum() {
    for values in 0..32u16 {
        let tt = symmetric4(values);
        let (with, perms) = sat_min(&library::from_truth_table(4, u64::from(tt)), true);
        assert_eq!(with, library_min(tt), "values {values:#07b}");
        // A non-constant symmetric function has all six swaps.
        if values != 0 && values != 31 {
            assert_eq!(perms, 6, "values {values:#07b}");
        }
    }
}

/// Every NPN class of 4-input functions, each under a random
/// input-negating permutation (so the symmetries sit on other inputs and
/// carry complements): the size with symmetry breaking is the class's
/// precomputed optimum (found by the enumeration and checked by simulation
/// in `npn_library`'s own tests).
#[test]
fn every_npn_class_keeps_its_minimum_under_random_transforms() {
    let mut rng = SplitMix64::new(2026);
    let mut with_symmetries = 0;
    for class in 0..NUM_CLASSES {
        let rep = representatives()[class];
        let mut perm = [0u8, 1, 2, 3];
        for i in (1..4).rev() {
            perm.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let tr = NpnTransform {
            perm,
            input_negations: (rng.next_u64() & 15) as u8,
            output_negated: rng.next_u64() & 1 == 1,
        };
        let f = tr.inverse().apply(rep);
        let t = library::from_truth_table(4, u64::from(f));
        let (with, perms) = sat_min(&t, true);
        assert_eq!(with, library_min(rep), "class {class}, function {f:#06x}");
        if perms > 0 {
            with_symmetries += 1;
        }
    }
    // Most classes have some symmetry; the test must exercise them.
    assert!(with_symmetries > 150, "only {with_symmetries} classes had a symmetry");
}

#[test]
fn symmetries_found_on_known_functions() {
    // Majority-5: all ten swaps.
    let r = synthesize(
        &library::majority(5),
        &SatParams {
            max_gates: 6,
            ..params(true)
        },
    )
    .unwrap();
    assert_eq!(r.stats.input_symmetries, 10);
    assert_eq!(r.lower_bound, 7, "majority-5 needs more than 6 gates");
    // 4:1 multiplexer (select lines first): no two inputs are
    // interchangeable, but 7 permutations are symmetries once data inputs
    // may be swapped with complemented select lines.
    let r = synthesize(
        &library::mux4(),
        &SatParams {
            max_gates: 4,
            ..params(true)
        },
    )
    .unwrap();
    assert_eq!(r.stats.input_symmetries, 7);
    // A random 5-input function has none.
    let mut rng = SplitMix64::new(5);
    let t = library::from_truth_table(5, rng.next_u64() & 0xFFFF_FFFF);
    let r = synthesize(
        &t,
        &SatParams {
            max_gates: 3,
            ..params(true)
        },
    )
    .unwrap();
    assert_eq!(r.stats.input_symmetries, 0);
}

/// Population count of four inputs (three outputs, all symmetric): 9
/// gates, where ABC's best script finds 12; refuting 8 takes the solver
/// seconds with the symmetries broken and over a minute without.
#[test]
fn popcount4_needs_nine_gates() {
    let t = Table::from_fn(&["A", "B", "C", "D"], &["C2", "C1", "C0"], |v| {
        let c = v.iter().filter(|&&b| b).count();
        vec![c & 4 != 0, c & 2 != 0, c & 1 != 0]
    });
    let (size, perms) = sat_min(&t, true);
    assert_eq!((size, perms), (9, 6));
}

/// The 9-gate majority-5 circuit the SAT engine found (`kiln search
/// majority5.csv --engine sat`, 54 s on two cores, with 8 gates refuted;
/// ABC's best script gives 11) computes majority-5 on all 32 rows. Finding
/// it takes too long for a test; this pins the circuit, checked
/// independently of the engine by complete simulation.
#[test]
fn nine_gate_majority5_is_correct() {
    use kiln_logic::{Circuit, Op, Signal};
    let t = library::majority(5);
    let mut c = Circuit::for_table(&t);
    let x = |i: usize| Signal::Input(i);
    let z1 = c.gate(Op::Xor, &[x(0), x(1)]).unwrap();
    let z2 = c.gate(Op::Xor, &[x(0), x(2)]).unwrap();
    let z3 = c.gate(Op::Xor, &[x(3), x(4)]).unwrap();
    let z4 = c.gate(Op::Xor, &[x(1), z2]).unwrap();
    let z5 = c.gate(Op::Or, &[z1, z2]).unwrap();
    let z6 = c.gate(Op::Xor, &[x(3), z4]).unwrap();
    let z7 = c.gate(Op::Or, &[z3, z6]).unwrap();
    let z8 = c.gate(Op::And, &[z5, z7]).unwrap();
    let y = c.gate(Op::Xor, &[z4, z8]).unwrap();
    let name = t.output_names()[0].clone();
    c.set_output(&name, y).unwrap();
    assert_eq!(c.num_gates(), 9);
    assert!(verify(&c, &t).unwrap().ok());
    // And it is majority: a single flipped gate breaks it (the check can fail).
    let mut wrong = c.clone();
    let z9 = wrong.gate(Op::Xnor, &[z4, z8]).unwrap();
    wrong.set_output(&name, z9).unwrap();
    assert!(!verify(&wrong, &t).unwrap().ok());
}
