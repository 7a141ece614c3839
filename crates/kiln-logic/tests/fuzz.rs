//! Fuzzing of the text parsers without a file of their own: example tables (CSV) and the program
//! grammar. Mutated and random inputs must parse or be refused with a located message, never
//! panic. scripts/fuzz runs these with `KILN_FUZZ_CASES=1000000`.

use kiln_logic::{parse, SampleSet, Table};
use proptest::prelude::*;

fn fuzz_cases(default: u32) -> u32 {
    std::env::var("KILN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CSV: &str = "A,B,Cin,S,Cout\n0,0,0,0,0\n0,1,1,0,1\n1,1,1,1,1\n# comment\n1,0,0,1,0\n";
const PROGRAM: &str = "P = A XOR B\nS = P XOR Cin; G = A AND (B OR NOT Cin)\nCout = G IMPLIES P NAND 1\n";

fn mutate(base: &str, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for &(at, b) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            match b % 3 {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => {
                    bytes.remove(i);
                }
            }
        }
    }
    bytes.truncate(cut.max(1));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases(3000)))]

    #[test]
    fn mutated_tables_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0usize..200) {
        let bytes = mutate(CSV, &edits, cut);
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Table::from_csv_str("m.csv", &text, None) {
            prop_assert!(e.to_string().starts_with("m.csv"), "{}", e);
        }
        if let Err(e) = SampleSet::from_bytes("m.csv", &bytes, None) {
            prop_assert!(e.to_string().starts_with("m.csv"), "{}", e);
        }
    }

    #[test]
    fn mutated_programs_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in 0usize..200) {
        let bytes = mutate(PROGRAM, &edits, cut);
        let text = String::from_utf8_lossy(&bytes);
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let _ = parse(&text, &names(&["A", "B", "Cin"]), &names(&["S", "Cout"]));
    }

    #[test]
    fn random_token_soup_never_panics(words in proptest::collection::vec(prop_oneof![
        Just("A"), Just("B"), Just("("), Just(")"), Just("NOT"), Just("AND"), Just("XOR"), Just("IMPLIES"),
        Just("="), Just(";"), Just("\n"), Just("0"), Just("1"), Just("S"), Just("Z1"),
    ], 0..64)) {
        let text = words.join(" ");
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let _ = parse(&text, &names(&["A", "B"]), &names(&["S"]));
    }
}
