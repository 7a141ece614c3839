//! `kiln search --engine`: the choice of exact engine and the `engine`
//! field of the JSON output.

mod common;

use common::{kiln, text};

/// Runs `kiln search` with `extra` arguments and `--json`; returns the document.
fn search_json(table: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["search", table, "--json"];
    args.extend_from_slice(extra);
    let o = kiln(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn each_engine_proves_the_full_adder_and_says_so() {
    for (flag, name) in [("sat", "sat"), ("enum", "enumeration"), ("SAT", "sat")] {
        let v = search_json("examples/tables/full_adder.csv", &["--outputs", "S,Cout", "--engine", flag]);
        assert_eq!(v["engine"], name, "--engine {flag}");
        assert_eq!(v["gates"], 5, "--engine {flag}");
        assert_eq!(v["optimal"], true, "--engine {flag}");
        assert_eq!(v["lower_bound"], 5, "--engine {flag}");
        assert_eq!(v["exact"], true, "--engine {flag}");
    }
}

#[test]
fn auto_is_the_default_and_settles_small_tables_by_enumeration() {
    let v = search_json("examples/tables/parity4.csv", &[]);
    assert_eq!((v["engine"].as_str(), v["gates"].as_u64()), (Some("enumeration"), Some(3)));
    let v = search_json("examples/tables/parity4.csv", &["--engine", "auto"]);
    assert_eq!(v["engine"], "enumeration");
}

#[test]
fn sat_respects_a_restricted_basis() {
    let v = search_json("examples/tables/xor.csv", &["--basis", "NAND", "--engine", "sat"]);
    assert_eq!((v["engine"].as_str(), v["gates"].as_u64()), (Some("sat"), Some(4)));
    let ops: Vec<&str> = v["program"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["NAND"; 4]);
}

#[test]
fn unknown_engine_is_a_usage_error() {
    let o = kiln(&["search", "examples/tables/xor.csv", "--engine", "fast"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stderr), "error: --engine: unknown engine 'fast' (use auto, sat or enum)\n");
    assert!(o.stdout.is_empty());
}

#[test]
fn an_unfinished_proof_reports_how_far_it_got() {
    // Majority of 5 needs 10 gates; a 1-second search cannot refute 9, but it rules out the sizes
    // below its built-in lower bound at once, so the bound is at least 4 (5 inputs, all read).
    let mut csv = String::from("A,B,C,D,E,Y\n");
    for r in 0u32..32 {
        let bits: Vec<String> = (0..5).map(|i| (r >> (4 - i) & 1).to_string()).collect();
        csv += &format!("{},{}\n", bits.join(","), u32::from(r.count_ones() >= 3));
    }
    let path = std::env::temp_dir().join(format!("kiln-majority5-{}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let v = search_json(path.to_str().unwrap(), &["--timeout", "1", "--engine", "sat"]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(v["optimal"], false);
    let lb = v["lower_bound"].as_u64().unwrap();
    assert!((4..=9).contains(&lb), "{v}");
    assert!(v["gates"].as_u64().unwrap() >= 10, "{v}");
}
