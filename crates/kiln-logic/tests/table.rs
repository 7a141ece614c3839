use kiln_logic::{SplitMix64, Table, TableError};

fn load(text: &str, outputs: &[&str]) -> Result<Table, TableError> {
    let outs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
    Table::from_csv_str("t.csv", text, Some(&outs))
}

#[test]
fn parses_values_and_default_output() {
    let t = load("A, B ,Y\n0,0,0\n TRUE ,false,1\n1,1,0\n", &[]).unwrap();
    assert_eq!(t.input_names(), ["A", "B"]);
    assert_eq!(t.output_names(), ["Y"]);
    assert_eq!(t.len(), 3);
    assert!(!t.is_complete());
    assert_eq!(t.rows()[1].inputs, 0b01);
    assert_eq!(t.rows()[1].outputs, 1);
    assert_eq!(t.rows()[1].line, Some(3));
    assert_eq!(t.output_bits(0), &[0b010]);
    assert_eq!(t.input_bits(0), &[0b110]);
    assert_eq!(t.row_mask(), vec![0b111]);
}

#[test]
fn chosen_outputs_keep_requested_order() {
    let t = load("A,B,S,C\n0,0,0,0\n0,1,1,0\n", &["C", "S"]).unwrap();
    assert_eq!(t.input_names(), ["A", "B"]);
    assert_eq!(t.output_names(), ["C", "S"]);
    assert_eq!(t.rows()[1].outputs, 0b10);
}

#[test]
fn errors_name_file_line_and_column() {
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "A,B,Y\n0,0,0\n0,1\n",
            vec![],
            "t.csv:3: expected 3 values (one per column), found 2",
        ),
        (
            "A,B,Y\n0,0,0\n0,2,1\n",
            vec![],
            "t.csv:3: column 'B': expected 0, 1, true or false, found '2'",
        ),
        ("A,B,A\n0,0,0\n", vec![], "t.csv:1: duplicate column name 'A' (columns 1 and 3)"),
        (
            "A,B,Y\n0,0,0\n",
            vec!["Q"],
            "t.csv: unknown output column 'Q' (columns are: A, B, Y)",
        ),
        (
            "A,B,Y\n0,0,0\n1,1,1\n\n0,0,1\n",
            vec![],
            "t.csv: lines 2 and 5 have the same inputs but disagree on output 'Y'",
        ),
        ("A,B,Y\n", vec![], "t.csv: table has no data rows"),
        ("", vec![], "t.csv: empty file: expected a header line of column names"),
        (
            "A,Y\n0,1\n",
            vec!["A", "Y"],
            "t.csv: no input columns left after choosing outputs A,Y",
        ),
        ("A,,Y\n0,0,1\n", vec![], "t.csv:1: column 2 has an empty name"),
    ];
    for (text, outs, msg) in cases {
        let err = load(text, &outs).unwrap_err();
        assert_eq!(err.to_string(), msg, "for input {text:?}");
    }
    let wide: Vec<String> = (0..26).map(|i| format!("X{i}")).collect();
    let text = format!("{}\n{}\n", wide.join(","), vec!["0"; 26].join(","));
    assert_eq!(
        load(&text, &[]).unwrap_err(),
        TableError::TooManyInputs {
            file: "t.csv".into(),
            count: 25,
            max: 24
        }
    );
}

#[test]
fn consistent_duplicates_are_merged_and_missing_file_is_an_error() {
    let t = load("A,Y\n0,1\n0,1\n1,0\n", &[]).unwrap();
    assert_eq!(t.len(), 2);
    let e = Table::from_csv_path("/definitely/not/here.csv", None).unwrap_err();
    assert!(e.to_string().starts_with("/definitely/not/here.csv: cannot read file"), "{e}");
}

#[test]
fn splitmix_reference_values() {
    // First outputs of SplitMix64 seeded with 0 (reference implementation).
    let mut r = SplitMix64::new(0);
    assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
}

#[test]
fn holdout_split_is_seeded_disjoint_and_complete() {
    let t = kiln_logic::library::parity(5);
    let (train, hold) = t.split_holdout(0.25, 42);
    assert_eq!(hold.len(), 8);
    assert_eq!(train.len(), 24);
    let mut all: Vec<u64> = train.rows().iter().chain(hold.rows()).map(|r| r.inputs).collect();
    all.sort();
    assert_eq!(all, (0..32).map(|r| t.rows()[r].inputs).collect::<Vec<_>>().tap_sort());
    let (_, hold2) = t.split_holdout(0.25, 42);
    assert_eq!(hold.rows(), hold2.rows());
    let (_, hold3) = t.split_holdout(0.25, 43);
    assert_ne!(hold.rows(), hold3.rows());
}

trait TapSort {
    fn tap_sort(self) -> Self;
}
impl TapSort for Vec<u64> {
    fn tap_sort(mut self) -> Self {
        self.sort();
        self
    }
}

#[test]
fn from_fn_orders_rows_with_first_input_most_significant() {
    let t = Table::from_fn(&["A", "B"], &["Y"], |v| vec![v[0] && !v[1]]);
    assert_eq!(t.len(), 4);
    assert!(t.is_complete());
    // Row 2 is A=1, B=0.
    assert_eq!(t.rows()[2].inputs, 0b01);
    assert_eq!(t.output_bits(0), &[0b0100]);
}

#[test]
fn line_numbers_count_blank_and_comment_lines() {
    let err = load("# a comment\nA,B,Y\n\n0,0,0\n# another\n\n0,x,1\n", &[]).unwrap_err();
    assert_eq!(err.to_string(), "t.csv:7: column 'B': expected 0, 1, true or false, found 'x'");
    let err = load("A,B,Y\r\n0,0,0\r\n\r\n0,0,0,1\r\n", &[]).unwrap_err();
    assert_eq!(err.to_string(), "t.csv:4: expected 3 values (one per column), found 4");
}

/// Names the grammar cannot print back are refused where the table is read, naming the column.
#[test]
fn column_names_must_be_grammar_names() {
    for (header, want) in [
        ("0,1,Y", "t.csv:1: column 1 is named \"0\": a name must start with a letter or '_'"),
        (
            "a,AND,Y",
            "t.csv:1: column 2 is named \"AND\": 'AND' is an operator of the program grammar",
        ),
        (
            "a,b,xor",
            "t.csv:1: column 3 is named \"xor\": 'XOR' is an operator of the program grammar",
        ),
        (
            "a-b,c,Y",
            "t.csv:1: column 1 is named \"a-b\": a name may hold only letters, digits and '_', not '-'",
        ),
        (
            "\"X 1\",c,Y",
            "t.csv:1: column 1 is named \"X 1\": a name may hold only letters, digits and '_', not ' '",
        ),
    ] {
        let err = kiln_logic::Table::from_csv_str("t.csv", &format!("{header}\n0,0,0\n"), None).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    let err = kiln_logic::pla::read_pla("t.pla", b".i 2\n.o 1\n.ilb a 1b\n01 1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.pla:4: .ilb: \"1b\" cannot be a column name: a name must start with a letter or '_'"
    );
}

#[test]
fn lone_cr_line_ends_count_and_huge_cells_are_cut() {
    let err = kiln_logic::Table::from_csv_str("t.csv", "a,b,Y\r0,0,0\r0,x,1\r", None).unwrap_err();
    assert_eq!(err.to_string(), "t.csv:3: column 'b': expected 0, 1, true or false, found 'x'");
    let big = format!("a,b,Y\n0,{},1\n", "7".repeat(1_000_000));
    let err = kiln_logic::Table::from_csv_str("t.csv", &big, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("t.csv:2: column 'b': expected 0, 1, true or false, found '{}…'", "7".repeat(40))
    );
}
