//! float16 and bfloat16: conversions, ops against PyTorch (fixtures from
//! `scripts/gen_half_fixtures.py`), promotion and gradients.
//!
//! Values are compared as raw 16-bit patterns. Conversions and the basic arithmetic ops (add, sub,
//! mul, div, scalar multiply, sqrt) must match torch bit for bit: both compute the exactly
//! rounded f32 result and round it once to 16 bits. Transcendentals (exp, tanh, sigmoid) may be
//! one 16-bit ulp apart: torch's vectorised f32 exp differs from Rust's libm by an f32 ulp now and
//! then, and when that f32 sits on a 16-bit rounding midpoint the rounding goes the other way.
//! Reductions, softmax and matmul add in another order than torch's blocked kernels, so their f32
//! sums differ in the last f32 bits, which can move the rounded 16-bit result by one ulp too.

mod common;

use kiln_core::half::{bf16, f16};
use kiln_core::{DType, Tensor};
use serde_json::Value;

fn fixtures() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/half.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The tensor's elements as 16-bit patterns.
fn bits(t: &Tensor) -> Vec<u16> {
    t.to_le_bytes()
        .unwrap()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn from_bits(b: &[u16], dtype: DType, shape: &[usize]) -> Tensor {
    let bytes: Vec<u8> = b.iter().flat_map(|v| v.to_le_bytes()).collect();
    Tensor::from_le_bytes(&bytes, dtype, shape).unwrap()
}

fn is_nan_bits(b: u16, dtype: DType) -> bool {
    match dtype {
        DType::F16 => f16::from_bits(b).is_nan(),
        _ => bf16::from_bits(b).is_nan(),
    }
}

/// Distance in units in the last place: the bit patterns mapped to a line on which adjacent
/// floats (across zero too) are adjacent integers.
fn ulps(a: u16, b: u16) -> u32 {
    let line = |v: u16| -> i32 {
        if v & 0x8000 != 0 {
            -((v & 0x7FFF) as i32)
        } else {
            v as i32
        }
    };
    (line(a) - line(b)).unsigned_abs()
}

fn f32s_to(values: &[f32], dtype: DType) -> Vec<u16> {
    bits(&Tensor::from_slice(values, [values.len()]).unwrap().to_dtype(dtype).unwrap())
}

#[test]
fn known_values_have_exact_bit_patterns() {
    let tiny16 = 2f32.powi(-24); // smallest f16 subnormal
    let cases_f16: &[(f32, u16)] = &[
        (1.0, 0x3C00),
        (-2.0, 0xC000),
        (0.0, 0x0000),
        (-0.0, 0x8000),
        (65504.0, 0x7BFF),        // largest finite f16
        (65519.0, 0x7BFF),        // below the midpoint to 65536: stays finite
        (65520.0, 0x7C00),        // the midpoint rounds to even, which is infinity
        (6.103_515_6e-5, 0x0400), // smallest normal 2^-14
        (tiny16, 0x0001),
        (tiny16 * 0.5, 0x0000),               // tie between 0 and the smallest subnormal: even is 0
        (tiny16 * 1.5, 0x0002),               // tie between 1 and 2 subnormal steps: even is 2
        (tiny16 * 0.75, 0x0001),              // above the half-way point
        (1.0 + 2f32.powi(-11), 0x3C00),       // tie: round to the even 1.0
        (1.0 + 3.0 * 2f32.powi(-11), 0x3C02), // tie: round to the even 1 + 2^-9
        (f32::INFINITY, 0x7C00),
        (f32::NEG_INFINITY, 0xFC00),
        (1e10, 0x7C00), // overflow
    ];
    let (ins, outs): (Vec<f32>, Vec<u16>) = cases_f16.iter().copied().unzip();
    assert_eq!(f32s_to(&ins, DType::F16), outs);

    let cases_bf16: &[(f32, u16)] = &[
        (1.0, 0x3F80),
        (-2.0, 0xC000),
        (-0.0, 0x8000),
        (3.389_531_4e38, 0x7F7F),  // largest finite bf16
        (f32::MAX, 0x7F80),        // rounds up past the largest finite bf16
        (2f32.powi(-133), 0x0001), // smallest bf16 subnormal
        (2f32.powi(-149), 0x0000), // f32's smallest subnormal is far below half a bf16 step
        (1.0 + 2f32.powi(-8), 0x3F80),
        (1.0 + 3.0 * 2f32.powi(-8), 0x3F82),
        (1.0 + 2f32.powi(-8) + 2f32.powi(-20), 0x3F81), // just past the tie: up
        (f32::INFINITY, 0x7F80),
        (f32::NEG_INFINITY, 0xFF80),
    ];
    let (ins, outs): (Vec<f32>, Vec<u16>) = cases_bf16.iter().copied().unzip();
    assert_eq!(f32s_to(&ins, DType::BF16), outs);

    // NaN stays NaN, keeps its sign, and the default quiet NaN maps to the canonical patterns
    // PyTorch's scalar conversions give.
    let nans = [f32::NAN, -f32::NAN];
    assert_eq!(f32s_to(&nans, DType::F16), vec![0x7E00, 0xFE00]);
    assert_eq!(f32s_to(&nans, DType::BF16), vec![0x7FC0, 0xFFC0]);
    // f64 goes through f32 as torch's casts do: 1 + 2^-11 + 2^-40 loses the 2^-40 in f32 and
    // then ties to 1.0, where a single rounding would give the next f16 up.
    let x = Tensor::from_slice(&[1.0 + 2f64.powi(-11) + 2f64.powi(-40)], [1]).unwrap();
    assert_eq!(bits(&x.to_dtype(DType::F16).unwrap()), vec![0x3C00]);
}

#[test]
fn every_16_bit_value_round_trips_through_every_wider_float() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    for dtype in [DType::F16, DType::BF16] {
        let t = from_bits(&all, dtype, &[all.len()]);
        for wide in [DType::F32, DType::F64] {
            let back = bits(&t.to_dtype(wide).unwrap().to_dtype(dtype).unwrap());
            for (&a, &b) in all.iter().zip(&back) {
                if is_nan_bits(a, dtype) {
                    assert!(is_nan_bits(b, dtype), "{dtype} NaN {a:#06x} came back as {b:#06x} via {wide}");
                    assert_eq!(a & 0x8000, b & 0x8000, "NaN sign");
                } else {
                    assert_eq!(a, b, "{dtype} {a:#06x} via {wide}");
                }
            }
        }
        // The raw bytes come back unchanged, NaN payloads included.
        assert_eq!(bits(&t), all);
        assert_eq!(t.to_le_bytes().unwrap().len(), 2 * all.len());
    }
    // f16 -> bf16 goes through f32 (one rounding): 1 + 2^-10 is exact in f16 but below half a
    // bf16 step (2^-8) above 1, so it rounds down to 1.0.
    let h = Tensor::from_slice(&[1.0f32 + 2f32.powi(-10), 3.0, -0.5], [3])
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap();
    assert_eq!(bits(&h.to_dtype(DType::BF16).unwrap()), vec![0x3F80, 0x4040, 0xBF00]);
    // Integers: exact where representable, and back.
    let i = Tensor::from_slice(&[-3i64, 0, 7, 2048, 2049], [5]).unwrap();
    let h = i.to_dtype(DType::F16).unwrap();
    assert_eq!(h.to_dtype(DType::I64).unwrap().to_vec::<i64>().unwrap(), vec![-3, 0, 7, 2048, 2048]);
    assert_eq!(
        Tensor::from_slice(&[1u8, 200], [2])
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap()
            .to_vec_f64()
            .unwrap(),
        vec![1.0, 200.0]
    );
}

#[test]
fn typed_access_names_and_byte_checks() {
    let t = Tensor::from_vec(vec![f16::from_f32(1.5), f16::from_f32(-2.0)], [2]).unwrap();
    assert_eq!(t.dtype(), DType::F16);
    assert_eq!(t.to_vec::<f16>().unwrap(), vec![f16::from_f32(1.5), f16::from_f32(-2.0)]);
    assert_eq!(t.to_vec::<f32>().unwrap_err().to_string(), "to_vec: expected dtype f32, got f16");
    let b = Tensor::scalar(bf16::from_f32(0.25));
    assert_eq!(b.dtype(), DType::BF16);
    assert_eq!(b.item().unwrap(), 0.25);
    for (d, size, short, torch) in [
        (DType::F16, 2, "f16", "float16"),
        (DType::BF16, 2, "bf16", "bfloat16"),
        (DType::F32, 4, "f32", "float32"),
    ] {
        assert_eq!(d.size_in_bytes(), size);
        assert_eq!(d.as_str(), short);
        assert_eq!(d.torch_name(), torch);
        assert!(d.is_float());
        for name in [short.to_string(), torch.to_string(), format!("torch.{torch}"), short.to_uppercase()] {
            assert_eq!(name.parse::<DType>().unwrap(), d, "{name}");
        }
    }
    assert_eq!("half".parse::<DType>().unwrap(), DType::F16);
    assert!("float8".parse::<DType>().is_err());
    let e = Tensor::from_le_bytes(&[0, 0, 0], DType::F16, [2]).unwrap_err().to_string();
    assert_eq!(e, "from_le_bytes: 3 bytes cannot fill shape [2] of f16 (2 elements of 2 bytes)");
    let full = Tensor::full([2], 0.1, DType::BF16).unwrap();
    assert_eq!(bits(&full), vec![0x3DCD, 0x3DCD]);
    assert_eq!(bits(&Tensor::eye(2, DType::F16).unwrap()), vec![0x3C00, 0, 0, 0x3C00]);
    assert_eq!(bits(&Tensor::arange(0.0, 3.0, 1.0, DType::F16).unwrap()), vec![0, 0x3C00, 0x4000]);
}

#[test]
fn conversions_match_pytorch_bit_for_bit() {
    let fx = fixtures();
    for (name, dtype) in [("f16", DType::F16), ("bf16", DType::BF16)] {
        let c = &fx[name]["from_f32"];
        let ins: Vec<f32> = c["in"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| f32::from_bits(v.as_u64().unwrap() as u32))
            .collect();
        let want: Vec<u16> = c["out"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u16).collect();
        let got = f32s_to(&ins, dtype);
        assert_eq!(got.len(), want.len());
        let mut nans = 0;
        for ((x, &g), &w) in ins.iter().zip(&got).zip(&want) {
            if x.is_nan() {
                // torch writes NaN as 0xFFFF in its vectorised bf16 copy; a NaN is all we ask.
                assert!(is_nan_bits(g, dtype) && is_nan_bits(w, dtype), "{name}: NaN {:#010x}", x.to_bits());
                nans += 1;
            } else {
                assert_eq!(g, w, "{name}: f32 {x:e} ({:#010x})", x.to_bits());
            }
        }
        assert!(nans >= 3 && got.len() > 500, "the fixture covers NaNs and random bit patterns");

        let c = &fx[name]["from_f64"];
        let ins: Vec<f64> = c["in"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let want: Vec<u16> = c["out"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u16).collect();
        let got = bits(&Tensor::from_slice(&ins, [ins.len()]).unwrap().to_dtype(dtype).unwrap());
        assert_eq!(got, want, "{name} from f64");
    }
}

/// Runs each fixture op in kiln and returns (name, worst ulp distance, elements).
fn run_ops(name: &str, dtype: DType) -> Vec<(String, u32, usize)> {
    let fx = fixtures();
    let ops = fx[name]["ops"].as_object().unwrap();
    let mut report = Vec::new();
    for (op, c) in ops {
        let ins: Vec<Tensor> = c["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let b: Vec<u16> = t["bits"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u16).collect();
                from_bits(&b, dtype, &common::shape(t))
            })
            .collect();
        let x = &ins[0];
        let y = match op.as_str() {
            "add" | "add_broadcast" => x.add(&ins[1]),
            "sub" => x.sub(&ins[1]),
            "mul" => x.mul(&ins[1]),
            "div" => x.div(&ins[1]),
            "mul_scalar" => x.mul_scalar(c["scalar"].as_f64().unwrap()),
            "exp" => x.exp(),
            "tanh" => x.tanh(),
            "sigmoid" => x.sigmoid(),
            "sqrt" => x.sqrt(),
            "sum_all" => x.sum_all(),
            "sum_dim" => x.sum(&[-1], false),
            "sum_dim0" => x.sum(&[0], false),
            "mean_all" => x.mean_all(),
            "mean_dim" => x.mean(&[-1], false),
            "softmax" => x.softmax(-1),
            "log_softmax" => x.log_softmax(-1),
            o if o.starts_with("matmul") => x.matmul(&ins[1]),
            o => panic!("fixture op {o} has no kiln counterpart in this test"),
        }
        .unwrap();
        assert_eq!(y.dtype(), dtype, "{name} {op}");
        assert_eq!(y.dims(), common::shape(&c["out"]).as_slice(), "{name} {op}");
        // Where torch's native half kernel is less exact than its f32 one (see the generator),
        // kiln is held to the f32 result rounded once.
        let reference = if c.get("via_f32").is_some() { &c["via_f32"] } else { &c["out"] };
        let want: Vec<u16> = reference["bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u16)
            .collect();
        let got = bits(&y);
        let worst = got.iter().zip(&want).map(|(&g, &w)| ulps(g, w)).max().unwrap_or(0);
        report.push((op.clone(), worst, want.len()));
    }
    report
}

/// Ops whose result torch and kiln both round once from the exactly rounded f32 value.
const EXACT: &[&str] = &["add", "add_broadcast", "sub", "mul", "div", "mul_scalar", "sqrt"];

fn check_ops(name: &str, dtype: DType) {
    let report = run_ops(name, dtype);
    assert!(report.len() >= 20, "{report:?}");
    for (op, worst, n) in &report {
        let bound = if EXACT.contains(&op.as_str()) { 0 } else { 1 };
        assert!(
            *worst <= bound,
            "{name} {op}: {worst} ulps from torch (bound {bound}) over {n} elements; all: {report:?}"
        );
    }
}

#[test]
fn f16_ops_match_pytorch() {
    check_ops("f16", DType::F16);
}

#[test]
fn bf16_ops_match_pytorch() {
    check_ops("bf16", DType::BF16);
}

#[test]
fn matmul_accumulates_in_f32() {
    // 4096 ones: an f16 running sum sticks at 2048 (2048 + 1 rounds back to 2048), an f32 one
    // reaches 4096 exactly.
    for dtype in [DType::F16, DType::BF16] {
        let a = Tensor::ones([2, 4096], dtype).unwrap();
        let b = Tensor::ones([4096, 3], dtype).unwrap();
        let y = a.matmul(&b).unwrap();
        assert_eq!(y.dtype(), dtype);
        assert_eq!(y.to_vec_f64().unwrap(), vec![4096.0; 6]);
        assert_eq!(a.sum_all().unwrap().item().unwrap(), 8192.0, "{dtype} sum");
        // A transposed (strided) operand gives the same product.
        let bt = Tensor::ones([3, 4096], dtype).unwrap().t().unwrap();
        assert_eq!(a.matmul(&bt).unwrap().to_vec_f64().unwrap(), vec![4096.0; 6]);
    }
}

#[test]
fn promotion_follows_torch_promote_types() {
    let fx = fixtures();
    let table = fx["promote_types"].as_object().unwrap();
    let mut pairs = 0;
    for (a, row) in table {
        for (b, want) in row.as_object().unwrap() {
            let (da, db): (DType, DType) = (a.parse().unwrap(), b.parse().unwrap());
            let want: DType = want.as_str().unwrap().parse().unwrap();
            assert_eq!(DType::promote_types(da, db), want, "{a} + {b}");
            pairs += 1;
        }
    }
    assert_eq!(pairs, 36);
    let h = Tensor::full([2], 1.5, DType::F16).unwrap();
    let b = Tensor::full([2], 0.25, DType::BF16).unwrap();
    let f = Tensor::full([2], 2.0, DType::F32).unwrap();
    let s = h.add(&f).unwrap();
    assert_eq!((s.dtype(), s.to_vec_f64().unwrap()), (DType::F32, vec![3.5, 3.5]));
    let s = h.add(&b).unwrap();
    assert_eq!((s.dtype(), s.to_vec_f64().unwrap()), (DType::F32, vec![1.75, 1.75]));
    let i = Tensor::from_slice(&[1i64, 2], [2]).unwrap();
    assert_eq!(i.mul(&h).unwrap().dtype(), DType::F16);
    assert_eq!(h.gt(&f).unwrap().to_vec::<u8>().unwrap(), vec![0, 0]);
}

#[test]
fn gradients_flow_in_the_tensors_own_dtype() {
    for dtype in [DType::F16, DType::BF16] {
        let vals = [0.5f32, -1.25, 3.0, 100.0, -0.0078125, 7.5];
        let x = Tensor::from_slice(&vals, [6])
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
            .requires_grad(true)
            .unwrap();
        let g = x.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = g.get(&x).unwrap();
        assert_eq!(gx.dtype(), dtype);
        // 2x is exact in both formats: the gradient's bits are x's with the exponent one higher.
        assert_eq!(bits(gx), bits(&x.mul_scalar(2.0).unwrap()), "{dtype}");
        assert_eq!(gx.to_vec_f64().unwrap(), vals.iter().map(|&v| 2.0 * v as f64).collect::<Vec<_>>());

        // Through matmul, softmax (computed in f32 inside) and a promoted f32 operand: every
        // gradient comes back in its own tensor's dtype.
        let w = Tensor::ones([6, 2], dtype).unwrap().requires_grad(true).unwrap();
        let bias = Tensor::zeros([2], DType::F32).unwrap().requires_grad(true).unwrap();
        let y = x.reshape([1, 6]).unwrap().matmul(&w).unwrap().softmax(-1).unwrap();
        assert_eq!(y.dtype(), dtype);
        let loss = y.add(&bias).unwrap().sum_all().unwrap();
        assert_eq!(loss.dtype(), DType::F32);
        let g = loss.backward().unwrap();
        assert_eq!(g.get(&x).unwrap().dtype(), dtype);
        assert_eq!(g.get(&w).unwrap().dtype(), dtype);
        assert_eq!(g.get(&bias).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
        // Softmax rows sum to 1, so their gradient is zero up to rounding.
        assert!(g.get(&x).unwrap().to_vec_f64().unwrap().iter().all(|v| v.abs() < 1e-2));
    }
}

#[test]
fn unsupported_combinations_are_errors_naming_op_and_dtype() {
    let h = Tensor::ones([2, 2], DType::F16).unwrap();
    let f = Tensor::ones([2, 2], DType::F32).unwrap();
    // torch.matmul does not promote either.
    assert_eq!(h.matmul(&f).unwrap_err().to_string(), "matmul: dtypes differ: f16 and f32");
    let m = Tensor::ones([2, 2], DType::U8).unwrap();
    assert_eq!(
        m.where_cond(&h, &f).unwrap_err().to_string(),
        "where_cond: dtypes differ: f16 and f32"
    );
    let e = m.exp().unwrap_err().to_string();
    assert_eq!(e, "exp: expected dtype a float dtype (f16, bf16, f32 or f64), got u8");
    // Ops that are float-only accept the 16-bit floats.
    assert!(h.cumsum(0).is_ok());
    assert!(Tensor::ones([2], DType::BF16).unwrap().requires_grad(true).is_ok());
}
