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
