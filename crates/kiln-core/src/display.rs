//! PyTorch-like printing: `tensor([[1.5000, 2.0000], ...])`, with PyTorch's number formats, its
//! 80-column wrapping of rows, and its summary (first and last three entries of each dim) past
//! 1000 elements. The output equals `print(t)` in PyTorch (checked against fixtures from
//! `scripts/gen_display_fixtures.py`), except that dtypes are named as kiln names them (`f64`, not
//! `torch.float64`) and `requires_grad=true` is spelt as in Rust.

use crate::{DType, Tensor};
use std::fmt;

const SUMMARY_THRESHOLD: usize = 1000;
const EDGE: usize = 3;
const LINE_WIDTH: usize = 80;
const PRECISION: usize = 4;

/// How the values of one tensor are printed: PyTorch's `_Formatter`, whose choice depends on the
/// nonzero finite values among those printed.
struct Formatter {
    float: bool,
    /// Every nonzero finite value is an integer: printed as `3.`.
    int_mode: bool,
    /// Scientific notation for every value: the magnitudes span more than 1000×, or reach 1e8, or
    /// (for non-integers) go below 1e-4.
    sci_mode: bool,
    /// Every value is right-aligned to this width.
    width: usize,
}

/// Python's `'{:.4e}'`: at least two exponent digits, always signed (`1.0000e+00`).
fn sci(v: f64) -> String {
    if !v.is_finite() {
        return nonfinite(v);
    }
    let s = format!("{v:.PRECISION$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

fn nonfinite(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

impl Formatter {
    fn new(vals: &[f64], dtype: DType) -> Formatter {
        let mut f = Formatter {
            float: dtype.is_float(),
            int_mode: true,
            sci_mode: false,
            width: 1,
        };
        if !f.float {
            f.width = vals.iter().map(|&v| (v as i64).to_string().len()).max().unwrap_or(1).max(1);
            return f;
        }
        let finite: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite() && *v != 0.0).collect();
        if finite.is_empty() {
            return f;
        }
        let (lo, hi) = finite
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v.abs()), hi.max(v.abs())));
        f.int_mode = finite.iter().all(|v| v.ceil() == *v);
        let wide = hi / lo > 1000.0 || hi > 1e8;
        f.sci_mode = wide || (!f.int_mode && lo < 1e-4);
        f.width = finite
            .iter()
            .map(|&v| match (f.sci_mode, f.int_mode) {
                (true, _) => sci(v).len(),
                (false, true) => format!("{v:.0}").len() + 1,
                (false, false) => format!("{v:.PRECISION$}").len(),
            })
            .max()
            .unwrap_or(1)
            .max(1);
        f
    }

    fn format(&self, v: f64) -> String {
        let s = if !self.float {
            (v as i64).to_string()
        } else if self.sci_mode {
            sci(v)
        } else if !v.is_finite() {
            nonfinite(v)
        } else if self.int_mode {
            format!("{v:.0}.")
        } else {
            format!("{v:.PRECISION$}")
        };
        format!("{s:>width$}", width = self.width)
    }
}

/// Writes `vals` (row-major, shape `dims`) nested as PyTorch does. A dim flagged in `elided` holds
/// only its first and last `EDGE` entries (see [`summarized`]), printed with `...` between them.
/// `indent` is the column the opening bracket is at.
fn write_dim(out: &mut String, vals: &[String], dims: &[usize], elided: &[bool], width: usize, indent: usize) {
    if dims.is_empty() {
        out.push_str(&vals[0]);
        return;
    }
    let n = dims[0];
    if dims.len() == 1 {
        // Rows wrap at 80 columns, counting each entry with its ", ".
        let mut items: Vec<&str> = vals.iter().map(String::as_str).collect();
        if elided[0] {
            items.insert(EDGE, " ...");
        }
        let per_line = (LINE_WIDTH.saturating_sub(indent) / (width + 2)).max(1);
        let lines: Vec<String> = items.chunks(per_line).map(|l| l.join(", ")).collect();
        out.push('[');
        out.push_str(&lines.join(&format!(",\n{}", " ".repeat(indent + 1))));
        out.push(']');
        return;
    }
    let stride: usize = dims[1..].iter().product();
    out.push('[');
    let show: Vec<Option<usize>> = if elided[0] {
        (0..EDGE).map(Some).chain([None]).chain((EDGE..n).map(Some)).collect()
    } else {
        (0..n).map(Some).collect()
    };
    for (k, i) in show.iter().enumerate() {
        if k > 0 {
            out.push(',');
            out.push_str(&"\n".repeat(dims.len() - 1));
            out.push_str(&" ".repeat(indent + 1));
        }
        match i {
            Some(i) => write_dim(
                out,
                &vals[i * stride..(i + 1) * stride],
                &dims[1..],
                &elided[1..],
                width,
                indent + 1,
            ),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

/// The part of `t` a summary prints (PyTorch's `get_summarized_data`): along every dim longer
/// than `2 * EDGE`, its first and last `EDGE` entries; and which dims were cut. Cutting before
/// reading keeps printing a huge tensor (an expanded scalar of 2^40 entries, say) as cheap as
/// printing a small one.
fn summarized(t: &Tensor) -> crate::Result<(Tensor, Vec<bool>)> {
    let mut t = t.detach();
    let mut elided = vec![false; t.rank()];
    for (d, cut) in elided.iter_mut().enumerate() {
        let n = t.dims()[d];
        if n > 2 * EDGE {
            let dim = d as isize;
            t = Tensor::cat(&[t.narrow(dim, 0, EDGE)?, t.narrow(dim, n - EDGE, EDGE)?], dim)?;
            *cut = true;
        }
    }
    Ok((t, elided))
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
        let shown = if self.elem_count() > SUMMARY_THRESHOLD {
            summarized(self)
        } else {
            Ok((self.clone(), vec![false; self.rank()]))
        };
        let (vals, shown_dims, elided) = match shown.and_then(|(t, elided)| Ok((t.to_vec_f64()?, t.dims().to_vec(), elided))) {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<{e}>)"),
        };
        let fmt = Formatter::new(&vals, dtype);
        let strs: Vec<String> = vals.iter().map(|&v| fmt.format(v)).collect();
        let mut out = String::from("tensor(");
        let indent = out.len();
        write_dim(&mut out, &strs, &shown_dims, &elided, fmt.width, indent);
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
