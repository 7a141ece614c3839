//! CSV example tables and CSV sample sets (plain or gzip): any bytes load or are refused with a
//! message naming the file.
#![no_main]
use kiln_logic::{SampleSet, Table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Table::from_csv_str("m.csv", &text, None) {
        assert!(e.to_string().starts_with("m.csv"), "{e}");
    }
    if let Err(e) = SampleSet::from_bytes("m.csv", data, None) {
        assert!(e.to_string().starts_with("m.csv"), "{e}");
    }
});
