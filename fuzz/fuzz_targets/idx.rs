//! IDX files (MNIST's format): any bytes load or are refused with a message naming the reader; a
//! loaded file's header, sizes and values account for every byte.
#![no_main]
use kiln_nn::data::parse_idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_idx(data, "m.idx") {
        Ok(t) => {
            let esize = match data[2] {
                0x08 | 0x09 => 1,
                0x0B => 2,
                0x0C | 0x0D => 4,
                _ => 8,
            };
            assert_eq!(4 + 4 * t.rank() + esize * t.elem_count(), data.len());
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("read_idx: m.idx: ") || m.starts_with("from_vec: "), "{m}");
        }
    }
});
