//! `Display` against PyTorch's `str(tensor)`: number formats, 80-column wrapping and the summary
//! past 1000 elements, from `fixtures/display.json` (written by `scripts/gen_display_fixtures.py`).
//! PyTorch's dtype names are mapped to kiln's; nothing else may differ.

use kiln_core::{DType, Tensor};
use serde_json::Value;

fn dtype(name: &str) -> DType {
    match name {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        "i64" => DType::I64,
        "u8" => DType::U8,
        d => panic!("unknown dtype {d}"),
    }
}

fn value(v: &Value) -> f64 {
    match v.as_str() {
        Some("nan") => f64::NAN,
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        Some(s) => panic!("bad value {s}"),
        None => v.as_f64().unwrap(),
    }
}

fn case_tensor(c: &Value) -> Tensor {
    let shape: Vec<usize> = c["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = match (c["values"].get("data"), c["values"].get("arange")) {
        (Some(d), _) => d.as_array().unwrap().iter().map(value).collect(),
        (None, Some(a)) => {
            let (start, step) = (value(&a[0]), value(&a[1]));
            (0..n).map(|i| start + i as f64 * step).collect()
        }
        _ => panic!("case without values"),
    };
    Tensor::from_vec(vals, shape)
        .unwrap()
        .to_dtype(dtype(c["dtype"].as_str().unwrap()))
        .unwrap()
}

fn kiln_dtype_names(s: &str) -> String {
    [
        ("torch.float64", "f64"),
        ("torch.float16", "f16"),
        ("torch.bfloat16", "bf16"),
        ("torch.uint8", "u8"),
    ]
    .iter()
    .fold(s.to_string(), |s, (torch, kiln)| s.replace(torch, kiln))
}

#[test]
fn display_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/display.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let want = kiln_dtype_names(c["expected"].as_str().unwrap());
        assert_eq!(case_tensor(c).to_string(), want, "case {}", c["name"]);
    }
}

#[test]
fn printing_a_huge_tensor_reads_only_what_it_prints() {
    // 2^40 entries: reading them all would take hours and a terabyte.
    let t = Tensor::scalar(1.5f32).expand([1 << 20, 1 << 20]).unwrap();
    assert_eq!(
        t.to_string(),
        "tensor([[1.5000, 1.5000, 1.5000,  ..., 1.5000, 1.5000, 1.5000],\n        \
         [1.5000, 1.5000, 1.5000,  ..., 1.5000, 1.5000, 1.5000],\n        \
         [1.5000, 1.5000, 1.5000,  ..., 1.5000, 1.5000, 1.5000],\n        \
         ...,\n        \
         [1.5000, 1.5000, 1.5000,  ..., 1.5000, 1.5000, 1.5000],\n        \
         [1.5000, 1.5000, 1.5000,  ..., 1.5000, 1.5000, 1.5000],\n        \
         [1.5000, 1.5000, 1.5000,  ..., 1.5000, 1.5000, 1.5000]])"
    );
}

#[test]
fn printing_keeps_requires_grad_and_the_graph_untouched() {
    let x = Tensor::arange(0.0, 2000.0, 1.0, DType::F64).unwrap().requires_grad(true).unwrap();
    let s = x.to_string();
    assert!(s.ends_with(", dtype=f64, requires_grad=true)"), "{s}");
    assert!(
        s.starts_with("tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,"),
        "{s}"
    );
}
