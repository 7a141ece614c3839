#![allow(dead_code)]
use kiln_core::{DType, Rng, Tensor};
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

/// Largest `|got - want| / (1 + |want|)` over a fixture tensor (whose shape must match).
pub fn rel_err(got: &Tensor, want: &Value) -> f64 {
    assert_eq!(got.dims(), shape(want).as_slice());
    let g = got.to_vec_f64().unwrap();
    g.iter()
        .zip(data(want))
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max)
}

/// Asserts every `(what, relative error)` is at most `tol`; returns the largest, for the
/// "largest relative error vs torch" line each fixture test prints.
pub fn assert_errs_within(errs: Vec<(String, f64)>, tol: f64) -> f64 {
    let mut worst = 0.0f64;
    for (what, e) in errs {
        assert!(e <= tol, "{what}: relative error {e:e}");
        worst = worst.max(e);
    }
    worst
}

/// Seeded f64 normal tensors for gradcheck inputs: `Normals::new(seed, 0.0, 1.0).draw(&[2, 3])`.
pub struct Normals {
    rng: Rng,
    mean: f64,
    std: f64,
}

impl Normals {
    pub fn new(seed: u64, mean: f64, std: f64) -> Normals {
        Normals {
            rng: Rng::new(seed),
            mean,
            std,
        }
    }
    pub fn draw(&mut self, shape: &[usize]) -> Tensor {
        Tensor::randn(shape.to_vec(), self.mean, self.std, DType::F64, &mut self.rng).unwrap()
    }
}
