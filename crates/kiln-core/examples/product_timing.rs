//! Times one matrix product through `Tensor::matmul`: the minimum, first quartile and median
//! of 400 calls, for comparing two builds or settings on one shape (BENCHMARKS.md's two-thread
//! product figures). Usage:
//!
//! ```sh
//! cargo run --release -p kiln-core --example product_timing -- M K N B_T THREADS [A_T]
//! ```
//!
//! `B_T = 1` makes B the transpose of a row-major `[N, K]` tensor (a Linear layer's `Wᵀ`), and
//! `A_T = 1` makes A the transpose of a row-major `[K, M]` tensor (a weight gradient's `dZᵀ`).

use kiln_core::random::Rng;
use kiln_core::{DType, Result, Tensor};
use std::time::Instant;

fn operand(rows: usize, cols: usize, transposed: bool, rng: &mut Rng) -> Result<Tensor> {
    if transposed {
        Tensor::rand([cols, rows], -1.0, 1.0, DType::F32, rng)?.t()
    } else {
        Tensor::rand([rows, cols], -1.0, 1.0, DType::F32, rng)
    }
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    if args.len() < 5 {
        eprintln!("usage: product_timing M K N B_T THREADS [A_T]");
        std::process::exit(2);
    }
    let (m, k, n, b_t, threads) = (args[0], args[1], args[2], args[3] == 1, args[4]);
    let a_t = args.get(5) == Some(&1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("the pool is built once");
    let mut rng = Rng::new(3);
    let a = operand(m, k, a_t, &mut rng)?;
    let b = operand(k, n, b_t, &mut rng)?;
    kiln_core::on_thread_pool(|| -> Result<()> {
        let mut us = Vec::with_capacity(400);
        for _ in 0..400 {
            let t = Instant::now();
            std::hint::black_box(a.matmul(&b)?);
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        us.sort_by(f64::total_cmp);
        println!(
            "{m}x{k}x{n} a_t={a_t} b_t={b_t} threads={threads}: min {:.0} p25 {:.0} median {:.0} us",
            us[0], us[100], us[200]
        );
        Ok(())
    })
}
