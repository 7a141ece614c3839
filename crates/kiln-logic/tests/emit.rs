use std::path::PathBuf;
use std::process::Command;

use kiln_logic::{emit, library, search, Circuit, Table};

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-emit-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Expected output lines: one per input row `r` (X1 most significant), the
/// outputs as 0/1 digits.
fn expected(t: &Table) -> String {
    let n = t.num_inputs();
    let mut s = String::new();
    for r in 0..1u64 << n {
        let inputs = (0..n).fold(0u64, |acc, i| acc | ((r >> (n - 1 - i) & 1) << i));
        let row = t.rows().iter().find(|row| row.inputs == inputs).unwrap();
        for j in 0..t.num_outputs() {
            s.push_str(&(row.outputs >> j & 1).to_string());
        }
        s.push('\n');
    }
    s
}

fn circuits() -> Vec<(&'static str, Table, Circuit)> {
    let mut v = Vec::new();
    for (name, t) in [
        ("full_adder", library::full_adder()),
        ("mux2", library::mux2()),
        ("parity4", library::parity(4)),
    ] {
        let c = search(&t, &Default::default()).unwrap().circuit;
        v.push((name, t, c));
    }
    // Constants, NOT and every op, with awkward column names.
    let t = Table::from_fn(&["in", "2x"], &["fn", "k", "z"], |v| vec![v[0] || !v[1], true, v[0] && !v[1]]);
    let c = kiln_logic::grammar::parse(
        "fn = NOT (X IMPLIES in); X = 2x; k = 1; z = in NIMPLIES X",
        t.input_names(),
        t.output_names(),
    );
    assert!(c.is_err(), "2x is not a grammar name");
    let mut c = Circuit::for_table(&t);
    use kiln_logic::{Op, Signal};
    let g = c.gate(Op::Implies, &[Signal::Input(1), Signal::Input(0)]).unwrap();
    c.set_output("fn", g).unwrap();
    c.set_output("k", Signal::Const(true)).unwrap();
    let z = c.gate(Op::Nimplies, &[Signal::Input(0), Signal::Input(1)]).unwrap();
    c.set_output("z", z).unwrap();
    assert!(kiln_logic::verify(&c, &t).unwrap().ok());
    v.push(("odd", t, c));
    v
}

#[test]
fn emitted_rust_compiles_and_matches_the_table() {
    if !tool("rustc") {
        println!("note: rustc not on PATH, skipping emitted-Rust check");
        return;
    }
    let dir = tmpdir("rs");
    for (name, t, c) in circuits() {
        let n = t.num_inputs();
        let m = t.num_outputs();
        let args: Vec<String> = (0..n).map(|i| format!("r >> {} & 1 == 1", n - 1 - i)).collect();
        let prints = if m == 1 {
            "print!(\"{}\", out as u8);".to_string()
        } else {
            (0..m)
                .map(|j| format!("print!(\"{{}}\", out.{j} as u8);"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let src = format!(
            "{}\nfn main() {{ for r in 0u32..{} {{ let out = {name}({}); {prints} println!(); }} }}\n",
            emit::to_rust(&c, name),
            1u32 << n,
            args.join(", ")
        );
        let file = dir.join(format!("{name}.rs"));
        std::fs::write(&file, &src).unwrap();
        let exe = dir.join(name);
        let st = Command::new("rustc")
            .arg("--edition=2021")
            .arg("-o")
            .arg(&exe)
            .arg(&file)
            .status()
            .unwrap();
        assert!(st.success(), "rustc failed on:\n{src}");
        let out = Command::new(&exe).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected(&t), "{name}:\n{src}");
    }
}

#[test]
fn emitted_c_compiles_and_matches_the_table() {
    if !tool("cc") {
        println!("note: cc not on PATH, skipping emitted-C check");
        return;
    }
    let dir = tmpdir("c");
    for (name, t, c) in circuits() {
        let n = t.num_inputs();
        let m = t.num_outputs();
        let mut args: Vec<String> = (0..n).map(|i| format!("(r >> {}) & 1", n - 1 - i)).collect();
        args.extend((0..m).map(|j| format!("&o[{j}]")));
        let src = format!(
            "#include <stdio.h>\n{}\nint main(void) {{ for (unsigned r = 0; r < {}u; r++) {{ bool o[{m}]; {name}({}); for (int j = 0; j < {m}; j++) printf(\"%d\", o[j] ? 1 : 0); printf(\"\\n\"); }} return 0; }}\n",
            emit::to_c(&c, name),
            1u32 << n,
            args.join(", ")
        );
        let file = dir.join(format!("{name}.c"));
        std::fs::write(&file, &src).unwrap();
        let exe = dir.join(format!("{name}_c"));
        let st = Command::new("cc")
            .arg("-std=c99")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-o")
            .arg(&exe)
            .arg(&file)
            .status()
            .unwrap();
        assert!(st.success(), "cc failed on:\n{src}");
        let out = Command::new(&exe).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected(&t), "{name}:\n{src}");
    }
}

#[test]
fn verilog_module_text() {
    let t = library::xor();
    let c = kiln_logic::grammar::parse("Y = NOT (X1 XNOR X2)", t.input_names(), t.output_names()).unwrap();
    assert_eq!(
        emit::to_verilog(&c, "xor2"),
        "// Generated by kiln from a 2-gate circuit.\nmodule xor2(input wire X1, input wire X2, output wire Y);\n  wire g1 = ~(X1 ^ X2);\n  wire g2 = ~g1;\n  assign Y = g2;\nendmodule\n"
    );
}
