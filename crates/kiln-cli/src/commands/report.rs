//! `kiln report RUN.json`: the HTML report of a run saved with `kiln learn --json`.

use std::path::PathBuf;

use clap::Args;

use crate::output::outln;
use crate::report::samples::{self, SamplesReport};
use crate::report::RunReport;

/// Options of `kiln report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What `kiln learn TABLE --json` printed (truth-table or samples mode), saved to a file.
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
        .ok_or_else(|| format!("{file}: no \"report\" object; save the output of `kiln learn TABLE --json` (a truth table or samples)"))?;
    let bad = |e: serde_json::Error| format!("{file}: \"report\" object: {e}");
    // Samples-mode reports say so; truth-table ones predate the tag and carry none.
    let html = if data.get("kind").and_then(|k| k.as_str()) == Some(samples::KIND) {
        serde_json::from_value::<SamplesReport>(data.clone()).map_err(bad)?.to_html()?
    } else {
        serde_json::from_value::<RunReport>(data.clone()).map_err(bad)?.to_html()?
    };
    let out = args.output.clone().unwrap_or_else(|| args.run.with_extension("html"));
    super::check_output_path("-o", Some(&out), &[Some(&args.run)], true)?;
    crate::report::write(&out, &html)?;
    outln!("report: {}", out.display());
    Ok(0)
}
