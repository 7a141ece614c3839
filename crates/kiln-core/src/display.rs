//! PyTorch-like printing: `tensor([[1.0000, 2.0000], ...])`, summarised past 1000 elements.

use crate::{DType, Tensor};
use std::fmt;

const SUMMARY_THRESHOLD: usize = 1000;
const EDGE: usize = 3;

fn fmt_value(v: f64, dtype: DType, int_valued: bool) -> String {
    match dtype {
        DType::I64 | DType::U8 => format!("{}", v as i64),
        _ if v.is_nan() => "nan".into(),
        _ if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        _ if int_valued => format!("{v:.0}."),
        _ if v != 0.0 && (v.abs() >= 1e8 || v.abs() < 1e-4) => format!("{v:.4e}"),
        _ => format!("{v:.4}"),
    }
}

fn write_dim(out: &mut String, vals: &[String], dims: &[usize], width: usize, indent: usize, summarise: bool) {
    if dims.is_empty() {
        out.push_str(&format!("{:>width$}", vals[0]));
        return;
    }
    let n = dims[0];
    let stride: usize = dims[1..].iter().product();
    out.push('[');
    let show: Vec<Option<usize>> = if summarise && n > 2 * EDGE {
        (0..EDGE).map(Some).chain([None]).chain((n - EDGE..n).map(Some)).collect()
    } else {
        (0..n).map(Some).collect()
    };
    for (k, i) in show.iter().enumerate() {
        if k > 0 {
            out.push(',');
            if dims.len() > 1 {
                out.push_str(&"\n".repeat(dims.len() - 1));
                out.push_str(&" ".repeat(indent + 1));
            } else {
                out.push(' ');
            }
        }
        match i {
            Some(i) => write_dim(out, &vals[i * stride..(i + 1) * stride], &dims[1..], width, indent + 1, summarise),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dtype = self.dtype();
        if self.elem_count() == 0 {
            // As PyTorch prints it. Walking the dims instead would list every row of a
            // [2^40, 0] tensor.
            let mut dt = match dtype {
                DType::F32 | DType::I64 => String::new(),
                d => format!(", dtype={d}"),
            };
            if self.requires_grad_flag() {
                dt.push_str(", requires_grad=true");
            }
            if self.dims() == [0] {
                return write!(f, "tensor([]{dt})");
            }
            let dims: Vec<String> = self.dims().iter().map(usize::to_string).collect();
            return write!(f, "tensor([], size=({}){dt})", dims.join(", "));
        }
        let vals = match self.to_vec_f64() {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<{e}>)"),
        };
        let int_valued = dtype.is_float() && vals.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e8);
        let strs: Vec<String> = vals.iter().map(|&v| fmt_value(v, dtype, int_valued)).collect();
        let width = strs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut out = String::from("tensor(");
        write_dim(&mut out, &strs, self.dims(), width, 7, vals.len() > SUMMARY_THRESHOLD);
        match dtype {
            DType::F32 | DType::I64 => {}
            d => out.push_str(&format!(", dtype={d}")),
        }
        if self.requires_grad_flag() {
            out.push_str(", requires_grad=true");
        }
        out.push(')');
        f.write_str(&out)
    }
}
