//! Restriction bounds in the SAT engine (`SatParams::restrictions`) must never lose a minimum:
//! with the symmetry rules, as searched by default, the engine agrees with the precomputed
//! optimum of every 4-input NPN class, on random 5-input tables with don't-cares, with the
//! symmetry rules off, it agrees with the engine without them, and so it does on random
//! multi-output tables. The bounds themselves are checked on functions whose restrictions are
//! known.

mod common;

use std::time::Duration;

use kiln_logic::exact_sat::{synthesize, SatParams};
use kiln_logic::npn::{optimum, representatives, NUM_CLASSES};
use kiln_logic::{library, Row, SplitMix64, Table};

fn params(restrictions: bool) -> SatParams {
    SatParams {
        timeout: Some(Duration::from_secs(60)),
        input_symmetries: false,
        rebracketing: false,
        restrictions,
        ..SatParams::default()
    }
}

/// Minimum proven by SAT, its circuit checked by complete simulation.
fn sat_min(t: &Table, restrictions: bool) -> usize {
    common::proven_minimum(t, &params(restrictions)).lower_bound
}

#[test]
fn every_npn_class_keeps_its_minimum() {
    let reps = representatives();
    assert_eq!(reps.len(), NUM_CLASSES);
    let mut bounded = 0;
    for (class, &tt) in reps.iter().enumerate() {
        let opt = optimum(class as u8).unwrap();
        let t = library::from_truth_table(4, u64::from(tt));
        // As searched by default: with the symmetry rules, which restriction bounds must not
        // contradict.
        let r = common::proven_minimum(&t, &SatParams::default());
        let with = r.lower_bound;
        // The library's optima count no inverters, so a complemented input (a NOT gate here) is 0.
        if !opt.gates.is_empty() {
            assert_eq!(with, opt.gates.len(), "class {class} ({tt:#06x})");
        }
        // A bound is proven for the function with one input fixed, so it lies below the minimum.
        for &m in r.stats.restriction_bounds.iter().flatten() {
            assert!(m < with, "class {class}: bound {m}, minimum {with}");
        }
        bounded += usize::from(r.stats.restriction_bounds.iter().flatten().any(|&m| m > 0));
    }
    // Most classes depend on all four inputs and have restrictions with gates.
    assert!(bounded > 150, "only {bounded} classes had a restriction bound");
}

/// A 5-input table with the rows of `keep` percent (the rest don't-cares) and random outputs.
fn random5(rng: &mut SplitMix64, keep: u64) -> Table {
    let f = rng.next_u64();
    let rows: Vec<Row> = (0..32u64)
        .filter(|_| rng.next_u64() % 100 < keep)
        .map(|r| Row {
            inputs: r,
            outputs: f >> r & 1,
            line: None,
        })
        .collect();
    let names = |p: &str, k: usize| (0..k).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    Table::from_rows("random5", names("X", 5), names("Y", 1), rows)
}

#[test]
fn random_five_input_tables_keep_their_minimum() {
    let mut rng = SplitMix64::new(0x2e57_71c7);
    let mut minima = Vec::new();
    for case in 0..24 {
        // From two fifths to three fifths of the rows cared for: minima of 1 to 6 gates, with
        // restrictions that keep rows of both values and some that keep one.
        let keep = 40 + 5 * (case % 5);
        let t = random5(&mut rng, keep);
        if t.len() < 2 {
            continue;
        }
        let with = sat_min(&t, true);
        assert_eq!(with, sat_min(&t, false), "case {case} ({} rows)", t.len());
        minima.push(with);
    }
    eprintln!("minima {minima:?}");
}

/// Several outputs: a restricted circuit may leave two outputs on one gate, so bounds are taken
/// only where no two restricted outputs are complements. Random 4-input tables with 2 or 3
/// outputs and don't-cares, searched as by default with and without the bounds.
#[test]
fn random_multi_output_tables_keep_their_minimum() {
    let mut rng = SplitMix64::new(0x3a17_0b5e);
    let mut bounded = 0;
    for case in 0..8 {
        // Complete random multi-output tables can take minutes to prove; with two fifths (three
        // fifths for three outputs) of the rows left out, seconds.
        let outputs = 2 + case % 2;
        let keep = if outputs == 3 { 40 } else { 60 };
        let f = rng.next_u64();
        let rows: Vec<Row> = (0..16u64)
            .filter(|_| rng.next_u64() % 100 < keep)
            .map(|r| Row {
                inputs: r,
                // Output j is bit r of the j-th 16-bit word of f.
                outputs: (0..outputs).fold(0, |acc, j| acc | (f >> (16 * j as u64 + r) & 1) << j),
                line: None,
            })
            .collect();
        let names = |p: &str, k: usize| (0..k).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let t = Table::from_rows("random4x", names("X", 4), names("Y", outputs), rows);
        let solve = |restrictions: bool| {
            let p = SatParams {
                timeout: Some(Duration::from_secs(60)),
                restrictions,
                ..SatParams::default()
            };
            let r = common::proven_minimum(&t, &p);
            (r.lower_bound, r.stats.restriction_bounds)
        };
        let (with, bounds) = solve(true);
        assert_eq!(with, solve(false).0, "case {case}");
        for &m in bounds.iter().flatten() {
            assert!(m < with, "case {case}: bound {m}, minimum {with}");
        }
        bounded += usize::from(bounds.iter().flatten().any(|&m| m > 0));
    }
    assert!(bounded >= 4, "only {bounded} tables had a restriction bound");
}

/// Majority-5 with any input fixed is a 4-input threshold function of 7 gates, so each input
/// has one reader at 8 gates, and 8 gates are refuted in about a second (22 s without). Finding
/// the 9-gate circuit is left out: on one thread that took from 6 s to a minute.
#[test]
fn majority5_restrictions_refute_eight_gates() {
    let t = library::majority(5);
    let p = SatParams {
        max_gates: 8,
        timeout: Some(Duration::from_secs(120)),
        ..SatParams::default()
    };
    let r = synthesize(&t, &p).unwrap();
    // Inputs 2..5 take the smaller of input 1's two bounds, which are equal.
    assert_eq!(r.stats.restriction_bounds, vec![[7, 7]; 5]);
    assert!(r.circuit.is_none());
    assert!(!r.timed_out);
    assert_eq!(r.lower_bound, 9);
}

/// The 4:1 mux with a select fixed is a 2:1 mux (3 gates), with a data input fixed a function of
/// 7 gates. So every circuit has at least 8 gates, without a single size handed to the solver.
/// The bounds get an eighth of the timeout: the default 10 s left them too little on a loaded
/// machine (tests in parallel beside a solver on the other core), and one went unproven.
#[test]
fn mux4_restrictions_bound_its_size() {
    let t = library::mux4();
    let p = SatParams {
        max_gates: 7,
        timeout: Some(Duration::from_secs(120)),
        ..SatParams::default()
    };
    let r = synthesize(&t, &p).unwrap();
    assert!(r.circuit.is_none());
    assert!(!r.timed_out);
    assert_eq!(r.lower_bound, 8);
    assert_eq!(r.stats.solves, 0);
    let names = t.input_names();
    let bounds = &r.stats.restriction_bounds;
    assert_eq!(bounds.len(), 6);
    for (i, name) in names.iter().enumerate() {
        let want = if name.starts_with('S') { 3 } else { 7 };
        assert_eq!(bounds[i], [want, want], "input {name}");
    }
}
