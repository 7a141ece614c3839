//! `kiln_core::func`: the function transforms against central finite differences in f64, against
//! each other (jacrev vs jacfwd, hessian vs jacfwd of jacrev, hvp vs H v, vmap vs a loop), and
//! against torch.func on a 100-parameter MLP (`fixtures/func.json`, written by
//! `scripts/gen_func_fixtures.py`).

mod common;

use common::{floats, shape, tensor_of};
use kiln_core::{func, no_grad, DType, Result, Tensor};
use serde_json::Value;

type Fun = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>;

fn t(data: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_slice(data, dims).unwrap()
}

/// Deterministic, irregular values (no RNG, so a failure reproduces exactly).
fn fill(n: usize, a: f64, b: f64) -> Vec<f64> {
    (0..n).map(|i| (a * i as f64 + b).sin()).collect()
}

fn filled(dims: &[usize], a: f64, b: f64) -> Tensor {
    t(&fill(dims.iter().product(), a, b), dims)
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.to_vec_f64().unwrap()
}

/// Asserts `|got - want| <= tol (1 + |want|)` elementwise; returns the largest absolute error.
fn close(what: &str, got: &[f64], want: &[f64], tol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(err <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w} (|diff| {err:e})");
        worst = worst.max(err);
    }
    worst
}

/// The primals with flat element `e` of input `j` moved by `d`.
fn shifted(primals: &[Tensor], j: usize, e: usize, d: f64) -> Vec<Tensor> {
    let mut xs = primals.to_vec();
    let mut v = vals(&xs[j]);
    v[e] += d;
    xs[j] = Tensor::from_vec(v, xs[j].dims()).unwrap();
    xs
}

/// Central-difference Jacobian of output `k` with respect to input `j`, row-major
/// `[output elements, input elements]` (the flat layout of jacrev's block).
fn fd_jac(f: &Fun, primals: &[Tensor], k: usize, j: usize) -> Vec<f64> {
    let h = 1e-6;
    let m = f(primals).unwrap()[k].elem_count();
    let n = primals[j].elem_count();
    let mut jac = vec![0.0; m * n];
    for e in 0..n {
        let up = vals(&f(&shifted(primals, j, e, h)).unwrap()[k]);
        let dn = vals(&f(&shifted(primals, j, e, -h)).unwrap()[k]);
        for (r, (u, d)) in up.iter().zip(&dn).enumerate() {
            jac[r * n + e] = (u - d) / (2.0 * h);
        }
    }
    jac
}

/// Second differences of a scalar `f`: the Hessian block of inputs `i` and `j`, row-major, from
/// values of `f` alone (no autodiff anywhere).
fn fd_hess(f: &Fun, primals: &[Tensor], i: usize, j: usize) -> Vec<f64> {
    let h = 1e-4;
    let at = |a: usize, sa: f64, b: usize, sb: f64| {
        let xs = shifted(&shifted(primals, i, a, sa), j, b, sb);
        f(&xs).unwrap()[0].item().unwrap()
    };
    let (ni, nj) = (primals[i].elem_count(), primals[j].elem_count());
    let mut hess = vec![0.0; ni * nj];
    for a in 0..ni {
        for b in 0..nj {
            hess[a * nj + b] = (at(a, h, b, h) - at(a, h, b, -h) - at(a, -h, b, h) + at(a, -h, b, -h)) / (4.0 * h * h);
        }
    }
    hess
}

// ------------------------------------------------------------------ the functions under test

/// Vector-valued functions of several inputs and outputs, with primals to evaluate them at.
fn vector_cases() -> Vec<(&'static str, Box<Fun>, Vec<Tensor>)> {
    vec![
        (
            "elementwise",
            Box::new(|xs: &[Tensor]| {
                let x = &xs[0];
                Ok(vec![x.sin()?.mul(&x.exp()?)?.add(&x.square()?)?])
            }),
            vec![filled(&[2, 3], 0.7, 0.1)],
        ),
        (
            "matmul",
            Box::new(|xs: &[Tensor]| {
                let p = xs[0].matmul(&xs[1])?;
                Ok(vec![p.clone(), p.tanh()?.sum(&[1], false)?])
            }),
            vec![filled(&[3, 4], 1.1, 0.3), filled(&[4, 2], 0.6, -0.4)],
        ),
        (
            "softmax",
            Box::new(|xs: &[Tensor]| Ok(vec![xs[0].softmax(-1)?, xs[0].log_softmax(0)?])),
            vec![filled(&[2, 4], 1.9, 0.2).mul_scalar(2.0).unwrap()],
        ),
        (
            "reductions",
            Box::new(|xs: &[Tensor]| {
                let x = &xs[0];
                Ok(vec![
                    x.mean(&[0], false)?,
                    x.sum_all()?,
                    x.logsumexp(&[1], false)?,
                    x.norm()?,
                    x.var(&[1], 1, false)?,
                    x.max(&[1], false)?,
                ])
            }),
            vec![filled(&[3, 4], 2.3, 0.5)],
        ),
    ]
}

/// Functions returning one scalar, for grad, hessian and hvp.
fn scalar_cases() -> Vec<(&'static str, Box<Fun>, Vec<Tensor>)> {
    let w = filled(&[3, 4], 0.8, 1.0);
    let y = t(&[0.2, 0.5, 0.3], &[3]);
    vec![
        (
            "elementwise",
            Box::new(|xs: &[Tensor]| Ok(vec![xs[0].sin()?.mul(&xs[0].square()?)?.sum_all()?])),
            vec![filled(&[5], 0.9, 0.4)],
        ),
        (
            "matmul",
            Box::new(|xs: &[Tensor]| {
                let z = xs[0].matmul(&xs[1])?;
                Ok(vec![z.tanh()?.square()?.sum_all()?.add(&z.logsumexp(&[0], false)?)?])
            }),
            vec![filled(&[3, 4], 1.3, 0.2), filled(&[4], 0.5, 0.9)],
        ),
        (
            "softmax",
            Box::new(move |xs: &[Tensor]| Ok(vec![y.mul(&w.matmul(&xs[0])?.log_softmax(0)?)?.sum_all()?.neg()?])),
            vec![filled(&[4], 1.7, 0.1)],
        ),
        (
            "reductions",
            Box::new(|xs: &[Tensor]| {
                let x = &xs[0];
                Ok(vec![x.norm()?.mul(&x.mean_all()?)?.add(&x.var(&[1], 1, false)?.sum_all()?)?])
            }),
            vec![filled(&[2, 3], 1.4, 0.6)],
        ),
    ]
}

fn tangents_for(primals: &[Tensor], seed: f64) -> Vec<Tensor> {
    primals
        .iter()
        .enumerate()
        .map(|(j, p)| filled(p.dims(), 0.77, seed + j as f64))
        .collect()
}

// ------------------------------------------------------------------ finite differences

#[test]
fn vjp_matches_finite_differences() {
    for (name, f, xs) in vector_cases() {
        let (outs, pullback) = func::vjp(&f, &xs).unwrap();
        let direct = f(&xs).unwrap();
        for (o, d) in outs.iter().zip(&direct) {
            assert_eq!(vals(o), vals(d), "{name}: vjp's outputs are f's");
        }
        let cots: Vec<Tensor> = direct
            .iter()
            .enumerate()
            .map(|(k, o)| filled(o.dims(), 1.3, 0.5 + k as f64))
            .collect();
        let got = pullback.apply(&cots).unwrap();
        for (j, x) in xs.iter().enumerate() {
            let n = x.elem_count();
            let mut want = vec![0.0; n];
            for (k, c) in cots.iter().enumerate() {
                let jac = fd_jac(&f, &xs, k, j);
                for (r, cr) in vals(c).iter().enumerate() {
                    for (e, w) in want.iter_mut().enumerate() {
                        *w += jac[r * n + e] * cr;
                    }
                }
            }
            assert_eq!(got[j].dims(), x.dims());
            close(&format!("{name} vjp input {j}"), &vals(&got[j]), &want, 1e-7);
        }
    }
}

#[test]
fn jvp_matches_finite_differences() {
    for (name, f, xs) in vector_cases() {
        let vs = tangents_for(&xs, 0.3);
        let (outs, tans) = func::jvp(&f, &xs, &vs).unwrap();
        let h = 1e-6;
        let moved = |s: f64| -> Vec<Tensor> {
            let xs: Vec<Tensor> = xs.iter().zip(&vs).map(|(x, v)| x.add(&v.mul_scalar(s).unwrap()).unwrap()).collect();
            f(&xs).unwrap()
        };
        let (up, dn) = (moved(h), moved(-h));
        for k in 0..outs.len() {
            assert_eq!(vals(&outs[k]), vals(&f(&xs).unwrap()[k]), "{name}: jvp's outputs are f's");
            let want: Vec<f64> = vals(&up[k]).iter().zip(vals(&dn[k])).map(|(u, d)| (u - d) / (2.0 * h)).collect();
            assert_eq!(tans[k].dims(), outs[k].dims());
            close(&format!("{name} jvp output {k}"), &vals(&tans[k]), &want, 1e-7);
        }
    }
}

#[test]
fn jacrev_and_jacfwd_match_finite_differences() {
    for (name, f, xs) in vector_cases() {
        let outs = f(&xs).unwrap();
        let rev = func::jacrev(&f, &xs).unwrap();
        let fwd = func::jacfwd(&f, &xs).unwrap();
        assert_eq!(rev.len(), outs.len());
        assert_eq!(fwd.len(), outs.len());
        for (k, o) in outs.iter().enumerate() {
            for (j, x) in xs.iter().enumerate() {
                let want_dims: Vec<usize> = o.dims().iter().chain(x.dims()).copied().collect();
                assert_eq!(rev[k][j].dims(), want_dims.as_slice(), "{name} jacrev block {k},{j}");
                assert_eq!(fwd[k][j].dims(), want_dims.as_slice(), "{name} jacfwd block {k},{j}");
                let fd = fd_jac(&f, &xs, k, j);
                close(&format!("{name} jacrev {k},{j}"), &vals(&rev[k][j]), &fd, 1e-7);
                close(
                    &format!("{name} jacfwd vs jacrev {k},{j}"),
                    &vals(&fwd[k][j]),
                    &vals(&rev[k][j]),
                    1e-13,
                );
            }
        }
    }
}

#[test]
fn grad_and_value_and_grad_match_finite_differences() {
    for (name, f, xs) in scalar_cases() {
        let (value, g) = func::value_and_grad(&f, &xs).unwrap();
        assert_eq!(value.item().unwrap(), f(&xs).unwrap()[0].item().unwrap());
        let g2 = func::grad(&f, &xs).unwrap();
        for j in 0..xs.len() {
            close(&format!("{name} grad {j}"), &vals(&g[j]), &fd_jac(&f, &xs, 0, j), 1e-7);
            assert_eq!(vals(&g[j]), vals(&g2[j]));
        }
    }
}

#[test]
fn hessian_matches_second_differences_and_is_symmetric() {
    for (name, f, xs) in scalar_cases() {
        let h = func::hessian(&f, &xs).unwrap();
        for (i, xi) in xs.iter().enumerate() {
            for (j, xj) in xs.iter().enumerate() {
                let want_dims: Vec<usize> = xi.dims().iter().chain(xj.dims()).copied().collect();
                assert_eq!(h[i][j].dims(), want_dims.as_slice(), "{name} block {i},{j}");
                close(&format!("{name} hessian {i},{j}"), &vals(&h[i][j]), &fd_hess(&f, &xs, i, j), 1e-5);
                let (ni, nj) = (xi.elem_count(), xj.elem_count());
                let (hij, hji) = (vals(&h[i][j]), vals(&h[j][i]));
                let transposed: Vec<f64> = (0..ni * nj).map(|q| hji[(q % nj) * ni + q / nj]).collect();
                close(&format!("{name} hessian symmetry {i},{j}"), &hij, &transposed, 1e-13);
            }
        }
    }
}

#[test]
fn hvp_matches_the_hessian_and_differences_of_the_gradient() {
    for (name, f, xs) in scalar_cases() {
        let vs = tangents_for(&xs, 1.1);
        let hv = func::hvp(&f, &xs, &vs).unwrap();
        let h = func::hessian(&f, &xs).unwrap();
        let step = 1e-5;
        let grad_at = |s: f64| {
            let moved: Vec<Tensor> = xs.iter().zip(&vs).map(|(x, v)| x.add(&v.mul_scalar(s).unwrap()).unwrap()).collect();
            func::grad(&f, &moved).unwrap()
        };
        let (up, dn) = (grad_at(step), grad_at(-step));
        for (i, xi) in xs.iter().enumerate() {
            let mut want = vec![0.0; xi.elem_count()];
            for (j, v) in vs.iter().enumerate() {
                let hij = vals(&h[i][j]);
                let v = vals(v);
                for (a, w) in want.iter_mut().enumerate() {
                    *w += v.iter().enumerate().map(|(b, vb)| hij[a * v.len() + b] * vb).sum::<f64>();
                }
            }
            close(&format!("{name} hvp vs H v {i}"), &vals(&hv[i]), &want, 1e-12);
            let fd: Vec<f64> = vals(&up[i]).iter().zip(vals(&dn[i])).map(|(u, d)| (u - d) / (2.0 * step)).collect();
            close(&format!("{name} hvp vs differences of grad {i}"), &vals(&hv[i]), &fd, 1e-6);
        }
    }
}

// ------------------------------------------------------------------ shapes, zeros, composition

#[test]
fn jacobian_blocks_put_output_dims_before_input_dims() {
    let x0 = t(&[1.5], &[]);
    let sq = func::jacobian(|x: &Tensor| x.square(), &x0).unwrap();
    assert_eq!(sq.dims(), &[] as &[usize]);
    assert_eq!(sq.item().unwrap(), 3.0);
    let x = filled(&[2, 3], 0.4, 0.0);
    let to_scalar = func::jacobian(|x: &Tensor| x.square()?.sum_all(), &x).unwrap();
    assert_eq!(to_scalar.dims(), &[2, 3]);
    assert_eq!(vals(&to_scalar), vals(&x.mul_scalar(2.0).unwrap()));
    let from_scalar = func::jacobian(|x: &Tensor| x.mul(&t(&[1.0, 2.0, 3.0, 4.0], &[4])), &x0).unwrap();
    assert_eq!(from_scalar.dims(), &[4]);
    assert_eq!(vals(&from_scalar), vec![1.0, 2.0, 3.0, 4.0]);
    // The identity's Jacobian is the identity, laid out [2, 3, 2, 3].
    let id = func::jacobian(|x: &Tensor| Ok(x.clone()), &x).unwrap();
    assert_eq!(id.dims(), &[2, 3, 2, 3]);
    assert_eq!(vals(&id), vals(&Tensor::eye(6, DType::F64).unwrap()));
    let p = t(&[0.0, 0.0, 0.0], &[3]);
    let soft = func::jacobian(|x: &Tensor| x.softmax(0), &p).unwrap();
    let third = 1.0 / 3.0;
    let want: Vec<f64> = (0..9)
        .map(|q| if q % 4 == 0 { third - third * third } else { -third * third })
        .collect();
    close("softmax jacobian", &vals(&soft), &want, 1e-15);
}

#[test]
fn outputs_and_inputs_without_a_path_get_zeros() {
    let constant = t(&[7.0, 8.0], &[2]);
    let f = move |xs: &[Tensor]| Ok(vec![xs[0].sin()?, constant.clone(), xs[0].argmax_all()?]);
    let xs = vec![t(&[0.5, -1.0, 2.0], &[3]), t(&[1.0, 2.0], &[2])];
    for jac in [func::jacrev(&f, &xs).unwrap(), func::jacfwd(&f, &xs).unwrap()] {
        assert_eq!(vals(&jac[0][1]), vec![0.0; 6]);
        assert_eq!(jac[0][1].dims(), &[3, 2]);
        assert_eq!(vals(&jac[1][0]), vec![0.0; 6]);
        assert_eq!(jac[1][0].dims(), &[2, 3]);
        assert_eq!(jac[2][0].dims(), &[3]);
        assert_eq!(vals(&jac[2][0]), vec![0.0; 3]);
        let cos: Vec<f64> = [0.5f64, -1.0, 2.0].iter().map(|v| v.cos()).collect();
        let diag: Vec<f64> = (0..9).map(|q| if q % 4 == 0 { cos[q / 4] } else { 0.0 }).collect();
        assert_eq!(vals(&jac[0][0]), diag);
    }
    let (_, tans) = func::jvp(&f, &xs, &tangents_for(&xs, 0.0)).unwrap();
    assert_eq!(vals(&tans[1]), vec![0.0; 2]);
    let (outs, pullback) = func::vjp(&f, &xs).unwrap();
    let cots: Vec<Tensor> = outs.iter().map(|o| o.ones_like().unwrap()).collect();
    let g = pullback.apply(&cots).unwrap();
    assert_eq!(vals(&g[1]), vec![0.0; 2]);
    let g = func::grad(|xs: &[Tensor]| Ok(vec![xs[0].sum_all()?]), &xs).unwrap();
    assert_eq!(vals(&g[0]), vec![1.0; 3]);
    assert_eq!(vals(&g[1]), vec![0.0; 2]);
    let h = func::hessian(|xs: &[Tensor]| Ok(vec![xs[0].sum_all()?]), &xs[..1]).unwrap();
    assert_eq!(vals(&h[0][0]), vec![0.0; 9]);
}

#[test]
fn nested_transforms_differentiate_only_their_own_inputs() {
    // g(x) = d/dy (x y) at y = x, which is x, so dg/dx = 1. Treating the captured x as the inner
    // variable too would give d/dx (x x) = 2x and then 2; cutting the inner gradient from the
    // outer graph would give 0.
    let g = |xs: &[Tensor]| {
        let x = xs[0].clone();
        func::grad(move |ys: &[Tensor]| Ok(vec![x.mul(&ys[0])?.sum_all()?]), xs)
    };
    let x = t(&[3.0], &[]);
    assert_eq!(
        vals(&func::grad(|xs: &[Tensor]| Ok(vec![g(xs)?[0].clone()]), std::slice::from_ref(&x)).unwrap()[0]),
        vec![1.0]
    );
    assert_eq!(vals(&func::jacfwd(g, std::slice::from_ref(&x)).unwrap()[0][0]), vec![1.0]);
    // Siskind and Pearlmutter's example: d/dx [x · d/dy (x + y) at y = 1] = 1 (not 2).
    let outer = |xs: &[Tensor]| {
        let x = xs[0].clone();
        let inner = func::jvp(move |ys: &[Tensor]| Ok(vec![x.add(&ys[0])?]), &[t(&[1.0], &[])], &[t(&[1.0], &[])])?;
        Ok(vec![xs[0].mul(&inner.1[0])?])
    };
    let (_, d) = func::jvp(outer, std::slice::from_ref(&x), &[t(&[1.0], &[])]).unwrap();
    assert_eq!(vals(&d[0]), vec![1.0]);
}

#[test]
fn jacfwd_of_jacrev_is_the_hessian() {
    for (name, f, xs) in scalar_cases() {
        let gradient = |xs: &[Tensor]| Ok(func::jacrev(&f, xs)?.remove(0));
        let fr = func::jacfwd(gradient, &xs).unwrap();
        let h = func::hessian(&f, &xs).unwrap();
        for i in 0..xs.len() {
            for j in 0..xs.len() {
                assert_eq!(fr[i][j].dims(), h[i][j].dims());
                close(&format!("{name} jacfwd(jacrev) {i},{j}"), &vals(&fr[i][j]), &vals(&h[i][j]), 1e-13);
            }
        }
    }
}

#[test]
fn results_hold_a_graph_only_when_something_outside_requires_grad() {
    let f = |xs: &[Tensor]| Ok(vec![xs[0].powf(3.0)?.sum_all()?]);
    let x = t(&[1.0, -2.0], &[2]);
    // Nothing outside requires grad: every result is a constant.
    let (outs, pullback) = func::vjp(f, std::slice::from_ref(&x)).unwrap();
    assert!(!outs[0].requires_grad_flag());
    assert!(!pullback.apply(&[t(&[1.0], &[])]).unwrap()[0].requires_grad_flag());
    assert!(!func::grad(f, std::slice::from_ref(&x)).unwrap()[0].requires_grad_flag());
    assert!(!func::hessian(f, std::slice::from_ref(&x)).unwrap()[0][0].requires_grad_flag());
    let (o, tan) = func::jvp(f, std::slice::from_ref(&x), std::slice::from_ref(&x)).unwrap();
    assert!(!o[0].requires_grad_flag() && !tan[0].requires_grad_flag());

    // A primal that requires grad: the gradient 3x² differentiates (with kiln's own grad) to 6x.
    let xl = x.requires_grad(true).unwrap();
    let g = func::grad(f, std::slice::from_ref(&xl)).unwrap().remove(0);
    assert!(g.requires_grad_flag());
    let d = kiln_core::grad(&[g.sum_all().unwrap()], None, std::slice::from_ref(&xl), false).unwrap();
    assert_eq!(vals(d[0].as_ref().unwrap()), vec![6.0, -12.0]);

    // A captured tensor that requires grad: d/dx Σ w x² = 2 w x, whose gradient in w is 2x.
    let w = t(&[0.5, 3.0], &[2]).requires_grad(true).unwrap();
    let wc = w.clone();
    let fw = move |xs: &[Tensor]| Ok(vec![wc.mul(&xs[0].square()?)?.sum_all()?]);
    let g = func::grad(&fw, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_eq!(vals(&g), vec![1.0, -12.0]);
    let dw = kiln_core::grad(&[g.sum_all().unwrap()], None, std::slice::from_ref(&w), false).unwrap();
    assert_eq!(vals(dw[0].as_ref().unwrap()), vec![2.0, -4.0]);

    // Under no_grad the transforms still differentiate, and return constants.
    let (g, hv) = no_grad(|| {
        (
            func::grad(&fw, std::slice::from_ref(&xl)).unwrap().remove(0),
            func::hvp(&fw, std::slice::from_ref(&xl), &[t(&[1.0, 1.0], &[2])])
                .unwrap()
                .remove(0),
        )
    });
    assert_eq!(vals(&g), vec![1.0, -12.0]);
    assert_eq!(vals(&hv), vec![1.0, 6.0]);
    assert!(!g.requires_grad_flag() && !hv.requires_grad_flag());
}

#[test]
fn f32_primals_give_f32_results_close_to_f64() {
    let (_, f, xs) = vector_cases().remove(1);
    let xs32: Vec<Tensor> = xs.iter().map(|x| x.to_dtype(DType::F32).unwrap()).collect();
    let j64 = func::jacrev(&f, &xs).unwrap();
    for jac in [func::jacrev(&f, &xs32).unwrap(), func::jacfwd(&f, &xs32).unwrap()] {
        for (row, row64) in jac.iter().zip(&j64) {
            for (b, b64) in row.iter().zip(row64) {
                assert_eq!(b.dtype(), DType::F32);
                close("f32 jacobian", &vals(b), &vals(b64), 1e-5);
            }
        }
    }
}

#[test]
fn transform_errors_name_the_transform_and_the_shapes() {
    fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.expect_err("expected an error").to_string()
    }
    let f = |xs: &[Tensor]| Ok(vec![xs[0].square()?]);
    let x = t(&[1.0, 2.0], &[2]);
    let ints = Tensor::from_slice(&[1i64, 2], [2]).unwrap();
    let m = msg(func::jacrev(f, std::slice::from_ref(&ints)));
    assert!(m.contains("jacrev") && m.contains("[2]") && m.contains("i64"), "{m}");
    let m = msg(func::jvp(f, std::slice::from_ref(&x), &[t(&[1.0, 2.0, 3.0], &[3])]));
    assert!(m.contains("jvp") && m.contains("[3]") && m.contains("[2]"), "{m}");
    let m = msg(func::jvp(f, std::slice::from_ref(&x), &[]));
    assert!(m.contains("jvp") && m.contains("0 tangents for 1 primal"), "{m}");
    let m = msg(func::jvp(f, std::slice::from_ref(&x), &[x.to_dtype(DType::F32).unwrap()]));
    assert!(m.contains("jvp") && m.contains("f32") && m.contains("f64"), "{m}");
    let (_, pullback) = func::vjp(f, std::slice::from_ref(&x)).unwrap();
    let m = msg(pullback.apply(&[t(&[1.0], &[1])]));
    assert!(m.contains("vjp") && m.contains("[1]") && m.contains("[2]"), "{m}");
    let m = msg(pullback.apply(&[x.clone(), x.clone()]));
    assert!(m.contains("vjp") && m.contains("2 cotangents for 1 output"), "{m}");
    let m = msg(func::grad(f, std::slice::from_ref(&x)));
    assert!(m.contains("grad") && m.contains("[2]"), "{m}");
    let m = msg(func::hessian(f, std::slice::from_ref(&x)));
    assert!(m.contains("hessian") && m.contains("[2]"), "{m}");
    let m = msg(func::hvp(
        |xs: &[Tensor]| Ok(vec![xs[0].sum_all()?]),
        std::slice::from_ref(&x),
        &[t(&[1.0], &[])],
    ));
    assert!(m.contains("hvp") && m.contains("[]") && m.contains("[2]"), "{m}");
    let m = msg(func::jacrev(func::unary(|x: &Tensor| Ok(x.clone())), &[x.clone(), x.clone()]));
    assert!(m.contains("unary") && m.contains("got 2"), "{m}");
    // The function's own errors come through unchanged.
    let m = msg(func::jacfwd(
        |xs: &[Tensor]| Ok(vec![xs[0].matmul(&xs[1])?]),
        &[x.clone(), t(&[1.0; 3], &[3])],
    ));
    assert!(m.contains("matmul"), "{m}");
}

// ------------------------------------------------------------------ vmap

/// `tanh(sin(a x) w)` and `Σ x² · Σ w` for a: [2, 3], x: [3], w: [2].
fn per_element(xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let (a, x, w) = (&xs[0], &xs[1], &xs[2]);
    Ok(vec![
        a.matmul(x)?.sin()?.mul(w)?.tanh()?,
        x.square()?.sum_all()?.mul(&w.sum_all()?)?,
    ])
}

#[test]
fn vmap_matches_an_explicit_loop() {
    let batch = 4;
    let a_s: Vec<Tensor> = (0..batch).map(|b| filled(&[2, 3], 0.9, b as f64)).collect();
    let x_s: Vec<Tensor> = (0..batch).map(|b| filled(&[3], 1.7, 0.3 * b as f64)).collect();
    let w = t(&[0.5, -1.5], &[2]);
    let want: Vec<Vec<Tensor>> = (0..batch)
        .map(|b| per_element(&[a_s[b].clone(), x_s[b].clone(), w.clone()]).unwrap())
        .collect();
    // (dim a is batched along, dim x is batched along, out_dims)
    let layouts: [(isize, isize, &[isize]); 5] = [(0, 0, &[0]), (2, 1, &[1, 0]), (-1, -1, &[-1]), (1, 0, &[0, -1]), (-3, -2, &[-2, 0])];
    for (da, dx, out_dims) in layouts {
        let ab = Tensor::stack(&a_s, da).unwrap();
        let xb = Tensor::stack(&x_s, dx).unwrap();
        let got = func::vmap(per_element, &[Some(da), Some(dx), None], out_dims)(&[ab, xb, w.clone()]).unwrap();
        assert_eq!(got.len(), 2);
        for (k, g) in got.iter().enumerate() {
            let od = out_dims[if out_dims.len() == 1 { 0 } else { k }];
            for (b, wb) in want.iter().enumerate() {
                let slice = g.select(od, b).unwrap();
                assert_eq!(slice.dims(), wb[k].dims(), "in_dims ({da}, {dx}) out_dims {out_dims:?} output {k}");
                close(
                    &format!("vmap ({da}, {dx}) output {k} element {b}"),
                    &vals(&slice),
                    &vals(&wb[k]),
                    1e-15,
                );
            }
        }
    }
    // One in_dims entry maps every argument.
    let sum = |xs: &[Tensor]| Ok(vec![xs[0].add(&xs[1])?.sum_all()?]);
    let (p, q) = (filled(&[3, 2], 0.3, 0.0), filled(&[3, 2], 0.5, 1.0));
    let got = func::vmap(sum, &[Some(0)], &[0])(&[p.clone(), q.clone()]).unwrap();
    let want: Vec<f64> = (0..3)
        .map(|b| vals(&p.select(0, b).unwrap().add(&q.select(0, b).unwrap()).unwrap()).iter().sum())
        .collect();
    close("vmap one in_dim", &vals(&got[0]), &want, 1e-15);
}

#[test]
fn vmap_none_passes_the_argument_whole() {
    // A None argument is the same tensor for every element, whatever its size along dim 0.
    let f = |xs: &[Tensor]| Ok(vec![xs[0].matmul(&xs[1])?]);
    let m = filled(&[5, 3], 0.4, 0.2);
    let xs = filled(&[2, 3], 0.8, 0.0);
    let got = func::vmap(f, &[None, Some(0)], &[0])(&[m.clone(), xs.clone()]).unwrap();
    assert_eq!(got[0].dims(), &[2, 5]);
    let want = xs.matmul(&m.t().unwrap()).unwrap();
    close("vmap None", &vals(&got[0]), &vals(&want), 1e-15);
}

#[test]
fn vmap_nests_and_composes_with_the_other_transforms() {
    // vmap of vmap: a doubly batched elementwise product against a loop over both dims.
    let f = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[1])?.sin()?.sum_all()?]);
    let a = filled(&[3, 4, 2], 0.7, 0.1);
    let b = filled(&[2], 1.3, 0.2);
    let inner = func::vmap(f, &[Some(0), None], &[0]);
    let got = func::vmap(inner, &[Some(1), None], &[0])(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(got[0].dims(), &[4, 3]);
    for i in 0..4 {
        for j in 0..3 {
            let want = f(&[a.select(0, j).unwrap().select(0, i).unwrap(), b.clone()]).unwrap();
            assert_eq!(vals(&got[0].select(0, i).unwrap().select(0, j).unwrap()), vals(&want[0]));
        }
    }
    // Per-example gradients: vmap of grad against a loop of grad.
    let loss = |xs: &[Tensor]| Ok(vec![xs[1].matmul(&xs[0])?.tanh()?.square()?.sum_all()?]);
    let w = filled(&[3, 2], 0.6, 0.4);
    let batch = filled(&[5, 3], 1.1, 0.0);
    let per_example = func::vmap(|xs: &[Tensor]| func::grad(loss, xs), &[None, Some(0)], &[0])(&[w.clone(), batch.clone()]).unwrap();
    assert_eq!(per_example[0].dims(), &[5, 3, 2]);
    assert_eq!(per_example[1].dims(), &[5, 3]);
    for e in 0..5 {
        let g = func::grad(loss, &[w.clone(), batch.select(0, e).unwrap()]).unwrap();
        assert_eq!(vals(&per_example[0].select(0, e).unwrap()), vals(&g[0]));
        assert_eq!(vals(&per_example[1].select(0, e).unwrap()), vals(&g[1]));
    }
    // jacrev of a vmapped function is block-diagonal in the batch: element e's output depends
    // only on element e's input.
    let g = |xs: &[Tensor]| Ok(vec![xs[0].exp()?.mul(&xs[0].sin()?)?.sum_all()?]);
    let xb = filled(&[3, 2], 0.9, 0.3);
    let jac = func::jacrev(func::vmap(g, &[Some(0)], &[0]), std::slice::from_ref(&xb)).unwrap();
    assert_eq!(jac[0][0].dims(), &[3, 3, 2]);
    for e in 0..3 {
        for e2 in 0..3 {
            let block = vals(&jac[0][0].select(0, e).unwrap().select(0, e2).unwrap());
            if e == e2 {
                let want = func::grad(g, &[xb.select(0, e).unwrap()]).unwrap();
                close("jacrev(vmap) diagonal", &block, &vals(&want[0]), 1e-15);
            } else {
                assert_eq!(block, vec![0.0; 2]);
            }
        }
    }
}

#[test]
fn vmap_errors_name_vmap_and_the_shapes() {
    fn msg(r: Result<Vec<Tensor>>) -> String {
        r.expect_err("expected an error").to_string()
    }
    let f = |xs: &[Tensor]| Ok(vec![xs[0].add(&xs[1])?]);
    let (p, q) = (filled(&[3, 2], 0.3, 0.0), filled(&[4, 2], 0.5, 1.0));
    let m = msg(func::vmap(f, &[Some(0), Some(0), None], &[0])(&[p.clone(), q.clone()]));
    assert!(m.contains("vmap") && m.contains("3 in_dims for 2 arguments"), "{m}");
    let m = msg(func::vmap(f, &[Some(2), None], &[0])(&[p.clone(), q.clone()]));
    assert!(m.contains("vmap") && m.contains("in_dims[0] = 2") && m.contains("[3, 2]"), "{m}");
    let m = msg(func::vmap(f, &[Some(0), Some(0)], &[0])(&[p.clone(), q.clone()]));
    assert!(m.contains("vmap") && m.contains("[3, 2]") && m.contains("[4, 2]"), "{m}");
    let m = msg(func::vmap(f, &[None, None], &[0])(&[p.clone(), q.clone()]));
    assert!(m.contains("vmap") && m.contains("no argument is mapped"), "{m}");
    let empty = Tensor::zeros([0, 2], DType::F64).unwrap();
    let m = msg(func::vmap(f, &[Some(0), None], &[0])(&[empty, q.select(0, 0).unwrap()]));
    assert!(m.contains("vmap") && m.contains("empty") && m.contains("[0, 2]"), "{m}");
    let m = msg(func::vmap(f, &[Some(0), Some(0)], &[2])(&[p.clone(), p.clone()]));
    assert!(m.contains("vmap") && m.contains("out_dims[0] = 2") && m.contains("[2]"), "{m}");
    let m = msg(func::vmap(f, &[Some(0), Some(0)], &[0, 0])(&[p.clone(), p.clone()]));
    assert!(m.contains("vmap") && m.contains("2 out_dims for 1 outputs"), "{m}");
    // Calls that disagree in their outputs' shapes or number.
    let ragged = |xs: &[Tensor]| {
        let x = &xs[0];
        Ok(if x.sum_all()?.item()? > 0.0 {
            vec![x.clone()]
        } else {
            vec![x.sum_all()?]
        })
    };
    let mixed = t(&[1.0, 2.0, -5.0, 1.0], &[2, 2]);
    let m = msg(func::vmap(ragged, &[Some(0)], &[0])(std::slice::from_ref(&mixed)));
    assert!(
        m.contains("vmap") && m.contains("output 0") && m.contains("[2]") && m.contains("[]"),
        "{m}"
    );
    let varying = |xs: &[Tensor]| Ok(vec![xs[0].clone(); if xs[0].sum_all()?.item()? > 0.0 { 1 } else { 2 }]);
    let m = msg(func::vmap(varying, &[Some(0)], &[0])(std::slice::from_ref(&mixed)));
    assert!(m.contains("vmap") && m.contains("2 outputs for batch element 1 but 1"), "{m}");
    // f's own errors come through.
    let m = msg(func::vmap(|xs: &[Tensor]| Ok(vec![xs[0].matmul(&xs[0])?]), &[Some(0)], &[0])(&[
        filled(&[2, 2, 3], 0.1, 0.0),
    ]));
    assert!(m.contains("matmul"), "{m}");
}

// ------------------------------------------------------------------ torch.func fixtures

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/func.json")).unwrap()
}

fn case(doc: &Value, name: &str) -> Tensor {
    tensor_of(&doc["cases"][name], DType::F64)
}

/// kiln's value against torch's: shape, then `|got - want| <= 1e-10 (1 + |want|)`; returns the
/// largest absolute error.
fn against_torch(doc: &Value, name: &str, got: &Tensor) -> f64 {
    let want = &doc["cases"][name];
    assert_eq!(got.dims(), shape(want).as_slice(), "{name}: shape");
    let err = close(name, &vals(got), &floats(want), 1e-10);
    println!("{name}: max abs error vs torch {err:e}");
    err
}

/// The generator's MLP: 3-8-6-2, tanh, parameters packed as (W1 [3, 8], b1, W2 [8, 6], b2,
/// W3 [6, 2], b3), layers computing x W + b.
fn mlp(p: &Tensor, x: &Tensor) -> Result<Tensor> {
    let mut k = 0;
    let mut h = x.clone();
    for (layer, (fan_in, fan_out)) in [(3, 8), (8, 6), (6, 2)].into_iter().enumerate() {
        let w = p.narrow(0, k, fan_in * fan_out)?.reshape([fan_in, fan_out])?;
        k += fan_in * fan_out;
        let b = p.narrow(0, k, fan_out)?;
        k += fan_out;
        h = h.matmul(&w)?.add(&b)?;
        if layer < 2 {
            h = h.tanh()?;
        }
    }
    assert_eq!(k, p.elem_count());
    Ok(h)
}

fn loss(p: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let out = mlp(p, x)?;
    let ce = y.mul(&out.log_softmax(-1)?)?.sum(&[-1], false)?.mean_all()?.neg()?;
    ce.add(&out.square()?.mean_all()?.mul_scalar(0.1)?)
}

#[test]
fn torch_mlp_jacobians_and_hessian() {
    let doc = fixture();
    let (p, x, y) = (case(&doc, "params"), case(&doc, "x"), case(&doc, "y"));
    assert_eq!(p.dims(), &[100]);
    let f_loss = |ps: &[Tensor]| Ok(vec![loss(&ps[0], &x, &y)?]);
    let f_out = |ps: &[Tensor]| Ok(vec![mlp(&ps[0], &x)?]);
    let ps = std::slice::from_ref(&p);
    let mut worst = 0.0f64;
    worst = worst.max(against_torch(&doc, "loss", &f_loss(ps).unwrap()[0]));
    worst = worst.max(against_torch(&doc, "grad_jacrev", &func::jacrev(f_loss, ps).unwrap()[0][0]));
    worst = worst.max(against_torch(&doc, "grad_jacfwd", &func::jacfwd(f_loss, ps).unwrap()[0][0]));
    let h = func::hessian(f_loss, ps).unwrap().remove(0).remove(0);
    worst = worst.max(against_torch(&doc, "hessian", &h));
    worst = worst.max(against_torch(&doc, "jac_out_p_rev", &func::jacrev(f_out, ps).unwrap()[0][0]));
    worst = worst.max(against_torch(&doc, "jac_out_p_fwd", &func::jacfwd(f_out, ps).unwrap()[0][0]));
    let jx = func::jacrev(|xs: &[Tensor]| Ok(vec![mlp(&xs[0], &xs[1])?]), &[p.clone(), x.clone()]).unwrap();
    worst = worst.max(against_torch(&doc, "jac_out_x", &jx[0][1]));
    println!("jacobians and hessian: max abs error vs torch {worst:e}");
}

#[test]
fn torch_mlp_jvp_vjp_hvp() {
    let doc = fixture();
    let (p, x, y, v, ct) = (
        case(&doc, "params"),
        case(&doc, "x"),
        case(&doc, "y"),
        case(&doc, "v"),
        case(&doc, "ct"),
    );
    let f_loss = |ps: &[Tensor]| Ok(vec![loss(&ps[0], &x, &y)?]);
    let f_out = |ps: &[Tensor]| Ok(vec![mlp(&ps[0], &x)?]);
    let ps = std::slice::from_ref(&p);
    let (out, tan) = func::jvp(f_out, ps, std::slice::from_ref(&v)).unwrap();
    let mut worst = against_torch(&doc, "jvp_out", &out[0]);
    worst = worst.max(against_torch(&doc, "jvp_tangent", &tan[0]));
    let (_, pullback) = func::vjp(f_out, ps).unwrap();
    worst = worst.max(against_torch(&doc, "vjp", &pullback.apply(&[ct]).unwrap()[0]));
    worst = worst.max(against_torch(&doc, "hvp", &func::hvp(f_loss, ps, &[v]).unwrap()[0]));
    println!("jvp, vjp, hvp: max abs error vs torch {worst:e}");
}

#[test]
fn torch_vmap() {
    let doc = fixture();
    let (p, x, y) = (case(&doc, "params"), case(&doc, "x"), case(&doc, "y"));
    let mlp_single = |xs: &[Tensor]| Ok(vec![mlp(&xs[0], &xs[1].unsqueeze(0)?)?.squeeze(0)?]);
    let loss_single = |xs: &[Tensor]| Ok(vec![loss(&xs[0], &xs[1].unsqueeze(0)?, &xs[2].unsqueeze(0)?)?]);
    let got = func::vmap(mlp_single, &[None, Some(0)], &[0])(&[p.clone(), x.clone()]).unwrap();
    let mut worst = against_torch(&doc, "vmap_mlp", &got[0]);
    let xt = x.t().unwrap().contiguous().unwrap();
    let got = func::vmap(mlp_single, &[None, Some(1)], &[1])(&[p.clone(), xt]).unwrap();
    worst = worst.max(against_torch(&doc, "vmap_mlp_t", &got[0]));
    let per_example = func::vmap(|xs: &[Tensor]| func::grad(loss_single, xs), &[None, Some(0), Some(0)], &[0]);
    let got = per_example(&[p.clone(), x.clone(), y.clone()]).unwrap();
    worst = worst.max(against_torch(&doc, "vmap_grad", &got[0]));
    let per_example_jac = func::vmap(
        |xs: &[Tensor]| Ok(vec![func::jacrev(mlp_single, xs)?.remove(0).remove(0)]),
        &[None, Some(0)],
        &[0],
    );
    let got = per_example_jac(&[p.clone(), x.clone()]).unwrap();
    worst = worst.max(against_torch(&doc, "vmap_jac", &got[0]));
    println!("vmap: max abs error vs torch {worst:e}");
}
