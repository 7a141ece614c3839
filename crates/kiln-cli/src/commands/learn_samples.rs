//! `kiln learn` on samples: a PLA or a wide CSV, optionally with a validation file, learned for
//! generalisation within an AND-node budget and written as AIGER, BLIF or code.

use crate::output::{errln, out, outln};
use std::path::Path;

use kiln_logic::{aiger, blif, emit, grammar, Aig, Circuit, SampleSet};
use kiln_pbe::generalise::{learn_samples, Candidate, SampleLearnOptions, SampleLearnResult, SampleProgress};
use kiln_pbe::json::ResultJson;

use super::learn::{EmitArg, LearnArgs};
use super::progress::Bar;
use crate::report::samples::{SamplesReport, Trace};

/// Default time budget of samples mode, seconds (the IWLS contest's per-function figure).
pub const DEFAULT_TIMEOUT: f64 = 60.0;

/// The learner's settings from the command line.
pub fn options(args: &LearnArgs, timeout: f64) -> Result<SampleLearnOptions, String> {
    if args.max_and_nodes == 0 {
        return Err("--max-and-nodes: expected at least 1".into());
    }
    let mut opts = SampleLearnOptions {
        timeout: super::seconds(timeout),
        max_and_nodes: args.max_and_nodes,
        seed: args.seed,
        ..SampleLearnOptions::default()
    };
    if args.width.is_some() || args.depth.is_some() {
        let mut net = kiln_pbe::generalise::default_net(1);
        net.width = args.width.unwrap_or(net.width);
        net.depth = args.depth.unwrap_or(net.depth);
        opts.net = Some(net);
    }
    Ok(opts)
}

/// Runs the learner with a progress bar over the time budget (stderr, terminals only).
pub fn learn_with_bar(
    train: &SampleSet,
    valid: Option<&SampleSet>,
    opts: &SampleLearnOptions,
    quiet: bool,
    label: &str,
) -> Result<SampleLearnResult, String> {
    learn_traced(train, valid, opts, quiet, label).map(|(r, _)| r)
}

/// [`learn_with_bar`], also returning what the learner reported on the way: the result keeps
/// only each path's best circuit, and a report wants the gate network's curve.
pub fn learn_traced(
    train: &SampleSet,
    valid: Option<&SampleSet>,
    opts: &SampleLearnOptions,
    quiet: bool,
    label: &str,
) -> Result<(SampleLearnResult, Trace), String> {
    let budget_ms = opts.timeout.as_millis().min(u128::from(u64::MAX)) as u64;
    let mut bar = Bar::new(budget_ms.max(1), quiet);
    let mut trace = Trace::default();
    let r = learn_samples(train, valid, opts, |p: &SampleProgress| {
        trace.record(p);
        bar.update(p.elapsed.as_millis().min(u128::from(budget_ms)) as u64, || {
            format!("{label}{} step {} best valid {:.2}%", p.method.name(), p.step, p.best_valid * 100.0)
        })
    });
    bar.finish();
    r.map(|r| (r, trace)).map_err(|e| e.to_string())
}

/// The circuit as an AIG file in the format `path`'s extension names (`.aag` ASCII, else binary).
/// The bytes are read back and checked against the circuit on `check` before they are written, so
/// what is on disk is what was scored, and nothing is written when the check fails. (Reading the
/// file back instead failed on `/dev/null` and other non-files.)
pub fn write_aiger_checked(c: &Circuit, path: &Path, check: &SampleSet) -> Result<Aig, String> {
    let aig = Aig::from_circuit(c).map_err(|e| e.to_string())?.cleanup();
    let name = path.display().to_string();
    let bytes = aiger::bytes_for_path(&aig, path, &["written by kiln"]).map_err(|e| e.to_string())?;
    let back = aiger::read(&name, &bytes).map_err(|e| e.to_string())?;
    let want = c.eval_columns(&check.input_words(), check.words());
    let got = back.simulate(&check.input_words(), check.words()).map_err(|e| e.to_string())?;
    if want != got {
        return Err(format!("internal error: {name} does not compute the learned circuit"));
    }
    std::fs::write(path, &bytes).map_err(|e| format!("{name}: cannot write: {e}"))?;
    Ok(back)
}

/// Refuses `--emit`/`-o`/`--json` combinations that cannot be honoured, before any training.
pub fn check_emit(args: &LearnArgs) -> Result<(), String> {
    if args.output.is_some() && args.emit.is_none() {
        return Err("-o: say what to write with --emit (aiger, aag, blif, rust, c, verilog, dot or svg)".into());
    }
    if let Some(lang @ (EmitArg::Aiger | EmitArg::Aag)) = args.emit {
        let p = args
            .output
            .as_deref()
            .ok_or("--emit aiger/aag: give the file to write with -o FILE")?;
        // The extension picks ASCII or binary; make it agree with the format asked for.
        let want_ascii = lang == EmitArg::Aag;
        if want_ascii != p.extension().is_some_and(|e| e == "aag") {
            return Err(format!(
                "-o {}: --emit {} writes {} files; name it *.{}",
                p.display(),
                if want_ascii { "aag" } else { "aiger" },
                if want_ascii { "ASCII .aag" } else { "binary .aig" },
                if want_ascii { "aag" } else { "aig" }
            ));
        }
    }
    if args.json && args.emit.is_some() && args.output.is_none() {
        return Err("--emit with --json: give -o FILE for the program, the JSON goes to stdout".into());
    }
    Ok(())
}

/// Writes `c` in the `--emit` format to `path`, or returns the text for stdout when `path` is
/// `None`.
pub fn emit_program(c: &Circuit, lang: EmitArg, name: &str, path: Option<&Path>, check: &SampleSet) -> Result<Option<String>, String> {
    let text = match lang {
        EmitArg::Aiger | EmitArg::Aag => {
            let p = path.ok_or("--emit aiger/aag: give the file to write with -o FILE")?;
            write_aiger_checked(c, p, check)?;
            return Ok(None);
        }
        EmitArg::Blif => {
            let aig = Aig::from_circuit(c).map_err(|e| e.to_string())?.cleanup();
            blif::write(&aig, name).map_err(|e| e.to_string())?
        }
        EmitArg::Rust => emit::to_rust(c, name),
        EmitArg::C => emit::to_c(c, name),
        EmitArg::Verilog => emit::to_verilog(c, name),
        EmitArg::Dot => kiln_logic::diagram::to_dot(c),
        EmitArg::Svg => kiln_logic::diagram::to_svg(c),
    };
    match path {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("{}: cannot write: {e}", p.display()))?;
            Ok(None)
        }
        None => Ok(Some(text)),
    }
}

fn percent(c: &Candidate, train: bool) -> String {
    format!("{:.2}%", 100.0 * if train { c.train_accuracy } else { c.valid_accuracy })
}

/// Runs samples mode; exit 0 when a circuit was learned and written.
pub fn run(args: &LearnArgs, timeout: f64) -> Result<u8, String> {
    let opts = options(args, timeout)?;
    let outputs = super::output_list(args.outputs.as_deref())?;
    let train = SampleSet::from_path(&args.file, Some(&outputs)).map_err(|e| e.to_string())?;
    let valid = match &args.valid {
        Some(p) => Some(SampleSet::from_path(p, Some(&outputs)).map_err(|e| e.to_string())?),
        None => None,
    };
    let (r, trace) = learn_traced(&train, valid.as_ref(), &opts, args.json, "")?;
    let best = &r.best;
    let name = super::learn::code_name(&args.file);
    let report = SamplesReport::new(
        &format!("kiln learn {name}"),
        &train,
        valid.as_ref(),
        &r,
        trace,
        opts.seed,
        timeout,
        opts.max_and_nodes,
    );
    if let Some(p) = &args.report {
        crate::report::write(p, &report.to_html()?)?;
    }
    let emitted = match args.emit {
        Some(lang) => emit_program(&best.circuit, lang, &name, args.output.as_deref(), &train)?,
        None => None,
    };
    if args.json {
        let mut doc = ResultJson::new(
            &best.circuit,
            train.output_names(),
            best.train_accuracy == 1.0,
            1,
            r.epochs as u64,
            r.elapsed.as_secs_f64(),
        )
        .to_json();
        doc.pop();
        let per: Vec<serde_json::Value> = r
            .per_method
            .iter()
            .map(|c| {
                serde_json::json!({"method": c.method.name(), "detail": c.detail, "train_accuracy": c.train_accuracy,
                    "valid_accuracy": c.valid_accuracy, "and_nodes": c.and_nodes})
            })
            .collect();
        let mut extra = serde_json::json!({
            "method": best.method.name(),
            "detail": best.detail,
            "train_accuracy": best.train_accuracy,
            "valid_accuracy": valid.as_ref().map(|_| best.valid_accuracy),
            "and_nodes": best.and_nodes,
            "candidates": per,
        });
        if let (Some(p), Some(o)) = (&args.report, extra.as_object_mut()) {
            o.insert("report_path".into(), p.display().to_string().into());
        }
        if let Some(o) = extra.as_object_mut() {
            o.insert("report".into(), serde_json::to_value(&report).map_err(|e| e.to_string())?);
        }
        for (k, v) in extra.as_object().into_iter().flatten() {
            doc.push_str(&format!(",{}:{}", serde_json::Value::from(k.as_str()), v));
        }
        doc.push('}');
        outln!("{doc}");
        return Ok(0);
    }
    let mut summary = vec![
        format!("method: {} ({})", best.method.name(), best.detail),
        format!("gates: {}", best.circuit.num_gates()),
        format!("and nodes: {} (budget {})", best.and_nodes, opts.max_and_nodes),
        format!("train accuracy: {} on {} samples", percent(best, true), train.len()),
    ];
    if let Some(v) = &valid {
        summary.push(format!("valid accuracy: {} on {} samples", percent(best, false), v.len()));
    }
    for c in &r.per_method {
        summary.push(format!(
            "  {}: {}, valid {}, {} AND nodes",
            c.method.name(),
            c.detail,
            percent(c, false),
            c.and_nodes
        ));
    }
    if r.epochs > 0 {
        summary.push(format!("epochs: {}", r.epochs));
    }
    summary.push(format!("time: {:.1}s", r.elapsed.as_secs_f64()));
    if let (Some(p), Some(_)) = (&args.output, args.emit) {
        summary.push(format!("wrote: {}", p.display()));
    }
    if let Some(p) = &args.report {
        summary.push(format!("report: {}", p.display()));
    }
    match emitted {
        Some(code) => {
            out!("{code}");
            for l in summary {
                errln!("{l}");
            }
        }
        None => {
            // A circuit of thousands of gates is no use on a terminal; files take it whole.
            if args.emit.is_none() && best.circuit.num_gates() <= 200 {
                outln!("{}", grammar::print(&best.circuit));
            } else if args.emit.is_none() {
                outln!("program: {} gates (write it with --emit and -o)", best.circuit.num_gates());
            }
            for l in summary {
                outln!("{l}");
            }
        }
    }
    Ok(0)
}
