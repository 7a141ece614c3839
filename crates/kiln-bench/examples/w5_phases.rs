//! Where a W5 training step's time goes: the forward pass with the loss, the backward pass and
//! the optimiser's step, each timed on its own over 300 steps (minimum, first quartile and
//! median in microseconds), then the step repeated on the same gradients, and the step alone in
//! a loop. W5's shapes (an MLP 784-512-512-10 on batches of 128, SGD with momentum 0.9), with
//! PyTorch's default initialisation rather than the benchmark's weights: only time is measured.
//!
//! ```sh
//! cargo build --release -p kiln-bench --example w5_phases
//! RAYON_NUM_THREADS=2 target/release/examples/w5_phases
//! ```
//!
//! A step that costs more right after a backward pass than when repeated ("step" against
//! "step again") pays for where the backward left its data: in the other core's cache.
use kiln_core::{DType, Tensor};
use kiln_nn::loss::cross_entropy;
use kiln_nn::prelude::*;
use std::time::Instant;

fn main() -> kiln_nn::Result<()> {
    let vs = VarStore::new(DType::F32, 0);
    let mut model = Sequential::new();
    model.push(Linear::new(&vs.pp("l1"), 784, 512)?);
    model.push(ReLU);
    model.push(Linear::new(&vs.pp("l2"), 512, 512)?);
    model.push(ReLU);
    model.push(Linear::new(&vs.pp("l3"), 512, 10)?);
    let mut rng = kiln_core::random::Rng::new(1);
    let x = Tensor::rand([128, 784], 0.0, 1.0, DType::F32, &mut rng)?;
    let y = Tensor::from_vec((0..128).map(|i| (i % 10) as i64).collect::<Vec<_>>(), [128])?;
    let mut opt = Sgd::new(model.parameters(), 0.01)?.momentum(0.9);
    let mut phases: [(&str, Vec<f64>); 6] = [
        ("forward", vec![]),
        ("backward", vec![]),
        ("step", vec![]),
        ("step again", vec![]),
        ("total", vec![]),
        ("step alone", vec![]),
    ];
    let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
    // On a worker of the pool, as the training loops run (see `on_thread_pool`).
    kiln_core::on_thread_pool(|| -> kiln_nn::Result<()> {
        for _ in 0..300 {
            let t0 = Instant::now();
            let loss = cross_entropy(&model.forward(&x)?, &y)?;
            let t1 = Instant::now();
            let grads = loss.backward()?;
            // Freed before the step, as `Optimizer::minimize` does, so the update is in place.
            drop(loss);
            let t2 = Instant::now();
            opt.step(&grads)?;
            let t3 = Instant::now();
            opt.step(&grads)?;
            let t4 = Instant::now();
            for (i, t) in [us(t0, t1), us(t1, t2), us(t2, t3), us(t3, t4), us(t0, t3)].into_iter().enumerate() {
                phases[i].1.push(t);
            }
        }
        let loss = cross_entropy(&model.forward(&x)?, &y)?;
        let grads = loss.backward()?;
        drop(loss);
        for _ in 0..300 {
            let t0 = Instant::now();
            opt.step(&grads)?;
            phases[5].1.push(us(t0, Instant::now()));
        }
        Ok(())
    })?;
    for (name, mut v) in phases {
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name:10} min {:6.0} p25 {:6.0} median {:6.0} us",
            v[0],
            v[v.len() / 4],
            v[v.len() / 2]
        );
    }
    Ok(())
}
