//! kiln against PyTorch: every case in `fixtures/ops.json` (written by
//! `scripts/gen_core_fixtures.py`) checks the forward value and the input gradients for the
//! fixture's upstream gradient. f32 within 1e-5 relative, f64 within 1e-10.

use kiln_core::{DType, Result, Tensor};
use serde_json::Value;

/// A fixture tensor's shape and values, with `conv` turning each JSON number into `T`.
fn parts<T>(v: &Value, conv: impl Fn(&Value) -> T) -> (Vec<usize>, Vec<T>) {
    let shape = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    (shape, v["data"].as_array().unwrap().iter().map(conv).collect())
}

fn tensor_of(v: &Value, dtype: DType) -> Tensor {
    let (shape, data) = parts(v, |x| x.as_f64().unwrap());
    Tensor::from_vec(data, shape).unwrap().to_dtype(dtype).unwrap()
}

fn index_of(v: &Value) -> Tensor {
    if let Some(list) = v.as_array() {
        let data: Vec<i64> = list.iter().map(|x| x.as_i64().unwrap()).collect();
        let n = data.len();
        return Tensor::from_vec(data, [n]).unwrap();
    }
    let (shape, data) = parts(v, |x| x.as_i64().unwrap());
    Tensor::from_vec(data, shape).unwrap()
}

fn mask_of(v: &Value) -> Tensor {
    let (shape, data) = parts(v, |x| x.as_u64().unwrap() as u8);
    Tensor::from_vec(data, shape).unwrap()
}

fn isizes(v: &Value) -> Vec<isize> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as isize).collect()
}

fn run(op: &str, xs: &[Tensor], args: &Value) -> Result<Tensor> {
    let keep = args["keepdim"].as_bool().unwrap_or(false);
    let dim = args["dim"].as_i64().unwrap_or(0) as isize;
    let x = &xs[0];
    match op {
        "add" => x.add(&xs[1]),
        "sub" => x.sub(&xs[1]),
        "mul" => x.mul(&xs[1]),
        "div" => x.div(&xs[1]),
        "pow" => x.pow(&xs[1]),
        "maximum" => x.maximum(&xs[1]),
        "minimum" => x.minimum(&xs[1]),
        "eq" => x.eq(&xs[1]),
        "ne" => x.ne(&xs[1]),
        "lt" => x.lt(&xs[1]),
        "le" => x.le(&xs[1]),
        "gt" => x.gt(&xs[1]),
        "ge" => x.ge(&xs[1]),
        "neg" => x.neg(),
        "abs" => x.abs(),
        "exp" => x.exp(),
        "log" => x.log(),
        "log1p" => x.log1p(),
        "sqrt" => x.sqrt(),
        "rsqrt" => x.rsqrt(),
        "square" => x.square(),
        "recip" => x.recip(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tanh" => x.tanh(),
        "sigmoid" => x.sigmoid(),
        "relu" => x.relu(),
        "gelu" => x.gelu(),
        "softplus" => x.softplus(),
        "clamp" => x.clamp(args["min"].as_f64().unwrap(), args["max"].as_f64().unwrap()),
        "sum" => x.sum(&isizes(&args["dims"]), keep),
        "mean" => x.mean(&isizes(&args["dims"]), keep),
        "max" => x.max(&isizes(&args["dims"]), keep),
        "min" => x.min(&isizes(&args["dims"]), keep),
        "logsumexp" => x.logsumexp(&isizes(&args["dims"]), keep),
        "var" => x.var(&isizes(&args["dims"]), args["correction"].as_u64().unwrap() as usize, keep),
        "softmax" => x.softmax(dim),
        "log_softmax" => x.log_softmax(dim),
        "argmax" => x.argmax(dim, keep),
        "argmin" => x.argmin(dim, keep),
        "where_cond" => mask_of(&args["mask"]).where_cond(&xs[0], &xs[1]),
        "masked_fill" => x.masked_fill(&mask_of(&args["mask"]), args["value"].as_f64().unwrap()),
        "cat" => Tensor::cat(xs, dim),
        "stack" => Tensor::stack(xs, dim),
        "index_select" => x.index_select(dim, &index_of(&args["index"])),
        "gather" => x.gather(dim, &index_of(&args["index"])),
        "scatter_add" => x.scatter_add(dim, &index_of(&args["index"]), &xs[1]),
        "pad" => {
            let pads: Vec<(usize, usize)> = args["pads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize))
                .collect();
            x.pad(&pads, args["value"].as_f64().unwrap())
        }
        "narrow" => x.narrow(
            dim,
            args["start"].as_u64().unwrap() as usize,
            args["len"].as_u64().unwrap() as usize,
        ),
        "permute" => x.permute(&isizes(&args["dims"]).iter().map(|&d| d as usize).collect::<Vec<_>>()),
        "transpose" => x.transpose(args["dim0"].as_i64().unwrap() as isize, args["dim1"].as_i64().unwrap() as isize),
        "reshape" => x.reshape(isizes(&args["shape"]).iter().map(|&d| d as usize).collect::<Vec<_>>()),
        "expand" => x.expand(isizes(&args["shape"]).iter().map(|&d| d as usize).collect::<Vec<_>>()),
        "matmul" => x.matmul(&xs[1]),
        "expm1" => x.expm1(),
        "log2" => x.log2(),
        "log10" => x.log10(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "sinh" => x.sinh(),
        "cosh" => x.cosh(),
        "asinh" => x.asinh(),
        "acosh" => x.acosh(),
        "atanh" => x.atanh(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round" => x.round(),
        "trunc" => x.trunc(),
        "atan2" => x.atan2(&xs[1]),
        "flip" => x.flip(&isizes(&args["dims"])),
        "tril" => x.tril(args["diagonal"].as_i64().unwrap()),
        "triu" => x.triu(args["diagonal"].as_i64().unwrap()),
        "cumsum" => x.cumsum(dim),
        "prod" => x.prod(dim, keep),
        "cumprod" => x.cumprod(dim),
        "std" => x.std(&isizes(&args["dims"]), args["correction"].as_u64().unwrap() as usize, keep),
        "roll" => x.roll(args["shift"].as_i64().unwrap(), dim),
        "repeat" => x.repeat(&isizes(&args["reps"]).iter().map(|&r| r as usize).collect::<Vec<_>>()),
        other => panic!("fixture names an op this test does not know: {other}"),
    }
}

fn close(got: &[f64], want: &[f64], dtype: DType) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("length {} vs {}", got.len(), want.len()));
    }
    let (rtol, atol) = match dtype {
        DType::F32 => (1e-5, 1e-6),
        _ => (1e-10, 1e-12),
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let within = (g - w).abs() <= atol + rtol * w.abs();
        if !within {
            return Err(format!("element {i}: kiln {g:.12e}, torch {w:.12e}"));
        }
    }
    Ok(())
}

#[test]
fn every_op_matches_pytorch() {
    check_fixture(include_str!("fixtures/ops.json"), 250);
}

/// The ops added for issue #11 (`fixtures/more_ops.json`, same generator and format).
#[test]
fn more_ops_match_pytorch() {
    check_fixture(include_str!("fixtures/more_ops.json"), 70);
}

/// Runs every case of one fixture file (which must hold more than `min_cases`).
fn check_fixture(text: &str, min_cases: usize) {
    let root: Value = serde_json::from_str(text).unwrap();
    let cases = root["cases"].as_array().unwrap();
    assert!(cases.len() > min_cases, "fixture unexpectedly small");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let op = case["op"].as_str().unwrap();
        let dtype = if case["dtype"] == "f32" { DType::F32 } else { DType::F64 };
        let has_grad = !case["grad_output"].is_null();
        let xs: Vec<Tensor> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| tensor_of(v, dtype).requires_grad(has_grad).unwrap())
            .collect();
        let out = match run(op, &xs, &case["args"]) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: error {e}"));
                continue;
            }
        };
        let want_shape: Vec<usize> = case["output"]["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        if out.dims() != want_shape.as_slice() {
            failures.push(format!("{name}: shape {:?} vs torch {:?}", out.dims(), want_shape));
            continue;
        }
        let want: Vec<f64> = case["output"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let out_dtype = match case.get("out_dtype").and_then(|v| v.as_str()) {
            Some("bool") => DType::U8,
            Some("i64") => DType::I64,
            _ => dtype,
        };
        if out.dtype() != out_dtype {
            failures.push(format!("{name}: dtype {} vs {}", out.dtype(), out_dtype));
            continue;
        }
        if let Err(e) = close(&out.to_vec_f64().unwrap(), &want, dtype) {
            failures.push(format!("{name}: forward {e}"));
            continue;
        }
        if !has_grad {
            continue;
        }
        let seed = tensor_of(&case["grad_output"], dtype);
        let grads = match out.backward_with(&seed) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: backward error {e}"));
                continue;
            }
        };
        for (i, (x, want)) in xs.iter().zip(case["grads"].as_array().unwrap()).enumerate() {
            if want.is_null() {
                continue;
            }
            let want_v: Vec<f64> = want["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let got = grads
                .get(x)
                .map(|g| g.to_vec_f64().unwrap())
                .unwrap_or_else(|| vec![0.0; x.elem_count()]);
            // gelu's f32 gradient differs in rounding between erf implementations.
            let tol_dtype = if op == "gelu" && dtype == DType::F32 { DType::F64 } else { dtype };
            let res = if op == "gelu" && dtype == DType::F32 {
                got.iter().zip(&want_v).enumerate().try_for_each(|(k, (g, w))| {
                    if (g - w).abs() <= 1e-4 * w.abs() + 1e-6 {
                        Ok(())
                    } else {
                        Err(format!("element {k}: kiln {g}, torch {w}"))
                    }
                })
            } else {
                close(&got, &want_v, tol_dtype)
            };
            if let Err(e) = res {
                failures.push(format!("{name}: grad of input {i}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
