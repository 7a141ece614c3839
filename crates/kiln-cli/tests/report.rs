//! HTML reports: `kiln learn --report`, `kiln report RUN.json` and `kiln demo --report` write
//! well-formed, self-contained pages whose parts agree with the run; a browser renders them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{kiln, repo, text};

/// Where the tests leave their HTML and PNG files (kept as CI artefacts).
fn artifacts() -> PathBuf {
    let dir = repo().join("target/report-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The one reference to the outside a page may hold: the SVG namespace, which names and never fetches.
const SVG_NS: &str = "xmlns=\"http://www.w3.org/2000/svg\"";

/// Fails if `html` could make a browser fetch anything or run a script.
fn assert_self_contained(html: &str) {
    let stripped = html.replace(SVG_NS, "");
    let lower = stripped.to_ascii_lowercase();
    for bad in [
        "http://", "https://", "//cdn", "<link", "@import", "url(", "<script", "src=", "<iframe", "<object", "<embed", "<img",
    ] {
        assert!(!lower.contains(bad), "the page holds an outside reference or script: {bad:?}");
    }
    // Every href is an anchor within the page.
    for (i, _) in lower.match_indices("href=\"") {
        assert_eq!(&lower[i + 6..i + 7], "#", "href to outside the page at byte {i}");
    }
}

/// Parses a page as XML; the `<!DOCTYPE html>` that keeps browsers in standards mode is a DTD.
fn parse(html: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(html, opts).expect("the page is well-formed XML")
}

fn has_class(n: &roxmltree::Node, c: &str) -> bool {
    n.attribute("class").is_some_and(|v| v.split_whitespace().any(|x| x == c))
}

fn section<'a, 'i>(doc: &'a roxmltree::Document<'i>, id: &str) -> roxmltree::Node<'a, 'i> {
    doc.descendants()
        .find(|n| n.has_tag_name("section") && n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no section {id}"))
}

/// (from, to) of every wire the diagrams under `node` draw, with multiplicity.
fn drawn_wires(node: roxmltree::Node) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for p in node.descendants().filter(|n| n.has_tag_name("path") && has_class(n, "wire")) {
        let k = (
            p.attribute("data-from").unwrap().to_string(),
            p.attribute("data-to").unwrap().to_string(),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// (from, to) of every wire of the program in `kiln learn --json` output.
fn program_wires(doc: &serde_json::Value) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for g in doc["program"]["gates"].as_array().unwrap() {
        for a in g["args"].as_array().unwrap() {
            *m.entry((a.as_str().unwrap().to_string(), g["name"].as_str().unwrap().to_string()))
                .or_insert(0) += 1;
        }
    }
    for (name, driver) in doc["program"]["outputs"].as_object().unwrap() {
        *m.entry((driver.as_str().unwrap().to_string(), name.clone())).or_insert(0) += 1;
    }
    m
}

/// Runs `kiln learn … --json --report PATH`; returns the JSON and the page.
fn learn_report(args: &[&str], name: &str) -> (serde_json::Value, String, PathBuf, i32) {
    let path = artifacts().join(name);
    let _ = std::fs::remove_file(&path);
    let p = path.to_str().unwrap();
    let mut all = vec!["learn"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--report", p]);
    let out = kiln(&all);
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "kiln learn failed: {}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    (doc, html, path, code)
}

#[test]
fn learn_report_shows_every_part_and_draws_the_circuit_it_learned() {
    let (doc, html, _, code) = learn_report(
        &[
            "examples/tables/full_adder.csv",
            "--outputs",
            "S,Cout",
            "--seed",
            "0",
            "--timeout",
            "60",
        ],
        "full_adder.html",
    );
    assert_eq!(code, 0);
    assert_self_contained(&html);
    let parsed = parse(&html);
    for id in ["summary", "circuit", "verification", "training", "gates", "restarts"] {
        section(&parsed, id);
    }
    // The diagram is the circuit the run printed, wire for wire.
    let circuit = section(&parsed, "circuit");
    let svg = circuit
        .descendants()
        .find(|n| n.has_tag_name("svg"))
        .expect("an inline SVG diagram");
    assert_eq!(svg.attribute("data-gates"), Some(doc["gates"].to_string().as_str()));
    assert_eq!(drawn_wires(circuit), program_wires(&doc));
    // So is the program text.
    let program = circuit
        .descendants()
        .find(|n| n.has_tag_name("pre"))
        .unwrap()
        .text()
        .unwrap()
        .to_string();
    assert_eq!(program.trim_end(), doc["report"]["program"].as_str().unwrap().trim_end());
    assert!(program.lines().any(|l| l.starts_with("S = ")) && program.lines().any(|l| l.starts_with("Cout = ")));
    // Every row of an 8-row table is shown, and none fails.
    let v = section(&parsed, "verification");
    let rows: Vec<_> = v
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("data-row").is_some())
        .collect();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| has_class(r, "pass")));
    // Two curves, with as many points as the run kept.
    let training = section(&parsed, "training");
    let charts: Vec<_> = training
        .descendants()
        .filter(|n| n.has_tag_name("svg") && has_class(n, "chart"))
        .collect();
    assert_eq!(charts.len(), 2);
    let report = &doc["report"];
    assert_eq!(
        charts[0].attribute("data-points").unwrap(),
        report["loss"].as_array().unwrap().len().to_string()
    );
    assert_eq!(
        charts[1].attribute("data-points").unwrap(),
        report["accuracy"].as_array().unwrap().len().to_string()
    );
    assert!(charts.iter().all(|c| c.descendants().any(|n| n.has_tag_name("polyline"))));
    // Each live gate gets one set of 16 bars per snapshot, its fired bar marked.
    let gates = &report["gates"];
    let snapshots = gates["steps"].as_array().unwrap().len();
    assert!(snapshots >= 2 && gates["steps"][0] == 0);
    let live = gates["live"].as_array().unwrap().iter().filter(|b| b.as_bool().unwrap()).count();
    let gate_rows: Vec<_> = section(&parsed, "gates")
        .descendants()
        .filter(|n| n.has_tag_name("tr") && has_class(n, "live"))
        .collect();
    assert_eq!(gate_rows.len(), live);
    for r in &gate_rows {
        let bars: Vec<_> = r.descendants().filter(|n| n.has_tag_name("svg") && has_class(n, "bars")).collect();
        assert_eq!(bars.len(), snapshots);
        for b in bars {
            assert_eq!(b.descendants().filter(|n| n.has_tag_name("rect")).count(), 16);
            assert_eq!(b.descendants().filter(|n| n.has_tag_name("rect") && has_class(n, "f")).count(), 1);
        }
    }
    // Restarts and the pipeline's gate counts agree with the JSON.
    let restarts = section(&parsed, "restarts");
    assert_eq!(
        restarts
            .descendants()
            .filter(|n| n.has_tag_name("tr") && has_class(n, "chosen"))
            .count(),
        1
    );
    let stages = report["stages"].as_array().unwrap();
    assert_eq!(stages[0]["name"], "fired");
    assert_eq!(stages.last().unwrap()["gates"], doc["gates"]);
}

#[test]
fn failing_rows_are_highlighted_on_an_inexact_run() {
    // One unit cannot draw XOR: the best gets 3 of 4 rows, and the unit space has no repair.
    let (doc, html, _, code) = learn_report(&["examples/tables/xor.csv", "--space", "unit", "--seed", "0"], "xor_unit.html");
    assert_eq!(code, 1);
    assert_self_contained(&html);
    let parsed = parse(&html);
    let v = section(&parsed, "verification");
    let rows: Vec<_> = v
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("data-row").is_some())
        .collect();
    assert_eq!(rows.len(), 4);
    let failing: Vec<_> = rows.iter().filter(|r| has_class(r, "fail")).collect();
    let wrong = 4 - (doc["accuracy"].as_f64().unwrap() * 4.0).round() as usize;
    assert!(wrong >= 1);
    assert_eq!(failing.len(), wrong);
    assert_eq!(doc["report"]["check"]["failing"].as_u64().unwrap() as usize, wrong);
    for r in &failing {
        let cells: Vec<_> = r.children().filter(|n| n.has_tag_name("td")).collect();
        // row, X1, X2, expected, got, mark: the got cell is the marked one and differs.
        assert!(has_class(&cells[4], "bad"));
        assert_ne!(cells[3].text(), cells[4].text());
    }
    for r in rows.iter().filter(|r| has_class(r, "pass")) {
        assert!(!r.descendants().any(|n| has_class(&n, "bad")));
    }
    assert!(html.contains("fires to"), "the fired units are listed");
    // Units have no gate distributions, and the page says so where they would be.
    let gates = section(&parsed, "gates");
    let note = gates
        .descendants()
        .find(|n| n.has_tag_name("p") && has_class(n, "missing"))
        .expect("a note where the gate table would be");
    assert!(note.text().unwrap().contains("unit space learns threshold units"));
}

#[test]
fn a_large_table_shows_its_failing_rows_and_a_sample_of_the_rest() {
    // Parity-4 after one step, with no repair or resynthesis: rows are likely wrong.
    let (doc, html, _, code) = learn_report(
        &[
            "examples/tables/parity4.csv",
            "--steps",
            "1",
            "--restarts",
            "1",
            "--no-repair",
            "--no-optimise",
            "--no-shrink",
        ],
        "parity4_one_step.html",
    );
    let parsed = parse(&html);
    let failing = doc["report"]["check"]["failing"].as_u64().unwrap() as usize;
    let rows: Vec<_> = section(&parsed, "verification")
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("data-row").is_some())
        .collect();
    assert_eq!(rows.iter().filter(|r| has_class(r, "fail")).count(), failing);
    assert_eq!(code, if failing == 0 { 0 } else { 1 });
    // A 16-row table is shown whole.
    assert_eq!(rows.len(), 16);
}

#[test]
fn kiln_report_renders_the_json_of_a_run_as_the_same_page() {
    let dir = artifacts();
    let (doc, html, _, _) = learn_report(&["examples/tables/majority3.csv", "--seed", "1"], "majority3.html");
    let run = dir.join("majority3.run.json");
    std::fs::write(&run, doc.to_string()).unwrap();
    let out_path = dir.join("nested/majority3.from-json.html");
    let _ = std::fs::remove_dir_all(dir.join("nested"));
    let out = kiln(&["report", run.to_str().unwrap(), "-o", out_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), html);
    // Without -o the page goes next to the JSON.
    let out = kiln(&["report", run.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(dir.join("majority3.run.html").exists());
    // A JSON without report data says what to give instead.
    let bare = dir.join("bare.json");
    std::fs::write(&bare, "{\"gates\":1}").unwrap();
    let out = kiln(&["report", bare.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("kiln learn TABLE --json"));
}

/// A PLA of `rows` samples of the 12-input function y = (x1 AND x2) OR (x3 XOR x6), drawn with
/// a seeded generator, every `flip`-th label flipped (0: none) so a confusion matrix has errors
/// to show; returns the text and how many rows have y = 1.
fn samples_pla(rows: usize, seed: u64, flip: usize) -> (String, usize) {
    let names: Vec<String> = (1..=12).map(|i| format!("x{i}")).collect();
    let mut s = format!(".i 12\n.o 1\n.ilb {}\n.ob y\n.p {rows}\n.type fr\n", names.join(" "));
    let mut state = seed;
    let mut ones = 0;
    for r in 0..rows {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let bits = (state >> 30) as u32 & 0xfff;
        let bit = |i: u32| bits >> i & 1 == 1;
        let mut y = (bit(0) && bit(1)) || (bit(2) ^ bit(5));
        if flip > 0 && r % flip == flip - 1 {
            y = !y;
        }
        ones += usize::from(y);
        let cells: String = (0..12).map(|i| if bit(i) { '1' } else { '0' }).collect();
        s.push_str(&format!("{cells} {}\n", u8::from(y)));
    }
    s.push_str(".e\n");
    (s, ones)
}

/// Writes a 400-row training and a 200-row validation PLA (5% of its labels flipped) under
/// `dir`; returns their paths and the validation file's count of ones.
fn samples_files(dir: &Path) -> (PathBuf, PathBuf, usize) {
    std::fs::create_dir_all(dir).unwrap();
    let (train, _) = samples_pla(400, 7, 0);
    let (valid, ones) = samples_pla(200, 99, 20);
    let (t, v) = (dir.join("train.pla"), dir.join("valid.pla"));
    std::fs::write(&t, train).unwrap();
    std::fs::write(&v, valid).unwrap();
    (t, v, ones)
}

/// Runs samples-mode `kiln learn` on the files of [`samples_files`] with `--json --report`.
fn samples_report(sub: &str) -> (serde_json::Value, String, PathBuf, usize) {
    let dir = artifacts().join(sub);
    let _ = std::fs::remove_dir_all(&dir);
    let (train, valid, ones) = samples_files(&dir);
    let (doc, html, path, code) = learn_report(
        &[
            train.to_str().unwrap(),
            "--valid",
            valid.to_str().unwrap(),
            "--timeout",
            "6",
            "--seed",
            "0",
        ],
        &format!("{sub}/report.html"),
    );
    assert_eq!(code, 0);
    (doc, html, path, ones)
}

fn cell_texts(row: roxmltree::Node) -> Vec<String> {
    row.children()
        .filter(|n| n.is_element())
        .map(|n| n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect::<String>())
        .collect()
}

#[test]
fn samples_report_shows_candidates_circuit_confusion_and_training() {
    let (doc, html, _, ones) = samples_report("samples");
    assert_self_contained(&html);
    let parsed = parse(&html);
    for id in ["summary", "candidates", "circuit", "confusion", "training"] {
        section(&parsed, id);
    }
    let report = &doc["report"];
    assert_eq!(report["kind"], "samples");

    // The summary names the sample files' shapes and the kept circuit's scores.
    let summary: BTreeMap<String, String> = section(&parsed, "summary")
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .map(|r| {
            let c = cell_texts(r);
            (c[0].clone(), c[1].clone())
        })
        .collect();
    let names: Vec<String> = (1..=12).map(|i| format!("x{i}")).collect();
    assert_eq!(summary["inputs"], format!("12 ({})", names.join(", ")));
    assert!(summary["training samples"].starts_with("400 rows from "));
    assert!(summary["validation samples"].starts_with("200 rows from "));
    assert_eq!(summary["validation outputs"], format!("y: {ones} ones"));
    let pct = |v: &serde_json::Value| format!("{:.2}%", 100.0 * v.as_f64().unwrap());
    assert_eq!(summary["training accuracy"], pct(&doc["train_accuracy"]));
    assert_eq!(summary["validation accuracy"], pct(&doc["valid_accuracy"]));
    assert_eq!(
        summary["method"],
        format!("{} ({})", doc["method"].as_str().unwrap(), doc["detail"].as_str().unwrap())
    );

    // One table row and one group of bars per candidate, agreeing with the JSON; the winner marked.
    let cands = doc["candidates"].as_array().unwrap();
    assert!(cands.len() >= 2, "several paths compete: {cands:?}");
    let part = section(&parsed, "candidates");
    let rows: Vec<_> = part
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("data-method").is_some())
        .collect();
    assert_eq!(rows.len(), cands.len());
    let chosen: Vec<_> = rows.iter().filter(|r| has_class(r, "chosen")).collect();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].attribute("data-method"), doc["method"].as_str());
    let chart = part
        .descendants()
        .find(|n| n.has_tag_name("svg") && has_class(n, "candidates"))
        .expect("a bar chart of the candidates");
    assert_eq!(chart.attribute("data-candidates"), Some(cands.len().to_string().as_str()));
    for (c, row) in cands.iter().zip(&rows) {
        let m = c["method"].as_str().unwrap();
        assert_eq!(row.attribute("data-method"), Some(m));
        let cells = cell_texts(*row);
        assert_eq!(cells[2], pct(&c["train_accuracy"]));
        assert_eq!(cells[3], pct(&c["valid_accuracy"]));
        assert_eq!(cells[4], c["and_nodes"].to_string());
        let group = chart
            .descendants()
            .find(|n| n.has_tag_name("g") && n.attribute("data-method") == Some(m))
            .unwrap_or_else(|| panic!("no bars for {m}"));
        let value = |class: &str| -> f64 {
            group
                .descendants()
                .find(|n| n.has_tag_name("rect") && has_class(n, class))
                .unwrap_or_else(|| panic!("no {class} bar for {m}"))
                .attribute("data-value")
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(value("train"), c["train_accuracy"].as_f64().unwrap());
        assert_eq!(value("valid"), c["valid_accuracy"].as_f64().unwrap());
        assert_eq!(value("ands"), c["and_nodes"].as_f64().unwrap());
    }

    // The diagram is the kept circuit, wire for wire when drawn gate by gate.
    let circuit = section(&parsed, "circuit");
    let svg = circuit
        .descendants()
        .find(|n| n.has_tag_name("svg") && has_class(n, "kiln-circuit"))
        .expect("an inline SVG diagram");
    assert_eq!(svg.attribute("data-gates"), Some(doc["gates"].to_string().as_str()));
    if svg.attribute("data-view") == Some("detailed") {
        assert_eq!(drawn_wires(circuit), program_wires(&doc));
    }

    // The confusion matrix adds up to the validation file: its ones are the expected-1 row, and
    // the diagonal is the validation accuracy the learner reported.
    let tables: Vec<_> = section(&parsed, "confusion")
        .descendants()
        .filter(|n| n.has_tag_name("table") && has_class(n, "confusion"))
        .collect();
    assert_eq!(tables.len(), 1, "one output, one matrix");
    assert_eq!(tables[0].attribute("data-output"), Some("y"));
    let counts: Vec<u64> = tables[0]
        .descendants()
        .filter(|n| n.has_tag_name("td") && has_class(n, "cm"))
        .map(|n| n.attribute("data-count").unwrap().parse().unwrap())
        .collect();
    let [tn, fp, fn_, tp] = counts[..] else {
        panic!("a 2x2 matrix: {counts:?}")
    };
    assert_eq!(tn + fp + fn_ + tp, 200);
    assert_eq!((fn_ + tp) as usize, ones);
    let acc = (tp + tn) as f64 / 200.0;
    assert!((acc - doc["valid_accuracy"].as_f64().unwrap()).abs() < 1e-12);
    assert!(fp + fn_ > 0, "the flipped labels are errors no circuit of the function avoids");

    // The gate network's loss, one point per epoch, and the best validation accuracy so far.
    let epochs = report["epochs"].as_u64().unwrap() as usize;
    assert!(epochs > 0, "the gate network trained");
    assert_eq!(report["network_loss"].as_array().unwrap().len(), epochs);
    let charts: Vec<_> = section(&parsed, "training")
        .descendants()
        .filter(|n| n.has_tag_name("svg") && has_class(n, "chart"))
        .collect();
    assert_eq!(charts.len(), 2);
    assert_eq!(charts[0].attribute("data-points"), Some(epochs.to_string().as_str()));
    assert_eq!(charts[1].attribute("data-points"), Some(epochs.to_string().as_str()));
    let best: Vec<f64> = report["best_valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert!(best.windows(2).all(|w| w[0] <= w[1]), "a best-so-far never falls");
    assert!(best.last().unwrap() <= &doc["valid_accuracy"].as_f64().unwrap());
}

#[test]
fn kiln_report_renders_a_samples_run_json_as_the_same_page() {
    let (doc, html, path, _) = samples_report("samples-json");
    let run = path.with_file_name("run.json");
    std::fs::write(&run, doc.to_string()).unwrap();
    let out_path = path.with_file_name("from-json.html");
    let out = kiln(&["report", run.to_str().unwrap(), "-o", out_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), html);
    assert_eq!(doc["report_path"], path.to_str().unwrap());
}

#[test]
fn a_run_without_gate_distributions_says_why() {
    // 256 gates wide and two layers deep: 257 gates, past what the learner snapshots.
    let (doc, html, _, _) = learn_report(
        &[
            "examples/tables/xor.csv",
            "--width",
            "256",
            "--depth",
            "2",
            "--restarts",
            "1",
            "--steps",
            "30",
            "--seed",
            "0",
        ],
        "xor_wide.html",
    );
    assert!(doc["report"]["gates"].is_null());
    assert_eq!(doc["report"]["network_gates"], 257);
    let parsed = parse(&html);
    let gates = section(&parsed, "gates");
    assert!(!gates.descendants().any(|n| n.has_tag_name("table")));
    let note = gates
        .descendants()
        .find(|n| n.has_tag_name("p") && has_class(n, "missing"))
        .expect("a note where the gate table would be");
    let words = note.text().unwrap();
    assert!(words.contains("at most 200 gates"), "{words}");
    assert!(words.contains("network had 257 gates"), "{words}");
}

fn demo_report(sub: &str) -> (PathBuf, String) {
    let dir = artifacts().join(sub);
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("report.html");
    let out = kiln(&["demo", "--out", dir.to_str().unwrap(), "--report", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("report: "));
    let html = std::fs::read_to_string(&path).unwrap();
    (path, html)
}

#[test]
fn demo_report_covers_the_lecture() {
    let (_, html) = demo_report("demo");
    assert_self_contained(&html);
    let doc = parse(&html);
    for id in ["units", "xor-unit", "composition", "verification", "comparison"] {
        section(&doc, id);
    }
    // One unit fails on XOR, and the lecture's first composition is wrong on two rows: marked.
    assert!(section(&doc, "xor-unit")
        .descendants()
        .any(|n| n.has_tag_name("tr") && has_class(&n, "fail")));
    let wrong: Vec<_> = section(&doc, "verification")
        .descendants()
        .filter(|n| n.has_tag_name("tr") && has_class(n, "fail"))
        .collect();
    assert_eq!(wrong.len(), 2);
    // Every diagram's wires match the program printed just before it.
    let comp = section(&doc, "composition");
    assert!(comp.descendants().any(|n| n.has_tag_name("svg") && has_class(&n, "kiln-circuit")));
    assert!(comp.descendants().any(|n| n.has_tag_name("svg") && has_class(&n, "chart")));
    assert!(comp.descendants().any(|n| n.has_tag_name("svg") && has_class(&n, "bars")));
    // The comparison table has one row per table compared.
    let cmp = section(&doc, "comparison");
    assert_eq!(cmp.descendants().filter(|n| n.has_tag_name("tr")).count(), 1 + 6);
}

/// The chromium binary, if one is installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Renders `page` to `png` in headless Chromium; returns the console lines it logged.
fn screenshot(chrome: &Path, page: &Path, png: &Path, height: u32) -> Vec<String> {
    let _ = std::fs::remove_file(png);
    let profile = artifacts().join(format!("chromium-profile-{}", std::process::id()));
    let out = Command::new(chrome)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            &format!("--window-size=1280,{height}"),
            "--enable-logging=stderr",
            "--v=1",
            &format!("file://{}", page.canonicalize().unwrap().display()),
        ])
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        text(&out.stderr).lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    // This Chromium logs page console messages (script errors as "Uncaught …", CSP violations,
    // failed loads) as `INFO:CONSOLE` lines with their source.
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
        .map(String::from)
        .collect()
}

/// Width, height, number of distinct colours and fraction of pixels that are not near-white.
fn measure(png_path: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let mut colours = std::collections::HashSet::new();
    let mut ink = 0usize;
    let pixels = (info.width * info.height) as usize;
    for px in buf[..info.buffer_size()].chunks(channels) {
        let rgb = if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
        if colours.len() < 4096 {
            colours.insert(rgb);
        }
        if rgb.iter().any(|&c| c < 235) {
            ink += 1;
        }
    }
    (info.width, info.height, colours.len(), ink as f64 / pixels as f64)
}

#[test]
fn a_browser_renders_the_demo_report_and_a_50_gate_diagram() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var("KILN_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "KILN_REQUIRE_CHROMIUM=1 but no chromium in PATH (scripts/test installs Debian's chromium)"
        );
        eprintln!("skipping: no chromium in PATH");
        return;
    };
    let dir = artifacts();
    let (page, _) = demo_report("demo-browser");
    let png = dir.join("demo-report.png");
    let console = screenshot(&chrome, &page, &png, 2000);
    assert!(console.is_empty(), "the page logged to the console:\n{}", console.join("\n"));
    let (w, h, colours, ink) = measure(&png);
    assert_eq!((w, h), (1280, 2000));
    assert!(
        colours > 16 && ink > 0.02,
        "the screenshot looks blank: {colours} colours, {ink:.4} ink"
    );

    // A 50-gate circuit: five levels of ten gates over eight inputs, each gate reading two
    // signals of the level before, ten outputs.
    let mut prog = String::new();
    let ops = ["AND", "OR", "XOR", "NAND", "NOR", "XNOR"];
    for g in 0..50usize {
        let (level, k) = (g / 10, g % 10);
        let (a, b) = if level == 0 {
            (format!("X{}", k % 8 + 1), format!("X{}", (k + 3) % 8 + 1))
        } else {
            let base = (level - 1) * 10;
            (format!("Z{}", base + k + 1), format!("Z{}", base + (k + 1 + level) % 10 + 1))
        };
        prog.push_str(&format!("Z{} = {a} {} {b}\n", g + 1, ops[(g + level) % ops.len()]));
    }
    for k in 0..10 {
        prog.push_str(&format!("Y{} = Z{}\n", k + 1, 41 + k));
    }
    let prog_path = dir.join("circuit50.kiln");
    std::fs::write(&prog_path, &prog).unwrap();
    let table = dir.join("circuit50_names.csv");
    let header: Vec<String> = (1..=8).map(|i| format!("X{i}")).chain((1..=10).map(|k| format!("Y{k}"))).collect();
    std::fs::write(&table, format!("{}\n{}\n", header.join(","), vec!["0"; 18].join(","))).unwrap();
    let svg_path = dir.join("circuit50.svg");
    let outputs: Vec<String> = (1..=10).map(|k| format!("Y{k}")).collect();
    let outputs = outputs.join(",");
    let out = kiln(&[
        "show",
        prog_path.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
        "--outputs",
        &outputs,
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let parsed = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(parsed.root_element().attribute("data-gates"), Some("50"));
    assert_eq!(parsed.root_element().attribute("data-view"), Some("detailed"));
    assert_self_contained(&svg);
    let png = dir.join("circuit50.png");
    let console = screenshot(&chrome, &svg_path, &png, 2000);
    assert!(console.is_empty(), "the SVG logged to the console:\n{}", console.join("\n"));
    let (_, _, colours, ink) = measure(&png);
    assert!(
        colours > 4 && ink > 0.005,
        "the screenshot looks blank: {colours} colours, {ink:.4} ink"
    );
}

/// Prints `page` to `pdf` with headless Chromium's print path (the print stylesheet applies).
fn print_to_pdf(chrome: &Path, page: &Path, pdf: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(pdf);
    let profile = artifacts().join(format!("chromium-pdf-profile-{}", std::process::id()));
    let out = Command::new(chrome)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-pdf-header-footer",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--print-to-pdf={}", pdf.display()),
            &format!("file://{}", page.canonicalize().unwrap().display()),
        ])
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        pdf.exists(),
        "chromium wrote no PDF: {}",
        text(&out.stderr).lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    std::fs::read(pdf).unwrap()
}

/// Page objects of a PDF: `/Type /Page` dictionaries, not the `/Type /Pages` tree nodes.
fn pdf_pages(pdf: &[u8]) -> usize {
    let s = String::from_utf8_lossy(pdf);
    let mut n = 0;
    for (i, _) in s.match_indices("/Type") {
        let rest = s[i + 5..].trim_start();
        if let Some(after) = rest.strip_prefix("/Page") {
            if !after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                n += 1;
            }
        }
    }
    n
}

/// Checks a printed report is a PDF of `pages` pages holding drawn content, not blank sheets.
fn assert_printed(pdf: &[u8], pages: std::ops::RangeInclusive<usize>, what: &str) {
    assert!(pdf.starts_with(b"%PDF-"), "{what}: not a PDF");
    let tail = String::from_utf8_lossy(&pdf[pdf.len().saturating_sub(64)..]).to_string();
    assert!(tail.trim_end().ends_with("%%EOF"), "{what}: the PDF is cut short");
    let n = pdf_pages(pdf);
    assert!(pages.contains(&n), "{what}: {n} pages, expected {pages:?}");
    // A page of text and vector drawings with its fonts runs to kilobytes; blank pages to
    // a few hundred bytes each.
    assert!(pdf.len() > 8_000 * n, "{what}: {} bytes for {n} pages looks blank", pdf.len());
    let s = String::from_utf8_lossy(pdf);
    assert!(s.contains("/Font"), "{what}: no fonts, so no text was printed");
}

#[test]
fn reports_print_to_pdf() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var("KILN_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "KILN_REQUIRE_CHROMIUM=1 but no chromium in PATH (scripts/test installs Debian's chromium)"
        );
        eprintln!("skipping: no chromium in PATH");
        return;
    };
    let dir = artifacts();
    let (page, _) = demo_report("demo-pdf");
    let pdf = print_to_pdf(&chrome, &page, &dir.join("demo-report.pdf"));
    assert_printed(&pdf, 3..=40, "demo report");

    let (_, _, page, _) = samples_report("samples-pdf");
    let pdf = print_to_pdf(&chrome, &page, &dir.join("samples-report.pdf"));
    assert_printed(&pdf, 1..=12, "samples report");
}
