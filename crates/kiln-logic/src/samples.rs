//! Sample sets: examples of a boolean function of any number of inputs, stored as bit-packed
//! columns.
//!
//! A [`Table`] keys rows by a `u64` bitmask and is meant for truth tables of at most 24 inputs. A
//! [`SampleSet`] is what learning from samples needs instead: thousands to millions of rows of tens
//! to thousands of inputs (IWLS 2020 goes to 512), each column a bit vector over rows so a circuit
//! is evaluated on 64 rows per machine word. Outputs may be unspecified on some rows (`-` or `~` in
//! a PLA): a care mask per output says which rows count.

use std::path::Path;

use std::collections::HashMap;

use crate::table::{read_csv_examples, words_for, Row, Table, TableError};

/// Most bits (rows × columns, inputs and outputs together) a sample set may hold: 2^32 bits is
/// 512 MiB, the full truth table of 24 inputs with room to spare. Larger inputs are refused
/// before they are stored rather than aborting on a failed allocation. The learners keep several
/// times the samples' size in derived columns: at the earlier 2^35 (4 GiB), a PLA of 600 cubes
/// with 20 don't-cares each expanded to 2 GB and the learner then failed to allocate 5 GB.
pub const MAX_SAMPLE_BITS: u64 = 1 << 32;

/// Examples of a multi-output boolean function over named inputs, stored column-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSet {
    source: String,
    input_names: Vec<String>,
    output_names: Vec<String>,
    rows: usize,
    inputs: Vec<Vec<u64>>,
    outputs: Vec<Vec<u64>>,
    care: Vec<Vec<u64>>,
}

/// How many rows a prediction got right, over the rows and outputs whose value is specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accuracy {
    /// Specified (row, output) pairs predicted correctly.
    pub correct: u64,
    /// Specified (row, output) pairs.
    pub total: u64,
}

impl Accuracy {
    /// `correct / total`, or 1 when nothing is specified (nothing can be wrong).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Whether `bytes` look like an Espresso PLA file rather than CSV: the first line that is not
/// blank or a comment is a `.` directive.
pub fn looks_like_pla(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'\n' || b == b'\r')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))
        .is_some_and(|l| l.starts_with(b"."))
}

impl SampleSet {
    /// An empty sample set with these column names.
    pub fn new(source: &str, input_names: Vec<String>, output_names: Vec<String>) -> SampleSet {
        let (n, m) = (input_names.len(), output_names.len());
        SampleSet {
            source: source.to_string(),
            input_names,
            output_names,
            rows: 0,
            inputs: vec![Vec::new(); n],
            outputs: vec![Vec::new(); m],
            care: vec![Vec::new(); m],
        }
    }

    /// Reads a sample file: an Espresso PLA or a CSV with a header (as [`Table`] reads it),
    /// either of them plain or gzip-compressed; the format is detected by content. `outputs` names
    /// the CSV output columns (default: the last); a PLA names its own outputs (`.ob`, or `y0…`).
    pub fn from_path(path: impl AsRef<Path>, outputs: Option<&[String]>) -> Result<SampleSet, TableError> {
        let path = path.as_ref();
        let bytes = crate::source::read_bytes(path, crate::source::DEFAULT_MAX_BYTES)?;
        Self::from_bytes(&path.display().to_string(), &bytes, outputs)
    }

    /// Parses a PLA or CSV held in memory; `source` labels error messages.
    pub fn from_bytes(source: &str, bytes: &[u8], outputs: Option<&[String]>) -> Result<SampleSet, TableError> {
        if looks_like_pla(bytes) {
            if outputs.is_some_and(|o| !o.is_empty()) {
                return Err(TableError::Pla {
                    file: source.to_string(),
                    line: 1,
                    message: "a PLA file names its own outputs; --outputs applies to CSV only".into(),
                });
            }
            crate::pla::read_pla(source, bytes)
        } else {
            Self::from_csv_bytes(source, bytes, outputs)
        }
    }

    fn from_csv_bytes(source: &str, bytes: &[u8], outputs: Option<&[String]>) -> Result<SampleSet, TableError> {
        let mut set: Option<SampleSet> = None;
        let mut cares = Vec::new();
        read_csv_examples(source, bytes, outputs, usize::MAX, |header, _line, ins, outs| {
            let set = set.get_or_insert_with(|| SampleSet::new(source, header.input_names.clone(), header.output_names.clone()));
            cares.clear();
            cares.extend(outs.iter().map(|&b| Some(b)));
            set.push_row(ins, &cares)
        })?;
        // read_csv_examples refuses a file without data rows, so a row was pushed.
        set.ok_or_else(|| TableError::Empty { file: source.to_string() })
    }

    /// The complete rows of a truth table, every output specified.
    pub fn from_table(table: &Table) -> SampleSet {
        let m = table.num_outputs();
        let mask = table.row_mask();
        SampleSet {
            source: table.source().to_string(),
            input_names: table.input_names().to_vec(),
            output_names: table.output_names().to_vec(),
            rows: table.len(),
            inputs: table.input_columns().to_vec(),
            outputs: table.output_columns().to_vec(),
            care: vec![mask; m],
        }
    }

    /// Appends one row. `outputs[j]` is `None` where output `j` is unspecified.
    pub fn push_row(&mut self, inputs: &[bool], outputs: &[Option<bool>]) -> Result<(), TableError> {
        if inputs.len() != self.inputs.len() || outputs.len() != self.outputs.len() {
            return Err(TableError::Ragged {
                file: self.source.clone(),
                line: self.rows + 1,
                expected: self.inputs.len() + self.outputs.len(),
                found: inputs.len() + outputs.len(),
            });
        }
        let r = self.rows;
        if r.is_multiple_of(64) {
            self.check_room(r + 64)?;
            for col in self.inputs.iter_mut().chain(&mut self.outputs).chain(&mut self.care) {
                col.push(0);
            }
        }
        let (w, bit) = (r / 64, 1u64 << (r % 64));
        for (col, &v) in self.inputs.iter_mut().zip(inputs) {
            if v {
                col[w] |= bit;
            }
        }
        for (j, v) in outputs.iter().enumerate() {
            if let Some(v) = *v {
                self.care[j][w] |= bit;
                if v {
                    self.outputs[j][w] |= bit;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Fails, storing nothing, unless `more` rows fit beside those held within
    /// [`MAX_SAMPLE_BITS`]: for a reader about to push many rows at once.
    pub fn reserve_rows(&self, more: usize) -> Result<(), TableError> {
        self.check_room(self.rows.saturating_add(more))
    }

    /// Refuses growth past [`MAX_SAMPLE_BITS`] with checked arithmetic, so a huge file is turned
    /// away with a message instead of an allocation failure.
    fn check_room(&self, rows: usize) -> Result<(), TableError> {
        let cols = self.inputs.len() as u64 + 2 * self.outputs.len() as u64;
        let bits = (rows as u64).checked_mul(cols.max(1));
        if bits.is_none_or(|b| b > MAX_SAMPLE_BITS) {
            return Err(TableError::TooLarge {
                file: self.source.clone(),
                message: format!(
                    "{rows} rows of {} inputs and {} outputs exceed the sample limit of {MAX_SAMPLE_BITS} bits",
                    self.inputs.len(),
                    self.outputs.len()
                ),
            });
        }
        Ok(())
    }

    /// Label of where the samples came from.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// Input names, in column order.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }
    /// Output names, in column order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
    /// Number of inputs.
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// Number of outputs.
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
    /// Words per column (at least one).
    pub fn words(&self) -> usize {
        words_for(self.rows)
    }
    /// Input columns as bit vectors over rows (bit `r % 64` of word `r / 64`); bits past the last
    /// row are 0.
    pub fn input_columns(&self) -> &[Vec<u64>] {
        &self.inputs
    }
    /// Output columns as bit vectors over rows; 0 where the output is unspecified.
    pub fn output_columns(&self) -> &[Vec<u64>] {
        &self.outputs
    }
    /// Per output, the rows where it is specified.
    pub fn care_columns(&self) -> &[Vec<u64>] {
        &self.care
    }
    /// Bit vector with a 1 for every row that exists (the tail of the last word is 0).
    pub fn row_mask(&self) -> Vec<u64> {
        crate::table::row_mask(self.rows)
    }
    /// Value of input `i` on row `r`.
    pub fn input(&self, r: usize, i: usize) -> bool {
        self.inputs[i][r / 64] >> (r % 64) & 1 == 1
    }
    /// Value of output `j` on row `r`, `None` where unspecified.
    pub fn output(&self, r: usize, j: usize) -> Option<bool> {
        let (w, b) = (r / 64, r % 64);
        (self.care[j][w] >> b & 1 == 1).then(|| self.outputs[j][w] >> b & 1 == 1)
    }

    /// Columns padded with zero words to `words` (at least [`SampleSet::words`]), as circuit
    /// evaluators expect.
    fn padded(cols: &[Vec<u64>], words: usize) -> Vec<Vec<u64>> {
        cols.iter()
            .map(|c| {
                let mut c = c.clone();
                c.resize(words, 0);
                c
            })
            .collect()
    }

    /// Input columns with exactly [`SampleSet::words`] words each (an empty set has one zero word).
    pub fn input_words(&self) -> Vec<Vec<u64>> {
        Self::padded(&self.inputs, self.words())
    }

    /// How many specified outputs `predicted` (one bit vector per output, as from
    /// [`crate::Circuit::eval_columns`]) gets right.
    pub fn accuracy(&self, predicted: &[Vec<u64>]) -> Accuracy {
        let mut acc = Accuracy { correct: 0, total: 0 };
        for j in 0..self.outputs.len() {
            for (w, &care) in self.care[j].iter().enumerate() {
                let p = predicted.get(j).and_then(|c| c.get(w)).copied().unwrap_or(0);
                acc.total += u64::from(care.count_ones());
                acc.correct += u64::from((!(p ^ self.outputs[j][w]) & care).count_ones());
            }
        }
        acc
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> SampleSet {
        let mut out = SampleSet::new(&self.source, self.input_names.clone(), self.output_names.clone());
        let words = words_for(indices.len());
        let pick = |cols: &[Vec<u64>]| -> Vec<Vec<u64>> {
            cols.iter()
                .map(|c| {
                    let mut v = vec![0u64; words];
                    for (k, &r) in indices.iter().enumerate() {
                        v[k / 64] |= (c[r / 64] >> (r % 64) & 1) << (k % 64);
                    }
                    v
                })
                .collect()
        };
        out.inputs = pick(&self.inputs);
        out.outputs = pick(&self.outputs);
        out.care = pick(&self.care);
        out.rows = indices.len();
        out
    }

    /// This set followed by the rows of `other`, which must have the same columns.
    pub fn concat(&self, other: &SampleSet) -> Result<SampleSet, TableError> {
        if other.input_names != self.input_names || other.output_names != self.output_names {
            return Err(TableError::Ragged {
                file: other.source.clone(),
                line: 1,
                expected: self.num_inputs() + self.num_outputs(),
                found: other.num_inputs() + other.num_outputs(),
            });
        }
        let mut all = self.clone();
        all.check_room(self.rows.saturating_add(other.rows))?;
        let mut ins = vec![false; self.num_inputs()];
        let mut outs = vec![None; self.num_outputs()];
        for r in 0..other.rows {
            for (i, v) in ins.iter_mut().enumerate() {
                *v = other.input(r, i);
            }
            for (j, v) in outs.iter_mut().enumerate() {
                *v = other.output(r, j);
            }
            all.push_row(&ins, &outs)?;
        }
        Ok(all)
    }

    /// The samples as a [`Table`] when they fit one: at most [`crate::table::MAX_INPUTS`] inputs,
    /// every output specified, no two rows with the same inputs and different outputs. Lines
    /// in errors are 1-based sample numbers; repeated rows are kept once.
    pub fn to_table(&self) -> Result<Table, TableError> {
        if self.num_inputs() > crate::table::MAX_INPUTS {
            return Err(TableError::TooManyInputs {
                file: self.source.clone(),
                count: self.num_inputs(),
                max: crate::table::MAX_INPUTS,
            });
        }
        if self.num_outputs() > crate::table::MAX_OUTPUTS {
            return Err(TableError::TooManyOutputs {
                file: self.source.clone(),
                count: self.num_outputs(),
                max: crate::table::MAX_OUTPUTS,
            });
        }
        let mut rows: Vec<Row> = Vec::with_capacity(self.rows);
        let mut first: HashMap<u64, usize> = HashMap::new();
        for r in 0..self.rows {
            let inputs = (0..self.num_inputs()).fold(0u64, |acc, i| acc | (self.input(r, i) as u64) << i);
            let mut outputs = 0u64;
            for j in 0..self.num_outputs() {
                match self.output(r, j) {
                    Some(v) => outputs |= (v as u64) << j,
                    None => {
                        return Err(TableError::Pla {
                            file: self.source.clone(),
                            line: r + 1,
                            message: format!(
                                "output '{}' is unspecified on sample {}; a truth table needs every output",
                                self.output_names[j],
                                r + 1
                            ),
                        })
                    }
                }
            }
            if let Some(&p) = first.get(&inputs) {
                if rows[p].outputs != outputs {
                    let j = (rows[p].outputs ^ outputs).trailing_zeros() as usize;
                    return Err(TableError::Contradiction {
                        file: self.source.clone(),
                        first_line: p + 1,
                        second_line: r + 1,
                        column: self.output_names[j].clone(),
                    });
                }
                continue;
            }
            first.insert(inputs, rows.len());
            rows.push(Row {
                inputs,
                outputs,
                line: Some(r + 1),
            });
        }
        Ok(Table::from_rows(
            &self.source,
            self.input_names.clone(),
            self.output_names.clone(),
            rows,
        ))
    }
}
