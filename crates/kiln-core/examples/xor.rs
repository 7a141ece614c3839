//! The lecture's XOR network written directly against kiln-core: 2-4-1, tanh hidden layer, sigmoid
//! output, MSE, plain SGD with learning rate 0.5 on the full batch of four rows.
//!
//! Run: `cargo run --release -p kiln-core --example xor`

use kiln_core::{no_grad, random::init_mlp, Result, Tensor, Var};

fn main() -> Result<()> {
    let x = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2])?;
    let y = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0], [4, 1])?;
    // Same initial weights as the shared PyTorch/JAX benchmark (SplitMix64, seed 1).
    let params: Vec<Var> = init_mlp(&[2, 4, 1], 1)?
        .into_iter()
        .flat_map(|(w, b)| [Var::new(&w), Var::new(&b)])
        .collect();
    let forward = |p: &[Var]| -> Result<Tensor> {
        let h = x.matmul(&p[0].tensor())?.add(&p[1].tensor())?.tanh()?;
        h.matmul(&p[2].tensor())?.add(&p[3].tensor())?.sigmoid()
    };
    for step in 0..=20_000 {
        let loss = forward(&params)?.sub(&y)?.square()?.mean_all()?;
        if step % 2_000 == 0 {
            println!("step {step:>6}  loss {:.6e}", loss.item()?);
        }
        let grads = loss.backward()?;
        no_grad(|| -> Result<()> {
            for p in &params {
                let g = p.grad(&grads).expect("every parameter gets a gradient");
                p.set(&p.tensor().sub(&g.mul_scalar(0.5)?)?)?;
            }
            Ok(())
        })?;
    }
    let out = forward(&params)?;
    println!("predictions {:?}", out.to_vec::<f32>()?);
    let hard: Vec<u8> = out.to_vec::<f32>()?.iter().map(|&p| (p > 0.5) as u8).collect();
    println!("fired       {hard:?} (XOR is [0, 1, 1, 0])");
    Ok(())
}
