//! `kiln-bench`: kiln's implementations of the shared workloads (../shared/bench/README.md), printing
//! the peers' line format `workload framework threads metric value` so that
//! `scripts/bench_side_by_side.sh` can put kiln next to PyTorch and JAX.
//!
//! Usage: `kiln-bench w1|w2|w3|w4|w5|w6|add|peak|gemm|conv|mlp [--threads N] [--hog] [--sizes 64,256,...]`
//! (`gemm`: the matrix-product kernel alone, f32 and f64, GFLOP/s by wall and by CPU time;
//! `KILN_GEMM=crate|packed` picks the kernel, see kiln-core's `cpu::gemm`; `conv`: W6's two
//! convolutions alone, beside `scripts/conv_shapes_torch.py`; `mlp`: W5's eight matrix products
//! alone).

mod conv_shapes;
mod mlp_shapes;
mod nn_workloads;
mod peak;

use kiln_core::random::{init_mlp, Rng};
use kiln_core::{no_grad, DType, Result, Tensor, Var};
use nn_workloads::median;
use std::time::Instant;

fn emit(workload: &str, threads: usize, metric: &str, value: f64) {
    emit_as(workload, "kiln", threads, metric, value);
}

fn emit_as(workload: &str, framework: &str, threads: usize, metric: &str, value: f64) {
    println!("{workload} {framework} {threads} {metric} {value:.6}");
}

/// Times `f` `reps` times after `warmup` runs; returns the median seconds.
fn median_time(warmup: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// W1: XOR 2-4-1, 20,000 full-batch SGD steps from the SplitMix64 weights.
fn w1() -> Result<()> {
    const STEPS: usize = 20_000;
    let x = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2])?;
    let y = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0], [4, 1])?;
    let one_minus_y = y.affine(-1.0, 1.0)?;
    for loss_name in ["mse", "bce"] {
        let init = init_mlp(&[2, 4, 1], 1)?;
        let params: Vec<Var> = init.iter().flat_map(|(w, b)| [Var::new(w), Var::new(b)]).collect();
        let loss_of = |p: &[Var]| -> Result<Tensor> {
            let h = x.matmul(&p[0].tensor())?.add(&p[1].tensor())?.tanh()?;
            let o = h.matmul(&p[2].tensor())?.add(&p[3].tensor())?.sigmoid()?;
            if loss_name == "mse" {
                o.sub(&y)?.square()?.mean_all()
            } else {
                let l = y.mul(&o.log()?)?.add(&one_minus_y.mul(&o.affine(-1.0, 1.0)?.log()?)?)?;
                l.mean_all()?.neg()
            }
        };
        let step = |p: &[Var]| -> Result<()> {
            let grads = loss_of(p)?.backward()?;
            no_grad(|| {
                for v in p {
                    let g = v.grad(&grads).expect("every parameter gets a gradient");
                    v.set(&v.tensor().add_scaled(g, -0.5)?)?;
                }
                Ok(())
            })
        };
        let reset = |p: &[Var]| -> Result<()> {
            for (v, t) in p.iter().zip(init.iter().flat_map(|(w, b)| [w, b])) {
                v.set(t)?;
            }
            Ok(())
        };
        let mut run = || {
            reset(&params).unwrap();
            for _ in 0..STEPS {
                step(&params).unwrap();
            }
        };
        let t = median_time(1, 5, &mut run);
        let wl = format!("W1-xor-{loss_name}");
        emit(&wl, 1, "steps_per_s", STEPS as f64 / t);
        emit(&wl, 1, "us_per_step", t / STEPS as f64 * 1e6);
        emit(&wl, 1, &format!("final_loss_after_{STEPS}"), loss_of(&params)?.item()?);
    }
    Ok(())
}

/// W2: per-op autodiff overhead on a 2,000-op scalar chain, forward + backward.
fn w2() -> Result<()> {
    const ITERS: usize = 1000;
    let x = Tensor::from_slice(&[1.0f32], [1])?.requires_grad(true)?;
    let mut grad = 0.0;
    let t = median_time(3, 21, || {
        let mut y = x.clone();
        for _ in 0..ITERS {
            y = y.mul_scalar(1.0001).unwrap().add_scalar(0.0001).unwrap();
        }
        let g = y.backward().unwrap();
        grad = g.get(&x).unwrap().to_scalar::<f32>().unwrap();
    });
    emit("W2-chain", 1, "us_per_op", t / (2 * ITERS) as f64 * 1e6);
    emit("W2-chain", 1, "grad", grad as f64);
    let t_fwd = median_time(3, 21, || {
        no_grad(|| {
            let mut y = x.clone();
            for _ in 0..ITERS {
                y = y.mul_scalar(1.0001).unwrap().add_scalar(0.0001).unwrap();
            }
        })
    });
    println!("W2-chain kiln-nograd-fwd 1 us_per_op {:.6}", t_fwd / (2 * ITERS) as f64 * 1e6);
    Ok(())
}

fn uniform_matrix(n: usize, seed: u64) -> Result<Tensor> {
    let mut rng = Rng::new(seed);
    Tensor::from_vec((0..n * n).map(|_| rng.uniform01() as f32).collect::<Vec<f32>>(), [n, n])
}

/// How many products `a · b` take about 0.2 s (at least one): one timed repetition's length.
fn iters_for_fifth_second(a: &Tensor, b: &Tensor) -> Result<usize> {
    let t0 = Instant::now();
    let mut iters = 0;
    while t0.elapsed().as_secs_f64() < 0.2 || iters == 0 {
        std::hint::black_box(a.matmul(b)?);
        iters += 1;
    }
    Ok(iters)
}

/// W3: square f32 matmul, fresh output per call.
fn w3(threads: usize, sizes: &[usize]) -> Result<()> {
    for &n in sizes {
        let a = uniform_matrix(n, 11)?;
        let b = uniform_matrix(n, 12)?;
        let flop = 2.0 * (n as f64).powi(3);
        let iters = iters_for_fifth_second(&a, &b)?;
        let reps = if n >= 2048 { 3 } else { 7 };
        let run = || {
            median_time(1, reps, || {
                for _ in 0..iters {
                    std::hint::black_box(a.matmul(&b).unwrap());
                }
            })
        };
        // On a worker of kiln's thread pool, as `on_thread_pool` advises: the calling thread then
        // takes a share of each threaded product instead of sleeping through it.
        let t = kiln_core::on_thread_pool(run);
        emit(&format!("W3-matmul-{n}"), threads, "gflops", flop * iters as f64 / t / 1e9);
    }
    Ok(())
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`, Linux), or None.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The matrix-product kernel alone, f32 and f64, for tuning on a shared machine: GFLOP/s by wall
/// time and by this thread's CPU time (which excludes the time other processes held the CPU), the
/// median and best of 7 repetitions of about 0.2 s. Meaningful with `--threads 1` (the product
/// then runs on this thread).
fn gemm_kernel(threads: usize, sizes: &[usize]) -> Result<()> {
    println!("# kernel f32: {}", kiln_core::cpu::gemm::kernel_name::<f32>());
    println!("# kernel f64: {}", kiln_core::cpu::gemm::kernel_name::<f64>());
    println!("# matmul: KILN_GEMM={}", std::env::var("KILN_GEMM").unwrap_or_default());
    for &n in sizes {
        println!("# n = {n}: {}", kiln_core::cpu::product_path(n, n, n, threads, true));
        for dtype in [DType::F32, DType::F64] {
            let a = uniform_matrix(n, 11)?.to_dtype(dtype)?;
            let b = uniform_matrix(n, 12)?.to_dtype(dtype)?;
            let flop = 2.0 * (n as f64).powi(3);
            let iters = iters_for_fifth_second(&a, &b)?;
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for _ in 0..7 {
                let (t, c) = (Instant::now(), thread_cpu_ns());
                for _ in 0..iters {
                    std::hint::black_box(a.matmul(&b)?);
                }
                wall.push(flop * iters as f64 / t.elapsed().as_secs_f64() / 1e9);
                if let (Some(c0), Some(c1)) = (c, thread_cpu_ns()) {
                    cpu.push(flop * iters as f64 / ((c1 - c0).max(1) as f64));
                }
            }
            let name = format!("gemm-{}-{n}", if dtype == DType::F32 { "f32" } else { "f64" });
            let med_best = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                (v[v.len() / 2], v[v.len() - 1])
            };
            let (wm, wb) = med_best(&mut wall);
            emit(&name, threads, "gflops_wall", wm);
            emit(&name, threads, "gflops_wall_best", wb);
            if !cpu.is_empty() {
                let (cm, cb) = med_best(&mut cpu);
                emit(&name, threads, "gflops_cpu", cm);
                emit(&name, threads, "gflops_cpu_best", cb);
            }
        }
    }
    Ok(())
}

/// Elementwise add of 4M f32 elements against a plain copy of the same bytes (read 2, write 1 vs
/// read 1, write 1), both into fresh buffers as a user's op would.
fn add(threads: usize) -> Result<()> {
    const N: usize = 1 << 22;
    let a = Tensor::rand([N], 0.0, 1.0, DType::F32, &mut Rng::new(1))?;
    let b = Tensor::rand([N], 0.0, 1.0, DType::F32, &mut Rng::new(2))?;
    let src = a.to_vec::<f32>()?;
    let t_add = median_time(3, 21, || {
        std::hint::black_box(a.add(&b).unwrap());
    });
    let t_copy = median_time(3, 21, || {
        std::hint::black_box(src.clone());
    });
    emit("add-4M", threads, "ms", t_add * 1e3);
    println!("add-4M memcpy {threads} ms {:.6}", t_copy * 1e3);
    emit("add-4M", threads, "ratio_to_memcpy", t_add / t_copy);
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 1;
    let mut hog = false;
    let mut sizes = vec![64, 256, 1024, 2048, 4096];
    let mut work = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => {
                threads = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--threads needs a number"))
            }
            "--hog" => hog = true,
            "--sizes" => {
                sizes = it
                    .next()
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.parse().unwrap_or_else(|_| usage("--sizes takes numbers")))
                            .collect()
                    })
                    .unwrap_or_else(|| usage("--sizes needs a list"))
            }
            w if w.starts_with("--threads=") => threads = w[10..].parse().unwrap_or_else(|_| usage("--threads needs a number")),
            w => work.push(w.to_string()),
        }
    }
    if work.is_empty() {
        usage("name a workload");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("the pool is built once");
    if hog {
        // A CPU-bound neighbour on another core: kiln's pool must degrade gracefully, not collapse.
        println!("# a busy thread runs beside the benchmark");
        std::thread::spawn(|| {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
    }
    for w in work {
        let r: std::result::Result<(), Box<dyn std::error::Error>> = match w.as_str() {
            "w1" => w1().map_err(Into::into),
            "w2" => w2().map_err(Into::into),
            "w3" => w3(threads, &sizes).map_err(Into::into),
            "gemm" => gemm_kernel(threads, &sizes).map_err(Into::into),
            "w4" => nn_workloads::w4(threads).map_err(Into::into),
            "w5" => nn_workloads::w5(threads).map_err(Into::into),
            "w6" => nn_workloads::w6(threads).map_err(Into::into),
            "conv" => conv_shapes::conv_shapes(threads).map_err(Into::into),
            "mlp" => kiln_core::on_thread_pool(|| mlp_shapes::mlp_shapes(threads)).map_err(Into::into),
            "add" => add(threads).map_err(Into::into),
            "peak" => {
                peak::peak(threads);
                Ok(())
            }
            other => usage(&format!("unknown workload {other}")),
        };
        if let Err(e) = r {
            eprintln!("kiln-bench {w}: {e}");
            std::process::exit(1);
        }
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("kiln-bench: {msg}\nusage: kiln-bench w1|w2|w3|w4|w5|w6|add|peak|gemm|conv|mlp [--threads N] [--hog] [--sizes 64,256,1024]");
    std::process::exit(2)
}
