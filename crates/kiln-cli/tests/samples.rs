//! `kiln learn` on samples, `kiln eval` and `kiln bench-iwls`, on small generated PLA files. Every
//! AIGER file kiln writes is judged again by `kiln eval` and, where ABC is installed (CI installs
//! it; `KILN_REQUIRE_ABC=1` makes its absence a failure), by ABC's `&mltest`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{kiln, text};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-cli-samples-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A PLA of `rows` samples of the 10-input function "x > y" on two 5-bit numbers, drawn with a
/// seeded generator (64-row multiples, as ABC's &mltest requires).
fn comparator_pla(rows: usize, seed: u64) -> String {
    let mut s = format!(".i 10\n.o 1\n.p {rows}\n.type fr\n");
    let mut state = seed;
    for _ in 0..rows {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let bits = (state >> 33) as u32 & 0x3ff;
        let (x, y) = (bits & 31, bits >> 5);
        let cells: String = (0..10).map(|i| if bits >> i & 1 == 1 { '1' } else { '0' }).collect();
        s.push_str(&format!("{cells} {}\n", u8::from(x > y)));
    }
    s.push_str(".e\n");
    s
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_str(&text(out)).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// ABC's verdict on `aig` over `pla`: (AND nodes from &ps, correct samples from &mltest), or
/// `None` when ABC is not installed and not required.
fn abc_mltest(aig: &Path, pla: &Path) -> Option<(usize, usize)> {
    let run = Command::new("berkeley-abc")
        .arg("-c")
        .arg(format!("&r {}; &ps; &mltest {}", path(aig), path(pla)))
        .output();
    let out = match run {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var("KILN_REQUIRE_ABC").as_deref() != Ok("1"),
                "KILN_REQUIRE_ABC=1 but berkeley-abc cannot run: {e}"
            );
            eprintln!("skipping the ABC check: berkeley-abc is not installed ({e})");
            return None;
        }
    };
    let s = text(&out.stdout);
    let after = |key: &str| -> usize {
        let rest = &s[s.find(key).unwrap_or_else(|| panic!("no '{key}' in ABC output:\n{s}")) + key.len()..];
        let num: String = rest
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit())
            .collect();
        num.parse().unwrap()
    };
    Some((after("and ="), after("Correct =")))
}

#[test]
fn learn_writes_an_aig_that_eval_and_abc_score_the_same() {
    let dir = temp_dir("learn");
    let (train, valid) = (dir.join("cmp.train.pla"), dir.join("cmp.valid.pla"));
    std::fs::write(&train, comparator_pla(512, 1)).unwrap();
    std::fs::write(&valid, comparator_pla(256, 2)).unwrap();
    let aig = dir.join("cmp.aig");
    let out = kiln(&[
        "learn",
        path(&train),
        "--valid",
        path(&valid),
        "--timeout",
        "3",
        "--emit",
        "aiger",
        "-o",
        path(&aig),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = json(&out.stdout);
    let valid_acc = doc["valid_accuracy"].as_f64().unwrap();
    let ands = doc["and_nodes"].as_u64().unwrap();
    assert!(valid_acc >= 0.9, "{doc}");
    assert!(doc["train_accuracy"].as_f64().unwrap() >= valid_acc - 0.1);
    assert!(ands <= 5000);
    let method = doc["method"].as_str().unwrap();
    assert!(
        ["gate-network", "threshold-unit", "decision-tree", "forest", "symmetric", "ensemble"].contains(&method),
        "{method}"
    );
    assert!(doc["candidates"].as_array().unwrap().iter().any(|c| c["method"] == "gate-network"));

    // kiln eval reads the file back and scores it on the validation samples.
    let ev = kiln(&["eval", path(&aig), path(&valid), "--json"]);
    assert_eq!(ev.status.code(), Some(0), "{}", text(&ev.stderr));
    let e = json(&ev.stdout);
    assert_eq!(e["rows"], 256);
    assert_eq!(e["accuracy"].as_f64().unwrap(), valid_acc);
    assert_eq!(e["and_nodes"].as_u64().unwrap(), ands);
    let correct = e["correct"].as_u64().unwrap() as usize;
    if let Some((abc_ands, abc_correct)) = abc_mltest(&aig, &valid) {
        assert_eq!(abc_ands as u64, ands, "ABC's &ps count");
        assert_eq!(abc_correct, correct, "ABC's &mltest count");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_reads_every_program_format() {
    let dir = temp_dir("eval");
    let data = dir.join("d.pla");
    std::fs::write(&data, ".i 2\n.o 1\n.ilb a b\n.ob y\n00 0\n01 1\n10 1\n11 1\n.e\n").unwrap();
    let grammar = dir.join("p.txt");
    std::fs::write(&grammar, "y = a AND b\n").unwrap();
    let out = kiln(&["eval", path(&grammar), path(&data)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}: 2 of 4 right (50.00%) on 4 rows, 1 AND nodes\n", path(&data))
    );

    // The same program written by learn as BLIF and ASCII AIGER scores the same as the grammar.
    for (emit, file) in [("blif", "p.blif"), ("aag", "p.aag")] {
        let target = dir.join(file);
        let out = kiln(&["learn", path(&data), "--timeout", "1", "--emit", emit, "-o", path(&target)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let ev = json(&kiln(&["eval", path(&target), path(&data), "--json"]).stdout);
        assert_eq!(ev["accuracy"].as_f64().unwrap(), 1.0, "{emit}");
    }
    // The JSON of learn is itself a program.
    let out = kiln(&["learn", path(&data), "--timeout", "1", "--json"]);
    let learned = dir.join("p.json");
    std::fs::write(&learned, &out.stdout).unwrap();
    let ev = json(&kiln(&["eval", path(&learned), path(&data), "--json"]).stdout);
    assert_eq!(ev["correct"], 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_samples_and_options_exit_2_with_a_clear_error() {
    let dir = temp_dir("errors");
    let bad = dir.join("bad.pla");
    std::fs::write(&bad, ".i 2\n.o 1\n0x 1\n").unwrap();
    let good = dir.join("good.pla");
    std::fs::write(&good, ".i 2\n.o 1\n01 1\n10 0\n").unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["learn", path(&bad)],
            format!("error: {}:3: input 2: expected 0, 1 or -, found 'x'\n", path(&bad)),
        ),
        (
            vec!["eval", path(&good), path(&bad)],
            format!("error: {}:3: input 2: expected 0, 1 or -, found 'x'\n", path(&bad)),
        ),
        (
            vec!["learn", path(&good), "--emit", "aiger"],
            "error: --emit aiger/aag: give the file to write with -o FILE\n".into(),
        ),
        (
            vec!["learn", path(&good), "-o", "x.aig"],
            "error: -o: say what to write with --emit (aiger, aag, blif, rust, c, verilog, dot or svg)\n".into(),
        ),
        (
            vec!["learn", path(&good), "--max-and-nodes", "0"],
            "error: --max-and-nodes: expected at least 1\n".into(),
        ),
        (
            vec!["learn", path(&good), "--plot", path(&good)],
            format!("error: --plot {}: that is an input file; refusing to overwrite it\n", path(&good)),
        ),
        (
            vec!["learn", path(&good), "--emit", "aiger", "-o", "x.aag"],
            "error: -o x.aag: --emit aiger writes binary .aig files; name it *.aig\n".into(),
        ),
    ];
    for (args, want) in cases {
        let out = kiln(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stdout));
        assert_eq!(text(&out.stderr), want, "{args:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_iwls_runs_a_folder_and_reports_per_function_and_per_category() {
    let dir = temp_dir("bench");
    for (name, seed) in [("ex00", 3), ("ex01", 4), ("ex10", 5)] {
        std::fs::write(dir.join(format!("{name}.train.pla")), comparator_pla(256, seed)).unwrap();
        std::fs::write(dir.join(format!("{name}.valid.pla")), comparator_pla(128, seed + 10)).unwrap();
    }
    std::fs::write(dir.join("ex10.test.pla"), comparator_pla(128, 99)).unwrap();
    let aigs = dir.join("aig");
    let md = dir.join("r.md");
    let out = kiln(&[
        "bench-iwls",
        path(&dir),
        "--only",
        "ex00,ex10",
        "--timeout",
        "1",
        "--aig-dir",
        path(&aigs),
        "--out",
        path(&md),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("name   inputs   valid%    test%   ANDs"), "{s}");
    assert!(lines[1].starts_with("ex00       10 "), "{s}");
    assert!(lines[2].starts_with("ex10       10 "), "{s}");
    // Only ex10 has a test file.
    assert_eq!(lines[1].split_whitespace().nth(3), Some("-"));
    assert_ne!(lines[2].split_whitespace().nth(3), Some("-"));
    assert!(lines.iter().any(|l| l.starts_with("ex00-ex09: valid ")), "{s}");
    assert!(lines.iter().any(|l| l.starts_with("ex10-ex19: valid ")), "{s}");
    assert!(lines.last().unwrap().starts_with("all: valid "), "{s}");
    assert!(aigs.join("ex00.aig").is_file() && aigs.join("ex10.aig").is_file() && !aigs.join("ex01.aig").exists());
    assert!(std::fs::read_to_string(&md).unwrap().contains("| ex10 | 10 |"));
    // The row's validation figure is the written file's, as kiln eval computes it.
    let ev = json(&kiln(&["eval", path(&aigs.join("ex00.aig")), path(&dir.join("ex00.valid.pla")), "--json"]).stdout);
    let shown: f64 = lines[1].split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!((ev["accuracy"].as_f64().unwrap() * 100.0 - shown).abs() < 0.006, "{s} {ev}");

    let out = kiln(&["bench-iwls", path(&dir), "--only", "ex99"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("error: --only: no ex99.train.pla[.gz] in {}\n", path(&dir))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A timeout too large for the clock means "no limit", not a panic; learning from samples still
/// ends by early stopping.
#[test]
fn huge_timeouts_are_no_limit() {
    let dir = temp_dir("timeouts");
    let pla = dir.join("t.pla");
    std::fs::write(&pla, ".i 3\n.o 1\n000 0\n011 1\n101 1\n111 0\n").unwrap();
    let csv = dir.join("t.csv");
    std::fs::write(&csv, "a,b,Y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n").unwrap();
    for args in [
        vec!["search", path(&csv), "--timeout", "1e19"],
        vec!["learn", path(&csv), "--timeout", "1e19"],
        vec!["learn", path(&pla), "--timeout", "1e19"],
    ] {
        let out = kiln(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
