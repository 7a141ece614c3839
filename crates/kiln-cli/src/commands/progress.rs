//! A progress bar on stderr that only appears once a run has taken longer
//! than a second, and never when stderr is not a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run must take before its bar is drawn.
const DELAY: Duration = Duration::from_secs(1);

/// A lazily shown progress bar.
pub struct Bar {
    enabled: bool,
    start: Instant,
    len: u64,
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar of `len` steps; `quiet` (e.g. `--json`) keeps it hidden.
    pub fn new(len: u64, quiet: bool) -> Bar {
        Bar {
            enabled: !quiet && std::io::stderr().is_terminal(),
            start: Instant::now(),
            len,
            bar: None,
        }
    }

    /// Moves the bar to `pos` of `len` with a message; draws it only once
    /// the run is older than a second.
    pub fn update(&mut self, pos: u64, msg: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() {
            if self.start.elapsed() < DELAY {
                return;
            }
            let style = ProgressStyle::with_template("{elapsed:>4.dim} [{bar:24}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(self.len), ProgressDrawTarget::stderr()).with_elapsed(self.start.elapsed());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bar = Some(bar);
        }
        if let Some(b) = &self.bar {
            b.set_position(pos.min(self.len));
            b.set_message(msg());
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
