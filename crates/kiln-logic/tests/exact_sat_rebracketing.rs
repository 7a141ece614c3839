//! Re-bracketing symmetry breaking in the SAT engine (`SatParams::rebracketing`) must never
//! lose a minimum: with it alone (input symmetries off, so nothing else prunes) the engine agrees
//! with the precomputed optimum of every 4-input NPN class and with itself without it, and on
//! random 5-input tables with don't-cares it agrees with the engine without it.

mod common;

use std::time::Duration;

use kiln_logic::exact_sat::SatParams;
use kiln_logic::npn::{optimum, representatives, NUM_CLASSES};
use kiln_logic::{library, Row, SplitMix64, Table};

fn params(rebracketing: bool) -> SatParams {
    SatParams {
        timeout: Some(Duration::from_secs(60)),
        input_symmetries: false,
        rebracketing,
        ..SatParams::default()
    }
}

/// Minimum proven by SAT, its circuit checked by complete simulation.
fn sat_min(t: &Table, rebracketing: bool) -> usize {
    common::proven_minimum(t, &params(rebracketing)).lower_bound
}

#[test]
fn every_npn_class_keeps_its_minimum() {
    let reps = representatives();
    assert_eq!(reps.len(), NUM_CLASSES);
    for (class, &tt) in reps.iter().enumerate() {
        let opt = optimum(class as u8).unwrap();
        assert!(opt.optimal);
        let t = library::from_truth_table(4, u64::from(tt));
        let with = sat_min(&t, true);
        // The library's optima count no inverters, so a complemented input (a NOT gate here) is 0.
        if !opt.gates.is_empty() {
            assert_eq!(with, opt.gates.len(), "class {class} ({tt:#06x})");
        }
        assert_eq!(with, sat_min(&t, false), "class {class} ({tt:#06x})");
    }
}

/// A 5-input table with the rows of `keep` percent (the rest don't-cares) and outputs given by
/// `f` on the row number.
fn table5(rng: &mut SplitMix64, keep: u64, f: impl Fn(u64) -> u64) -> Table {
    let rows: Vec<Row> = (0..32u64)
        .filter(|_| rng.next_u64() % 100 < keep)
        .map(|r| Row {
            inputs: r,
            outputs: f(r),
            line: None,
        })
        .collect();
    let names = |p: &str, k: usize| (0..k).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    Table::from_rows("random5", names("X", 5), names("Y", 1), rows)
}

#[test]
fn random_five_input_tables_keep_their_minimum() {
    let mut rng = SplitMix64::new(0x5eed_b7ac);
    for case in 0..24 {
        // Sums of products of two or three literals: chains of AND, OR and XOR, where
        // re-bracketing applies, with minima small enough to prove in seconds.
        let a = rng.next_u64();
        let lit = move |r: u64, i: u64| (r >> ((a >> (4 * i)) % 5) & 1) ^ (a >> (20 + i) & 1);
        let xor = a >> 40 & 1 == 1;
        let f = move |r: u64| {
            let p = lit(r, 0) & lit(r, 1) & lit(r, 2);
            let q = lit(r, 3) & lit(r, 4);
            if xor {
                p ^ q
            } else {
                p | q
            }
        };
        let keep = if case % 3 == 0 { 70 } else { 100 };
        let t = table5(&mut rng, keep, f);
        if t.len() < 2 {
            continue;
        }
        assert_eq!(sat_min(&t, true), sat_min(&t, false), "case {case}");
    }
}
