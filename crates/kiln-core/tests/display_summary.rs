//! `Display` against PyTorch's `str(tensor)`: number formats, 80-column wrapping and the summary
//! past 1000 elements, from `fixtures/display.json` (written by `scripts/gen_display_fixtures.py`).
//! PyTorch's dtype names are mapped to kiln's; nothing else may differ.

mod common;

use kiln_core::{DType, Tensor};
use serde_json::Value;

fn case_tensor(c: &Value) -> Tensor {
    let shape = common::shape(c);
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = match (c["values"].get("data"), c["values"].get("arange")) {
        (Some(d), _) => d.as_array().unwrap().iter().map(common::num).collect(),
        (None, Some(a)) => {
            let (start, step) = (common::num(&a[0]), common::num(&a[1]));
            (0..n).map(|i| start + i as f64 * step).collect()
        }
        _ => panic!("case without values"),
    };
    let name = c["dtype"].as_str().unwrap();
    let dtype = DType::ALL
        .into_iter()
        .find(|d| d.as_str() == name)
        .unwrap_or_else(|| panic!("unknown dtype {name}"));
    Tensor::from_vec(vals, shape).unwrap().to_dtype(dtype).unwrap()
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
