//! AIGER 1.9, combinational subset: binary `.aig` and ASCII `.aag`.
//!
//! A file starts with `aig M I L O A` (binary) or `aag M I L O A` (ASCII),
//! optionally followed by the 1.9 counts `B C J F`, which must be zero here;
//! `L` must be 0 too (latches are not supported). Then come the inputs
//! (implicit in binary, one literal per line in ASCII), one output literal
//! per line, the AND gates (three literals per line in ASCII; in binary two
//! LEB128-style deltas per gate, `lhs - rhs0` and `rhs0 - rhs1`, with the
//! gate's own literal implied by its position), an optional symbol table
//! (`i0 name`, `o0 name`) and an optional comment section (a line `c`, then
//! free text to the end of the file).
//!
//! The readers treat the file as untrusted: every problem is an
//! [`AigerError`] naming the file, where (byte offset for binary files, line
//! for ASCII ones) and what is wrong; nothing panics, nothing recurses, and
//! claimed counts are checked against the bytes left in the file before
//! anything is reserved for them. Binary inputs cost no bytes in the file,
//! so they cost no memory either ([`Aig::add_unnamed_inputs`] is O(1)).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use thiserror::Error;

use crate::aig::{Aig, AigError, Lit, FALSE, MAX_VAR};

/// Where in a file an error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Byte offset (binary files).
    Byte(usize),
    /// 1-based line (ASCII files).
    Line(usize),
    /// The file as a whole (I/O errors, writing).
    File,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Byte(b) => write!(f, "byte {b}"),
            Location::Line(l) => write!(f, "line {l}"),
            Location::File => f.write_str("whole file"),
        }
    }
}

/// What is wrong with an AIGER file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AigerErrorKind {
    /// The first line is not a valid header.
    #[error("bad header: {0}")]
    BadHeader(String),
    /// The header declares latches.
    #[error("latches are not supported (the header declares {0})")]
    Latches(u64),
    /// The header declares AIGER 1.9 properties this reader does not handle.
    #[error("{0} are not supported")]
    Unsupported(&'static str),
    /// `M` (or `I + L + A`) cannot be addressed with 32-bit literals.
    #[error("M overflow: {0}")]
    MOverflow(String),
    /// More inputs than [`MAX_INPUTS`].
    #[error("the header declares {0} inputs; at most {max} are read (a binary file's inputs take no bytes, but every use of the circuit spends memory on each)", max = MAX_INPUTS)]
    TooManyInputs(u64),
    /// The header claims more items than the rest of the file can hold.
    #[error("the header claims {claimed}, needing at least {needed} bytes, but only {left} bytes remain")]
    CountsExceedFile {
        /// What the header claims, in words.
        claimed: String,
        /// Minimum bytes those items need.
        needed: u64,
        /// Bytes left after the header.
        left: usize,
    },
    /// A literal larger than `2M + 1` (or otherwise invalid where it stands).
    #[error("literal {lit} out of range (the largest literal allowed here is {max})")]
    LiteralOutOfRange {
        /// The literal found.
        lit: u64,
        /// The largest literal allowed.
        max: u64,
    },
    /// A binary AND gate whose fanins are not smaller than its own literal.
    #[error("AND gate {lhs} is not in topological order: {detail}")]
    NotTopological {
        /// The gate's literal.
        lhs: u64,
        /// What is wrong.
        detail: String,
    },
    /// The file ends inside a delta of a binary AND gate.
    #[error("truncated delta in AND gate {0}")]
    TruncatedDelta(u64),
    /// A delta needs more than 32 bits.
    #[error("delta in AND gate {0} does not fit in 32 bits")]
    DeltaOverflow(u64),
    /// A literal refers to a variable no input or AND gate defines.
    #[error("literal {0} is used but never defined")]
    Undefined(u64),
    /// A variable is defined twice (ASCII).
    #[error("variable of literal {0} is defined twice")]
    Redefined(u64),
    /// ASCII AND gates that depend on themselves.
    #[error("combinational cycle through AND gate {0}")]
    Cycle(u64),
    /// The file ends before the sections the header announced.
    #[error("unexpected end of file: {0}")]
    UnexpectedEof(String),
    /// Any other malformed line.
    #[error("{0}")]
    Syntax(String),
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(String),
    /// The graph cannot be written (e.g. a name containing a newline).
    #[error("cannot write: {0}")]
    Write(String),
    /// Building the graph failed.
    #[error(transparent)]
    Aig(#[from] AigError),
}

/// An AIGER error: the file, the place in it, and what is wrong. Displays
/// as `file: byte N: problem` or `file: line N: problem` (just
/// `file: problem` for whole-file errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AigerError {
    /// File name as given to the reader or writer.
    pub file: String,
    /// Where the problem is.
    pub location: Location,
    /// What the problem is.
    pub kind: AigerErrorKind,
}

impl fmt::Display for AigerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Location::File => write!(f, "{}: {}", self.file, self.kind),
            at => write!(f, "{}: {at}: {}", self.file, self.kind),
        }
    }
}

impl std::error::Error for AigerError {}

/// Most inputs a file may declare. A 36-byte binary file can claim 2^31 inputs, which then cost
/// gigabytes in names and simulation columns; the largest IWLS 2020 circuits have a few hundred.
pub const MAX_INPUTS: u64 = 1 << 20;

/// Reads an AIGER file from memory, detecting binary or ASCII by its header.
/// `file` is only used in error messages.
pub fn read(file: &str, bytes: &[u8]) -> Result<Aig, AigerError> {
    read_with_comments(file, bytes).map(|(aig, _)| aig)
}

/// Like [`read`], also returning the comment section's lines.
pub fn read_with_comments(file: &str, bytes: &[u8]) -> Result<(Aig, Vec<String>), AigerError> {
    let mut r = Reader {
        file,
        bytes,
        pos: 0,
        line: 1,
        // Anything that is not ASCII AIGER is reported by byte offset.
        binary: !bytes.starts_with(b"aag"),
    };
    r.read()
}

/// Reads an AIGER file from disk.
pub fn read_file(path: impl AsRef<Path>) -> Result<Aig, AigerError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| AigerError {
        file: name.clone(),
        location: Location::File,
        kind: AigerErrorKind::Io(e.to_string()),
    })?;
    read(&name, &bytes)
}

/// The bytes [`write_file`] writes to `path`: ASCII if the extension is `aag`, binary otherwise.
/// For a caller that checks them (by [`read`]) before they reach the disk.
pub fn bytes_for_path(aig: &Aig, path: &Path, comments: &[&str]) -> Result<Vec<u8>, AigerError> {
    let ascii = path.extension().is_some_and(|e| e == "aag");
    if ascii {
        write_ascii(aig, comments).map(String::into_bytes)
    } else {
        write_binary(aig, comments)
    }
    .map_err(|mut e| {
        e.file = path.display().to_string();
        e
    })
}

/// Writes `aig` to `path`: ASCII if the extension is `aag`, binary otherwise.
pub fn write_file(aig: &Aig, path: impl AsRef<Path>, comments: &[&str]) -> Result<(), AigerError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = bytes_for_path(aig, path, comments)?;
    std::fs::write(path, bytes).map_err(|e| AigerError {
        file: name,
        location: Location::File,
        kind: AigerErrorKind::Io(e.to_string()),
    })
}

/// The binary `.aig` form of `aig` (dangling nodes included), with a symbol
/// table for named inputs and outputs and the given comment lines.
pub fn write_binary(aig: &Aig, comments: &[&str]) -> Result<Vec<u8>, AigerError> {
    let mut out = header("aig", aig).into_bytes();
    for (_, lit) in aig.outputs() {
        out.extend_from_slice(format!("{lit}\n").as_bytes());
    }
    let first = aig.num_inputs() as u64 + 1;
    for (k, &(a, b)) in aig.ands().iter().enumerate() {
        // The node's literal is implied by its position; `Aig` keeps the
        // larger fanin first and fanins below the node, so both deltas are
        // non-negative and the first is positive.
        let lhs = 2 * (first + k as u64);
        encode_delta(&mut out, lhs - a as u64);
        encode_delta(&mut out, (a - b) as u64);
    }
    out.extend_from_slice(trailer(aig, comments)?.as_bytes());
    Ok(out)
}

/// The ASCII `.aag` form of `aig`, laid out like the binary form (inputs
/// `2, 4, …`, AND gates in order) so the two convert line for line.
pub fn write_ascii(aig: &Aig, comments: &[&str]) -> Result<String, AigerError> {
    let mut out = header("aag", aig);
    for i in 0..aig.num_inputs() {
        out.push_str(&format!("{}\n", 2 * (i as u64 + 1)));
    }
    for (_, lit) in aig.outputs() {
        out.push_str(&format!("{lit}\n"));
    }
    let first = aig.num_inputs() as u64 + 1;
    for (k, &(a, b)) in aig.ands().iter().enumerate() {
        out.push_str(&format!("{} {a} {b}\n", 2 * (first + k as u64)));
    }
    out.push_str(&trailer(aig, comments)?);
    Ok(out)
}

fn header(kind: &str, aig: &Aig) -> String {
    format!(
        "{kind} {} {} 0 {} {}\n",
        aig.max_var(),
        aig.num_inputs(),
        aig.outputs().len(),
        aig.num_ands()
    )
}

fn write_error(what: String) -> AigerError {
    AigerError {
        file: "<output>".to_string(),
        location: Location::File,
        kind: AigerErrorKind::Write(what),
    }
}

/// Symbol table and comment section, shared by both writers.
fn trailer(aig: &Aig, comments: &[&str]) -> Result<String, AigerError> {
    let mut out = String::new();
    let mut symbol = |kind: char, pos: usize, name: &str| -> Result<(), AigerError> {
        // A symbol runs to the end of its line, so only a newline breaks it;
        // an empty name is simply left out.
        if name.contains('\n') {
            return Err(write_error(format!("name {name:?} contains a newline")));
        }
        if !name.is_empty() {
            out.push_str(&format!("{kind}{pos} {name}\n"));
        }
        Ok(())
    };
    for i in 0..aig.num_inputs() {
        if let Some(name) = aig.explicit_input_name(i) {
            symbol('i', i, name)?;
        }
    }
    for (k, (name, _)) in aig.outputs().iter().enumerate() {
        symbol('o', k, name)?;
    }
    if !comments.is_empty() {
        out.push_str("c\n");
        for c in comments {
            out.push_str(c);
            out.push('\n');
        }
    }
    Ok(out)
}

fn encode_delta(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x & 0x7f) as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A variable definition in an ASCII file.
#[derive(Clone, Copy)]
enum Def {
    Input(u32),
    And(usize),
}

struct Reader<'a> {
    file: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    binary: bool,
}

/// A line and where it started.
struct Line<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    fn err_at(&self, pos: usize, line: usize, kind: AigerErrorKind) -> AigerError {
        AigerError {
            file: self.file.to_string(),
            location: if self.binary { Location::Byte(pos) } else { Location::Line(line) },
            kind,
        }
    }

    fn err_line(&self, l: &Line, kind: AigerErrorKind) -> AigerError {
        self.err_at(l.pos, l.line, kind)
    }

    fn err_here(&self, kind: AigerErrorKind) -> AigerError {
        self.err_at(self.pos, self.line, kind)
    }

    /// The next line without its newline; a last line without one is
    /// accepted. `None` at end of file.
    fn next_line(&mut self) -> Option<Line<'a>> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let l = Line {
            text: &rest[..len],
            pos: self.pos,
            line: self.line,
        };
        self.pos += (len + 1).min(rest.len());
        self.line += 1;
        Some(l)
    }

    fn expect_line(&mut self, what: &str) -> Result<Line<'a>, AigerError> {
        self.next_line()
            .ok_or_else(|| self.err_here(AigerErrorKind::UnexpectedEof(format!("expected {what}"))))
    }

    /// Parses the whitespace-separated decimal numbers of a line.
    fn numbers(&self, l: &Line, what: &str) -> Result<Vec<u64>, AigerError> {
        l.text
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| parse_u64(t).ok_or_else(|| self.err_line(l, AigerErrorKind::Syntax(format!("{what}: '{}' is not a number", show(t))))))
            .collect()
    }

    fn numbers_exact(&self, l: &Line, n: usize, what: &str) -> Result<Vec<u64>, AigerError> {
        let v = self.numbers(l, what)?;
        if v.len() != n {
            return Err(self.err_line(
                l,
                AigerErrorKind::Syntax(format!("{what}: expected {n} number(s), found '{}'", show(l.text))),
            ));
        }
        Ok(v)
    }

    fn read(&mut self) -> Result<(Aig, Vec<String>), AigerError> {
        let h = self.header()?;
        let mut aig = if self.binary { self.binary_body(&h)? } else { self.ascii_body(&h)? };
        let comments = self.symbols(&mut aig, h.i)?;
        Ok((aig, comments))
    }

    fn header(&mut self) -> Result<Header, AigerError> {
        let bad = |r: &Self, msg: String| r.err_at(0, 1, AigerErrorKind::BadHeader(msg));
        if !(self.bytes.starts_with(b"aig ") || self.bytes.starts_with(b"aag ")) {
            let start = &self.bytes[..self.bytes.len().min(16)];
            return Err(bad(
                self,
                format!("expected 'aig' or 'aag' followed by counts, found '{}'", show(start)),
            ));
        }
        let l = self.expect_line("a header")?;
        let toks: Vec<&[u8]> = l.text.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty()).collect();
        let counts: Vec<u64> = toks[1..]
            .iter()
            .map(|t| parse_u64(t).ok_or_else(|| bad(self, format!("'{}' is not a count", show(t)))))
            .collect::<Result<_, _>>()?;
        if !(5..=9).contains(&counts.len()) {
            return Err(bad(
                self,
                format!("expected M I L O A (and optionally B C J F), found {} numbers", counts.len()),
            ));
        }
        let (m, i, l_, o, a) = (counts[0], counts[1], counts[2], counts[3], counts[4]);
        let names = [
            "bad-state properties",
            "invariant constraints",
            "justice properties",
            "fairness constraints",
        ];
        if let Some((_, what)) = counts[5..].iter().zip(names).find(|(&c, _)| c != 0) {
            return Err(self.err_at(0, 1, AigerErrorKind::Unsupported(what)));
        }
        if m > MAX_VAR as u64 {
            return Err(self.err_at(
                0,
                1,
                AigerErrorKind::MOverflow(format!("M = {m} exceeds {MAX_VAR}, the most a 32-bit literal can address")),
            ));
        }
        let sum = i.checked_add(l_).and_then(|s| s.checked_add(a));
        match sum {
            None => return Err(self.err_at(0, 1, AigerErrorKind::MOverflow("I + L + A overflows".to_string()))),
            Some(s) if s > m => {
                return Err(self.err_at(0, 1, AigerErrorKind::MOverflow(format!("I + L + A = {s} exceeds M = {m}"))));
            }
            Some(s) if self.binary && s != m => {
                return Err(bad(
                    self,
                    format!("binary AIGER needs M = I + L + A, but M = {m} and I + L + A = {s}"),
                ));
            }
            _ => {}
        }
        if l_ != 0 {
            return Err(self.err_at(0, 1, AigerErrorKind::Latches(l_)));
        }
        if i > MAX_INPUTS {
            return Err(self.err_at(0, 1, AigerErrorKind::TooManyInputs(i)));
        }
        // All counts now fit in u32 except O, which is bounded by the file
        // length below.
        Ok(Header { m, i, o, a })
    }

    /// Fails unless `bytes_each` bytes per claimed item fit in the rest of
    /// the file; called before anything is reserved for the items.
    fn check_room(&self, claimed: String, needed: u64) -> Result<(), AigerError> {
        let left = self.bytes.len() - self.pos.min(self.bytes.len());
        if needed > left as u64 {
            return Err(self.err_here(AigerErrorKind::CountsExceedFile { claimed, needed, left }));
        }
        Ok(())
    }

    fn output_lits(&mut self, h: &Header) -> Result<Vec<(u64, Line<'a>)>, AigerError> {
        let mut outs = Vec::with_capacity(h.o as usize);
        for k in 0..h.o {
            let l = self.expect_line(&format!("output {k}"))?;
            let lit = self.numbers_exact(&l, 1, &format!("output {k}"))?[0];
            if lit > 2 * h.m + 1 {
                return Err(self.err_line(&l, AigerErrorKind::LiteralOutOfRange { lit, max: 2 * h.m + 1 }));
            }
            outs.push((lit, l));
        }
        Ok(outs)
    }

    fn delta(&mut self, lhs: u64) -> Result<u64, AigerError> {
        let mut x: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.err_here(AigerErrorKind::TruncatedDelta(lhs)));
            };
            if shift > 28 {
                return Err(self.err_here(AigerErrorKind::DeltaOverflow(lhs)));
            }
            self.pos += 1;
            x |= ((b & 0x7f) as u64) << shift;
            if x > u32::MAX as u64 {
                return Err(self.err_at(self.pos - 1, self.line, AigerErrorKind::DeltaOverflow(lhs)));
            }
            if b & 0x80 == 0 {
                return Ok(x);
            }
            shift += 7;
        }
    }

    fn binary_body(&mut self, h: &Header) -> Result<Aig, AigerError> {
        // Each output line and each AND gate takes at least two bytes.
        self.check_room(
            format!("{} outputs and {} AND gates", h.o, h.a),
            h.o.saturating_add(h.a).saturating_mul(2),
        )?;
        let outs = self.output_lits(h)?;
        let mut aig = Aig::new();
        let n_in = h.i as u32; // h.i <= M <= MAX_VAR
        aig.add_unnamed_inputs(n_in).map_err(|e| self.err_here(e.into()))?;
        // File variable I+1+k maps to and_map[k]: strashing may merge or fold
        // gates, so the file's numbering and ours can differ.
        let mut and_map: Vec<Lit> = Vec::with_capacity(h.a as usize);
        let map = |and_map: &[Lit], lit: u64| -> Lit {
            let var = lit >> 1;
            let base = if var <= n_in as u64 {
                2 * var as Lit
            } else {
                and_map[(var - n_in as u64 - 1) as usize]
            };
            base ^ (lit & 1) as Lit
        };
        for k in 0..h.a {
            let start = self.pos;
            let lhs = 2 * (h.i + k + 1);
            let d0 = self.delta(lhs)?;
            let d1 = self.delta(lhs)?;
            if d0 == 0 {
                return Err(self.err_at(
                    start,
                    self.line,
                    AigerErrorKind::NotTopological {
                        lhs,
                        detail: "its first fanin equals the gate's own literal".to_string(),
                    },
                ));
            }
            let rhs0 = lhs.checked_sub(d0).ok_or_else(|| {
                self.err_at(
                    start,
                    self.line,
                    AigerErrorKind::NotTopological {
                        lhs,
                        detail: format!("first delta {d0} is larger than the gate's literal"),
                    },
                )
            })?;
            let rhs1 = rhs0.checked_sub(d1).ok_or_else(|| {
                self.err_at(
                    start,
                    self.line,
                    AigerErrorKind::NotTopological {
                        lhs,
                        detail: format!("second delta {d1} is larger than the first fanin {rhs0}"),
                    },
                )
            })?;
            // rhs1 <= rhs0 < lhs, so both fanins are earlier variables and
            // already in and_map (or inputs/constant).
            let lit = aig
                .and(map(&and_map, rhs0), map(&and_map, rhs1))
                .map_err(|e| self.err_at(start, self.line, e.into()))?;
            and_map.push(lit);
        }
        for (k, (lit, l)) in outs.iter().enumerate() {
            let mapped = map(&and_map, *lit);
            aig.add_output(&format!("o{k}"), mapped).map_err(|e| self.err_line(l, e.into()))?;
        }
        Ok(aig)
    }

    fn ascii_body(&mut self, h: &Header) -> Result<Aig, AigerError> {
        // An input or output line takes at least two bytes, an AND line six.
        let needed =
            h.i.saturating_mul(2)
                .saturating_add(h.o.saturating_mul(2))
                .saturating_add(h.a.saturating_mul(6));
        self.check_room(format!("{} inputs, {} outputs and {} AND gates", h.i, h.o, h.a), needed)?;
        let max_lit = 2 * h.m + 1;
        // Variables in an ASCII file need not be dense, so definitions live
        // in a map sized by the file, not by M.
        let mut defs: HashMap<u64, Def> = HashMap::with_capacity((h.i + h.a) as usize);
        let mut aig = Aig::new();
        for k in 0..h.i {
            let l = self.expect_line(&format!("input {k}"))?;
            let lit = self.numbers_exact(&l, 1, &format!("input {k}"))?[0];
            self.check_definition(&l, lit, max_lit, &defs, "input")?;
            defs.insert(lit >> 1, Def::Input(k as u32));
        }
        aig.add_unnamed_inputs(h.i as u32).map_err(|e| self.err_here(e.into()))?;
        let outs = self.output_lits(h)?;
        let mut gates: Vec<([u64; 3], Line<'a>)> = Vec::with_capacity(h.a as usize);
        for k in 0..h.a {
            let l = self.expect_line(&format!("AND gate {k}"))?;
            let v = self.numbers_exact(&l, 3, &format!("AND gate {k}"))?;
            self.check_definition(&l, v[0], max_lit, &defs, "AND gate")?;
            for &rhs in &v[1..] {
                if rhs > max_lit {
                    return Err(self.err_line(&l, AigerErrorKind::LiteralOutOfRange { lit: rhs, max: max_lit }));
                }
            }
            defs.insert(v[0] >> 1, Def::And(gates.len()));
            gates.push(([v[0], v[1], v[2]], l));
        }
        let lits = self.ascii_ands(&mut aig, &defs, &gates)?;
        let resolve = |lit: u64| -> Option<Lit> {
            let base = match defs.get(&(lit >> 1)) {
                None if lit >> 1 == 0 => FALSE,
                None => return None,
                Some(Def::Input(i)) => 2 * (i + 1),
                Some(Def::And(j)) => lits[*j],
            };
            Some(base ^ (lit & 1) as Lit)
        };
        for (k, (lit, l)) in outs.iter().enumerate() {
            let mapped = resolve(*lit).ok_or_else(|| self.err_line(l, AigerErrorKind::Undefined(*lit)))?;
            aig.add_output(&format!("o{k}"), mapped).map_err(|e| self.err_line(l, e.into()))?;
        }
        Ok(aig)
    }

    fn check_definition(&self, l: &Line, lit: u64, max_lit: u64, defs: &HashMap<u64, Def>, what: &str) -> Result<(), AigerError> {
        if lit > max_lit {
            return Err(self.err_line(l, AigerErrorKind::LiteralOutOfRange { lit, max: max_lit }));
        }
        if lit < 2 || lit & 1 == 1 {
            return Err(self.err_line(
                l,
                AigerErrorKind::Syntax(format!("{what} literal {lit} must be even and at least 2")),
            ));
        }
        if defs.contains_key(&(lit >> 1)) {
            return Err(self.err_line(l, AigerErrorKind::Redefined(lit)));
        }
        Ok(())
    }

    /// Builds the ASCII AND gates in dependency order with an explicit
    /// stack (ASCII files may list gates in any order). Returns the literal
    /// of each gate, indexed like `gates`.
    fn ascii_ands(&self, aig: &mut Aig, defs: &HashMap<u64, Def>, gates: &[([u64; 3], Line)]) -> Result<Vec<Lit>, AigerError> {
        const NEW: u8 = 0;
        const ACTIVE: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; gates.len()];
        let mut lits: Vec<Lit> = vec![FALSE; gates.len()];
        let mut stack: Vec<usize> = Vec::new();
        for root in 0..gates.len() {
            if state[root] != NEW {
                continue;
            }
            state[root] = ACTIVE;
            stack.push(root);
            while let Some(&k) = stack.last() {
                let (v, l) = (&gates[k].0, &gates[k].1);
                let mut fanins = [FALSE; 2];
                let mut pending = None;
                for (slot, &rhs) in fanins.iter_mut().zip(&v[1..]) {
                    let var = rhs >> 1;
                    let base = match defs.get(&var) {
                        None if var == 0 => FALSE,
                        None => return Err(self.err_line(l, AigerErrorKind::Undefined(rhs))),
                        Some(Def::Input(i)) => 2 * (i + 1),
                        Some(&Def::And(j)) => match state[j] {
                            DONE => lits[j],
                            ACTIVE => return Err(self.err_line(&gates[j].1, AigerErrorKind::Cycle(gates[j].0[0]))),
                            _ => {
                                pending = Some(j);
                                break;
                            }
                        },
                    };
                    *slot = base ^ (rhs & 1) as Lit;
                }
                match pending {
                    Some(j) => {
                        state[j] = ACTIVE;
                        stack.push(j);
                    }
                    None => {
                        lits[k] = aig.and(fanins[0], fanins[1]).map_err(|e| self.err_line(l, e.into()))?;
                        state[k] = DONE;
                        stack.pop();
                    }
                }
            }
        }
        Ok(lits)
    }

    /// Parses the symbol table and returns the comment lines.
    fn symbols(&mut self, aig: &mut Aig, num_inputs: u64) -> Result<Vec<String>, AigerError> {
        let num_outputs = aig.outputs().len() as u64;
        let mut named_in: HashMap<u64, ()> = HashMap::new();
        let mut named_out = vec![false; aig.outputs().len()];
        while let Some(l) = self.next_line() {
            if l.text.is_empty() {
                continue;
            }
            if l.text == b"c" || l.text == b"c\r" {
                let rest = &self.bytes[self.pos.min(self.bytes.len())..];
                self.pos = self.bytes.len();
                let text = String::from_utf8_lossy(rest);
                return Ok(text.lines().map(str::to_string).collect());
            }
            let bad = |r: &Self, msg: String| r.err_line(&l, AigerErrorKind::Syntax(msg));
            let kind = l.text[0];
            let Some(space) = l.text.iter().position(|&b| b == b' ') else {
                return Err(bad(
                    self,
                    format!("bad symbol table line '{}': expected e.g. 'i0 name'", show(l.text)),
                ));
            };
            let pos = parse_u64(l.text.get(1..space).unwrap_or_default())
                .ok_or_else(|| bad(self, format!("bad symbol table line '{}': expected e.g. 'i0 name'", show(l.text))))?;
            let name = std::str::from_utf8(&l.text[space + 1..])
                .map_err(|_| bad(self, format!("symbol {}{pos} is not valid UTF-8", kind as char)))?;
            if name.is_empty() {
                return Err(bad(self, format!("symbol {}{pos} has an empty name", kind as char)));
            }
            match kind {
                b'i' if pos < num_inputs => {
                    if named_in.insert(pos, ()).is_some() {
                        return Err(bad(self, format!("input {pos} is named twice")));
                    }
                    aig.set_input_name(pos as usize, name);
                }
                b'o' if pos < num_outputs => {
                    if std::mem::replace(&mut named_out[pos as usize], true) {
                        return Err(bad(self, format!("output {pos} is named twice")));
                    }
                    aig.set_output_name(pos as usize, name);
                }
                b'i' | b'o' | b'l' | b'b' | b'c' | b'j' | b'f' => {
                    return Err(bad(
                        self,
                        format!(
                            "symbol {}{pos} refers to {} {pos}, which does not exist",
                            kind as char,
                            kind_name(kind)
                        ),
                    ));
                }
                _ => {
                    return Err(bad(
                        self,
                        format!("bad symbol table line '{}': expected e.g. 'i0 name'", show(l.text)),
                    ))
                }
            }
        }
        Ok(Vec::new())
    }
}

struct Header {
    m: u64,
    i: u64,
    o: u64,
    a: u64,
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        b'i' => "input",
        b'o' => "output",
        b'l' => "latch",
        b'b' => "bad-state property",
        b'c' => "constraint",
        b'j' => "justice property",
        _ => "fairness constraint",
    }
}

/// Decimal digits only, no sign, no overflow.
fn parse_u64(t: &[u8]) -> Option<u64> {
    if t.is_empty() || t.len() > 20 {
        return None;
    }
    t.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add((b - b'0') as u64)
        } else {
            None
        }
    })
}

/// A short printable excerpt of raw bytes for messages.
fn show(t: &[u8]) -> String {
    let t = &t[..t.len().min(40)];
    String::from_utf8_lossy(t).escape_debug().to_string()
}
