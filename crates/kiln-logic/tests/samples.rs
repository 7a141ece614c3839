use kiln_logic::pla::{read_pla, write_pla};
use kiln_logic::{Circuit, SampleSet, Signal, SplitMix64, Table};
use proptest::prelude::*;

fn pla(text: &str) -> Result<SampleSet, String> {
    read_pla("t.pla", text.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn reads_the_contest_format() {
    let s = pla(".i 3\n.o 1\n.p 3\n.type fr\n001 1\n110 0\n111 -\n.e\n").unwrap();
    assert_eq!((s.len(), s.num_inputs(), s.num_outputs()), (3, 3, 1));
    assert_eq!(s.input_names(), ["x0", "x1", "x2"]);
    assert_eq!(s.output_names(), ["y0"]);
    assert_eq!((s.input(0, 0), s.input(0, 2), s.input(1, 0)), (false, true, true));
    assert_eq!((s.output(0, 0), s.output(1, 0), s.output(2, 0)), (Some(true), Some(false), None));
}

#[test]
fn names_dashes_and_line_endings() {
    let s = pla("# c\r\n.i 2\r.o 2\r\n.ilb a b\n.ob s t\n-1 1~\n.end").unwrap();
    assert_eq!(s.input_names(), ["a", "b"]);
    assert_eq!(s.output_names(), ["s", "t"]);
    // The cube -1 stands for 01 and 11.
    assert_eq!(s.len(), 2);
    assert_eq!((s.input(0, 0), s.input(1, 0), s.input(0, 1)), (false, true, true));
    assert_eq!((s.output(1, 0), s.output(1, 1)), (Some(true), None));
}

#[test]
fn malformed_files_name_the_line_and_the_fault() {
    let cases = [
        (".i 2\n.o 1\n0x 1\n", "t.pla:3: input 2: expected 0, 1 or -, found 'x'"),
        (".i 2\n.o 1\n01 2\n", "t.pla:3: output 1: expected 0, 1, - or ~, found '2'"),
        (".i 2\n.o 1\n011 1\n", "t.pla:3: expected 2 input and 1 output characters, found 4"),
        ("01 1\n", "t.pla:1: cube before the .i and .o lines"),
        (".i 2\n.o 1\n.p 3\n01 1\n.e\n", "t.pla:3: .p 3 but the file holds 1 cubes"),
        (".i 2\n.o 1\n.ilb a\n01 1\n", "t.pla:4: .ilb lists 1 names but the file declares 2"),
        (".i 2\n.o 1\n.ilb a a\n01 1\n", "t.pla:4: .ilb repeats the name 'a'"),
        (
            ".i 99999999999\n",
            "t.pla:1: .i 99999999999: the count must be between 1 and 1048576",
        ),
        (".i two\n", "t.pla:1: .i expects a number, found 'two'"),
        (".i 2\n.o 1\n.type r\n", "t.pla:3: unsupported .type 'r'"),
        (".i 2\n.o 1\n.kiss\n", "t.pla:3: unsupported directive '.kiss'"),
        (".i 2\n.o 1\n", "t.pla:2: no cubes"),
        ("", "t.pla:1: no cubes"),
        (".i 2\n.o 1\n01 1\n.i 3\n", "t.pla:4: .i must come before the first cube"),
        (
            ".i 30\n.o 1\n------------------------------ 1\n",
            "t.pla:3: the cube has 30 don't-care inputs and stands for 2^30 samples",
        ),
    ];
    for (text, want) in cases {
        let got = pla(text).unwrap_err();
        assert!(got.starts_with(want), "{text:?}: got {got:?}, want {want:?}");
    }
    // A long line is not echoed whole.
    let long = format!(".i 2\n.o 1\n{} 1\n", "0".repeat(100_000));
    assert!(pla(&long).unwrap_err().len() < 200);
}

#[test]
fn gzip_files_are_read_by_content_and_csv_is_any_width() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("kiln-samples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = ".i 2\n.o 1\n.p 2\n.type fr\n01 1\n10 0\n.e\n";
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    let gz = dir.join("a.pla.gz");
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let s = SampleSet::from_path(&gz, None).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.output(0, 0), Some(true));

    // A 100-input CSV (more than a Table holds), output the last column.
    let n = 100;
    let mut csv: Vec<String> = vec![(0..=n).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",")];
    let mut rng = SplitMix64::new(7);
    let mut rows = Vec::new();
    for _ in 0..130 {
        let bits: Vec<bool> = (0..n).map(|_| rng.next_u64() & 1 == 1).collect();
        let y = bits[3] ^ bits[97];
        csv.push(
            bits.iter()
                .chain([&y])
                .map(|&b| if b { "1" } else { "0" })
                .collect::<Vec<_>>()
                .join(","),
        );
        rows.push((bits, y));
    }
    let path = dir.join("wide.csv");
    std::fs::write(&path, csv.join("\n")).unwrap();
    let s = SampleSet::from_path(&path, None).unwrap();
    assert_eq!((s.len(), s.num_inputs(), s.output_names()), (130, 100, &["c100".to_string()][..]));
    for (r, (bits, y)) in rows.iter().enumerate() {
        assert_eq!(s.input(r, 97), bits[97]);
        assert_eq!(s.output(r, 0), Some(*y));
    }
    // The XOR of the two columns is right on every row.
    let mut c = Circuit::new(s.input_names().to_vec());
    let g = c.gate(kiln_logic::Op::Xor, &[Signal::Input(3), Signal::Input(97)]).unwrap();
    c.set_output("c100", g).unwrap();
    let acc = s.accuracy(&c.eval_columns(&s.input_words(), s.words()));
    assert_eq!((acc.correct, acc.total), (130, 130));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn write_read_round_trip_select_concat_and_table() {
    let t = Table::from_fn(&["a", "b", "c"], &["y", "z"], |v| vec![v[0] & v[1], v[1] ^ v[2]]);
    let s = SampleSet::from_table(&t);
    let back = read_pla("rt", write_pla(&s).as_bytes()).unwrap();
    assert_eq!(back.input_names(), s.input_names());
    assert_eq!(back.output_columns(), s.output_columns());
    assert_eq!(back.input_columns(), s.input_columns());
    assert_eq!(back.care_columns(), s.care_columns());
    let back_table = back.to_table().unwrap();
    assert_eq!(back_table.rows().len(), 8);
    assert_eq!(back_table.output_columns(), t.output_columns());

    let odd = s.select(&[1, 3, 5, 7]);
    assert_eq!(odd.len(), 4);
    assert!((0..4).all(|r| odd.input(r, 2)));
    let both = odd.concat(&s.select(&[0])).unwrap();
    assert_eq!(both.len(), 5);
    assert_eq!((both.input(4, 2), both.output(4, 1)), (false, Some(false)));

    // Contradicting samples cannot become a truth table.
    let bad = pla(".i 1\n.o 1\n1 1\n1 0\n").unwrap();
    assert!(bad.to_table().unwrap_err().to_string().contains("disagree on output 'y0'"));
}

#[test]
fn accuracy_counts_specified_outputs_only() {
    let s = pla(".i 1\n.o 1\n0 0\n1 1\n1 -\n").unwrap();
    let acc = s.accuracy(&[vec![0b111]]);
    assert_eq!((acc.correct, acc.total), (1, 2));
    assert_eq!(acc.fraction(), 0.5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases(2000)))]
    /// Mutated PLA text never panics: it parses or is refused with a located message.
    #[test]
    fn mutated_pla_never_panics(flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..6), cut in 0usize..90) {
        let mut bytes = b".i 3\n.o 2\n.ilb a b c\n.ob y z\n.p 3\n.type fr\n0-1 1~\n110 0-\n111 11\n.e\n".to_vec();
        for (at, b) in flips {
            if at < bytes.len() {
                bytes[at] = b;
            }
        }
        bytes.truncate(cut.max(1));
        if let Err(e) = read_pla("m.pla", &bytes) {
            prop_assert!(e.to_string().starts_with("m.pla"));
        }
    }
}

/// Cases per fuzz property: `default` in the test suite, `KILN_FUZZ_CASES` in the long mode that
/// scripts/fuzz runs.
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("KILN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
