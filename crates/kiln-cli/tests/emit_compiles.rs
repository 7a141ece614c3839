//! Emitted Rust, C and Verilog compile, whatever the column names: keywords of any of the three
//! languages and names starting with '_' are escaped. The compilers are rustc (the toolchain's),
//! cc, and Icarus Verilog (`iverilog`, installed by scripts/test; `KILN_REQUIRE_IVERILOG=1` makes
//! its absence a failure).

mod common;

use std::process::Command;

use common::{kiln, text};

fn compile(tool: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(tool).args(args).output() {
        Ok(o) => Some(o),
        Err(e) if tool == "iverilog" && std::env::var("KILN_REQUIRE_IVERILOG").as_deref() != Ok("1") => {
            eprintln!("skipping the Verilog compile: iverilog cannot run ({e})");
            None
        }
        Err(e) => panic!("{tool} cannot run: {e}"),
    }
}

#[test]
fn code_for_keyword_column_names_compiles() {
    let dir = std::env::temp_dir().join(format!("kiln-emit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("names.csv");
    // XOR-ish function of columns named after keywords of Rust, C and Verilog.
    let mut csv = String::from("_,typedef,always,initial,integer,table\n");
    for r in 0..32u32 {
        let bits: Vec<u32> = (0..5).map(|i| r >> i & 1).collect();
        let y = (bits[0] ^ bits[1]) | (bits[2] & bits[3] & !bits[4] & 1);
        csv.push_str(&format!("{},{},{},{},{},{}\n", bits[0], bits[1], bits[2], bits[3], bits[4], y & 1));
    }
    std::fs::write(&table, csv).unwrap();
    for (lang, file) in [("rust", "f.rs"), ("c", "f.c"), ("verilog", "f.v")] {
        let out_path = dir.join(file);
        let out = kiln(&[
            "learn",
            table.to_str().unwrap(),
            "--timeout",
            "20",
            "--emit",
            lang,
            "-o",
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{lang}: {}", text(&out.stderr));
        let p = out_path.to_str().unwrap();
        let obj = dir.join(format!("{file}.out"));
        let o = obj.to_str().unwrap();
        let result = match lang {
            "rust" => compile("rustc", &["--crate-type", "lib", "--edition", "2021", "-D", "warnings", "-o", o, p]),
            "c" => compile("cc", &["-std=c11", "-Wall", "-Werror", "-c", "-o", o, p]),
            _ => compile("iverilog", &["-o", o, p]),
        };
        if let Some(r) = result {
            assert!(
                r.status.success(),
                "{lang} does not compile:\n{}\n{}",
                std::fs::read_to_string(p).unwrap(),
                text(&r.stderr)
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
