//! The enumeration engine against the SAT engine: on seeded random small tables (single and
//! multi-output, with don't-cares, over the full basis and restricted ones) both must agree on
//! the minimum size, and every circuit must verify against its table.

use std::time::Duration;

use kiln_logic::exact_sat::{self, SatParams, SatSolver};
use kiln_logic::{search_with, verify, Basis, EngineChoice, Row, SearchOptions, SplitMix64, Table};

/// Largest size either engine is asked for: every table below either has a circuit this small
/// or both engines must refute every size up to it.
const MAX_GATES: usize = 6;

/// A table over `n` inputs with `m` outputs, each row kept with probability `keep` percent
/// (the rest are don't-cares), at least two rows.
fn random_table(rng: &mut SplitMix64, n: usize, m: usize, keep: u64) -> Table {
    let mut rows: Vec<Row> = Vec::new();
    for r in 0..1u64 << n {
        let outputs = rng.next_u64() & ((1 << m) - 1);
        if rng.next_u64() % 100 < keep || rows.len() + ((1 << n) - r as usize) <= 2 {
            rows.push(Row {
                inputs: r,
                outputs,
                line: None,
            });
        }
    }
    let names = |p: &str, k: usize| (0..k).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    Table::from_rows("random", names("X", n), names("Y", m), rows)
}

/// Runs both engines on `t` and checks that they agree and that their circuits verify. Returns
/// whether a circuit within [`MAX_GATES`] exists.
fn compare(t: &Table, basis: &Basis, case: &str) -> bool {
    let opts = SearchOptions {
        basis: basis.clone(),
        max_gates: MAX_GATES,
        timeout: Some(Duration::from_secs(120)),
    };
    let e = search_with(t, &opts, EngineChoice::Enumeration).unwrap();
    let what = format!(
        "{case}: {} inputs, {} outputs, {} rows, basis {basis}",
        t.num_inputs(),
        t.num_outputs(),
        t.len()
    );
    assert!(verify(&e.circuit, t).unwrap().ok(), "{what}: enumeration's circuit does not verify");
    // Both solvers, each with the input symmetries broken, and both ways of running a size
    // (cubes over one or two threads, or the whole instance): the answer must not depend on any.
    let mut found = false;
    for (solver, cubes, threads) in [
        (SatSolver::Cadical, true, 2),
        (SatSolver::Batsat, true, 1),
        (SatSolver::Cadical, false, 1),
    ] {
        let what = format!("{what}, {solver:?}, cubes {cubes}, {threads} threads");
        let s = exact_sat::synthesize(
            t,
            &SatParams {
                basis: basis.clone(),
                max_gates: MAX_GATES,
                timeout: Some(Duration::from_secs(120)),
                solver,
                cubes,
                threads,
                ..SatParams::default()
            },
        )
        .unwrap();
        assert!(!s.timed_out, "{what}: SAT ran out of time");
        found = match &s.circuit {
            Some(c) => {
                assert!(verify(c, t).unwrap().ok(), "{what}: SAT's circuit does not verify");
                assert!(e.optimal, "{what}: SAT found {} gates, enumeration proved nothing", c.num_gates());
                assert_eq!(e.gates, c.num_gates(), "{what}");
                true
            }
            None => {
                // Both refuted every size up to the bound.
                assert_eq!(s.lower_bound, MAX_GATES + 1, "{what}");
                assert_eq!(e.lower_bound, MAX_GATES + 1, "{what}");
                false
            }
        };
    }
    found
}

#[test]
fn enumeration_and_sat_agree_on_random_small_tables() {
    let bases = ["AND,OR,XOR,NAND,NOR,XNOR,IMPLIES,NIMPLIES", "AND,OR,NOT", "NAND", "XOR,AND"];
    let mut rng = SplitMix64::new(0x5eed_2026);
    let (mut solved, mut refuted) = (0, 0);
    for case in 0..200 {
        let basis = Basis::parse(bases[case % bases.len()]).unwrap();
        // Restricted bases need many more gates for the same table, so they get fewer outputs
        // and more don't-cares: most tables should have a circuit within MAX_GATES, and SAT
        // refuting six gates over a restricted basis takes it up to seconds.
        let restricted = case % bases.len() != 0;
        let (n, m, keep) = match (case / bases.len() % 2, restricted) {
            (0, false) => (3, 1 + case % 3, 70 + rng.next_u64() % 31),
            (_, false) => (4, 1 + case % 2, 30 + rng.next_u64() % 50),
            (0, true) => (3, 1 + case / 8 % 2, 50 + rng.next_u64() % 41),
            (_, true) => (4, 1, 25 + rng.next_u64() % 36),
        };
        let t = random_table(&mut rng, n, m, keep);
        match compare(&t, &basis, &format!("case {case}")) {
            true => solved += 1,
            false => refuted += 1,
        }
    }
    // The comparison is only worth something if most tables were actually solved.
    assert!(solved >= 120, "{solved} solved, {refuted} refuted");
}

/// Tables of more than 64 rows take the enumeration's multi-word path: seven inputs, outputs
/// that depend on three or four of them, some rows left out.
#[test]
fn enumeration_and_sat_agree_on_wide_tables() {
    let mut rng = SplitMix64::new(0x77_1de);
    let mut solved = 0;
    for case in 0..16 {
        let basis = Basis::parse(["AND,OR,XOR,NAND,NOR,XNOR,IMPLIES,NIMPLIES", "AND,OR,NOT"][case % 2]).unwrap();
        // Functions of three variables: with four, refuting six gates over seven inputs takes
        // either engine seconds.
        let (m, nvars) = [(1, 3), (1, 3), (2, 3), (1, 3)][case % 4];
        let fs: Vec<u64> = (0..m).map(|_| rng.next_u64()).collect();
        let vars: Vec<u32> = (0..nvars).map(|_| (rng.next_u64() % 7) as u32).collect();
        let mut rows = Vec::new();
        for r in 0..128u64 {
            let keep = rng.next_u64() % 100 < 80;
            // The outputs read three or four (not necessarily distinct) inputs through random
            // functions.
            let x = vars.iter().enumerate().fold(0, |acc, (i, &v)| acc | (r >> v & 1) << i);
            let outputs = fs.iter().enumerate().fold(0, |acc, (j, f)| acc | (f >> x & 1) << j);
            if keep {
                rows.push(Row {
                    inputs: r,
                    outputs,
                    line: None,
                });
            }
        }
        let names = |p: &str, k: usize| (0..k).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let t = Table::from_rows("wide", names("X", 7), names("Y", m), rows);
        assert!(t.words() > 1);
        solved += usize::from(compare(&t, &basis, &format!("wide case {case}")));
    }
    assert!(solved >= 10, "{solved} solved");
}

/// A basis that cannot write the Shannon expansion (AND and OR, no NOT) must not stop the SAT
/// engine: the expansion is only the upper bound taken before it, and majority-3 is monotone,
/// so AND and OR write it in 4 gates.
#[test]
fn sat_search_without_a_fallback_still_finds_monotone_circuits() {
    let t = kiln_logic::library::majority(3);
    let opts = SearchOptions {
        basis: Basis::parse("AND,OR").unwrap(),
        ..SearchOptions::default()
    };
    let r = search_with(&t, &opts, EngineChoice::Sat).unwrap();
    assert!(r.optimal);
    assert_eq!(r.gates, 4);
    assert!(verify(&r.circuit, &t).unwrap().ok());
}
