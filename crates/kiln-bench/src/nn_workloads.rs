//! W4 (digits MLP, Adam), W5 (MLP 784-512-512-10, SGD with momentum) and W6 (small CNN, SGD) with
//! kiln-nn's layers, losses and optimisers, on the same data, initial weights and batch order as
//! the peers' scripts (../shared/bench/w4_digits.py, w5_mlp.py, w6_cnn.py).

use crate::emit;
use kiln_core::random::{init_mlp, Rng};
use kiln_core::{no_grad, Tensor, Var};
use kiln_nn::data::{digits_split, Dataset};
use kiln_nn::loss::{accuracy, cross_entropy};
use kiln_nn::{Adam, Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Module, Optimizer, ReLU, Result, Sequential, Sgd};
use std::time::Instant;

/// The median as Python's `statistics.median` takes it (mean of the middle two for an even count).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One tensor `f32((2u - 1) / sqrt(fan_in))` from its own SplitMix64 stream, row-major (common.py's
/// `init_uniform`).
fn init_uniform(shape: &[usize], fan_in: usize, seed: u64) -> Result<Tensor> {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let s = (fan_in as f64).sqrt();
    let v: Vec<f32> = (0..n).map(|_| ((2.0 * rng.uniform01() - 1.0) / s) as f32).collect();
    Ok(Tensor::from_vec(v, shape)?)
}

/// x = `f32(uniform01)` from stream `seed` (`[batch, *feat]`), labels = `next_u64() % classes` (i64)
/// from stream `seed + 1` (common.py's `synthetic_batch`).
fn synthetic_batch(seed: u64, batch: usize, feat: &[usize], classes: u64) -> Result<(Tensor, Tensor)> {
    let mut shape = vec![batch];
    shape.extend_from_slice(feat);
    let n: usize = shape.iter().product();
    let mut rx = Rng::new(seed);
    let x: Vec<f32> = (0..n).map(|_| rx.uniform01() as f32).collect();
    let mut ry = Rng::new(seed + 1);
    let y: Vec<i64> = (0..batch).map(|_| (ry.next_u64() % classes) as i64).collect();
    Ok((Tensor::from_vec(x, shape)?, Tensor::from_vec(y, [batch])?))
}

/// `nn.Linear` layers from `init_mlp`'s `(W [in, out], b)`: PyTorch's weight is `Wᵀ`, so the
/// scripts' `l.weight.copy_(W.T)` becomes a contiguous transpose here.
fn linear_from(w: &Tensor, b: &Tensor) -> Result<Linear> {
    Linear::from_vars(Var::new(&w.t()?.contiguous()?), Some(Var::new(b)))
}

/// `Linear, ReLU, Linear, ReLU, ..., Linear` from `init_mlp(sizes, seed)`.
fn mlp(sizes: &[usize], seed: u64) -> Result<Sequential> {
    let layers = init_mlp(sizes, seed)?;
    let last = layers.len() - 1;
    let mut model = Sequential::new();
    for (i, (w, b)) in layers.iter().enumerate() {
        model.push(linear_from(w, b)?);
        if i < last {
            model.push(ReLU);
        }
    }
    Ok(model)
}

/// W4: digits MLP 64-256-256-10, Adam lr 1e-3, batch 64, 1 warm-up + 20 timed epochs.
pub fn w4(threads: usize) -> Result<()> {
    const WL: &str = "W4-digits";
    const EPOCHS: usize = 20;
    const BATCH: usize = 64;
    let (train, test) = digits_split(42)?;
    let model = mlp(&[64, 256, 256, 10], 3)?;
    let mut opt = Adam::new(model.parameters(), 1e-3)?.betas(0.9, 0.999).eps(1e-8);
    let n = train.len();
    let mut rng = Rng::new(7);
    let mut times = Vec::with_capacity(EPOCHS);
    let mut last = 0.0;
    let train_all = || -> Result<()> {
        for ep in 0..=EPOCHS {
            let mut idx: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut idx);
            let t0 = Instant::now();
            let mut loss = None;
            for chunk in idx.chunks(BATCH) {
                let (x, y) = train.get_batch(chunk)?; // the gather `X[idx]` is timed, as in the scripts
                                                      // In a `let` of its own, so the forward's temporaries are gone before the update.
                let l = cross_entropy(&model.forward(&x)?, &y)?;
                loss = Some(opt.minimize(l)?);
            }
            last = loss.expect("at least one batch").item()?;
            let dt = t0.elapsed().as_secs_f64();
            if ep == 0 {
                emit(WL, threads, "warmup_epoch_s", dt);
            } else {
                times.push(dt);
            }
        }
        Ok(())
    };
    on_pool_unless_asked(train_all)?;
    let total: f64 = times.iter().sum();
    emit(WL, threads, "samples_per_s", n as f64 / median(times));
    emit(WL, threads, "samples_per_s_total", (n * EPOCHS) as f64 / total);
    emit(WL, threads, "final_batch_loss", last);
    let acc = |x: &Tensor, y: &Tensor| no_grad(|| accuracy(&model.forward(x)?, y));
    emit(WL, threads, "train_acc", acc(&train.x, &train.y)?);
    emit(WL, threads, "test_acc", acc(&test.x, &test.y)?);
    Ok(())
}

/// Runs a training loop on a worker of kiln's thread pool, as the documentation of
/// `on_thread_pool` advises for multi-threaded training, or on the calling thread when
/// `KILN_BENCH_ON_MAIN=1` (a user who never calls it).
fn on_pool_unless_asked<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if std::env::var("KILN_BENCH_ON_MAIN").is_ok_and(|v| v == "1") {
        f()
    } else {
        kiln_core::on_thread_pool(f)
    }
}

/// Runs `step` 10 times, then `reps` reps of `steps` steps (each ended by reading the loss);
/// returns the median rep seconds.
fn time_steps(steps: usize, reps: usize, mut step: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    for _ in 0..10 {
        step()?;
    }
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        let mut loss = None;
        for _ in 0..steps {
            loss = Some(step()?);
        }
        loss.expect("at least one step").item()?;
        ts.push(t0.elapsed().as_secs_f64());
    }
    Ok(median(ts))
}

/// The W5/W6 timing: cycle through `batches`, one cross-entropy step each, and report samples/s
/// and ms/step of the median rep of `steps` steps.
fn train_throughput(
    wl: &str,
    threads: usize,
    batches: &[(Tensor, Tensor)],
    model: &impl Module,
    opt: &mut impl Optimizer,
    steps: usize,
) -> Result<()> {
    let batch = batches[0].0.dims()[0];
    let mut i = 0;
    let run = || {
        time_steps(steps, 7, || {
            let (x, y) = &batches[i % batches.len()];
            i += 1;
            let loss = cross_entropy(&model.forward(x)?, y)?;
            opt.minimize(loss)
        })
    };
    let t = on_pool_unless_asked(run)?;
    emit(wl, threads, "samples_per_s", (steps * batch) as f64 / t);
    emit(wl, threads, "ms_per_step", t / steps as f64 * 1e3);
    Ok(())
}

/// Peak resident set size in MiB (`VmHWM` of /proc/self/status), if the kernel reports it.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// W5: MLP 784-512-512-10 on 8 synthetic batches of 128, SGD lr 0.01 momentum 0.9.
pub fn w5(threads: usize) -> Result<()> {
    const WL: &str = "W5-mlp784";
    const B: usize = 128;
    const STEPS: usize = 50;
    let batches = (0..8)
        .map(|k| synthetic_batch(1000 + 2 * k, B, &[784], 10))
        .collect::<Result<Vec<_>>>()?;
    let model = mlp(&[784, 512, 512, 10], 5)?;
    let mut opt = Sgd::new(model.parameters(), 0.01)?.momentum(0.9);
    train_throughput(WL, threads, &batches, &model, &mut opt, STEPS)?;
    if let Some(mb) = peak_rss_mb() {
        emit(WL, threads, "peak_rss_mb", mb);
    }
    Ok(())
}

/// W6: conv(1→16)-relu-pool-conv(16→32)-relu-pool-flatten-linear(1568→10) on 8 synthetic batches
/// of 64 (NCHW), plain SGD lr 0.01.
pub fn w6(threads: usize) -> Result<()> {
    const WL: &str = "W6-cnn";
    const B: usize = 64;
    const STEPS: usize = 30;
    let batches = (0..8)
        .map(|k| synthetic_batch(2000 + 2 * k, B, &[1, 28, 28], 10))
        .collect::<Result<Vec<_>>>()?;
    let conv = |w: Tensor, b: Tensor| Conv2d {
        weight: Var::new(&w),
        bias: Some(Var::new(&b)),
        config: Conv2dConfig {
            padding: (1, 1),
            ..Conv2dConfig::default()
        },
    };
    let c1 = conv(init_uniform(&[16, 1, 3, 3], 9, 21)?, init_uniform(&[16], 9, 22)?);
    let c2 = conv(init_uniform(&[32, 16, 3, 3], 144, 23)?, init_uniform(&[32], 144, 24)?);
    let fc = linear_from(&init_uniform(&[1568, 10], 1568, 25)?, &init_uniform(&[10], 1568, 26)?)?;
    let model = Sequential::new()
        .add(c1)
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(c2)
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(fc);
    let mut opt = Sgd::new(model.parameters(), 0.01)?;
    train_throughput(WL, threads, &batches, &model, &mut opt, STEPS)
}
