//! The program grammar: any text parses or is refused, never panics; a parsed program prints to
//! text that parses back to a program computing the same outputs on every row.
#![no_main]
use kiln_logic::{parse, print};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let inputs: Vec<String> = ["A", "B", "Cin"].iter().map(|s| s.to_string()).collect();
    let outputs: Vec<String> = ["S", "Cout"].iter().map(|s| s.to_string()).collect();
    let Ok(c) = parse(&text, &inputs, &outputs) else { return };
    let printed = print(&c);
    let again = parse(&printed, &inputs, &outputs).expect("printed programs parse");
    for row in 0..8u32 {
        let bits: Vec<bool> = (0..3).map(|i| row >> i & 1 == 1).collect();
        assert_eq!(c.eval_row(&bits), again.eval_row(&bits), "row {row} after printing:\n{printed}");
    }
});
