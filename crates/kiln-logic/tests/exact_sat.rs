//! SAT-based exact synthesis: known minima, agreement with the enumeration
//! search, and every returned circuit checked by complete simulation.

mod common;

use std::time::{Duration, Instant};

use kiln_logic::exact_sat::{dimacs, supports, synthesize, SatError, SatParams};
use kiln_logic::{library, search, search_with, verify, Basis, Engine, EngineChoice, Row, SearchOptions, SplitMix64, Table};

fn params(secs: u64) -> SatParams {
    SatParams {
        timeout: Some(Duration::from_secs(secs)),
        ..Default::default()
    }
}

/// Minimum gate count proven by the SAT engine; the circuit must verify.
fn sat_min(t: &Table, p: &SatParams) -> usize {
    common::proven_minimum(t, p).lower_bound
}

#[test]
fn known_minima() {
    let p = params(30);
    assert_eq!(sat_min(&library::xor(), &p), 1);
    assert_eq!(sat_min(&library::full_adder(), &p), 5);
    assert_eq!(sat_min(&library::majority(3), &p), 4);
    assert_eq!(sat_min(&library::parity(4), &p), 3);
    assert_eq!(sat_min(&library::mux2(), &p), 3);
}

#[test]
fn two_bit_adder_has_seven_gates() {
    assert_eq!(sat_min(&library::adder2(), &params(30)), 7);
}

#[test]
fn cubes_and_whole_instances_agree() {
    // Split into cubes on one and on two threads, and whole: every size below the minimum must be
    // refuted by all of them. The 2-bit adder's symmetries leave its first gate too few pairs to
    // split over two threads (so there it is solved whole), enough for one; the 4-input function
    // 0x6b2d has no symmetries. `split_up_to`: the most threads that still get cubes.
    let irregular = Table::from_fn(&["a", "b", "c", "d"], &["y"], |v| {
        let row = v.iter().enumerate().map(|(i, &b)| (b as u32) << (3 - i)).sum::<u32>();
        vec![0x6b2du32 >> row & 1 == 1]
    });
    for (name, t, split_up_to) in [("adder2", library::adder2(), 1), ("0x6b2d", irregular, 2)] {
        let mut minima = Vec::new();
        for (cubes, threads) in [(true, 1), (true, 2), (false, 1)] {
            let p = SatParams {
                cubes,
                threads,
                ..params(60)
            };
            let r = synthesize(&t, &p).unwrap();
            let what = format!("{name}: cubes {cubes}, {threads} threads: {:?}", r.stats);
            let c = r.circuit.expect("a circuit within the limits");
            assert!(verify(&c, &t).unwrap().ok(), "{what}: does not verify");
            assert_eq!(c.num_gates(), r.lower_bound, "{what}");
            assert_eq!(r.stats.cubes > 0, cubes && threads <= split_up_to, "{what}");
            minima.push(r.lower_bound);
        }
        assert!(minima.iter().all(|&m| m == minima[0]), "{minima:?}");
    }
}

/// Minimum by enumeration alone (proven).
fn enum_min(t: &Table, basis: &Basis) -> usize {
    let o = SearchOptions {
        basis: basis.clone(),
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let r = search_with(t, &o, EngineChoice::Enumeration).unwrap();
    assert!(r.optimal && r.engine == Engine::Enumeration, "not proven: {}", library::to_csv(t));
    assert!(verify(&r.circuit, t).unwrap().ok());
    r.gates
}

#[test]
fn agrees_with_enumeration_on_all_three_input_functions() {
    let p = params(30);
    let mut hist = [0usize; 8];
    for tt in 0..=255u64 {
        let t = library::from_truth_table(3, tt);
        let s = sat_min(&t, &p);
        assert_eq!(s, enum_min(&t, &Basis::all()), "{tt:#04x}");
        hist[s] += 1;
    }
    // Minimum sizes over all two-input gates: constants and inputs cost 0,
    // and no 3-input function needs more than 4 gates (Knuth, TAOCP 7.1.2).
    assert_eq!(hist[..6], [5, 33, 114, 80, 24, 0]);
}

#[test]
fn agrees_with_enumeration_on_restricted_bases() {
    let mut rng = SplitMix64::new(3);
    for spec in ["AND,OR,NAND", "NAND", "AND,NOT", "NOR,XOR", "IMPLIES"] {
        let basis = Basis::parse(spec).unwrap();
        // Refuting 8 gates over AND,NOT takes the solver seconds per
        // function (the enumeration milliseconds), so stop earlier there.
        let max_gates = if spec == "AND,NOT" { 6 } else { 8 };
        let p = SatParams {
            basis: basis.clone(),
            max_gates,
            ..params(30)
        };
        for _ in 0..12 {
            let tt = rng.next_u64() & 0xFF;
            let t = library::from_truth_table(3, tt);
            let r = synthesize(&t, &p).unwrap();
            let o = SearchOptions {
                basis: basis.clone(),
                max_gates,
                timeout: Some(Duration::from_secs(30)),
            };
            let e = search_with(&t, &o, EngineChoice::Enumeration).unwrap();
            match r.circuit {
                Some(c) => {
                    assert!(verify(&c, &t).unwrap().ok(), "{spec} {tt:#04x}");
                    assert!(c.gates().iter().all(|g| basis.contains(g.op)), "{spec} {tt:#04x}: {c}");
                    assert!(e.optimal, "{spec} {tt:#04x}");
                    assert_eq!(c.num_gates(), e.gates, "{spec} {tt:#04x}");
                }
                // Every basis here is complete, but a function may need
                // more than `max_gates` gates in it.
                None => assert!(!e.optimal || e.gates > max_gates, "{spec} {tt:#04x}"),
            }
        }
    }
}

#[test]
fn agrees_with_enumeration_on_random_four_input_functions() {
    let p = params(60);
    let mut rng = SplitMix64::new(17);
    for _ in 0..12 {
        let tt = rng.next_u64() & 0xFFFF;
        let t = library::from_truth_table(4, tt);
        assert_eq!(sat_min(&t, &p), enum_min(&t, &Basis::all()), "{tt:#06x}");
    }
}

/// Random partial tables (rows dropped = don't-cares) with up to three
/// outputs, some equal, complementary or trivial.
#[test]
fn agrees_with_enumeration_on_partial_multi_output_tables() {
    let mut rng = SplitMix64::new(99);
    for case in 0..40 {
        // Four inputs with one output, three inputs with up to three: the
        // enumeration proves these in milliseconds.
        let m = 1 + (rng.next_u64() % 3) as usize;
        let n = if m == 1 { 4 } else { 3 };
        let mut rows = Vec::new();
        for x in 0..1u64 << n {
            if rng.next_u64() & 3 == 0 {
                continue; // a don't-care
            }
            let mut out = rng.next_u64() & ((1 << m) - 1);
            if m >= 2 && case % 5 == 0 {
                // Output 1 the complement of output 0.
                out = (out & !2) | ((!out & 1) << 1);
            }
            rows.push(Row {
                inputs: x,
                outputs: out,
                line: None,
            });
        }
        let names = |p: &str, k: usize| (0..k).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let t = Table::from_rows("<random>", names("X", n), names("Y", m), rows);
        let s = sat_min(&t, &params(30));
        assert_eq!(s, enum_min(&t, &Basis::all()), "case {case}: {}", library::to_csv(&t));
    }
}

/// Outputs that are complements of an input, or of each other, cannot use
/// the normal-form shortcut of absorbing negations.
#[test]
fn complemented_outputs() {
    let p = params(30);
    let cases = [
        // NOT a alone: one negation gate (NAND a a).
        Table::from_fn(&["a", "b"], &["y"], |v| vec![!v[0]]),
        // NOT a and a AND b: two gates.
        Table::from_fn(&["a", "b"], &["y", "z"], |v| vec![!v[0], v[0] && v[1]]),
        // XOR and XNOR of the same pair: two gates on the same fanins.
        Table::from_fn(&["a", "b", "c"], &["x", "n"], |v| vec![v[0] ^ v[1], !(v[0] ^ v[1])]),
        // Majority and its complement.
        Table::from_fn(&["a", "b", "c"], &["m", "nm"], |v| {
            let m = (v[0] as u8 + v[1] as u8 + v[2] as u8) >= 2;
            vec![m, !m]
        }),
    ];
    let want = [1, 2, 2, 5];
    for (t, w) in cases.iter().zip(want) {
        assert_eq!(sat_min(t, &p), w, "{}", library::to_csv(t));
        assert_eq!(enum_min(t, &Basis::all()), w, "{}", library::to_csv(t));
    }
}

#[test]
fn search_reports_the_engine() {
    // Generous: the machines running the tests are shared and slow.
    let o = SearchOptions {
        timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    let r = search_with(&library::adder2(), &o, EngineChoice::Sat).unwrap();
    assert_eq!((r.gates, r.optimal, r.engine), (7, true, Engine::Sat));
    let r = search_with(&library::adder2(), &o, EngineChoice::Enumeration).unwrap();
    assert_eq!((r.gates, r.optimal, r.engine), (7, true, Engine::Enumeration));
    // Auto settles small tables by enumeration within its slice.
    let r = search(&library::full_adder(), &o).unwrap();
    assert_eq!((r.gates, r.optimal, r.engine), (5, true, Engine::Enumeration));
    // One input: no SAT encoding (gates need two fanins); enumeration runs.
    let not = library::from_truth_table(1, 0b01);
    let r = search_with(&not, &o, EngineChoice::Sat).unwrap();
    assert_eq!((r.gates, r.optimal, r.engine), (1, true, Engine::Enumeration));
    assert_eq!(EngineChoice::parse("SAT"), Ok(EngineChoice::Sat));
    assert_eq!(EngineChoice::parse("enum"), Ok(EngineChoice::Enumeration));
    assert!(EngineChoice::parse("fast").is_err());
    assert_eq!(Engine::Sat.name(), "sat");
}

#[test]
fn limits_are_honoured() {
    // Majority of five needs more than seven gates; proving that takes far
    // longer than the budget here, so the search stops without a circuit.
    let p = SatParams {
        timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let start = Instant::now();
    let r = synthesize(&library::majority(5), &p).unwrap();
    assert!(r.timed_out && r.circuit.is_none());
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(r.lower_bound >= 4);
    let p = SatParams {
        conflict_limit: Some(10),
        timeout: None,
        ..Default::default()
    };
    let r = synthesize(&library::majority(5), &p).unwrap();
    assert!(r.timed_out && r.circuit.is_none());
    // Constant and copied outputs need no gates.
    let t = Table::from_fn(&["a", "b"], &["zero", "copy"], |v| vec![false, v[1]]);
    let r = synthesize(&t, &params(5)).unwrap();
    assert_eq!(r.circuit.map(|c| c.num_gates()), Some(0));
    // Too many rows for the encoding: an error value, and no attempt.
    let big = library::parity(13);
    assert!(matches!(synthesize(&big, &p), Err(SatError::Unsupported(_))));
    assert!(!supports(&big, &Basis::all()));
    // Within the row limit but past the clause limit at its first size:
    // stops at once like a timeout, nothing refuted beyond the bound.
    let r = synthesize(&library::parity(12), &params(5)).unwrap();
    assert!(r.timed_out && r.circuit.is_none() && r.stats.solves == 0);
    // Absurd sizes are refused, not built.
    assert!(matches!(
        dimacs(&library::xor(), &Basis::all(), usize::MAX),
        Err(SatError::Unsupported(_))
    ));
    let text = dimacs(&library::xor(), &Basis::all(), 1).unwrap();
    assert!(text.starts_with("p cnf "), "{text}");
}

/// Timings for the report: `cargo test --release -p kiln-logic --test exact_sat -- --ignored --nocapture bench`.
/// With `KILN_DIMACS_DIR` set, also writes each instance's DIMACS files.
#[test]
#[ignore]
fn bench_instances() {
    let cases: Vec<(&str, Table)> = vec![
        ("parity5", library::parity(5)),
        ("full_adder", library::full_adder()),
        ("adder2", library::adder2()),
        ("majority5", library::majority(5)),
        ("mux4", library::mux4()),
        ("comparator2", library::comparator2()),
    ];
    let mut cases: Vec<(String, Table)> = cases.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    // Seeded random 5-input functions (their minima are mostly 10-12 gates)
    // and 5-input functions with small known structure.
    let mut rng = kiln_logic::SplitMix64::new(5);
    for i in 0..3 {
        let tt = rng.next_u64() & 0xFFFF_FFFF;
        cases.push((format!("rand5_{i}_{tt:08x}"), library::from_truth_table(5, tt)));
    }
    let and_or = Table::from_fn(&["a", "b", "c", "d", "e"], &["y"], |v| vec![v[0] && v[1] || v[2] && v[3] && v[4]]);
    cases.push(("ab+cde".into(), and_or));
    let thr4 = Table::from_fn(&["a", "b", "c", "d", "e"], &["y"], |v| vec![v.iter().filter(|&&b| b).count() >= 4]);
    cases.push(("threshold4of5".into(), thr4));
    let secs: u64 = std::env::var("KILN_BENCH_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let only = std::env::var("KILN_BENCH_ONLY").ok();
    for (name, t) in &cases {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let start = Instant::now();
        let r = synthesize(t, &params(secs)).unwrap();
        println!(
            "{name}: gates {:?} lower_bound {} timed_out {} {:.2}s per_size {:?} vars {} clauses {} conflicts {}",
            r.circuit.as_ref().map(|c| c.num_gates()),
            r.lower_bound,
            r.timed_out,
            start.elapsed().as_secs_f64(),
            r.stats.per_size,
            r.stats.variables,
            r.stats.clauses,
            r.stats.conflicts
        );
        if let Some(c) = &r.circuit {
            assert!(verify(c, t).unwrap().ok());
        }
        if let Ok(dir) = std::env::var("KILN_DIMACS_DIR") {
            for (k, _) in &r.stats.per_size {
                let text = dimacs(t, &Basis::all(), *k).unwrap();
                std::fs::write(format!("{dir}/{name}_{k}.cnf"), text).unwrap();
            }
        }
    }
}

/// Enumeration vs SAT on the same tables, for choosing the engine:
/// `cargo test --release -p kiln-logic --test exact_sat -- --ignored --nocapture compare`.
#[test]
#[ignore]
fn compare_engines() {
    let secs: u64 = std::env::var("KILN_BENCH_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut cases: Vec<(String, Table)> = vec![
        ("parity5".into(), library::parity(5)),
        ("adder2".into(), library::adder2()),
        ("comparator2".into(), library::comparator2()),
        ("full_adder".into(), library::full_adder()),
    ];
    let mut rng = SplitMix64::new(7);
    for n in [3usize, 4, 5] {
        for i in 0..4 {
            let tt = rng.next_u64() & ((1u64 << (1 << n)) - 1);
            cases.push((format!("rand{n}_{i}_{tt:x}"), library::from_truth_table(n, tt)));
        }
    }
    for (name, t) in &cases {
        let s0 = Instant::now();
        let e = search(
            t,
            &SearchOptions {
                timeout: Some(Duration::from_secs(secs)),
                ..Default::default()
            },
        )
        .unwrap();
        let te = s0.elapsed().as_secs_f64();
        let s1 = Instant::now();
        let r = synthesize(t, &params(secs)).unwrap();
        let ts = s1.elapsed().as_secs_f64();
        println!(
            "{name}: enum {} opt {} {te:.3}s | sat {:?} lb {} {ts:.3}s",
            e.gates,
            e.optimal,
            r.circuit.as_ref().map(|c| c.num_gates()),
            r.lower_bound
        );
    }
}
