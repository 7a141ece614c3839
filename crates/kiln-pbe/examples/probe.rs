use kiln_pbe::*;
use std::time::Instant;
fn main() {
    let opts = SearchOptions {
        timeout: Some(std::time::Duration::from_secs(60)),
        ..Default::default()
    };
    for (name, t) in [
        ("xor", library::xor()),
        ("par3", library::parity(3)),
        ("par4", library::parity(4)),
        ("maj3", library::majority(3)),
        ("mux2", library::mux2()),
        ("fa", library::full_adder()),
        ("cmp2", library::comparator2()),
        ("add2", library::adder2()),
        ("par10", library::parity(10)),
    ] {
        let r = search(&t, &opts).unwrap();
        println!(
            "{name}: gates={} opt={} nodes={} {:.3}s\n{}",
            r.gates,
            r.optimal,
            r.nodes,
            r.seconds,
            grammar::print_with(&r.circuit, "; ")
        );
    }
    let basis = Basis::parse("AND,OR,NAND").unwrap();
    let r = search(&library::xor(), &SearchOptions { basis, ..opts.clone() }).unwrap();
    println!("xor/aon: {} {}", r.gates, grammar::print_with(&r.circuit, "; "));
    let t0 = Instant::now();
    let mut hist = [0; 10];
    let mut maxn = 0;
    for tt in 0..=255u8 {
        let r = search(&library::three_input(tt), &opts).unwrap();
        assert!(r.optimal);
        hist[r.gates] += 1;
        maxn = maxn.max(r.nodes);
    }
    println!("3-input: {:?} max nodes {} {:.3}s", hist, maxn, t0.elapsed().as_secs_f64());
}
