//! Code generation: a circuit as a Rust function, a C function or a Verilog
//! module. Column names are turned into valid, distinct identifiers
//! (lower-case for Rust and C), so any table header works.

use std::collections::HashSet;

use crate::circuit::{Circuit, Op, Signal};

/// Words no emitted identifier may be: the keywords of Rust (2024), C (C23) and Verilog
/// (IEEE 1364-2005, plus SystemVerilog's type names), in one list because one circuit is emitted
/// in all three. Identifiers are compared after lower-casing for Rust and C; Verilog keywords are
/// lower case, so upper-case column names never collide there.
const RESERVED: &[&str] = &[
    "abstract",
    "alignas",
    "alignof",
    "always",
    "and",
    "as",
    "assign",
    "async",
    "auto",
    "automatic",
    "await",
    "become",
    "begin",
    "bit",
    "bool",
    "box",
    "break",
    "buf",
    "bufif0",
    "bufif1",
    "byte",
    "case",
    "casex",
    "casez",
    "cell",
    "char",
    "cmos",
    "config",
    "const",
    "constexpr",
    "continue",
    "crate",
    "deassign",
    "default",
    "defparam",
    "design",
    "disable",
    "do",
    "double",
    "dyn",
    "edge",
    "else",
    "end",
    "endcase",
    "endconfig",
    "endfunction",
    "endgenerate",
    "endmodule",
    "endprimitive",
    "endspecify",
    "endtable",
    "endtask",
    "enum",
    "event",
    "extern",
    "false",
    "final",
    "float",
    "fn",
    "for",
    "force",
    "forever",
    "fork",
    "function",
    "gen",
    "generate",
    "genvar",
    "goto",
    "highz0",
    "highz1",
    "if",
    "ifnone",
    "impl",
    "in",
    "incdir",
    "include",
    "initial",
    "inline",
    "inout",
    "input",
    "instance",
    "int",
    "integer",
    "join",
    "large",
    "let",
    "liblist",
    "library",
    "localparam",
    "logic",
    "long",
    "longint",
    "loop",
    "macro",
    "macro_rules",
    "macromodule",
    "main",
    "match",
    "medium",
    "mod",
    "module",
    "move",
    "mut",
    "nand",
    "negedge",
    "nmos",
    "nor",
    "noshowcancelled",
    "not",
    "notif0",
    "notif1",
    "nullptr",
    "or",
    "output",
    "override",
    "parameter",
    "pmos",
    "posedge",
    "primitive",
    "priv",
    "pub",
    "pull0",
    "pull1",
    "pulldown",
    "pullup",
    "pulsestyle_ondetect",
    "pulsestyle_onevent",
    "rcmos",
    "real",
    "realtime",
    "ref",
    "reg",
    "register",
    "release",
    "repeat",
    "restrict",
    "return",
    "rnmos",
    "rpmos",
    "rtran",
    "rtranif0",
    "rtranif1",
    "scalared",
    "self",
    "short",
    "shortint",
    "showcancelled",
    "signed",
    "sizeof",
    "small",
    "specify",
    "specparam",
    "static",
    "static_assert",
    "string",
    "strong0",
    "strong1",
    "struct",
    "super",
    "supply0",
    "supply1",
    "switch",
    "table",
    "task",
    "thread_local",
    "time",
    "trait",
    "tran",
    "tranif0",
    "tranif1",
    "tri",
    "tri0",
    "tri1",
    "triand",
    "trior",
    "trireg",
    "true",
    "try",
    "type",
    "typedef",
    "typeof",
    "typeof_unqual",
    "union",
    "unsafe",
    "unsigned",
    "unsized",
    "use",
    "uwire",
    "vectored",
    "virtual",
    "void",
    "volatile",
    "wait",
    "wand",
    "weak0",
    "weak1",
    "where",
    "while",
    "wire",
    "wor",
    "xnor",
    "xor",
    "yield",
];

/// Assigns every input, gate and output a distinct identifier.
struct Names {
    inputs: Vec<String>,
    gates: Vec<String>,
    outputs: Vec<String>,
}

fn ident(raw: &str, lower: bool, used: &mut HashSet<String>) -> String {
    let mut s: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if lower {
        s = s.to_ascii_lowercase();
    }
    // A leading '_' is reserved in C (`_Bool`, `__x`) and `_` alone is no name in Rust.
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit() || c == '_') || RESERVED.contains(&s.as_str()) {
        s = format!("v_{s}");
    }
    let mut out = s.clone();
    let mut k = 2;
    while !used.insert(out.clone()) {
        out = format!("{s}_{k}");
        k += 1;
    }
    out
}

fn names(c: &Circuit, lower: bool) -> Names {
    let mut used = HashSet::new();
    let inputs = c.inputs().iter().map(|n| ident(n, lower, &mut used)).collect();
    let outputs = c.outputs().iter().map(|(n, _)| ident(n, lower, &mut used)).collect();
    let gates = (0..c.num_gates())
        .map(|i| ident(&format!("g{}", i + 1), lower, &mut used))
        .collect();
    Names { inputs, gates, outputs }
}

/// Renders one gate as an expression over argument strings with `&|^!`
/// (shared by Rust, C — on `bool` — and Verilog — on 1-bit wires — which
/// all agree on these operators).
fn gate_expr(op: Op, a: &str, b: &str, not: &str) -> String {
    match op {
        Op::And => format!("{a} & {b}"),
        Op::Or => format!("{a} | {b}"),
        Op::Xor => format!("{a} ^ {b}"),
        Op::Nand => format!("{not}({a} & {b})"),
        Op::Nor => format!("{not}({a} | {b})"),
        Op::Xnor => format!("{not}({a} ^ {b})"),
        Op::Implies => format!("{not}{a} | {b}"),
        Op::Nimplies => format!("{a} & {not}{b}"),
        Op::Not => format!("{not}{a}"),
        Op::Buf => a.to_string(),
        Op::Const0 | Op::Const1 => String::new(),
    }
}

fn signal(n: &Names, s: Signal, f: &str, t: &str) -> String {
    match s {
        Signal::Const(false) => f.to_string(),
        Signal::Const(true) => t.to_string(),
        Signal::Input(i) => n.inputs[i].clone(),
        Signal::Gate(g) => n.gates[g].clone(),
    }
}

fn body_lines(c: &Circuit, n: &Names, not: &str, f: &str, t: &str) -> Vec<(String, String)> {
    c.gates()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let a = g.args.first().map(|&s| signal(n, s, f, t)).unwrap_or_default();
            let b = g.args.get(1).map(|&s| signal(n, s, f, t)).unwrap_or_default();
            let e = match g.op {
                Op::Const0 => f.to_string(),
                Op::Const1 => t.to_string(),
                op => gate_expr(op, &a, &b, not),
            };
            (n.gates[i].clone(), e)
        })
        .collect()
}

/// A Rust function `pub fn name(x1: bool, …) -> bool` for one output, or
/// returning a tuple `(bool, …)` in output order for several.
pub fn to_rust(c: &Circuit, name: &str) -> String {
    let n = names(c, true);
    let fname = ident(name, true, &mut HashSet::new());
    let params: Vec<String> = n.inputs.iter().map(|p| format!("{p}: bool")).collect();
    let ret = if c.outputs().len() == 1 {
        "bool".to_string()
    } else {
        format!("({})", vec!["bool"; c.outputs().len()].join(", "))
    };
    let mut s = format!(
        "/// Generated by kiln from a {}-gate circuit.\n#[allow(unused_parens, non_snake_case, clippy::all)]\npub fn {fname}({}) -> {ret} {{\n",
        c.num_gates(),
        params.join(", ")
    );
    for (g, e) in body_lines(c, &n, "!", "false", "true") {
        s.push_str(&format!("    let {g} = {e};\n"));
    }
    let outs: Vec<String> = c.outputs().iter().map(|(_, sig)| signal(&n, *sig, "false", "true")).collect();
    if outs.len() == 1 {
        s.push_str(&format!("    {}\n}}\n", outs[0]));
    } else {
        s.push_str(&format!("    ({})\n}}\n", outs.join(", ")));
    }
    s
}

/// A C99 function `void name(bool x1, …, bool *y, …)` writing each output
/// through a pointer (needs `<stdbool.h>`, which the text includes).
pub fn to_c(c: &Circuit, name: &str) -> String {
    let n = names(c, true);
    let fname = ident(name, true, &mut HashSet::new());
    let mut params: Vec<String> = n.inputs.iter().map(|p| format!("bool {p}")).collect();
    params.extend(n.outputs.iter().map(|o| format!("bool *{o}")));
    let mut s = format!(
        "#include <stdbool.h>\n\n/* Generated by kiln from a {}-gate circuit. */\nvoid {fname}({}) {{\n",
        c.num_gates(),
        params.join(", ")
    );
    for (g, e) in body_lines(c, &n, "!", "false", "true") {
        s.push_str(&format!("    bool {g} = {e};\n"));
    }
    for (k, (_, sig)) in c.outputs().iter().enumerate() {
        s.push_str(&format!("    *{} = {};\n", n.outputs[k], signal(&n, *sig, "false", "true")));
    }
    s.push_str("}\n");
    s
}

/// A Verilog module with one 1-bit port per input and output and one wire
/// per gate.
pub fn to_verilog(c: &Circuit, name: &str) -> String {
    let n = names(c, false);
    let mname = ident(name, false, &mut HashSet::new());
    let mut ports: Vec<String> = n.inputs.iter().map(|p| format!("input wire {p}")).collect();
    ports.extend(n.outputs.iter().map(|o| format!("output wire {o}")));
    let mut s = format!(
        "// Generated by kiln from a {}-gate circuit.\nmodule {mname}({});\n",
        c.num_gates(),
        ports.join(", ")
    );
    for (g, e) in body_lines(c, &n, "~", "1'b0", "1'b1") {
        s.push_str(&format!("  wire {g} = {e};\n"));
    }
    for (k, (_, sig)) in c.outputs().iter().enumerate() {
        s.push_str(&format!("  assign {} = {};\n", n.outputs[k], signal(&n, *sig, "1'b0", "1'b1")));
    }
    s.push_str("endmodule\n");
    s
}
