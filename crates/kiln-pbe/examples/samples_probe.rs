//! Runs the sample learner on one train/valid pair and prints each path's best candidate:
//! `cargo run --release -p kiln-pbe --example samples_probe -- TRAIN VALID [SECONDS] [tree|net|both]`.

use std::time::Duration;

use kiln_logic::SampleSet;
use kiln_pbe::{learn_samples, SampleLearnOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let train = SampleSet::from_path(&args[1], None)?;
    let valid = SampleSet::from_path(&args[2], None)?;
    let secs: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let which = args.get(4).map_or("both", String::as_str);
    let opts = SampleLearnOptions {
        timeout: Duration::from_secs(secs),
        tree: which != "net",
        network: which != "tree",
        net: std::env::var("NET").ok().map(|v| {
            // NET=width,depth,group,lr,residual,batch
            let f: Vec<f64> = v.split(',').map(|x| x.parse().unwrap()).collect();
            kiln_pbe::gate_network::NetParams {
                width: f[0] as usize,
                depth: f[1] as usize,
                group: f[2] as usize,
                lr: f[3],
                residual: f[4],
                batch: f[5] as usize,
                ..Default::default()
            }
        }),
        ..Default::default()
    };
    let r = learn_samples(&train, Some(&valid), &opts, |p| {
        if p.step % 10 == 0 {
            eprintln!(
                "{:?} step {} loss {:.4} best {:.4} {:.1}s",
                p.method,
                p.step,
                p.loss,
                p.best_valid,
                p.elapsed.as_secs_f64()
            );
        }
    })?;
    for c in &r.per_method {
        println!(
            "{:14} {:40} train {:.4} valid {:.4} ands {}",
            c.method.name(),
            c.detail,
            c.train_accuracy,
            c.valid_accuracy,
            c.and_nodes
        );
    }
    println!(
        "best {} valid {:.4} epochs {} in {:.1}s",
        r.best.method.name(),
        r.best.valid_accuracy,
        r.epochs,
        r.elapsed.as_secs_f64()
    );
    Ok(())
}
