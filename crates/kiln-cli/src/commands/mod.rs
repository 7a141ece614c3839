//! One module per subcommand, plus helpers they share.

pub mod bench;
pub mod bench_iwls;
pub mod demo;
pub mod eval;
pub mod learn;
pub mod learn_samples;
pub mod optimise;
pub mod plot;
pub mod program;
pub mod progress;
pub mod report;
pub mod search;
pub mod show;
pub mod verify;

use std::path::Path;
use std::time::Duration;

use kiln_pbe::Table;

/// Splits a `--outputs Y,C` value into names; empty means "default".
pub fn output_list(spec: Option<&str>) -> Vec<String> {
    spec.map(|s| s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// Loads a table, turning any error into its message.
pub fn load_table(path: &Path, outputs: &[String]) -> Result<Table, String> {
    Table::from_csv_path(path, Some(outputs)).map_err(|e| e.to_string())
}

/// A checked `--timeout`-style value (finite, >= 0) as a [`Duration`]; a budget past what a
/// `Duration` holds (about 5·10^11 years) is as good as none, so it becomes [`Duration::MAX`]
/// instead of the panic of `Duration::from_secs_f64`.
pub fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}
