//! L-BFGS (`torch.optim.LBFGS`): a quasi-Newton method that re-evaluates the loss several times
//! per step through a closure, with PyTorch's fixed step size or its strong-Wolfe line search.
//!
//! The search direction, curvature history and line search work on the parameters flattened into
//! one `f64` vector (PyTorch uses the parameters' dtype), so f64 models follow PyTorch's
//! trajectory and f32 models get the same algorithm with more accurate bookkeeping.

use crate::optim::{scalar_loss, Optimizer};
use crate::{Error, Result};
use kiln_core::{no_grad, DType, Grads, Tensor, Var};
use std::collections::{HashMap, VecDeque};

/// How [`Lbfgs`] chooses the step length along the search direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineSearch {
    /// A fixed step `lr` (`line_search_fn=None`; the very first step is scaled down to at most
    /// `lr / ‖g‖₁`).
    #[default]
    None,
    /// PyTorch's `line_search_fn="strong_wolfe"` (bracketing with cubic interpolation, `c1 = 1e-4`,
    /// `c2 = 0.9`, at most 25 evaluations).
    StrongWolfe,
}

/// The curvature history and last iterate, kept across [`Lbfgs::step`] calls as PyTorch does.
#[derive(Debug, Default)]
struct History {
    func_evals: usize,
    n_iter: usize,
    d: Vec<f64>,
    t: f64,
    old_dirs: VecDeque<Vec<f64>>,
    old_stps: VecDeque<Vec<f64>>,
    ro: VecDeque<f64>,
    h_diag: f64,
    prev_flat_grad: Option<Vec<f64>>,
    prev_loss: f64,
}

/// `torch.optim.LBFGS` over one parameter list.
///
/// Each [`Lbfgs::step`] (also reachable as [`Optimizer::step_closure`], PyTorch's
/// `optimizer.step(closure)`) calls a closure that rebuilds the loss from the current parameters
/// (up to `max_eval` times) and returns the loss of the first evaluation. It implements
/// [`Optimizer`] like the first-order optimisers, so schedulers and checkpoints treat it the same;
/// the gradient-only [`Optimizer::step`] is one fixed-step iteration and so needs `max_iter = 1`
/// and no line search (anything more re-evaluates the loss, which needs the closure).
///
/// ```
/// use kiln_core::{DType, Tensor, Var};
/// use kiln_nn::optim::Lbfgs;
/// let x = Var::new(&Tensor::from_slice(&[3.0f64, -2.0], [2])?);
/// let target = Tensor::from_slice(&[1.0f64, 0.5], [2])?;
/// let mut opt = Lbfgs::new(vec![x.clone()], 1.0)?;
/// opt.step(&mut || Ok(x.tensor().sub(&target)?.square()?.sum_all()?))?;
/// let got = x.tensor().to_vec::<f64>()?;
/// assert!((got[0] - 1.0).abs() < 1e-6 && (got[1] - 0.5).abs() < 1e-6);
/// # Ok::<(), kiln_nn::Error>(())
/// ```
pub struct Lbfgs {
    vars: Vec<Var>,
    /// Step size (PyTorch default 1).
    pub lr: f64,
    /// Iterations per [`Lbfgs::step`], default 20.
    pub max_iter: usize,
    /// Loss evaluations per step; `None` means `max_iter · 5 / 4` (PyTorch's default).
    pub max_eval: Option<usize>,
    /// Stop when every gradient element is at most this in magnitude, default 1e-7.
    pub tolerance_grad: f64,
    /// Stop when the loss or the parameters change by less than this, default 1e-9.
    pub tolerance_change: f64,
    /// Curvature pairs kept, default 100.
    pub history_size: usize,
    /// Fixed step or strong-Wolfe line search.
    pub line_search: LineSearch,
    /// Maximise the closure's value instead of minimising it.
    pub maximize: bool,
    hist: History,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter()
        .fold(0.0, |m, v| if v.is_nan() || m.is_nan() { f64::NAN } else { m.max(v.abs()) })
}

/// `y += alpha · x`.
fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a += alpha * b;
    }
}

/// Minimiser of the cubic through `(x1, f1)` and `(x2, f2)` with slopes `g1`, `g2`, clamped to
/// `bounds` (default: between the two points); the midpoint when the cubic has no minimum.
fn cubic_interpolate(x1: f64, f1: f64, g1: f64, x2: f64, f2: f64, g2: f64, bounds: Option<(f64, f64)>) -> f64 {
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        // Python's min(max(·)) order: a NaN position yields the bound.
        let m = if min_pos > lo { min_pos } else { lo };
        if m < hi {
            m
        } else {
            hi
        }
    } else {
        (lo + hi) / 2.0
    }
}

impl Lbfgs {
    /// L-BFGS over `vars` with PyTorch's defaults.
    pub fn new(vars: Vec<Var>, lr: f64) -> Result<Lbfgs> {
        if lr.is_nan() || lr < 0.0 {
            return Err(Error::config("LBFGS", format!("invalid learning rate {lr}")));
        }
        if vars.is_empty() {
            return Err(Error::config("LBFGS", "optimizer got an empty parameter list"));
        }
        Ok(Lbfgs {
            vars,
            lr,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search: LineSearch::None,
            maximize: false,
            hist: History::default(),
        })
    }
    /// Sets `max_iter`.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Sets `max_eval`.
    pub fn max_eval(mut self, n: usize) -> Self {
        self.max_eval = Some(n);
        self
    }
    /// Sets `history_size`.
    pub fn history_size(mut self, n: usize) -> Self {
        self.history_size = n;
        self
    }
    /// Sets the gradient and change tolerances.
    pub fn tolerances(mut self, grad: f64, change: f64) -> Self {
        self.tolerance_grad = grad;
        self.tolerance_change = change;
        self
    }
    /// Sets the line search.
    pub fn line_search(mut self, ls: LineSearch) -> Self {
        self.line_search = ls;
        self
    }
    /// Maximises instead of minimising.
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
    /// The parameters.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    /// Loss evaluations so far (PyTorch's `state["func_evals"]`).
    pub fn func_evals(&self) -> usize {
        self.hist.func_evals
    }

    /// Evaluates the closure: the (sign-adjusted) loss and the flat gradient.
    fn evaluate(&self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<(f64, f64, Vec<f64>)> {
        let loss = closure()?;
        let value = scalar_loss("LBFGS::step", &loss)?;
        let flat = self.flat_grad(&loss.backward()?)?;
        Ok((value, if self.maximize { -value } else { value }, flat))
    }

    /// The gradients of all parameters in one vector (zeros where a parameter got none), negated
    /// when maximising.
    fn flat_grad(&self, grads: &Grads) -> Result<Vec<f64>> {
        let mut flat = Vec::new();
        for v in &self.vars {
            match v.grad(grads) {
                Some(g) => flat.extend(g.to_vec_f64()?),
                None => flat.extend(std::iter::repeat_n(0.0, v.elem_count())),
            }
        }
        if self.maximize {
            flat.iter_mut().for_each(|g| *g = -*g);
        }
        Ok(flat)
    }

    /// `p += t · d` for every parameter, `d` split in parameter order.
    fn add_dir(&self, t: f64, d: &[f64]) -> Result<()> {
        no_grad(|| {
            let mut off = 0;
            for v in &self.vars {
                let n = v.elem_count();
                let p = v.tensor();
                let step = Tensor::from_vec(d[off..off + n].to_vec(), p.shape().clone())?.to_dtype(p.dtype())?;
                v.set(&p.add_scaled(&step, t)?)?;
                off += n;
            }
            Ok(())
        })
    }

    fn snapshot(&self) -> Vec<Tensor> {
        self.vars.iter().map(|v| v.tensor().detach()).collect()
    }

    fn restore(&self, x: &[Tensor]) -> Result<()> {
        for (v, t) in self.vars.iter().zip(x) {
            v.set(t)?;
        }
        Ok(())
    }

    /// Loss and gradient at `x + t·d`, leaving the parameters at `x`.
    fn directional(&self, closure: &mut dyn FnMut() -> Result<Tensor>, x: &[Tensor], t: f64, d: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.add_dir(t, d)?;
        let (_, f, g) = self.evaluate(closure)?;
        self.restore(x)?;
        Ok((f, g))
    }

    /// PyTorch's `_strong_wolfe`: returns the accepted loss, gradient, step and evaluation count.
    #[allow(clippy::too_many_arguments)]
    fn strong_wolfe(
        &self,
        closure: &mut dyn FnMut() -> Result<Tensor>,
        x: &[Tensor],
        mut t: f64,
        d: &[f64],
        f: f64,
        g: Vec<f64>,
        gtd: f64,
    ) -> Result<(f64, Vec<f64>, f64, usize)> {
        const C1: f64 = 1e-4;
        const C2: f64 = 0.9;
        const MAX_LS: usize = 25;
        let tolerance_change = 1e-9;
        let d_norm = max_abs(d);
        let (mut f_new, mut g_new) = self.directional(closure, x, t, d)?;
        let mut evals = 1;
        let mut gtd_new = dot(&g_new, d);
        let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0, f, g.clone(), gtd);
        let mut done = false;
        let mut ls_iter = 0;
        // Bracket as (step, loss, gradient, directional derivative) pairs.
        let mut br: Vec<(f64, f64, Vec<f64>, f64)> = Vec::new();
        while ls_iter < MAX_LS {
            if f_new > f + C1 * t * gtd || (ls_iter > 1 && f_new >= f_prev) {
                br = vec![
                    (t_prev, f_prev, std::mem::take(&mut g_prev), gtd_prev),
                    (t, f_new, std::mem::take(&mut g_new), gtd_new),
                ];
                break;
            }
            if gtd_new.abs() <= -C2 * gtd {
                br = vec![(t, f_new, std::mem::take(&mut g_new), gtd_new)];
                done = true;
                break;
            }
            if gtd_new >= 0.0 {
                br = vec![
                    (t_prev, f_prev, std::mem::take(&mut g_prev), gtd_prev),
                    (t, f_new, std::mem::take(&mut g_new), gtd_new),
                ];
                break;
            }
            let min_step = t + 0.01 * (t - t_prev);
            let max_step = t * 10.0;
            let tmp = t;
            t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, Some((min_step, max_step)));
            t_prev = tmp;
            f_prev = f_new;
            g_prev = g_new;
            gtd_prev = gtd_new;
            (f_new, g_new) = self.directional(closure, x, t, d)?;
            evals += 1;
            gtd_new = dot(&g_new, d);
            ls_iter += 1;
        }
        if ls_iter == MAX_LS {
            // PyTorch leaves the directional derivatives unset here; the zoom loop never runs.
            br = vec![(0.0, f, g, f64::NAN), (t, f_new, g_new, f64::NAN)];
        }
        let mut insuf_progress = false;
        let (mut low, mut high) = if br[0].1 <= br[br.len() - 1].1 { (0, 1) } else { (1, 0) };
        while !done && ls_iter < MAX_LS {
            if (br[1].0 - br[0].0).abs() * d_norm < tolerance_change {
                break;
            }
            t = cubic_interpolate(br[0].0, br[0].1, br[0].3, br[1].0, br[1].1, br[1].3, None);
            let (bmax, bmin) = (br[0].0.max(br[1].0), br[0].0.min(br[1].0));
            let eps = 0.1 * (bmax - bmin);
            if (bmax - t).min(t - bmin) < eps {
                if insuf_progress || t >= bmax || t <= bmin {
                    t = if (t - bmax).abs() < (t - bmin).abs() {
                        bmax - eps
                    } else {
                        bmin + eps
                    };
                    insuf_progress = false;
                } else {
                    insuf_progress = true;
                }
            } else {
                insuf_progress = false;
            }
            let (fn_, gn) = self.directional(closure, x, t, d)?;
            evals += 1;
            let gtdn = dot(&gn, d);
            ls_iter += 1;
            if fn_ > f + C1 * t * gtd || fn_ >= br[low].1 {
                br[high] = (t, fn_, gn, gtdn);
                (low, high) = if br[0].1 <= br[1].1 { (0, 1) } else { (1, 0) };
            } else {
                if gtdn.abs() <= -C2 * gtd {
                    done = true;
                } else if gtdn * (br[high].0 - br[low].0) >= 0.0 {
                    br[high] = br[low].clone();
                }
                br[low] = (t, fn_, gn, gtdn);
            }
        }
        let (t, f_new, g_new, _) = br.swap_remove(low);
        Ok((f_new, g_new, t, evals))
    }

    /// One optimisation step (PyTorch's `optimizer.step(closure)`): up to `max_iter` L-BFGS
    /// iterations, each re-evaluating `closure`, which must rebuild the loss from the current
    /// parameter values (gradients are taken here). Returns the loss of the first evaluation.
    pub fn step(&mut self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<f64> {
        let (orig_loss, loss, flat_grad) = self.evaluate(closure)?;
        self.hist.func_evals += 1;
        self.iterate(Some(closure), loss, flat_grad)?;
        Ok(orig_loss)
    }

    /// The iterations of one step from the first evaluation's (sign-adjusted) `loss` and
    /// `flat_grad`. Without a closure only what needs no re-evaluation is possible: one
    /// fixed-step iteration (the caller checks `max_iter == 1` and no line search).
    fn iterate(&mut self, mut closure: Option<&mut dyn FnMut() -> Result<Tensor>>, mut loss: f64, mut flat_grad: Vec<f64>) -> Result<()> {
        let (lr, max_iter, tol_grad, tol_change, history_size) = (
            self.lr,
            self.max_iter,
            self.tolerance_grad,
            self.tolerance_change,
            self.history_size,
        );
        let max_eval = self.max_eval.unwrap_or(max_iter * 5 / 4);
        let mut current_evals = 1;
        if max_abs(&flat_grad) <= tol_grad {
            return Ok(());
        }
        let no_closure = || {
            Error::config(
                "LBFGS::step",
                "re-evaluating the loss needs a closure (Lbfgs::step or Optimizer::step_closure)",
            )
        };
        let mut h = std::mem::take(&mut self.hist);
        let result = (|| -> Result<()> {
            let mut n_iter = 0;
            while n_iter < max_iter {
                n_iter += 1;
                h.n_iter += 1;
                if h.n_iter == 1 {
                    h.d = flat_grad.iter().map(|g| -g).collect();
                    h.old_dirs.clear();
                    h.old_stps.clear();
                    h.ro.clear();
                    h.h_diag = 1.0;
                } else {
                    let prev = h.prev_flat_grad.as_ref().expect("set by the previous iteration");
                    let y: Vec<f64> = flat_grad.iter().zip(prev).map(|(a, b)| a - b).collect();
                    let s: Vec<f64> = h.d.iter().map(|v| v * h.t).collect();
                    let ys = dot(&y, &s);
                    // Only pairs with positive curvature keep the inverse-Hessian estimate positive definite.
                    if ys > 1e-10 {
                        if h.old_dirs.len() == history_size {
                            h.old_dirs.pop_front();
                            h.old_stps.pop_front();
                            h.ro.pop_front();
                        }
                        h.h_diag = ys / dot(&y, &y);
                        h.old_dirs.push_back(y);
                        h.old_stps.push_back(s);
                        h.ro.push_back(1.0 / ys);
                    }
                    // Two-loop recursion: d = −H·g.
                    let num_old = h.old_dirs.len();
                    let mut al = vec![0.0; num_old];
                    let mut q: Vec<f64> = flat_grad.iter().map(|g| -g).collect();
                    for i in (0..num_old).rev() {
                        al[i] = dot(&h.old_stps[i], &q) * h.ro[i];
                        axpy(&mut q, -al[i], &h.old_dirs[i]);
                    }
                    let mut r: Vec<f64> = q.iter().map(|v| v * h.h_diag).collect();
                    for (i, a) in al.iter().enumerate() {
                        let be_i = dot(&h.old_dirs[i], &r) * h.ro[i];
                        axpy(&mut r, a - be_i, &h.old_stps[i]);
                    }
                    h.d = r;
                }
                h.prev_flat_grad = Some(flat_grad.clone());
                h.prev_loss = loss;
                h.t = if h.n_iter == 1 {
                    let l1: f64 = flat_grad.iter().map(|g| g.abs()).sum();
                    (1.0f64).min(1.0 / l1) * lr
                } else {
                    lr
                };
                let gtd = dot(&flat_grad, &h.d);
                if gtd > -tol_change {
                    break;
                }
                let mut ls_evals = 0;
                let mut opt_cond = false;
                match self.line_search {
                    LineSearch::StrongWolfe => {
                        let x = self.snapshot();
                        let closure = closure.as_deref_mut().ok_or_else(no_closure)?;
                        let (l, g, t, evals) = self.strong_wolfe(closure, &x, h.t, &h.d, loss, flat_grad.clone(), gtd)?;
                        (loss, flat_grad, h.t, ls_evals) = (l, g, t, evals);
                        self.add_dir(h.t, &h.d)?;
                        opt_cond = max_abs(&flat_grad) <= tol_grad;
                    }
                    LineSearch::None => {
                        self.add_dir(h.t, &h.d)?;
                        if n_iter != max_iter {
                            let closure = closure.as_deref_mut().ok_or_else(no_closure)?;
                            let (_, l, g) = self.evaluate(closure)?;
                            (loss, flat_grad) = (l, g);
                            opt_cond = max_abs(&flat_grad) <= tol_grad;
                            ls_evals = 1;
                        }
                    }
                }
                current_evals += ls_evals;
                h.func_evals += ls_evals;
                if n_iter == max_iter || current_evals >= max_eval || opt_cond {
                    break;
                }
                if max_abs(&h.d) * h.t.abs() <= tol_change {
                    break;
                }
                if (loss - h.prev_loss).abs() < tol_change {
                    break;
                }
            }
            Ok(())
        })();
        self.hist = h;
        result
    }

    /// The flat length of all parameters, which every saved history vector must have.
    fn flat_len(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }
}

/// `[k, n]` from `k` vectors of length `n`.
fn stack(rows: &VecDeque<Vec<f64>>, n: usize) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        rows.iter().flatten().copied().collect::<Vec<f64>>(),
        [rows.len(), n],
    )?)
}

impl Optimizer for Lbfgs {
    /// One L-BFGS iteration with the fixed step from `grads`, which is exactly PyTorch's
    /// `LBFGS(max_iter=1, line_search_fn=None).step(closure)`. More iterations or the line search
    /// re-evaluate the loss, so they are an error here: use [`Lbfgs::step`] with a closure.
    fn step(&mut self, grads: &Grads) -> Result<()> {
        if self.max_iter != 1 || self.line_search != LineSearch::None {
            return Err(Error::config(
                "LBFGS::step",
                format!(
                    "a step from gradients alone is one fixed-step iteration, but max_iter is {} and the line search {:?}; \
                     pass a closure (Lbfgs::step or Optimizer::step_closure)",
                    self.max_iter, self.line_search
                ),
            ));
        }
        let flat = self.flat_grad(grads)?;
        self.hist.func_evals += 1;
        // The loss value only feeds the change tolerance between iterations of one step, which a
        // single iteration never reaches.
        self.iterate(None, 0.0, flat)
    }
    fn step_closure(&mut self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<f64> {
        Lbfgs::step(self, closure)
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr
    }
    fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }
    /// PyTorch's LBFGS state names: `func_evals`, `n_iter`, `d`, `t`, `H_diag`, `prev_loss`,
    /// `prev_flat_grad` and the history `old_dirs` / `old_stps` `[k, n]` and `ro` `[k]` (the
    /// vectors over all parameters flattened, `n` elements; history tensors only once non-empty).
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let h = &self.hist;
        let n = self.flat_len();
        let f64s = |v: &[f64]| Tensor::from_vec(v.to_vec(), [v.len()]).expect("a vector's shape is its length");
        let mut out = vec![
            ("func_evals".to_string(), Tensor::scalar(h.func_evals as i64)),
            ("n_iter".to_string(), Tensor::scalar(h.n_iter as i64)),
            ("t".to_string(), Tensor::scalar(h.t)),
            ("H_diag".to_string(), Tensor::scalar(h.h_diag)),
            ("prev_loss".to_string(), Tensor::scalar(h.prev_loss)),
        ];
        if h.d.len() == n {
            out.push(("d".to_string(), f64s(&h.d)));
        }
        if let Some(g) = &h.prev_flat_grad {
            out.push(("prev_flat_grad".to_string(), f64s(g)));
        }
        if !h.ro.is_empty() {
            out.push(("old_dirs".to_string(), stack(&h.old_dirs, n).expect("k rows of n")));
            out.push(("old_stps".to_string(), stack(&h.old_stps, n).expect("k rows of n")));
            out.push(("ro".to_string(), f64s(&h.ro.iter().copied().collect::<Vec<f64>>())));
        }
        out
    }
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        const OP: &str = "LBFGS::load_state_tensors";
        let n = self.flat_len();
        if let Some(bad) = state.keys().find(|k| {
            ![
                "func_evals",
                "n_iter",
                "t",
                "H_diag",
                "prev_loss",
                "d",
                "prev_flat_grad",
                "old_dirs",
                "old_stps",
                "ro",
            ]
            .contains(&k.as_str())
        }) {
            return Err(Error::config(OP, format!("unknown state tensor `{bad}`")));
        }
        // Each tensor must have the shape the parameters imply, checked before anything changes.
        let vec_of = |name: &str, dims: &[usize]| -> Result<Option<Vec<f64>>> {
            match state.get(name) {
                None => Ok(None),
                Some(t) if t.dims() == dims => Ok(Some(t.to_dtype(DType::F64)?.to_vec_f64()?)),
                Some(t) => Err(Error::config(
                    OP,
                    format!("`{name}` has shape {}, the {n} parameter elements need {dims:?}", t.shape()),
                )),
            }
        };
        let count = |name: &str| -> Result<usize> { Ok(vec_of(name, &[])?.map_or(0, |v| v[0] as usize)) };
        let scalar = |name: &str, default: f64| -> Result<f64> { Ok(vec_of(name, &[])?.map_or(default, |v| v[0])) };
        let k = state.get("ro").map_or(0, |t| t.dims().first().copied().unwrap_or(0));
        let rows = |name: &str| -> Result<VecDeque<Vec<f64>>> {
            Ok(vec_of(name, &[k, n])?.map_or_else(VecDeque::new, |v| v.chunks(n.max(1)).map(<[f64]>::to_vec).collect()))
        };
        let hist = History {
            func_evals: count("func_evals")?,
            n_iter: count("n_iter")?,
            d: vec_of("d", &[n])?.unwrap_or_default(),
            t: scalar("t", 0.0)?,
            old_dirs: rows("old_dirs")?,
            old_stps: rows("old_stps")?,
            ro: vec_of("ro", &[k])?.map_or_else(VecDeque::new, VecDeque::from),
            h_diag: scalar("H_diag", 0.0)?,
            prev_flat_grad: vec_of("prev_flat_grad", &[n])?,
            prev_loss: scalar("prev_loss", 0.0)?,
        };
        if hist.old_dirs.len() != k || hist.old_stps.len() != k {
            return Err(Error::config(
                OP,
                format!(
                    "`ro` holds {k} curvature pairs but `old_dirs`/`old_stps` hold {}/{}",
                    hist.old_dirs.len(),
                    hist.old_stps.len()
                ),
            ));
        }
        self.hist = hist;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_interpolation_finds_the_quadratic_minimum() {
        // f = (x - 1)², sampled at 0 and 3: the cubic through it is the parabola itself.
        let x = cubic_interpolate(0.0, 1.0, -2.0, 3.0, 4.0, 4.0, None);
        assert!((x - 1.0).abs() < 1e-12, "{x}");
        // Clamped to the bounds, and the midpoint when there is no real minimum.
        assert_eq!(cubic_interpolate(0.0, 1.0, -2.0, 3.0, 4.0, 4.0, Some((2.0, 3.0))), 2.0);
        assert_eq!(cubic_interpolate(0.0, 0.0, 1.0, 1.0, 2.0 / 3.0, 1.0, None), 0.5);
    }

    #[test]
    fn maximize_climbs() {
        let x = Var::new(&Tensor::from_slice(&[0.0f64], [1]).unwrap());
        let mut opt = Lbfgs::new(vec![x.clone()], 1.0).unwrap().maximize(true);
        // −(x − 2)² peaks at 2.
        opt.step(&mut || Ok(x.tensor().sub_scalar(2.0)?.square()?.neg()?.sum_all()?))
            .unwrap();
        assert!((x.tensor().to_vec::<f64>().unwrap()[0] - 2.0).abs() < 1e-6);
    }
}
