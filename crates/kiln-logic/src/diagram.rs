//! Circuit diagrams: Graphviz DOT, and SVG drawn by kiln itself (no Graphviz needed).
//!
//! Inputs sit on the left, outputs on the right, and each gate in the column of its level (one
//! more than its deepest fanin), labelled with its operator. A signal read by several gates is
//! drawn once, with one wire per reader. Within a column, gates are ordered by the mean row of
//! their fanins, which keeps most wires short and uncrossed on the circuits kiln learns.
//!
//! A circuit of more than [`DiagramParams::max_detailed_gates`] gates is drawn as a summary: one
//! box per (level, operator) with its gate count, and one band per pair of boxes that wires join,
//! as wide as the logarithm of their number, since hundreds of individual gates make an
//! unreadable hairball.
//!
//! Every element carries `data-` attributes naming what it draws (`data-from`, `data-to`,
//! `data-port` on wires), so a test or a script can read the circuit back from the picture. The
//! output is deterministic: the same circuit gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::circuit::{Circuit, Op, Signal, SignalNames};

/// Settings of [`to_svg_with`].
#[derive(Debug, Clone, Copy)]
pub struct DiagramParams {
    /// Largest circuit drawn gate by gate; larger ones get the summary view.
    pub max_detailed_gates: usize,
}

impl Default for DiagramParams {
    fn default() -> Self {
        DiagramParams { max_detailed_gates: 150 }
    }
}

/// What a drawn node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Input(usize),
    Const(bool),
    Gate(usize),
    Output(usize),
}

/// Columns and rows of every node.
struct Layout {
    /// `columns[l]` lists the nodes of level `l` top to bottom.
    columns: Vec<Vec<Node>>,
    /// Row of each node within its column.
    row: BTreeMap<Node, usize>,
    /// Column of each node.
    column: BTreeMap<Node, usize>,
}

fn source(s: Signal) -> Node {
    match s {
        Signal::Input(i) => Node::Input(i),
        Signal::Const(b) => Node::Const(b),
        Signal::Gate(g) => Node::Gate(g),
    }
}

/// The level of every gate: 1 + the deepest fanin, inputs and constants at 0.
fn levels(c: &Circuit) -> Vec<usize> {
    let mut level = Vec::with_capacity(c.num_gates());
    for g in c.gates() {
        let l = g
            .args
            .iter()
            .map(|&a| match a {
                Signal::Gate(k) => level[k],
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        level.push(l + 1);
    }
    level
}

fn layout(c: &Circuit) -> Layout {
    let level = levels(c);
    let depth = level.iter().copied().max().unwrap_or(0);
    let mut columns: Vec<Vec<Node>> = vec![Vec::new(); depth + 2];
    columns[0] = (0..c.inputs().len()).map(Node::Input).collect();
    // Constants only appear when something reads them.
    let mut consts: Vec<bool> = c
        .gates()
        .iter()
        .flat_map(|g| g.args.iter())
        .chain(c.outputs().iter().map(|(_, s)| s))
        .filter_map(|s| match s {
            Signal::Const(b) => Some(*b),
            _ => None,
        })
        .collect();
    consts.sort_unstable();
    consts.dedup();
    columns[0].extend(consts.into_iter().map(Node::Const));
    let mut row: BTreeMap<Node, usize> = BTreeMap::new();
    let mut column: BTreeMap<Node, usize> = BTreeMap::new();
    for (r, &n) in columns[0].iter().enumerate() {
        row.insert(n, r);
        column.insert(n, 0);
    }
    // Gates by level, each list in gate order: scanning every gate for each level took time
    // quadratic in a chain's length (a million-gate chain did not draw in a minute).
    let mut by_level: Vec<Vec<usize>> = vec![Vec::new(); depth + 1];
    for (g, &l) in level.iter().enumerate() {
        by_level[l].push(g);
    }
    for (l, column_nodes) in columns.iter_mut().enumerate().take(depth + 1).skip(1) {
        let mut gates: Vec<(f64, usize)> = by_level[l]
            .iter()
            .map(|&g| {
                let args = &c.gates()[g].args;
                let mean = args.iter().map(|&a| row[&source(a)] as f64).sum::<f64>() / args.len().max(1) as f64;
                (mean, g)
            })
            .collect();
        gates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, &(_, g)) in gates.iter().enumerate() {
            row.insert(Node::Gate(g), r);
            column.insert(Node::Gate(g), l);
        }
        *column_nodes = gates.into_iter().map(|(_, g)| Node::Gate(g)).collect();
    }
    let last = depth + 1;
    columns[last] = (0..c.outputs().len()).map(Node::Output).collect();
    for (r, &n) in columns[last].iter().enumerate() {
        row.insert(n, r);
        column.insert(n, last);
    }
    Layout { columns, row, column }
}

/// The name a node is known by in `data-` attributes and DOT ids: the input's or output's name,
/// `0`/`1` for constants, and the circuit's own gate names.
fn node_name(c: &Circuit, names: &SignalNames, n: Node) -> String {
    match n {
        Node::Input(i) => c.inputs()[i].clone(),
        Node::Const(b) => if b { "1" } else { "0" }.to_string(),
        Node::Gate(g) => names.gate(g),
        Node::Output(j) => c.outputs()[j].0.clone(),
    }
}

fn op_label(op: Op) -> &'static str {
    match op {
        Op::Buf => "BUF",
        op => op.name(),
    }
}

/// Every wire of `c` as `(from, to, port)`: each gate's fanins (port = argument position) and
/// each output's driver (port 0).
fn wires(c: &Circuit) -> Vec<(Node, Node, usize)> {
    let mut out = Vec::new();
    for (g, e) in c.gates().iter().enumerate() {
        for (p, &a) in e.args.iter().enumerate() {
            out.push((source(a), Node::Gate(g), p));
        }
    }
    for (j, (_, s)) in c.outputs().iter().enumerate() {
        out.push((source(*s), Node::Output(j), 0));
    }
    out
}

/// XML-escapes text for element content and attribute values (`'` as `&#39;`, which HTML
/// also reads); control characters XML cannot hold become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 cannot hold other control characters, not even as references.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The circuit in Graphviz DOT, left to right: inputs in the first rank, outputs in the last.
/// Node ids are `in0…`, `c0`/`c1`, `g0…` (gate order) and `out0…`; labels are the names and
/// operators.
pub fn to_dot(c: &Circuit) -> String {
    let names = c.names();
    let id = |n: Node| match n {
        Node::Input(i) => format!("in{i}"),
        Node::Const(b) => format!("c{}", u8::from(b)),
        Node::Gate(g) => format!("g{g}"),
        Node::Output(j) => format!("out{j}"),
    };
    let lay = layout(c);
    let mut s = String::from("digraph kiln {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n");
    for col in &lay.columns {
        for &n in col {
            let (label, shape) = match n {
                Node::Gate(g) => (op_label(c.gates()[g].op).to_string(), "box"),
                Node::Input(_) | Node::Output(_) => (node_name(c, &names, n), "ellipse"),
                Node::Const(_) => (node_name(c, &names, n), "plaintext"),
            };
            let _ = writeln!(s, "  {} [label=\"{}\", shape={shape}];", id(n), dot_escape(&label));
        }
    }
    for (from, to, _) in wires(c) {
        let _ = writeln!(s, "  {} -> {};", id(from), id(to));
    }
    let rank = |col: &[Node], which: &str| -> String {
        let ids: Vec<String> = col.iter().map(|&n| id(n)).collect();
        format!("  {{ rank={which}; {} }}\n", ids.join("; "))
    };
    if let Some(first) = lay.columns.first().filter(|c| !c.is_empty()) {
        s += &rank(first, "source");
    }
    if let Some(last) = lay.columns.last().filter(|c| !c.is_empty()) {
        s += &rank(last, "sink");
    }
    s.push_str("}\n");
    s
}

/// The circuit as a standalone SVG document, with default [`DiagramParams`].
pub fn to_svg(c: &Circuit) -> String {
    to_svg_with(c, &DiagramParams::default())
}

const COLUMN_GAP: f64 = 150.0;
const ROW_GAP: f64 = 44.0;
const MARGIN: f64 = 24.0;
const BOX_W: f64 = 64.0;
const BOX_H: f64 = 26.0;
const STYLE: &str = "text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#222}\
.wire{fill:none;stroke:#5b6b7f;stroke-width:1.2}\
.gate rect{fill:#fff7e6;stroke:#b7791f;stroke-width:1.2}\
.input rect,.output rect{fill:#e8f1fb;stroke:#2b6cb0;stroke-width:1.2}\
.const rect{fill:#f2f2f2;stroke:#888;stroke-width:1}\
.group rect{fill:#fff7e6;stroke:#b7791f}\
.band{fill:none;stroke:#5b6b7f;stroke-opacity:0.45}";

/// The circuit as a standalone SVG document: gate by gate up to `params.max_detailed_gates`
/// gates, the summary view above.
pub fn to_svg_with(c: &Circuit, params: &DiagramParams) -> String {
    if c.num_gates() > params.max_detailed_gates {
        summary_svg(c)
    } else {
        detailed_svg(c)
    }
}

fn detailed_svg(c: &Circuit) -> String {
    let names = c.names();
    let lay = layout(c);
    let tallest = lay.columns.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let width = 2.0 * MARGIN + (lay.columns.len().max(1) - 1) as f64 * COLUMN_GAP + BOX_W;
    let height = 2.0 * MARGIN + (tallest - 1) as f64 * ROW_GAP + BOX_H + 18.0;
    // Columns are centred vertically so short ones sit in the middle of the picture.
    let centre = |n: Node| -> (f64, f64) {
        let col = lay.column[&n];
        let len = lay.columns[col].len();
        let offset = (tallest - len) as f64 * ROW_GAP / 2.0;
        (
            MARGIN + col as f64 * COLUMN_GAP + BOX_W / 2.0,
            MARGIN + offset + lay.row[&n] as f64 * ROW_GAP + BOX_H / 2.0,
        )
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kiln-circuit\" data-view=\"detailed\" data-gates=\"{}\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n<style>{STYLE}</style>\n",
        c.num_gates()
    );
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"{:.1}\">{} inputs, {} gates, {} outputs</text>",
        height - 8.0,
        c.inputs().len(),
        c.num_gates(),
        c.outputs().len()
    );
    s.push_str("<g class=\"wires\">\n");
    for (from, to, port) in wires(c) {
        let (x1, y1) = centre(from);
        let (x2, y2) = centre(to);
        let (x1, x2) = (x1 + BOX_W / 2.0, x2 - BOX_W / 2.0);
        // Two-input gates take their first argument on the upper half of the box.
        let arity = match to {
            Node::Gate(g) => c.gates()[g].args.len(),
            _ => 1,
        };
        let y2 = if arity == 2 { y2 + if port == 0 { -6.0 } else { 6.0 } } else { y2 };
        let bend = (x2 - x1).abs() / 2.0;
        let _ = writeln!(
            s,
            "<path class=\"wire\" data-from=\"{}\" data-to=\"{}\" data-port=\"{port}\" d=\"M{x1:.1} {y1:.1} C{:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}\"/>",
            xml_escape(&node_name(c, &names, from)),
            xml_escape(&node_name(c, &names, to)),
            x1 + bend,
            x2 - bend
        );
    }
    s.push_str("</g>\n<g class=\"nodes\">\n");
    for col in &lay.columns {
        for &n in col {
            let (x, y) = centre(n);
            let (class, label, op) = match n {
                Node::Input(_) => ("input", node_name(c, &names, n), String::new()),
                Node::Output(_) => ("output", node_name(c, &names, n), String::new()),
                Node::Const(_) => ("const", node_name(c, &names, n), String::new()),
                Node::Gate(g) => {
                    let op = op_label(c.gates()[g].op);
                    ("gate", op.to_string(), format!(" data-op=\"{op}\""))
                }
            };
            let rx = if class == "gate" { 3.0 } else { 12.0 };
            let _ = writeln!(
                s,
                "<g class=\"{class}\" data-id=\"{}\"{op}><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"{rx}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
                xml_escape(&node_name(c, &names, n)),
                xml_escape(&node_name(c, &names, n)),
                x - BOX_W / 2.0,
                y - BOX_H / 2.0,
                y + 4.0,
                xml_escape(&shorten(&label, 9))
            );
        }
    }
    s.push_str("</g>\n</svg>\n");
    s
}

/// `s` cut to `max` characters with an ellipsis (the full name is in the node's title).
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// A group of the summary view: the gates of one level with one operator, or all inputs, or all
/// outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Inputs,
    Gates(usize, Op),
    Outputs,
}

/// Most columns of gate groups in the summary view: deeper circuits share a column among
/// consecutive levels, so a picture of a 100-level circuit stays as wide as a screen.
const SUMMARY_COLUMNS: usize = 12;

fn summary_svg(c: &Circuit) -> String {
    let level = levels(c);
    let levels_deep = level.iter().copied().max().unwrap_or(0);
    let depth = levels_deep.min(SUMMARY_COLUMNS);
    // Column (1-based) of a gate level, and the levels each column holds.
    let band = |l: usize| {
        if levels_deep <= SUMMARY_COLUMNS {
            l
        } else {
            1 + (l - 1) * SUMMARY_COLUMNS / levels_deep
        }
    };
    let band_levels = |b: usize| -> (usize, usize) {
        let lo = (1..=levels_deep).find(|&l| band(l) == b).unwrap_or(b);
        let hi = (1..=levels_deep).rev().find(|&l| band(l) == b).unwrap_or(b);
        (lo, hi)
    };
    let group_of = |n: Node| match n {
        Node::Input(_) | Node::Const(_) => Group::Inputs,
        Node::Gate(g) => Group::Gates(band(level[g]), c.gates()[g].op),
        Node::Output(_) => Group::Outputs,
    };
    let mut count: BTreeMap<Group, usize> = BTreeMap::new();
    count.insert(Group::Inputs, c.inputs().len());
    count.insert(Group::Outputs, c.outputs().len());
    for g in 0..c.num_gates() {
        *count.entry(group_of(Node::Gate(g))).or_default() += 1;
    }
    let mut bands: BTreeMap<(Group, Group), usize> = BTreeMap::new();
    for (from, to, _) in wires(c) {
        *bands.entry((group_of(from), group_of(to))).or_default() += 1;
    }
    let column_of = |g: Group| match g {
        Group::Inputs => 0,
        Group::Gates(l, _) => l,
        Group::Outputs => depth + 1,
    };
    let mut columns: Vec<Vec<Group>> = vec![Vec::new(); depth + 2];
    for &g in count.keys() {
        columns[column_of(g)].push(g);
    }
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let (box_w, box_h, gap_x, gap_y) = (96.0, 30.0, 150.0, 42.0);
    let width = 2.0 * MARGIN + (columns.len() - 1) as f64 * gap_x + box_w;
    let height = 2.0 * MARGIN + (tallest - 1) as f64 * gap_y + box_h + 18.0;
    let centre = |g: Group| -> (f64, f64) {
        let col = column_of(g);
        let r = columns[col].iter().position(|&x| x == g).unwrap_or(0);
        let offset = (tallest - columns[col].len()) as f64 * gap_y / 2.0;
        (
            MARGIN + col as f64 * gap_x + box_w / 2.0,
            MARGIN + offset + r as f64 * gap_y + box_h / 2.0,
        )
    };
    let name = |g: Group| match g {
        Group::Inputs => "inputs".to_string(),
        Group::Outputs => "outputs".to_string(),
        Group::Gates(b, op) => match band_levels(b) {
            (lo, hi) if lo == hi => format!("L{lo}:{}", op_label(op)),
            (lo, hi) => format!("L{lo}-{hi}:{}", op_label(op)),
        },
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kiln-circuit\" data-view=\"summary\" data-gates=\"{}\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n<style>{STYLE}</style>\n",
        c.num_gates()
    );
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"{:.1}\">summary: {} inputs, {} gates in {levels_deep} levels, {} outputs (each box counts the gates of its levels with one operator)</text>",
        height - 8.0,
        c.inputs().len(),
        c.num_gates(),
        c.outputs().len()
    );
    s.push_str("<g class=\"wires\">\n");
    for (&(from, to), &n) in &bands {
        let (x1, y1) = centre(from);
        let (x2, y2) = centre(to);
        let (x1, x2) = (x1 + box_w / 2.0, x2 - box_w / 2.0);
        let bend = (x2 - x1).abs() / 2.0;
        let _ = writeln!(
            s,
            "<path class=\"band\" data-from=\"{}\" data-to=\"{}\" data-count=\"{n}\" stroke-width=\"{:.1}\" d=\"M{x1:.1} {y1:.1} C{:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}\"/>",
            name(from),
            name(to),
            1.0 + (n as f64).ln(),
            x1 + bend,
            x2 - bend
        );
    }
    s.push_str("</g>\n<g class=\"nodes\">\n");
    for (&g, &n) in &count {
        let (x, y) = centre(g);
        let (class, label) = match g {
            Group::Inputs => ("input", format!("{n} inputs")),
            Group::Outputs => ("output", format!("{n} outputs")),
            Group::Gates(_, op) => ("group", format!("{} ×{n}", op_label(op))),
        };
        let _ = writeln!(
            s,
            "<g class=\"{class}\" data-id=\"{}\" data-count=\"{n}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{box_w}\" height=\"{box_h}\" rx=\"4\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text></g>",
            name(g),
            x - box_w / 2.0,
            y - box_h / 2.0,
            y + 4.0
        );
    }
    s.push_str("</g>\n</svg>\n");
    s
}
