//! An adversarial review of kiln-pbe's library API (2026-12-02): inputs that hung past the
//! timeout or panicked. Each is now an error naming the problem.

use std::time::{Duration, Instant};

use kiln_logic::table::{Row, Table};
use kiln_logic::{SampleSet, SplitMix64};
use kiln_pbe::gate_network::{GateNetwork, NetParams, MAX_NETWORK_GATES};
use kiln_pbe::generalise::{learn_samples, SampleLearnOptions};
use kiln_pbe::{learn, LearnOptions, Space};

fn samples(inputs: usize, rows: usize) -> SampleSet {
    let names = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    let mut s = SampleSet::new("<test>", names("x", inputs), names("y", 1));
    let mut rng = SplitMix64::new(3);
    for _ in 0..rows {
        let xs: Vec<bool> = (0..inputs).map(|_| rng.next_u64() & 1 == 1).collect();
        let y = xs[0] ^ xs[inputs - 1];
        s.push_row(&xs, &[Some(y)]).unwrap();
    }
    s
}

/// The circuit space wired its first layer from the inputs until it had enough; with none it
/// looped forever, whatever the timeout.
#[test]
fn learning_a_table_without_inputs_in_the_circuit_space_is_an_error() {
    let t = Table::from_rows(
        "z",
        vec![],
        vec!["y".into()],
        vec![Row {
            inputs: 0,
            outputs: 1,
            line: None,
        }],
    );
    let opts = LearnOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    assert_eq!(opts.space, Space::Circuit);
    let e = learn(&t, &opts, |_| {}).unwrap_err().to_string();
    assert!(e.contains("the circuit space needs at least one input column"), "{e}");
}

/// `learn_samples` with a user's network far too large to train began building it (4 billion
/// gates) and overran its 5 s budget; sizes whose product overflows panicked.
#[test]
fn gate_networks_too_large_to_train_are_refused_before_anything_is_built() {
    let train = samples(4, 50);
    let t0 = Instant::now();
    for net in [
        NetParams {
            width: 1 << 20,
            depth: 1 << 12,
            ..Default::default()
        },
        NetParams {
            width: usize::MAX,
            ..Default::default()
        },
        NetParams {
            group: usize::MAX,
            ..Default::default()
        },
        NetParams {
            depth: usize::MAX,
            ..Default::default()
        },
    ] {
        let opts = SampleLearnOptions {
            net: Some(net),
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        let e = learn_samples(&train, None, &opts, |_| {}).unwrap_err().to_string();
        assert!(e.contains(&format!("more than {MAX_NETWORK_GATES} gates")), "{net:?}: {e}");
    }
    let mut rng = kiln_core::Rng::new(1);
    let e = GateNetwork::new(usize::MAX, 1, NetParams::default(), &mut rng)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("reads at most 16777216 inputs"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(20), "refusals took {:?}", t0.elapsed());
}

/// An empty validation set panicked on an index in the threshold learner.
#[test]
fn an_empty_validation_set_is_an_error() {
    let train = samples(3, 50);
    let valid = samples(3, 0);
    let opts = SampleLearnOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let e = learn_samples(&train, Some(&valid), &opts, |_| {}).unwrap_err().to_string();
    assert_eq!(e, "learn: <test>: no validation samples");
}
