//! W5's matrix products alone (an MLP 784-512-512-10 on batches of 128, weights stored `[out, in]`
//! as PyTorch's `nn.Linear` does), each with the operand layouts the training step gives it, so
//! that a change to the product dispatch or a kernel can be judged product by product before the
//! whole step.

use crate::{emit, median_time};
use kiln_core::random::Rng;
use kiln_core::{DType, Result, Tensor};

/// One product `[m, k] x [k, n]` of a training step: which operand reaches the kernel transposed.
struct Product {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// A is the transpose of a row-major `[k, m]` tensor (a weight gradient's `dZᵀ`).
    a_t: bool,
    /// B is the transpose of a row-major `[n, k]` tensor (a forward pass's `Wᵀ`).
    b_t: bool,
}

const fn p(name: &'static str, m: usize, k: usize, n: usize, a_t: bool, b_t: bool) -> Product {
    Product { name, m, k, n, a_t, b_t }
}

/// The eight products of one W5 step (the input's gradient is never formed).
const PRODUCTS: [Product; 8] = [
    p("fwd1-x.w1t", 128, 784, 512, false, true),
    p("fwd2-h1.w2t", 128, 512, 512, false, true),
    p("fwd3-h2.w3t", 128, 512, 10, false, true),
    p("dh2-dz3.w3", 128, 10, 512, false, false),
    p("dw3-dz3t.h2", 10, 128, 512, true, false),
    p("dh1-dz2.w2", 128, 512, 512, false, false),
    p("dw2-dz2t.h1", 512, 128, 512, true, false),
    p("dw1-dz1t.x", 512, 128, 784, true, false),
];

/// Median microseconds and GFLOP/s of each product (21 reps of enough calls for about 20 ms),
/// with the path `Tensor::matmul` takes for it.
pub fn mlp_shapes(threads: usize) -> Result<()> {
    let mut rng = Rng::new(3);
    let mut total_us = 0.0;
    for pr in &PRODUCTS {
        let operand = |rows: usize, cols: usize, transposed: bool, rng: &mut Rng| -> Result<Tensor> {
            if transposed {
                Tensor::rand([cols, rows], -1.0, 1.0, DType::F32, rng)?.t()
            } else {
                Tensor::rand([rows, cols], -1.0, 1.0, DType::F32, rng)
            }
        };
        let a = operand(pr.m, pr.k, pr.a_t, &mut rng)?;
        let b = operand(pr.k, pr.n, pr.b_t, &mut rng)?;
        let t1 = median_time(2, 5, || {
            std::hint::black_box(a.matmul(&b).expect("operands fit"));
        });
        let calls = ((0.02 / t1.max(1e-7)) as usize).clamp(1, 10_000);
        let t = median_time(1, 21, || {
            for _ in 0..calls {
                std::hint::black_box(a.matmul(&b).expect("operands fit"));
            }
        }) / calls as f64;
        let us = t * 1e6;
        total_us += us;
        let flop = 2.0 * (pr.m * pr.k * pr.n) as f64;
        let path = kiln_core::cpu::product_path(pr.m, pr.k, pr.n, threads, !pr.b_t);
        println!("# {}: {}x{}x{} {path}", pr.name, pr.m, pr.k, pr.n);
        emit(pr.name, threads, "us", us);
        emit(pr.name, threads, "gflops", flop / t / 1e9);
    }
    emit("w5-products", threads, "total_us", total_us);
    Ok(())
}
