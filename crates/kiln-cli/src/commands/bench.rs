//! `kiln bench-pbe`: how reliably and how fast gradient search finds exact
//! circuits on the benchmark tables, next to the exact discrete search.

use crate::output::outln;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use kiln_pbe::{library, minimise, search, verify, LearnOptions, SearchOptions, Table};

use super::progress::Bar;

/// Options of `kiln bench-pbe`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs per table, with seeds 0..N.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub seeds: u64,
    /// Wall-clock budget of each gradient run, in seconds.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Budget of each minimisation of a fired circuit, in seconds.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 2.0)]
    pub minimise_timeout: f64,
    /// Budget of the discrete search for each table's minimum, in seconds.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS", default_value_t = 10.0)]
    pub search_timeout: f64,
    /// Comma-separated table names to run ("gates" = all 16 two-input functions) [default: every table].
    #[arg(long, value_name = "NAME,...")]
    pub only: Option<String>,
    /// Also write the table as CSV to this path [default: no CSV].
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
}

/// Names of the 16 two-input functions, by truth table (bit `2*X1 + X2`).
const GATE_NAMES: [&str; 16] = [
    "false",
    "nor",
    "converse_nimplies",
    "not_x1",
    "nimplies",
    "not_x2",
    "xor",
    "nand",
    "and",
    "xnor",
    "x2",
    "implies",
    "x1",
    "converse_implies",
    "or",
    "true",
];

const THREE_INPUT: &str = "three_input";

/// Every benchmark name, in suite order.
fn all_names() -> Vec<&'static str> {
    // The library's tables of three or more inputs, in its order; the two-input ones are covered
    // by GATE_NAMES under their gate names.
    let wider = library::BUILTIN_NAMES
        .iter()
        .copied()
        .filter(|n| library::builtin(n).is_some_and(|t| t.num_inputs() > 2));
    GATE_NAMES.iter().copied().chain(wider).chain([THREE_INPUT]).collect()
}

/// The tables behind a benchmark name (256 of them for `three_input`).
fn tables_of(name: &str) -> Vec<Table> {
    if name == THREE_INPUT {
        return (0..=255u8).map(library::three_input).collect();
    }
    if let Some(tt) = GATE_NAMES.iter().position(|&g| g == name) {
        return vec![library::two_input(tt as u8)];
    }
    library::builtin(name).into_iter().collect()
}

/// The selected names, in suite order; unknown names are an error.
fn selection(only: Option<&str>) -> Result<Vec<&'static str>, String> {
    let all = all_names();
    let Some(spec) = only else {
        return Ok(all);
    };
    let mut want = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lower = part.to_ascii_lowercase();
        if lower == "gates" {
            want.extend(GATE_NAMES);
        } else if let Some(n) = all.iter().find(|&&n| n == lower) {
            want.push(*n);
        } else {
            return Err(format!("--only: unknown table '{part}' (names are: gates, {})", all.join(", ")));
        }
    }
    if want.is_empty() {
        return Err("--only: expected at least one table name".into());
    }
    Ok(all.into_iter().filter(|n| want.contains(n)).collect())
}

/// Median of `v` (mean of the middle two for an even count); `None` if empty.
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.3}s"))
}

/// Results of all runs on one benchmark name.
#[derive(Default)]
struct Tally {
    runs: usize,
    exact_runs: usize,
    /// Exact runs whose circuit needed repair (gradient search alone came up short).
    repaired_runs: usize,
    restarts: usize,
    exact_restarts: usize,
    times: Vec<f64>,
    fired: Vec<f64>,
    minimised: Vec<f64>,
    /// Proven minimum of each table (three_input: of each function).
    minimum: Vec<Option<usize>>,
    /// Best circuit found by the discrete search when it was not proven minimal, and its lower bound.
    unproven: Option<(usize, usize)>,
    /// three_input: functions exact on every seed.
    functions_exact: usize,
    functions: usize,
}

const COLUMNS: [&str; 10] = [
    "table",
    "inputs",
    "outputs",
    "exact runs",
    "restart success",
    "median time to exact",
    "fired gates (median)",
    "minimised gates (median)",
    "discrete minimum",
    "discrete time",
];

/// Runs the benchmark: prints a markdown table (rows appear as they finish) and optionally a CSV.
pub fn run(args: &BenchArgs) -> Result<u8, String> {
    if args.seeds == 0 {
        return Err("--seeds: expected at least 1".into());
    }
    for (name, v) in [
        ("--timeout", args.timeout),
        ("--minimise-timeout", args.minimise_timeout),
        ("--search-timeout", args.search_timeout),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!("{name}: expected a number of seconds >= 0, got {v}"));
        }
    }
    let names = selection(args.only.as_deref())?;
    if let Some(p) = &args.csv {
        // Fail before hours of work, not after.
        std::fs::write(p, "").map_err(|e| format!("--csv: {}: cannot write: {e}", p.display()))?;
    }
    let total: u64 = names.iter().map(|n| if *n == THREE_INPUT { 256 } else { 1 }).sum::<u64>() * args.seeds;
    let mut bar = Bar::new(total, false);
    let mut done = 0u64;
    let mut csv = String::new();
    let _ = writeln!(csv, "{}", COLUMNS.join(","));
    outln!("| {} |", COLUMNS.join(" | "));
    outln!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for name in names {
        let tables = tables_of(name);
        let mut tally = Tally::default();
        let mut search_time = 0.0;
        for t in &tables {
            let mut every_seed = true;
            for seed in 0..args.seeds {
                let opts = LearnOptions {
                    seed,
                    timeout: super::seconds(args.timeout),
                    ..LearnOptions::default()
                };
                let label = format!("{name} seed {seed}");
                let r = kiln_pbe::learn(t, &opts, |p| {
                    bar.update(done, || {
                        format!("{label} restart {} fired {:.0}% right", p.restart + 1, p.accuracy * 100.0)
                    })
                })
                .map_err(|e| format!("{name}: {e}"))?;
                done += 1;
                bar.update(done, || label.clone());
                let exact = verify(&r.circuit, t).map_err(|e| e.to_string())?.ok();
                tally.runs += 1;
                tally.restarts += r.restarts;
                tally.exact_restarts += r.exact_restarts;
                every_seed &= exact;
                if exact {
                    tally.exact_runs += 1;
                    tally.repaired_runs += (r.repaired_gates > 0) as usize;
                    tally.times.push(r.seconds);
                    tally.fired.push(r.circuit.num_gates() as f64);
                    let m = minimise(
                        &r.circuit,
                        t,
                        &SearchOptions {
                            timeout: Some(super::seconds(args.minimise_timeout)),
                            ..SearchOptions::default()
                        },
                    )
                    .map_err(|e| e.to_string())?;
                    tally.minimised.push(m.gates as f64);
                }
            }
            tally.functions += 1;
            tally.functions_exact += every_seed as usize;
            let s = search(
                t,
                &SearchOptions {
                    timeout: Some(super::seconds(args.search_timeout)),
                    ..SearchOptions::default()
                },
            )
            .map_err(|e| e.to_string())?;
            search_time += s.seconds;
            tally.minimum.push(s.optimal.then_some(s.gates));
            if !s.optimal {
                tally.unproven = Some((s.gates, s.lower_bound));
            }
        }
        let t0 = &tables[0];
        let minimum = if tables.len() == 1 {
            match (tally.minimum[0], tally.unproven) {
                (Some(g), _) => g.to_string(),
                (None, Some((g, lb))) => format!("{lb}..{g} (not proven)"),
                (None, None) => "-".into(),
            }
        } else {
            let mut proven: Vec<f64> = tally.minimum.iter().flatten().map(|&g| g as f64).collect();
            let k = proven.len();
            format!("median {} ({k}/{} proven)", num(median(&mut proven)), tables.len())
        };
        let repaired = if tally.repaired_runs > 0 {
            format!(", {} by repair", tally.repaired_runs)
        } else {
            String::new()
        };
        let exact_col = if tables.len() == 1 {
            format!("{}/{}{repaired}", tally.exact_runs, tally.runs)
        } else {
            format!(
                "{}/{} functions ({}/{} runs{repaired})",
                tally.functions_exact, tally.functions, tally.exact_runs, tally.runs
            )
        };
        let rate = if tally.restarts == 0 {
            "-".into()
        } else {
            format!(
                "{:.0}% ({}/{})",
                100.0 * tally.exact_restarts as f64 / tally.restarts as f64,
                tally.exact_restarts,
                tally.restarts
            )
        };
        let label = if tables.len() == 1 {
            name.to_string()
        } else {
            format!("{name} (all {})", tables.len())
        };
        let cells = [
            label,
            t0.num_inputs().to_string(),
            t0.num_outputs().to_string(),
            exact_col,
            rate,
            secs(median(&mut tally.times)),
            num(median(&mut tally.fired)),
            num(median(&mut tally.minimised)),
            minimum,
            format!("{:.3}s", search_time),
        ];
        bar.finish();
        outln!("| {} |", cells.join(" | "));
        let _ = std::io::stdout().flush();
        let quoted: Vec<String> = cells
            .iter()
            .map(|c| {
                if c.contains([',', '"']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.clone()
                }
            })
            .collect();
        let _ = writeln!(csv, "{}", quoted.join(","));
        bar = Bar::new(total, false);
        bar.update(done, String::new);
    }
    bar.finish();
    outln!();
    outln!(
        "{} seeds per table, {} s per gradient run (circuit space, repair on); restart success = restarts whose fired circuit was exact without repair / restarts;",
        args.seeds, args.timeout
    );
    outln!(
        "times and gate counts are medians over exact runs; minimised = the fired circuit after the exact search ({} s budget);",
        args.minimise_timeout
    );
    outln!(
        "discrete minimum = exhaustive search over all 2-input gates ({} s budget), proven unless marked.",
        args.search_timeout
    );
    if let Some(p) = &args.csv {
        std::fs::write(p, csv).map_err(|e| format!("--csv: {}: cannot write: {e}", p.display()))?;
        outln!("csv: {}", p.display());
    }
    Ok(0)
}
