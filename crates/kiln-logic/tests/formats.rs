//! AIG construction and the AIGER / BLIF formats: round trips against the
//! gate-circuit simulator, structural-hashing counts, malformed files, a
//! mutation fuzz test, and (when installed) a cross-check with Berkeley ABC.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_logic::aig::{lit_not, Aig, AigError, FALSE, TRUE};
use kiln_logic::aiger::{self, AigerErrorKind, Location};
use kiln_logic::blif::{self, BlifError, BlifErrorKind};
use kiln_logic::{Circuit, Op, Signal, SplitMix64};
use proptest::prelude::*;

const ALL_OPS: [Op; 12] = Op::ALL;

struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }

    /// A constant (rarely), an input, or one of the first `gates` gates.
    fn signal(&mut self, n_in: usize, gates: usize) -> Signal {
        match self.below(20) {
            0 => Signal::Const(self.below(2) == 1),
            k if k < 8 || gates == 0 => Signal::Input(self.below(n_in as u64) as usize),
            _ => Signal::Gate(self.below(gates as u64) as usize),
        }
    }
}

/// A random circuit over 2–10 inputs with 1–4 outputs, every op included;
/// arguments and outputs may be constants, inputs or any earlier gate.
fn random_circuit(seed: u64) -> Circuit {
    let mut r = Rng(SplitMix64::new(seed));
    let n_in = 2 + r.below(9) as usize;
    let n_gates = 1 + r.below(40) as usize;
    let mut c = Circuit::new((0..n_in).map(|i| format!("x{i}")).collect());
    for g in 0..n_gates {
        let op = ALL_OPS[r.below(ALL_OPS.len() as u64) as usize];
        let args: Vec<Signal> = (0..op.arity()).map(|_| r.signal(n_in, g)).collect();
        c.gate(op, &args).unwrap();
    }
    let n_out = 1 + r.below(4) as usize;
    for k in 0..n_out {
        // Mostly late gates, so outputs have some depth.
        let s = if r.below(6) == 0 {
            r.signal(n_in, n_gates)
        } else {
            Signal::Gate(n_gates - 1 - r.below(n_gates.min(4) as u64) as usize)
        };
        c.set_output(&format!("y{k}"), s).unwrap();
    }
    c
}

/// Input columns enumerating all 2^n rows, the word count, and a mask of
/// the valid bits of the last word.
fn full_columns(n: usize) -> (Vec<Vec<u64>>, usize, u64) {
    let rows = 1usize << n;
    let words = rows.div_ceil(64);
    let cols = (0..n)
        .map(|i| {
            (0..words)
                .map(|w| (0..64).fold(0u64, |acc, b| acc | ((((w * 64 + b) >> i) & 1) as u64) << b))
                .collect()
        })
        .collect();
    let mask = if rows >= 64 { !0 } else { (1u64 << rows) - 1 };
    (cols, words, mask)
}

fn masked(cols: Vec<Vec<u64>>, mask: u64) -> Vec<Vec<u64>> {
    cols.into_iter().map(|c| c.into_iter().map(|w| w & mask).collect()).collect()
}

/// Complete truth tables of the circuit's outputs.
fn circuit_table(c: &Circuit) -> Vec<Vec<u64>> {
    let (cols, words, mask) = full_columns(c.inputs().len());
    masked(c.eval_columns(&cols, words), mask)
}

fn aig_table(a: &Aig) -> Vec<Vec<u64>> {
    let (cols, words, mask) = full_columns(a.num_inputs());
    masked(a.simulate(&cols, words).unwrap(), mask)
}

fn names(a: &Aig) -> (Vec<String>, Vec<String>) {
    (a.input_names(), a.outputs().iter().map(|(n, _)| n.clone()).collect())
}

#[test]
fn random_circuits_round_trip_through_every_format() {
    for seed in 0..300 {
        let c = random_circuit(seed);
        let want = circuit_table(&c);
        let raw = Aig::from_circuit(&c).unwrap();
        assert_eq!(aig_table(&raw), want, "seed {seed}: from_circuit");
        let aig = raw.cleanup();
        assert!(aig.num_ands() <= raw.num_ands());
        assert_eq!(aig_table(&aig), want, "seed {seed}: cleanup");

        let back = aig.to_circuit().unwrap();
        assert_eq!(circuit_table(&back), want, "seed {seed}: to_circuit");
        let complemented = aig.outputs().iter().filter(|(_, l)| l & 1 == 1 && *l > 1).count();
        assert!(back.num_gates() <= aig.num_ands() + complemented, "seed {seed}: to_circuit size");

        let bin = aiger::write_binary(&aig, &["seeded random circuit"]).unwrap();
        let (from_bin, comments) = aiger::read_with_comments("r.aig", &bin).unwrap();
        assert_eq!(from_bin, aig, "seed {seed}: .aig round trip is exact");
        assert_eq!(comments, vec!["seeded random circuit".to_string()]);

        let aag = aiger::write_ascii(&aig, &[]).unwrap();
        let from_aag = aiger::read("r.aag", aag.as_bytes()).unwrap();
        assert_eq!(from_aag, aig, "seed {seed}: .aag round trip is exact");

        let text = blif::write(&aig, "random").unwrap();
        let from_blif = blif::read("r.blif", &text).unwrap();
        assert_eq!(aig_table(&from_blif), want, "seed {seed}: .blif round trip\n{text}");
        assert_eq!(from_blif.num_ands(), aig.num_ands(), "seed {seed}: .blif AND count");
        assert_eq!(names(&from_blif), names(&aig), "seed {seed}: .blif names");
    }
}

fn two_inputs() -> (Aig, u32, u32) {
    let g = Aig::with_inputs(&["a", "b"]).unwrap();
    let (a, b) = (g.input_lit(0).unwrap(), g.input_lit(1).unwrap());
    (g, a, b)
}

#[test]
fn structural_hashing_and_trivial_simplification() {
    let (mut g, a, b) = two_inputs();
    assert_eq!((a, b), (2, 4));
    assert_eq!(g.and(a, FALSE).unwrap(), FALSE);
    assert_eq!(g.and(TRUE, b).unwrap(), b);
    assert_eq!(g.and(a, a).unwrap(), a);
    assert_eq!(g.and(a, lit_not(a)).unwrap(), FALSE);
    assert_eq!(g.num_ands(), 0);
    let ab = g.and(a, b).unwrap();
    assert_eq!(ab, 6);
    assert_eq!(g.and(b, a).unwrap(), ab, "commuted fanins hash to the same node");
    assert_eq!(g.ands(), &[(4, 2)], "larger fanin first");
    let x = g.xor(a, b).unwrap();
    assert_eq!(g.num_ands(), 4, "XOR is three ANDs");
    assert_eq!(g.xor(b, a).unwrap(), x);
    assert_eq!(g.num_ands(), 4, "a second XOR of the same pair is free");
    assert_eq!(g.xor(a, a).unwrap(), FALSE);
    assert_eq!(g.xor(a, lit_not(a)).unwrap(), TRUE);
    assert_eq!(g.xor(a, FALSE).unwrap(), a);
    assert_eq!(g.or(a, TRUE).unwrap(), TRUE);
    assert_eq!(g.mux(TRUE, a, b).unwrap(), a);
    assert_eq!(g.not(x), lit_not(x));
    assert_eq!(g.num_ands(), 4);
    assert_eq!(g.and_all(&[]).unwrap(), TRUE);
    assert_eq!(g.or_all(&[]).unwrap(), FALSE);

    let mut m2 = Aig::with_inputs(&["s", "t", "e"]).unwrap();
    let (s2, t2, e2) = (2, 4, 6);
    let y = m2.mux(s2, t2, e2).unwrap();
    assert_eq!(m2.num_ands(), 3, "MUX is three ANDs");
    m2.add_output("y", y).unwrap();
    // Rows r = s + 2t + 4e: s ? t : e holds at rows 3, 4, 6 and 7.
    assert_eq!(aig_table(&m2), vec![vec![0b1101_1000]]);
}

#[test]
fn bad_literals_and_late_inputs_are_errors() {
    let (mut g, a, _) = two_inputs();
    assert_eq!(g.and(a, 7), Err(AigError::BadLiteral { lit: 7, max_var: 2 }));
    assert!(g.and(a, 7).unwrap_err().to_string().contains("literal 7 refers to variable 3"));
    assert!(g.add_output("y", 100).is_err());
    g.and(2, 4).unwrap();
    assert_eq!(g.add_input("late"), Err(AigError::InputAfterAnd("late".to_string())));
    assert_eq!(
        g.simulate(&[vec![0]], 1).unwrap_err(),
        AigError::InputCount { expected: 2, found: 1 }
    );
    assert!(matches!(
        g.simulate(&[vec![0], vec![]], 1),
        Err(AigError::ShortColumn { index: 1, .. })
    ));
    // 2^31 - 1 variables is the ceiling; inputs beyond it are refused.
    let mut big = Aig::new();
    big.add_unnamed_inputs(aig_max()).unwrap();
    assert_eq!(big.add_unnamed_inputs(1), Err(AigError::TooLarge));
    assert_eq!(big.add_unnamed_inputs(0), Ok(FALSE));
    assert_eq!(big.and(2, 4), Err(AigError::TooLarge));
}

fn aig_max() -> u32 {
    kiln_logic::aig::MAX_VAR
}

fn circuit(inputs: &[&str], gates: &[(Op, &[Signal])], outputs: &[(&str, Signal)]) -> Circuit {
    let mut c = Circuit::new(inputs.iter().map(|s| s.to_string()).collect());
    for (op, args) in gates {
        c.gate(*op, args).unwrap();
    }
    for (n, s) in outputs {
        c.set_output(n, *s).unwrap();
    }
    c
}

/// Full adder: two XORs (3 ANDs each), carry = ab ∨ c(a⊕b) (3 more).
fn full_adder() -> Circuit {
    use Signal::{Gate as G, Input as I};
    circuit(
        &["a", "b", "c"],
        &[
            (Op::Xor, &[I(0), I(1)]),
            (Op::Xor, &[G(0), I(2)]),
            (Op::And, &[I(0), I(1)]),
            (Op::And, &[I(2), G(0)]),
            (Op::Or, &[G(2), G(3)]),
        ],
        &[("s", G(1)), ("cout", G(4))],
    )
}

#[test]
fn from_circuit_counts_known_structures() {
    use Signal::{Gate as G, Input as I};
    // Full adder: two XORs (3 ANDs each), carry = ab ∨ c(a⊕b) (3 more).
    let fa = circuit(
        &["a", "b", "c"],
        &[
            (Op::Xor, &[I(0), I(1)]),
            (Op::Xor, &[G(0), I(2)]),
            (Op::And, &[I(0), I(1)]),
            (Op::And, &[I(2), G(0)]),
            (Op::Or, &[G(2), G(3)]),
        ],
        &[("s", G(1)), ("cout", G(4))],
    );
    let g = Aig::from_circuit(&fa).unwrap();
    assert_eq!(g.num_ands(), 9);
    assert_eq!(aig_table(&g), circuit_table(&fa));

    // Duplicates merge: AND(a,b), AND(b,a), NAND(a,b) share one node; XNOR
    // reuses XOR's nodes.
    let dup = circuit(
        &["a", "b"],
        &[
            (Op::And, &[I(0), I(1)]),
            (Op::And, &[I(1), I(0)]),
            (Op::Nand, &[I(0), I(1)]),
            (Op::Xor, &[I(0), I(1)]),
            (Op::Xnor, &[I(1), I(0)]),
        ],
        &[("p", G(0)), ("q", G(1)), ("r", G(2)), ("s", G(3)), ("t", G(4))],
    );
    let g = Aig::from_circuit(&dup).unwrap();
    assert_eq!(g.num_ands(), 4);
    assert_eq!(g.outputs()[0].1, g.outputs()[1].1);
    assert_eq!(g.outputs()[2].1, lit_not(g.outputs()[0].1));
    assert_eq!(g.outputs()[4].1, lit_not(g.outputs()[3].1));

    // Every binary op except XOR/XNOR is one AND; constants and wires none.
    for op in [Op::And, Op::Or, Op::Nand, Op::Nor, Op::Implies, Op::Nimplies] {
        let c = circuit(&["a", "b"], &[(op, &[I(0), I(1)])], &[("y", G(0))]);
        let g = Aig::from_circuit(&c).unwrap();
        assert_eq!(g.num_ands(), 1, "{op:?}");
        assert_eq!(aig_table(&g), circuit_table(&c), "{op:?}");
        assert_eq!(g.to_circuit().unwrap().num_gates(), 1 + (g.outputs()[0].1 & 1) as usize, "{op:?}");
    }
    let consts = circuit(
        &["a"],
        &[
            (Op::Const1, &[]),
            (Op::And, &[I(0), G(0)]),
            (Op::Not, &[G(1)]),
            (Op::Buf, &[G(2)]),
            (Op::Const0, &[]),
        ],
        &[("y", G(3)), ("z", G(4))],
    );
    let g = Aig::from_circuit(&consts).unwrap();
    assert_eq!(g.num_ands(), 0);
    assert_eq!(g.outputs(), &[("y".to_string(), 3), ("z".to_string(), FALSE)]);
}

#[test]
fn cleanup_drops_dangling_nodes_and_keeps_order() {
    let mut g = Aig::with_inputs(&["a", "b", "c"]).unwrap();
    let dead = g.and(2, 4).unwrap();
    let live = g.and(4, 6).unwrap();
    let top = g.or(live, 2).unwrap();
    g.add_output("y", top).unwrap();
    assert_eq!(g.num_ands(), 3);
    let c = g.cleanup();
    assert_eq!(c.num_ands(), 2);
    assert_eq!(c.ands(), &[(6, 4), (9, 3)]);
    assert_eq!(c.outputs(), &[("y".to_string(), 11)]);
    assert_eq!(aig_table(&c), aig_table(&g));
    let _ = dead;
    // Hashing still works on the cleaned graph.
    let mut c2 = c.clone();
    assert_eq!(c2.and(6, 4).unwrap(), 8);
    assert_eq!(c2.num_ands(), 2);
}

fn aiger_err(name: &str, bytes: &[u8]) -> (String, Location, AigerErrorKind) {
    let e = aiger::read(name, bytes).unwrap_err();
    assert_eq!(e.file, name);
    (e.to_string(), e.location, e.kind)
}

fn half_adder_aig() -> Aig {
    let c = circuit(
        &["a", "b"],
        &[
            (Op::Xor, &[Signal::Input(0), Signal::Input(1)]),
            (Op::And, &[Signal::Input(0), Signal::Input(1)]),
        ],
        &[("s", Signal::Gate(0)), ("c", Signal::Gate(1))],
    );
    Aig::from_circuit(&c).unwrap()
}

#[test]
fn aiger_known_bytes() {
    let g = half_adder_aig();
    let aag = aiger::write_ascii(&g, &["half adder"]).unwrap();
    assert_eq!(
        aag,
        "aag 6 2 0 2 4\n2\n4\n11\n12\n6 5 2\n8 4 3\n10 9 7\n12 4 2\ni0 a\ni1 b\no0 s\no1 c\nc\nhalf adder\n"
    );
    let bin = aiger::write_binary(&g, &[]).unwrap();
    let mut want = b"aig 6 2 0 2 4\n11\n12\n".to_vec();
    // lhs 6: 6-5, 5-2; lhs 8: 8-4, 4-3; lhs 10: 10-9, 9-7; lhs 12: 12-4, 4-2.
    want.extend_from_slice(&[1, 3, 4, 1, 1, 2, 8, 2]);
    want.extend_from_slice(b"i0 a\ni1 b\no0 s\no1 c\n");
    assert_eq!(bin, want);
    // Multi-byte deltas: 398 = 0x8E 0x03 (low seven bits first).
    let mut g = Aig::new();
    g.add_unnamed_inputs(200).unwrap();
    let l = g.and(2, 400).unwrap();
    g.add_output("y", l).unwrap();
    let bin = aiger::write_binary(&g, &[]).unwrap();
    assert!(bin.ends_with(&[2, 0x8E, 0x03, b'o', b'0', b' ', b'y', b'\n']), "{bin:?}");
    assert_eq!(aiger::read("m.aig", &bin).unwrap(), g);
    assert_eq!(g.input_name(7), "i7");
}

#[test]
fn files_on_disk_round_trip_and_bad_names_are_refused() {
    let dir = std::env::temp_dir().join(format!("kiln-formats-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = Aig::from_circuit(&full_adder()).unwrap();
    for f in ["fa.aig", "fa.aag"] {
        aiger::write_file(&g, dir.join(f), &["full adder", "two lines"]).unwrap();
        let bytes = std::fs::read(dir.join(f)).unwrap();
        assert_eq!(bytes.starts_with(b"aag"), f.ends_with("aag"), "{f}: format follows the extension");
        assert_eq!(aiger::read_file(dir.join(f)).unwrap(), g, "{f}");
        let (_, comments) = aiger::read_with_comments(f, &bytes).unwrap();
        assert_eq!(comments, vec!["full adder", "two lines"]);
    }
    blif::write_file(&g, dir.join("fa.blif"), "fa").unwrap();
    assert_eq!(
        blif::read_file(dir.join("fa.blif")).unwrap(),
        g,
        "BLIF keeps the node order of a strashed graph"
    );
    let missing = dir.join("missing.aig");
    let e = aiger::read_file(&missing).unwrap_err();
    assert_eq!(e.location, Location::File);
    assert!(e.to_string().starts_with(&format!("{}: ", missing.display())), "{e}");
    assert!(matches!(e.kind, AigerErrorKind::Io(_)));
    assert!(blif::read_file(dir.join("missing.blif"))
        .unwrap_err()
        .to_string()
        .contains("missing.blif"));
    std::fs::remove_dir_all(&dir).ok();

    let mut bad = Aig::with_inputs(&["a\nb"]).unwrap();
    bad.add_output("y", 2).unwrap();
    let e = aiger::write_binary(&bad, &[]).unwrap_err();
    assert_eq!(e.to_string(), "<output>: cannot write: name \"a\\nb\" contains a newline");
    assert!(aiger::write_ascii(&bad, &[]).is_err());
}

#[test]
fn aiger_ascii_accepts_any_order_and_sparse_variables() {
    // Gates listed consumer-first and variable numbers with gaps.
    let text = "aag 20 2 0 1 2\n40\n4\n31\n30 20 5\n20 40 4\ni0 p\ni1 q\no0 nand_pq_then_and\n";
    let g = aiger::read("s.aag", text.as_bytes()).unwrap();
    assert_eq!(g.num_ands(), 2);
    assert_eq!(
        names(&g),
        (vec!["p".to_string(), "q".to_string()], vec!["nand_pq_then_and".to_string()])
    );
    // y = ¬((p ∧ q) ∧ ¬q) = 1
    assert_eq!(aig_table(&g), vec![vec![0b1111]]);
}

#[test]
fn malformed_aiger_files_name_the_file_place_and_problem() {
    let (msg, loc, kind) = aiger_err("bad.aig", b"hello world\n");
    assert_eq!(loc, Location::Byte(0));
    assert!(matches!(kind, AigerErrorKind::BadHeader(_)));
    assert!(msg.starts_with("bad.aig: byte 0: bad header: expected 'aig' or 'aag'"), "{msg}");

    let (msg, _, _) = aiger_err("short.aag", b"aag 1 2\n");
    assert!(msg.contains("short.aag: line 1: bad header: expected M I L O A"), "{msg}");
    let (msg, _, _) = aiger_err("sign.aag", b"aag 1 -1 0 0 0\n");
    assert!(msg.contains("bad header: '-1' is not a count"), "{msg}");
    let (msg, _, _) = aiger_err("m.aig", b"aig 3 1 0 0 1\n");
    assert!(msg.contains("binary AIGER needs M = I + L + A"), "{msg}");

    let (msg, _, kind) = aiger_err("latch.aag", b"aag 1 0 1 0 0\n2 3\n");
    assert_eq!(kind, AigerErrorKind::Latches(1));
    assert_eq!(msg, "latch.aag: line 1: latches are not supported (the header declares 1)");
    let (msg, _, _) = aiger_err("bad.aag", b"aag 1 1 0 0 0 1\n2\n");
    assert!(msg.ends_with("bad-state properties are not supported"), "{msg}");

    let (msg, _, _) = aiger_err("big.aig", b"aig 4294967296 0 0 0 0\n");
    assert!(msg.contains("M overflow: M = 4294967296 exceeds 2147483647"), "{msg}");
    let (msg, _, _) = aiger_err("huge.aag", b"aag 99999999999999999999999 0 0 0 0\n");
    assert!(msg.contains("bad header"), "{msg}");
    let (msg, _, _) = aiger_err("sum.aag", b"aag 3 2 0 0 2\n");
    assert!(msg.contains("M overflow: I + L + A = 4 exceeds M = 3"), "{msg}");

    // Output literal beyond 2M+1, in both formats.
    let (msg, loc, _) = aiger_err("o.aag", b"aag 1 1 0 1 0\n2\n4\n");
    assert_eq!(loc, Location::Line(3));
    assert_eq!(msg, "o.aag: line 3: literal 4 out of range (the largest literal allowed here is 3)");
    let (msg, loc, _) = aiger_err("o.aig", b"aig 1 1 0 1 0\n4\n");
    assert_eq!(loc, Location::Byte(14));
    assert!(msg.starts_with("o.aig: byte 14: literal 4 out of range"), "{msg}");

    // Truncated delta: a continuation byte and then end of file.
    let (msg, loc, kind) = aiger_err("t.aig", b"aig 3 2 0 1 1\n6\n\x82\x80");
    assert_eq!(kind, AigerErrorKind::TruncatedDelta(6));
    assert_eq!(loc, Location::Byte(18));
    assert_eq!(msg, "t.aig: byte 18: truncated delta in AND gate 6");
    // A truncated real file is caught before the gates are read.
    let bin = aiger::write_binary(&half_adder_aig(), &[]).unwrap();
    let (msg, _, kind) = aiger_err("cut.aig", &bin[..22]);
    assert!(
        matches!(kind, AigerErrorKind::TruncatedDelta(_) | AigerErrorKind::CountsExceedFile { .. }),
        "{msg}"
    );
    let (msg, _, _) = aiger_err("cut2.aig", &bin[..18]);
    assert!(
        msg.contains("the header claims 2 outputs and 4 AND gates, needing at least 12 bytes, but only 4 bytes remain"),
        "{msg}"
    );
    let (msg, _, _) = aiger_err("over.aig", b"aig 3 2 0 0 1\n\xff\xff\xff\xff\xff\x01");
    assert!(msg.contains("does not fit in 32 bits"), "{msg}");

    // Binary topological order: a zero first delta makes a gate its own fanin.
    let (msg, _, _) = aiger_err("loop.aig", b"aig 3 2 0 1 1\n6\n\x00\x02");
    assert!(
        msg.contains("AND gate 6 is not in topological order: its first fanin equals the gate's own literal"),
        "{msg}"
    );
    let (msg, _, _) = aiger_err("neg.aig", b"aig 3 2 0 1 1\n6\n\x07\x00");
    assert!(msg.contains("first delta 7 is larger than the gate's literal"), "{msg}");

    // ASCII: undefined literals, cycles, redefinitions.
    let (msg, _, _) = aiger_err("u.aag", b"aag 2 1 0 1 0\n2\n4\n");
    assert_eq!(msg, "u.aag: line 3: literal 4 is used but never defined");
    let (msg, _, _) = aiger_err("u2.aag", b"aag 3 1 0 1 1\n2\n4\n4 2 6\n");
    assert_eq!(msg, "u2.aag: line 4: literal 6 is used but never defined");
    let (msg, _, _) = aiger_err("cyc.aag", b"aag 3 1 0 1 2\n2\n4\n4 6 2\n6 4 2\n");
    assert!(msg.starts_with("cyc.aag: line 4: combinational cycle through AND gate"), "{msg}");
    let (msg, _, _) = aiger_err("dup.aag", b"aag 2 1 0 0 1\n2\n2 2 2\n");
    assert_eq!(msg, "dup.aag: line 3: variable of literal 2 is defined twice");
    let (msg, _, _) = aiger_err("odd.aag", b"aag 1 1 0 0 0\n3\n");
    assert!(msg.contains("input literal 3 must be even"), "{msg}");
    let (msg, _, _) = aiger_err("eof.aag", b"aag 2 1 0 1 1\n2\n4\n");
    assert!(msg.contains("the header claims"), "{msg}");

    // Symbol table problems.
    let (msg, _, _) = aiger_err("sym.aag", b"aag 1 1 0 1 0\n2\n2\ni5 x\n");
    assert_eq!(msg, "sym.aag: line 4: symbol i5 refers to input 5, which does not exist");
    let (msg, _, _) = aiger_err("sym2.aag", b"aag 1 1 0 1 0\n2\n2\nhello\n");
    assert!(msg.contains("bad symbol table line 'hello'"), "{msg}");
    let (msg, _, _) = aiger_err("sym3.aig", b"aig 1 1 0 1 0\n2\no0 y\no0 z\n");
    assert_eq!(msg, "sym3.aig: byte 21: output 0 is named twice");
}

#[test]
fn huge_claimed_counts_fail_fast_without_allocating() {
    let start = Instant::now();
    let (msg, _, _) = aiger_err("claims.aig", b"aig 2147483647 0 0 1000000000 2147483647\n");
    assert!(msg.contains("needing at least"), "{msg}");
    let (msg, _, _) = aiger_err("claims.aag", b"aag 2147483647 2147483647 0 0 0\n");
    assert!(
        msg.contains("the header declares 2147483647 inputs; at most 1048576 are read"),
        "{msg}"
    );
    let (msg, _, _) = aiger_err("claims.aag", b"aag 1048576 1048576 0 0 0\n");
    assert!(msg.contains("the header claims 1048576 inputs"), "{msg}");
    let (msg, _, _) = aiger_err("outs.aig", b"aig 0 0 0 18446744073709551615 0\n");
    assert!(msg.contains("needing at least"), "{msg}");
    // Binary inputs take no bytes, so two billion inputs fit in a few bytes; every use of such a
    // circuit would then spend gigabytes, so the reader refuses past `aiger::MAX_INPUTS`.
    let (msg, _, _) = aiger_err("inputs.aig", b"aig 2147483647 2147483647 0 1 0\n4294967294\n");
    assert!(msg.contains("the header declares 2147483647 inputs"), "{msg}");
    let g = aiger::read("inputs.aig", b"aig 1048576 1048576 0 1 0\n2097152\n").unwrap();
    assert_eq!(g.num_inputs(), 1048576);
    assert_eq!(g.outputs(), &[("o0".to_string(), 2097152)]);
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

fn blif_err(text: &str) -> (String, usize, BlifErrorKind) {
    match blif::read("t.blif", text).unwrap_err() {
        e @ BlifError::Parse { .. } => {
            let msg = e.to_string();
            let BlifError::Parse { line, kind, file } = e else { unreachable!() };
            assert_eq!(file, "t.blif");
            (msg, line, kind)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn blif_reader_handles_order_continuations_covers_and_constants() {
    let text = "\
# a comment
.model m   # trailing comment
.inputs a b \\
  c
.outputs maj \\
  nmaj one zero xo pass
.names t1 t2 t3 maj
1-- 1
-1- 1
--1 1
.names a b t1
11 1
.names a c t2
11 1
.names b c t3
11 1
.names a b c nmaj
11- 0
1-1 0
-11 0
.names one
1
.names zero
.names a b xo
01 1
10 1
.names a pass
1 1
.end
";
    let g = blif::read("m.blif", text).unwrap();
    assert_eq!(g.input_names(), vec!["a", "b", "c"]);
    let maj = 0b1110_1000u64;
    let xo = 0b0110_0110u64;
    let a = 0b1010_1010u64;
    assert_eq!(
        aig_table(&g),
        vec![vec![maj], vec![!maj & 0xff], vec![0xff], vec![0], vec![xo], vec![a]]
    );
    // Round trip through the writer, with continuation lines for long lists.
    let mut wide = Aig::new();
    for i in 0..30 {
        wide.add_input(&format!("input_signal_{i}")).unwrap();
    }
    let ins: Vec<u32> = (0..30).map(|i| wide.input_lit(i).unwrap()).collect();
    let y = wide.and_all(&ins).unwrap();
    wide.add_output("y", lit_not(y)).unwrap();
    wide.add_output("k", TRUE).unwrap();
    wide.add_output("input_signal_3", ins[3]).unwrap();
    let text = blif::write(&wide, "wide").unwrap();
    assert!(text.contains(" \\\n"), "{text}");
    assert!(text.contains(".names k\n1\n"), "{text}");
    let back = blif::read("w.blif", &text).unwrap();
    assert_eq!(back.num_ands(), 29);
    assert_eq!(names(&back), names(&wide));
    assert_eq!(back.outputs()[0].1 & 1, 1);
}

#[test]
fn blif_writer_format() {
    let g = half_adder_aig();
    let text = blif::write(&g, "ha").unwrap();
    assert_eq!(
        text,
        "# written by kiln\n.model ha\n.inputs a b\n.outputs s c\n\
         .names b a n3\n01 1\n.names b a n4\n10 1\n.names n4 n3 n5\n00 1\n.names b a n6\n11 1\n\
         .names n5 s\n0 1\n.names n6 c\n1 1\n.end\n"
    );
    // Names that clash with the node prefix push it aside.
    let mut g2 = Aig::with_inputs(&["n1", "n2"]).unwrap();
    let l = g2.and(2, 4).unwrap();
    g2.add_output("y", l).unwrap();
    let text = blif::write(&g2, "m").unwrap();
    assert!(text.contains(".names n2 n1 n_3\n11 1\n"), "{text}");
    // Unwritable names are errors, not corrupt files.
    let g3 = Aig::with_inputs(&["a b"]).unwrap();
    assert!(blif::write(&g3, "m")
        .unwrap_err()
        .to_string()
        .contains("input name \"a b\" is not a BLIF identifier"));
    let mut g4 = Aig::with_inputs(&["a"]).unwrap();
    g4.add_output("a", 3).unwrap();
    assert!(blif::write(&g4, "m")
        .unwrap_err()
        .to_string()
        .contains("output 'a' has the name of an input"));
}

#[test]
fn malformed_blif_files_name_the_line_and_problem() {
    let (msg, line, kind) = blif_err(".model c\n.inputs a\n.outputs y\n.names a x y\n11 1\n.names y x\n1 1\n.end\n");
    assert!(matches!(kind, BlifErrorKind::Cycle(_)));
    assert!(line == 4 || line == 6);
    assert!(
        msg.contains("combinational cycle through signal 'y'") || msg.contains("combinational cycle through signal 'x'"),
        "{msg}"
    );

    let (msg, line, _) = blif_err(".model l\n.inputs a\n.outputs q\n.latch a q 0\n.end\n");
    assert_eq!(line, 4);
    assert_eq!(msg, "t.blif: line 4: latches are not supported (.latch)");
    let (msg, _, _) = blif_err(".model h\n.inputs a\n.outputs y\n.subckt inv i=a o=y\n.end\n");
    assert!(msg.contains("hierarchical models are not supported (.subckt)"), "{msg}");
    let (msg, _, _) = blif_err(".model u\n.inputs a\n.outputs y\n.names a b y\n11 1\n.end\n");
    assert_eq!(msg, "t.blif: line 4: signal 'b' is used but never defined");
    let (msg, _, _) = blif_err(".model u\n.inputs a\n.outputs y z\n.names a y\n1 1\n.end\n");
    assert_eq!(msg, "t.blif: line 3: signal 'z' is used but never defined");
    let (msg, _, _) = blif_err(".model d\n.inputs a\n.outputs y\n.names a y\n1 1\n.names a y\n0 1\n.end\n");
    assert_eq!(msg, "t.blif: line 6: signal 'y' is defined twice");
    let (msg, _, _) = blif_err(".inputs a b\n.outputs y\n.names a b y\n11 1\n00 0\n");
    assert!(
        msg.contains("line 5: the cover of 'y' mixes on-set (1) and off-set (0) rows"),
        "{msg}"
    );
    let (msg, _, _) = blif_err(".inputs a b\n.outputs y\n.names a b y\n1 1\n");
    assert!(msg.contains("cube '1' for 'y' must have 2 characters"), "{msg}");
    let (msg, _, _) = blif_err(".inputs a b\n.outputs y\n.names a b y\n1x 1\n");
    assert!(msg.contains("must have 2 characters from 0, 1 and -"), "{msg}");
    let (msg, _, _) = blif_err(".inputs a\n.outputs y\n11 1\n");
    assert!(msg.contains("line 3: cover row '11 1' outside a .names block"), "{msg}");
    let (msg, _, _) = blif_err(".inputs a\n.outputs y\n.frobnicate\n");
    assert_eq!(msg, "t.blif: line 3: unknown directive '.frobnicate'");
    let (msg, _, _) = blif_err(".model a\n.end\n.model b\n.end\n");
    assert!(msg.contains("line 3: text after .end"), "{msg}");
    let (msg, _, _) = blif_err(".inputs a\n.outputs y\n.names\n");
    assert!(msg.contains(".names needs at least an output signal"), "{msg}");
    let (msg, _, _) = blif_err(".inputs a a\n.outputs a\n");
    assert!(msg.contains("signal 'a' is defined twice"), "{msg}");
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    // 200 000 buffers defined in reverse order: the sort must not recurse.
    let n = 200_000;
    let mut text = String::from(".model chain\n.inputs a\n.outputs y\n");
    text.push_str(&format!(".names s{n} y\n1 1\n"));
    for i in (1..=n).rev() {
        let src = if i == 1 { "a".to_string() } else { format!("s{}", i - 1) };
        text.push_str(&format!(".names {src} s{i}\n0 1\n"));
    }
    text.push_str(".end\n");
    let g = blif::read("chain.blif", &text).unwrap();
    assert_eq!(g.num_ands(), 0);
    assert_eq!(g.outputs()[0].1, 2, "an even number of inverters is the input itself");
    // Same for an ASCII AIGER file listing a deep AND chain backwards.
    let depth = 100_000u64;
    let mut aag = format!("aag {} 2 0 1 {depth}\n2\n4\n{}\n", depth + 2, 2 * (depth + 2));
    for k in (0..depth).rev() {
        let lhs = 2 * (k + 3);
        let prev = if k == 0 { 2 } else { lhs - 2 };
        aag.push_str(&format!("{lhs} {prev} {}\n", 4 + (k % 2)));
    }
    let g = aiger::read("chain.aag", aag.as_bytes()).unwrap();
    assert_eq!(g.num_ands(), depth as usize, "nothing to merge: each gate adds a new conjunct");
    let g = g.cleanup();
    assert_eq!(aig_table(&g), vec![vec![0]], "a ∧ b ∧ ¬b … is constant false");
}

/// Applies byte-level mutations to a valid file.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(kind, at, val) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match kind % 4 {
            0 => bytes[at] ^= 1 << (val % 8),
            1 => bytes[at] = val,
            2 => bytes.insert(at, val),
            _ => {
                bytes.remove(at);
            }
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c % (bytes.len() + 1));
    }
    bytes
}

/// What a successful read of a mutated file must still satisfy: a small
/// result simulates, and it survives its own format's round trip.
fn check_read_result(g: &Aig) {
    if g.num_inputs() <= 12 && g.num_ands() <= 100_000 {
        let t = aig_table(g);
        let again = aiger::read("again.aig", &aiger::write_binary(g, &[]).unwrap()).unwrap();
        assert_eq!(aig_table(&again), t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases(2000)))]
    #[test]
    fn mutated_files_never_panic(
        seed in 0u64..64,
        format in 0u8..3,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..5),
        cut in prop::option::of(any::<usize>()),
    ) {
        let aig = Aig::from_circuit(&random_circuit(seed)).unwrap().cleanup();
        let valid = match format {
            0 => aiger::write_binary(&aig, &["c"]).unwrap(),
            1 => aiger::write_ascii(&aig, &[]).unwrap().into_bytes(),
            _ => blif::write(&aig, "m").unwrap().into_bytes(),
        };
        let bytes = mutate(valid, &edits, cut);
        if format < 2 {
            if let Ok(g) = aiger::read("fuzz", &bytes) {
                check_read_result(&g);
            }
        } else {
            // BLIF is text; invalid UTF-8 is replaced so those mutations
            // still reach the parser.
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(g) = blif::read("fuzz", &text) {
                check_read_result(&g);
                // Writing may legitimately refuse (e.g. a mutated name), but
                // what it writes must read back.
                if let Ok(t) = blif::write(&g, "m") {
                    prop_assert!(blif::read("again", &t).is_ok());
                }
            }
        }
    }
}

// ----------------------------------------------------------------------
// Berkeley ABC cross-check.

fn find_abc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["berkeley-abc", "abc"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn run_abc(abc: &Path, dir: &Path, script: &str) -> String {
    let out = Command::new(abc)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("running ABC");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ABC failed on '{script}':\n{text}");
    text
}

/// The number after `and =` in `&ps` output.
fn ps_and_count(out: &str) -> Option<usize> {
    // ABC colours its statistics, so stop at the first non-digit.
    let rest = out[out.find("and =")? + 5..].trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn berkeley_abc_agrees() {
    let Some(abc) = find_abc() else {
        if std::env::var("KILN_REQUIRE_ABC").as_deref() == Ok("1") {
            panic!("KILN_REQUIRE_ABC=1 but neither 'berkeley-abc' nor 'abc' is on PATH (Debian: apt-get install berkeley-abc)");
        }
        eprintln!("note: skipping the ABC cross-check: 'berkeley-abc' / 'abc' not found on PATH");
        return;
    };
    let dir = std::env::temp_dir().join(format!("kiln-formats-abc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for seed in 1000..1030 {
        let c = random_circuit(seed);
        let aig = Aig::from_circuit(&c).unwrap().cleanup();
        if aig.num_ands() == 0 {
            continue;
        }
        let want = circuit_table(&c);
        aiger::write_file(&aig, dir.join("f.aig"), &[]).unwrap();
        blif::write_file(&aig, dir.join("k.blif"), "kiln").unwrap();

        // ABC's structural hash count matches ours.
        let ps = run_abc(&abc, &dir, "read f.aig; &get; &ps");
        assert_eq!(ps_and_count(&ps), Some(aig.num_ands()), "seed {seed}: &ps says\n{ps}");

        // ABC's BLIF of our AIG reads back to the same function.
        run_abc(&abc, &dir, "read f.aig; strash; write_blif g.blif");
        let g = blif::read_file(dir.join("g.blif")).unwrap();
        assert_eq!(aig_table(&g), want, "seed {seed}: ABC's BLIF");
        assert_eq!(g.num_ands(), aig.num_ands(), "seed {seed}: ABC's BLIF AND count");

        // Multi-row covers with don't cares, as ABC writes them after
        // collapsing to one SOP per output. (`renode` would give larger
        // nodes too, but Debian's ABC 1.01 trips an assertion in
        // Abc_NtkAigToBdd on some of these networks.)
        run_abc(&abc, &dir, "read f.aig; collapse; write_blif c.blif");
        let g = blif::read_file(dir.join("c.blif")).unwrap();
        assert_eq!(aig_table(&g), want, "seed {seed}: ABC's collapsed BLIF");

        // ABC proves kiln's BLIF equivalent to kiln's AIGER file.
        let cec = run_abc(&abc, &dir, "cec f.aig k.blif");
        assert!(cec.contains("Networks are equivalent"), "seed {seed}: cec says\n{cec}");

        // ABC's own AIGER output reads back too.
        run_abc(&abc, &dir, "read k.blif; strash; write_aiger h.aig");
        let h = aiger::read_file(dir.join("h.aig")).unwrap();
        assert_eq!(aig_table(&h), want, "seed {seed}: ABC's .aig");
        checked += 1;
    }
    // The full adder: 9 ANDs here and in ABC.
    let fa = Aig::from_circuit(&full_adder()).unwrap();
    aiger::write_file(&fa, dir.join("fa.aig"), &[]).unwrap();
    let ps = run_abc(&abc, &dir, "read fa.aig; &get; &ps");
    assert_eq!(ps_and_count(&ps), Some(9), "full adder: &ps says\n{ps}");
    std::fs::remove_dir_all(&dir).ok();
    assert!(checked >= 10, "only {checked} circuits had AND nodes");
}

/// Cases per fuzz property: `default` in the test suite, `KILN_FUZZ_CASES` in the long mode that
/// scripts/fuzz runs.
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("KILN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
