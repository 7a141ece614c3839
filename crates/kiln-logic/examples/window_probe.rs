//! Times the SAT stages of `optimise` on one program: `window_probe PROGRAM.json`.
use kiln_logic::window_sat::{exact_whole, resynthesize_windows, WindowParams};
use std::time::Duration;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&a[1]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names = |k: &str| -> Vec<String> { v[k].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect() };
    let c = kiln_logic::parse(v["expression"].as_str().unwrap(), &names("inputs"), &names("outputs")).unwrap();
    let (w, ws) = resynthesize_windows(
        &c,
        &WindowParams {
            timeout: Some(Duration::from_secs(20)),
            ..Default::default()
        },
    );
    println!("windows: {} -> {} {:?}", c.num_gates(), w.num_gates(), ws);
    let (e, es) = exact_whole(&w, Some(Duration::from_secs(30)), None);
    println!("exact: {} -> {} {:?}", w.num_gates(), e.num_gates(), es);
}
