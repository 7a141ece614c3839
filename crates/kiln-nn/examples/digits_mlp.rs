//! Digits MLP (the W4 recipe): 64-256-256-10 with ReLU, cross-entropy, Adam lr 1e-3, batch 64,
//! 20 epochs, on the bundled digits set with the seeded 80/20 split, initial weights and batch
//! order of the shared benchmark (so its numbers compare with the PyTorch reference).
//!
//! `cargo run --release -p kiln-nn --example digits_mlp [-- OUT_DIR]` writes `metrics.csv` and
//! `curves.svg` to OUT_DIR (default `out/digits_mlp`); the last output line is `test_acc <fraction>`.

use kiln_core::{DType, Rng, Tensor};
use kiln_nn::data::{digits_split, DataLoader};
use kiln_nn::train::{evaluate, fit_classifier, FitConfig};
use kiln_nn::{Adam, Linear, Module, ReLU, Sequential, VarStore};

fn main() -> kiln_nn::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "out/digits_mlp".into());
    std::fs::create_dir_all(&out).map_err(|e| kiln_nn::Error::Io {
        op: "digits_mlp",
        path: out.clone().into(),
        source: e,
    })?;
    let (train, test) = digits_split(42)?;
    let vs = VarStore::new(DType::F32, 3);
    let model = Sequential::new()
        .add(Linear::new(&vs.pp(0), 64, 256)?)
        .add(ReLU)
        .add(Linear::new(&vs.pp(2), 256, 256)?)
        .add(ReLU)
        .add(Linear::new(&vs.pp(4), 256, 10)?);
    w4_init(&model, 3)?;
    println!("parameters: {}", model.num_parameters());
    let mut opt = Adam::new(model.parameters(), 1e-3)?;
    let mut loader = DataLoader::new(train, 64).shuffle(true, 7);
    let t0 = std::time::Instant::now();
    let hist = fit_classifier(
        &model,
        &mut opt,
        &mut loader,
        FitConfig {
            epochs: 20,
            eval: Some(&test),
            log_epochs: true,
            ..Default::default()
        },
    )?;
    println!("train time {:.2} s", t0.elapsed().as_secs_f64());
    hist.write_csv(format!("{out}/metrics.csv"))?;
    hist.plot_svg(format!("{out}/curves.svg"), "digits MLP 64-256-256-10")?;
    println!("wrote {out}/metrics.csv and {out}/curves.svg");
    let (_, acc) = evaluate(&model, &test, 512)?;
    println!("test_acc {acc:.4}");
    Ok(())
}

/// The benchmark's `init_mlp(sizes, seed)`: one SplitMix64 stream; per layer, W as
/// `[fan_in, fan_out]` row-major then b, each `(2u - 1)/sqrt(fan_in)` rounded to f32. kiln stores
/// the weight as `[out, in]`, so W is transposed into place.
fn w4_init(model: &Sequential, seed: u64) -> kiln_nn::Result<()> {
    let mut rng = Rng::new(seed);
    let params = model.named_parameters();
    for pair in params.chunks(2) {
        let (w, b) = (&pair[0].1, &pair[1].1);
        let (fan_out, fan_in) = (w.shape().dims()[0], w.shape().dims()[1]);
        let s = 1.0 / (fan_in as f64).sqrt();
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| ((2.0 * rng.uniform01() - 1.0) * s) as f32).collect() };
        let wt = Tensor::from_vec(draw(fan_in * fan_out), [fan_in, fan_out])?;
        w.set(&wt.t()?.contiguous()?)?;
        b.set(&Tensor::from_vec(draw(fan_out), [fan_out])?)?;
    }
    Ok(())
}
