//! kiln against PyTorch at the edges of ops' domains: every case in `fixtures/edges.json` (written
//! by `scripts/gen_core_fixtures.py`) checks the outputs and the input gradients for the fixture's
//! upstream gradient. Inputs sit exactly on clamp's bounds, hold NaN and infinities (relu,
//! maximum, minimum), or tie (max_dim / min_dim / argmax_all). Non-finite floats are stored as the
//! strings "nan", "inf", "-inf"; a NaN must match a NaN.

mod common;

use common::{floats, num, shape, tensor_of};
use kiln_core::{DType, Result, Tensor};
use serde_json::Value;

fn run(op: &str, xs: &[Tensor], args: &Value) -> Result<Vec<Tensor>> {
    let x = &xs[0];
    let dim = args["dim"].as_i64().unwrap_or(0) as isize;
    let keep = args["keepdim"].as_bool().unwrap_or(false);
    let pair = |(v, i): (Tensor, Tensor)| vec![v, i];
    Ok(match op {
        "clamp" => vec![x.clamp(num(&args["min"]), num(&args["max"]))?],
        "relu" => vec![x.relu()?],
        "maximum" => vec![x.maximum(&xs[1])?],
        "minimum" => vec![x.minimum(&xs[1])?],
        "max_dim" => pair(x.max_dim(dim, keep)?),
        "min_dim" => pair(x.min_dim(dim, keep)?),
        "argmax_all" => vec![x.argmax_all()?],
        "argmin_all" => vec![x.argmin_all()?],
        o => panic!("no runner for op {o}"),
    })
}

/// Same values: NaN matches NaN, infinities match exactly, finite values within `tol` relative.
fn close(name: &str, what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name} {what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * (1.0 + w.abs())
        };
        assert!(ok, "{name} {what}[{i}]: kiln {g}, torch {w}");
    }
}

#[test]
fn edges_match_pytorch() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/edges.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 50);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (dtype, tol) = if c["dtype"] == "f32" {
            (DType::F32, 1e-6)
        } else {
            (DType::F64, 1e-12)
        };
        let xs: Vec<Tensor> = c["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| tensor_of(v, dtype).requires_grad(true).unwrap())
            .collect();
        let outs = run(c["op"].as_str().unwrap(), &xs, &c["args"]).unwrap();
        let want = c["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), want.len(), "{name}: output count");
        for (k, (o, w)) in outs.iter().zip(want).enumerate() {
            assert_eq!(o.dims(), &shape(w)[..], "{name} output {k} shape");
            if o.dtype() == DType::I64 {
                let wi: Vec<i64> = w["data"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
                assert_eq!(o.to_vec::<i64>().unwrap(), wi, "{name} indices");
            } else {
                close(name, "output", &o.to_vec_f64().unwrap(), &floats(w), tol);
            }
        }
        if let Some(go) = c.get("grad_output") {
            let seed = tensor_of(go, dtype);
            let grads = kiln_core::grad(&outs[..1], Some(&[seed]), &xs, false).unwrap();
            for (k, (g, w)) in grads.iter().zip(c["grads"].as_array().unwrap()).enumerate() {
                let got = match g {
                    Some(g) => g.to_vec_f64().unwrap(),
                    None => vec![0.0; xs[k].elem_count()],
                };
                close(name, &format!("grad {k}"), &got, &floats(w), tol);
            }
        } else {
            assert!(!outs[0].requires_grad_flag(), "{name}: an index output carries no graph");
        }
    }
}
