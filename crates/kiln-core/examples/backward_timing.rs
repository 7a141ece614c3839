//! Times the backward pass of one Linear layer, `y = x · Wᵀ` with `x` `[M, K]` requiring grad
//! and `W` `[N, K]`, from a random upstream gradient: its two products side by side on halves of
//! the pool and one after the other ([`kiln_core::threads::set_interop`]), alternating call by
//! call so that both settings see the same moments of a noisy host. Prints the minimum, first
//! quartile and median of 200 calls each. Usage (BENCHMARKS.md):
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p kiln-core --example backward_timing -- [M K N]
//! ```

use kiln_core::{on_thread_pool, DType, Result, Rng, Tensor, Var};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    let (m, k, n) = match args[..] {
        [m, k, n] => (m, k, n),
        _ => (128, 512, 512),
    };
    let mut rng = Rng::new(1);
    let x = Tensor::rand([m, k], -1.0, 1.0, DType::F32, &mut rng)?.requires_grad(true)?;
    let seed = Tensor::rand([m, n], -1.0, 1.0, DType::F32, &mut rng)?;
    let w = Var::new(&Tensor::rand([n, k], -1.0, 1.0, DType::F32, &mut rng)?);
    on_thread_pool(|| -> Result<()> {
        let mut t = [Vec::new(), Vec::new()];
        for i in 0..400 {
            let off = i % 2 == 1;
            kiln_core::threads::set_interop(!off);
            let y = x.matmul(&w.tensor().t()?)?;
            let t0 = Instant::now();
            let g = y.backward_with(&seed)?;
            t[off as usize].push(t0.elapsed().as_secs_f64() * 1e6);
            drop(g);
        }
        kiln_core::threads::set_interop(true);
        for (name, v) in ["side by side", "one after the other"].iter().zip(t.iter_mut()) {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "{m}x{k}x{n} {name}: min {:.0} p25 {:.0} median {:.0} us",
                v[0],
                v[v.len() / 4],
                v[v.len() / 2]
            );
        }
        Ok(())
    })
}
