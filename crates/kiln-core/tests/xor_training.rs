//! The XOR network of the teaching example trains to the reference losses that PyTorch, JAX and
//! candle all reach from the same SplitMix64 weights (shared/bench W1).

use kiln_core::{no_grad, random::init_mlp, Result, Tensor, Var};

fn train(steps: usize, bce: bool) -> Result<f32> {
    let x = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2])?;
    let y = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0], [4, 1])?;
    let p: Vec<Var> = init_mlp(&[2, 4, 1], 1)?
        .into_iter()
        .flat_map(|(w, b)| [Var::new(&w), Var::new(&b)])
        .collect();
    let loss_of = |p: &[Var]| -> Result<Tensor> {
        let h = x.matmul(&p[0].tensor())?.add(&p[1].tensor())?.tanh()?;
        let o = h.matmul(&p[2].tensor())?.add(&p[3].tensor())?.sigmoid()?;
        if bce {
            let pos = y.mul(&o.log()?)?;
            let neg = y.affine(-1.0, 1.0)?.mul(&o.affine(-1.0, 1.0)?.log()?)?;
            pos.add(&neg)?.mean_all()?.neg()
        } else {
            o.sub(&y)?.square()?.mean_all()
        }
    };
    for _ in 0..steps {
        let grads = loss_of(&p)?.backward()?;
        no_grad(|| -> Result<()> {
            for v in &p {
                v.set(&v.tensor().sub(&v.grad(&grads).unwrap().mul_scalar(0.5)?)?)?;
            }
            Ok(())
        })?;
    }
    loss_of(&p)?.to_scalar::<f32>()
}

fn rel(a: f32, b: f32) -> f32 {
    (a - b).abs() / b
}

#[test]
fn xor_mse_reaches_the_reference_losses() {
    let l2k = train(2_000, false).unwrap();
    assert!(l2k < 1e-3 && rel(l2k, 9.038e-4) < 2e-3, "{l2k}");
    let l20k = train(20_000, false).unwrap();
    assert!(rel(l20k, 4.791e-5) < 2e-3, "{l20k}");
}

#[test]
fn xor_bce_reaches_the_reference_loss() {
    let l = train(20_000, true).unwrap();
    assert!(rel(l, 1.129e-4) < 2e-3, "{l}");
}
