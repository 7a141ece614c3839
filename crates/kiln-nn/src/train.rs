//! An optional training loop for classifiers: progress bar (epoch, loss, throughput), a metrics
//! CSV log and an SVG plot of the loss and accuracy curves.

use crate::data::{DataLoader, Dataset};
use crate::loss::{accuracy, cross_entropy};
use crate::module::Module;
use crate::optim::{clip_grad_norm, Optimizer};
use crate::schedule::LrScheduler;
use crate::{Error, Result};
use kiln_core::{no_grad, Tensor};
use std::path::Path;
use std::time::Instant;

/// Points, legend label and colour of one plotted curve.
type Curve<'a> = (&'a Vec<(f64, f64)>, &'a str, plotters::style::RGBColor);

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Training accuracy over the epoch (measured on the fly, in training mode).
    pub train_acc: f64,
    /// Loss on the evaluation set, if one was given.
    pub eval_loss: Option<f64>,
    /// Accuracy on the evaluation set, if one was given.
    pub eval_acc: Option<f64>,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall time of the training part of the epoch.
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
}

/// Per-epoch metrics of a run.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// One row per epoch.
    pub epochs: Vec<EpochMetrics>,
}

fn opt_num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

impl History {
    /// Writes the metrics as CSV (header `epoch,train_loss,train_acc,eval_loss,eval_acc,lr,seconds,samples_per_s`).
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut s = String::from("epoch,train_loss,train_acc,eval_loss,eval_acc,lr,seconds,samples_per_s\n");
        for m in &self.epochs {
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                m.epoch,
                m.train_loss,
                m.train_acc,
                opt_num(m.eval_loss),
                opt_num(m.eval_acc),
                m.lr,
                m.seconds,
                m.samples_per_s
            ));
        }
        crate::serialize::write_atomic(path, s.as_bytes())
    }

    /// Draws the loss curves (left) and accuracy curves (right) into an SVG file.
    pub fn plot_svg(&self, path: impl AsRef<Path>, title: &str) -> Result<()> {
        use plotters::prelude::*;
        let path = path.as_ref();
        let perr = |e: String| Error::format("History::plot_svg", path.display(), e);
        if self.epochs.is_empty() {
            return Err(perr("no epochs to plot".into()));
        }
        let n = self.epochs.len() as f64;
        let series = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
            self.epochs.iter().filter_map(|m| f(m).map(|v| (m.epoch as f64, v))).collect()
        };
        let tl = series(&|m| Some(m.train_loss));
        let el = series(&|m| m.eval_loss);
        let ta = series(&|m| Some(m.train_acc));
        let ea = series(&|m| m.eval_acc);
        let lmax = tl.iter().chain(&el).map(|p| p.1).filter(|v| v.is_finite()).fold(0.0f64, f64::max) * 1.05;
        let amin = ta.iter().chain(&ea).map(|p| p.1).fold(1.0f64, f64::min).max(0.0);
        let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| perr(e.to_string()))?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(|e| perr(e.to_string()))?;
        let (left, right) = root.split_horizontally(500);
        let draw = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                    caption: &str,
                    y: std::ops::Range<f64>,
                    lines: [Curve<'_>; 2]|
         -> std::result::Result<(), String> {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(1f64..n.max(2.0), y)
                .map_err(|e| e.to_string())?;
            chart.configure_mesh().x_desc("epoch").draw().map_err(|e| e.to_string())?;
            for (pts, label, color) in lines {
                if pts.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color))
                    .map_err(|e| e.to_string())?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()
                .map_err(|e| e.to_string())?;
            Ok(())
        };
        draw(&left, "loss", 0.0..lmax.max(1e-3), [(&tl, "train", BLUE), (&el, "eval", RED)]).map_err(perr)?;
        draw(
            &right,
            "accuracy",
            (amin - 0.02).max(0.0)..1.0,
            [(&ta, "train", BLUE), (&ea, "eval", RED)],
        )
        .map_err(perr)?;
        root.present().map_err(|e| perr(e.to_string()))?;
        Ok(())
    }
}

/// Settings of [`fit_classifier`].
pub struct FitConfig<'a> {
    /// Number of epochs.
    pub epochs: usize,
    /// Show an indicatif progress bar (hidden automatically when stderr is not a terminal).
    pub progress: bool,
    /// Clip the global gradient norm to this value before each step.
    pub clip_grad_norm: Option<f64>,
    /// Evaluated after each epoch (eval mode, no grad).
    pub eval: Option<&'a dyn Dataset>,
    /// Stepped after each epoch and written into the optimiser.
    pub scheduler: Option<&'a mut dyn LrScheduler>,
    /// Print one summary line per epoch to stdout.
    pub log_epochs: bool,
}

impl Default for FitConfig<'_> {
    fn default() -> Self {
        FitConfig {
            epochs: 1,
            progress: true,
            clip_grad_norm: None,
            eval: None,
            scheduler: None,
            log_epochs: false,
        }
    }
}

/// Mean cross-entropy and accuracy of `model` on `ds`, in eval mode without gradients (the
/// module's previous mode is restored).
pub fn evaluate(model: &dyn Module, ds: &dyn Dataset, batch_size: usize) -> Result<(f64, f64)> {
    let was = model.is_training();
    model.eval();
    let res = no_grad(|| -> Result<(f64, f64)> {
        let n = ds.len();
        let (mut loss, mut correct) = (0.0, 0.0);
        let idx: Vec<usize> = (0..n).collect();
        for c in idx.chunks(batch_size.max(1)) {
            let (x, y) = ds.get_batch(c)?;
            let logits = model.forward(&x)?;
            loss += cross_entropy(&logits, &y)?.item()? * c.len() as f64;
            correct += accuracy(&logits, &y)? * c.len() as f64;
        }
        Ok((loss / n as f64, correct / n as f64))
    });
    model.set_training(was);
    res
}

/// Trains a classifier with cross-entropy: for each epoch, every batch of `loader` goes through
/// forward, loss, backward and `opt.step`; then the optional evaluation and scheduler run.
pub fn fit_classifier(model: &dyn Module, opt: &mut dyn Optimizer, loader: &mut DataLoader, cfg: FitConfig<'_>) -> Result<History> {
    // On a worker of the kernels' thread pool: see `kiln_core::on_thread_pool`.
    kiln_core::on_thread_pool(move || fit_on_this_thread(model, opt, loader, cfg))
}

fn fit_on_this_thread(model: &dyn Module, opt: &mut dyn Optimizer, loader: &mut DataLoader, mut cfg: FitConfig<'_>) -> Result<History> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let mut hist = History::default();
    let vars = opt.vars();
    let total = (cfg.epochs * loader.num_batches()) as u64;
    let pb = if cfg.progress {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} batches {elapsed_precise} | {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for epoch in 1..=cfg.epochs {
        model.train();
        let lr = opt.learning_rate();
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0.0, 0usize);
        for batch in loader.iter() {
            let (x, y) = batch?;
            let bs = x.dims()[0];
            let logits = model.forward(&x)?;
            let loss = cross_entropy(&logits, &y)?;
            let mut grads = loss.backward()?;
            let l = loss.item()?;
            let acc = no_grad(|| accuracy(&logits.detach(), &y))?;
            // The graph goes before the update, so the optimiser can write over the parameters
            // in place (see `Optimizer::minimize`).
            drop((loss, logits));
            if let Some(max) = cfg.clip_grad_norm {
                clip_grad_norm(&mut grads, &vars, max)?;
            }
            opt.step(&grads)?;
            loss_sum += l * bs as f64;
            correct += acc * bs as f64;
            seen += bs;
            let el = t0.elapsed().as_secs_f64();
            pb.set_message(format!(
                "epoch {epoch}/{} loss {l:.4} {:.0} samples/s",
                cfg.epochs,
                seen as f64 / el.max(1e-9)
            ));
            pb.inc(1);
        }
        let secs = t0.elapsed().as_secs_f64();
        let (eval_loss, eval_acc) = match cfg.eval {
            Some(ds) => {
                let (l, a) = evaluate(model, ds, 256)?;
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct / seen.max(1) as f64,
            eval_loss,
            eval_acc,
            lr,
            seconds: secs,
            samples_per_s: seen as f64 / secs.max(1e-9),
        };
        if cfg.log_epochs {
            pb.suspend(|| {
                println!(
                    "epoch {:>3} loss {:.4} train_acc {:.4} eval_loss {} eval_acc {} lr {:.2e} {:.0} samples/s",
                    m.epoch,
                    m.train_loss,
                    m.train_acc,
                    m.eval_loss.map(|v| format!("{v:.4}")).unwrap_or("-".into()),
                    m.eval_acc.map(|v| format!("{v:.4}")).unwrap_or("-".into()),
                    m.lr,
                    m.samples_per_s
                )
            });
        }
        hist.epochs.push(m);
        if let Some(s) = cfg.scheduler.as_deref_mut() {
            s.step_optimizer(opt);
        }
    }
    pb.finish_and_clear();
    Ok(hist)
}

/// Runs `model` on `x` without recording gradients (inference).
pub fn predict(model: &dyn Module, x: &Tensor) -> Result<Tensor> {
    no_grad(|| model.forward(x))
}
