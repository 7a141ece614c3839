use kiln_logic::{grammar, Circuit, GateExpr, Op, Signal};
use proptest::prelude::*;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn truth(c: &Circuit, n: usize) -> Vec<Vec<bool>> {
    (0..1u32 << n)
        .map(|r| {
            let bits: Vec<bool> = (0..n).map(|i| r >> i & 1 == 1).collect();
            c.eval_row(&bits)
        })
        .collect()
}

#[test]
fn precedence_and_associativity() {
    let ins = names(&["A", "B", "C"]);
    let outs = names(&["Y"]);
    let eq = |a: &str, b: &str| {
        let x = grammar::parse(a, &ins, &outs).unwrap();
        let y = grammar::parse(b, &ins, &outs).unwrap();
        assert_eq!(x.gates(), y.gates(), "{a} vs {b}");
    };
    eq("Y = A OR B AND C", "Y = A OR (B AND C)");
    eq("Y = A XOR B AND C", "Y = A XOR (B AND C)");
    eq("Y = A OR B XOR C", "Y = A OR (B XOR C)");
    eq("Y = NOT A AND B", "Y = (NOT A) AND B");
    eq("Y = A IMPLIES B IMPLIES C", "Y = A IMPLIES (B IMPLIES C)");
    eq("Y = A OR B IMPLIES C", "Y = (A OR B) IMPLIES C");
    eq("Y = A NAND B NAND C", "Y = (A NAND B) NAND C");
    let x = grammar::parse("Y = A and b", &ins, &outs);
    assert!(x.is_err(), "names are case-sensitive");
    eq("Y = A and B Or C", "Y = (A AND B) OR C");
}

#[test]
fn forms_statements_and_bare_expression() {
    let ins = names(&["X1", "X2"]);
    let outs = names(&["Y"]);
    let a = grammar::parse("Z1 = X1 OR X2; Z2 = X1 NAND X2; Y = Z1 AND Z2", &ins, &outs).unwrap();
    let b = grammar::parse("Y = (X1 OR X2) AND (X1 NAND X2)", &ins, &outs).unwrap();
    let c = grammar::parse("(X1 OR X2) AND (X1 NAND X2)", &ins, &outs).unwrap();
    let d = grammar::parse("# xor\nT = X1 or X2\n\nY = T and (X1\n nand X2)\n", &ins, &outs).unwrap();
    assert_eq!(a.gates(), b.gates());
    assert_eq!(a.gates(), c.gates());
    assert_eq!(a.gates(), d.gates());
    assert_eq!(truth(&a, 2), vec![vec![false], vec![true], vec![true], vec![false]]);
}

#[test]
fn errors_have_positions() {
    let ins = names(&["X1", "X2"]);
    let outs = names(&["Y"]);
    let err = |s: &str| grammar::parse(s, &ins, &outs).unwrap_err().to_string();
    assert_eq!(
        err("Y = X1 AND"),
        "line 1, column 11: expected an operand (a name, 0, 1, NOT or '('), found end of input"
    );
    assert_eq!(err("Y = (X1 OR X2"), "line 1, column 14: expected ')', found end of input");
    assert_eq!(
        err("Y = X1 X2"),
        "line 1, column 8: expected an operator, ';' or a new line, found name 'X2'"
    );
    assert_eq!(
        err("T = X1\nY = X3 AND T"),
        "line 2, column 5: unknown name 'X3' (inputs are X1, X2; other names must be defined by an earlier statement)"
    );
    assert_eq!(err("X1 = X2"), "line 1, column 1: 'X1' is an input column and cannot be assigned");
    assert_eq!(err("T = X1; T = X2; Y = T"), "line 1, column 9: 'T' is defined twice");
    assert_eq!(err("T = X1 AND X2"), "line 1, column 14: output 'Y' is never defined");
    assert_eq!(err("Y = X1 & X2"), "line 1, column 8: unexpected character '&'");
    assert_eq!(err("Y = 2"), "line 1, column 5: expected 0, 1 or a name, found '2'");
}

#[test]
fn expression_form_round_trips_by_truth_table() {
    let t = kiln_logic::library::full_adder();
    let r = kiln_logic::search(&t, &Default::default()).unwrap();
    let e = grammar::to_expression(&r.circuit, "; ");
    let back = grammar::parse(&e, t.input_names(), t.output_names()).unwrap();
    assert!(kiln_logic::verify(&back, &t).unwrap().ok(), "{e}");
    assert_eq!(back.simplify().num_gates(), r.gates);
}

/// A random well-formed circuit: every gate reads inputs, constants or
/// earlier gates; no BUF/CONST gates (those print as aliases).
fn arb_circuit() -> impl Strategy<Value = Circuit> {
    let ops = prop::sample::select(vec![
        Op::And,
        Op::Or,
        Op::Xor,
        Op::Nand,
        Op::Nor,
        Op::Xnor,
        Op::Implies,
        Op::Nimplies,
        Op::Not,
    ]);
    (
        1usize..4,
        prop::collection::vec((ops, any::<u16>(), any::<u16>()), 0..12),
        any::<[u16; 2]>(),
    )
        .prop_map(|(n, gates, outs)| {
            let inputs: Vec<String> = (1..=n).map(|i| format!("X{i}")).collect();
            let mut c = Circuit::new(inputs);
            let pick = |k: u16, avail: usize| -> Signal {
                let m = (k as usize) % (avail + 2);
                if m < n {
                    Signal::Input(m)
                } else if m < avail {
                    Signal::Gate(m - n)
                } else {
                    Signal::Const(m == avail)
                }
            };
            for (op, a, b) in gates {
                let avail = n + c.num_gates();
                let args = if op == Op::Not {
                    vec![pick(a, avail)]
                } else {
                    vec![pick(a, avail), pick(b, avail)]
                };
                c.push(GateExpr { op, args }).unwrap();
            }
            let avail = n + c.num_gates();
            c.set_output("Y", pick(outs[0], avail)).unwrap();
            c.set_output("C", pick(outs[1], avail)).unwrap();
            c
        })
}

proptest! {
    #[test]
    fn print_parse_round_trip(c in arb_circuit()) {
        let text = grammar::print(&c);
        let outs = vec!["Y".to_string(), "C".to_string()];
        let back = grammar::parse(&text, c.inputs(), &outs).unwrap();
        prop_assert_eq!(back.gates(), c.gates(), "text:\n{}", text);
        prop_assert_eq!(back.outputs(), c.outputs());
        let n = c.inputs().len();
        prop_assert_eq!(truth(&back, n), truth(&c, n));
        // Simplified circuits compute the same function and also round trip.
        let s = c.simplify();
        prop_assert_eq!(truth(&s, n), truth(&c, n));
        let back = grammar::parse(&grammar::print(&s), c.inputs(), &outs).unwrap();
        prop_assert_eq!(back.gates(), s.gates());
        // The compact form keeps the function.
        let e = grammar::to_expression(&c, "\n");
        let back = grammar::parse(&e, c.inputs(), &outs).unwrap();
        prop_assert_eq!(truth(&back, n), truth(&c, n), "expr:\n{}", e);
    }
}

/// Hostile nesting is refused with a message, and long flat chains parse, print and drop without
/// recursion deep enough to overflow a small thread stack.
#[test]
fn deep_nesting_is_refused_and_long_chains_fit_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(512 << 10)
        .spawn(|| {
            let inputs = vec!["X1".to_string(), "X2".to_string()];
            let outputs = vec!["Y".to_string()];
            for text in [
                format!("Y = {}X1{}", "(".repeat(7000), ")".repeat(7000)),
                format!("Y = {}X1", "NOT ".repeat(25_000)),
                format!("Y = {}X2{}", "X1 AND (".repeat(12_000), ")".repeat(12_000)),
                format!("Y = X1{}", " IMPLIES X2".repeat(5000)),
            ] {
                let err = kiln_logic::parse(&text, &inputs, &outputs).unwrap_err().to_string();
                assert!(err.contains("nested deeper than 256 levels"), "{err}");
            }
            // 100,000 terms in one chain: fine, and printed back in bounded-depth statements.
            let text = format!("Y = X1{}", " XOR X2 XOR X1".repeat(50_000));
            let c = kiln_logic::parse(&text, &inputs, &outputs).unwrap();
            assert_eq!(c.num_gates(), 100_000);
            let printed = kiln_logic::grammar::to_expression(&c, "\n");
            let back = kiln_logic::parse(&printed, &inputs, &outputs).unwrap();
            for row in [[false, false], [false, true], [true, false], [true, true]] {
                assert_eq!(back.eval_row(&row), c.eval_row(&row));
            }
            // X1 appears 50,001 times in the chain and X2 50,000 times, so it computes X1.
            assert_eq!(c.eval_row(&[true, true]), vec![true]);
        })
        .unwrap()
        .join()
        .unwrap();
}
