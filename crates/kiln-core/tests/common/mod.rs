//! Decoding the PyTorch fixtures written by `scripts/gen_core_fixtures.py`: tensors are
//! `{"shape": [...], "data": [...]}`, and non-finite floats are the strings "nan", "inf", "-inf".
// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use kiln_core::{DType, Tensor};
use serde_json::Value;

pub fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            o => panic!("unknown float {o}"),
        },
        v => v.as_f64().unwrap(),
    }
}

pub fn shape(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

pub fn floats(v: &Value) -> Vec<f64> {
    v["data"].as_array().unwrap().iter().map(num).collect()
}

pub fn ints(v: &Value) -> Vec<i64> {
    v["data"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

pub fn tensor_of(v: &Value, dtype: DType) -> Tensor {
    Tensor::from_vec(floats(v), shape(v)).unwrap().to_dtype(dtype).unwrap()
}

pub fn index_of(v: &Value) -> Tensor {
    Tensor::from_vec(ints(v), shape(v)).unwrap()
}

pub fn mask_of(v: &Value) -> Tensor {
    let data: Vec<u8> = ints(v).into_iter().map(|x| x as u8).collect();
    Tensor::from_vec(data, shape(v)).unwrap()
}

/// The bits of every element, widened to f64 (exact for every float dtype): for asserting that
/// two computations give the same results bit for bit, signed zeros and NaNs included.
pub fn f64_bits(t: &Tensor) -> Vec<u64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}
