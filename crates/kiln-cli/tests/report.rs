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

#[test]
fn samples_mode_refuses_report_clearly() {
    let dir = artifacts();
    let pla = dir.join("tiny.pla");
    std::fs::write(&pla, ".i 2\n.o 1\n.p 2\n01 1\n10 1\n.e\n").unwrap();
    let out = kiln(&["learn", pla.to_str().unwrap(), "--report", dir.join("tiny.html").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--report"));
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
