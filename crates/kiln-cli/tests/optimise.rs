//! `kiln optimise` and the resynthesis at the end of `kiln learn`.

mod common;

use common::{kiln, text};

#[test]
fn optimise_shrinks_a_redundant_full_adder_and_keeps_its_function() {
    let dir = std::env::temp_dir().join(format!("kiln-optimise-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("fa.txt");
    // The sum and carry of a full adder written with 8 gates, 6 once the double negation folds;
    // the minimum is 5.
    std::fs::write(
        &prog,
        "P = A XOR B\nS = P XOR C\nG = A AND B\nQ = A OR B\nH = Q AND C\nK = G OR H\nN = NOT K\nCout = NOT N\n",
    )
    .unwrap();
    let table = dir.join("fa.csv");
    let mut csv = String::from("A,B,C,S,Cout\n");
    for r in 0..8u32 {
        let (a, b, c) = (r >> 2 & 1, r >> 1 & 1, r & 1);
        csv.push_str(&format!("{a},{b},{c},{},{}\n", a ^ b ^ c, u32::from(a + b + c >= 2)));
    }
    std::fs::write(&table, csv).unwrap();
    let (p, t) = (prog.to_str().unwrap(), table.to_str().unwrap());
    let out = kiln(&["optimise", p, "--table", t, "--outputs", "S,Cout", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(doc["gates_before"], 6);
    assert_eq!(doc["gates_after"], 5);
    assert_eq!(doc["table_accuracy"], 1.0);
    // The printed program verifies against the table.
    let expr = doc["expression"].as_str().unwrap();
    let v = kiln(&["verify", t, "--outputs", "S,Cout", "--expr", expr]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stdout));

    // AIGER in, AIGER out: the AND count does not grow and eval agrees.
    let aig = dir.join("fa.aig");
    let w = kiln(&[
        "optimise",
        p,
        "--table",
        t,
        "--outputs",
        "S,Cout",
        "--emit",
        "aiger",
        "-o",
        aig.to_str().unwrap(),
    ]);
    assert_eq!(w.status.code(), Some(0), "{}", text(&w.stderr));
    let again = kiln(&["optimise", aig.to_str().unwrap(), "--json"]);
    let d2: serde_json::Value = serde_json::from_str(&text(&again.stdout)).unwrap();
    assert!(d2["and_nodes_after"].as_u64().unwrap() <= d2["and_nodes_before"].as_u64().unwrap());

    let bare = kiln(&["optimise", p]);
    assert_eq!(bare.status.code(), Some(2));
    assert_eq!(
        text(&bare.stderr),
        format!("error: {p}: a program in kiln's grammar does not name its inputs; give --table to name them\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
