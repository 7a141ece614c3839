//! `kiln report RUN.json`: the HTML report of a run saved with `kiln learn --json`.

use std::path::PathBuf;

use clap::Args;

use crate::output::outln;
use crate::report::RunReport;

/// Options of `kiln report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What `kiln learn TABLE --json` printed, saved to a file.
    pub run: PathBuf,
    /// Where to write the HTML; missing folders are created [default: RUN with the extension .html].
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Writes the report; 0 on success.
pub fn run(args: &ReportArgs) -> Result<u8, String> {
    let file = args.run.display().to_string();
    let text = std::fs::read_to_string(&args.run).map_err(|e| format!("{file}: cannot read file: {e}"))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{file}: invalid JSON: {e}"))?;
    let data = doc
        .get("report")
        .ok_or_else(|| format!("{file}: no \"report\" object; save the output of `kiln learn TABLE --json` (truth-table mode)"))?;
    let report: RunReport = serde_json::from_value(data.clone()).map_err(|e| format!("{file}: \"report\" object: {e}"))?;
    let out = args.output.clone().unwrap_or_else(|| args.run.with_extension("html"));
    if out.canonicalize().ok().is_some_and(|o| args.run.canonicalize().ok() == Some(o)) {
        return Err(format!("-o {}: that is the input file; refusing to overwrite it", out.display()));
    }
    crate::report::write(&out, &report.to_html()?)?;
    outln!("report: {}", out.display());
    Ok(0)
}
