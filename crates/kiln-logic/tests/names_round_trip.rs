//! Issue #8 item 8 and "Properties": circuits whose names are arbitrary strings either are refused
//! where the names come in (a table header), naming the column, or print to programs that parse
//! back to the same function, in both the one-gate-per-line form and the compact expression form.

use kiln_logic::{grammar, Circuit, GateExpr, Op, Signal, Table};
use proptest::prelude::*;

/// Names a user could put in a header: grammar names (some that clash with the printer's own
/// `Z<k>` gate names or with keywords of the code emitters), operator words in any case,
/// constants, punctuation, whitespace, quotes, new lines and arbitrary Unicode.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,5}",
        prop::sample::select(vec![
            "0",
            "1",
            "AND",
            "and",
            "Or",
            "xor",
            "NOT",
            "nand",
            "IMPLIES",
            "nimplies",
            "XNOR",
            "X 1",
            "a-b",
            "a\"b",
            "a\nb",
            "a\rb",
            "_",
            "__",
            "Z",
            "Z1",
            "Z_1",
            "Z__2",
            "X1",
            "typedef",
            "always",
            "module",
            "fn",
            "int",
            "",
            " ",
            "a,b",
            "#x",
            "é",
            "a;b",
            "a=b",
            "(a)",
            "\u{feff}a",
        ])
        .prop_map(String::from),
        "\\PC{0,4}",
        any::<String>(),
    ]
}

fn arb_gates() -> impl Strategy<Value = Vec<(Op, u16, u16)>> {
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
    prop::collection::vec((ops, any::<u16>(), any::<u16>()), 0..10)
}

/// A circuit over `inputs` with the given gates and two outputs named `outputs`.
fn build(inputs: &[String], outputs: &[String], gates: &[(Op, u16, u16)], outs: [u16; 2]) -> Circuit {
    let n = inputs.len();
    let mut c = Circuit::new(inputs.to_vec());
    let pick = |k: u16, avail: usize| -> Signal {
        let m = k as usize % (avail + 2);
        if m < n {
            Signal::Input(m)
        } else if m < avail {
            Signal::Gate(m - n)
        } else {
            Signal::Const(m == avail)
        }
    };
    for &(op, a, b) in gates {
        let avail = n + c.num_gates();
        let args = if op == Op::Not {
            vec![pick(a, avail)]
        } else {
            vec![pick(a, avail), pick(b, avail)]
        };
        c.push(GateExpr { op, args }).unwrap();
    }
    let avail = n + c.num_gates();
    c.set_output(&outputs[0], pick(outs[0], avail)).unwrap();
    c.set_output(&outputs[1], pick(outs[1], avail)).unwrap();
    c
}

fn truth(c: &Circuit, n: usize) -> Vec<Vec<bool>> {
    (0..1u32 << n)
        .map(|r| c.eval_row(&(0..n).map(|i| r >> i & 1 == 1).collect::<Vec<_>>()))
        .collect()
}

/// A CSV cell holding `s` exactly (RFC 4180 quoting).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_names_are_refused_or_round_trip(
        header in prop::collection::vec(any_name(), 5),
        gates in arb_gates(),
        outs in any::<[u16; 2]>(),
    ) {
        // A table's header cells are trimmed of white space, as every cell is, so the names are
        // what is left (a quoted " b" names column "b").
        let names: Vec<String> = header.iter().map(|s| s.trim().to_string()).collect();
        let (inputs, outputs) = (names[..3].to_vec(), names[3..].to_vec());
        let c = build(&inputs, &outputs, &gates, outs);
        let n = inputs.len();
        let distinct = names.iter().collect::<std::collections::HashSet<_>>().len() == names.len();
        let valid = distinct && names.iter().all(|s| !s.is_empty() && grammar::name_problem(s).is_none());

        // The way names come in: a table header. Bad names are refused there, with the column.
        let mut csv = header.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(",") + "\n";
        let t = truth(&c, n);
        for (r, ys) in t.iter().enumerate() {
            let cells: Vec<String> = (0..n).map(|i| (r >> i & 1).to_string()).chain(ys.iter().map(|&y| u8::from(y).to_string())).collect();
            csv += &(cells.join(",") + "\n");
        }
        let table = Table::from_csv_str("t.csv", &csv, Some(&outputs));
        match (&table, valid) {
            (Ok(table), true) => {
                prop_assert_eq!(table.input_names(), &inputs[..]);
                // What a user would see and paste back: both printed forms verify on the table.
                for text in [grammar::print(&c.simplify()), grammar::to_expression(&c, "\n"), grammar::to_expression(&c, "; ")] {
                    let back = grammar::parse(&text, table.input_names(), table.output_names());
                    prop_assert!(back.is_ok(), "does not parse back: {:?}\n{}", back.err(), text);
                    let back = back.unwrap();
                    prop_assert_eq!(truth(&back, n), t.clone(), "{}", text);
                    prop_assert!(kiln_logic::verify(&back, table).unwrap().ok(), "{}", text);
                }
            }
            (Err(e), false) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("t.csv:"), "{}", msg);
                prop_assert!(msg.contains("column") || msg.contains("name"), "{}", msg);
                prop_assert!(!msg.contains('\n'), "one line: {:?}", msg);
            }
            (Ok(_), false) => prop_assert!(false, "accepted bad names {:?}", names),
            (Err(e), true) => prop_assert!(false, "refused good names {:?}: {}", names, e),
        }
    }

    /// Without a table in between: any circuit whose names pass `name_problem` prints to text
    /// that parses back to an identical gate list.
    #[test]
    fn grammar_names_print_and_parse_back(
        names in prop::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,4}", 5),
        gates in arb_gates(),
        outs in any::<[u16; 2]>(),
    ) {
        let distinct = names.iter().collect::<std::collections::HashSet<_>>().len() == names.len();
        prop_assume!(distinct && names.iter().all(|s| grammar::name_problem(s).is_none()));
        let (inputs, outputs) = (names[..3].to_vec(), names[3..].to_vec());
        let c = build(&inputs, &outputs, &gates, outs);
        let text = grammar::print(&c);
        let back = grammar::parse(&text, &inputs, &outputs);
        prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), text);
        let back = back.unwrap();
        prop_assert_eq!(back.gates(), c.gates(), "{}", text);
        prop_assert_eq!(truth(&back, 3), truth(&c, 3));
    }
}

#[test]
fn the_empty_name_is_not_a_grammar_name() {
    assert!(grammar::name_problem("").is_some());
}
