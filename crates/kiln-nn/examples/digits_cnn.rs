//! A small CNN on the bundled digits set (8×8 images, the same seeded 80/20 split as
//! `digits_mlp`): conv 3×3 1→32 → batch norm → ReLU → conv 3×3 32→64 → batch norm → ReLU →
//! max-pool 2 → flatten → dropout 0.3 → linear 1024→10; Adam lr 1e-3, batch 64, 20 epochs.
//!
//! `cargo run --release -p kiln-nn --example digits_cnn [-- OUT_DIR]`; the last output line is
//! `test_acc <fraction>`.

use kiln_core::DType;
use kiln_nn::data::{digits_split, DataLoader};
use kiln_nn::train::{evaluate, fit_classifier, FitConfig};
use kiln_nn::{Adam, BatchNorm2d, Conv2d, Conv2dConfig, Dropout, Flatten, Func, Linear, MaxPool2d, Module, ReLU, Sequential, VarStore};

fn main() -> kiln_nn::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "out/digits_cnn".into());
    std::fs::create_dir_all(&out).map_err(|e| kiln_nn::Error::Io {
        op: "digits_cnn",
        path: out.clone().into(),
        source: e,
    })?;
    let (train, test) = digits_split(42)?;
    let vs = VarStore::new(DType::F32, 11);
    let same = Conv2dConfig {
        padding: (1, 1),
        ..Default::default()
    };
    let model = Sequential::new()
        // The data set stores flat 64-pixel rows; the convolutions want [N, 1, 8, 8].
        .add(Func::new(|x| Ok(x.reshape([x.dims()[0], 1, 8, 8])?)))
        .add(Conv2d::new(&vs.pp(1), 1, 32, (3, 3), same)?)
        .add(BatchNorm2d::new_2d(&vs.pp(2), 32)?)
        .add(ReLU)
        .add(Conv2d::new(&vs.pp(4), 32, 64, (3, 3), same)?)
        .add(BatchNorm2d::new_2d(&vs.pp(5), 64)?)
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Dropout::new(0.3, 17)?)
        .add(Linear::new(&vs.pp(10), 64 * 4 * 4, 10)?);
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
    hist.plot_svg(format!("{out}/curves.svg"), "digits CNN")?;
    println!("wrote {out}/metrics.csv and {out}/curves.svg");
    let (_, acc) = evaluate(&model, &test, 512)?;
    println!("test_acc {acc:.4}");
    Ok(())
}
