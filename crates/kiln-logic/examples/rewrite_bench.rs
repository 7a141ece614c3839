//! Gate counts before and after [`kiln_logic::optimise::optimise`] on
//! structured and random circuits, next to ABC's where `berkeley-abc` (or
//! `abc`) is on PATH (two flows, see `abc_scripts`, mapping onto the two-input
//! gates + inverter, each of area 1).
//!
//! `cargo run --release -p kiln-logic --example rewrite_bench`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kiln_logic::optimise::{optimise, OptimiseParams};
use kiln_logic::rewrite::{rewrite, RewriteParams};
use kiln_logic::{aiger, Aig, Circuit, Op, Signal, SplitMix64};

const GENLIB: &str = "GATE zero 1 O=CONST0;\nGATE one 1 O=CONST1;\n\
GATE buf 1 O=a; PIN * NONINV 1 999 1 0 1 0\nGATE inv 1 O=!a; PIN * INV 1 999 1 0 1 0\n\
GATE and2 1 O=a*b; PIN * NONINV 1 999 1 0 1 0\nGATE or2 1 O=a+b; PIN * NONINV 1 999 1 0 1 0\n\
GATE nand2 1 O=!(a*b); PIN * INV 1 999 1 0 1 0\nGATE nor2 1 O=!(a+b); PIN * INV 1 999 1 0 1 0\n\
GATE xor2 1 O=a*!b+!a*b; PIN * UNKNOWN 1 999 1 0 1 0\nGATE xnor2 1 O=a*b+!a*!b; PIN * UNKNOWN 1 999 1 0 1 0\n\
GATE andn 1 O=a*!b; PIN * UNKNOWN 1 999 1 0 1 0\nGATE orn 1 O=a+!b; PIN * UNKNOWN 1 999 1 0 1 0\n";

fn full_adder(c: &mut Circuit, a: Signal, b: Signal, ci: Signal, redundant: bool) -> (Signal, Signal) {
    let t = c.gate(Op::Xor, &[a, b]).unwrap();
    let s = c.gate(Op::Xor, &[t, ci]).unwrap();
    let carry = if redundant {
        let nab = c.gate(Op::Nand, &[a, b]).unwrap();
        let ab = c.gate(Op::Not, &[nab]).unwrap();
        let ac = c.gate(Op::And, &[a, ci]).unwrap();
        let bc = c.gate(Op::And, &[b, ci]).unwrap();
        let o1 = c.gate(Op::Or, &[ab, ac]).unwrap();
        c.gate(Op::Or, &[o1, bc]).unwrap()
    } else {
        let ab = c.gate(Op::And, &[a, b]).unwrap();
        let tc = c.gate(Op::And, &[t, ci]).unwrap();
        c.gate(Op::Or, &[ab, tc]).unwrap()
    };
    (s, carry)
}

fn inputs(names: &[String]) -> Circuit {
    Circuit::new(names.to_vec())
}

fn adder(bits: usize) -> Circuit {
    let names: Vec<String> = (0..2 * bits + 1).map(|i| format!("i{i}")).collect();
    let mut c = inputs(&names);
    let mut carry = Signal::Input(2 * bits);
    for k in 0..bits {
        let (s, co) = full_adder(&mut c, Signal::Input(k), Signal::Input(bits + k), carry, true);
        c.set_output(&format!("s{k}"), s).unwrap();
        carry = co;
    }
    c.set_output("cout", carry).unwrap();
    c
}

/// Array multiplier: AND partial products summed row by row with 5-gate full adders.
fn multiplier(bits: usize) -> Circuit {
    let names: Vec<String> = (0..2 * bits).map(|i| format!("i{i}")).collect();
    let mut c = inputs(&names);
    let a = |i: usize| Signal::Input(i);
    let b = |i: usize| Signal::Input(bits + i);
    let mut acc: Vec<Signal> = Vec::new();
    for j in 0..bits {
        let row: Vec<Signal> = (0..bits).map(|i| c.gate(Op::And, &[a(i), b(j)]).unwrap()).collect();
        if j == 0 {
            acc = row;
            continue;
        }
        // acc holds bits j.. of the running sum (lower bits already output).
        let mut carry = Signal::Const(false);
        let mut next = Vec::new();
        for (i, &r) in row.iter().enumerate() {
            let x = acc.get(i + 1).copied().unwrap_or(Signal::Const(false));
            let (s, co) = full_adder(&mut c, x, r, carry, false);
            next.push(s);
            carry = co;
        }
        next.push(carry);
        c.set_output(&format!("p{}", j - 1), acc[0]).unwrap();
        acc = next;
    }
    for (k, &s) in acc.iter().enumerate() {
        c.set_output(&format!("p{}", bits - 1 + k), s).unwrap();
    }
    c
}

/// `a < b` for unsigned words, as an OR over "first difference" terms.
fn comparator(bits: usize) -> Circuit {
    let names: Vec<String> = (0..2 * bits).map(|i| format!("i{i}")).collect();
    let mut c = inputs(&names);
    let mut terms = Vec::new();
    for k in 0..bits {
        let na = c.gate(Op::Not, &[Signal::Input(k)]).unwrap();
        let mut t = c.gate(Op::And, &[na, Signal::Input(bits + k)]).unwrap();
        for h in k + 1..bits {
            let eq = c.gate(Op::Xnor, &[Signal::Input(h), Signal::Input(bits + h)]).unwrap();
            t = c.gate(Op::And, &[t, eq]).unwrap();
        }
        terms.push(t);
    }
    let mut o = terms[0];
    for &t in &terms[1..] {
        o = c.gate(Op::Or, &[o, t]).unwrap();
    }
    c.set_output("lt", o).unwrap();
    c
}

/// Random circuit over the binary ops, arguments drawn from all earlier
/// signals; with `sinks`, every gate nothing reads is an output (so nearly
/// all gates stay live), else the last `outs` gates are.
fn random(seed: u64, n: usize, gates: usize, outs: usize, sinks: bool) -> Circuit {
    const OPS: [Op; 8] = [Op::And, Op::Or, Op::Xor, Op::Nand, Op::Nor, Op::Xnor, Op::Implies, Op::Nimplies];
    let mut rng = SplitMix64::new(seed);
    let names: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
    let mut c = inputs(&names);
    let mut sigs: Vec<Signal> = (0..n).map(Signal::Input).collect();
    let mut read = vec![false; gates];
    for _ in 0..gates {
        let op = OPS[(rng.next_u64() % 8) as usize];
        let mut pick = || {
            let s = sigs[(rng.next_u64() % sigs.len() as u64) as usize];
            if let Signal::Gate(g) = s {
                read[g] = true;
            }
            s
        };
        let (a, b) = (pick(), pick());
        sigs.push(c.gate(op, &[a, b]).unwrap());
    }
    let chosen: Vec<usize> = if sinks {
        (0..gates).filter(|&g| !read[g]).collect()
    } else {
        (gates - outs..gates).collect()
    };
    for (j, g) in chosen.into_iter().enumerate() {
        c.set_output(&format!("y{j}"), Signal::Gate(g)).unwrap();
    }
    c
}

/// ABC's `resyn2` alias, spelt out (aliases need an abc.rc).
const RESYN2: &str = "balance; rewrite; refactor; balance; rewrite; rewrite -z; balance; refactor -z; rewrite -z; balance";

/// The two ABC flows compared: classic resyn2 twice then area mapping, and
/// resyn2 then choice computation, area mapping and don't-care resubstitution.
fn abc_scripts() -> [String; 2] {
    [
        format!("{RESYN2}; {RESYN2}; read_library g.genlib; map -a"),
        format!("{RESYN2}; dch -f; read_library g.genlib; map -a; mfs2 -a"),
    ]
}

fn find_abc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["berkeley-abc", "abc"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// ABC's mapped gate count (`nd =` of print_stats) and seconds for `flow`.
fn abc_gates(abc: &Path, dir: &Path, c: &Circuit, name: &str, flow: &str) -> Option<(usize, f64)> {
    let aig = Aig::from_circuit(c).ok()?;
    let file = dir.join(format!("{name}.aig"));
    aiger::write_file(&aig, &file, &[]).ok()?;
    let script = format!("read {}; strash; {flow}; print_stats", file.display());
    let t = Instant::now();
    let out = Command::new(abc).arg("-c").arg(script).current_dir(dir).output().ok()?;
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rest = text[text.find("nd =")? + 4..].trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((digits.parse().ok()?, secs))
}

fn main() {
    let mut cases: Vec<(String, Circuit)> = Vec::new();
    for bits in [4, 8, 16] {
        cases.push((format!("adder{bits}_8gateFA"), adder(bits)));
    }
    for bits in [3, 4, 8] {
        cases.push((format!("mult{bits}x{bits}"), multiplier(bits)));
    }
    cases.push(("cmp8_lt".into(), comparator(8)));
    for (seed, n, g) in [
        (1u64, 6usize, 30usize),
        (2, 6, 60),
        (3, 8, 60),
        (4, 8, 100),
        (5, 10, 100),
        (6, 10, 150),
        (7, 10, 200),
        (8, 9, 200),
    ] {
        cases.push((format!("rand_n{n}_g{g}_s{seed}"), random(seed, n, g, 3, false)));
    }
    for (seed, n, g) in [
        (11u64, 6usize, 30usize),
        (12, 8, 60),
        (13, 8, 100),
        (14, 10, 150),
        (15, 10, 200),
        (16, 16, 2000),
        (17, 24, 10000),
    ] {
        cases.push((format!("sinks_n{n}_g{g}_s{seed}"), random(seed, n, g, 0, true)));
    }
    let abc = find_abc();
    let dir = std::env::temp_dir().join(format!("kiln-rewrite-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("g.genlib"), GENLIB);
    println!(
        "{:24} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "circuit", "start", "rewrite", "optimise", "time_s", "abc_rs2", "abc_dch", "abc_s"
    );
    let mut totals = [0usize; 5];
    for (name, c) in &cases {
        let start = c.simplify().num_gates();
        let (r, _) = rewrite(c, &RewriteParams::default());
        let t = Instant::now();
        let (o, _) = optimise(c, &OptimiseParams::default());
        let secs = t.elapsed().as_secs_f64();
        let flows = abc_scripts();
        let runs: Vec<Option<(usize, f64)>> = flows
            .iter()
            .map(|f| abc.as_ref().and_then(|a| abc_gates(a, &dir, c, name, f)))
            .collect();
        let show = |r: &Option<(usize, f64)>| r.map_or("-".to_string(), |(g, _)| g.to_string());
        let abc_secs: f64 = runs.iter().flatten().map(|(_, s)| s).sum();
        println!(
            "{name:24} {start:>6} {:>8} {:>9} {secs:>8.3} {:>8} {:>8} {abc_secs:>8.2}",
            r.num_gates(),
            o.num_gates(),
            show(&runs[0]),
            show(&runs[1])
        );
        for (t, v) in totals.iter_mut().zip([
            start,
            r.num_gates(),
            o.num_gates(),
            runs[0].map_or(0, |x| x.0),
            runs[1].map_or(0, |x| x.0),
        ]) {
            *t += v;
        }
    }
    println!(
        "{:24} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "total", totals[0], totals[1], totals[2], "", totals[3], totals[4]
    );
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", dir.display());
    }
}
