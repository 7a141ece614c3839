use std::collections::HashMap;
use std::time::Duration;

use kiln_logic::{library, minimise, search, verify, Basis, SearchOptions, Table};

fn opts() -> SearchOptions {
    SearchOptions {
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    }
}

fn solve(t: &Table, o: &SearchOptions) -> usize {
    let r = search(t, o).unwrap();
    assert!(r.optimal, "not proven optimal");
    assert!(verify(&r.circuit, t).unwrap().ok(), "result does not verify");
    assert_eq!(r.circuit.simplify().num_gates(), r.gates, "search result not simplified");
    r.gates
}

#[test]
fn known_minimum_sizes_over_all_two_input_gates() {
    let o = opts();
    assert_eq!(solve(&library::xor(), &o), 1);
    assert_eq!(solve(&library::parity(3), &o), 2);
    assert_eq!(solve(&library::parity(4), &o), 3);
    assert_eq!(solve(&library::majority(3), &o), 4);
    assert_eq!(solve(&library::mux2(), &o), 3);
    assert_eq!(solve(&library::full_adder(), &o), 5);
    assert_eq!(solve(&library::parity(10), &o), 9);
}

#[test]
fn two_bit_adder_needs_seven_gates_by_enumeration_alone() {
    let o = SearchOptions {
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let t = library::adder2();
    let r = kiln_logic::search_with(&t, &o, kiln_logic::EngineChoice::Enumeration).unwrap();
    assert!(verify(&r.circuit, &t).unwrap().ok());
    assert_eq!((r.gates, r.optimal, r.engine), (7, true, kiln_logic::Engine::Enumeration));
}

#[test]
fn restricted_basis() {
    let aon = SearchOptions {
        basis: Basis::parse("AND,OR,NAND").unwrap(),
        ..opts()
    };
    assert_eq!(solve(&library::xor(), &aon), 3);
    let nand = SearchOptions {
        basis: Basis::parse("nand").unwrap(),
        ..opts()
    };
    assert_eq!(solve(&library::xor(), &nand), 4);
    assert_eq!(solve(&library::two_input(0b0011), &nand), 1); // NOT a = a NAND a
    let with_not = SearchOptions {
        basis: Basis::parse("AND,NOT").unwrap(),
        ..opts()
    };
    let r = search(&library::two_input(0b0100), &with_not).unwrap();
    assert_eq!(kiln_logic::grammar::print_with(&r.circuit, "; "), "Z1 = NOT X2; Y = X1 AND Z1");
    assert!(Basis::parse("AND,FOO").is_err());
    assert!(Basis::parse("").is_err());
    // AND/OR alone are monotone: no XOR at any size, and no fallback.
    let mono = SearchOptions {
        basis: Basis::parse("AND,OR").unwrap(),
        max_gates: 4,
        ..opts()
    };
    let e = search(&library::xor(), &mono).unwrap_err();
    assert!(e.to_string().contains("cannot express NOT"), "{e}");
}

/// Independent brute force: every function of 3 inputs computable with at
/// most `k` gates, each gate any of the 16 two-input functions of two
/// (possibly equal) earlier signals. No pruning, so it checks the search's
/// claims of minimality.
fn brute_force_costs(max: usize) -> HashMap<u8, usize> {
    let mut best: HashMap<u8, usize> = HashMap::new();
    let inputs = [0b1111_0000u8, 0b1100_1100, 0b1010_1010];
    for f in [0u8, 0xFF].iter().chain(&inputs) {
        best.insert(*f, 0);
    }
    fn rec(sigs: &mut Vec<u8>, left: usize, used: usize, best: &mut HashMap<u8, usize>) {
        if left == 0 {
            return;
        }
        let n = sigs.len();
        for b in 0..n {
            for a in 0..=b {
                for tt in 0u8..16 {
                    let (x, y) = (sigs[a], sigs[b]);
                    let mut f = 0u8;
                    for bit in 0..8 {
                        let (xa, yb) = (x >> bit & 1, y >> bit & 1);
                        f |= (tt >> (2 * xa + yb) & 1) << bit;
                    }
                    let e = best.entry(f).or_insert(usize::MAX);
                    *e = (*e).min(used + 1);
                    sigs.push(f);
                    rec(sigs, left - 1, used + 1, best);
                    sigs.pop();
                }
            }
        }
    }
    let mut sigs = inputs.to_vec();
    rec(&mut sigs, max, 0, &mut best);
    best
}

#[test]
fn all_256_three_input_functions_are_solved_optimally() {
    let o = opts();
    let brute = brute_force_costs(3);
    let start = std::time::Instant::now();
    let mut hist = [0usize; 8];
    for tt in 0..=255u8 {
        // library::three_input uses bit 4*x1+2*x2+x3; the brute force above
        // uses the same layout (X1 = 0xF0).
        let t = library::three_input(tt);
        let g = solve(&t, &o);
        hist[g] += 1;
        match brute.get(&tt) {
            Some(&c) => assert_eq!(g, c, "function {tt:#010b}"),
            None => assert!(g >= 4, "function {tt:#010b}: brute force needs > 3 gates, search found {g}"),
        }
    }
    assert_eq!(hist.iter().sum::<usize>(), 256);
    assert_eq!(hist[0], 5);
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[test]
fn four_input_functions_within_seconds() {
    let o = opts();
    let start = std::time::Instant::now();
    for (tt, want) in [(0x6996u64, 3), (0x8000, 3), (0x0dd7, 5), (0x2a02, 5), (0xbefe, 4)] {
        let t = library::from_truth_table(4, tt);
        assert_eq!(solve(&t, &o), want, "function {tt:#06x}");
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn partial_tables_treat_missing_rows_as_dont_cares() {
    // Only rows where XOR and OR agree except 11 → OR is not forced.
    let t = Table::from_csv_str("p.csv", "A,B,Y\n0,0,0\n0,1,1\n1,0,1\n", None).unwrap();
    let r = search(&t, &opts()).unwrap();
    assert_eq!(r.gates, 1);
    assert!(verify(&r.circuit, &t).unwrap().ok());
    // A single constant row needs no gates.
    let t = Table::from_csv_str("p.csv", "A,B,Y\n1,1,1\n", None).unwrap();
    assert_eq!(search(&t, &opts()).unwrap().gates, 0);
}

#[test]
fn bounds_fall_back_to_a_correct_circuit() {
    let t = library::majority(5);
    let o = SearchOptions { max_gates: 3, ..opts() };
    let r = search(&t, &o).unwrap();
    assert!(!r.optimal);
    assert!(r.gates > 3);
    assert_eq!(r.lower_bound, 4);
    assert!(verify(&r.circuit, &t).unwrap().ok());
    let o = SearchOptions {
        timeout: Some(Duration::from_millis(0)),
        ..opts()
    };
    let r = search(&library::mux4(), &o).unwrap();
    assert!(!r.optimal);
    assert!(verify(&r.circuit, &library::mux4()).unwrap().ok());
    // Fallback under a restricted basis only uses that basis.
    let nand = SearchOptions {
        basis: Basis::parse("NAND").unwrap(),
        max_gates: 1,
        ..opts()
    };
    let r = search(&library::full_adder(), &nand).unwrap();
    assert!(verify(&r.circuit, &library::full_adder()).unwrap().ok());
    assert!(r.circuit.gates().iter().all(|g| g.op == kiln_logic::Op::Nand));
}

#[test]
fn multi_output_tables() {
    let t = library::adder2();
    let r = search(
        &t,
        &SearchOptions {
            timeout: Some(Duration::from_secs(4)),
            ..opts()
        },
    )
    .unwrap();
    assert!(verify(&r.circuit, &t).unwrap().ok());
    let shannon = kiln_logic::search::fallback(&t, &Basis::all(), 12).unwrap();
    assert!(r.gates <= shannon.num_gates(), "{} gates", r.gates);
    let t = library::comparator2();
    let r = search(
        &t,
        &SearchOptions {
            timeout: Some(Duration::from_secs(10)),
            ..opts()
        },
    )
    .unwrap();
    assert!(verify(&r.circuit, &t).unwrap().ok());
    // The result depends on how much CPU the budget bought, but it is never
    // worse than the Shannon construction.
    let shannon = kiln_logic::search::fallback(&t, &Basis::all(), 12).unwrap();
    assert!(r.gates <= shannon.num_gates(), "{} gates", r.gates);
}

#[test]
fn minimise_shrinks_a_redundant_circuit() {
    let t = library::xor();
    let big = kiln_logic::grammar::parse("Y = (X1 AND NOT X2) OR (NOT X1 AND X2)", t.input_names(), t.output_names()).unwrap();
    let r = minimise(&big, &t, &opts()).unwrap();
    assert_eq!(r.gates, 1);
    assert!(verify(&r.circuit, &t).unwrap().ok());
    let already = kiln_logic::grammar::parse("Y = X1 XOR X2", t.input_names(), t.output_names()).unwrap();
    let r = minimise(&already, &t, &opts()).unwrap();
    assert_eq!(r.gates, 1);
    assert!(r.optimal);
}
