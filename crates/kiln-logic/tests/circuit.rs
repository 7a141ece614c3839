use kiln_logic::circuit::apply_tt_word;
use kiln_logic::{gate_from_truth_table, grammar, library, verify, Circuit, Op, Signal};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn parse(text: &str, ins: &[&str], outs: &[&str]) -> Circuit {
    grammar::parse(text, &names(ins), &names(outs)).unwrap()
}

#[test]
fn every_truth_table_maps_to_a_gate_computing_it() {
    for tt in 0u8..16 {
        let mut c = Circuit::new(names(&["a", "b"]));
        let g = c.push(gate_from_truth_table(tt, Signal::Input(0), Signal::Input(1))).unwrap();
        c.set_output("y", g).unwrap();
        for a in [false, true] {
            for b in [false, true] {
                let want = tt >> (2 * a as u8 + b as u8) & 1 == 1;
                assert_eq!(c.eval_row(&[a, b]), vec![want], "tt {tt:04b} at ({a},{b})");
            }
        }
        // Non-degenerate functions are one gate even after simplify; the
        // degenerate six fold to a wire/constant or a NOT.
        let s = c.simplify();
        let expected = match tt {
            0 | 15 | 10 | 12 => 0,
            _ => 1,
        };
        assert_eq!(s.num_gates(), expected, "tt {tt:04b}");
        assert_eq!(apply_tt_word(tt, 0b1100, 0b1010) & 0xF, tt as u64);
    }
}

#[test]
fn simplify_folds_constants_wires_and_duplicates() {
    let ins = ["X1", "X2"];
    let cases = [
        ("Y = X1 AND 1", "Y = X1", 0),
        ("Y = X1 XOR X1", "Y = 0", 0),
        ("Y = X1 OR 1", "Y = 1", 0),
        ("Y = (0 NAND X2) AND X1", "Y = X1", 0),
        ("Y = X1 XOR 1", "Y = NOT X1", 1),
        ("Y = NOT NOT X2", "Y = X2", 0),
        ("Z = X1 AND X2; W = X2 AND X1; Y = Z OR W", "Y = X1 AND X2", 1),
        ("Z = X1 OR X2; D = X1 XOR X2; Y = Z AND Z", "Y = X1 OR X2", 1),
        ("Y = X1 NAND X1", "Y = X1 NAND X1", 1),
    ];
    for (src, want, gates) in cases {
        let s = parse(src, &ins, &["Y"]).simplify();
        assert_eq!(grammar::print_with(&s, "; "), want, "simplifying {src}");
        assert_eq!(s.num_gates(), gates);
    }
}

#[test]
fn simplify_renames_in_topological_order_and_keeps_function() {
    let c = parse(
        "A = X1 OR X2; B = X1 NAND X2; Dead = A XOR B; Y = A AND B; C = A",
        &["X1", "X2"],
        &["Y", "C"],
    );
    let s = c.simplify();
    assert_eq!(grammar::print_with(&s, "; "), "C = X1 OR X2; Z2 = X1 NAND X2; Y = C AND Z2");
    let t = kiln_logic::Table::from_fn(&["X1", "X2"], &["Y", "C"], |v| vec![v[0] ^ v[1], v[0] || v[1]]);
    assert!(verify(&s, &t).unwrap().ok());
    assert!(verify(&c, &t).unwrap().ok());
}

#[test]
fn bit_parallel_evaluation_matches_rows_beyond_one_word() {
    let t = library::parity(8);
    let c = parse(
        "Y = X1 XOR X2 XOR X3 XOR X4 XOR X5 XOR X6 XOR X7 XOR X8",
        &["X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8"],
        &["Y"],
    );
    assert_eq!(t.words(), 4);
    assert!(verify(&c, &t).unwrap().ok());
    let wrong = parse(
        "Y = X1 XOR X2 XOR X3 XOR X4 XOR X5 XOR X6 XOR X7",
        &["X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8"],
        &["Y"],
    );
    let v = verify(&wrong, &t).unwrap();
    assert_eq!(v.failures.len(), 128);
    assert!(v.failures.iter().all(|f| f.inputs >> 7 & 1 == 1));
    for row in t.rows().iter().take(40) {
        let bits: Vec<bool> = (0..8).map(|i| row.inputs >> i & 1 == 1).collect();
        assert_eq!(c.eval_row(&bits), vec![row.outputs == 1]);
    }
}

#[test]
fn ops_have_documented_truth_tables() {
    for op in kiln_logic::circuit::BINARY_OPS {
        for a in [false, true] {
            for b in [false, true] {
                let want = match op {
                    Op::And => a && b,
                    Op::Or => a || b,
                    Op::Xor => a != b,
                    Op::Nand => !(a && b),
                    Op::Nor => !(a || b),
                    Op::Xnor => a == b,
                    Op::Implies => !a || b,
                    Op::Nimplies => a && !b,
                    _ => unreachable!(),
                };
                assert_eq!(op.apply(a, b), want, "{op:?}");
                assert_eq!(op.truth_table() >> (2 * a as u8 + b as u8) & 1 == 1, want);
            }
        }
    }
}
