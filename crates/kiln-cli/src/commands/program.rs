//! Programs as files: AIGER (binary or ASCII), BLIF, kiln's grammar and kiln's JSON, told apart by
//! content, all loaded as an And-Inverter Graph and evaluated on a sample set.

use std::path::Path;

use kiln_logic::{Aig, Circuit, SampleSet};

/// The file formats a program is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramFormat {
    /// AIGER, binary (`aig`) or ASCII (`aag`) header.
    Aiger,
    /// Berkeley Logic Interchange Format.
    Blif,
    /// The JSON object `kiln learn --json` prints.
    Json,
    /// kiln's program grammar (`Y = X1 AND X2`).
    Grammar,
}

/// Tells the format from the first bytes that are not blank or a comment.
pub fn detect(bytes: &[u8]) -> ProgramFormat {
    if bytes.starts_with(b"aig ") || bytes.starts_with(b"aag ") {
        return ProgramFormat::Aiger;
    }
    let first = bytes
        .split(|&b| b == b'\n' || b == b'\r')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && !l.starts_with(b"#"));
    match first {
        Some(l) if l.starts_with(b"{") => ProgramFormat::Json,
        Some(l) if l.starts_with(b".") => ProgramFormat::Blif,
        _ => ProgramFormat::Grammar,
    }
}

/// A program as read: gate circuits from the grammar and JSON, AIGs from AIGER and BLIF.
enum Program {
    Gates(Circuit),
    Aig(Aig),
}

/// Most inputs a program may have. A binary AIGER header alone can claim two billion inputs (they
/// take no bytes in the file), and every consumer (names, simulation columns, diagrams) spends
/// memory per input; the largest IWLS 2020 programs have a few hundred.
pub const MAX_PROGRAM_INPUTS: usize = 1 << 20;

/// Reads the program at `path`; `names` (inputs, outputs) name a grammar program's columns.
/// Programs without outputs, or with more than [`MAX_PROGRAM_INPUTS`] inputs, are refused.
fn read(path: &Path, names: Option<(&[String], &[String])>) -> Result<Program, String> {
    let file = path.display().to_string();
    let program = read_any(path, &file, names)?;
    let (inputs, outputs) = match &program {
        Program::Gates(c) => (c.inputs().len(), c.outputs().len()),
        Program::Aig(a) => (a.num_inputs(), a.outputs().len()),
    };
    if inputs > MAX_PROGRAM_INPUTS {
        return Err(format!(
            "{file}: the program has {inputs} inputs; kiln reads programs of at most {MAX_PROGRAM_INPUTS}"
        ));
    }
    if outputs == 0 {
        return Err(format!("{file}: the program has no outputs"));
    }
    Ok(program)
}

fn read_any(path: &Path, file: &str, names: Option<(&[String], &[String])>) -> Result<Program, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{file}: cannot read file: {e}"))?;
    let text = || std::str::from_utf8(&bytes).map_err(|_| format!("{file}: not valid UTF-8 text"));
    Ok(match detect(&bytes) {
        ProgramFormat::Aiger => Program::Aig(kiln_logic::aiger::read(file, &bytes).map_err(|e| e.to_string())?),
        ProgramFormat::Blif => Program::Aig(kiln_logic::blif::read(file, text()?).map_err(|e| e.to_string())?),
        ProgramFormat::Json => {
            let doc: serde_json::Value = serde_json::from_str(text()?).map_err(|e| format!("{file}: invalid JSON: {e}"))?;
            let names = |key: &str| -> Result<Vec<String>, String> {
                doc.get(key)
                    .and_then(|v| v.as_array())
                    .and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| format!("{file}: JSON has no \"{key}\" list of names"))
            };
            let expression = doc
                .get("expression")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("{file}: JSON has no \"expression\" string"))?;
            Program::Gates(kiln_logic::parse(expression, &names("inputs")?, &names("outputs")?).map_err(|e| format!("{file}: {e}"))?)
        }
        ProgramFormat::Grammar => {
            let (inputs, outputs) =
                names.ok_or_else(|| format!("{file}: a program in kiln's grammar does not name its inputs; give --table to name them"))?;
            Program::Gates(kiln_logic::parse(text()?, inputs, outputs).map_err(|e| format!("{file}: {e}"))?)
        }
    })
}

/// Reads a program as an AIG, naming a grammar program's inputs and outputs after `data`.
pub fn load(path: &Path, data: &SampleSet) -> Result<Aig, String> {
    match read(path, Some((data.input_names(), data.output_names())))? {
        Program::Aig(a) => Ok(a),
        Program::Gates(c) => Aig::from_circuit(&c).map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// Reads a program as a gate circuit: grammar and JSON programs keep their gates (XOR stays one
/// gate); AIGER and BLIF come back as AND-like gates over their AIG.
pub fn load_circuit(path: &Path, names: Option<(&[String], &[String])>) -> Result<Circuit, String> {
    match read(path, names)? {
        Program::Gates(c) => Ok(c),
        Program::Aig(a) => a.to_circuit().map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// Columns of `data` feeding each program input, and the data output each program output is
/// judged against: by name where the program names all of them after the data's columns, by
/// position where the counts agree.
fn align(aig: &Aig, data: &SampleSet) -> Result<(Vec<usize>, Vec<usize>), String> {
    let by_name = |names: Vec<Option<&str>>, wanted: &[String]| -> Option<Vec<usize>> {
        names
            .into_iter()
            .map(|n| n.and_then(|n| wanted.iter().position(|w| w == n)))
            .collect()
    };
    let in_names: Vec<Option<&str>> = (0..aig.num_inputs()).map(|i| aig.explicit_input_name(i)).collect();
    let inputs = match by_name(in_names, data.input_names()) {
        Some(v) => v,
        None if aig.num_inputs() == data.num_inputs() => (0..data.num_inputs()).collect(),
        None => {
            return Err(format!(
                "the program has {} inputs and the data {}, and their names do not match",
                aig.num_inputs(),
                data.num_inputs()
            ))
        }
    };
    let out_names: Vec<Option<&str>> = aig.outputs().iter().map(|(n, _)| Some(n.as_str())).collect();
    let outputs = match by_name(out_names, data.output_names()) {
        Some(v) => v,
        None if aig.outputs().len() == data.num_outputs() => (0..data.num_outputs()).collect(),
        None => {
            return Err(format!(
                "the program has {} outputs and the data {}, and their names do not match",
                aig.outputs().len(),
                data.num_outputs()
            ))
        }
    };
    Ok((inputs, outputs))
}

/// Accuracy of `aig` on `data`, over the (row, output) pairs the data specifies; data outputs the
/// program does not compute count as wrong.
pub fn accuracy(aig: &Aig, data: &SampleSet) -> Result<kiln_logic::Accuracy, String> {
    let (inputs, outputs) = align(aig, data)?;
    let words = data.words();
    let cols = data.input_words();
    let feed: Vec<Vec<u64>> = inputs.iter().map(|&i| cols[i].clone()).collect();
    let sim = aig.simulate(&feed, words).map_err(|e| e.to_string())?;
    let mut predicted = vec![vec![0u64; words]; data.num_outputs()];
    let mut computed = vec![false; data.num_outputs()];
    for (k, &j) in outputs.iter().enumerate() {
        predicted[j] = sim[k].clone();
        computed[j] = true;
    }
    let mut acc = data.accuracy(&predicted);
    // An output the program lacks would otherwise be scored as constant 0.
    for (j, done) in computed.iter().enumerate() {
        if !done {
            let care = &data.care_columns()[j];
            let right = care
                .iter()
                .zip(&data.output_columns()[j])
                .map(|(c, y)| u64::from((c & !y).count_ones()))
                .sum::<u64>();
            acc.correct -= right;
        }
    }
    Ok(acc)
}
