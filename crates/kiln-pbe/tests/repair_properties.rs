//! Adversarial checks of `repair` and `shrink`: random complete and partial tables (1..=8 inputs,
//! 1..=3 outputs, row counts that leave tail bits in the last word), random circuits, wide tables
//! (up to 64 inputs), and the learner's thread-count independence.

use kiln_pbe::repair::{repair, shrink};
use kiln_pbe::{gate_from_truth_table, verify, Circuit, Op, Row, Signal, SplitMix64, Table};

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

fn mask(n: usize) -> u64 {
    if n >= 64 {
        !0
    } else {
        (1u64 << n) - 1
    }
}

/// A random circuit over `n` inputs with `g` gates (all 16 two-input functions, constants now and
/// then) and the given outputs, each driven by a random signal.
fn random_circuit(rng: &mut SplitMix64, n: usize, g: usize, outputs: &[String]) -> Circuit {
    let mut c = Circuit::new(names("X", n));
    let pick = |rng: &mut SplitMix64, gates: usize| -> Signal {
        let r = rng.next_u64();
        match r % 16 {
            0 => Signal::Const(r & 16 != 0),
            1..=6 => Signal::Input((r >> 8) as usize % n),
            _ if gates > 0 => Signal::Gate((r >> 8) as usize % gates),
            _ => Signal::Input((r >> 8) as usize % n),
        }
    };
    for i in 0..g {
        let a = pick(rng, i);
        let b = pick(rng, i);
        let tt = (rng.next_u64() % 16) as u8;
        c.push(gate_from_truth_table(tt, a, b)).unwrap();
    }
    for o in outputs {
        let s = pick(rng, g);
        c.set_output(o, s).unwrap();
    }
    c
}

/// Table with the given input rows: outputs are the circuit's values with each output bit flipped
/// with probability about `noise`/16.
fn table_from(rng: &mut SplitMix64, c: &Circuit, n: usize, m: usize, inputs: &[u64], noise: u64) -> Table {
    let rows: Vec<Row> = inputs
        .iter()
        .map(|&x| {
            let vals: Vec<bool> = (0..n).map(|i| x >> i & 1 == 1).collect();
            let out = c.eval_row(&vals);
            let mut o = 0u64;
            for (j, v) in out.iter().enumerate().take(m) {
                let flip = rng.next_u64() % 16 < noise;
                o |= ((*v ^ flip) as u64) << j;
            }
            Row {
                inputs: x,
                outputs: o,
                line: None,
            }
        })
        .collect();
    Table::from_rows("<review>", names("X", n), names("Y", m), rows)
}

fn complete_inputs(n: usize) -> Vec<u64> {
    (0..1u64 << n).collect()
}

fn partial_inputs(rng: &mut SplitMix64, n: usize, k: usize) -> Vec<u64> {
    // from_rows drops later duplicates, so ask for a few more and truncate after deduplication.
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    let mut tries = 0;
    while v.len() < k && tries < 20 * k {
        let x = rng.next_u64() & mask(n);
        if seen.insert(x) {
            v.push(x);
        }
        tries += 1;
    }
    v
}

fn function_of(c: &Circuit, n: usize) -> Vec<Vec<bool>> {
    (0..1u64 << n)
        .map(|x| c.eval_row(&(0..n).map(|i| x >> i & 1 == 1).collect::<Vec<_>>()))
        .collect()
}

/// Output values in the order of `order` (circuits may list outputs in another order).
fn function_by_name(c: &Circuit, n: usize, order: &[String]) -> Vec<Vec<bool>> {
    let pos: Vec<usize> = order
        .iter()
        .map(|o| c.outputs().iter().position(|(name, _)| name == o).unwrap())
        .collect();
    function_of(c, n)
        .into_iter()
        .map(|row| pos.iter().map(|&p| row[p]).collect())
        .collect()
}

fn check_repair(c: &Circuit, t: &Table, k: usize, what: &str) {
    let r = repair(c, t, k, true).unwrap_or_else(|| panic!("{what}: repair(complete) returned None\n{c}"));
    let v = verify(&r.circuit, t).unwrap();
    assert!(v.ok(), "{what}: repaired circuit is not exact:\n{v}");
    if let Some(r) = repair(c, t, k, false) {
        let v = verify(&r.circuit, t).unwrap();
        assert!(v.ok(), "{what}: repaired (resubstitution) circuit is not exact:\n{v}");
    }
}

#[test]
fn repair_always_succeeds_on_random_complete_and_partial_tables() {
    let mut rng = SplitMix64::new(0xC0FFEE);
    for case in 0..160 {
        let n = 1 + case % 8;
        let m = 1 + (case / 8) % 3;
        let outs = names("Y", m);
        let g = (rng.next_u64() % 30) as usize;
        let c = random_circuit(&mut rng, n, g, &outs);
        let noise = rng.next_u64() % 9;
        let inputs = if case % 2 == 0 {
            complete_inputs(n)
        } else {
            let k = 1 + (rng.next_u64() as usize % (1usize << n));
            partial_inputs(&mut rng, n, k)
        };
        let t = table_from(&mut rng, &c, n, m, &inputs, noise);
        let k = (rng.next_u64() % 5) as usize;
        check_repair(&c, &t, k, &format!("case {case} (n={n}, m={m}, rows={})", t.len()));
    }
}

#[test]
fn repair_from_a_constant_circuit_on_every_two_and_three_input_function() {
    // Exercises the truth-table bit order of every construction: 2a+b = f(a, b).
    for n in [1usize, 2, 3] {
        for f in 0..1u64 << (1 << n) {
            let rows: Vec<Row> = (0..1u64 << n)
                .map(|x| Row {
                    inputs: x,
                    outputs: f >> x & 1,
                    line: None,
                })
                .collect();
            let t = Table::from_rows("<f>", names("X", n), vec!["Y".into()], rows);
            for start in [false, true] {
                let mut c = Circuit::new(names("X", n));
                c.set_output("Y", Signal::Const(start)).unwrap();
                check_repair(&c, &t, 0, &format!("n={n} f={f:#b} start={start}"));
            }
        }
    }
}

#[test]
fn repair_with_outputs_listed_in_another_order() {
    let mut rng = SplitMix64::new(11);
    for case in 0..30 {
        let n = 2 + case % 5;
        let mut outs = names("Y", 3);
        let c0 = random_circuit(&mut rng, n, 12, &outs);
        let t = table_from(&mut rng, &c0, n, 3, &complete_inputs(n), 3);
        // Same gates, outputs defined in reverse order.
        let mut c = Circuit::new(names("X", n));
        for g in c0.gates() {
            c.push(g.clone()).unwrap();
        }
        outs.reverse();
        for o in &outs {
            c.set_output(o, c0.output(o).unwrap()).unwrap();
        }
        check_repair(&c, &t, 2, &format!("case {case}"));
    }
}

#[test]
fn shrink_preserves_the_function_on_complete_tables() {
    let mut rng = SplitMix64::new(0xBEEF);
    for case in 0..120 {
        let n = 1 + case % 7;
        let m = 1 + (case / 7) % 3;
        let outs = names("Y", m);
        let g = (rng.next_u64() % 40) as usize;
        let c = random_circuit(&mut rng, n, g, &outs);
        let t = table_from(&mut rng, &c, n, m, &complete_inputs(n), 0);
        let s = shrink(&c, &t);
        assert_eq!(
            function_by_name(&s, n, &outs),
            function_by_name(&c, n, &outs),
            "case {case}: shrink changed the function\n{c}\n=>\n{s}"
        );
        assert!(s.num_gates() <= c.simplify().num_gates(), "case {case}: shrink grew the circuit");
        assert!(verify(&s, &t).unwrap().ok());
    }
}

#[test]
fn shrink_leaves_random_partial_tables_alone() {
    let mut rng = SplitMix64::new(5);
    for case in 0..60 {
        let n = 2 + case % 7;
        let c = random_circuit(&mut rng, n, 20, &names("Y", 2));
        let k = 1 + (rng.next_u64() as usize % ((1usize << n) - 1));
        let inputs = partial_inputs(&mut rng, n, k);
        let t = table_from(&mut rng, &c, n, 2, &inputs, 0);
        assert!(!t.is_complete());
        assert_eq!(shrink(&c, &t), c.simplify(), "case {case}");
    }
}

/// A shrunk circuit must keep its function on every input, not only on the table's rows. On a
/// table with 64 inputs `Table::is_complete` computes `1u64 << 64`, which in a release build wraps
/// to 1, so a one-row table counts as complete and shrink rewrites the circuit to fit that one row
/// (a debug build panics on the shift instead).
#[test]
fn shrink_on_a_64_input_table_with_one_row_keeps_the_function() {
    let n = 64;
    let mut c = Circuit::new(names("X", n));
    let g = c.gate(Op::And, &[Signal::Input(0), Signal::Input(1)]).unwrap();
    c.set_output("Y", g).unwrap();
    let t = Table::from_rows(
        "<wide>",
        names("X", n),
        vec!["Y".into()],
        vec![Row {
            inputs: 0b11,
            outputs: 1,
            line: None,
        }],
    );
    let s = shrink(&c, &t);
    let mut row = vec![false; n];
    assert!(!s.eval_row(&row)[0], "shrink turned X1 AND X2 into {s}");
    row[0] = true;
    row[1] = true;
    assert!(s.eval_row(&row)[0]);
}

#[test]
fn repair_on_wide_partial_tables() {
    let mut rng = SplitMix64::new(64);
    for (case, n) in [9usize, 17, 24, 40, 63, 64].into_iter().enumerate() {
        let c = random_circuit(&mut rng, n, 25, &names("Y", 2));
        let inputs = partial_inputs(&mut rng, n, 70 + case * 9);
        let t = table_from(&mut rng, &c, n, 2, &inputs, 4);
        check_repair(&c, &t, 3, &format!("n={n}"));
        let mut blank = Circuit::new(names("X", n));
        blank.set_output("Y1", Signal::Const(false)).unwrap();
        blank.set_output("Y2", Signal::Const(true)).unwrap();
        check_repair(&blank, &t, 1, &format!("blank n={n}"));
    }
}

#[test]
fn repair_on_tables_with_one_row_and_one_input() {
    for n in [1usize, 2, 64] {
        for x in [0u64, 1, mask(n)] {
            for y in 0..4u64 {
                let t = Table::from_rows(
                    "<one>",
                    names("X", n),
                    names("Y", 2),
                    vec![Row {
                        inputs: x,
                        outputs: y,
                        line: None,
                    }],
                );
                let mut c = Circuit::new(names("X", n));
                c.set_output("Y1", Signal::Input(0)).unwrap();
                c.set_output("Y2", Signal::Const(false)).unwrap();
                check_repair(&c, &t, 0, &format!("n={n} x={x} y={y}"));
            }
        }
    }
}

#[test]
fn the_learner_ignores_the_thread_count_on_a_partial_table() {
    use kiln_pbe::learn::{learn, LearnOptions};
    let mut rng = SplitMix64::new(3);
    let c = random_circuit(&mut rng, 5, 10, &names("Y", 2));
    let inputs = partial_inputs(&mut rng, 5, 24);
    let t = table_from(&mut rng, &c, 5, 2, &inputs, 3);
    let o = LearnOptions {
        seed: 9,
        steps: 80,
        restarts: Some(5),
        timeout: std::time::Duration::from_secs(120),
        ..Default::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| learn(&t, &o, |_| {}).unwrap())
    };
    let (one, two, four) = (run(1), run(2), run(4));
    assert!(one.exact, "repair makes circuit-space runs exact");
    assert_eq!(one.circuit, two.circuit);
    assert_eq!(one.circuit, four.circuit);
    assert_eq!((one.restarts, one.steps), (four.restarts, four.steps));
}

/// A random function needs thousands of products; they are ORed as a balanced tree, so emitting
/// and dropping the expression stays shallow even on a small thread stack (a left-deep chain of
/// 2,000 ORs overflowed it).
#[test]
fn the_sum_of_products_of_a_random_12_input_function_fits_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let n = 12;
            let mut rng = SplitMix64::new(1);
            let rows: Vec<Row> = (0..1u64 << n)
                .map(|x| Row {
                    inputs: x,
                    outputs: rng.next_u64() & 1,
                    line: None,
                })
                .collect();
            let t = Table::from_rows("<random12>", names("X", n), vec!["Y".into()], rows);
            let mut c = Circuit::new(names("X", n));
            c.set_output("Y", Signal::Const(false)).unwrap();
            check_repair(&c, &t, 12, "random12");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn rows_with_bits_beyond_the_named_columns_are_masked() {
    // Input bit 1 does not exist in a one-input table: the row is the same as inputs = 0.
    let rows = vec![
        Row {
            inputs: 0,
            outputs: 0,
            line: None,
        },
        Row {
            inputs: 2,
            outputs: 0,
            line: None,
        },
    ];
    let t = Table::from_rows("<masked>", names("X", 1), vec!["Y".into()], rows);
    assert_eq!(t.len(), 1);
    assert!(!t.is_complete());
    let mut c = Circuit::new(names("X", 1));
    c.set_output("Y", Signal::Const(true)).unwrap();
    check_repair(&c, &t, 0, "masked");
}
