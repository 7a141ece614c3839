//! Example tables: rows of 0/1 inputs with their expected 0/1 outputs.
//!
//! A table may be partial (any subset of the `2^n` input rows); rows that are
//! absent are don't-cares for search and verification. Rows are stored twice:
//! once per row as bitmasks (for reporting) and once per column as bit vectors
//! over rows, so a circuit can be evaluated on 64 rows per machine word.

use std::collections::HashMap;
use std::path::Path;

use thiserror::Error;

/// Largest number of input columns a table may have. Rows are keyed by a
/// `u64` bitmask, and beyond 24 inputs exhaustive search and full tables are
/// hopeless anyway, so a bigger table is almost certainly a mistake.
pub const MAX_INPUTS: usize = 24;

/// Largest number of output columns (outputs of a row are a `u64` bitmask).
pub const MAX_OUTPUTS: usize = 64;

/// Everything that can go wrong while reading an example table.
///
/// Every message names the file (or source label), and where it applies the
/// 1-based line number and the column name.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TableError {
    /// The file could not be read.
    #[error("{file}: cannot read file: {message}")]
    Io {
        /// File name.
        file: String,
        /// Operating-system error text.
        message: String,
    },
    /// The CSV layer rejected the input (e.g. invalid UTF-8).
    #[error("{file}:{line}: malformed CSV: {message}")]
    Csv {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// There is no header line at all.
    #[error("{file}: empty file: expected a header line of column names")]
    NoHeader {
        /// File name.
        file: String,
    },
    /// A header cell is empty.
    #[error("{file}:{line}: column {index} has an empty name")]
    EmptyColumnName {
        /// File name.
        file: String,
        /// 1-based line number of the header.
        line: usize,
        /// 1-based column position.
        index: usize,
    },
    /// A header cell cannot be written in the program grammar.
    #[error("{file}:{line}: column {index} is named {column:?}: {reason}")]
    BadColumnName {
        /// File name.
        file: String,
        /// 1-based line number of the header.
        line: usize,
        /// 1-based column position.
        index: usize,
        /// The name, as read (shown at most 40 characters long).
        column: String,
        /// What makes it unusable.
        reason: String,
    },
    /// Two header cells have the same name.
    #[error("{file}:{line}: duplicate column name '{column}' (columns {first} and {second})")]
    DuplicateColumn {
        /// File name.
        file: String,
        /// 1-based line number of the header.
        line: usize,
        /// The repeated name.
        column: String,
        /// 1-based position of the first occurrence.
        first: usize,
        /// 1-based position of the second occurrence.
        second: usize,
    },
    /// An output name given by the caller is not a column of the table.
    #[error("{file}: unknown output column '{column}' (columns are: {available})")]
    UnknownOutput {
        /// File name.
        file: String,
        /// The requested name.
        column: String,
        /// Comma-separated list of the real columns.
        available: String,
    },
    /// The same output column was requested twice.
    #[error("{file}: output column '{column}' requested more than once")]
    RepeatedOutput {
        /// File name.
        file: String,
        /// The repeated name.
        column: String,
    },
    /// A data row has a different number of cells than the header.
    #[error("{file}:{line}: expected {expected} values (one per column), found {found}")]
    Ragged {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Number of header columns.
        expected: usize,
        /// Number of cells on this line.
        found: usize,
    },
    /// A cell is not 0/1/true/false.
    #[error("{file}:{line}: column '{column}': expected 0, 1, true or false, found '{value}'")]
    BadValue {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Column name.
        column: String,
        /// The offending cell text.
        value: String,
    },
    /// Two rows have the same inputs but different outputs.
    #[error("{file}: lines {first_line} and {second_line} have the same inputs but disagree on output '{column}'")]
    Contradiction {
        /// File name.
        file: String,
        /// 1-based line of the earlier row.
        first_line: usize,
        /// 1-based line of the later row.
        second_line: usize,
        /// First output column on which they disagree.
        column: String,
    },
    /// The header is present but there are no data rows.
    #[error("{file}: table has no data rows")]
    Empty {
        /// File name.
        file: String,
    },
    /// Every column was chosen as an output.
    #[error("{file}: no input columns left after choosing outputs {outputs}")]
    NoInputs {
        /// File name.
        file: String,
        /// Comma-separated output names.
        outputs: String,
    },
    /// More inputs than [`MAX_INPUTS`].
    #[error("{file}: {count} input columns, at most {max} are supported")]
    TooManyInputs {
        /// File name.
        file: String,
        /// Number of inputs found.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More outputs than [`MAX_OUTPUTS`].
    #[error("{file}: {count} output columns, at most {max} are supported")]
    TooManyOutputs {
        /// File name.
        file: String,
        /// Number of outputs requested.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The file is bigger than the reader accepts (after inflation, for gzip).
    #[error("{file}: {message}")]
    TooLarge {
        /// File name.
        file: String,
        /// What is too large, with the limit.
        message: String,
    },
    /// A line of an Espresso PLA file is malformed.
    #[error("{file}:{line}: {message}")]
    Pla {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One example: input bits, output bits and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Bit `i` is the value of input column `i`.
    pub inputs: u64,
    /// Bit `j` is the expected value of output column `j`.
    pub outputs: u64,
    /// 1-based line in the source file, if the table was read from text.
    pub line: Option<usize>,
}

/// A (possibly partial) truth table with named inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    source: String,
    input_names: Vec<String>,
    output_names: Vec<String>,
    rows: Vec<Row>,
    input_cols: Vec<Vec<u64>>,
    output_cols: Vec<Vec<u64>>,
}

/// Bit vector over `rows` rows ([`words_for`] words) with a 1 for every row that exists.
pub fn row_mask(rows: usize) -> Vec<u64> {
    let mut m = vec![!0u64; words_for(rows)];
    let rem = rows % 64;
    if rem != 0 {
        if let Some(last) = m.last_mut() {
            *last = (1u64 << rem) - 1;
        }
    } else if rows == 0 {
        m[0] = 0;
    }
    m
}

/// Number of `u64` words needed to hold one bit per row.
pub fn words_for(rows: usize) -> usize {
    rows.div_ceil(64).max(1)
}

fn parse_bool(cell: &str) -> Option<bool> {
    let t = cell.trim();
    if t == "0" || t.eq_ignore_ascii_case("false") {
        Some(false)
    } else if t == "1" || t.eq_ignore_ascii_case("true") {
        Some(true)
    } else {
        None
    }
}

impl Table {
    /// Reads a CSV table from `path` (plain or gzip, detected by content). `outputs` names the output columns;
    /// `None` (or an empty slice) means "the last column".
    pub fn from_csv_path(path: impl AsRef<Path>, outputs: Option<&[String]>) -> Result<Table, TableError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = crate::source::read_bytes(path, crate::source::DEFAULT_MAX_BYTES)?;
        Self::from_csv_bytes(&file, &bytes, outputs)
    }

    /// The column names of the CSV table at `path` (inputs then outputs, in file order), read
    /// from the start of the file only: a caller that must know the columns before it can say
    /// which are outputs need not load a table it may not be able to hold. Rows are checked
    /// only as far as the first MiB goes; [`Table::from_csv_path`] checks them all.
    pub fn csv_column_names(path: impl AsRef<Path>) -> Result<Vec<String>, TableError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        const HEAD: u64 = 1 << 20;
        let head = crate::source::read_head(path, HEAD)?;
        // Whole lines only, so a row cut in the middle is not reported as ragged; a header
        // longer than the head is read with the whole file.
        let cut = head.len() as u64 >= HEAD;
        let bytes = if cut {
            match head.iter().rposition(|&b| b == b'\n' || b == b'\r') {
                Some(end) => head[..=end].to_vec(),
                None => crate::source::read_bytes(path, crate::source::DEFAULT_MAX_BYTES)?,
            }
        } else {
            head
        };
        let (header, rows) = read_csv_rows(&file, &bytes, None, usize::MAX, |_, _, _, _| Ok(()))?;
        // A cut head may hold no whole row (a first row longer than the head, a huge cell): the
        // rows are judged when the table is loaded, not here.
        if rows == 0 && !cut {
            return Err(TableError::Empty { file });
        }
        Ok(header.input_names.into_iter().chain(header.output_names).collect())
    }

    /// Parses CSV text; `source` is the label used in error messages.
    pub fn from_csv_str(source: &str, text: &str, outputs: Option<&[String]>) -> Result<Table, TableError> {
        Self::from_csv_bytes(source, text.as_bytes(), outputs)
    }

    fn from_csv_bytes(file: &str, bytes: &[u8], outputs: Option<&[String]>) -> Result<Table, TableError> {
        let mut rows: Vec<Row> = Vec::new();
        let mut by_inputs: HashMap<u64, usize> = HashMap::new();
        let header = read_csv_examples(file, bytes, outputs, MAX_INPUTS, |header, line, ins, outs| {
            let inputs = pack(ins.iter().copied());
            let outputs = pack(outs.iter().copied());
            if let Some(&prev) = by_inputs.get(&inputs) {
                let p: Row = rows[prev];
                if p.outputs != outputs {
                    let j = (p.outputs ^ outputs).trailing_zeros() as usize;
                    return Err(TableError::Contradiction {
                        file: file.to_string(),
                        first_line: p.line.unwrap_or(0),
                        second_line: line,
                        column: header.output_names[j].clone(),
                    });
                }
                // A repeated consistent row adds no information; keep the first.
                return Ok(());
            }
            by_inputs.insert(inputs, rows.len());
            rows.push(Row {
                inputs,
                outputs,
                line: Some(line),
            });
            Ok(())
        })?;
        Ok(Table::assemble(file.to_string(), header.input_names, header.output_names, rows))
    }

    /// Builds the full table of a boolean function. Row `r` (0-based) assigns
    /// input `i` the bit `(r >> (n-1-i)) & 1`, so the first input is the most
    /// significant, matching how truth tables are usually written.
    ///
    /// `f` receives the input values in column order and must return one
    /// value per output name.
    ///
    /// # Panics
    /// If more than [`MAX_INPUTS`] inputs or [`MAX_OUTPUTS`] outputs are
    /// given, or if `f` returns the wrong number of outputs: these are
    /// programming errors in built-in tables, not user input.
    pub fn from_fn<F>(input_names: &[&str], output_names: &[&str], f: F) -> Table
    where
        F: Fn(&[bool]) -> Vec<bool>,
    {
        let n = input_names.len();
        assert!(n <= MAX_INPUTS && output_names.len() <= MAX_OUTPUTS);
        let mut rows = Vec::with_capacity(1 << n);
        let mut vals = vec![false; n];
        for r in 0..(1u64 << n) {
            for (i, v) in vals.iter_mut().enumerate() {
                *v = (r >> (n - 1 - i)) & 1 == 1;
            }
            let out = f(&vals);
            assert_eq!(out.len(), output_names.len(), "from_fn: wrong number of outputs");
            rows.push(Row {
                inputs: pack(vals.iter().copied()),
                outputs: pack(out.into_iter()),
                line: None,
            });
        }
        Table::assemble(
            "<builtin>".to_string(),
            input_names.iter().map(|s| s.to_string()).collect(),
            output_names.iter().map(|s| s.to_string()).collect(),
            rows,
        )
    }

    /// Builds a table from explicit rows (no file lines). Input and output bits
    /// beyond the named columns are cleared; later duplicates of an input
    /// pattern are ignored.
    pub fn from_rows(source: &str, input_names: Vec<String>, output_names: Vec<String>, rows: Vec<Row>) -> Table {
        let mask = |n: usize| 1u64.checked_shl(n as u32).map_or(!0, |b| b - 1);
        let (in_mask, out_mask) = (mask(input_names.len()), mask(output_names.len()));
        let mut seen = std::collections::HashSet::new();
        let rows = rows
            .into_iter()
            .map(|r| Row {
                inputs: r.inputs & in_mask,
                outputs: r.outputs & out_mask,
                ..r
            })
            .filter(|r| seen.insert(r.inputs))
            .collect();
        Table::assemble(source.to_string(), input_names, output_names, rows)
    }

    fn assemble(source: String, input_names: Vec<String>, output_names: Vec<String>, rows: Vec<Row>) -> Table {
        let words = words_for(rows.len());
        let mut input_cols = vec![vec![0u64; words]; input_names.len()];
        let mut output_cols = vec![vec![0u64; words]; output_names.len()];
        for (r, row) in rows.iter().enumerate() {
            let (w, b) = (r / 64, r % 64);
            for (i, col) in input_cols.iter_mut().enumerate() {
                col[w] |= ((row.inputs >> i) & 1) << b;
            }
            for (j, col) in output_cols.iter_mut().enumerate() {
                col[w] |= ((row.outputs >> j) & 1) << b;
            }
        }
        Table {
            source,
            input_names,
            output_names,
            rows,
            input_cols,
            output_cols,
        }
    }

    /// Label of where the table came from (file name or `<builtin>`).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// Input column names, in column order.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }
    /// Output column names, in the order they were requested.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }
    /// The rows, in file order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
    /// Number of inputs.
    pub fn num_inputs(&self) -> usize {
        self.input_names.len()
    }
    /// Number of outputs.
    pub fn num_outputs(&self) -> usize {
        self.output_names.len()
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// Whether the table has no rows (only possible after a split).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Whether all `2^n` input rows are present.
    pub fn is_complete(&self) -> bool {
        // 64 inputs would overflow the shift; no table holds 2^64 rows anyway.
        1u64.checked_shl(self.num_inputs() as u32)
            .is_some_and(|all| self.rows.len() as u64 == all)
    }
    /// Number of `u64` words in each column bit vector.
    pub fn words(&self) -> usize {
        words_for(self.rows.len())
    }
    /// Bit vector over rows of input column `i` (bit `r % 64` of word `r / 64`).
    pub fn input_bits(&self, i: usize) -> &[u64] {
        &self.input_cols[i]
    }
    /// Bit vector over rows of output column `j`.
    pub fn output_bits(&self, j: usize) -> &[u64] {
        &self.output_cols[j]
    }
    /// All input columns as bit vectors.
    pub fn input_columns(&self) -> &[Vec<u64>] {
        &self.input_cols
    }
    /// All output columns as bit vectors.
    pub fn output_columns(&self) -> &[Vec<u64>] {
        &self.output_cols
    }
    /// Bit vector with a 1 for every row that exists (the tail of the last
    /// word is 0).
    pub fn row_mask(&self) -> Vec<u64> {
        row_mask(self.rows.len())
    }

    /// Index of an input column by name.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.input_names.iter().position(|n| n == name)
    }
    /// Index of an output column by name.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.output_names.iter().position(|n| n == name)
    }

    /// Splits the rows into `(train, holdout)` with `round(fraction * len)`
    /// rows held out, chosen by a Fisher–Yates shuffle driven by
    /// [`SplitMix64`] seeded with `seed`. Both parts keep file order and line
    /// numbers. `fraction` is clamped to `[0, 1]`.
    pub fn split_holdout(&self, fraction: f64, seed: u64) -> (Table, Table) {
        let n = self.rows.len();
        let f = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        let k = ((f * n as f64).round() as usize).min(n);
        let mut idx: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64::new(seed);
        for i in (1..n).rev() {
            // Modulo bias is below 2^-40 for any realistic table size.
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let mut hold = vec![false; n];
        for &i in &idx[..k] {
            hold[i] = true;
        }
        let pick = |want: bool| -> Vec<Row> { (0..n).filter(|&i| hold[i] == want).map(|i| self.rows[i]).collect() };
        let make = |rows| Table::assemble(self.source.clone(), self.input_names.clone(), self.output_names.clone(), rows);
        (make(pick(false)), make(pick(true)))
    }
}

/// Column names of an example CSV file, split into inputs and outputs.
pub(crate) struct CsvHeader {
    pub(crate) input_names: Vec<String>,
    pub(crate) output_names: Vec<String>,
}

/// Reads an example CSV (header of names, cells 0/1/true/false) and hands each data row to
/// `on_row` as `(header, line, input bits, output bits)`. Shared by [`Table`] and
/// [`crate::samples::SampleSet`], which differ only in how they store rows and how many inputs
/// they accept.
pub(crate) fn read_csv_examples(
    file: &str,
    bytes: &[u8],
    outputs: Option<&[String]>,
    max_inputs: usize,
    on_row: impl FnMut(&CsvHeader, usize, &[bool], &[bool]) -> Result<(), TableError>,
) -> Result<CsvHeader, TableError> {
    let (header, rows) = read_csv_rows(file, bytes, outputs, max_inputs, on_row)?;
    if rows == 0 {
        return Err(TableError::Empty { file: file.to_string() });
    }
    Ok(header)
}

/// [`read_csv_examples`] without the check that there is a data row: returns the header and the
/// number of rows read.
fn read_csv_rows(
    file: &str,
    bytes: &[u8],
    outputs: Option<&[String]>,
    max_inputs: usize,
    mut on_row: impl FnMut(&CsvHeader, usize, &[bool], &[bool]) -> Result<(), TableError>,
) -> Result<(CsvHeader, usize), TableError> {
    let file = file.to_string();
    // Flexible + no headers: ragged rows and header problems are reported
    // by us, with line numbers, rather than as opaque CSV errors.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut records = reader.records();
    // The CSV reader does not count blank lines in its line numbers, so
    // lines are recomputed from byte offsets to match what editors show.
    // A line ends at LF, CRLF or a lone CR (old Mac files), as editors count them.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' || b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
                .map(|(i, _)| i + 1),
        )
        .collect();
    let line_of = |pos: Option<&csv::Position>| -> usize {
        // A record's position is where the reader resumed, which can be
        // before the blank or comment lines it skipped.
        let mut b = pos.map_or(0, |p| p.byte() as usize);
        while b < bytes.len() {
            match bytes[b] {
                b'\n' | b'\r' => b += 1,
                b'#' => b = line_starts.iter().copied().find(|&s| s > b).unwrap_or(bytes.len()),
                _ => break,
            }
        }
        line_starts.partition_point(|&s| s <= b)
    };
    let csv_err = |e: csv::Error, file: &str| TableError::Csv {
        file: file.to_string(),
        line: line_of(e.position()),
        message: e.to_string(),
    };

    let header = match records.next() {
        None => return Err(TableError::NoHeader { file }),
        Some(r) => r.map_err(|e| csv_err(e, &file))?,
    };
    let header_line = line_of(header.position());
    let names: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(TableError::EmptyColumnName {
                file,
                line: header_line,
                index: i + 1,
            });
        }
        if let Some(reason) = crate::grammar::name_problem(name) {
            return Err(TableError::BadColumnName {
                file,
                line: header_line,
                index: i + 1,
                column: name.chars().take(40).collect(),
                reason,
            });
        }
        if let Some(&first) = seen.get(name.as_str()) {
            return Err(TableError::DuplicateColumn {
                file,
                line: header_line,
                column: name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
        seen.insert(name, i);
    }

    let output_idx: Vec<usize> = match outputs {
        Some(outs) if !outs.is_empty() => {
            let mut idx = Vec::with_capacity(outs.len());
            for o in outs {
                let o = o.trim();
                match seen.get(o) {
                    None => {
                        return Err(TableError::UnknownOutput {
                            file,
                            column: o.to_string(),
                            available: crate::grammar::shown_list(&names),
                        })
                    }
                    Some(&i) if idx.contains(&i) => {
                        return Err(TableError::RepeatedOutput {
                            file,
                            column: o.to_string(),
                        })
                    }
                    Some(&i) => idx.push(i),
                }
            }
            idx
        }
        _ => vec![names.len() - 1],
    };
    let input_idx: Vec<usize> = (0..names.len()).filter(|i| !output_idx.contains(i)).collect();
    let output_names: Vec<String> = output_idx.iter().map(|&i| names[i].clone()).collect();
    if input_idx.is_empty() {
        return Err(TableError::NoInputs {
            file,
            outputs: output_names.join(","),
        });
    }
    if input_idx.len() > max_inputs {
        return Err(TableError::TooManyInputs {
            file,
            count: input_idx.len(),
            max: max_inputs,
        });
    }
    if output_idx.len() > MAX_OUTPUTS {
        return Err(TableError::TooManyOutputs {
            file,
            count: output_idx.len(),
            max: MAX_OUTPUTS,
        });
    }

    let input_names = input_idx.iter().map(|&i| names[i].clone()).collect();
    let header = CsvHeader { input_names, output_names };
    let mut count = 0usize;
    let (mut ins, mut outs) = (Vec::with_capacity(input_idx.len()), Vec::with_capacity(output_idx.len()));
    for rec in records {
        let rec = rec.map_err(|e| csv_err(e, &file))?;
        let line = line_of(rec.position());
        if rec.len() != names.len() {
            return Err(TableError::Ragged {
                file,
                line,
                expected: names.len(),
                found: rec.len(),
            });
        }
        let cell = |c: usize| {
            let text = &rec[c];
            parse_bool(text).ok_or_else(|| TableError::BadValue {
                file: file.clone(),
                line,
                column: names[c].clone(),
                // A huge cell is shown cut, not echoed whole.
                value: if text.chars().count() > 40 {
                    format!("{}…", text.chars().take(40).collect::<String>())
                } else {
                    text.to_string()
                },
            })
        };
        ins.clear();
        outs.clear();
        for &i in &input_idx {
            ins.push(cell(i)?);
        }
        for &i in &output_idx {
            outs.push(cell(i)?);
        }
        on_row(&header, line, &ins, &outs)?;
        count += 1;
    }
    Ok((header, count))
}

fn pack(bits: impl Iterator<Item = bool>) -> u64 {
    bits.enumerate().fold(0u64, |acc, (i, b)| acc | ((b as u64) << i))
}

/// The SplitMix64 pseudo-random generator (Steele, Lea & Flood): tiny, fast,
/// and fully determined by its seed, which keeps holdout splits reproducible
/// across platforms and versions.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
