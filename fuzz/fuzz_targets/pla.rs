//! Espresso PLA sample files: any bytes load or are refused with a message naming the file.
#![no_main]
use kiln_logic::pla::read_pla;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = read_pla("m.pla", data) {
        assert!(e.to_string().starts_with("m.pla"), "{e}");
    }
});
