//! Criterion micro-benchmarks of the CPU kernels and of the autodiff overhead.
//! Run: `cargo bench -p kiln-core --bench kernels` (figures in BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kiln_core::{DType, Rng, Tensor};
use std::hint::black_box;

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape.to_vec(), 0.0, 1.0, DType::F32, &mut Rng::new(seed)).unwrap()
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    for n in [64usize, 256, 1024] {
        let (a, b) = (rand(&[n, n], 1), rand(&[n, n], 2));
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, _| {
            bch.iter(|| black_box(a.matmul(&b).unwrap()))
        });
    }
    let (a, b) = (rand(&[256, 256], 3), rand(&[256, 256], 4));
    g.bench_function("256_transposed_lhs", |bch| {
        bch.iter(|| black_box(a.t().unwrap().matmul(&b).unwrap()))
    });
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let n = 1 << 22;
    let (a, b) = (rand(&[n], 5), rand(&[n], 6));
    let v = a.to_vec::<f32>().unwrap();
    let mut g = c.benchmark_group("elementwise_4M_f32");
    g.throughput(Throughput::Bytes((n * 4) as u64));
    g.bench_function("add", |bch| bch.iter(|| black_box(a.add(&b).unwrap())));
    g.bench_function("memcpy_peer", |bch| bch.iter(|| black_box(v.clone())));
    g.bench_function("tanh", |bch| bch.iter(|| black_box(a.tanh().unwrap())));
    let m = a.reshape([2048, 2048]).unwrap();
    let row = rand(&[2048], 7);
    g.bench_function("add_broadcast_row", |bch| bch.iter(|| black_box(m.add(&row).unwrap())));
    g.bench_function("add_transposed", |bch| bch.iter(|| black_box(m.t().unwrap().add(&m).unwrap())));
    g.finish();
}

fn reductions(c: &mut Criterion) {
    let m = rand(&[2048, 2048], 8);
    let mut g = c.benchmark_group("reduce_2048x2048_f32");
    g.bench_function("sum_rows", |bch| bch.iter(|| black_box(m.sum(&[1], false).unwrap())));
    g.bench_function("sum_cols", |bch| bch.iter(|| black_box(m.sum(&[0], false).unwrap())));
    g.bench_function("softmax_rows", |bch| bch.iter(|| black_box(m.softmax(-1).unwrap())));
    g.finish();
}

fn autodiff(c: &mut Criterion) {
    c.bench_function("w2_chain_2000_ops_fwd_bwd", |bch| {
        let x = Tensor::from_slice(&[1.0f32], [1]).unwrap().requires_grad(true).unwrap();
        bch.iter(|| {
            let mut y = x.clone();
            for _ in 0..1000 {
                y = y.mul_scalar(1.0001).unwrap().add_scalar(0.0001).unwrap();
            }
            black_box(y.backward().unwrap())
        })
    });
}

criterion_group!(benches, matmul, elementwise, reductions, autodiff);
criterion_main!(benches);
