//! Numeric CSV for kiln-nn's loaders: any bytes load or are refused with a message naming the
//! reader; a loaded table is a 2-d f64 tensor whose last column splits off as labels or is refused.
#![no_main]
use kiln_core::DType;
use kiln_nn::data::parse_csv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    match parse_csv(body, flags & 1 == 1, "m.csv") {
        Ok(t) => {
            assert_eq!(t.values.rank(), 2);
            assert_eq!(t.values.dtype(), DType::F64);
            if let Err(e) = t.split_labels(-1, DType::F32) {
                assert!(e.to_string().starts_with("CsvTable::split_labels: "), "{e}");
            }
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("read_csv: m.csv: ") || m.starts_with("from_vec: "), "{m}");
        }
    }
});
