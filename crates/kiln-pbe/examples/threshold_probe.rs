//! Fits threshold units (with parity search) to one train/valid pair and prints the validation
//! accuracy of each parity set and weight width:
//! `cargo run --release -p kiln-pbe --example threshold_probe -- TRAIN VALID`.

use std::time::{Duration, Instant};

use kiln_logic::SampleSet;
use kiln_pbe::threshold::{fire_unit, fit_unit, parity_candidates, signed_inputs, ThresholdParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let train = SampleSet::from_path(&args[1], None)?;
    let valid = SampleSet::from_path(&args[2], None)?;
    let mut params = ThresholdParams::default();
    if let Ok(s) = std::env::var("STEPS") {
        params.steps = s.parse()?;
    }
    if let Ok(s) = std::env::var("LR") {
        params.lr = s.parse()?;
    }
    let t0 = Instant::now();
    let sets = parity_candidates(&train, 0, params.max_parity, Instant::now() + Duration::from_secs(20));
    println!("scan {:.2}s: {:?}", t0.elapsed().as_secs_f64(), sets);
    let x = signed_inputs(&train)?;
    for (p, _) in &sets {
        let t1 = Instant::now();
        let (w, b) = fit_unit(&train, &x, 0, p, &params, Instant::now() + Duration::from_secs(60))?;
        let fit = t1.elapsed().as_secs_f64();
        let mut line = format!("parity {p:?} b {b:.2} fit {fit:.2}s:");
        for bits in 1..=params.max_bits {
            if let Some(u) = fire_unit(&train, 0, &w, p, bits) {
                let pred = u.predict(&valid);
                let acc = valid.accuracy(&[pred]).fraction();
                line += &format!(" {bits}:{:.4}/{}", acc, u.terms.len());
            }
        }
        println!("{line}");
    }
    Ok(())
}
