#![allow(dead_code)]
use kiln_core::{DType, Tensor};
use serde_json::Value;

pub fn fixture(name: &str) -> Value {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

pub fn shape(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

pub fn data(v: &Value) -> Vec<f64> {
    v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect()
}

/// A `{"shape","data"}` JSON tensor in `dtype`.
pub fn tensor(v: &Value, dtype: DType) -> Tensor {
    let t = Tensor::from_vec(data(v), shape(v)).unwrap();
    t.to_dtype(dtype).unwrap()
}

pub fn assert_close(name: &str, got: &Tensor, want: &Value, tol: f64) {
    assert_eq!(got.dims(), shape(want).as_slice(), "{name}: shape");
    let g = got.to_vec_f64().unwrap();
    let w = data(want);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{name}: element {i}: got {a}, want {b}");
    }
}
