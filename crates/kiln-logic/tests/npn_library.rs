//! The NPN canonisation and the generated table of minimum circuits per class.

use kiln_logic::npn::{automorphisms, canonise, optimum, representatives, support, NpnTransform, NUM_CLASSES};
use kiln_logic::npn_library::NPN_LIBRARY;

#[test]
fn there_are_222_classes_and_every_function_maps_to_its_representative() {
    assert_eq!(representatives().len(), NUM_CLASSES);
    let mut seen = std::collections::HashSet::new();
    for f in 0..=u16::MAX {
        let c = canonise(f);
        assert_eq!(c.transform.apply(f), c.rep, "f = {f:#06x}");
        assert_eq!(representatives()[usize::from(c.class)], c.rep);
        assert_eq!(canonise(c.rep).rep, c.rep);
        // The representative is the smallest member of its class.
        assert!(c.rep <= f);
        seen.insert(c.rep);
    }
    assert_eq!(seen.len(), 222);
}

#[test]
fn transform_inverse_round_trips() {
    let t = NpnTransform {
        perm: [2, 0, 3, 1],
        input_negations: 0b0101,
        output_negated: true,
    };
    for f in [0x1234u16, 0x6996, 0x8000, 0xCAFE] {
        assert_eq!(t.inverse().apply(t.apply(f)), f);
        assert_eq!(t.apply(t.inverse().apply(f)), f);
    }
    // x0 AND x1 and x0 NOR x1 are one class; AND2 and AND4 are not.
    assert_eq!(canonise(0x8888).rep, canonise(0x1111).rep);
    assert_ne!(canonise(0x8888).rep, canonise(0x0001).rep);
}

#[test]
fn library_has_a_verified_minimum_circuit_per_class() {
    assert_eq!(NPN_LIBRARY.len(), 222);
    let mut by_size = [0usize; 8];
    for (k, e) in NPN_LIBRARY.iter().enumerate() {
        assert_eq!(e.rep, representatives()[k]);
        assert_eq!(optimum(k as u8).map(|o| o.rep), Some(e.rep));
        assert!(e.optimal, "class {k} not proven minimal");
        assert_eq!(e.truth_table(), e.rep, "class {k} circuit is wrong");
        // Gates read only earlier signals and only inputs the function depends on.
        for (g, &(tt, a, b)) in e.gates.iter().enumerate() {
            assert!(usize::from(a) < 4 + g && usize::from(b) < 4 + g && a != b);
            assert!(![0, 3, 5, 10, 12, 15].contains(&tt), "class {k}: degenerate gate");
            for s in [a, b] {
                if s < 4 {
                    assert!(support(e.rep) >> s & 1 == 1, "class {k} reads inessential input {s}");
                }
            }
        }
        if !e.gates.is_empty() {
            assert_eq!(usize::from(e.output), 3 + e.gates.len());
            assert!(!e.output_negated);
        }
        by_size[e.gates.len()] += 1;
    }
    assert_eq!(by_size, [2, 2, 5, 20, 34, 75, 72, 12]);
    let total: usize = NPN_LIBRARY.iter().map(|e| e.gates.len()).sum();
    assert_eq!(total, 1099);
    // Per function (Knuth, TAOCP 7.1.2, Table 1 counts the 65536 four-input functions by cost).
    let mut funcs = [0usize; 8];
    for f in 0..=u16::MAX {
        funcs[NPN_LIBRARY[usize::from(canonise(f).class)].gates.len()] += 1;
    }
    println!("{funcs:?}");
    assert_eq!(funcs, [10, 60, 456, 2474, 10624, 24184, 25008, 2720]);
}

#[test]
fn automorphisms_compose_with_the_canonical_transform() {
    let u = NpnTransform {
        perm: [3, 1, 0, 2],
        input_negations: 0b1001,
        output_negated: false,
    };
    let t = NpnTransform {
        perm: [2, 0, 3, 1],
        input_negations: 0b0110,
        output_negated: true,
    };
    for f in [0x1234u16, 0x6996, 0x8000, 0xCAFE] {
        assert_eq!(t.then(&u).apply(f), u.apply(t.apply(f)));
    }
    let mut total = 0;
    for class in 0..NUM_CLASSES as u8 {
        let rep = representatives()[usize::from(class)];
        let autos = automorphisms(class);
        assert_eq!(autos[0], NpnTransform::IDENTITY);
        // Orbit-stabiliser: |class| * |stabiliser| = 768.
        let size = (0..=u16::MAX).filter(|&f| canonise(f).class == class).count();
        assert_eq!(size * autos.len(), 768, "class {class}");
        total += size;
        for s in autos {
            assert_eq!(s.apply(rep), rep);
        }
    }
    assert_eq!(total, 65536);
    for f in [0x1668u16, 0xE8E8, 0x0FF0] {
        let c = canonise(f);
        for s in automorphisms(c.class) {
            assert_eq!(c.transform.then(s).apply(f), c.rep);
        }
    }
}
