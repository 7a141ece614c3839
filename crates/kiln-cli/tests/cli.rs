mod common;

use common::{kiln, text};

fn temp_csv(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("kiln-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// Splits off the `time:` line, checking its format, and returns the rest.
fn without_time(out: &str) -> String {
    let mut rest = Vec::new();
    for line in out.lines() {
        if let Some(t) = line.strip_prefix("time: ") {
            let secs = t.strip_suffix('s').expect("time ends with s");
            secs.parse::<f64>().expect("time is a number");
        } else {
            rest.push(line);
        }
    }
    rest.join("\n") + "\n"
}

#[test]
fn search_xor() {
    let o = kiln(&["search", "examples/tables/xor.csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        without_time(&text(&o.stdout)),
        "Y = X1 XOR X2\ngates: 1\nminimal: yes (no circuit with fewer gates exists over this basis)\n"
    );
}

#[test]
fn search_xor_restricted_basis_and_json() {
    let o = kiln(&["search", "examples/tables/xor.csv", "--basis", "AND,OR,NAND"]);
    // Either order of the two independent gates is the same circuit.
    let out = without_time(&text(&o.stdout));
    let swapped = out.replacen("Z1 = X1 NAND X2\nZ2 = X1 OR X2\n", "Z1 = X1 OR X2\nZ2 = X1 NAND X2\n", 1);
    assert_eq!(
        swapped,
        "Z1 = X1 OR X2\nZ2 = X1 NAND X2\nY = Z1 AND Z2\ngates: 3\nminimal: yes (no circuit with fewer gates exists over this basis)\n"
    );
    let o = kiln(&["search", "examples/tables/full_adder.csv", "--outputs", "S,Cout", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"], serde_json::json!(["A", "B", "Cin"]));
    assert_eq!(v["outputs"], serde_json::json!(["S", "Cout"]));
    assert_eq!(v["gates"], 5);
    assert_eq!(v["optimal"], true);
    assert_eq!(v["exact"], true);
    assert_eq!(v["program"]["gates"].as_array().unwrap().len(), 5);
    assert_eq!(v["program"]["gates"][0]["name"], "Z1");
    assert_eq!(v["program"]["gates"][0]["args"], serde_json::json!(["A", "B"]));
    // Outputs keep table order (a sorted map would put Cout first).
    assert!(text(&o.stdout).contains(r#""outputs":{"S":"Z"#), "{}", text(&o.stdout));
    // The expression field is a program that verifies.
    let e = v["expression"].as_str().unwrap();
    let o = kiln(&["verify", "examples/tables/full_adder.csv", "--outputs", "S,Cout", "--expr", e]);
    assert_eq!(text(&o.stdout), "ok: 8 rows match\n");
}

#[test]
fn search_gives_up_gracefully_at_the_gate_bound() {
    let o = kiln(&["search", "examples/tables/majority3.csv", "--max-gates", "2"]);
    assert_eq!(o.status.code(), Some(0));
    let out = without_time(&text(&o.stdout));
    assert!(
        out.ends_with("minimal: not proven (every circuit with fewer than 3 gates was ruled out)\n"),
        "{out}"
    );
}

#[test]
fn verify_lecture_example() {
    let o = kiln(&["verify", "examples/tables/xor.csv", "--expr", "Y = (X1 OR X2) OR (X1 NAND X2)"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stdout),
        "FAIL: 2 of 4 rows differ\nline 2: X1=0 X2=0 expected Y=0 got Y=1\nline 5: X1=1 X2=1 expected Y=0 got Y=1\n"
    );
    let o = kiln(&["verify", "examples/tables/xor.csv", "--expr", "Y = (X1 OR X2) AND (X1 NAND X2)"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "ok: 4 rows match\n");
}

#[test]
fn verify_multi_output_program_infers_outputs() {
    let e = "Z1 = A XOR B; S = Z1 XOR Cin; Cout = (A AND B) OR (Cin AND Z1)";
    let o = kiln(&["verify", "examples/tables/full_adder.csv", "--expr", e]);
    assert_eq!(text(&o.stdout), "ok: 8 rows match\n", "{}", text(&o.stderr));
    let o = kiln(&[
        "verify",
        "examples/tables/full_adder.csv",
        "--outputs",
        "Cout",
        "--expr",
        "Cout = A AND B",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stdout),
        "FAIL: 2 of 8 rows differ\nline 5: A=0 B=1 Cin=1 S=0 expected Cout=1 got Cout=0\nline 7: A=1 B=0 Cin=1 S=0 expected Cout=1 got Cout=0\n"
    );
}

#[test]
fn input_errors_exit_2_with_clear_messages() {
    let cases = [
        (
            "ragged.csv",
            "A,B,Y\n0,0,0\n0,1\n",
            "ragged.csv:3: expected 3 values (one per column), found 2",
        ),
        (
            "bad.csv",
            "A,B,Y\n0,0,0\n0,1,1\n1,0,maybe\n",
            "bad.csv:4: column 'Y': expected 0, 1, true or false, found 'maybe'",
        ),
        (
            "contra.csv",
            "A,B,Y\n0,0,0\n0,1,1\n0,0,1\n",
            "contra.csv: lines 2 and 4 have the same inputs but disagree on output 'Y'",
        ),
        (
            "dup.csv",
            "A,A,Y\n0,0,0\n",
            "dup.csv:1: duplicate column name 'A' (columns 1 and 2)",
        ),
        ("empty.csv", "A,B,Y\n", "empty.csv: table has no data rows"),
    ];
    for (name, body, msg) in cases {
        let path = temp_csv(name, body);
        for args in [vec!["search", path.as_str()], vec!["verify", path.as_str(), "--expr", "Y = A"]] {
            let o = kiln(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert_eq!(text(&o.stderr), format!("error: {path}{}\n", msg.strip_prefix(name).unwrap()));
            assert!(o.stdout.is_empty());
        }
    }
    let o = kiln(&["verify", "examples/tables/xor.csv", "--expr", "Y = X1 AND"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "error: --expr: line 1, column 11: expected an operand (a name, 0, 1, NOT or '('), found end of input\n"
    );
    let o = kiln(&["search", "examples/tables/xor.csv", "--outputs", "Q"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "error: examples/tables/xor.csv: unknown output column 'Q' (columns are: X1, X2, Y)\n"
    );
    let o = kiln(&["search", "no/such/file.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).starts_with("error: no/such/file.csv: cannot read file"));
    let o = kiln(&["search", "examples/tables/xor.csv", "--basis", "AND,FOO"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).starts_with("error: --basis: unknown gate 'FOO'"));
    let o = kiln(&["verify", "examples/tables/xor.csv"]);
    assert_eq!(o.status.code(), Some(2), "missing --expr is a usage error");
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_an_error() {
    use std::process::{Command, Stdio};
    // The pipe's reader is closed before kiln starts, so its first write fails with EPIPE:
    // status 141 (as if killed by SIGPIPE), nothing on stderr, no panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["search", "examples/tables/xor.csv"])
        .current_dir(common::repo())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");

    if std::path::Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["search", "examples/tables/xor.csv"])
            .current_dir(common::repo())
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            "error: writing to standard output: No space left on device (os error 28)\n"
        );
    }
}

#[test]
fn verify_reads_the_program_before_the_table() {
    // 21 inputs and 5 outputs: as "everything but the last column", 25 inputs would be refused;
    // the program names its outputs, so none need --outputs.
    let mut body = (1..=21)
        .map(|i| format!("X{i}"))
        .chain((1..=5).map(|j| format!("Y{j}")))
        .collect::<Vec<_>>()
        .join(",");
    body.push('\n');
    for r in 0u32..16 {
        let x: Vec<u32> = (0..21).map(|i| (r.wrapping_mul(2654435761) >> (i % 31)) & 1).collect();
        let y = [x[0] & x[1], x[2] | x[3], x[4] ^ x[5], x[6], 1 - x[7]];
        let cells: Vec<String> = x.iter().chain(&y).map(u32::to_string).collect();
        body += &(cells.join(",") + "\n");
    }
    let wide = temp_csv("wide21x5.csv", &body);
    let prog = "Y1 = X1 AND X2; Y2 = X3 OR X4; Y3 = X5 XOR X6; Y4 = X7; Y5 = NOT X8";
    let o = kiln(&["verify", &wide, "--expr", prog]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ok: 16 rows match\n");

    // The grammar's own messages, not a table error.
    let o = kiln(&["verify", &wide, "--expr", "A = X1 AND X2; A = X3; Y1 = A"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stderr), "error: --expr: line 1, column 16: 'A' is defined twice\n");
    let o = kiln(&["verify", "examples/tables/xor.csv", "--expr", "X1 = X2 AND X1; Y = X1"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "error: --expr: line 1, column 1: 'X1' is an input column and cannot be assigned\n"
    );
}

#[test]
fn show_draws_a_program_as_dot_and_svg() {
    let prog = temp_csv("xor_prog.txt", "Y = X1 XOR X2\n");
    let o = kiln(&["show", &prog, "--table", "examples/tables/xor.csv", "--format", "dot"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "digraph kiln {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n  in0 [label=\"X1\", shape=ellipse];\n  \
         in1 [label=\"X2\", shape=ellipse];\n  g0 [label=\"XOR\", shape=box];\n  out0 [label=\"Y\", shape=ellipse];\n  in0 -> g0;\n  \
         in1 -> g0;\n  g0 -> out0;\n  { rank=source; in0; in1 }\n  { rank=sink; out0 }\n}\n"
    );
    // learn --emit svg writes the same kind of picture of what it learned.
    let dir = std::env::temp_dir().join(format!("kiln-cli-{}", std::process::id()));
    let svg = dir.join("fa.svg");
    let o = kiln(&[
        "learn",
        "examples/tables/full_adder.csv",
        "--outputs",
        "S,Cout",
        "--emit",
        "svg",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let body = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().attribute("data-view"), Some("detailed"));
    let outputs: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("output"))
        .filter_map(|n| n.attribute("data-id"))
        .collect();
    assert_eq!(outputs, ["S", "Cout"]);
    // Never over an input file.
    let o = kiln(&["show", &prog, "--table", "examples/tables/xor.csv", "-o", &prog]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        format!("error: -o {prog}: that is an input file; refusing to overwrite it\n")
    );
}
