//! BLIF (Berkeley Logic Interchange Format) for combinational logic, the
//! subset ABC reads and writes for a flat network:
//!
//! ```text
//! .model adder
//! .inputs a b \
//!     cin
//! .outputs s
//! .names a b t      # one single-output cover per signal
//! 10 1
//! 01 1
//! .names t cin s
//! 1- 1
//! -1 1
//! .end
//! ```
//!
//! A `.names in… out` block is a sum of products: each row is a cube over
//! the inputs (`1`, `0`, or `-` for don't care) and an output value. Rows
//! ending in `1` list the on-set, rows ending in `0` the off-set (the
//! function is then the complement of their OR); a block without rows is
//! constant 0, and `.names x` with a single row `1` is constant 1. `\` at
//! the end of a line continues it, `#` starts a comment. Blocks may appear
//! in any order; the reader sorts them without recursion and reports a
//! cycle by naming a signal on it.
//!
//! `.latch`, `.subckt`, `.gate` and other sequential or hierarchical
//! constructs are rejected with a clear error.

use std::collections::HashMap;
use std::path::Path;

use thiserror::Error;

use crate::aig::{lit_is_complement, lit_not, lit_var, Aig, AigError, Lit, FALSE};

/// What is wrong at a place in a BLIF file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BlifErrorKind {
    /// A construct outside the combinational subset.
    #[error("{0}")]
    Unsupported(String),
    /// A directive this reader does not know.
    #[error("unknown directive '{0}'")]
    UnknownDirective(String),
    /// A signal read by a cover or listed as an output that nothing defines.
    #[error("signal '{0}' is used but never defined")]
    Undefined(String),
    /// A signal defined twice (two covers, or a cover for an input).
    #[error("signal '{0}' is defined twice")]
    Redefined(String),
    /// Covers that depend on themselves.
    #[error("combinational cycle through signal '{0}'")]
    Cycle(String),
    /// Any other malformed line.
    #[error("{0}")]
    Syntax(String),
    /// Building the graph failed.
    #[error(transparent)]
    Aig(#[from] AigError),
}

/// A BLIF reading or writing error.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BlifError {
    /// A problem at a line of a file.
    #[error("{file}: line {line}: {kind}")]
    Parse {
        /// File name as given to the reader.
        file: String,
        /// 1-based line (the first line of a continued line).
        line: usize,
        /// What is wrong.
        kind: BlifErrorKind,
    },
    /// Reading or writing the file failed.
    #[error("{file}: {message}")]
    Io {
        /// File name.
        file: String,
        /// The I/O error.
        message: String,
    },
    /// The graph cannot be written as BLIF (e.g. a name with a space).
    #[error("cannot write BLIF: {0}")]
    Write(String),
}

/// One `.names` block.
struct Cover<'a> {
    fanins: Vec<&'a str>,
    output: &'a str,
    /// Cubes (one char per fanin) and whether the row is in the on-set.
    rows: Vec<(&'a str, bool, usize)>,
    line: usize,
}

#[derive(Clone, Copy)]
enum Def {
    Input(usize),
    Cover(usize),
}

/// Reads a BLIF model from text; `file` is only used in error messages.
/// The result has no dangling AND nodes.
pub fn read(file: &str, text: &str) -> Result<Aig, BlifError> {
    let err = |line: usize, kind: BlifErrorKind| BlifError::Parse {
        file: file.to_string(),
        line,
        kind,
    };
    let lines = logical_lines(text);
    let mut model_seen = false;
    let mut ended = false;
    let mut inputs: Vec<(&str, usize)> = Vec::new();
    let mut outputs: Vec<(&str, usize)> = Vec::new();
    let mut covers: Vec<Cover> = Vec::new();
    let mut in_cover = false;
    for (line, toks) in &lines {
        let line = *line;
        if ended {
            return Err(err(
                line,
                BlifErrorKind::Unsupported("text after .end (only one model per file is supported)".to_string()),
            ));
        }
        let head = toks[0];
        if !head.starts_with('.') {
            let cover = match covers.last_mut() {
                Some(c) if in_cover => c,
                _ => {
                    return Err(err(
                        line,
                        BlifErrorKind::Syntax(format!("cover row '{}' outside a .names block", toks.join(" "))),
                    ))
                }
            };
            let (cube, value) = match (cover.fanins.len(), toks.as_slice()) {
                (0, [v]) => ("", *v),
                (n, [cube, v]) if n > 0 => (*cube, *v),
                (n, _) => {
                    let want = if n == 0 {
                        "a single output value"
                    } else {
                        "a cube and an output value"
                    };
                    return Err(err(
                        line,
                        BlifErrorKind::Syntax(format!("cover row '{}' for '{}': expected {want}", toks.join(" "), cover.output)),
                    ));
                }
            };
            if cube.len() != cover.fanins.len() || !cube.bytes().all(|b| matches!(b, b'0' | b'1' | b'-')) {
                return Err(err(
                    line,
                    BlifErrorKind::Syntax(format!(
                        "cube '{cube}' for '{}' must have {} characters from 0, 1 and -",
                        cover.output,
                        cover.fanins.len()
                    )),
                ));
            }
            let on = match value {
                "1" => true,
                "0" => false,
                _ => return Err(err(line, BlifErrorKind::Syntax(format!("output value '{value}' must be 0 or 1")))),
            };
            if let Some(&(_, first, _)) = cover.rows.first() {
                if first != on {
                    return Err(err(
                        line,
                        BlifErrorKind::Syntax(format!("the cover of '{}' mixes on-set (1) and off-set (0) rows", cover.output)),
                    ));
                }
            }
            cover.rows.push((cube, on, line));
            continue;
        }
        in_cover = false;
        match head {
            ".model" => {
                if model_seen {
                    return Err(err(
                        line,
                        BlifErrorKind::Unsupported("a second .model (only one model per file is supported)".to_string()),
                    ));
                }
                model_seen = true;
            }
            ".inputs" => inputs.extend(toks[1..].iter().map(|&n| (n, line))),
            ".outputs" => outputs.extend(toks[1..].iter().map(|&n| (n, line))),
            ".names" => {
                let Some((&output, fanins)) = toks[1..].split_last() else {
                    return Err(err(
                        line,
                        BlifErrorKind::Syntax(".names needs at least an output signal".to_string()),
                    ));
                };
                covers.push(Cover {
                    fanins: fanins.to_vec(),
                    output,
                    rows: Vec::new(),
                    line,
                });
                in_cover = true;
            }
            ".end" => ended = true,
            ".latch" | ".mlatch" => return Err(err(line, BlifErrorKind::Unsupported(format!("latches are not supported ({head})")))),
            ".subckt" | ".search" => {
                return Err(err(
                    line,
                    BlifErrorKind::Unsupported(format!("hierarchical models are not supported ({head})")),
                ));
            }
            ".gate" => {
                return Err(err(
                    line,
                    BlifErrorKind::Unsupported("library gates are not supported (.gate)".to_string()),
                ))
            }
            ".exdc" => {
                return Err(err(
                    line,
                    BlifErrorKind::Unsupported("external don't-care networks are not supported (.exdc)".to_string()),
                ))
            }
            ".clock" => {
                return Err(err(
                    line,
                    BlifErrorKind::Unsupported("clocks are not supported (.clock)".to_string()),
                ))
            }
            other => return Err(err(line, BlifErrorKind::UnknownDirective(other.to_string()))),
        }
    }

    let mut defs: HashMap<&str, Def> = HashMap::with_capacity(inputs.len() + covers.len());
    for (k, &(name, line)) in inputs.iter().enumerate() {
        if defs.insert(name, Def::Input(k)).is_some() {
            return Err(err(line, BlifErrorKind::Redefined(name.to_string())));
        }
    }
    for (k, c) in covers.iter().enumerate() {
        if defs.insert(c.output, Def::Cover(k)).is_some() {
            return Err(err(c.line, BlifErrorKind::Redefined(c.output.to_string())));
        }
    }
    let names: Vec<&str> = inputs.iter().map(|&(n, _)| n).collect();
    let mut aig = Aig::with_inputs(&names).map_err(|e| err(1, e.into()))?;
    let lits = build_covers(&mut aig, &defs, &covers).map_err(|(line, kind)| err(line, kind))?;
    let mut seen_out: HashMap<&str, ()> = HashMap::new();
    for &(name, line) in &outputs {
        if seen_out.insert(name, ()).is_some() {
            return Err(err(line, BlifErrorKind::Syntax(format!("output '{name}' is listed twice"))));
        }
        let lit = match defs.get(name) {
            Some(&Def::Input(i)) => 2 * (i as Lit + 1),
            Some(&Def::Cover(k)) => lits[k],
            None => return Err(err(line, BlifErrorKind::Undefined(name.to_string()))),
        };
        aig.add_output(name, lit).map_err(|e| err(line, e.into()))?;
    }
    Ok(aig.cleanup())
}

/// Builds every cover's function in dependency order using an explicit
/// stack; returns one literal per cover, or the line and kind of an error.
fn build_covers(aig: &mut Aig, defs: &HashMap<&str, Def>, covers: &[Cover]) -> Result<Vec<Lit>, (usize, BlifErrorKind)> {
    const NEW: u8 = 0;
    const ACTIVE: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; covers.len()];
    let mut lits = vec![FALSE; covers.len()];
    let mut stack: Vec<usize> = Vec::new();
    let mut fanin_lits: Vec<Lit> = Vec::new();
    for root in 0..covers.len() {
        if state[root] != NEW {
            continue;
        }
        state[root] = ACTIVE;
        stack.push(root);
        while let Some(&k) = stack.last() {
            let c = &covers[k];
            fanin_lits.clear();
            let mut pending = None;
            for &name in &c.fanins {
                match defs.get(name) {
                    None => return Err((c.line, BlifErrorKind::Undefined(name.to_string()))),
                    Some(&Def::Input(i)) => fanin_lits.push(2 * (i as Lit + 1)),
                    Some(&Def::Cover(j)) => match state[j] {
                        DONE => fanin_lits.push(lits[j]),
                        ACTIVE => return Err((covers[j].line, BlifErrorKind::Cycle(covers[j].output.to_string()))),
                        _ => {
                            pending = Some(j);
                            break;
                        }
                    },
                }
            }
            if let Some(j) = pending {
                state[j] = ACTIVE;
                stack.push(j);
                continue;
            }
            lits[k] = cover_lit(aig, c, &fanin_lits).map_err(|e| (c.line, e.into()))?;
            state[k] = DONE;
            stack.pop();
        }
    }
    Ok(lits)
}

/// The OR of the cover's cubes (each a balanced AND of its literals),
/// complemented for an off-set cover.
fn cover_lit(aig: &mut Aig, c: &Cover, fanins: &[Lit]) -> Result<Lit, AigError> {
    let mut cubes = Vec::with_capacity(c.rows.len());
    let mut lits = Vec::with_capacity(fanins.len());
    for (cube, _, _) in &c.rows {
        lits.clear();
        for (ch, &f) in cube.bytes().zip(fanins) {
            match ch {
                b'1' => lits.push(f),
                b'0' => lits.push(lit_not(f)),
                _ => {}
            }
        }
        cubes.push(aig.and_all(&lits)?);
    }
    let sum = aig.or_all(&cubes)?;
    let off_set = c.rows.first().is_some_and(|&(_, on, _)| !on);
    Ok(if off_set { lit_not(sum) } else { sum })
}

/// Joins `\` continuations and drops comments and blank lines; yields each
/// logical line's first physical line number and its tokens.
fn logical_lines(text: &str) -> Vec<(usize, Vec<&str>)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, Vec<&str>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let body = raw.split('#').next().unwrap_or("").trim_end();
        let (body, continues) = match body.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (body, false),
        };
        let entry = pending.get_or_insert_with(|| (i + 1, Vec::new()));
        entry.1.extend(body.split_whitespace());
        if !continues {
            if let Some(done) = pending.take() {
                if !done.1.is_empty() {
                    out.push(done);
                }
            }
        }
    }
    if let Some(done) = pending.filter(|d| !d.1.is_empty()) {
        out.push(done);
    }
    out
}

/// Reads a BLIF file from disk.
pub fn read_file(path: impl AsRef<Path>) -> Result<Aig, BlifError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| BlifError::Io {
        file: name.clone(),
        message: e.to_string(),
    })?;
    read(&name, &text)
}

/// Writes `aig` as BLIF to `path` under model name `model`.
pub fn write_file(aig: &Aig, path: impl AsRef<Path>, model: &str) -> Result<(), BlifError> {
    let path = path.as_ref();
    let text = write(aig, model)?;
    std::fs::write(path, text).map_err(|e| BlifError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A name BLIF can carry: one token, not a directive, no comment or
/// continuation characters.
fn check_name(kind: &str, name: &str) -> Result<(), BlifError> {
    let bad = name.is_empty() || name.starts_with('.') || name.chars().any(|c| c.is_whitespace() || c == '#' || c == '\\');
    if bad {
        return Err(BlifError::Write(format!(
            "{kind} name {name:?} is not a BLIF identifier (empty, leading '.', whitespace, '#' or '\\')"
        )));
    }
    Ok(())
}

/// The BLIF text of `aig`: one `.names` per AND node (`11 1`, a complemented
/// fanin written as `0`), then one buffer (`1 1`) or inverter (`0 1`) per
/// output, or a constant cover. AND nodes are called `n<var>` (with a prefix
/// that cannot clash with input or output names).
pub fn write(aig: &Aig, model: &str) -> Result<String, BlifError> {
    check_name("model", model)?;
    let in_names = aig.input_names();
    let mut taken: HashMap<&str, usize> = HashMap::with_capacity(in_names.len());
    for (i, n) in in_names.iter().enumerate() {
        check_name("input", n)?;
        if taken.insert(n, i).is_some() {
            return Err(BlifError::Write(format!("two inputs are named '{n}'")));
        }
    }
    let mut out_seen: HashMap<&str, ()> = HashMap::new();
    for (n, lit) in aig.outputs() {
        check_name("output", n)?;
        if out_seen.insert(n, ()).is_some() {
            return Err(BlifError::Write(format!("two outputs are named '{n}'")));
        }
        // An output may share an input's name only if it is that input.
        if let Some(&i) = taken.get(n.as_str()) {
            if aig.input_lit(i) != Some(*lit) {
                return Err(BlifError::Write(format!(
                    "output '{n}' has the name of an input but a different function"
                )));
            }
        }
    }
    let prefix = node_prefix(aig, &in_names);
    let name_of = |var: u32| -> String {
        if aig.is_input(var) {
            in_names[(var - 1) as usize].clone()
        } else {
            format!("{prefix}{var}")
        }
    };

    let mut s = String::new();
    s.push_str("# written by kiln\n");
    s.push_str(&format!(".model {model}\n"));
    push_wrapped(&mut s, ".inputs", in_names.iter().map(String::as_str));
    push_wrapped(&mut s, ".outputs", aig.outputs().iter().map(|(n, _)| n.as_str()));
    let first = aig.num_inputs() as u32 + 1;
    for (k, &(a, b)) in aig.ands().iter().enumerate() {
        let bit = |l: Lit| if lit_is_complement(l) { '0' } else { '1' };
        s.push_str(&format!(
            ".names {} {} {}\n{}{} 1\n",
            name_of(lit_var(a)),
            name_of(lit_var(b)),
            name_of(first + k as u32),
            bit(a),
            bit(b)
        ));
    }
    for (n, lit) in aig.outputs() {
        let var = lit_var(*lit);
        if var == 0 {
            s.push_str(&format!(".names {n}\n"));
            if lit_is_complement(*lit) {
                s.push_str("1\n");
            }
        } else if taken.contains_key(n.as_str()) {
            // The output is the input of the same name: already a signal.
        } else {
            let row = if lit_is_complement(*lit) { "0 1" } else { "1 1" };
            s.push_str(&format!(".names {} {n}\n{row}\n", name_of(var)));
        }
    }
    s.push_str(".end\n");
    Ok(s)
}

/// `n`, or `n_`, `n__`, … : the first prefix such that no input or output
/// name is the prefix followed by digits.
fn node_prefix(aig: &Aig, in_names: &[String]) -> String {
    let clashes = |p: &str| {
        in_names.iter().chain(aig.outputs().iter().map(|(n, _)| n)).any(|n| {
            n.strip_prefix(p)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()))
        })
    };
    let mut p = String::from("n");
    while clashes(&p) {
        p.push('_');
    }
    p
}

/// Writes a directive and its names, continuing long lines with `\`.
fn push_wrapped<'a>(s: &mut String, directive: &str, names: impl Iterator<Item = &'a str>) {
    s.push_str(directive);
    let mut width = directive.len();
    for n in names {
        if width + 1 + n.len() > 78 && width > directive.len() {
            s.push_str(" \\\n ");
            width = 1;
        }
        s.push(' ');
        s.push_str(n);
        width += 1 + n.len();
    }
    s.push('\n');
}
