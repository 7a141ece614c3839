//! `kiln learn`: gradient search over a relaxed program, fired into an exact
//! circuit and verified.

use crate::output::{errln, out, outln};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use kiln_pbe::json::ResultJson;
use kiln_pbe::learn::{LearnResult, Progress, UnitReport};
use kiln_pbe::{grammar, learn, minimise, search, verify, Circuit, LearnOptions, SearchOptions, Space, Table, Wiring};

use super::progress::Bar;
use super::{load_table, output_list, plot};

/// Program family (`--space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpaceArg {
    /// One sigmoid unit per output (a single threshold gate).
    Unit,
    /// Layers of relaxed two-input gates (difflogic style).
    Circuit,
    /// A one-hidden-layer sigmoid network whose units fire into gates.
    Mlp,
}

impl SpaceArg {
    fn space(self) -> Space {
        match self {
            SpaceArg::Unit => Space::Unit,
            SpaceArg::Circuit => Space::Circuit,
            SpaceArg::Mlp => Space::Mlp,
        }
    }
}

/// Gate-network wiring (`--wiring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WiringArg {
    /// Each gate input is a learned choice among a pool of earlier signals.
    Learned,
    /// Each gate input is fixed to a random signal of the previous layer.
    Random,
}

/// Relaxation of each gate's choice of function (`--gate-param`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateParamArg {
    /// A softmax over the 16 two-input functions (difflogic).
    Softmax16,
    /// One sigmoid per row of the gate's truth table (light difflogic).
    InputWise,
}

/// Code target (`--emit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitArg {
    /// A Rust function.
    Rust,
    /// A C99 function.
    C,
    /// A Verilog module.
    Verilog,
    /// Binary AIGER (`.aig`), the IWLS contest's format; needs -o.
    Aiger,
    /// ASCII AIGER (`.aag`); needs -o.
    Aag,
    /// BLIF, as ABC reads it.
    Blif,
    /// A Graphviz DOT diagram of the circuit.
    Dot,
    /// An SVG diagram of the circuit, drawn by kiln (no Graphviz needed).
    Svg,
}

/// Options of `kiln learn`.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Examples: a CSV table (a header of column names, then rows of 0/1) or an Espresso PLA, plain or gzip. A PLA, a CSV of more than 24 inputs, or --valid learn from samples for generalisation (an AIG within --max-and-nodes, chosen on validation) instead of fitting every row.
    pub file: PathBuf,
    /// Validation samples (PLA or CSV): candidates are chosen by their accuracy here [default: none; chosen on the training samples].
    #[arg(long, value_name = "FILE")]
    pub valid: Option<PathBuf>,
    /// Samples mode: the largest AIG allowed, in AND nodes after structural hashing.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_and_nodes: usize,
    /// Write the program (--emit format) to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Comma-separated output columns [default: the last column].
    #[arg(long, value_name = "Y,C")]
    pub outputs: Option<String>,
    /// Program family to search.
    #[arg(long, value_enum, default_value = "circuit")]
    pub space: SpaceArg,
    /// Gates per hidden layer (circuit) or hidden units (mlp) [default: sized from the table, growing on restarts].
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    /// Gate layers including the output layer (circuit space only) [default: sized from the table, growing on restarts].
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Gate wiring (circuit space only) [default: restarts alternate learned and random].
    #[arg(long, value_enum)]
    pub wiring: Option<WiringArg>,
    /// Gate relaxation (circuit space only) [default: input-wise for the wide random-wired restarts of 4- and 5-input tables, softmax16 for the others].
    #[arg(long, value_enum, value_name = "KIND")]
    pub gate_param: Option<GateParamArg>,
    /// Adam steps per restart.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub steps: usize,
    /// Number of restarts [default: restart until exact or --timeout; unit space: 5].
    #[arg(long, value_name = "N")]
    pub restarts: Option<usize>,
    /// Adam learning rate [default: 0.1, or 0.01 for the wide input-wise gate networks].
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub lr: Option<f64>,
    /// Circuit space: gate temperature at the end of a restart; it falls geometrically from 1, so the relaxed gates harden toward the fired ones (1 = no annealing).
    #[arg(long, allow_negative_numbers = true, value_name = "T", default_value_t = LearnOptions::default().final_temperature)]
    pub final_temperature: f64,
    /// Circuit space: standard deviation of the Gaussian noise added to gate gradients, decaying as 1/(1+step)^0.55 (0 = none).
    #[arg(long, allow_negative_numbers = true, value_name = "F", default_value_t = LearnOptions::default().grad_noise)]
    pub grad_noise: f64,
    /// Seed of every random choice (same seed, same program).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Wall-clock budget in seconds [default: 120 on truth tables, 60 on samples].
    #[arg(long, allow_negative_numbers = true, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Hold out this fraction of the rows (seeded by --seed) and report how the fired program does on them [default: 0, train on every row].
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub holdout: Option<f64>,
    /// Circuit space: do not repair the fired circuit. By default a restart that ends a few rows short is
    /// fixed by resubstitution over the trained gates, and a run that ends without an exact circuit
    /// rebuilds the wrong outputs (resubstitution, XOR/Shannon decomposition or a sum of products) so
    /// the result is exact; the summary says how many gates repair added [default: repair on].
    #[arg(long, default_value_t = false)]
    pub no_repair: bool,
    /// Circuit space: keep the fired circuit as fired. By default, on a complete table, each gate is replaced by an earlier signal or one gate over two earlier signals when that frees gates (resubstitution; the function never changes) [default: shrink on].
    #[arg(long, default_value_t = false)]
    pub no_shrink: bool,
    /// Keep the circuit as learned. By default it is resynthesised at the end (cut rewriting with optimum 4-input subcircuits, resubstitution, SAT windows and, for functions of at most 8 inputs, whole-function SAT, within the time left: at most 55 s for those, 10 s for the rest; tables of at most 8 inputs with rows left out first get the exact search of --minimise on a quarter of the time left); the function never changes on the rows given [default: optimise on].
    #[arg(long, default_value_t = false)]
    pub no_optimise: bool,
    /// Shrink the fired circuit with the exact search (bounded: 12 gates, 10 s) [default: off].
    #[arg(long, default_value_t = false)]
    pub minimise: bool,
    /// Print the program as code instead of text (the summary goes to stderr) [default: text].
    #[arg(long, value_enum)]
    pub emit: Option<EmitArg>,
    /// Print one JSON object instead of text [default: off].
    #[arg(long, default_value_t = false)]
    pub json: bool,
    /// Write the loss curve of the chosen restart as SVG to this path [default: no plot].
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// Write a self-contained HTML report to this path: on a truth table the table, circuit diagram and program, verification matrix, training curves, gate choices and restarts; on samples the sample summary, every candidate's accuracy and AND nodes, the circuit, a confusion matrix and the gate network's training. Missing folders are created [default: no report].
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// Default time budget on truth tables, seconds.
pub const DEFAULT_TIMEOUT: f64 = 120.0;

/// Peak memory of a truth-table run per table cell (row × column), measured: 1.06 GB on a
/// complete 20-input table of 6 outputs (2^20 rows × 26 columns), from the dense f32 tensors, the
/// packed table and the per-row evaluation of fired circuits.
const LEARN_BYTES_PER_CELL: u64 = 40;

/// Largest estimated peak the truth-table learner accepts; beyond it, `learn` refuses before any
/// allocation instead of failing half-way.
pub const LEARN_MEMORY_LIMIT: u64 = 8 << 30;

/// Refuses a truth table whose learner would need more than [`LEARN_MEMORY_LIMIT`].
pub fn check_learner_memory(rows: usize, columns: usize) -> Result<(), String> {
    let need = (rows as u64).saturating_mul(columns as u64).saturating_mul(LEARN_BYTES_PER_CELL);
    if need > LEARN_MEMORY_LIMIT {
        return Err(format!(
            "learn: {rows} rows × {columns} columns would need about {:.1} GiB to fit every row (limit {} GiB); \
             learn from a sample of the rows instead (a PLA or --valid file selects learning from samples)",
            need as f64 / (1u64 << 30) as f64,
            LEARN_MEMORY_LIMIT >> 30
        ));
    }
    Ok(())
}

/// Checks a `--timeout` value: finite and not negative.
pub fn check_timeout(t: Option<f64>) -> Result<(), String> {
    match t {
        Some(t) if !(t.is_finite() && t >= 0.0) => Err(format!("--timeout: expected a number of seconds >= 0, got {t}")),
        _ => Ok(()),
    }
}

/// Whether `args` asks for learning from samples: a validation file, a PLA, or a CSV wider than a
/// truth table can be.
fn samples_mode(args: &LearnArgs) -> Result<bool, String> {
    if args.valid.is_some() {
        return Ok(true);
    }
    // The first line decides; the reader that follows reads the whole file once.
    let bytes = kiln_logic::source::read_head(&args.file, 1 << 20).map_err(|e| e.to_string())?;
    if kiln_logic::samples::looks_like_pla(&bytes) {
        return Ok(true);
    }
    let header = bytes
        .split(|&b| b == b'\n')
        .find(|l| !l.trim_ascii().is_empty() && !l.starts_with(b"#"));
    let columns = header.map_or(0, |h| h.split(|&b| b == b',').count());
    let outputs = args
        .outputs
        .as_deref()
        .map_or(1, |o| super::output_list(Some(o)).map_or(1, |v| v.len().max(1)));
    Ok(columns.saturating_sub(outputs) > kiln_logic::table::MAX_INPUTS)
}

/// Checks option values clap cannot, turning them into learner settings.
fn options(args: &LearnArgs) -> Result<LearnOptions, String> {
    if args.steps == 0 {
        return Err("--steps: expected at least 1".into());
    }
    if args.restarts == Some(0) {
        return Err("--restarts: expected at least 1".into());
    }
    if let Some(lr) = args.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(format!("--lr: expected a number > 0, got {lr}"));
    }
    let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if let Some(h) = args.holdout {
        if !(h.is_finite() && (0.0..1.0).contains(&h)) {
            return Err(format!("--holdout: expected a fraction in [0, 1), got {h}"));
        }
    }
    if !(args.final_temperature.is_finite() && args.final_temperature > 0.0) {
        return Err(format!(
            "--final-temperature: expected a number > 0, got {}",
            args.final_temperature
        ));
    }
    if !(args.grad_noise.is_finite() && args.grad_noise >= 0.0) {
        return Err(format!("--grad-noise: expected a number >= 0, got {}", args.grad_noise));
    }
    if args.width == Some(0) {
        return Err("--width: expected at least 1".into());
    }
    if args.depth == Some(0) {
        return Err("--depth: expected at least 1".into());
    }
    let space = args.space.space();
    if space != Space::Circuit {
        if args.depth.is_some() {
            return Err("--depth: only the circuit space has layers to size".into());
        }
        if args.wiring.is_some() {
            return Err("--wiring: only the circuit space has wiring".into());
        }
        if args.gate_param.is_some() {
            return Err("--gate-param: only the circuit space has gates to relax".into());
        }
    }
    if space == Space::Unit && args.width.is_some() {
        return Err("--width: the unit space has no hidden layer".into());
    }
    Ok(LearnOptions {
        space,
        width: args.width,
        depth: args.depth,
        wiring: args.wiring.map(|w| match w {
            WiringArg::Learned => Wiring::Learned,
            WiringArg::Random => Wiring::Random,
        }),
        gate_param: args.gate_param.map(|p| match p {
            GateParamArg::Softmax16 => kiln_pbe::GateParam::Softmax16,
            GateParamArg::InputWise => kiln_pbe::GateParam::InputWise,
        }),
        steps: args.steps,
        restarts: args.restarts,
        lr: args.lr,
        seed: args.seed,
        timeout: super::seconds(timeout),
        repair: !args.no_repair,
        shrink: !args.no_shrink,
        final_temperature: args.final_temperature,
        grad_noise: args.grad_noise,
        ..LearnOptions::default()
    })
}

/// Runs [`learn()`] with a progress bar (stderr, terminals only, after a second).
pub fn learn_with_bar(table: &Table, opts: &LearnOptions, quiet: bool, label: &str) -> Result<LearnResult, String> {
    let mut bar = Bar::new(opts.steps as u64, quiet);
    let r = learn(table, opts, |p: &Progress| {
        bar.update(p.step as u64, || {
            format!(
                "{label}restart {} loss {:.4} fired {:.1}% right",
                p.restart + 1,
                p.loss,
                p.accuracy * 100.0
            )
        })
    });
    bar.finish();
    r.map_err(|e| e.to_string())
}

/// `4.12·X1 + 4.12·X2 - 1.93`.
fn affine(weights: &[f64], names: &[String], bias: f64) -> String {
    let mut s = String::new();
    for (i, (w, n)) in weights.iter().zip(names).enumerate() {
        if i == 0 {
            s.push_str(&format!("{w:.2}·{n}"));
        } else {
            s.push_str(&format!(" {} {:.2}·{n}", if *w < 0.0 { '-' } else { '+' }, w.abs()));
        }
    }
    if s.is_empty() {
        format!("{bias:.2}")
    } else {
        format!("{s} {} {:.2}", if bias < 0.0 { '-' } else { '+' }, bias.abs())
    }
}

/// The gate a threshold unit computes over `names`, as `NAME = expression`:
/// the unit fires 1 exactly where `w·x + b > 0`, the same rule the learner
/// uses, and the smallest circuit for that function is printed.
fn fired_statement(u: &UnitReport, names: &[String]) -> String {
    let k = u.weights.len();
    if k > 4 || names.len() != k || names.contains(&u.name) {
        // Too many inputs to search quickly (or clashing names): keep the learner's own text.
        return match u.fired.strip_prefix("F = ") {
            Some(rest) if !rest.contains(';') => format!("{} = {rest}", u.name),
            _ => u.fired.clone(),
        };
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = Table::from_fn(&refs, &[u.name.as_str()], |bits| {
        let z: f64 = u.weights.iter().zip(bits).map(|(w, &b)| if b { *w } else { 0.0 }).sum::<f64>();
        vec![z + u.bias > 0.0]
    });
    let opts = SearchOptions {
        timeout: Some(Duration::from_secs(2)),
        ..SearchOptions::default()
    };
    match search(&t, &opts) {
        Ok(r) => grammar::to_expression(&r.circuit, "; "),
        Err(_) => u.fired.clone(),
    }
}

/// One line per fired unit: `Y = sigmoid(…)  fires to  Y = X1 OR X2`.
/// Hidden units read the table inputs; output units read the hidden units.
pub fn unit_lines(units: &[UnitReport], table: &Table) -> Vec<String> {
    let hidden: Vec<String> = units
        .iter()
        .filter(|u| !table.output_names().contains(&u.name))
        .map(|u| u.name.clone())
        .collect();
    units
        .iter()
        .map(|u| {
            let is_output = table.output_names().contains(&u.name);
            let names: Vec<String> = if is_output && !hidden.is_empty() {
                hidden.clone()
            } else {
                table.input_names().to_vec()
            };
            let names = if names.len() == u.weights.len() {
                names
            } else {
                (1..=u.weights.len()).map(|i| format!("x{i}")).collect()
            };
            format!(
                "{} = sigmoid({})  fires to  {}",
                u.name,
                affine(&u.weights, &names, u.bias),
                fired_statement(u, &names)
            )
        })
        .collect()
}

/// Whether the units, thresholded at `w·x + b > 0`, compute what `circuit`
/// computes on every row of `table` (the learner reports the weights of the
/// last check, which need not be the check whose program was kept).
pub fn units_agree(units: &[UnitReport], table: &Table, circuit: &Circuit) -> bool {
    let fire = |u: &UnitReport, x: &[bool]| u.weights.iter().zip(x).map(|(w, &b)| if b { *w } else { 0.0 }).sum::<f64>() + u.bias > 0.0;
    let (outs, hidden): (Vec<&UnitReport>, Vec<&UnitReport>) = units.iter().partition(|u| table.output_names().contains(&u.name));
    let n = table.num_inputs();
    for row in table.rows() {
        let x: Vec<bool> = (0..n).map(|i| row.inputs >> i & 1 == 1).collect();
        let h: Vec<bool> = if hidden.is_empty() {
            x.clone()
        } else {
            hidden.iter().map(|u| fire(u, &x)).collect()
        };
        let got = circuit.eval_row(&x);
        for (j, name) in table.output_names().iter().enumerate() {
            match outs.iter().find(|u| &u.name == name) {
                Some(u) if fire(u, &h) == got[j] => {}
                _ => return false,
            }
        }
    }
    true
}

/// A function name for emitted code: the file's stem (up to the first dot).
pub fn code_name(path: &Path) -> String {
    path.file_name()
        .and_then(|s| s.to_string_lossy().split('.').next().map(String::from))
        .filter(|s| !s.is_empty())
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "learned".into())
}

/// Appends `"key":value` pairs to a one-line JSON object, keeping the
/// object's own key order.
fn extend_json(mut doc: String, extra: &[(&str, serde_json::Value)]) -> String {
    if extra.is_empty() || !doc.ends_with('}') {
        return doc;
    }
    doc.pop();
    for (k, v) in extra {
        doc.push_str(&format!(",{}:{}", serde_json::Value::from(*k), v));
    }
    doc.push('}');
    doc
}

/// Time kept back for verifying and printing after the learner stops: a few passes of bit-parallel
/// simulation over the rows, generously 2 µs per row per pass, at least 100 ms.
fn final_checks_reserve(rows: usize) -> Duration {
    Duration::from_millis(100).max(Duration::from_micros(2 * 4 * rows as u64))
}

/// Runs the subcommand: 0 when the fired program reproduces every training row, 1 when not.
pub fn run(args: &LearnArgs) -> Result<u8, String> {
    let started = Instant::now();
    check_timeout(args.timeout)?;
    super::learn_samples::check_emit(args)?;
    let inputs = [Some(args.file.as_path()), args.valid.as_deref()];
    for (flag, out, creates) in [
        ("--plot", &args.plot, false),
        ("-o", &args.output, false),
        ("--report", &args.report, true),
    ] {
        super::check_output_path(flag, out.as_deref(), &inputs, creates)?;
    }
    if samples_mode(args)? {
        let timeout = args.timeout.unwrap_or(super::learn_samples::DEFAULT_TIMEOUT);
        return super::learn_samples::run(args, timeout);
    }
    let mut opts = options(args)?;
    let total = opts.timeout;
    let outputs = output_list(args.outputs.as_deref())?;
    let table = load_table(&args.file, &outputs)?;
    check_learner_memory(table.len(), table.num_inputs() + table.num_outputs())?;
    let (train, held) = match args.holdout {
        Some(f) if f > 0.0 => {
            let (train, held) = table.split_holdout(f, args.seed);
            if train.is_empty() {
                return Err(format!("--holdout: {f} leaves no rows to train on ({} rows)", table.len()));
            }
            (train, Some(held))
        }
        _ => (table.clone(), None),
    };
    // The learner's clock starts now, so what loading took (seconds on a million-row table) comes
    // out of its budget. The final checks get a slice proportional to the rows they simulate, and
    // the resynthesis its own slice (15 %, at most 10 s): a run that never fits exactly trains
    // until the deadline and would leave it nothing.
    let checks = final_checks_reserve(train.len());
    opts.timeout = total.saturating_sub(started.elapsed()).saturating_sub(checks);
    if !args.no_optimise && opts.space == Space::Circuit {
        opts.timeout = opts.timeout.saturating_sub(total.mul_f64(0.15).min(Duration::from_secs(10)));
    }
    let r = learn_with_bar(&train, &opts, args.json, "")?;
    // The learner reports exactness, but the CLI checks the circuit itself.
    let check = verify(&r.circuit, &train).map_err(|e| e.to_string())?;
    let exact = check.ok();
    // A table with don't-care rows (rows never shown) admits circuits the learned one's own
    // function does not, and only a search on the table itself finds them: resynthesis below keeps
    // the circuit's function. So small incomplete tables get the exact search even without
    // --minimise, on a slice of the time left (BCD to 7 segments: 19 gates after resynthesis, 12
    // proven minimal by the enumeration in under a second).
    let auto_minimise = !args.no_optimise
        && opts.space == Space::Circuit
        && !train.is_complete()
        && train.num_inputs() <= kiln_logic::window_sat::EXACT_WHOLE_MAX_INPUTS;
    let minimised = if (args.minimise || auto_minimise) && exact {
        let mut search = SearchOptions::default();
        if !args.minimise {
            let left = total.saturating_sub(started.elapsed());
            search.timeout = search.timeout.map(|t| t.min(left / 4));
        }
        Some(minimise(&r.circuit, &train, &search).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let circuit: &Circuit = minimised.as_ref().map_or(&r.circuit, |m| &m.circuit);
    if minimised.is_some() && !verify(circuit, &train).map_err(|e| e.to_string())?.ok() {
        return Err("internal error: the minimised circuit does not match the table".into());
    }
    // Resynthesis never changes the function, so it runs on exact and inexact circuits alike, in
    // whatever is left of the time budget.
    // After the exact search proved the table's minimum, resynthesis (which keeps the circuit's
    // function, so never goes below that minimum) has nothing left to find.
    let proven_by_search = minimised.as_ref().is_some_and(|m| m.optimal);
    let (optimised, proven_minimum) = if args.no_optimise || opts.space != Space::Circuit || proven_by_search {
        (None, false)
    } else {
        // Functions of few inputs also get the whole-function SAT search once rewriting has shrunk
        // the circuit (popcount-5: 37 gates to 12), and it uses time well: each size it refutes or
        // finds is a proof or a gate saved (popcount-5 ended at 12 gates with the 10 s cap of
        // larger circuits and at 11 with this one). 55 s keeps a run within a minute.
        let small = circuit.inputs().len() <= kiln_logic::window_sat::EXACT_WHOLE_MAX_INPUTS;
        let cap = Duration::from_secs(if small { 55 } else { 10 });
        // Measured from the command's start (loading and checking count too), with a little
        // kept back for verifying and printing, so the whole run ends within --timeout.
        let left = total
            .saturating_sub(started.elapsed())
            .saturating_sub(Duration::from_millis(200))
            .min(cap);
        let params = kiln_logic::optimise::OptimiseParams {
            timeout: Some(left),
            ..Default::default()
        };
        let (c, stats) = kiln_logic::optimise::optimise(circuit, &params);
        let before = verify(circuit, &train).map_err(|e| e.to_string())?;
        let after = verify(&c, &train).map_err(|e| e.to_string())?;
        if after.failures.len() != before.failures.len() {
            return Err("internal error: the optimised circuit does not compute the learned function".into());
        }
        // The proof covers the circuit's own function; it is the table's minimum only when the
        // table leaves nothing open (no don't-care rows, every row fitted).
        let proven = stats.proven_minimum && exact && train.is_complete();
        ((c.num_gates() < circuit.num_gates()).then_some((circuit.num_gates(), c)), proven)
    };
    let circuit: &Circuit = optimised.as_ref().map_or(circuit, |(_, c)| c);
    let held_check = match &held {
        Some(h) if !h.is_empty() => Some(verify(circuit, h).map_err(|e| e.to_string())?),
        _ => None,
    };
    if let Some(p) = &args.plot {
        let title = format!("kiln learn {}: loss per step", args.file.display());
        plot::loss_curve(p, &title, &r.loss_curve)?;
    }

    let report = {
        let mut stages = vec![crate::report::Stage {
            name: "fired".into(),
            gates: r.unrepaired_gates,
            detail: format!("restart {}'s network hardened (argmax) and simplified", r.chosen_restart + 1),
        }];
        if r.repaired_gates > 0 {
            stages.push(crate::report::Stage {
                name: "repair".into(),
                gates: r.fired_gates,
                detail: format!(
                    "{} gates added ({}) to fix {} (output, row) pairs",
                    r.repaired_gates,
                    r.repair_method.describe(),
                    r.repaired_rows
                ),
            });
        }
        if r.fired_gates != r.circuit.num_gates() {
            stages.push(crate::report::Stage {
                name: "resubstitution".into(),
                gates: r.circuit.num_gates(),
                detail: "gates replaced by earlier signals (same function)".into(),
            });
        }
        if let Some(m) = &minimised {
            stages.push(crate::report::Stage {
                name: "minimise".into(),
                gates: m.gates,
                detail: if m.optimal {
                    "exact search: proven minimal".into()
                } else {
                    "exact search, not proven minimal".into()
                },
            });
        }
        if let Some((_, c)) = &optimised {
            stages.push(crate::report::Stage {
                name: "optimise".into(),
                gates: c.num_gates(),
                detail: "cut rewriting and resubstitution (same function)".into(),
            });
        }
        let mut notes: Vec<String> = r.note.iter().cloned().collect();
        if let Some(h) = &held_check {
            notes.push(format!(
                "holdout: trained on {} rows; {} of {} held-out rows right ({:.1}%)",
                train.len(),
                h.rows - h.failures.len(),
                h.rows,
                h.accuracy() * 100.0
            ));
        }
        let check_final = verify(circuit, &train).map_err(|e| e.to_string())?;
        crate::report::RunReport::new(
            &format!("kiln learn {}", code_name(&args.file)),
            &args.file.display().to_string(),
            &train,
            &r,
            opts.space,
            opts.seed,
            circuit,
            &check_final,
            stages,
            if r.units.is_empty() {
                Vec::new()
            } else {
                unit_lines(&r.units, &train)
            },
            notes,
        )
    };
    if let Some(p) = &args.report {
        crate::report::write(p, &report.to_html()?)?;
    }

    // The program is written before the JSON or the summary is printed: with --json it goes to
    // the -o file (check_emit makes sure there is one), never silently nowhere.
    let emitted = match args.emit {
        Some(lang) => super::learn_samples::emit_program(
            circuit,
            lang,
            &code_name(&args.file),
            args.output.as_deref(),
            &kiln_logic::SampleSet::from_table(&train),
        )?,
        None => None,
    };
    if args.json {
        let mut doc = ResultJson::new(circuit, train.output_names(), exact, r.restarts as u64, r.steps as u64, r.seconds);
        doc.optimal = minimised.as_ref().map(|m| m.optimal);
        let mut extra = vec![
            ("accuracy", serde_json::json!(check.accuracy())),
            ("exact_restarts", serde_json::json!(r.exact_restarts)),
            ("fired_gates", serde_json::json!(r.fired_gates)),
            ("repaired_gates", serde_json::json!(r.repaired_gates)),
            (
                "optimised",
                serde_json::json!({
                    "before": optimised.as_ref().map_or(circuit.num_gates(), |(b, _)| *b),
                    "after": circuit.num_gates(),
                    "proven_minimum": proven_minimum,
                }),
            ),
        ];
        if let Some(n) = &r.note {
            extra.push(("note", serde_json::json!(n)));
        }
        if let Some(h) = &held_check {
            extra.push((
                "holdout",
                serde_json::json!({"rows": h.rows, "right": h.rows - h.failures.len(), "accuracy": h.accuracy()}),
            ));
        }
        if let Some(p) = &args.report {
            extra.push(("report_path", serde_json::json!(p.display().to_string())));
        }
        if let (Some(p), Some(_)) = (&args.output, args.emit) {
            extra.push(("wrote", serde_json::json!(p.display().to_string())));
        }
        extra.push(("report", serde_json::to_value(&report).map_err(|e| e.to_string())?));
        outln!("{}", extend_json(doc.to_json(), &extra));
        return Ok(if exact { 0 } else { 1 });
    }

    let mut summary = Vec::new();
    summary.push(format!("gates: {}", circuit.num_gates()));
    summary.push(format!(
        "exact: {exact} ({} of {} rows)",
        check.rows - check.failures.len(),
        check.rows
    ));
    if !exact {
        for f in &check.failures {
            summary.push(format!("  {}", check.describe(f)));
        }
    }
    if !r.units.is_empty() {
        summary.push("units:".into());
        summary.extend(unit_lines(&r.units, &train).into_iter().map(|l| format!("  {l}")));
        if !units_agree(&r.units, &train, &r.circuit) {
            summary.push("  (weights at the end of training; the program above is the best one fired at an earlier check)".into());
        }
    }
    if let Some(n) = &r.note {
        summary.push(format!("note: {n}"));
    }
    if r.fired_gates != r.circuit.num_gates() {
        summary.push(format!(
            "resubstitution: {} -> {} gates (same function)",
            r.fired_gates,
            r.circuit.num_gates()
        ));
    }
    if let Some((before, c)) = &optimised {
        summary.push(format!("optimise: {before} -> {} gates (same function)", c.num_gates()));
    }
    if proven_minimum {
        summary.push(format!(
            "minimum: {} gates, proven by SAT (one fewer is impossible)",
            circuit.num_gates()
        ));
    }
    if args.minimise && !exact {
        summary.push("minimise: skipped (the fired program is not exact)".into());
    }
    if let Some(m) = &minimised {
        summary.push(format!(
            "minimised: {} -> {} gates, {}",
            r.circuit.num_gates(),
            m.gates,
            if m.optimal {
                "proven minimal".to_string()
            } else {
                format!(
                    "not proven minimal (every circuit with fewer than {} gates was ruled out)",
                    m.lower_bound
                )
            }
        ));
    }
    if let Some(h) = &held_check {
        summary.push(format!(
            "holdout: trained on {} rows; {} of {} held-out rows right ({:.1}%)",
            train.len(),
            h.rows - h.failures.len(),
            h.rows,
            h.accuracy() * 100.0
        ));
        for f in &h.failures {
            summary.push(format!("  {}", h.describe(f)));
        }
    } else if held.is_some() {
        summary.push("holdout: no rows held out (the fraction rounds to 0 rows)".into());
    }
    summary.push(format!("restarts: {} ({} exact)", r.restarts, r.exact_restarts));
    summary.push(format!("steps: {}", r.steps));
    summary.push(format!("time: {:.3}s", r.seconds));
    if let Some(p) = &args.plot {
        summary.push(format!("plot: {}", p.display()));
    }
    if let Some(p) = &args.report {
        summary.push(format!("report: {}", p.display()));
    }

    if let (Some(p), Some(_)) = (&args.output, args.emit) {
        summary.push(format!("wrote: {}", p.display()));
    }
    match emitted {
        Some(code) => {
            out!("{code}");
            for l in summary {
                errln!("{l}");
            }
        }
        None if args.emit.is_some() => {
            for l in summary {
                outln!("{l}");
            }
        }
        None => {
            if minimised.is_some() {
                outln!("fired ({} gates):", r.circuit.num_gates());
                for l in grammar::print(&r.circuit).lines() {
                    outln!("  {l}");
                }
                outln!("minimised program:");
            }
            outln!("{}", grammar::print(circuit));
            for l in summary {
                outln!("{l}");
            }
        }
    }
    Ok(if exact { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::check_learner_memory;

    #[test]
    fn a_truth_table_too_large_to_learn_is_refused_up_front() {
        // A complete 20-input table of 6 outputs (1.06 GB measured) is accepted; a complete
        // 24-input table of 8 outputs would need about 20 GiB and is refused with the figure.
        assert!(check_learner_memory(1 << 20, 26).is_ok());
        assert_eq!(
            check_learner_memory(1 << 24, 32).unwrap_err(),
            "learn: 16777216 rows × 32 columns would need about 20.0 GiB to fit every row (limit 8 GiB); \
             learn from a sample of the rows instead (a PLA or --valid file selects learning from samples)"
        );
        assert!(check_learner_memory(usize::MAX, usize::MAX).is_err());
    }
}
