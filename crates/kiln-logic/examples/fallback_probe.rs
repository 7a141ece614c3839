//! Gate counts of the Shannon fallback on a table, before and after `optimise`:
//! `fallback_probe TABLE.csv [OUTPUTS]`.
use kiln_logic::optimise::{optimise, OptimiseParams};
use kiln_logic::{Basis, Table};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let outs: Option<Vec<String>> = a.get(2).map(|s| s.split(',').map(String::from).collect());
    let t = Table::from_csv_path(&a[1], outs.as_deref()).unwrap();
    let f = kiln_logic::search::fallback(&t, &Basis::all(), usize::MAX).unwrap();
    let p = OptimiseParams {
        windows: None,
        exact: false,
        restructure: false,
        ..Default::default()
    };
    let (o, _) = optimise(&f, &p);
    println!("fallback {} -> optimised {}", f.num_gates(), o.num_gates());
    println!("{}", kiln_logic::grammar::to_expression(&o, "; "));
}
