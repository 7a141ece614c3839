//! Function transforms in the style of JAX and `torch.func`: [`vjp`], [`jvp`], [`grad`],
//! [`value_and_grad`], [`jacrev`], [`jacfwd`], [`jacobian`], [`hessian`], [`hvp`] and [`vmap`].
//!
//! # The functions they transform
//!
//! A transformed function takes a slice of tensors and returns a vector of tensors:
//! `Fn(&[Tensor]) -> Result<Vec<Tensor>>`. [`unary`] adapts a one-tensor function
//! `Fn(&Tensor) -> Result<Tensor>` to that form, and [`jacobian`] is the one-tensor Jacobian.
//! Transforms take the function by value; pass `&f` to keep using it. [`vmap`] returns a function
//! of the same form, and any transform can be called inside a function another transform
//! differentiates, so they compose:
//!
//! ```
//! use kiln_core::{func, Tensor};
//! // Per-example gradients of a loss: vmap over the batch of grad with respect to the weights.
//! let loss = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[1])?.sin()?.sum_all()?]);
//! let w = Tensor::from_slice(&[0.5f64, -1.0], [2])?;
//! let batch = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2])?;
//! let per_example = func::vmap(|xs: &[Tensor]| func::grad(&loss, xs), &[None, Some(0)], &[0]);
//! let g = per_example(&[w, batch])?;
//! // g[0] holds d loss / d w for each of the 3 rows: x cos(w x).
//! assert_eq!(g[0].dims(), &[3, 2]);
//! assert!((g[0].to_vec::<f64>()?[0] - 0.5f64.cos()).abs() < 1e-15);
//! # Ok::<(), kiln_core::Error>(())
//! ```
//!
//! # How they work
//!
//! Everything is built on the reverse-mode engine ([`crate::grad`]). A transform evaluates `f` on
//! graph nodes of its own standing for the primals, so it differentiates only through the
//! primals, never through tensors `f` captures, even when a captured tensor is the very tensor
//! passed as a primal (nested transforms each differentiate with respect to their own nodes,
//! which is what keeps `grad(|y| x * y)` inside a derivative with respect to `x` correct).
//!
//! Forward mode uses the double-vjp trick: with `u` a dummy cotangent, `J^T u` is linear in `u`,
//! and its vector-Jacobian product with the tangent `t`, taken with respect to `u`, is `J t`.
//! So [`jvp`] costs about two backward passes instead of a forward-mode pass, and [`jacfwd`] one
//! backward pass per input element (after one to build `J^T u`): forward-mode results without
//! forward-mode speed. [`jacrev`] costs one backward pass per output element; prefer it unless
//! the function has many more outputs than inputs.
//!
//! # Graphs and nesting
//!
//! The results are differentiable again (they carry a graph) exactly when grad mode is on and
//! `f` depends on something outside the transform that requires grad: a primal that requires
//! grad, or a captured tensor (a [`crate::Var`] parameter, say). Otherwise they are detached
//! constants and hold no graph. Transforms record their own graphs even inside
//! [`crate::no_grad`], as `torch.func.grad` does: there, the results are always constants.
//!
//! Primals must be float tensors (f16, bf16, f32 or f64). Shape or dtype mismatches between tangents (or cotangents) and
//! primals (or outputs), and misuse of [`vmap`]'s dimensions, are errors naming the transform and
//! the shapes, never panics.

use crate::autograd::{self, is_grad_enabled, set_grad_enabled};
use crate::{Error, Result, Tensor, TensorId};
use std::collections::HashSet;

/// Jacobian blocks: `jac[k][j]` is the Jacobian of output `k` with respect to input `j`, of shape
/// `outputs[k].shape ++ inputs[j].shape` (as `torch.func.jacrev` lays it out).
pub type Jacobian = Vec<Vec<Tensor>>;

/// One evaluation of `f` on graph nodes standing for the primals.
struct Traced {
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    /// True when the results must stay differentiable for an enclosing computation.
    nested: bool,
}

fn check_primal(p: &Tensor, i: usize, op: &'static str) -> Result<()> {
    if !p.dtype().is_float() {
        return Err(Error::value(
            op,
            format!(
                "primal {i} (shape {}) has dtype {}; only float tensors (f16, bf16, f32, f64) can be differentiated",
                p.shape(),
                p.dtype()
            ),
        ));
    }
    Ok(())
}

/// Checks that `given` (tangents or cotangents) match `like` (primals or outputs) in number,
/// shape and dtype.
fn check_like(op: &'static str, what: &str, of: &str, given: &[Tensor], like: &[Tensor]) -> Result<()> {
    if given.len() != like.len() {
        return Err(Error::value(op, format!("{} {what}s for {} {of}s", given.len(), like.len())));
    }
    for (i, (g, l)) in given.iter().zip(like).enumerate() {
        if g.shape() != l.shape() {
            return Err(Error::shape(
                op,
                format!("{what} {i} has shape {} but {of} {i} has shape {}", g.shape(), l.shape()),
            ));
        }
        if g.dtype() != l.dtype() {
            return Err(Error::value(
                op,
                format!(
                    "{what} {i} has dtype {} but {of} {i} has dtype {} (shape {})",
                    g.dtype(),
                    l.dtype(),
                    l.shape()
                ),
            ));
        }
    }
    Ok(())
}

/// True when the graph above `outputs` reaches a tensor that requires grad other than through
/// `inside` (the transform's own input nodes): a captured leaf, or a primal that was tracked.
fn depends_on_outside(outputs: &[Tensor], inside: &[Tensor]) -> bool {
    let inside: HashSet<TensorId> = inside.iter().map(Tensor::id).collect();
    let mut seen: HashSet<TensorId> = HashSet::new();
    let mut stack: Vec<&Tensor> = outputs.iter().filter(|t| t.requires_grad_flag()).collect();
    while let Some(t) = stack.pop() {
        if inside.contains(&t.id()) || !seen.insert(t.id()) {
            continue;
        }
        match t.op() {
            None => return true,
            Some(op) => op.for_each_input(|i| {
                if i.requires_grad_flag() {
                    stack.push(i);
                }
            }),
        }
    }
    false
}

fn trace<F>(f: &F, primals: &[Tensor], op: &'static str) -> Result<Traced>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let outer = is_grad_enabled();
    let mut nested = false;
    let mut inputs = Vec::with_capacity(primals.len());
    for (i, p) in primals.iter().enumerate() {
        check_primal(p, i, op)?;
        if outer && p.requires_grad_flag() {
            // A fresh node on top of the primal keeps the enclosing graph connected while giving
            // this transform an input of its own to differentiate with respect to.
            nested = true;
            inputs.push(p.alias());
        } else {
            inputs.push(p.detach().requires_grad(true)?);
        }
    }
    let outputs = {
        let _on = set_grad_enabled(true);
        f(&inputs)?
    };
    nested = nested || (outer && depends_on_outside(&outputs, &inputs));
    Ok(Traced { inputs, outputs, nested })
}

fn finish(t: &Tensor, nested: bool) -> Tensor {
    if nested {
        t.clone()
    } else {
        t.detach()
    }
}

/// `Σ_k J_k^T c_k` for every input (zeros for inputs no output depends on).
fn pull(outputs: &[Tensor], cotangents: &[Tensor], inputs: &[Tensor], create_graph: bool) -> Result<Vec<Tensor>> {
    let (outs, seeds): (Vec<Tensor>, Vec<Tensor>) = outputs
        .iter()
        .zip(cotangents)
        .filter(|(o, _)| o.requires_grad_flag())
        .map(|(o, c)| (o.clone(), c.clone()))
        .unzip();
    let grads = if outs.is_empty() {
        vec![None; inputs.len()]
    } else {
        autograd::grad(&outs, Some(&seeds), inputs, create_graph)?
    };
    grads
        .into_iter()
        .zip(inputs)
        .map(|(g, x)| match g {
            Some(g) => Ok(g),
            None => x.detach().zeros_like(),
        })
        .collect()
}

/// A one-hot tensor shaped and typed like `like`, with a 1 at flat (row-major) position `i`.
fn one_hot(like: &Tensor, i: usize) -> Result<Tensor> {
    let mut v = vec![0.0f64; like.elem_count()];
    v[i] = 1.0;
    Tensor::from_vec(v, like.dims())?.to_dtype(like.dtype())
}

fn block_shape(out: &Tensor, inp: &Tensor) -> Vec<usize> {
    out.dims().iter().chain(inp.dims()).copied().collect()
}

/// Checks, before the first pass, that every block of a Jacobian can exist: its size fits, and
/// its bytes can be reserved (reserved and released at once, so nothing is touched). The Jacobian
/// of a function of a million entries has 2^40; without this check its rows would fill memory one
/// pass at a time and end in the allocator's abort.
fn check_blocks(outputs: &[Tensor], primals: &[Tensor], op: &'static str) -> Result<()> {
    for o in outputs {
        for p in primals {
            let elem_bytes = o.dtype().size_in_bytes().max(p.dtype().size_in_bytes());
            let shape = crate::ops::out_shape(&block_shape(o, p), p.dtype(), op)?;
            let elems = shape.elem_count();
            let mut probe: Vec<u8> = Vec::new();
            probe
                .try_reserve_exact(elems.saturating_mul(elem_bytes))
                .map_err(|_| Error::Alloc { op, elems, elem_bytes })?;
        }
    }
    Ok(())
}

/// `J^T u` as a differentiable function of dummy cotangents `u`, for the double-vjp trick.
struct Transposed {
    /// One dummy per output, `None` for outputs that do not depend on the inputs.
    dummies: Vec<Option<Tensor>>,
    /// `J^T u` per input, `None` where it does not depend on `u` (and so, being linear in `u`, is
    /// zero).
    pulled: Vec<Option<Tensor>>,
}

impl Transposed {
    fn new(t: &Traced) -> Result<Transposed> {
        let dummies: Vec<Option<Tensor>> = t
            .outputs
            .iter()
            .map(|o| {
                if o.requires_grad_flag() {
                    Ok(Some(o.detach().zeros_like()?.requires_grad(true)?))
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_>>()?;
        let (outs, us): (Vec<Tensor>, Vec<Tensor>) = t
            .outputs
            .iter()
            .zip(&dummies)
            .filter_map(|(o, u)| u.as_ref().map(|u| (o.clone(), u.clone())))
            .unzip();
        let pulled = if outs.is_empty() {
            vec![None; t.inputs.len()]
        } else {
            autograd::grad(&outs, Some(&us), &t.inputs, true)?
                .into_iter()
                .map(|g| g.filter(Tensor::requires_grad_flag))
                .collect()
        };
        Ok(Transposed { dummies, pulled })
    }

    /// `J t` for each output, where `tangents[j]` is input `j`'s tangent (`None`: zero).
    fn push(&self, tangents: &[Option<Tensor>], outputs: &[Tensor], create_graph: bool) -> Result<Vec<Tensor>> {
        let (gs, seeds): (Vec<Tensor>, Vec<Tensor>) = self
            .pulled
            .iter()
            .zip(tangents)
            .filter_map(|(g, v)| Some((g.clone()?, v.clone()?)))
            .unzip();
        let us: Vec<Tensor> = self.dummies.iter().flatten().cloned().collect();
        let jv = if gs.is_empty() || us.is_empty() {
            vec![None; us.len()]
        } else {
            autograd::grad(&gs, Some(&seeds), &us, create_graph)?
        };
        let mut jv = jv.into_iter();
        outputs
            .iter()
            .zip(&self.dummies)
            .map(|(o, u)| match u.as_ref().and_then(|_| jv.next().flatten()) {
                Some(t) => Ok(t),
                None => o.detach().zeros_like(),
            })
            .collect()
    }
}

/// Adapts a one-tensor function to the slice form the transforms take. The adapted function
/// errors when called with other than one tensor.
///
/// ```
/// use kiln_core::{func, Tensor};
/// let x = Tensor::from_slice(&[1.0f64, 2.0], [2])?;
/// let (_, t) = func::jvp(func::unary(|x: &Tensor| x.square()), &[x.clone()], &[x.ones_like()?])?;
/// assert_eq!(t[0].to_vec::<f64>()?, vec![2.0, 4.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn unary<F>(f: F) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    move |xs: &[Tensor]| match xs {
        [x] => Ok(vec![f(x)?]),
        _ => Err(Error::value("unary", format!("the function takes one tensor, got {}", xs.len()))),
    }
}

/// The pullback [`vjp`] returns: maps cotangents of the outputs to cotangents of the primals.
pub struct VjpFn {
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    nested: bool,
}

impl VjpFn {
    /// `Σ_k J_k^T c_k` for each primal, with `cotangents[k]` shaped and typed like output `k`.
    /// Can be applied any number of times. The result is differentiable when the function's
    /// results were (see the [module docs](self)) or when a cotangent requires grad under grad mode.
    pub fn apply(&self, cotangents: &[Tensor]) -> Result<Vec<Tensor>> {
        check_like("vjp", "cotangent", "output", cotangents, &self.outputs)?;
        let create = self.nested || (is_grad_enabled() && cotangents.iter().any(Tensor::requires_grad_flag));
        pull(&self.outputs, cotangents, &self.inputs, create)
    }
}

impl std::fmt::Debug for VjpFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VjpFn")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

/// Evaluates `f` at `primals` and returns its outputs with the pullback, like `torch.func.vjp`
/// and `jax.vjp`.
///
/// ```
/// use kiln_core::{func, Tensor};
/// // f(x) = [x0 x1, sin x0]; J^T c = [c0 x1 + c1 cos x0, c0 x0]
/// let f = |xs: &[Tensor]| {
///     let x = &xs[0];
///     let (a, b) = (x.narrow(0, 0, 1)?, x.narrow(0, 1, 1)?);
///     Ok(vec![Tensor::cat(&[a.mul(&b)?, a.sin()?], 0)?])
/// };
/// let x = Tensor::from_slice(&[0.0f64, 3.0], [2])?;
/// let (out, pullback) = func::vjp(f, &[x])?;
/// assert_eq!(out[0].to_vec::<f64>()?, vec![0.0, 0.0]);
/// let g = pullback.apply(&[Tensor::from_slice(&[1.0f64, 2.0], [2])?])?;
/// assert_eq!(g[0].to_vec::<f64>()?, vec![5.0, 0.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn vjp<F>(f: F, primals: &[Tensor]) -> Result<(Vec<Tensor>, VjpFn)>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    vjp_named(&f, primals, "vjp")
}

fn vjp_named<F>(f: &F, primals: &[Tensor], op: &'static str) -> Result<(Vec<Tensor>, VjpFn)>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let t = trace(f, primals, op)?;
    let outs = t.outputs.iter().map(|o| finish(o, t.nested)).collect();
    Ok((
        outs,
        VjpFn {
            inputs: t.inputs,
            outputs: t.outputs,
            nested: t.nested,
        },
    ))
}

/// Evaluates `f` at `primals` and its Jacobian-vector product with `tangents` (one per primal,
/// same shape and dtype): returns `(outputs, J · tangents)`, like `torch.func.jvp` and `jax.jvp`.
///
/// Computed in reverse mode with the double-vjp trick (see the [module docs](self)): about two
/// backward passes.
///
/// ```
/// use kiln_core::{func, Tensor};
/// // d/dt exp(x + t v) at t = 0 is exp(x) v
/// let x = Tensor::from_slice(&[0.0f64, 1.0], [2])?;
/// let v = Tensor::from_slice(&[2.0f64, -1.0], [2])?;
/// let (out, tan) = func::jvp(|xs: &[Tensor]| Ok(vec![xs[0].exp()?]), &[x], &[v])?;
/// assert_eq!(tan[0].to_vec::<f64>()?, vec![2.0, -std::f64::consts::E]);
/// assert_eq!(out[0].to_vec::<f64>()?, vec![1.0, std::f64::consts::E]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn jvp<F>(f: F, primals: &[Tensor], tangents: &[Tensor]) -> Result<(Vec<Tensor>, Vec<Tensor>)>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    check_like("jvp", "tangent", "primal", tangents, primals)?;
    let t = trace(&f, primals, "jvp")?;
    let create = t.nested || (is_grad_enabled() && tangents.iter().any(Tensor::requires_grad_flag));
    let tr = Transposed::new(&t)?;
    let tangents: Vec<Option<Tensor>> = tangents.iter().cloned().map(Some).collect();
    let jv = tr.push(&tangents, &t.outputs, create)?;
    Ok((t.outputs.iter().map(|o| finish(o, t.nested)).collect(), jv))
}

/// The gradient of a function returning one one-element tensor, with respect to each primal, like
/// `torch.func.grad` (with `argnums` all the primals) and `jax.grad`.
///
/// ```
/// use kiln_core::{func, Tensor};
/// let f = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[1])?.sum_all()?]);
/// let a = Tensor::from_slice(&[1.0f64, 2.0], [2])?;
/// let b = Tensor::from_slice(&[3.0f64, 4.0], [2])?;
/// let g = func::grad(f, &[a, b])?;
/// assert_eq!(g[0].to_vec::<f64>()?, vec![3.0, 4.0]);
/// assert_eq!(g[1].to_vec::<f64>()?, vec![1.0, 2.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn grad<F>(f: F, primals: &[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    Ok(value_and_grad_named(&f, primals, "grad")?.1)
}

/// [`grad`] together with the function's value.
pub fn value_and_grad<F>(f: F, primals: &[Tensor]) -> Result<(Tensor, Vec<Tensor>)>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    value_and_grad_named(&f, primals, "value_and_grad")
}

fn value_and_grad_named<F>(f: &F, primals: &[Tensor], op: &'static str) -> Result<(Tensor, Vec<Tensor>)>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let t = trace(f, primals, op)?;
    let y = match t.outputs.as_slice() {
        [y] if y.elem_count() == 1 => y.clone(),
        outs => {
            let shapes: Vec<String> = outs.iter().map(|o| o.shape().to_string()).collect();
            return Err(Error::shape(
                op,
                format!(
                    "the function must return one one-element tensor, got {} output(s) of shape(s) [{}]",
                    outs.len(),
                    shapes.join(", ")
                ),
            ));
        }
    };
    let g = pull(std::slice::from_ref(&y), &[y.ones_like()?], &t.inputs, t.nested)?;
    Ok((finish(&y, t.nested), g))
}

/// The Jacobian of every output with respect to every primal, in reverse mode (one backward pass
/// per output element), like `torch.func.jacrev` and `jax.jacrev`. Block `[k][j]` has shape
/// `outputs[k].shape ++ primals[j].shape` (see [`Jacobian`]).
///
/// ```
/// use kiln_core::{func, Tensor};
/// // f(A, x) = A x: d/dx is A, d/dA[i, j] of (A x)[r] is δ(r, i) x[j]
/// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2])?;
/// let x = Tensor::from_slice(&[7.0f64, 8.0], [2])?;
/// let jac = func::jacrev(|xs: &[Tensor]| Ok(vec![xs[0].matmul(&xs[1])?]), &[a.clone(), x])?;
/// assert_eq!(jac[0][0].dims(), &[3, 3, 2]);
/// assert_eq!(jac[0][1].to_vec::<f64>()?, a.to_vec::<f64>()?);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn jacrev<F>(f: F, primals: &[Tensor]) -> Result<Jacobian>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    jacrev_named(&f, primals, "jacrev")
}

fn jacrev_named<F>(f: &F, primals: &[Tensor], op: &'static str) -> Result<Jacobian>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let t = trace(f, primals, op)?;
    check_blocks(&t.outputs, primals, op)?;
    let mut jac = Vec::with_capacity(t.outputs.len());
    for o in &t.outputs {
        let m = o.elem_count();
        if !o.requires_grad_flag() || m == 0 {
            let blocks = primals
                .iter()
                .map(|p| Tensor::zeros(block_shape(o, p), p.dtype()))
                .collect::<Result<_>>()?;
            jac.push(blocks);
            continue;
        }
        let mut rows: Vec<Vec<Tensor>> = primals.iter().map(|_| Vec::with_capacity(m)).collect();
        for i in 0..m {
            let seed = one_hot(o, i)?;
            let g = pull(std::slice::from_ref(o), &[seed], &t.inputs, t.nested)?;
            for (row, gj) in rows.iter_mut().zip(g) {
                row.push(gj);
            }
        }
        let blocks = rows
            .iter()
            .zip(primals)
            .map(|(r, p)| Tensor::stack(r, 0)?.reshape(block_shape(o, p)))
            .collect::<Result<_>>()?;
        jac.push(blocks);
    }
    Ok(jac)
}

/// The Jacobian as [`jacrev`] lays it out, built column by column from Jacobian-vector products
/// (like `torch.func.jacfwd` and `jax.jacfwd`). Each column costs one backward pass here (see the
/// [module docs](self)), so this is [`jacrev`]'s cost with the loop over inputs instead of
/// outputs.
///
/// ```
/// use kiln_core::{func, Tensor};
/// let x = Tensor::from_slice(&[1.0f64, 2.0], [2])?;
/// let jac = func::jacfwd(|xs: &[Tensor]| Ok(vec![xs[0].square()?.sum_all()?]), &[x])?;
/// assert_eq!(jac[0][0].to_vec::<f64>()?, vec![2.0, 4.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn jacfwd<F>(f: F, primals: &[Tensor]) -> Result<Jacobian>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let t = trace(&f, primals, "jacfwd")?;
    check_blocks(&t.outputs, primals, "jacfwd")?;
    let tr = Transposed::new(&t)?;
    let mut jac: Jacobian = t.outputs.iter().map(|_| Vec::with_capacity(primals.len())).collect();
    for (j, p) in primals.iter().enumerate() {
        let n = p.elem_count();
        let mut cols: Vec<Vec<Tensor>> = t.outputs.iter().map(|_| Vec::with_capacity(n)).collect();
        for e in 0..n {
            let mut tangents = vec![None; primals.len()];
            tangents[j] = Some(one_hot(p, e)?);
            for (col, c) in cols.iter_mut().zip(tr.push(&tangents, &t.outputs, t.nested)?) {
                col.push(c);
            }
        }
        for ((block, o), c) in jac.iter_mut().zip(&t.outputs).zip(cols) {
            block.push(if n == 0 {
                Tensor::zeros(block_shape(o, p), o.dtype())?
            } else {
                Tensor::stack(&c, o.rank() as isize)?.reshape(block_shape(o, p))?
            });
        }
    }
    Ok(jac)
}

/// The Jacobian of a one-tensor function: [`jacrev`] of [`unary`]`(f)`, of shape
/// `f(x).shape ++ x.shape`.
///
/// ```
/// use kiln_core::{func, Tensor};
/// let x = Tensor::from_slice(&[0.0f64, 0.0], [2])?;
/// // softmax at 0 over 2 entries: J = diag(p) - p pᵀ with p = 1/2
/// let j = func::jacobian(|x: &Tensor| x.softmax(0), &x)?;
/// assert_eq!(j.to_vec::<f64>()?, vec![0.25, -0.25, -0.25, 0.25]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn jacobian<F>(f: F, x: &Tensor) -> Result<Tensor>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    let jac = jacrev_named(&unary(f), std::slice::from_ref(x), "jacobian")?;
    jac.into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .ok_or_else(|| Error::value("jacobian", "the function returned no output"))
}

/// The Hessian of a function returning one one-element tensor: the [`jacrev`] of its [`grad`].
/// Block `[i][j]` holds the second derivatives with respect to primals `i` and `j`, of shape
/// `primals[i].shape ++ primals[j].shape`, like `torch.func.hessian` and `jax.hessian`.
///
/// ```
/// use kiln_core::{func, Tensor};
/// // f(x) = x0² x1: H = [[2 x1, 2 x0], [2 x0, 0]]
/// let f = |xs: &[Tensor]| {
///     let x = &xs[0];
///     Ok(vec![x.narrow(0, 0, 1)?.square()?.mul(&x.narrow(0, 1, 1)?)?.sum_all()?])
/// };
/// let h = func::hessian(f, &[Tensor::from_slice(&[3.0f64, 5.0], [2])?])?;
/// assert_eq!(h[0][0].to_vec::<f64>()?, vec![10.0, 6.0, 6.0, 0.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn hessian<F>(f: F, primals: &[Tensor]) -> Result<Jacobian>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let g = |xs: &[Tensor]| value_and_grad_named(&f, xs, "hessian").map(|(_, g)| g);
    jacrev_named(&g, primals, "hessian")
}

/// The Hessian-vector product `H v` of a function returning one one-element tensor, one tangent
/// per primal, without forming `H`: the vector-Jacobian product of its gradient (reverse over
/// reverse; the Hessian is symmetric, so `Hᵀ v = H v`). About two backward passes.
///
/// ```
/// use kiln_core::{func, Tensor};
/// // f(x) = Σ x³: H = diag(6x)
/// let x = Tensor::from_slice(&[1.0f64, 2.0], [2])?;
/// let v = Tensor::from_slice(&[1.0f64, -1.0], [2])?;
/// let hv = func::hvp(|xs: &[Tensor]| Ok(vec![xs[0].powf(3.0)?.sum_all()?]), &[x], &[v])?;
/// assert_eq!(hv[0].to_vec::<f64>()?, vec![6.0, -12.0]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn hvp<F>(f: F, primals: &[Tensor], tangents: &[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    check_like("hvp", "tangent", "primal", tangents, primals)?;
    let g = |xs: &[Tensor]| value_and_grad_named(&f, xs, "hvp").map(|(_, g)| g);
    let (_, pullback) = vjp_named(&g, primals, "hvp")?;
    pullback.apply(tangents)
}

/// Resolves a possibly negative dimension against `rank` (`rank` itself allowed when `append`).
fn resolve_dim(d: isize, rank: usize, append: bool) -> Option<usize> {
    let n = (rank + usize::from(append)) as isize;
    let r = if d < 0 { d + n } else { d };
    (0..n).contains(&r).then_some(r as usize)
}

/// Vectorises `f` over a batch dimension, like `torch.func.vmap` and `jax.vmap`: the returned
/// function maps `f` over dimension `in_dims[i]` of each argument `i` (`None`: the argument is
/// passed whole to every call, broadcast), and stacks output `k` of every call along dimension
/// `out_dims[k]` of the result.
///
/// A one-element `in_dims` (or `out_dims`) applies to every argument (or output), as an integer
/// does in `torch.func.vmap`. Negative dimensions count from the end (for `out_dims`, of the
/// stacked result).
///
/// The semantics are the simplest correct ones: the returned function calls `f` once per batch
/// element on the slices `select(in_dims[i], b)` and stacks the outputs, so it is exactly a loop,
/// with a loop's cost, and works for any `f` (including ones with data-dependent control flow and
/// other transforms). It is differentiable, so it composes with the other transforms.
///
/// Errors (at call time, naming `vmap` and the shapes): an `in_dims` or `out_dims` of the wrong
/// length or out of range, mapped arguments whose batch sizes differ, no mapped argument, an empty
/// batch (`f` must run once for the output shapes to be known), and calls of `f` that disagree in
/// the number, shapes or dtypes of their outputs.
///
/// ```
/// use kiln_core::{func, Tensor};
/// // A batched matrix-vector product from a single one: map over the rows of xs, share w.
/// let mv = |xs: &[Tensor]| Ok(vec![xs[0].matmul(&xs[1])?]);
/// let w = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 2.0], [2, 2])?;
/// let xs = Tensor::from_slice(&[1.0f64, 1.0, 3.0, 4.0, 5.0, 6.0], [3, 2])?;
/// let out = func::vmap(mv, &[None, Some(0)], &[1])(&[w, xs])?;
/// assert_eq!(out[0].to_vec2::<f64>()?, vec![vec![1.0, 3.0, 5.0], vec![2.0, 8.0, 12.0]]);
/// # Ok::<(), kiln_core::Error>(())
/// ```
pub fn vmap<F>(f: F, in_dims: &[Option<isize>], out_dims: &[isize]) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    let in_dims = in_dims.to_vec();
    let out_dims = out_dims.to_vec();
    move |args: &[Tensor]| vmap_call(&f, &in_dims, &out_dims, args)
}

fn vmap_call<F>(f: &F, in_dims: &[Option<isize>], out_dims: &[isize], args: &[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Vec<Tensor>>,
{
    if in_dims.len() != args.len() && in_dims.len() != 1 {
        return Err(Error::value(
            "vmap",
            format!(
                "{} in_dims for {} arguments (give one per argument, or one for all)",
                in_dims.len(),
                args.len()
            ),
        ));
    }
    let mut dims: Vec<Option<usize>> = Vec::with_capacity(args.len());
    // (argument, its batch dimension, batch size) of the first mapped argument.
    let mut batch: Option<(usize, usize, usize)> = None;
    for (i, a) in args.iter().enumerate() {
        let Some(d) = in_dims[if in_dims.len() == 1 { 0 } else { i }] else {
            dims.push(None);
            continue;
        };
        let r = resolve_dim(d, a.rank(), false).ok_or_else(|| {
            Error::shape(
                "vmap",
                format!("in_dims[{i}] = {d} is out of range for argument {i} of shape {}", a.shape()),
            )
        })?;
        let size = a.dims()[r];
        match batch {
            None => batch = Some((i, r, size)),
            Some((i0, r0, b)) if b != size => {
                return Err(Error::shape(
                    "vmap",
                    format!(
                        "batch sizes differ: argument {i0} (shape {}) has {b} along dimension {r0}, argument {i} (shape {}) has {size} along dimension {r}",
                        args[i0].shape(),
                        a.shape()
                    ),
                ))
            }
            Some(_) => {}
        }
        dims.push(Some(r));
    }
    let Some((i0, r0, b)) = batch else {
        return Err(Error::value(
            "vmap",
            format!("no argument is mapped (in_dims {in_dims:?} for {} arguments)", args.len()),
        ));
    };
    if b == 0 {
        return Err(Error::shape(
            "vmap",
            format!(
                "the batch is empty (argument {i0} of shape {} has size 0 along dimension {r0}); f must run at least once for its output shapes to be known",
                args[i0].shape()
            ),
        ));
    }
    let mut stacks: Vec<Vec<Tensor>> = Vec::new();
    for e in 0..b {
        let slice: Vec<Tensor> = args
            .iter()
            .zip(&dims)
            .map(|(a, d)| match d {
                Some(d) => a.select(*d as isize, e),
                None => Ok(a.clone()),
            })
            .collect::<Result<_>>()?;
        let outs = f(&slice)?;
        if e == 0 {
            stacks = outs.iter().map(|_| Vec::with_capacity(b)).collect();
        } else if outs.len() != stacks.len() {
            return Err(Error::value(
                "vmap",
                format!(
                    "f returned {} outputs for batch element {e} but {} for element 0",
                    outs.len(),
                    stacks.len()
                ),
            ));
        }
        for (k, (stack, o)) in stacks.iter_mut().zip(outs).enumerate() {
            if let Some(first) = stack.first() {
                if first.shape() != o.shape() || first.dtype() != o.dtype() {
                    return Err(Error::shape(
                        "vmap",
                        format!(
                            "output {k} has shape {} ({}) for batch element {e} but {} ({}) for element 0",
                            o.shape(),
                            o.dtype(),
                            first.shape(),
                            first.dtype()
                        ),
                    ));
                }
            }
            stack.push(o);
        }
    }
    if out_dims.len() != stacks.len() && out_dims.len() != 1 {
        return Err(Error::value(
            "vmap",
            format!(
                "{} out_dims for {} outputs (give one per output, or one for all)",
                out_dims.len(),
                stacks.len()
            ),
        ));
    }
    stacks
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let d = out_dims[if out_dims.len() == 1 { 0 } else { k }];
            let r = resolve_dim(d, s[0].rank(), true).ok_or_else(|| {
                Error::shape(
                    "vmap",
                    format!(
                        "out_dims[{k}] = {d} is out of range for output {k}: its per-element shape {} has {} dimensions, so the batch dimension goes in -{}..={}",
                        s[0].shape(),
                        s[0].rank(),
                        s[0].rank() + 1,
                        s[0].rank()
                    ),
                )
            })?;
            Tensor::stack(s, r as isize)
        })
        .collect()
}
