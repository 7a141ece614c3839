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

/// Splits a `--outputs Y,C` value into names; no flag means "default" (an empty list). A value
/// naming no column (`--outputs ""` or `--outputs ,`) is an error rather than the default.
pub fn output_list(spec: Option<&str>) -> Result<Vec<String>, String> {
    let Some(s) = spec else { return Ok(Vec::new()) };
    let names: Vec<String> = s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect();
    if names.is_empty() {
        return Err(format!("--outputs: expected comma-separated column names, got {s:?}"));
    }
    Ok(names)
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

/// Whether `a` and `b` name one file: the same device and inode (so a hard link or a symlink to an
/// input counts), or the same canonical path where the platform has no inodes. A path that does
/// not exist yet is no input.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    }
}

/// Refuses an output path (given with `flag`, if given at all) that is one of the command's
/// `inputs` (those given), or whose folder does not exist (unless the writer creates it): both
/// checked before any work, so that a long run is not thrown away at the end and no input is
/// overwritten.
pub fn check_output_path(flag: &str, out: Option<&Path>, inputs: &[Option<&Path>], creates_folders: bool) -> Result<(), String> {
    let Some(out) = out else { return Ok(()) };
    if inputs.iter().flatten().any(|input| same_file(out, input)) {
        return Err(format!("{flag} {}: that is an input file; refusing to overwrite it", out.display()));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty() && !creates_folders) {
        if !dir.is_dir() {
            return Err(format!("{flag} {}: folder {} does not exist", out.display(), dir.display()));
        }
    }
    Ok(())
}
