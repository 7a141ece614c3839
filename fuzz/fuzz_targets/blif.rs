//! BLIF: any text loads or is refused, never panics; a loaded network of few inputs computes the
//! same function after kiln writes it and reads it back.
#![no_main]
mod common;
use common::truth_tables;
use kiln_logic::blif;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(g) = blif::read("fuzz.blif", &text) else { return };
    // Writing may refuse a name BLIF cannot carry; what it writes must read back unchanged.
    let Ok(written) = blif::write(&g, "m") else { return };
    let again = blif::read("again.blif", &written).expect("what kiln writes reads back");
    if let Some(want) = truth_tables(&g) {
        assert_eq!(truth_tables(&again), Some(want), "BLIF round trip");
    }
});
