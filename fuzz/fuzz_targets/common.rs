//! What the fuzz targets share.
use kiln_logic::aig::Aig;
use kiln_logic::cuts::var_column;
use kiln_logic::table::row_mask;

/// Every output's truth table over all input combinations (graphs of at most 10 inputs).
pub fn truth_tables(g: &Aig) -> Option<Vec<Vec<u64>>> {
    let n = g.num_inputs();
    if n > 10 || g.num_ands() > 20_000 {
        return None;
    }
    let mask = row_mask(1 << n);
    let cols: Vec<Vec<u64>> = (0..n).map(|i| var_column(i, mask.len())).collect();
    let mut out = g.simulate(&cols, mask.len()).expect("a graph that loaded simulates");
    for o in &mut out {
        o.iter_mut().zip(&mask).for_each(|(w, m)| *w &= m);
    }
    Some(out)
}
