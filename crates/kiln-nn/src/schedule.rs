//! Learning-rate schedules (`torch.optim.lr_scheduler`), stepped once per epoch.
//!
//! Each scheduler knows the lr for the current epoch ([`LrScheduler::lr`]); [`LrScheduler::step`]
//! advances one epoch. Apply it to an optimiser with [`LrScheduler::apply`] (or
//! [`LrScheduler::step_optimizer`], which steps and applies).

use crate::optim::Optimizer;
use crate::{Error, Result};
use std::f64::consts::PI;

/// A per-epoch learning-rate schedule.
pub trait LrScheduler: Send {
    /// The learning rate for the current epoch.
    fn lr(&self) -> f64;
    /// Advances one epoch.
    fn step(&mut self);
    /// Writes the current lr into `opt`.
    fn apply(&self, opt: &mut dyn Optimizer) {
        opt.set_learning_rate(self.lr())
    }
    /// Advances one epoch and writes the new lr into `opt` (PyTorch's `scheduler.step()`).
    fn step_optimizer(&mut self, opt: &mut dyn Optimizer) {
        self.step();
        self.apply(opt);
    }
}

/// `base · gamma^⌊epoch / step_size⌋` (`StepLR`).
#[derive(Debug, Clone)]
pub struct StepLr {
    base: f64,
    step_size: usize,
    gamma: f64,
    epoch: usize,
}

impl StepLr {
    /// `StepLR(step_size, gamma)` starting from `base_lr`.
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Result<StepLr> {
        if step_size == 0 {
            return Err(Error::config("StepLR", "step_size must be positive"));
        }
        Ok(StepLr {
            base: base_lr,
            step_size,
            gamma,
            epoch: 0,
        })
    }
}

impl LrScheduler for StepLr {
    fn lr(&self) -> f64 {
        self.base * self.gamma.powi((self.epoch / self.step_size) as i32)
    }
    fn step(&mut self) {
        self.epoch += 1
    }
}

/// `base · gamma^epoch` (`ExponentialLR`).
#[derive(Debug, Clone)]
pub struct ExponentialLr {
    base: f64,
    gamma: f64,
    epoch: usize,
}

impl ExponentialLr {
    /// `ExponentialLR(gamma)` from `base_lr`.
    pub fn new(base_lr: f64, gamma: f64) -> ExponentialLr {
        ExponentialLr {
            base: base_lr,
            gamma,
            epoch: 0,
        }
    }
}

impl LrScheduler for ExponentialLr {
    fn lr(&self) -> f64 {
        self.base * self.gamma.powi(self.epoch as i32)
    }
    fn step(&mut self) {
        self.epoch += 1
    }
}

/// `eta_min + (base - eta_min)(1 + cos(π·epoch/T_max))/2` (`CosineAnnealingLR`; keeps oscillating
/// with period `2·T_max` after `T_max`, like PyTorch).
#[derive(Debug, Clone)]
pub struct CosineAnnealingLr {
    base: f64,
    t_max: usize,
    eta_min: f64,
    epoch: usize,
}

impl CosineAnnealingLr {
    /// `CosineAnnealingLR(T_max, eta_min)` from `base_lr`.
    pub fn new(base_lr: f64, t_max: usize, eta_min: f64) -> Result<CosineAnnealingLr> {
        if t_max == 0 {
            return Err(Error::config("CosineAnnealingLR", "T_max must be positive"));
        }
        Ok(CosineAnnealingLr {
            base: base_lr,
            t_max,
            eta_min,
            epoch: 0,
        })
    }
}

impl LrScheduler for CosineAnnealingLr {
    fn lr(&self) -> f64 {
        let c = (PI * self.epoch as f64 / self.t_max as f64).cos();
        self.eta_min + (self.base - self.eta_min) * (1.0 + c) / 2.0
    }
    fn step(&mut self) {
        self.epoch += 1
    }
}

/// Cosine annealing restarted after `T_0`, then `T_0·T_mult`, ... epochs
/// (`CosineAnnealingWarmRestarts`).
#[derive(Debug, Clone)]
pub struct CosineAnnealingWarmRestarts {
    base: f64,
    t_i: usize,
    t_mult: usize,
    eta_min: f64,
    t_cur: usize,
}

impl CosineAnnealingWarmRestarts {
    /// `CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)` from `base_lr`.
    pub fn new(base_lr: f64, t_0: usize, t_mult: usize, eta_min: f64) -> Result<CosineAnnealingWarmRestarts> {
        if t_0 == 0 || t_mult == 0 {
            return Err(Error::config(
                "CosineAnnealingWarmRestarts",
                format!("T_0 ({t_0}) and T_mult ({t_mult}) must be positive"),
            ));
        }
        Ok(CosineAnnealingWarmRestarts {
            base: base_lr,
            t_i: t_0,
            t_mult,
            eta_min,
            t_cur: 0,
        })
    }
}

impl LrScheduler for CosineAnnealingWarmRestarts {
    fn lr(&self) -> f64 {
        let c = (PI * self.t_cur as f64 / self.t_i as f64).cos();
        self.eta_min + (self.base - self.eta_min) * (1.0 + c) / 2.0
    }
    fn step(&mut self) {
        self.t_cur += 1;
        if self.t_cur >= self.t_i {
            self.t_cur -= self.t_i;
            self.t_i *= self.t_mult;
        }
    }
}

/// Linear warm-up of the factor from `start_factor` to `end_factor` over `total_iters` epochs
/// (`LinearLR`), constant afterwards.
#[derive(Debug, Clone)]
pub struct LinearLr {
    base: f64,
    start: f64,
    end: f64,
    total: usize,
    epoch: usize,
}

impl LinearLr {
    /// `LinearLR(start_factor, end_factor, total_iters)` from `base_lr`.
    pub fn new(base_lr: f64, start_factor: f64, end_factor: f64, total_iters: usize) -> LinearLr {
        LinearLr {
            base: base_lr,
            start: start_factor,
            end: end_factor,
            total: total_iters,
            epoch: 0,
        }
    }
}

impl LrScheduler for LinearLr {
    fn lr(&self) -> f64 {
        let f = if self.total == 0 || self.epoch >= self.total {
            self.end
        } else {
            self.start + (self.end - self.start) * self.epoch as f64 / self.total as f64
        };
        self.base * f
    }
    fn step(&mut self) {
        self.epoch += 1
    }
}

/// Whether a smaller or a larger metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (losses).
    Min,
    /// Higher is better (accuracies).
    Max,
}

/// Multiplies the lr by `factor` when the metric has not improved (by more than the relative
/// `threshold`) for more than `patience` epochs (`ReduceLROnPlateau`, threshold mode `rel`).
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    lr: f64,
    /// Min or max.
    pub mode: PlateauMode,
    /// Multiplier applied on a plateau.
    pub factor: f64,
    /// Bad epochs tolerated.
    pub patience: usize,
    /// Relative improvement needed.
    pub threshold: f64,
    /// Epochs to wait after a reduction before counting bad epochs again.
    pub cooldown: usize,
    /// Lower bound of the lr.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped.
    pub eps: f64,
    best: Option<f64>,
    bad: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults: mode min, factor 0.1, patience 10, threshold 1e-4, no cooldown.
    pub fn new(lr: f64) -> ReduceLrOnPlateau {
        ReduceLrOnPlateau {
            lr,
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: None,
            bad: 0,
            cooldown_left: 0,
        }
    }
    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    fn better(&self, m: f64) -> bool {
        match (self.best, self.mode) {
            (None, _) => true,
            (Some(b), PlateauMode::Min) => m < b * (1.0 - self.threshold),
            (Some(b), PlateauMode::Max) => m > b * (1.0 + self.threshold),
        }
    }
    /// Records the epoch's metric and returns the lr for the next epoch.
    pub fn step(&mut self, metric: f64) -> f64 {
        if self.better(metric) {
            self.best = Some(metric);
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad = 0;
        }
        if self.bad > self.patience {
            let new = (self.lr * self.factor).max(self.min_lr);
            if self.lr - new > self.eps {
                self.lr = new;
            }
            self.cooldown_left = self.cooldown;
            self.bad = 0;
        }
        self.lr
    }
    /// [`ReduceLrOnPlateau::step`] and write the lr into `opt`.
    pub fn step_optimizer(&mut self, metric: f64, opt: &mut dyn Optimizer) {
        let lr = self.step(metric);
        opt.set_learning_rate(lr);
    }
}

/// `base · gamma^(number of milestones ≤ epoch)` (`MultiStepLR`; a milestone listed twice
/// multiplies twice, as PyTorch's `Counter` of milestones does).
#[derive(Debug, Clone)]
pub struct MultiStepLr {
    base: f64,
    milestones: Vec<usize>,
    gamma: f64,
    epoch: usize,
}

impl MultiStepLr {
    /// `MultiStepLR(milestones, gamma)` from `base_lr`; the milestones may come in any order.
    pub fn new(base_lr: f64, milestones: &[usize], gamma: f64) -> MultiStepLr {
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        MultiStepLr {
            base: base_lr,
            milestones,
            gamma,
            epoch: 0,
        }
    }
}

impl LrScheduler for MultiStepLr {
    fn lr(&self) -> f64 {
        let passed = self.milestones.partition_point(|&m| m <= self.epoch);
        self.base * self.gamma.powi(passed as i32)
    }
    fn step(&mut self) {
        self.epoch += 1
    }
}

/// How [`OneCycleLr`] moves between two values within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnnealStrategy {
    /// Half a cosine (`anneal_strategy="cos"`, the default).
    #[default]
    Cos,
    /// A straight line (`anneal_strategy="linear"`).
    Linear,
}

impl AnnealStrategy {
    fn anneal(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            AnnealStrategy::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            AnnealStrategy::Linear => (end - start) * pct + start,
        }
    }
}

/// `OneCycleLR` keyword arguments besides `max_lr` and the total step count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycleLrConfig {
    /// Fraction of the steps spent increasing the lr, default 0.3.
    pub pct_start: f64,
    /// Default cosine.
    pub anneal_strategy: AnnealStrategy,
    /// Momentum moves inversely to the lr between these, defaults 0.85 and 0.95.
    pub base_momentum: f64,
    /// See `base_momentum`.
    pub max_momentum: f64,
    /// Initial lr = `max_lr / div_factor`, default 25.
    pub div_factor: f64,
    /// Final lr = initial lr / `final_div_factor`, default 1e4.
    pub final_div_factor: f64,
    /// Go back down to the initial lr before annealing to the final one (three phases), default false.
    pub three_phase: bool,
}

impl Default for OneCycleLrConfig {
    fn default() -> Self {
        OneCycleLrConfig {
            pct_start: 0.3,
            anneal_strategy: AnnealStrategy::Cos,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

/// One phase of the cycle: ends at step `end` (fractional, as PyTorch computes it), moving the lr
/// and the momentum between the two values.
#[derive(Debug, Clone, Copy)]
struct Phase {
    end: f64,
    lr: (f64, f64),
    momentum: (f64, f64),
}

/// The 1cycle policy (`OneCycleLR`), stepped once per batch: the lr rises from `max_lr /
/// div_factor` to `max_lr` over `pct_start` of the steps, then anneals to the initial lr divided
/// by `final_div_factor` (with `three_phase`, first back to the initial lr, then down to the
/// final one). [`OneCycleLr::momentum`] gives PyTorch's inverse momentum cycle for an optimiser
/// whose momentum the caller sets.
///
/// PyTorch raises when stepped more than `total_steps` times; here the schedule holds the value of
/// step `total_steps`.
#[derive(Debug, Clone)]
pub struct OneCycleLr {
    phases: Vec<Phase>,
    anneal: AnnealStrategy,
    total_steps: usize,
    step_num: usize,
}

impl OneCycleLr {
    /// `OneCycleLR(max_lr, total_steps)` with PyTorch's defaults.
    pub fn new(max_lr: f64, total_steps: usize) -> Result<OneCycleLr> {
        OneCycleLr::with_config(max_lr, total_steps, &OneCycleLrConfig::default())
    }

    /// `OneCycleLR(max_lr, total_steps, **config)`. For PyTorch's `epochs` and `steps_per_epoch`
    /// pass their product as `total_steps`.
    pub fn with_config(max_lr: f64, total_steps: usize, cfg: &OneCycleLrConfig) -> Result<OneCycleLr> {
        if total_steps == 0 {
            return Err(Error::config("OneCycleLR", "total_steps must be positive"));
        }
        if !(0.0..=1.0).contains(&cfg.pct_start) {
            return Err(Error::config(
                "OneCycleLR",
                format!("pct_start must be in [0, 1], got {}", cfg.pct_start),
            ));
        }
        let initial = max_lr / cfg.div_factor;
        let min_lr = initial / cfg.final_div_factor;
        let total = total_steps as f64;
        let up = cfg.pct_start * total - 1.0;
        let (lo_m, hi_m) = (cfg.base_momentum, cfg.max_momentum);
        let phases = if cfg.three_phase {
            vec![
                Phase {
                    end: up,
                    lr: (initial, max_lr),
                    momentum: (hi_m, lo_m),
                },
                Phase {
                    end: 2.0 * cfg.pct_start * total - 2.0,
                    lr: (max_lr, initial),
                    momentum: (lo_m, hi_m),
                },
                Phase {
                    end: total - 1.0,
                    lr: (initial, min_lr),
                    momentum: (hi_m, hi_m),
                },
            ]
        } else {
            vec![
                Phase {
                    end: up,
                    lr: (initial, max_lr),
                    momentum: (hi_m, lo_m),
                },
                Phase {
                    end: total - 1.0,
                    lr: (max_lr, min_lr),
                    momentum: (lo_m, hi_m),
                },
            ]
        };
        // PyTorch divides by each phase's length when a step falls in it; a zero-length phase that
        // can be reached is a division by zero there, so refuse it up front.
        let mut start = 0.0;
        for (i, ph) in phases.iter().enumerate() {
            if ph.end == start && (i == 0 || i + 1 == phases.len()) {
                return Err(Error::config(
                    "OneCycleLR",
                    format!(
                        "phase {} has zero length (pct_start {}, total_steps {total_steps}); use more steps or another pct_start",
                        i + 1,
                        cfg.pct_start
                    ),
                ));
            }
            start = ph.end;
        }
        Ok(OneCycleLr {
            phases,
            anneal: cfg.anneal_strategy,
            total_steps,
            step_num: 0,
        })
    }

    /// `(lr, momentum)` at the current step: the phase holding the step (or the last one) and the
    /// fraction of it already done.
    fn values(&self) -> (f64, f64) {
        let step = self.step_num.min(self.total_steps) as f64;
        let mut start = 0.0;
        for (i, ph) in self.phases.iter().enumerate() {
            if step <= ph.end || i + 1 == self.phases.len() {
                let pct = (step - start) / (ph.end - start);
                return (
                    self.anneal.anneal(ph.lr.0, ph.lr.1, pct),
                    self.anneal.anneal(ph.momentum.0, ph.momentum.1, pct),
                );
            }
            start = ph.end;
        }
        unreachable!("the last phase always matches")
    }

    /// The momentum (SGD's `momentum`, Adam's `β1`) PyTorch sets with `cycle_momentum=True`.
    pub fn momentum(&self) -> f64 {
        self.values().1
    }
}

impl LrScheduler for OneCycleLr {
    fn lr(&self) -> f64 {
        self.values().0
    }
    fn step(&mut self) {
        self.step_num = self.step_num.saturating_add(1)
    }
}
