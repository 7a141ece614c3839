//! Inter-op parallelism (`threads::set_interop`): a matmul's two gradient products side by side
//! on halves of the pool give the bits they give one after the other, under the caller's modes.

use kiln_core::{grad, threads, DType, Rng, Tensor};

mod common;
use common::f64_bits as bits;

/// Gradients of `sum(tanh(x · Wᵀ) · r)` with respect to `x` and `W`, and with `create_graph` the
/// gradient of `sum(dW²)` with respect to `x` (a second-order term through both products).
fn grads(x: &Tensor, w: &Tensor, r: &Tensor, create_graph: bool) -> Vec<Vec<u64>> {
    let y = x
        .matmul(&w.t().unwrap())
        .unwrap()
        .tanh()
        .unwrap()
        .mul(r)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = grad(&[y], None, &[x.clone(), w.clone()], create_graph).unwrap();
    let (gx, gw) = (g[0].clone().unwrap(), g[1].clone().unwrap());
    let mut out = vec![bits(&gx), bits(&gw)];
    assert_eq!(
        gw.requires_grad_flag(),
        create_graph,
        "the products ran under the caller's grad mode"
    );
    if create_graph {
        let gg = grad(&[gw.square().unwrap().sum_all().unwrap()], None, std::slice::from_ref(x), false).unwrap();
        out.push(bits(gg[0].as_ref().unwrap()));
    }
    out
}

#[test]
fn side_by_side_products_give_the_serial_bits() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut rng = Rng::new(5);
    // 128 x 256 x 160 = 5.2M multiply-adds per product: above the size from which they are joined.
    for dt in [DType::F32, DType::F64] {
        let x = Tensor::rand([128, 256], -1.0, 1.0, dt, &mut rng)
            .unwrap()
            .requires_grad(true)
            .unwrap();
        let w = Tensor::rand([160, 256], -0.1, 0.1, dt, &mut rng)
            .unwrap()
            .requires_grad(true)
            .unwrap();
        let r = Tensor::rand([128, 160], -1.0, 1.0, dt, &mut rng).unwrap();
        for create_graph in [false, true] {
            let joined = pool.install(|| {
                threads::set_interop(true);
                grads(&x, &w, &r, create_graph)
            });
            let serial = pool.install(|| {
                threads::set_interop(false);
                let g = grads(&x, &w, &r, create_graph);
                threads::set_interop(true);
                g
            });
            let one_thread = grads(&x, &w, &r, create_graph);
            assert_eq!(joined, serial, "{dt:?} create_graph {create_graph}");
            assert_eq!(joined, one_thread, "{dt:?} create_graph {create_graph}: as on one thread");
        }
    }
}
