//! kiln against PyTorch for the second batch of issue #11's ops: every case in
//! `fixtures/more_ops2.json` (written by `scripts/gen_core_fixtures.py more2`) checks each output
//! (values, i64 indices, bool masks as u8) and, where torch has one, the gradient of the first
//! output for the fixture's upstream gradient. Non-finite floats are stored as the strings "nan",
//! "inf", "-inf"; a NaN must match a NaN. f32 within 1e-5 relative, f64 within 1e-12.

mod common;

use common::{floats, index_of, ints, mask_of, shape, tensor_of};
use kiln_core::{DType, Result, Tensor};
use serde_json::Value;

fn list<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn run(op: &str, xs: &[Tensor], args: &Value) -> Result<Vec<Tensor>> {
    let x = &xs[0];
    let dim = args["dim"].as_i64().unwrap_or(0) as isize;
    let keep = args["keepdim"].as_bool().unwrap_or(false);
    let desc = args["descending"].as_bool().unwrap_or(false);
    let pair = |(v, i): (Tensor, Tensor)| vec![v, i];
    Ok(match op {
        "outer" => vec![x.outer(&xs[1])?],
        "einsum" => vec![Tensor::einsum(args["spec"].as_str().unwrap(), xs)?],
        "sort" => pair(x.sort(dim, desc)?),
        "argsort" => vec![x.argsort(dim, desc)?],
        "topk" => pair(x.topk(args["k"].as_u64().unwrap() as usize, dim, args["largest"].as_bool().unwrap(), true)?),
        "any" => vec![x.any(dim, keep)?],
        "all" => vec![x.all(dim, keep)?],
        "any_all" => vec![x.any_all()?],
        "all_all" => vec![x.all_all()?],
        "logical_and" => vec![x.logical_and(&xs[1])?],
        "logical_or" => vec![x.logical_or(&xs[1])?],
        "logical_xor" => vec![x.logical_xor(&xs[1])?],
        "logical_not" => vec![x.logical_not()?],
        "masked_select" => vec![x.masked_select(&mask_of(&args["mask"]))?],
        "nonzero" => vec![x.nonzero()?],
        "scatter" => vec![x.scatter(dim, &index_of(&args["index"]), &xs[1])?],
        "index_put" => {
            let indices = list(&args["indices"], |i| {
                let v = list(i, |x| x.as_i64().unwrap());
                let n = v.len();
                Tensor::from_vec(v, [n]).unwrap()
            });
            vec![x.index_put(&indices, &xs[1], args["accumulate"].as_bool().unwrap())?]
        }
        "roll_dims" => vec![x.roll_dims(
            &list(&args["shifts"], |v| v.as_i64().unwrap()),
            &list(&args["dims"], |v| v.as_i64().unwrap() as isize),
        )?],
        o => panic!("no runner for op {o}"),
    })
}

/// Same values: NaN matches NaN, infinities match exactly, finite values within `rtol`.
fn close(got: &[f64], want: &[f64], rtol: f64) -> std::result::Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} values, torch has {}", got.len(), want.len()));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= rtol * w.abs() + rtol * 0.1
        };
        if !ok {
            return Err(format!("element {i}: kiln {g}, torch {w}"));
        }
    }
    Ok(())
}

fn check_case(c: &Value) -> std::result::Result<(), String> {
    let (dtype, rtol) = if c["dtype"] == "f32" {
        (DType::F32, 1e-5)
    } else {
        (DType::F64, 1e-12)
    };
    let has_grad = c.get("grad_output").is_some();
    let xs: Vec<Tensor> = list(&c["inputs"], |v| tensor_of(v, dtype).requires_grad(has_grad).unwrap());
    let outs = run(c["op"].as_str().unwrap(), &xs, &c["args"]).map_err(|e| format!("error {e}"))?;
    let want = c["outputs"].as_array().unwrap();
    if outs.len() != want.len() {
        return Err(format!("{} outputs, torch has {}", outs.len(), want.len()));
    }
    for (k, (o, w)) in outs.iter().zip(want).enumerate() {
        if o.dims() != shape(w).as_slice() {
            return Err(format!("output {k}: shape {:?}, torch {:?}", o.dims(), shape(w)));
        }
        let want_dtype = match w["dtype"].as_str().unwrap() {
            "bool" => DType::U8,
            "i64" => DType::I64,
            _ => dtype,
        };
        if o.dtype() != want_dtype {
            return Err(format!("output {k}: dtype {}, want {want_dtype}", o.dtype()));
        }
        if want_dtype.is_float() {
            close(&o.to_vec_f64().unwrap(), &floats(w), rtol).map_err(|e| format!("output {k}: {e}"))?;
        } else {
            let got: Vec<i64> = o.to_vec_f64().unwrap().iter().map(|&v| v as i64).collect();
            if got != ints(w) {
                return Err(format!("output {k}: kiln {got:?}, torch {:?}", ints(w)));
            }
            if o.requires_grad_flag() {
                return Err(format!("output {k} ({}) carries a graph", o.dtype()));
            }
        }
    }
    if !has_grad {
        return Ok(());
    }
    let seed = tensor_of(&c["grad_output"], dtype);
    let grads = kiln_core::grad(&outs[..1], Some(&[seed]), &xs, false).map_err(|e| format!("backward error {e}"))?;
    for (k, (g, w)) in grads.iter().zip(c["grads"].as_array().unwrap()).enumerate() {
        let got = match g {
            Some(g) => g.to_vec_f64().unwrap(),
            None => vec![0.0; xs[k].elem_count()],
        };
        close(&got, &floats(w), rtol).map_err(|e| format!("grad {k}: {e}"))?;
    }
    Ok(())
}

#[test]
fn more_ops2_match_pytorch() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/more_ops2.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 150, "fixture unexpectedly small");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_case(c).err().map(|e| format!("{}: {e}", c["name"].as_str().unwrap())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
