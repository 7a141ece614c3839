//! `kiln bench-iwls`: the IWLS 2020 "learning from examples" suite, function by function.

use crate::output::outln;
use std::path::{Path, PathBuf};

use clap::Args;
use kiln_logic::SampleSet;
use kiln_pbe::generalise::SampleLearnOptions;

use super::learn_samples::{learn_with_bar, write_aiger_checked};
use super::program;

/// Options of `kiln bench-iwls`.
#[derive(Debug, Args)]
pub struct BenchIwlsArgs {
    /// Folder holding exNN.train.pla[.gz] and exNN.valid.pla[.gz] (and exNN.test.pla[.gz] where the test set is known).
    pub dir: PathBuf,
    /// Comma-separated function names to run (e.g. ex00,ex41) [default: every exNN.train.pla in DIR].
    #[arg(long, value_name = "ex00,ex41")]
    pub only: Option<String>,
    /// Time budget per function, seconds.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// AND-node budget per function (the contest's was 5000).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_and_nodes: usize,
    /// Seed of every random choice.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Folder the exNN.aig files are written to.
    #[arg(long, value_name = "DIR", default_value = "out/iwls")]
    pub aig_dir: PathBuf,
    /// Also write the results as a Markdown table to this file [default: none].
    #[arg(long, value_name = "FILE.md")]
    pub out: Option<PathBuf>,
}

/// One function's figures.
struct Row {
    name: String,
    inputs: usize,
    valid: f64,
    test: Option<f64>,
    ands: usize,
    seconds: f64,
    method: String,
}

/// The sample file `stem.KIND.pla` or `stem.KIND.pla.gz` in `dir`, if either exists.
fn find(dir: &Path, stem: &str, kind: &str) -> Option<PathBuf> {
    [format!("{stem}.{kind}.pla"), format!("{stem}.{kind}.pla.gz")]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Function names (`exNN`) with a training file in `dir`, sorted.
fn functions(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            f.strip_suffix(".train.pla.gz")
                .or_else(|| f.strip_suffix(".train.pla"))
                .map(String::from)
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Runs the subcommand; exit 0 when every function ran.
pub fn run(args: &BenchIwlsArgs) -> Result<u8, String> {
    super::learn::check_timeout(Some(args.timeout))?;
    if args.max_and_nodes == 0 {
        return Err("--max-and-nodes: expected at least 1".into());
    }
    let mut names = functions(&args.dir)?;
    if let Some(only) = &args.only {
        let wanted = super::output_list(Some(only))?;
        if let Some(missing) = wanted.iter().find(|w| !names.contains(w)) {
            return Err(format!("--only: no {missing}.train.pla[.gz] in {}", args.dir.display()));
        }
        names.retain(|n| wanted.contains(n));
    }
    if names.is_empty() {
        return Err(format!("{}: no exNN.train.pla[.gz] files", args.dir.display()));
    }
    std::fs::create_dir_all(&args.aig_dir).map_err(|e| format!("{}: cannot create: {e}", args.aig_dir.display()))?;
    let opts = SampleLearnOptions {
        timeout: super::seconds(args.timeout),
        max_and_nodes: args.max_and_nodes,
        seed: args.seed,
        ..SampleLearnOptions::default()
    };
    let header = format!(
        "{:<6} {:>6} {:>8} {:>8} {:>6} {:>7}  {}",
        "name", "inputs", "valid%", "test%", "ANDs", "secs", "path"
    );
    outln!("{header}");
    let mut rows = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let load = |kind: &str| -> Result<Option<SampleSet>, String> {
            find(&args.dir, name, kind)
                .map(|p| SampleSet::from_path(&p, None).map_err(|e| e.to_string()))
                .transpose()
        };
        let train = load("train")?.ok_or_else(|| format!("{name}: no training file"))?;
        let valid = load("valid")?;
        let test = load("test")?;
        let label = format!("[{}/{}] {name}: ", k + 1, names.len());
        let r = learn_with_bar(&train, valid.as_ref(), &opts, false, &label)?;
        let path = args.aig_dir.join(format!("{name}.aig"));
        // Scored from the file on disk, independently of the learner's own figures.
        let aig = write_aiger_checked(&r.best.circuit, &path, &train)?;
        let judge = |set: &Option<SampleSet>| -> Result<Option<f64>, String> {
            set.as_ref().map(|s| program::accuracy(&aig, s).map(|a| a.fraction())).transpose()
        };
        let row = Row {
            name: name.clone(),
            inputs: train.num_inputs(),
            valid: judge(&valid)?.unwrap_or(r.best.train_accuracy),
            test: judge(&test)?,
            ands: aig.num_ands(),
            seconds: r.elapsed.as_secs_f64(),
            method: format!("{} ({})", r.best.method.name(), r.best.detail),
        };
        outln!(
            "{:<6} {:>6} {:>8} {:>8} {:>6} {:>7.1}  {}",
            row.name,
            row.inputs,
            pct(row.valid),
            row.test.map_or("-".into(), pct),
            row.ands,
            row.seconds,
            row.method
        );
        rows.push(row);
    }
    // Categories are the suite's rows of ten (ex00-ex09 adders, ex10-ex19 dividers, ...).
    let category = |n: &str| n.get(2..3).unwrap_or("?").to_string();
    let mut cats: Vec<String> = rows.iter().map(|r| category(&r.name)).collect();
    cats.dedup();
    let summary = |sel: &[&Row]| -> String {
        format!(
            "valid {}%  test {}  ANDs {:.0}  secs {:.1}  ({} functions)",
            pct(mean(sel.iter().map(|r| r.valid)).unwrap_or(0.0)),
            mean(sel.iter().filter_map(|r| r.test)).map_or("-".into(), |t| format!("{}%", pct(t))),
            mean(sel.iter().map(|r| r.ands as f64)).unwrap_or(0.0),
            mean(sel.iter().map(|r| r.seconds)).unwrap_or(0.0),
            sel.len()
        )
    };
    outln!();
    for c in &cats {
        let sel: Vec<&Row> = rows.iter().filter(|r| &category(&r.name) == c).collect();
        outln!("ex{c}0-ex{c}9: {}", summary(&sel));
    }
    let all: Vec<&Row> = rows.iter().collect();
    outln!("all: {}", summary(&all));
    if let Some(out) = &args.out {
        let mut md =
            String::from("| function | inputs | valid % | test % | AND nodes | seconds | path |\n|---|---:|---:|---:|---:|---:|---|\n");
        for r in &rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.1} | {} |\n",
                r.name,
                r.inputs,
                pct(r.valid),
                r.test.map_or("-".into(), pct),
                r.ands,
                r.seconds,
                r.method
            ));
        }
        md.push('\n');
        for c in &cats {
            let sel: Vec<&Row> = rows.iter().filter(|r| &category(&r.name) == c).collect();
            md.push_str(&format!("- ex{c}0–ex{c}9: {}\n", summary(&sel)));
        }
        md.push_str(&format!("- all: {}\n", summary(&all)));
        std::fs::write(out, md).map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
    }
    Ok(0)
}
