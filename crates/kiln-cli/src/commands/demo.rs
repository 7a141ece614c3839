//! `kiln demo`: the lecture, end to end, on built-in tables.
//!
//! One unit learns OR, AND and NAND; one unit cannot learn XOR; two layers
//! learn it by composition; the lecture's own composition is checked row by
//! row; and gradient search is compared with exact discrete search.

use crate::output::outln;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kiln_pbe::learn::LearnResult;
use kiln_pbe::{grammar, library, search, verify, Circuit, LearnOptions, SearchOptions, Space, Table};

use super::learn::{learn_with_bar, unit_lines, units_agree};
use super::plot;
use crate::report::{self, Page};

/// Options of `kiln demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's files (the loss-curve plot); created if missing.
    #[arg(long, value_name = "DIR", default_value = "out/demo")]
    pub out: PathBuf,
    /// Seed of every random choice (same seed, same programs).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Also write the whole lecture as one self-contained HTML page (diagrams, verification matrices, curves, gate choices); missing folders are created [default: no report].
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// The demo's HTML page, built alongside the text when `--report` is given.
struct Html(Option<Page>);

impl Html {
    fn raw(&mut self, html: &str) {
        if let Some(p) = &mut self.0 {
            p.raw(html);
        }
    }
    fn section(&mut self, id: &str, title: &str) {
        if let Some(p) = &mut self.0 {
            p.section(id, title);
        }
    }
    fn end(&mut self) {
        if let Some(p) = &mut self.0 {
            p.end_section();
        }
    }
    fn text(&mut self, tag: &str, text: &str) {
        self.raw(&format!("<{tag}>{}</{tag}>\n", report::esc(text)));
    }
    /// The verification matrix of `c` on `t`.
    fn verify(&mut self, c: &Circuit, t: &Table) -> Result<(), String> {
        if self.0.is_some() {
            let v = verify(c, t).map_err(|e| e.to_string())?;
            self.raw(&report::verification_matrix(
                t.input_names(),
                t.output_names(),
                &report::CheckSample::of(t, &v),
            ));
        }
        Ok(())
    }
    fn program(&mut self, c: &Circuit) {
        if self.0.is_some() {
            self.raw(&report::program_block(&grammar::print(c)));
            self.raw(&report::diagram(c));
        }
    }
    fn units(&mut self, r: &LearnResult, t: &Table) {
        if self.0.is_some() && !r.units.is_empty() {
            self.raw(&report::program_block(&unit_lines(&r.units, t).join("\n")));
        }
    }
    fn curves(&mut self, r: &LearnResult) {
        if self.0.is_some() {
            self.raw("<div class=\"grid2\">\n");
            self.raw(&report::line_chart(
                "Relaxed loss",
                "step",
                &report::thin_curve(&r.loss_curve),
                None,
                false,
            ));
            self.raw(&report::line_chart(
                "Fired accuracy",
                "step",
                &r.accuracy_curve,
                Some((0.0, 1.0)),
                true,
            ));
            self.raw("</div>\n");
        }
    }
}

fn header(n: usize, title: &str) {
    outln!();
    outln!("== {n}. {title} ==");
}

/// Prints a verification, indented, and returns whether it passed.
fn show_verify(c: &Circuit, t: &Table, indent: &str) -> Result<bool, String> {
    let v = verify(c, t).map_err(|e| e.to_string())?;
    for (i, l) in v.to_string().lines().enumerate() {
        if i == 0 {
            outln!("{indent}verify: {l}");
        } else {
            outln!("{indent}  {l}");
        }
    }
    Ok(v.ok())
}

/// Prints the program, one statement per line.
fn show_program(c: &Circuit, indent: &str) {
    for l in grammar::print(c).lines() {
        outln!("{indent}{l}");
    }
}

fn show_units(r: &LearnResult, t: &Table, indent: &str) {
    for l in unit_lines(&r.units, t) {
        outln!("{indent}{l}");
    }
    if !units_agree(&r.units, t, &r.circuit) {
        outln!("{indent}(weights at the end of training; the fired program is the best one seen at an earlier check)");
    }
}

fn stats(r: &LearnResult) -> String {
    format!(
        "{} restart{} ({} exact), {} steps, {:.3}s",
        r.restarts,
        if r.restarts == 1 { "" } else { "s" },
        r.exact_restarts,
        r.steps,
        r.seconds
    )
}

/// The 2-input table as its output column, e.g. `0 1 1 1` (rows 00 01 10 11).
fn column(t: &Table) -> String {
    t.rows().iter().map(|r| (r.outputs & 1).to_string()).collect::<Vec<_>>().join(" ")
}

/// Runs the demo; 0 unless a file cannot be written.
pub fn run(args: &DemoArgs) -> Result<u8, String> {
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out: {}: cannot create folder: {e}", args.out.display()))?;
    // The demo teaches gradient search, so what it shows is what gradient search alone fired.
    let opts = |space: Space| LearnOptions {
        space,
        seed: args.seed,
        timeout: Duration::from_secs(10),
        repair: false,
        ..LearnOptions::default()
    };
    outln!(
        "kiln demo: learning boolean programs from truth tables by gradient descent (seed {})",
        args.seed
    );
    outln!("Every learned program is fired into exact gates and verified against every row of its table.");
    let mut html = Html(
        args.report
            .as_ref()
            .map(|_| Page::new("kiln demo: learning boolean programs by gradient descent")),
    );
    html.raw(&format!(
        "<p class=\"sub\">Seed {}. Every learned program is fired into exact gates and verified against every row of its table. What is shown is what gradient search alone fired (no repair).</p>\n",
        args.seed
    ));

    header(1, "One unit learns a gate: Y = sigmoid(w1·X1 + w2·X2 + b)");
    html.section("units", "1. One unit learns a gate");
    html.text("p", "A single unit computes Y = sigmoid(w1·X1 + w2·X2 + b). Trained on a gate's four rows, its weights settle where the line w·x + b = 0 separates the 1-rows from the 0-rows; firing thresholds it at 0.5 and the unit becomes that gate.");
    for (name, op) in [("OR", kiln_pbe::Op::Or), ("AND", kiln_pbe::Op::And), ("NAND", kiln_pbe::Op::Nand)] {
        let t = library::two_input(op.truth_table());
        let r = learn_with_bar(&t, &opts(Space::Unit), false, name)?;
        outln!("{name} (rows 00 01 10 11 -> {}):", column(&t));
        show_units(&r, &t, "  ");
        show_verify(&r.circuit, &t, "  ")?;
        outln!("  {}", stats(&r));
        html.text("h3", &format!("{name} (rows 00 01 10 11 \u{2192} {})", column(&t)));
        html.units(&r, &t);
        html.verify(&r.circuit, &t)?;
        html.text("p", &stats(&r));
    }
    html.end();

    header(2, "One unit cannot learn XOR");
    let xor = library::xor();
    let r = learn_with_bar(&xor, &opts(Space::Unit), false, "XOR unit ")?;
    outln!("XOR (rows 00 01 10 11 -> {}):", column(&xor));
    show_units(&r, &xor, "  ");
    if r.units.iter().all(|u| u.weights.iter().chain([&u.bias]).all(|w| w.abs() < 0.1)) {
        outln!("  the weights collapse towards 0: p = 0.5 on every row is the least-bad answer one straight line gives");
    }
    outln!("  best fired program: {}", grammar::to_expression(&r.circuit, "; "));
    show_verify(&r.circuit, &xor, "  ")?;
    if let Some(n) = &r.note {
        outln!("  note: {n}");
    }
    outln!("  {}", stats(&r));
    html.section("xor-unit", "2. One unit cannot learn XOR");
    html.text("p", "XOR's 1-rows (01, 10) and 0-rows (00, 11) sit on opposite diagonals: no straight line separates them, so the best single unit gets at most three of the four rows right. The wrong rows are marked.");
    html.units(&r, &xor);
    html.text("p", &format!("best fired program: {}", grammar::to_expression(&r.circuit, "; ")));
    html.verify(&r.circuit, &xor)?;
    if let Some(n) = &r.note {
        html.raw(&format!("<p class=\"note\">{}</p>\n", report::esc(n)));
    }
    html.text("p", &stats(&r));
    html.end();

    header(3, "XOR by composition: units feeding a unit");
    let mlp = LearnOptions {
        width: Some(2),
        ..opts(Space::Mlp)
    };
    let r = learn_with_bar(&xor, &mlp, false, "XOR mlp ")?;
    outln!("mlp space, 2 hidden units:");
    show_units(&r, &xor, "  ");
    outln!("  composed circuit ({} gates):", r.circuit.num_gates());
    show_program(&r.circuit, "    ");
    show_verify(&r.circuit, &xor, "  ")?;
    outln!("  {}", stats(&r));
    if let Some(n) = &r.note {
        outln!("  note: {n}");
    }
    let plot_path = args.out.join("xor_composition_loss.svg");
    plot::loss_curve(&plot_path, "XOR by composition (2 hidden units): loss per step", &r.loss_curve)?;
    outln!("  loss curve: {}", plot_path.display());
    html.section("composition", "3. XOR by composition");
    html.text("p", "Two hidden units feed an output unit. Each hidden unit learns a gate a line can draw, and the output unit combines them: the composition is XOR.");
    html.text("h3", "mlp space, 2 hidden units");
    html.units(&r, &xor);
    html.program(&r.circuit);
    html.verify(&r.circuit, &xor)?;
    html.curves(&r);
    html.text("p", &stats(&r));
    let rc = learn_with_bar(&xor, &opts(Space::Circuit), false, "XOR circuit ")?;
    outln!("circuit space (relaxed two-input gates):");
    show_program(&rc.circuit, "    ");
    show_verify(&rc.circuit, &xor, "  ")?;
    outln!("  {}", stats(&rc));
    html.text("h3", "circuit space: relaxed two-input gates");
    html.text("p", "Each gate is a softmax mixture of the 16 two-input functions, evaluated in probabilistic logic; training sharpens the mixtures and firing takes each gate's most likely function.");
    html.program(&rc.circuit);
    html.verify(&rc.circuit, &xor)?;
    html.curves(&rc);
    if let Some(h) = &rc.gate_history {
        if html.0.is_some() {
            let data = report::GateHistoryData {
                layers: h.layers.clone(),
                steps: h.snapshots.iter().map(|s| s.step).collect(),
                probs: h.snapshots.iter().map(|s| s.probs.iter().map(|p| p.to_vec()).collect()).collect(),
                fired_step: h.fired_step,
                fired: h.fired.clone(),
                live: h.live.clone(),
            };
            html.raw(&report::gate_table(&data));
        }
    }
    html.text("p", &stats(&rc));
    html.end();

    header(4, "The lecture's composition, checked row by row");
    let names = xor.input_names().to_vec();
    html.section("verification", "4. The lecture's composition, checked row by row");
    html.text(
        "p",
        "Verification runs a program on every row of the table. The first composition is wrong (it is always 1); the second is XOR.",
    );
    for expr in ["Y = (X1 OR X2) OR (X1 NAND X2)", "Y = (X1 OR X2) AND (X1 NAND X2)"] {
        let c = grammar::parse(expr, &names, xor.output_names()).map_err(|e| e.to_string())?;
        outln!("{expr}");
        show_verify(&c, &xor, "  ")?;
        html.text("h3", expr);
        html.raw(&report::diagram(&c));
        html.verify(&c, &xor)?;
    }
    html.end();

    header(5, "Gradient search vs discrete search");
    let tables = ["xor", "majority3", "full_adder", "mux2", "parity4", "adder2"];
    let rows = compare(&tables, args.seed)?;
    html.section("comparison", "5. Gradient search vs discrete search");
    html.raw(&markdown_table(&rows));
    html.text(
        "p",
        &format!("gradient: circuit space, seed {}, gates after firing and simplifying (gradient search alone: no repair); optimised: after kiln's rewriting and resubstitution (kiln optimise without its SAT stages). discrete: exhaustive search over all 2-input gates; minimal = no smaller circuit exists.", args.seed),
    );
    html.end();
    for l in rows {
        outln!("{l}");
    }
    outln!();
    outln!(
        "gradient: circuit space, seed {}, gates after firing and simplifying (gradient search alone: no repair);",
        args.seed
    );
    outln!("optimised: after kiln's rewriting and resubstitution (kiln optimise without its SAT stages);");
    outln!("discrete: exhaustive search over all 2-input gates; minimal = no smaller circuit exists.");
    if let (Some(path), Some(page)) = (&args.report, html.0) {
        report::write(path, &page.finish())?;
        outln!();
        outln!("report: {}", path.display());
    }
    Ok(0)
}

/// A markdown table (header, separator, rows) as an HTML table.
fn markdown_table(lines: &[String]) -> String {
    let cells = |l: &str| -> Vec<String> { l.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect() };
    let mut s = String::from("<table class=\"compare\">\n<thead><tr>");
    for h in lines.first().map(|l| cells(l)).unwrap_or_default() {
        s.push_str(&format!("<th>{}</th>", report::esc(&h)));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for l in lines.iter().skip(2) {
        s.push_str("<tr>");
        for (i, c) in cells(l).into_iter().enumerate() {
            s.push_str(&format!(
                "<td class=\"{}\">{}</td>",
                if i == 0 { "l" } else { "num" },
                report::esc(&c)
            ));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The comparison table of section 5, as lines of a markdown table.
fn compare(names: &[&str], seed: u64) -> Result<Vec<String>, String> {
    let mut out = vec![
        "| table | inputs | gradient: time | restarts | gates | exact | optimised | discrete: time | gates | minimal |".to_string(),
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|".to_string(),
    ];
    for name in names {
        let t = library::builtin(name).ok_or_else(|| format!("internal error: no built-in table '{name}'"))?;
        let opts = LearnOptions {
            seed,
            timeout: Duration::from_secs(10),
            repair: false,
            ..LearnOptions::default()
        };
        let r = learn_with_bar(&t, &opts, false, &format!("{name} "))?;
        let g = r.circuit.simplify();
        let exact = verify(&g, &t).map_err(|e| e.to_string())?.ok();
        // The function-preserving rewriting that `kiln learn` runs at the end, without its
        // time-bounded SAT stages so the demo prints the same table on every run, and without
        // the local search, which would add seconds per table to the demo.
        let (optimised, _) = kiln_logic::optimise::optimise(
            &g,
            &kiln_logic::optimise::OptimiseParams {
                windows: None,
                exact: false,
                local_search: false,
                timeout: None,
                ..Default::default()
            },
        );
        if !verify(&optimised, &t).map_err(|e| e.to_string())?.ok() && exact {
            return Err(format!("internal error: optimising the {name} circuit changed its function"));
        }
        let s = search(
            &t,
            &SearchOptions {
                timeout: Some(Duration::from_secs(5)),
                ..SearchOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        out.push(format!(
            "| {name} | {} | {:.3}s | {} | {} | {} | {} | {:.3}s | {} | {} |",
            t.num_inputs(),
            r.seconds,
            r.restarts,
            g.num_gates(),
            if exact { "yes" } else { "no" },
            optimised.num_gates(),
            s.seconds,
            s.gates,
            if s.optimal { "yes" } else { "not proven" }
        ));
    }
    Ok(out)
}
