//! What the fuzz targets share.
use kiln_logic::aig::Aig;

/// Every output's truth table over all input combinations (graphs of at most 10 inputs).
pub fn truth_tables(g: &Aig) -> Option<Vec<Vec<u64>>> {
    let n = g.num_inputs();
    if n > 10 || g.num_ands() > 20_000 {
        return None;
    }
    let rows = 1usize << n;
    let words = rows.div_ceil(64);
    let cols: Vec<Vec<u64>> = (0..n)
        .map(|i| {
            (0..words)
                .map(|w| {
                    (0..64)
                        .filter(|b| (w * 64 + b) < rows && ((w * 64 + b) >> i) & 1 == 1)
                        .fold(0u64, |acc, b| acc | 1 << b)
                })
                .collect()
        })
        .collect();
    let last = if rows.is_multiple_of(64) { u64::MAX } else { (1u64 << (rows % 64)) - 1 };
    let mut out = g.simulate(&cols, words).expect("a graph that loaded simulates");
    for o in &mut out {
        if let Some(w) = o.last_mut() {
            *w &= last;
        }
    }
    Some(out)
}
