//! safetensors checkpoints: any bytes load or are refused with a message naming the reader; a
//! loaded tensor holds as many values as its shape says.
#![no_main]
use kiln_core::DType;
use kiln_nn::serialize::from_safetensors_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match from_safetensors_bytes(data, "m.safetensors") {
        Ok((tensors, _)) => {
            for (name, t) in tensors {
                let n = t.elem_count();
                // A huge shape that loaded must really hold its values: converting it reads them all.
                if n <= 1 << 20 {
                    assert_eq!(t.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap().len(), n, "{name}");
                }
            }
        }
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.starts_with("load_safetensors: m.safetensors: ") || m.starts_with("from_vec: ") || m.starts_with("from_le_bytes: "),
                "{m}"
            );
        }
    }
});
