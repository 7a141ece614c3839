//! An adversarial review of kiln-logic's library API (2026-12-02): parameters and files that
//! panicked, aborted or gave a wrong answer. Each is now an error, clamped, or the right answer.

use std::time::Duration;

use kiln_logic::circuit::{Circuit, Op, Signal};
use kiln_logic::search::{minimise, search, SearchError, SearchOptions};
use kiln_logic::{aiger, exact_sat, library, local_search, rewrite, verify};

/// A 36-byte binary AIGER file claiming 2^31 - 2 inputs was read, and converting or writing it
/// aborted on the memory its inputs' names needed. Readers now cap the input count.
#[test]
fn an_aiger_file_claiming_billions_of_inputs_is_refused() {
    let e = aiger::read("x.aig", b"aig 2147483646 2147483646 0 1 0\n2\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("x.aig: byte 0: the header declares 2147483646 inputs; at most 1048576 are read"),
        "{e}"
    );
    // At the cap, the file is read.
    let n = aiger::MAX_INPUTS;
    let ok = aiger::read("ok.aig", format!("aig {n} {n} 0 1 0\n2\n").as_bytes()).unwrap();
    assert_eq!(ok.num_inputs() as u64, n);
}

/// `max_gates: usize::MAX` overflowed `max_gates + 1`.
#[test]
fn search_with_an_unbounded_gate_count_works() {
    let r = search(
        &library::full_adder(),
        &SearchOptions {
            max_gates: usize::MAX,
            timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((r.gates, r.optimal), (5, true));
}

/// Thread counts past any machine panicked: `2 * threads` overflowed, and 100,000 threads could
/// not be spawned. They are clamped to `MAX_THREADS`.
#[test]
fn absurd_thread_counts_are_clamped() {
    for threads in [usize::MAX, 100_000] {
        let r = exact_sat::synthesize(
            &library::full_adder(),
            &exact_sat::SatParams {
                threads,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.circuit.map(|c| c.num_gates()), Some(5), "threads {threads}");
    }
    let t = library::full_adder();
    let c = search(&t, &SearchOptions::default()).unwrap().circuit;
    for (threads, offspring) in [(100_000, 4), (1, usize::MAX)] {
        let params = local_search::LocalSearchParams {
            threads,
            offspring,
            timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        let (small, _) = local_search::shrink(&t, &c, &params).unwrap();
        assert!(verify::verify(&small, &t).unwrap().ok());
    }
}

/// `structures: usize::MAX` overflowed `structures * 8`.
#[test]
fn rewriting_with_unbounded_structures_works() {
    let mut c = Circuit::new(vec!["a".into(), "b".into(), "c".into()]);
    let g = c.gate(Op::And, &[Signal::Input(0), Signal::Input(1)]).unwrap();
    let h = c.gate(Op::And, &[g, Signal::Input(2)]).unwrap();
    let k = c.gate(Op::And, &[Signal::Input(1), Signal::Input(2)]).unwrap();
    let y = c.gate(Op::Or, &[h, k]).unwrap();
    c.set_output("y", y).unwrap();
    let (r, _) = rewrite::rewrite(
        &c,
        &rewrite::RewriteParams {
            structures: usize::MAX,
            ..Default::default()
        },
    );
    for row in 0..8u32 {
        let bits: Vec<bool> = (0..3).map(|i| row >> i & 1 == 1).collect();
        assert_eq!(r.eval_row(&bits), c.eval_row(&bits));
    }
}

/// `minimise` of a circuit that does not compute the table answered "optimal" with a wrong
/// circuit; it is now an error.
#[test]
fn minimising_a_circuit_of_another_function_is_an_error() {
    let xor = library::xor();
    let mut c = Circuit::new(vec!["X1".into(), "X2".into()]);
    let g = c.gate(Op::And, &[Signal::Input(0), Signal::Input(1)]).unwrap();
    c.set_output("Y", g).unwrap();
    let e = minimise(&c, &xor, &SearchOptions::default()).unwrap_err();
    assert!(matches!(e, SearchError::Mismatch(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "the circuit to minimise does not compute the table: 3 of 4 rows wrong"
    );
    let e = minimise(&Circuit::new(vec!["X1".into(), "X2".into()]), &xor, &SearchOptions::default()).unwrap_err();
    assert!(matches!(e, SearchError::Mismatch(_)), "{e}");
    // A right circuit is still minimised.
    let mut two = Circuit::new(vec!["X1".into(), "X2".into()]);
    let n = two.gate(Op::Xnor, &[Signal::Input(0), Signal::Input(1)]).unwrap();
    let y = two.gate(Op::Not, &[n]).unwrap();
    two.set_output("Y", y).unwrap();
    let r = minimise(&two, &xor, &SearchOptions::default()).unwrap();
    assert_eq!((r.gates, r.optimal), (1, true));
}

/// `min_gates` above `max_gates` tried no size and reported `min_gates` as the lower bound (10
/// for the 5-gate full adder).
#[test]
fn an_empty_size_range_is_an_error() {
    let e = exact_sat::synthesize(
        &library::full_adder(),
        &exact_sat::SatParams {
            min_gates: 10,
            max_gates: 2,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "min_gates (10) is above max_gates (2)");
}

/// Parsing against a column list that names one column twice bound both inputs to the first,
/// or merged two outputs into one.
#[test]
fn parsing_against_repeated_names_is_an_error() {
    use kiln_logic::grammar::parse;
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (ins, outs) in [(["a", "a"], ["y", "z"]), (["a", "b"], ["y", "y"]), (["a", "b"], ["a", "z"])] {
        let e = parse("y = a XOR b\nz = a", &names(&ins), &names(&outs)).unwrap_err().to_string();
        assert!(e.contains("names two columns"), "{ins:?} {outs:?}: {e}");
    }
    let c = parse("y = a XOR b\nz = a", &names(&["a", "b"]), &names(&["y", "z"])).unwrap();
    assert_eq!(c.eval_row(&[true, false]), vec![true, true]);
}
