//! Gradient checking against central finite differences in f64, first and second order, for
//! kiln's own ops and for users' functions (like PyTorch's `gradcheck` / `gradgradcheck`).

use crate::autograd::{grad, no_grad};
use crate::{DType, Error, Result, Rng, Tensor};

/// Tolerances and step for [`gradcheck`] and [`gradgradcheck`].
#[derive(Debug, Clone)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (against the numerical value).
    pub rtol: f64,
    /// Seed of the random output projection.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

fn to_f64_inputs(inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    inputs
        .iter()
        .map(|t| {
            if t.dtype().is_float() {
                t.to_dtype(DType::F64)?.detach().contiguous()?.requires_grad(true)
            } else {
                Ok(t.clone())
            }
        })
        .collect()
}

fn with_element(t: &Tensor, j: usize, delta: f64) -> Result<Tensor> {
    let mut v = t.to_vec::<f64>()?;
    v[j] += delta;
    Tensor::from_vec(v, t.shape().clone())
}

/// Compares analytic and numerical derivatives of the scalar `s(inputs)` for every float input.
fn compare(
    what: &str,
    s: &dyn Fn(&[Tensor]) -> Result<f64>,
    analytic: &[Option<Tensor>],
    xs: &[Tensor],
    opts: &GradcheckOptions,
) -> Result<()> {
    for (i, x) in xs.iter().enumerate() {
        if !x.dtype().is_float() {
            continue;
        }
        let a = match &analytic[i] {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; x.elem_count()],
        };
        for (j, &aj) in a.iter().enumerate() {
            let mut plus = xs.to_vec();
            plus[i] = with_element(x, j, opts.eps)?;
            let mut minus = xs.to_vec();
            minus[i] = with_element(x, j, -opts.eps)?;
            let num = (s(&plus)? - s(&minus)?) / (2.0 * opts.eps);
            // Written so that a NaN on either side fails the check.
            let within = (aj - num).abs() <= opts.atol + opts.rtol * num.abs();
            if !within {
                return Err(Error::Gradcheck(format!(
                    "{what}: input {i} (shape {}) element {j}: analytic {aj:.10e}, numerical {num:.10e}",
                    x.shape()
                )));
            }
        }
    }
    Ok(())
}

fn projection(out: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    Tensor::randn(out.shape().clone(), 0.0, 1.0, DType::F64, rng)
}

fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.mul(b)?.sum_all()
}

/// Checks the first derivatives of `f` at `inputs` (converted to f64) against central differences.
/// Non-scalar outputs are projected on a fixed random vector, which checks the full vector-Jacobian
/// product. Integer inputs (indices) are passed through unchecked.
///
/// ```
/// use kiln_core::{gradcheck, GradcheckOptions, Tensor};
/// let x = Tensor::from_slice(&[0.3f64, -1.2, 2.0], [3])?;
/// gradcheck(|v| v[0].tanh()?.mul(&v[0]), &[x], &GradcheckOptions::default())?;
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn gradcheck<F>(f: F, inputs: &[Tensor], opts: &GradcheckOptions) -> Result<()>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let xs = to_f64_inputs(inputs)?;
    let out = f(&xs)?;
    let mut rng = Rng::new(opts.seed);
    let v = projection(&out, &mut rng)?;
    let analytic = if out.requires_grad_flag() {
        grad(std::slice::from_ref(&out), Some(std::slice::from_ref(&v)), &xs, false)?
    } else {
        vec![None; xs.len()]
    };
    let s = |ys: &[Tensor]| -> Result<f64> { no_grad(|| dot(&f(ys)?, &v)?.item()) };
    compare("first order", &s, &analytic, &xs, opts)
}

/// Checks the second derivatives of `f`: differentiates the (projected) gradient once more and
/// compares with central differences of the analytic gradient.
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor], opts: &GradcheckOptions) -> Result<()>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let xs = to_f64_inputs(inputs)?;
    let out = f(&xs)?;
    let mut rng = Rng::new(opts.seed);
    let v = projection(&out, &mut rng)?;
    let us: Vec<Tensor> = xs
        .iter()
        .map(|x| Tensor::randn(x.shape().clone(), 0.0, 1.0, DType::F64, &mut rng))
        .collect::<Result<_>>()?;
    // s2(x) = Σ_i <∂<f(x), v>/∂x_i, u_i>
    let s2_graph = |ys: &[Tensor], create: bool| -> Result<Option<Tensor>> {
        let out = f(ys)?;
        if !out.requires_grad_flag() {
            return Ok(None);
        }
        let gs = grad(std::slice::from_ref(&out), Some(std::slice::from_ref(&v)), ys, create)?;
        let mut acc: Option<Tensor> = None;
        for ((g, u), y) in gs.iter().zip(&us).zip(ys) {
            if let (Some(g), true) = (g, y.dtype().is_float()) {
                let d = dot(g, u)?;
                acc = Some(match acc {
                    Some(a) => a.add(&d)?,
                    None => d,
                });
            }
        }
        Ok(acc)
    };
    let analytic = match s2_graph(&xs, true)? {
        Some(s2) if s2.requires_grad_flag() => grad(&[s2], None, &xs, false)?,
        _ => vec![None; xs.len()],
    };
    let s = |ys: &[Tensor]| -> Result<f64> {
        let ys: Vec<Tensor> = ys
            .iter()
            .map(|y| {
                if y.dtype().is_float() {
                    y.requires_grad(true)
                } else {
                    Ok(y.clone())
                }
            })
            .collect::<Result<_>>()?;
        Ok(match s2_graph(&ys, false)? {
            Some(t) => t.item()?,
            None => 0.0,
        })
    };
    compare("second order", &s, &analytic, &xs, opts)
}
