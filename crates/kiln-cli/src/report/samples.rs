//! The report of a samples-mode run (`kiln learn TRAIN --valid VALID --report …`): what the
//! samples look like, which learner paths competed and how each scored, the chosen circuit, a
//! confusion matrix and the gate network's training.
//!
//! [`SamplesReport`] is also the `"report"` object of `kiln learn --json` in samples mode, tagged
//! with `"kind": "samples"` so `kiln report` tells it from a truth-table [`super::RunReport`].

use std::fmt::Write;

use kiln_logic::{grammar, Circuit, SampleSet};
use kiln_pbe::generalise::{SampleLearnResult, SampleProgress};
use serde::{Deserialize, Serialize};

use super::{badge, esc, key_values, line_chart, program_block, Page};

/// The `kind` a samples report carries in JSON.
pub const KIND: &str = "samples";
/// Programs of up to this many gates are printed whole; longer ones are cut.
pub const MAX_PROGRAM_GATES: usize = 200;
/// Lines of a longer program shown.
pub const PROGRAM_PREVIEW_LINES: usize = 40;
/// Outputs that get a confusion matrix of their own, at most.
pub const MAX_CONFUSION_OUTPUTS: usize = 8;

/// What the learner reported while it ran, kept for the report (the result itself holds only
/// each path's best candidate).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Gate-network training loss after each epoch, (epoch, loss).
    pub network_loss: Vec<(usize, f64)>,
    /// Best validation accuracy over all paths so far, after each gate-network epoch.
    pub best_valid: Vec<(usize, f64)>,
}

impl Trace {
    /// Records one progress report of the learner.
    pub fn record(&mut self, p: &SampleProgress) {
        if p.method == kiln_pbe::generalise::Method::GateNetwork {
            self.network_loss.push((p.step, p.loss));
            self.best_valid.push((p.step, p.best_valid));
        }
    }
}

/// Shape of one sample file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleInfo {
    /// The file.
    pub source: String,
    /// Rows.
    pub rows: usize,
    /// Rows where each output is 1.
    pub ones: Vec<usize>,
    /// Rows where each output is unspecified (`-` in a PLA).
    pub unspecified: Vec<usize>,
}

impl SampleInfo {
    /// The shape of `s`.
    pub fn of(s: &SampleSet) -> SampleInfo {
        let mut ones = vec![0; s.num_outputs()];
        let mut unspecified = vec![0; s.num_outputs()];
        for r in 0..s.len() {
            for j in 0..s.num_outputs() {
                match s.output(r, j) {
                    Some(true) => ones[j] += 1,
                    Some(false) => {}
                    None => unspecified[j] += 1,
                }
            }
        }
        SampleInfo {
            source: s.source().to_string(),
            rows: s.len(),
            ones,
            unspecified,
        }
    }
}

/// The best circuit one learner path produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateRow {
    /// The path, e.g. `gate-network`.
    pub method: String,
    /// What was chosen inside it (depth, epoch, shape).
    pub detail: String,
    /// Accuracy on the training samples.
    pub train_accuracy: f64,
    /// Accuracy on the validation samples (the training samples when there were none).
    pub valid_accuracy: f64,
    /// AND nodes of its AIG.
    pub and_nodes: usize,
    /// Whether it was the one kept.
    pub chosen: bool,
}

/// Predictions against expectations for one output, over the rows where it is specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Expected 1, predicted 1.
    pub true_pos: u64,
    /// Expected 0, predicted 1.
    pub false_pos: u64,
    /// Expected 1, predicted 0.
    pub false_neg: u64,
    /// Expected 0, predicted 0.
    pub true_neg: u64,
}

impl Confusion {
    /// Rows counted.
    pub fn total(&self) -> u64 {
        self.true_pos + self.false_pos + self.false_neg + self.true_neg
    }

    /// Fraction right, 1 when nothing was counted (as [`kiln_logic::samples::Accuracy`]).
    pub fn accuracy(&self) -> f64 {
        match self.total() {
            0 => 1.0,
            t => (self.true_pos + self.true_neg) as f64 / t as f64,
        }
    }

    fn add(&mut self, o: &Confusion) {
        self.true_pos += o.true_pos;
        self.false_pos += o.false_pos;
        self.false_neg += o.false_neg;
        self.true_neg += o.true_neg;
    }
}

/// One [`Confusion`] per output of `c` on `set`, counted word by word.
pub fn confusion(c: &Circuit, set: &SampleSet) -> Vec<Confusion> {
    let pred = c.eval_columns(&set.input_words(), set.words());
    let mask = set.row_mask();
    (0..set.num_outputs())
        .map(|j| {
            let mut m = Confusion {
                true_pos: 0,
                false_pos: 0,
                false_neg: 0,
                true_neg: 0,
            };
            for (w, &rows) in mask.iter().enumerate() {
                let care = set.care_columns()[j][w] & rows;
                let want = set.output_columns()[j][w];
                let got = pred.get(j).and_then(|p| p.get(w)).copied().unwrap_or(0);
                m.true_pos += u64::from((care & want & got).count_ones());
                m.false_pos += u64::from((care & !want & got).count_ones());
                m.false_neg += u64::from((care & want & !got).count_ones());
                m.true_neg += u64::from((care & !want & !got).count_ones());
            }
            m
        })
        .collect()
}

/// Everything a samples-mode report shows, serialisable so `kiln learn --json` can carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SamplesReport {
    /// Always [`KIND`]: tells `kiln report` which page to draw.
    pub kind: String,
    /// Page title.
    pub title: String,
    /// Input column names.
    pub inputs: Vec<String>,
    /// Output column names.
    pub outputs: Vec<String>,
    /// The training samples.
    pub train: SampleInfo,
    /// The validation samples, if given.
    pub valid: Option<SampleInfo>,
    /// The kept circuit in kiln's grammar.
    pub program: String,
    /// Path of the kept circuit.
    pub method: String,
    /// What was chosen inside that path.
    pub detail: String,
    /// AND nodes of the kept circuit's AIG.
    pub and_nodes: usize,
    /// The AND-node budget.
    pub max_and_nodes: usize,
    /// Training accuracy of the kept circuit.
    pub train_accuracy: f64,
    /// Validation accuracy of the kept circuit, if validation samples were given.
    pub valid_accuracy: Option<f64>,
    /// The best circuit of each path that ran, in the order they ran.
    pub candidates: Vec<CandidateRow>,
    /// Confusion of the kept circuit per output, on the validation samples if given, else on
    /// the training samples.
    pub confusion: Vec<Confusion>,
    /// Gate-network training loss per epoch.
    pub network_loss: Vec<(usize, f64)>,
    /// Best validation accuracy over all paths after each gate-network epoch.
    pub best_valid: Vec<(usize, f64)>,
    /// Epochs the gate network trained.
    pub epochs: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Time budget, seconds.
    pub timeout: f64,
    /// Wall-clock seconds used.
    pub seconds: f64,
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// Names as `a, b, c` when few, else the first and last few around an ellipsis.
fn name_list(names: &[String]) -> String {
    if names.len() <= 12 {
        names.join(", ")
    } else {
        format!("{}, \u{2026}, {}", names[..4].join(", "), names[names.len() - 2..].join(", "))
    }
}

impl SamplesReport {
    /// The report of a samples run: `r` from the learner, `trace` what it reported on the way.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        title: &str,
        train: &SampleSet,
        valid: Option<&SampleSet>,
        r: &SampleLearnResult,
        trace: Trace,
        seed: u64,
        timeout: f64,
        max_and_nodes: usize,
    ) -> SamplesReport {
        let best = &r.best;
        SamplesReport {
            kind: KIND.into(),
            title: title.into(),
            inputs: train.input_names().to_vec(),
            outputs: train.output_names().to_vec(),
            train: SampleInfo::of(train),
            valid: valid.map(SampleInfo::of),
            program: grammar::print(&best.circuit),
            method: best.method.name().into(),
            detail: best.detail.clone(),
            and_nodes: best.and_nodes,
            max_and_nodes,
            train_accuracy: best.train_accuracy,
            valid_accuracy: valid.map(|_| best.valid_accuracy),
            candidates: r
                .per_method
                .iter()
                .map(|c| CandidateRow {
                    method: c.method.name().into(),
                    detail: c.detail.clone(),
                    train_accuracy: c.train_accuracy,
                    valid_accuracy: c.valid_accuracy,
                    and_nodes: c.and_nodes,
                    // per_method holds one candidate per path, the winner among them.
                    chosen: c.method == best.method,
                })
                .collect(),
            confusion: confusion(&best.circuit, valid.unwrap_or(train)),
            network_loss: trace.network_loss,
            best_valid: trace.best_valid,
            epochs: r.epochs,
            seed,
            timeout,
            seconds: r.elapsed.as_secs_f64(),
        }
    }

    /// The kept circuit, parsed back.
    pub fn circuit(&self) -> Result<Circuit, String> {
        grammar::parse(&self.program, &self.inputs, &self.outputs).map_err(|e| format!("report program: {e}"))
    }

    /// The whole report page.
    pub fn to_html(&self) -> Result<String, String> {
        let circuit = self.circuit()?;
        let has_valid = self.valid.is_some();
        let mut page = Page::new(&self.title);
        let score = match self.valid_accuracy {
            Some(v) => format!("validation {}", pct(v)),
            None => format!("training {} (no validation samples)", pct(self.train_accuracy)),
        };
        page.raw(&format!(
            "<p class=\"sub\">{} &#8212; {} ({}), {} AND nodes of {} allowed {}</p>\n",
            esc(&self.train.source),
            esc(&self.method),
            esc(&self.detail),
            self.and_nodes,
            self.max_and_nodes,
            badge(self.and_nodes <= self.max_and_nodes, &score)
        ));

        page.section("summary", "Samples and result");
        page.raw(&self.summary());
        page.end_section();

        page.section("candidates", "Candidates");
        page.raw(&self.candidates_part(has_valid));
        page.end_section();

        page.section("circuit", "The chosen circuit");
        page.raw(&format!(
            "<p>{} gates, {} AND nodes once written as an And-Inverter Graph.</p>\n",
            circuit.num_gates(),
            self.and_nodes
        ));
        page.raw(&super::diagram(&circuit));
        page.raw("<h3>Program</h3>\n");
        if circuit.num_gates() <= MAX_PROGRAM_GATES {
            page.raw(&program_block(&self.program));
        } else {
            let head: Vec<&str> = self.program.lines().take(PROGRAM_PREVIEW_LINES).collect();
            page.raw(&program_block(&head.join("\n")));
            page.raw(&format!(
                "<p class=\"small\">The first {} of {} lines; write the whole circuit with <code>--emit</code> and <code>-o</code>.</p>\n",
                head.len(),
                self.program.lines().count()
            ));
        }
        page.end_section();

        page.section("confusion", "Confusion matrix");
        page.raw(&self.confusion_part(has_valid));
        page.end_section();

        page.section("training", "Gate-network training");
        page.raw(&self.training_part());
        page.end_section();
        Ok(page.finish())
    }

    fn summary(&self) -> String {
        let ones = |s: &SampleInfo| {
            self.outputs
                .iter()
                .zip(&s.ones)
                .zip(&s.unspecified)
                .map(|((n, o), u)| {
                    if *u > 0 {
                        format!("{n}: {o} ones, {u} unspecified")
                    } else {
                        format!("{n}: {o} ones")
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut kv = vec![
            ("inputs".to_string(), format!("{} ({})", self.inputs.len(), name_list(&self.inputs))),
            (
                "outputs".to_string(),
                format!("{} ({})", self.outputs.len(), name_list(&self.outputs)),
            ),
            (
                "training samples".to_string(),
                format!("{} rows from {}", self.train.rows, self.train.source),
            ),
            ("training outputs".to_string(), ones(&self.train)),
        ];
        match &self.valid {
            Some(v) => {
                kv.push(("validation samples".to_string(), format!("{} rows from {}", v.rows, v.source)));
                kv.push(("validation outputs".to_string(), ones(v)));
            }
            None => kv.push((
                "validation samples".to_string(),
                "none: candidates were chosen on the training samples".to_string(),
            )),
        }
        kv.push(("method".to_string(), format!("{} ({})", self.method, self.detail)));
        kv.push(("training accuracy".to_string(), pct(self.train_accuracy)));
        if let Some(v) = self.valid_accuracy {
            kv.push(("validation accuracy".to_string(), pct(v)));
        }
        kv.push((
            "AND nodes".to_string(),
            format!("{} (budget {})", self.and_nodes, self.max_and_nodes),
        ));
        kv.push((
            "run".to_string(),
            format!(
                "seed {}, {:.1} s of a {:.0} s budget, {} gate-network epochs",
                self.seed, self.seconds, self.timeout, self.epochs
            ),
        ));
        key_values(&kv)
    }

    fn candidates_part(&self, has_valid: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<p>Each learner path offers its best circuit within the AND-node budget; the one with the highest {} accuracy wins, fewer AND nodes breaking ties. {} paths offered a circuit.</p>",
            if has_valid { "validation" } else { "training" },
            self.candidates.len()
        );
        s.push_str(&candidate_chart(&self.candidates, self.max_and_nodes, has_valid));
        s.push_str("<table class=\"candidates\">\n<thead><tr><th class=\"l\">method</th><th class=\"l\">chosen inside the path</th><th>train</th><th>valid</th><th>AND nodes</th></tr></thead>\n<tbody>\n");
        for c in &self.candidates {
            let _ = writeln!(
                s,
                "<tr class=\"{}\" data-method=\"{}\"><td class=\"l\">{}{}</td><td class=\"l\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if c.chosen { "chosen" } else { "" },
                esc(&c.method),
                esc(&c.method),
                if c.chosen { " (kept)" } else { "" },
                esc(&c.detail),
                pct(c.train_accuracy),
                if has_valid { pct(c.valid_accuracy) } else { "&#8212;".into() },
                c.and_nodes
            );
        }
        s.push_str("</tbody>\n</table>\n");
        if self.candidates.is_empty() {
            s.push_str("<p class=\"note\">No path reported a candidate.</p>\n");
        }
        s
    }

    fn confusion_part(&self, has_valid: bool) -> String {
        let mut s = String::new();
        let on = if has_valid {
            "validation"
        } else {
            "training (no validation samples were given)"
        };
        let _ = writeln!(
            s,
            "<p>The chosen circuit's predictions against the {on} samples, per output; rows where an output is unspecified are not counted.</p>"
        );
        s.push_str("<div class=\"confusions\">\n");
        let mut all = Confusion {
            true_pos: 0,
            false_pos: 0,
            false_neg: 0,
            true_neg: 0,
        };
        for (name, m) in self.outputs.iter().zip(&self.confusion).take(MAX_CONFUSION_OUTPUTS) {
            s.push_str(&confusion_table(name, m));
        }
        for m in &self.confusion {
            all.add(m);
        }
        if self.confusion.len() > 1 {
            s.push_str(&confusion_table("all outputs", &all));
        }
        s.push_str("</div>\n");
        if self.confusion.len() > MAX_CONFUSION_OUTPUTS {
            let _ = writeln!(
                s,
                "<p class=\"small\">Matrices of the first {MAX_CONFUSION_OUTPUTS} of {} outputs are drawn; the last one adds up every output.</p>",
                self.confusion.len()
            );
        }
        s
    }

    fn training_part(&self) -> String {
        let mut s = String::new();
        let net = self.candidates.iter().find(|c| c.method == "gate-network");
        if self.network_loss.is_empty() {
            let _ = writeln!(
                s,
                "<p class=\"note\">The gate network did not train in this run ({} epochs): the other paths used the time budget, or the network path was off. There is no curve to show.</p>",
                self.epochs
            );
            return s;
        }
        let _ = writeln!(
            s,
            "<p>The differentiable gate network trained for {} epochs in minibatches and was fired after each. The loss is its relaxed training loss; the second curve is the best validation accuracy any path had reached after each epoch (the learner does not keep the network's own per-epoch accuracy). {}</p>",
            self.epochs,
            match net {
                Some(c) => format!(
                    "Its best fired circuit ({}) scored {} on training and {} on {}, with {} AND nodes.",
                    esc(&c.detail),
                    pct(c.train_accuracy),
                    pct(c.valid_accuracy),
                    if self.valid.is_some() { "validation" } else { "training again (no validation samples)" },
                    c.and_nodes
                ),
                None => "None of its fired circuits fitted the AND-node budget.".into(),
            }
        );
        s.push_str("<div class=\"grid2\">\n");
        s.push_str(&line_chart("Gate-network loss", "epoch", &self.network_loss, None, false));
        s.push_str(&line_chart(
            "Best validation accuracy so far",
            "epoch",
            &self.best_valid,
            Some((0.0, 1.0)),
            true,
        ));
        s.push_str("</div>\n");
        s
    }
}

/// A 2x2 confusion matrix, cells shaded by their share of the rows.
fn confusion_table(name: &str, m: &Confusion) -> String {
    let total = m.total().max(1) as f64;
    let cell = |n: u64, right: bool| {
        // Opacity by share, so a glance shows where the rows went.
        let a = 0.12 + 0.6 * n as f64 / total;
        let colour = if right { "30,123,69" } else { "180,35,24" };
        format!(
            "<td class=\"num cm {}\" data-count=\"{n}\" style=\"background:rgba({colour},{a:.2})\">{n}<br/><span class=\"small\">{:.1}%</span></td>",
            if right { "right" } else { "wrong" },
            100.0 * n as f64 / total
        )
    };
    format!(
        "<table class=\"confusion\" data-output=\"{}\">\n<caption>{} &#8212; {} right of {}</caption>\n<thead><tr><th></th><th>predicted 0</th><th>predicted 1</th></tr></thead>\n<tbody>\n<tr><th>expected 0</th>{}{}</tr>\n<tr><th>expected 1</th>{}{}</tr>\n</tbody>\n</table>\n",
        esc(name),
        esc(name),
        pct(m.accuracy()),
        m.total(),
        cell(m.true_neg, true),
        cell(m.false_pos, false),
        cell(m.false_neg, false),
        cell(m.true_pos, true)
    )
}

/// Each candidate's training and validation accuracy as bars, and its AND nodes against the
/// budget, as inline SVG.
pub fn candidate_chart(rows: &[CandidateRow], budget: usize, has_valid: bool) -> String {
    let (label_w, acc_w, gap, and_w) = (130.0, 300.0, 64.0, 170.0);
    let (row_h, top, bottom) = (34.0, 34.0, 30.0);
    let w = label_w + acc_w + gap + and_w + 44.0;
    let h = top + row_h * rows.len().max(1) as f64 + bottom;
    // Below 50% a boolean classifier is worse than a coin, so the axis starts there unless a
    // candidate scored lower; the ticks say where it starts.
    let lowest = rows
        .iter()
        .flat_map(|r| [r.train_accuracy, r.valid_accuracy])
        .fold(0.5f64, f64::min);
    let lo = (lowest * 10.0).floor() / 10.0;
    let ax = |v: f64| label_w + (v.clamp(lo, 1.0) - lo) / (1.0 - lo).max(1e-9) * acc_w;
    let max_and = rows.iter().map(|r| r.and_nodes).max().unwrap_or(0).max(budget).max(1) as f64;
    let x_and = label_w + acc_w + gap;
    let bx = |n: usize| n as f64 / max_and * and_w;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<div class=\"figure\"><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart candidates\" data-candidates=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
        rows.len()
    );
    let _ = writeln!(
        s,
        "<text x=\"{label_w}\" y=\"14\" font-weight=\"600\">Accuracy</text><rect class=\"train\" x=\"{}\" y=\"6\" width=\"10\" height=\"8\"/><text x=\"{}\" y=\"14\">train</text>{}<text x=\"{x_and}\" y=\"14\" font-weight=\"600\">AND nodes (budget {budget})</text>",
        label_w + 80.0,
        label_w + 94.0,
        if has_valid {
            format!(
                "<rect class=\"valid\" x=\"{}\" y=\"6\" width=\"10\" height=\"8\"/><text x=\"{}\" y=\"14\">valid</text>",
                label_w + 140.0,
                label_w + 154.0
            )
        } else {
            String::new()
        }
    );
    let base = top + row_h * rows.len().max(1) as f64;
    let mut t = lo;
    while t <= 1.0 + 1e-9 {
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{base}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0}%</text>",
            base + 14.0,
            t * 100.0,
            x = ax(t)
        );
        t += 0.1;
    }
    let _ = writeln!(
        s,
        "<line class=\"budget\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{base}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"end\">{budget}</text>",
        base + 14.0,
        x = x_and + bx(budget)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            s,
            "<g class=\"cand{}\" data-method=\"{}\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"{}>{}</text>",
            if r.chosen { " chosen" } else { "" },
            esc(&r.method),
            label_w - 8.0,
            y + row_h / 2.0 + 4.0,
            if r.chosen { " font-weight=\"700\"" } else { "" },
            esc(&r.method)
        );
        let mut bars = vec![("train", r.train_accuracy)];
        if has_valid {
            bars.push(("valid", r.valid_accuracy));
        }
        let bh = (row_h - 10.0) / bars.len() as f64;
        for (k, (class, v)) in bars.iter().enumerate() {
            let by = y + 4.0 + bh * k as f64;
            let _ = writeln!(
                s,
                "<rect class=\"{class}\" data-value=\"{v}\" x=\"{label_w}\" y=\"{by:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"val\">{}</text>",
                ax(*v) - label_w,
                bh - 1.0,
                ax(*v) + 3.0,
                by + bh - 2.5,
                pct(*v)
            );
        }
        let _ = writeln!(
            s,
            "<rect class=\"ands\" data-value=\"{}\" x=\"{x_and}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"val\">{}</text></g>",
            r.and_nodes,
            y + 8.0,
            bx(r.and_nodes),
            row_h - 16.0,
            x_and + bx(r.and_nodes) + 3.0,
            y + row_h / 2.0 + 4.0,
            r.and_nodes
        );
    }
    s.push_str("</svg></div>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_logic::circuit::{gate_from_truth_table, Signal};

    /// `gates` gates over `n` inputs, each the XOR of the previous signal and the next input
    /// round-robin, driving one output `y`.
    fn xor_chain(n: usize, gates: usize) -> Circuit {
        let mut c = Circuit::new((1..=n).map(|i| format!("x{i}")).collect());
        let mut s = Signal::Input(0);
        for g in 0..gates {
            s = c.push(gate_from_truth_table(0b0110, s, Signal::Input((g + 1) % n))).unwrap();
        }
        c.set_output("y", s).unwrap();
        c
    }

    fn report_of(c: &Circuit) -> SamplesReport {
        SamplesReport {
            kind: KIND.into(),
            title: "t".into(),
            inputs: c.inputs().to_vec(),
            outputs: vec!["y".into()],
            train: SampleInfo {
                source: "train.pla".into(),
                rows: 4,
                ones: vec![2],
                unspecified: vec![0],
            },
            valid: None,
            program: grammar::print(c),
            method: "decision-tree".into(),
            detail: "depth 3".into(),
            and_nodes: 900,
            max_and_nodes: 5000,
            train_accuracy: 0.75,
            valid_accuracy: None,
            candidates: vec![CandidateRow {
                method: "decision-tree".into(),
                detail: "depth 3".into(),
                train_accuracy: 0.75,
                valid_accuracy: 0.75,
                and_nodes: 900,
                chosen: true,
            }],
            confusion: vec![Confusion {
                true_pos: 1,
                false_pos: 0,
                false_neg: 1,
                true_neg: 2,
            }],
            network_loss: Vec::new(),
            best_valid: Vec::new(),
            epochs: 0,
            seed: 0,
            timeout: 1.0,
            seconds: 0.5,
        }
    }

    fn parse(html: &str) -> roxmltree::Document<'_> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        roxmltree::Document::parse_with_options(html, opts).expect("well-formed")
    }

    #[test]
    fn confusion_counts_only_specified_rows() {
        let c = xor_chain(2, 1);
        let mut set = SampleSet::new("s", vec!["x1".into(), "x2".into()], vec!["y".into()]);
        // XOR of the inputs against labels: right, right, wrong (0 for 1), unspecified, wrong (1 for 0).
        for (a, b, y) in [
            (false, false, Some(false)),
            (false, true, Some(true)),
            (true, false, Some(false)),
            (true, true, None),
            (true, true, Some(true)),
        ] {
            set.push_row(&[a, b], &[y]).unwrap();
        }
        let m = confusion(&c, &set)[0];
        assert_eq!(
            m,
            Confusion {
                true_pos: 1,
                false_pos: 1,
                false_neg: 1,
                true_neg: 1
            }
        );
        let acc = set.accuracy(&c.eval_columns(&set.input_words(), set.words())).fraction();
        assert_eq!(m.accuracy(), acc);
        assert_eq!(SampleInfo::of(&set).unspecified, vec![1]);
        assert_eq!(SampleInfo::of(&set).ones, vec![2]);
    }

    #[test]
    fn a_large_circuit_is_summarised_and_its_program_cut() {
        let c = xor_chain(12, 400);
        let report = report_of(&c);
        let lines = report.program.lines().count();
        assert!(lines > PROGRAM_PREVIEW_LINES);
        let html = report.to_html().unwrap();
        let doc = parse(&html);
        let svg = doc
            .descendants()
            .find(|n| n.has_tag_name("svg") && n.attribute("class") == Some("kiln-circuit"))
            .unwrap();
        assert_eq!(svg.attribute("data-view"), Some("summary"));
        assert_eq!(svg.attribute("data-gates"), Some("400"));
        let program = doc.descendants().find(|n| n.has_tag_name("pre")).unwrap().text().unwrap();
        assert_eq!(program.lines().count(), PROGRAM_PREVIEW_LINES);
        assert!(html.contains(&format!("The first {PROGRAM_PREVIEW_LINES} of {lines} lines")));
        // No validation file: the table's valid column is a dash, the chart has training bars only.
        assert!(!doc
            .descendants()
            .any(|n| n.has_tag_name("rect") && n.attribute("class") == Some("valid")));
        assert!(html.contains("no validation samples were given"));
        // Without epochs the training section says why there is no curve.
        assert!(html.contains("The gate network did not train in this run (0 epochs)"));
    }
}
