//! Self-contained HTML reports: one file with inline CSS and inline SVG, no scripts, fonts or
//! anything else fetched, written as well-formed XHTML-compatible markup (every element closed,
//! all text escaped) so an XML parser reads it back.
//!
//! [`RunReport`] is what one `kiln learn` run leaves behind (it is also the `"report"` object of
//! `kiln learn --json`, which `kiln report` renders); [`Page`] and the fragment functions build
//! pages, the learn report and the demo's alike.

use std::fmt::Write;
use std::path::Path;

use kiln_logic::circuit::{gate_from_truth_table, Circuit, Signal};
use kiln_logic::verify::Verification;
use kiln_logic::{grammar, Table};
use kiln_pbe::learn::LearnResult;
use serde::{Deserialize, Serialize};

pub mod samples;

/// Failing rows shown in a verification matrix, at most.
pub const MAX_FAILING_ROWS: usize = 200;
/// Tables of up to this many rows are shown whole; larger ones show a sample of passing rows.
pub const SMALL_TABLE_ROWS: usize = 64;
/// Passing rows shown from a larger table.
pub const PASSING_SAMPLE_ROWS: usize = 32;
/// Gates whose distributions are drawn, at most.
pub const MAX_GATE_ROWS: usize = 64;
/// Gates that drive no output drawn, at most.
pub const MAX_DEAD_GATE_ROWS: usize = 6;
/// Restarts listed, at most.
pub const MAX_RESTART_ROWS: usize = 60;
/// Points of the loss curve kept in a report.
pub const MAX_CURVE_POINTS: usize = 400;
/// Tables of more rows than this may break across printed pages (between rows); shorter ones
/// are kept on one page.
pub const LONG_TABLE_ROWS: usize = 24;

/// Everything a learn report shows, serialisable so `kiln learn --json` can carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Page title.
    pub title: String,
    /// The table's file.
    pub source: String,
    /// Input column names.
    pub inputs: Vec<String>,
    /// Output column names.
    pub outputs: Vec<String>,
    /// Shape of the training table.
    pub table: TableInfo,
    /// The final program in kiln's grammar.
    pub program: String,
    /// Whether the final program reproduces every training row.
    pub exact: bool,
    /// Rows shown in the verification matrix.
    pub check: CheckSample,
    /// Program family (`circuit`, `unit`, `mlp`).
    pub space: String,
    /// Seed of the run.
    pub seed: u64,
    /// Restarts run, and how many were exact before repair.
    pub restarts: usize,
    /// Restarts exact before repair.
    pub exact_restarts: usize,
    /// Adam steps over all restarts.
    pub steps: usize,
    /// Wall-clock seconds of learning.
    pub seconds: f64,
    /// Index of the restart whose circuit was kept.
    pub chosen_restart: usize,
    /// Relaxed loss of the chosen restart, (step, loss), thinned.
    pub loss: Vec<(usize, f64)>,
    /// Fired accuracy of the chosen restart at each check, (step, fraction).
    pub accuracy: Vec<(usize, f64)>,
    /// Every restart.
    pub restart_log: Vec<RestartRow>,
    /// Gate distributions of the chosen restart (circuit-space networks of at most
    /// [`kiln_pbe::learn::MAX_HISTORY_GATES`] gates).
    pub gates: Option<GateHistoryData>,
    /// Gates of the chosen restart's network (circuit space), so a report without gate
    /// distributions can say why; absent from JSON written before it existed.
    #[serde(default)]
    pub network_gates: Option<usize>,
    /// Gate count after each step of the pipeline (fired, repaired, shrunk, optimised...).
    pub stages: Vec<Stage>,
    /// Fired units, one line each (unit and mlp spaces).
    pub units: Vec<String>,
    /// Remarks: the learner's note, holdout results.
    pub notes: Vec<String>,
}

/// Shape of a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableInfo {
    /// Rows.
    pub rows: usize,
    /// Whether every input combination has a row.
    pub complete: bool,
    /// Rows where each output is 1.
    pub ones: Vec<usize>,
}

impl TableInfo {
    /// The shape of `t`.
    pub fn of(t: &Table) -> TableInfo {
        TableInfo {
            rows: t.len(),
            complete: t.is_complete(),
            ones: (0..t.num_outputs())
                .map(|j| t.rows().iter().filter(|r| r.outputs >> j & 1 == 1).count())
                .collect(),
        }
    }
}

/// One row of a verification matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowCheck {
    /// 0-based row of the table.
    pub row: usize,
    /// Input bits (bit i = input i).
    pub inputs: u64,
    /// Expected output bits.
    pub expected: u64,
    /// Output bits the program gave.
    pub got: u64,
}

/// The rows a verification matrix shows: every row of a small table; of a larger one the failing
/// rows (up to [`MAX_FAILING_ROWS`]) and the first [`PASSING_SAMPLE_ROWS`] passing ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSample {
    /// Rows checked.
    pub rows: usize,
    /// Rows on which some output differs.
    pub failing: usize,
    /// The rows shown, in table order.
    pub shown: Vec<RowCheck>,
}

impl CheckSample {
    /// The rows of `t` to show for verification `v`.
    pub fn of(t: &Table, v: &Verification) -> CheckSample {
        let failing: Vec<RowCheck> = v
            .failures
            .iter()
            .take(MAX_FAILING_ROWS)
            .map(|f| RowCheck {
                row: f.row,
                inputs: f.inputs,
                expected: f.expected,
                got: f.got,
            })
            .collect();
        let bad: std::collections::HashSet<usize> = v.failures.iter().map(|f| f.row).collect();
        let keep = if t.len() <= SMALL_TABLE_ROWS {
            usize::MAX
        } else {
            PASSING_SAMPLE_ROWS
        };
        let passing = t
            .rows()
            .iter()
            .enumerate()
            .filter(|(i, _)| !bad.contains(i))
            .take(keep)
            .map(|(i, r)| RowCheck {
                row: i,
                inputs: r.inputs,
                expected: r.outputs,
                got: r.outputs,
            });
        let mut shown: Vec<RowCheck> = failing.into_iter().chain(passing).collect();
        shown.sort_by_key(|r| r.row);
        CheckSample {
            rows: v.rows,
            failing: v.failures.len(),
            shown,
        }
    }
}

/// One restart, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartRow {
    /// Restart number (1-based, as printed).
    pub number: usize,
    /// Its network, e.g. `16 x 4, learned wiring, residual 3`.
    pub network: String,
    /// Adam steps it ran.
    pub steps: usize,
    /// Fired accuracy before repair.
    pub accuracy: f64,
    /// Gates of its fired program before repair.
    pub gates: usize,
    /// Whether the per-restart repair made it exact.
    pub repaired: bool,
}

/// Gate distributions of one restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateHistoryData {
    /// Gates per layer.
    pub layers: Vec<usize>,
    /// Step of each snapshot.
    pub steps: Vec<usize>,
    /// `probs[snapshot][gate][function]`, rounded to 3 decimals.
    pub probs: Vec<Vec<Vec<f32>>>,
    /// Step of the check whose circuit was kept.
    pub fired_step: usize,
    /// Function each gate fired to.
    pub fired: Vec<u8>,
    /// Whether each gate drives an output.
    pub live: Vec<bool>,
}

/// One step of the pipeline from fired network to final circuit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    /// What ran, e.g. `repair`.
    pub name: String,
    /// Gates after it.
    pub gates: usize,
    /// What it did, in a few words.
    pub detail: String,
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

/// The loss curve as at most [`MAX_CURVE_POINTS`] (step, loss) points, always keeping the last.
pub fn thin_curve(curve: &[f64]) -> Vec<(usize, f64)> {
    let stride = curve.len().div_ceil(MAX_CURVE_POINTS).max(1);
    let mut out: Vec<(usize, f64)> = curve.iter().enumerate().step_by(stride).map(|(i, &l)| (i + 1, l)).collect();
    if let Some(&l) = curve.last() {
        if out.last().is_some_and(|p| p.0 != curve.len()) {
            out.push((curve.len(), l));
        }
    }
    out
}

/// The network of one restart in words.
pub fn network_words(s: &kiln_pbe::learn::RestartSummary, space: kiln_pbe::Space) -> String {
    let (width, depth, wiring, residual) = (s.width, s.depth, s.wiring, s.residual);
    match space {
        kiln_pbe::Space::Unit => "one unit per output".into(),
        kiln_pbe::Space::Mlp => format!("{width} hidden units"),
        kiln_pbe::Space::Circuit => format!(
            "{width} wide, {depth} layers, {} wiring, {} gates{}",
            match wiring {
                kiln_pbe::Wiring::Learned => "learned",
                kiln_pbe::Wiring::Random => "random",
            },
            match s.gate_param {
                kiln_pbe::GateParam::Softmax16 => "softmax16",
                kiln_pbe::GateParam::InputWise => "input-wise",
            },
            if residual > 0.0 {
                format!(", residual init {residual}")
            } else {
                String::new()
            }
        ),
    }
}

impl RunReport {
    /// The report of a learn run: `r` from the learner, `circuit` the final program, `v` its
    /// verification on `table`, `stages` the pipeline after firing.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        title: &str,
        source: &str,
        table: &Table,
        r: &LearnResult,
        space: kiln_pbe::Space,
        seed: u64,
        circuit: &Circuit,
        v: &Verification,
        stages: Vec<Stage>,
        units: Vec<String>,
        notes: Vec<String>,
    ) -> RunReport {
        RunReport {
            title: title.into(),
            source: source.into(),
            inputs: table.input_names().to_vec(),
            outputs: table.output_names().to_vec(),
            table: TableInfo::of(table),
            program: grammar::print(circuit),
            exact: v.ok(),
            check: CheckSample::of(table, v),
            space: format!("{space:?}").to_lowercase(),
            seed,
            restarts: r.restarts,
            exact_restarts: r.exact_restarts,
            steps: r.steps,
            seconds: r.seconds,
            chosen_restart: r.chosen_restart,
            loss: thin_curve(&r.loss_curve),
            accuracy: r.accuracy_curve.clone(),
            restart_log: r
                .restart_log
                .iter()
                .map(|s| RestartRow {
                    number: s.index + 1,
                    network: network_words(s, space),
                    steps: s.steps,
                    accuracy: s.accuracy,
                    gates: s.gates,
                    repaired: s.repaired,
                })
                .collect(),
            gates: r.gate_history.as_ref().map(|h| GateHistoryData {
                layers: h.layers.clone(),
                steps: h.snapshots.iter().map(|s| s.step).collect(),
                probs: h
                    .snapshots
                    .iter()
                    .map(|s| s.probs.iter().map(|p| p.iter().map(|&x| round3(x)).collect()).collect())
                    .collect(),
                fired_step: h.fired_step,
                fired: h.fired.clone(),
                live: h.live.clone(),
            }),
            network_gates: match space {
                kiln_pbe::Space::Circuit => r
                    .restart_log
                    .iter()
                    .find(|s| s.index == r.chosen_restart)
                    .map(|s| s.width * s.depth.saturating_sub(1) + table.num_outputs()),
                _ => None,
            },
            stages,
            units,
            notes,
        }
    }

    /// Why a run has no gate distributions, for the section that would show them.
    fn missing_gates_text(&self) -> String {
        if self.space != "circuit" {
            return format!(
                "The {} space learns threshold units, not gates that each choose among the 16 two-input functions, so there are no gate distributions to show; the fired units are listed with the circuit above.",
                esc(&self.space)
            );
        }
        let limit = kiln_pbe::learn::MAX_HISTORY_GATES;
        let size = match self.network_gates {
            Some(n) if n > limit => format!("restart {}'s network had {n} gates", self.chosen_restart + 1),
            Some(n) => format!("restart {}'s network had {n} gates but recorded none", self.chosen_restart + 1),
            None => "this run's network was larger".into(),
        };
        format!(
            "Not recorded for this run. The learner keeps each gate's distribution only for gate networks of at most {limit} gates, since snapshots of larger ones slow training and swell the report; {size}. Learn with a smaller --width or --depth to see how the gates chose their functions."
        )
    }

    /// The final program, parsed back.
    pub fn circuit(&self) -> Result<Circuit, String> {
        grammar::parse(&self.program, &self.inputs, &self.outputs).map_err(|e| format!("report program: {e}"))
    }

    /// The whole report page.
    pub fn to_html(&self) -> Result<String, String> {
        let circuit = self.circuit()?;
        let mut page = Page::new(&self.title);
        let status = if self.exact {
            badge(true, "exact")
        } else {
            badge(false, &format!("{} of {} rows wrong", self.check.failing, self.check.rows))
        };
        page.raw(&format!(
            "<p class=\"sub\">{} &#8212; {} space, seed {}, {} gates {status}</p>\n",
            esc(&self.source),
            esc(&self.space),
            self.seed,
            circuit.num_gates()
        ));
        page.section("summary", "Table and result");
        page.raw(&table_summary(&self.inputs, &self.outputs, &self.table));
        let mut kv = vec![
            (
                "program".to_string(),
                format!("{} gates, {}", circuit.num_gates(), if self.exact { "exact" } else { "not exact" }),
            ),
            (
                "restarts".to_string(),
                format!(
                    "{} run, {} exact before repair; restart {} kept",
                    self.restarts,
                    self.exact_restarts,
                    self.chosen_restart + 1
                ),
            ),
            ("Adam steps".to_string(), self.steps.to_string()),
            ("time".to_string(), format!("{:.3} s", self.seconds)),
        ];
        if let Some(last) = self.stages.last() {
            kv.push((
                "pipeline".to_string(),
                format!("{} gates fired, {} at the end", self.stages[0].gates, last.gates),
            ));
        }
        page.raw(&key_values(&kv));
        for n in &self.notes {
            page.raw(&format!("<p class=\"note\">{}</p>\n", esc(n)));
        }
        page.end_section();

        page.section("circuit", "The fired circuit");
        page.raw(&diagram(&circuit));
        page.raw("<h3>Program</h3>\n");
        page.raw(&program_block(&self.program));
        if !self.units.is_empty() {
            page.raw("<h3>Fired units</h3>\n");
            page.raw(&program_block(&self.units.join("\n")));
        }
        page.end_section();

        page.section("verification", "Verification");
        page.raw(&verification_matrix(&self.inputs, &self.outputs, &self.check));
        page.end_section();

        page.section("training", "Training");
        page.raw(&format!(
            "<p>Curves of restart {}, the one whose circuit was kept. Loss is the relaxed network's cross-entropy; accuracy is the fraction of rows the fired circuit gets right at each check.</p>\n",
            self.chosen_restart + 1
        ));
        page.raw("<div class=\"grid2\">\n");
        page.raw(&line_chart("Relaxed loss", "step", &self.loss, None, false));
        page.raw(&line_chart("Fired accuracy", "step", &self.accuracy, Some((0.0, 1.0)), true));
        page.raw("</div>\n");
        page.end_section();

        page.section("gates", "How the gates chose their functions");
        match &self.gates {
            Some(g) => page.raw(&gate_table(g)),
            None => page.raw(&format!("<p class=\"note missing\">{}</p>\n", self.missing_gates_text())),
        }
        page.end_section();

        page.section("restarts", "Restarts and pipeline");
        page.raw(&restart_table(&self.restart_log, self.chosen_restart + 1));
        if !self.stages.is_empty() {
            page.raw("<h3>Gate count at each step</h3>\n");
            page.raw(&stage_table(&self.stages));
        }
        page.end_section();
        Ok(page.finish())
    }
}

/// XML-escapes text for element content and attribute values: the diagrams' escaping, so the
/// page and the SVG inside it agree.
pub use kiln_logic::diagram::xml_escape as esc;

const CSS: &str = "
:root{--fg:#1f2933;--muted:#5f6b7a;--line:#d9dee5;--bad:#b42318;--badbg:#fdecea;--badcell:#f7b9b3;--ok:#1e7b45;--okbg:#e4f4ea;--accent:#2b6cb0}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--fg);font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:24px 32px 56px}
h1{font-size:1.7rem;margin:0 0 4px}
h2{font-size:1.3rem;margin:36px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:1.05rem;margin:20px 0 6px}
p{margin:6px 0}
.sub{color:var(--muted);margin-bottom:12px}
nav{font-size:.9rem;color:var(--muted);margin:8px 0 4px}
nav a{color:var(--accent);text-decoration:none;margin-right:14px}
table{border-collapse:collapse;font-size:.88rem;margin:8px 0}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:center;vertical-align:middle}
th{background:#f3f5f8;font-weight:600}
th.l,td.l{text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:var(--badbg)}
tr.fail td.bad{background:var(--badcell);color:#7a1a12;font-weight:700}
tr.chosen td{background:#eaf2fb;font-weight:600}
tr.dead td{color:var(--muted)}
.bits{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace}
.badge{display:inline-block;padding:0 9px;border-radius:10px;font-size:.85rem;font-weight:600;margin-left:6px}
.badge.ok{background:var(--okbg);color:var(--ok)}
.badge.bad{background:var(--badbg);color:var(--bad)}
pre{background:#f6f7f9;border:1px solid var(--line);padding:10px 12px;overflow-x:auto;font-size:.85rem;margin:6px 0}
.figure{overflow-x:auto;border:1px solid var(--line);border-radius:4px;padding:8px;margin:8px 0;background:#fff}
.figure svg{max-width:100%;height:auto}
.kv{border:none}
.kv th,.kv td{border:none;text-align:left;padding:1px 14px 1px 0;background:none}
.kv th{color:var(--muted);font-weight:500}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.note{background:#fff8e6;border-left:4px solid #d69e2e;padding:6px 10px;margin:8px 0}
.small{font-size:.85rem;color:var(--muted)}
svg.chart text{font-family:system-ui,Helvetica,Arial,sans-serif;font-size:11px;fill:#333}
svg.chart .axis{stroke:#888;stroke-width:1}
svg.chart .grid{stroke:#e5e8ec;stroke-width:1}
svg.chart .series{fill:none;stroke:var(--accent);stroke-width:1.8}
svg.chart .dot{fill:var(--accent)}
svg.bars .p{fill:#9db3cf}
svg.bars .f{fill:#c05621}
svg.bars .base{stroke:#bbb;stroke-width:1}
svg.stage .bar{fill:#9db3cf}
svg.candidates .train{fill:#9db3cf}
svg.candidates .valid{fill:var(--accent)}
svg.candidates .ands{fill:#c9a46a}
svg.candidates .budget{stroke:var(--bad);stroke-width:1.2;stroke-dasharray:4 3}
svg.candidates .val{font-size:10px;fill:#444}
.confusions{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
table.confusion caption{font-size:.85rem;font-weight:600;text-align:left;padding-bottom:3px}
table.confusion td.cm{min-width:92px;padding:6px 10px;line-height:1.2}
.legend{font-size:.8rem;color:var(--muted);columns:4;margin:6px 0 10px;padding-left:18px}
@media (max-width:820px){.grid2{grid-template-columns:1fr} main{padding:16px}}
@media print{
body{font-size:9.5pt}
main{max-width:none;padding:0}
nav{display:none}
h2{margin-top:18px;break-after:avoid;page-break-after:avoid}
h3{break-after:avoid;page-break-after:avoid}
h2+p,h3+p{break-after:avoid;page-break-after:avoid}
#candidates,#confusion{break-inside:avoid;page-break-inside:avoid}
section:first-of-type h2{margin-top:8px}
.figure,pre,.grid2>*,.kv,.confusions,table.stages{break-inside:avoid;page-break-inside:avoid}
.figure{overflow:visible;border:none;padding:0}
.figure svg{max-height:235mm}
.figure.rows{break-inside:auto;page-break-inside:auto}
tr{break-inside:avoid;page-break-inside:avoid}
thead{display:table-header-group}
table{font-size:8pt;max-width:100%}
th,td{padding:2px 5px}
svg.bars{width:72px;height:21px}
pre{white-space:pre-wrap;word-break:break-all;overflow:visible;font-size:7.5pt}
.grid2{grid-template-columns:1fr 1fr;gap:8px}
.legend{columns:4}
tr.fail td,tr.fail td.bad,tr.chosen td,th,td.cm,.badge,.note,svg{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
@page{margin:14mm}
";

/// An HTML page under construction.
pub struct Page {
    title: String,
    nav: Vec<(String, String)>,
    body: String,
}

impl Page {
    /// An empty page titled `title`.
    pub fn new(title: &str) -> Page {
        Page {
            title: title.into(),
            nav: Vec::new(),
            body: String::new(),
        }
    }

    /// Appends markup as is.
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    /// Opens a section with an id and a heading (listed in the page's contents).
    pub fn section(&mut self, id: &str, title: &str) {
        self.nav.push((id.into(), title.into()));
        let _ = writeln!(self.body, "<section id=\"{}\">\n<h2>{}</h2>", esc(id), esc(title));
    }

    /// Closes the open section.
    pub fn end_section(&mut self) {
        self.body.push_str("</section>\n");
    }

    /// The finished document.
    pub fn finish(self) -> String {
        let mut s = String::new();
        s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
        s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
        s.push_str("<meta name=\"generator\" content=\"kiln\"/>\n");
        // Nothing may be fetched: the browser itself refuses any script or outside resource.
        s.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"/>\n");
        let _ = writeln!(s, "<title>{}</title>", esc(&self.title));
        let _ = writeln!(s, "<style>{CSS}</style>\n</head>\n<body>\n<main>");
        let _ = writeln!(s, "<h1>{}</h1>", esc(&self.title));
        if self.nav.len() > 1 {
            s.push_str("<nav>");
            for (id, t) in &self.nav {
                let _ = write!(s, "<a href=\"#{}\">{}</a>", esc(id), esc(t));
            }
            s.push_str("</nav>\n");
        }
        s.push_str(&self.body);
        s.push_str(
            "<p class=\"small\">Written by kiln. Self-contained: no scripts, fonts or images are fetched.</p>\n</main>\n</body>\n</html>\n",
        );
        s
    }
}

/// A coloured label.
pub fn badge(ok: bool, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", if ok { "ok" } else { "bad" }, esc(text))
}

/// A two-column table of names and values.
pub fn key_values(kv: &[(String, String)]) -> String {
    let mut s = String::from("<table class=\"kv\">\n");
    for (k, v) in kv {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    s.push_str("</table>\n");
    s
}

/// The table's shape: its columns, rows and how many ones each output has.
pub fn table_summary(inputs: &[String], outputs: &[String], t: &TableInfo) -> String {
    let full = 1u128 << inputs.len().min(100);
    let kv = vec![
        ("inputs".to_string(), format!("{} ({})", inputs.len(), inputs.join(", "))),
        ("outputs".to_string(), format!("{} ({})", outputs.len(), outputs.join(", "))),
        (
            "rows".to_string(),
            if t.complete {
                format!("{} (complete truth table)", t.rows)
            } else {
                format!("{} of {full} input combinations", t.rows)
            },
        ),
        (
            "ones per output".to_string(),
            outputs
                .iter()
                .zip(&t.ones)
                .map(|(n, o)| format!("{n}: {o}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    key_values(&kv)
}

/// The circuit's diagram, inline.
pub fn diagram(c: &Circuit) -> String {
    format!("<div class=\"figure diagram\">\n{}</div>\n", kiln_logic::diagram::to_svg(c))
}

/// Program text in a preformatted block.
pub fn program_block(text: &str) -> String {
    format!("<pre class=\"program\">{}</pre>\n", esc(text.trim_end()))
}

/// The verification matrix: one row per shown table row, the inputs' bits, and for each output
/// what the table expects and what the program gave; a failing row is shaded and its wrong cells
/// marked.
pub fn verification_matrix(inputs: &[String], outputs: &[String], c: &CheckSample) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<p>{} {} of {} rows right.</p>",
        badge(c.failing == 0, if c.failing == 0 { "all rows match" } else { "some rows differ" }),
        c.rows - c.failing,
        c.rows
    );
    let wide = inputs.len() > 12;
    // A short matrix prints whole; a long one may break between rows, its header repeated.
    s.push_str(if c.shown.len() > LONG_TABLE_ROWS {
        "<div class=\"figure rows\">"
    } else {
        "<div class=\"figure\">"
    });
    s.push_str("\n<table class=\"verify\">\n<thead><tr><th rowspan=\"2\">row</th>");
    if wide {
        let _ = write!(
            s,
            "<th rowspan=\"2\" class=\"l\">inputs ({} &#8230; {})</th>",
            esc(&inputs[0]),
            esc(&inputs[inputs.len() - 1])
        );
    } else {
        for n in inputs {
            let _ = write!(s, "<th rowspan=\"2\">{}</th>", esc(n));
        }
    }
    for n in outputs {
        let _ = write!(s, "<th colspan=\"2\">{}</th>", esc(n));
    }
    s.push_str("<th rowspan=\"2\"></th></tr>\n<tr>");
    for _ in outputs {
        s.push_str("<th>expected</th><th>got</th>");
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in &c.shown {
        let fail = r.expected != r.got;
        let _ = write!(
            s,
            "<tr class=\"{}\" data-row=\"{}\"><td class=\"num\">{}</td>",
            if fail { "fail" } else { "pass" },
            r.row,
            r.row + 1
        );
        if wide {
            let bits: String = (0..inputs.len()).map(|i| if r.inputs >> i & 1 == 1 { '1' } else { '0' }).collect();
            let _ = write!(s, "<td class=\"bits l\">{bits}</td>");
        } else {
            for i in 0..inputs.len() {
                let _ = write!(s, "<td class=\"bits\">{}</td>", r.inputs >> i & 1);
            }
        }
        for j in 0..outputs.len() {
            let (e, g) = (r.expected >> j & 1, r.got >> j & 1);
            let _ = write!(
                s,
                "<td class=\"bits\">{e}</td><td class=\"bits{}\">{g}</td>",
                if e != g { " bad" } else { "" }
            );
        }
        let _ = writeln!(s, "<td>{}</td></tr>", if fail { "&#10007; wrong" } else { "&#10003;" });
    }
    s.push_str("</tbody>\n</table>\n</div>\n");
    let shown_fail = c.shown.iter().filter(|r| r.expected != r.got).count();
    let shown_pass = c.shown.len() - shown_fail;
    if c.shown.len() < c.rows {
        let _ = writeln!(
            s,
            "<p class=\"small\">Showing {shown_fail} of {} failing rows and {shown_pass} of {} passing rows; the other rows are left out.</p>",
            c.failing,
            c.rows - c.failing
        );
    }
    if wide {
        let _ = writeln!(s, "<p class=\"small\">Input bits are written {} first.</p>", esc(&inputs[0]));
    }
    s
}

fn nice_step(range: f64, ticks: usize) -> f64 {
    let raw = range / ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || (v.fract() == 0.0 && v.abs() >= 1.0) {
        format!("{v:.0}")
    } else if v.abs() >= 0.1 {
        format!("{:.2}", v).trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A line chart of (x, y) points as inline SVG: axes with ticks, a grid, the series as a
/// polyline (`steps` draws it as a staircase, with a dot at each point).
pub fn line_chart(title: &str, x_label: &str, points: &[(usize, f64)], y_range: Option<(f64, f64)>, steps: bool) -> String {
    let pts: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x as f64, y)).filter(|p| p.1.is_finite()).collect();
    let (w, h) = (520.0, 250.0);
    let (l, r, t, b) = (52.0, 16.0, 28.0, 38.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<div class=\"figure\"><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-title=\"{}\" data-points=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
        esc(title),
        pts.len()
    );
    let _ = writeln!(s, "<text x=\"{l}\" y=\"16\" font-weight=\"600\">{}</text>", esc(title));
    if pts.is_empty() {
        let _ = writeln!(s, "<text x=\"{l}\" y=\"{:.0}\">no data</text></svg></div>", h / 2.0);
        return s;
    }
    let x_max = pts.iter().map(|p| p.0).fold(0.0f64, f64::max).max(1.0);
    let (y_lo, y_hi) = y_range.unwrap_or_else(|| {
        let hi = pts.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        (0.0, if hi > 0.0 { hi * 1.05 } else { 1.0 })
    });
    let y_span = (y_hi - y_lo).max(1e-12);
    let px = |x: f64| l + (x / x_max) * (w - l - r);
    let py = |y: f64| t + (1.0 - (y - y_lo) / y_span) * (h - t - b);
    let ys = nice_step(y_span, 5);
    let mut y = (y_lo / ys).ceil() * ys;
    while y <= y_hi + 1e-9 {
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - r,
            py(y),
            py(y),
            l - 6.0,
            py(y) + 4.0,
            fmt_tick(y)
        );
        y += ys;
    }
    let xs = nice_step(x_max, 6).max(1.0);
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            px(x),
            px(x),
            h - b,
            h - b + 4.0,
            px(x),
            h - b + 16.0,
            fmt_tick(x)
        );
        x += xs;
    }
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{l}\" x2=\"{l}\" y1=\"{t}\" y2=\"{:.1}\"/>",
        w - r,
        h - b,
        h - b,
        h - b
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (l + w - r) / 2.0,
        h - 6.0,
        esc(x_label)
    );
    let mut poly = String::new();
    let mut prev: Option<(f64, f64)> = None;
    for &(x, y) in &pts {
        if steps {
            if let Some((_, py0)) = prev {
                let _ = write!(poly, "{:.1},{:.1} ", px(x), py(py0));
            }
        }
        let _ = write!(poly, "{:.1},{:.1} ", px(x), py(y));
        prev = Some((x, y));
    }
    let _ = writeln!(s, "<polyline class=\"series\" points=\"{}\"/>", poly.trim_end());
    if steps && pts.len() <= 200 {
        for &(x, y) in &pts {
            let _ = write!(s, "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.2\"/>", px(x), py(y));
        }
        s.push('\n');
    }
    let last = pts[pts.len() - 1];
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"16\" text-anchor=\"end\">last: {}</text>",
        w - r,
        fmt_tick(last.1)
    );
    s.push_str("</svg></div>\n");
    s
}

/// Names of the 16 two-input functions over A and B, indexed by truth table (bit `2a + b`).
pub fn function_names() -> Vec<String> {
    (0..16u8)
        .map(|tt| {
            let mut c = Circuit::new(vec!["A".into(), "B".into()]);
            let s = c
                .push(gate_from_truth_table(tt, Signal::Input(0), Signal::Input(1)))
                .expect("a gate over the inputs");
            c.set_output("F", s).expect("one output");
            let e = grammar::to_expression(&c.simplify(), "; ");
            e.strip_prefix("F = ").unwrap_or(&e).to_string()
        })
        .collect()
}

/// 16 small bars: one gate's distribution, the function it fired to in another colour.
fn bars(p: &[f32], fired: u8, names: &[String]) -> String {
    let (bw, h) = (6.0, 28.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bars\" width=\"{}\" height=\"{h}\" viewBox=\"0 0 {} {h}\">",
        16.0 * bw,
        16.0 * bw
    );
    let top = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
    let _ = write!(s, "<title>{} {:.2}</title>", esc(&names[top]), p[top]);
    for (i, &v) in p.iter().enumerate().take(16) {
        let bh = (v.clamp(0.0, 1.0) as f64 * (h - 2.0)).max(0.0);
        let _ = write!(
            s,
            "<rect class=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"/>",
            if i == fired as usize { "f" } else { "p" },
            i as f64 * bw + 0.5,
            h - 1.0 - bh,
            bw - 1.0
        );
    }
    let _ = write!(
        s,
        "<line class=\"base\" x1=\"0\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/></svg>",
        16.0 * bw,
        h - 0.5,
        h - 0.5
    );
    s
}

/// Each gate's distribution over the 16 functions at each snapshot, next to what it fired to.
pub fn gate_table(g: &GateHistoryData) -> String {
    let names = function_names();
    let total = g.fired.len();
    let mut order: Vec<usize> = (0..total).filter(|&i| g.live.get(i).copied().unwrap_or(false)).collect();
    let live = order.len();
    order.extend((0..total).filter(|&i| !g.live.get(i).copied().unwrap_or(false)));
    // Gates that drive nothing did not matter to the circuit: a few show what an unused gate does.
    order.truncate((live + MAX_DEAD_GATE_ROWS).min(MAX_GATE_ROWS).max(live.min(MAX_GATE_ROWS)));
    let mut label = Vec::with_capacity(total);
    for (li, &n) in g.layers.iter().enumerate() {
        for k in 0..n {
            label.push(if li + 1 == g.layers.len() {
                format!("out {}", k + 1)
            } else {
                format!("L{}.{}", li + 1, k + 1)
            });
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<p>Each gate of the relaxed network mixes the 16 two-input functions with softmax weights. The bars show that mixture at {} points of training (one bar per function, in the order listed below); the orange bar is the function the gate fired to at step {}, where the kept circuit was fired. {live} of {total} gates drive an output; they come first{}.</p>",
        g.steps.len(),
        g.fired_step,
        if order.len() < total { format!(", and {} gates that drive nothing are left out", total - order.len()) } else { String::new() }
    );
    s.push_str(if order.len() > LONG_TABLE_ROWS / 2 {
        "<div class=\"figure rows\">"
    } else {
        "<div class=\"figure\">"
    });
    s.push_str("\n<table class=\"gates\">\n<thead><tr><th>gate</th>");
    for st in &g.steps {
        let _ = write!(s, "<th>step {st}</th>");
    }
    s.push_str("<th class=\"l\">fired to</th><th>p</th></tr></thead>\n<tbody>\n");
    for &i in &order {
        let fired = g.fired.get(i).copied().unwrap_or(0);
        let is_live = g.live.get(i).copied().unwrap_or(false);
        let _ = write!(
            s,
            "<tr class=\"{}\" data-gate=\"{i}\"><td class=\"l\">{}</td>",
            if is_live { "live" } else { "dead" },
            esc(label.get(i).map_or("?", String::as_str))
        );
        for snap in &g.probs {
            let empty = Vec::new();
            let _ = write!(s, "<td>{}</td>", bars(snap.get(i).unwrap_or(&empty), fired, &names));
        }
        let p_last = g
            .probs
            .last()
            .and_then(|p| p.get(i))
            .and_then(|p| p.get(fired as usize))
            .copied()
            .unwrap_or(0.0);
        let _ = writeln!(
            s,
            "<td class=\"l bits\">{}</td><td class=\"num\">{p_last:.2}</td></tr>",
            esc(&names[fired as usize & 15])
        );
    }
    s.push_str("</tbody>\n</table>\n</div>\n<ol class=\"legend\" start=\"0\">");
    for n in &names {
        let _ = write!(s, "<li>{}</li>", esc(n));
    }
    s.push_str("</ol>\n<p class=\"small\">Functions over the gate's inputs A and B, by truth table; p is the fired function's weight at the last snapshot. Gates that drive nothing are greyed.</p>\n");
    s
}

/// The restarts, the kept one highlighted.
pub fn restart_table(rows: &[RestartRow], chosen: usize) -> String {
    let mut s = String::new();
    let exact = rows.iter().filter(|r| r.accuracy >= 1.0).count();
    let _ = writeln!(
        s,
        "<p>{} restart{}, {exact} exact straight from gradient search ({:.0}%).</p>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        if rows.is_empty() {
            0.0
        } else {
            100.0 * exact as f64 / rows.len() as f64
        }
    );
    s.push_str("<table class=\"restarts\">\n<thead><tr><th>restart</th><th class=\"l\">network</th><th>steps</th><th>fired accuracy</th><th>gates</th><th class=\"l\">outcome</th></tr></thead>\n<tbody>\n");
    let mut shown: Vec<&RestartRow> = rows.iter().take(MAX_RESTART_ROWS).collect();
    if let Some(c) = rows.iter().find(|r| r.number == chosen) {
        if !shown.iter().any(|r| r.number == chosen) {
            shown.push(c);
        }
    }
    for r in &shown {
        let outcome = if r.accuracy >= 1.0 {
            "exact"
        } else if r.repaired {
            "repaired to exact"
        } else {
            "not exact"
        };
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td class=\"num\">{}</td><td class=\"l\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{}</td><td class=\"l\">{}{}</td></tr>",
            if r.number == chosen { "chosen" } else { "" },
            r.number,
            esc(&r.network),
            r.steps,
            r.accuracy * 100.0,
            r.gates,
            outcome,
            if r.number == chosen { " (kept)" } else { "" }
        );
    }
    s.push_str("</tbody>\n</table>\n");
    if shown.len() < rows.len() {
        let _ = writeln!(s, "<p class=\"small\">{} more restarts are left out.</p>", rows.len() - shown.len());
    }
    s
}

/// Gate count after each pipeline step, with bars.
pub fn stage_table(stages: &[Stage]) -> String {
    let max = stages.iter().map(|s| s.gates).max().unwrap_or(1).max(1) as f64;
    let mut s = String::from("<table class=\"stages\">\n<thead><tr><th class=\"l\">step</th><th>gates</th><th></th><th class=\"l\">what it did</th></tr></thead>\n<tbody>\n");
    for st in stages {
        let w = 200.0 * st.gates as f64 / max;
        let _ = writeln!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"num\">{}</td><td><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"stage\" width=\"204\" height=\"14\" viewBox=\"0 0 204 14\"><rect class=\"bar\" x=\"0\" y=\"2\" width=\"{w:.1}\" height=\"10\"/></svg></td><td class=\"l\">{}</td></tr>",
            esc(&st.name),
            st.gates,
            esc(&st.detail)
        );
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// Writes `html` to `path`, creating missing parent folders.
pub fn write(path: &Path, html: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create folder: {e}", dir.display()))?;
    }
    std::fs::write(path, html).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}
