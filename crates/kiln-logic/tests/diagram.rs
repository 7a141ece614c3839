//! Circuit diagrams: the SVG is well-formed XML whose wires are exactly the circuit's wires, the
//! DOT has the same edges, large circuits get a summary that accounts for every gate and wire, and
//! the same circuit always gives the same bytes.

use std::collections::BTreeMap;

use kiln_logic::diagram::{to_dot, to_svg, to_svg_with, DiagramParams};
use kiln_logic::{Circuit, Op, Signal, SplitMix64};

const OPS: [Op; 10] = [
    Op::And,
    Op::Or,
    Op::Xor,
    Op::Nand,
    Op::Nor,
    Op::Xnor,
    Op::Implies,
    Op::Nimplies,
    Op::Not,
    Op::Buf,
];

/// A random circuit of `gates` gates over inputs with the given names, with two outputs (one of
/// them maybe an input or a constant).
fn random_circuit(names: &[&str], gates: usize, seed: u64) -> Circuit {
    let mut rng = SplitMix64::new(seed);
    let mut c = Circuit::new(names.iter().map(|s| s.to_string()).collect());
    let mut signals: Vec<Signal> = (0..names.len()).map(Signal::Input).collect();
    for _ in 0..gates {
        let op = OPS[(rng.next_u64() % OPS.len() as u64) as usize];
        let pick = |rng: &mut SplitMix64| {
            // Mostly recent signals, so the circuit has depth.
            let k = signals.len();
            signals[k - 1 - (rng.next_u64() % k.min(6) as u64) as usize]
        };
        let a = pick(&mut rng);
        let args = if op.arity() == 1 { vec![a] } else { vec![a, pick(&mut rng)] };
        signals.push(c.gate(op, &args).unwrap());
    }
    let last = *signals.last().unwrap();
    c.set_output("y&<out>", last).unwrap();
    let other = if rng.next_u64() & 1 == 0 {
        Signal::Input(0)
    } else {
        Signal::Const(true)
    };
    c.set_output("z\"2", other).unwrap();
    c
}

/// The circuit's wires as (from, to, port) names, counted.
fn circuit_wires(c: &Circuit) -> BTreeMap<(String, String, usize), usize> {
    let name = |s: Signal| match s {
        Signal::Const(b) => if b { "1" } else { "0" }.to_string(),
        s => c.signal_name(s),
    };
    let mut m = BTreeMap::new();
    for (g, e) in c.gates().iter().enumerate() {
        for (p, &a) in e.args.iter().enumerate() {
            *m.entry((name(a), c.gate_name(g), p)).or_default() += 1;
        }
    }
    for (o, s) in c.outputs() {
        *m.entry((name(*s), o.clone(), 0)).or_default() += 1;
    }
    m
}

#[test]
fn svg_wires_are_exactly_the_circuit_wires() {
    let names = ["a", "b&c", "<d>", "e'f"];
    for seed in 0..30 {
        let c = random_circuit(&names, 1 + (seed as usize * 7) % 60, seed);
        let svg = to_svg(&c);
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("seed {seed}: not XML: {e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("data-view"), Some("detailed"));
        let mut drawn: BTreeMap<(String, String, usize), usize> = BTreeMap::new();
        for w in doc.descendants().filter(|n| n.attribute("class") == Some("wire")) {
            let key = (
                w.attribute("data-from").unwrap().to_string(),
                w.attribute("data-to").unwrap().to_string(),
                w.attribute("data-port").unwrap().parse().unwrap(),
            );
            *drawn.entry(key).or_default() += 1;
        }
        assert_eq!(drawn, circuit_wires(&c), "seed {seed}");
        // One node per input, gate and output (and per constant read).
        let gates = doc.descendants().filter(|n| n.attribute("class") == Some("gate")).count();
        assert_eq!(gates, c.num_gates());
        let ops: Vec<&str> = doc.descendants().filter_map(|n| n.attribute("data-op")).collect();
        let want: Vec<&str> = c
            .gates()
            .iter()
            .map(|g| if g.op == Op::Buf { "BUF" } else { g.op.name() })
            .collect();
        let (mut ops, mut want) = (ops, want);
        ops.sort_unstable();
        want.sort_unstable();
        assert_eq!(ops, want);
        assert_eq!(
            doc.descendants().filter(|n| n.attribute("class") == Some("input")).count(),
            names.len()
        );
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("output")).count(), 2);
        // Deterministic.
        assert_eq!(to_svg(&c), svg);
    }
}

#[test]
fn dot_edges_are_exactly_the_circuit_wires() {
    let names = ["a", "b\"q", "c\\d"];
    for seed in 0..20 {
        let c = random_circuit(&names, 1 + seed as usize * 3, 100 + seed);
        let dot = to_dot(&c);
        assert!(dot.starts_with("digraph kiln {\n") && dot.ends_with("}\n"));
        // id -> label, then edges by label.
        let mut label: BTreeMap<String, String> = BTreeMap::new();
        let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
        for line in dot.lines().map(str::trim) {
            if let Some((id, rest)) = line.split_once(" [label=\"") {
                let mut l = String::new();
                let mut chars = rest.chars();
                while let Some(ch) = chars.next() {
                    match ch {
                        '\\' => l.push(chars.next().unwrap()),
                        '"' => break,
                        ch => l.push(ch),
                    }
                }
                label.insert(id.to_string(), l);
            } else if let Some((a, b)) = line.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
                *edges.entry((a.to_string(), b.to_string())).or_default() += 1;
            }
        }
        let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
        for ((from, to, _), n) in circuit_wires(&c) {
            *want.entry((from, to)).or_default() += n;
        }
        // Gate ids are g<index>; inputs, constants and outputs are named by their labels.
        let name_of = |id: &str| -> String {
            match id.strip_prefix('g').and_then(|k| k.parse::<usize>().ok()) {
                Some(k) => c.gate_name(k),
                None => label[id].clone(),
            }
        };
        let got: BTreeMap<(String, String), usize> = edges.into_iter().map(|((a, b), n)| ((name_of(&a), name_of(&b)), n)).collect();
        assert_eq!(got, want, "seed {seed}\n{dot}");
    }
}

#[test]
fn large_circuits_get_a_summary_that_accounts_for_everything() {
    let names: Vec<String> = (0..40).map(|i| format!("x{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let c = random_circuit(&refs, 900, 7);
    let svg = to_svg(&c);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().attribute("data-view"), Some("summary"));
    let count = |class: &str| -> usize {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .map(|n| n.attribute("data-count").unwrap().parse::<usize>().unwrap())
            .sum()
    };
    assert_eq!(count("group"), c.num_gates());
    assert_eq!(count("input"), 40);
    assert_eq!(count("output"), 2);
    assert_eq!(count("band"), circuit_wires(&c).values().sum::<usize>());
    // At most a screen's width of columns however deep the circuit.
    let width: f64 = doc.root_element().attribute("width").unwrap().parse().unwrap();
    assert!(width < 2200.0, "{width}");
    // The threshold is a parameter: the same circuit drawn gate by gate.
    let detailed = to_svg_with(&c, &DiagramParams { max_detailed_gates: 1000 });
    assert!(detailed.contains("data-view=\"detailed\""));
}
