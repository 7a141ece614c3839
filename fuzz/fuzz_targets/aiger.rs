//! AIGER (binary `aig` and ASCII `aag`): any bytes load or are refused, never panic; a loaded
//! graph of few inputs computes the same function after a binary and an ASCII round trip.
#![no_main]
mod common;
use common::truth_tables;
use kiln_logic::aiger;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = aiger::read("fuzz.aig", data) else { return };
    let Some(want) = truth_tables(&g) else { return };
    let binary = aiger::write_binary(&g, &[]).expect("a loaded graph writes");
    let again = aiger::read("again.aig", &binary).expect("what kiln writes reads back");
    assert_eq!(truth_tables(&again), Some(want.clone()), "binary round trip");
    let ascii = aiger::write_ascii(&g, &[]).expect("a loaded graph writes");
    let again = aiger::read("again.aag", ascii.as_bytes()).expect("what kiln writes reads back");
    assert_eq!(truth_tables(&again), Some(want), "ASCII round trip");
});
