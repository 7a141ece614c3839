//! Espresso PLA files: the format of the IWLS 2020 learning contest's sample sets.
//!
//! Supported: `.i`, `.o`, `.p`, `.type` (`f`, `fd`, `fr`, `fdr`), `.ilb`, `.ob`, `.e`/`.end`,
//! comment lines starting with `#`, and cube lines whose input part uses `0 1 -` and whose output
//! part uses `0 1 - ~`. As examples, an output `1` is a sample with value 1, `0` one with value 0,
//! and `-`/`~` leave that output unspecified on the row. An input `-` stands for both values: the
//! cube is expanded into its minterms, up to a stated limit. Lines end in LF, CRLF or CR alone.

use crate::samples::SampleSet;
use crate::table::TableError;

/// Most input or output columns a PLA may declare. Far beyond any real sample set (IWLS goes to
/// 512), and small enough that the per-column bookkeeping of a hostile `.i` cannot exhaust memory.
pub const MAX_PLA_COLUMNS: usize = 1 << 20;

/// Most don't-care inputs one cube may have: it stands for 2^k sample rows.
pub const MAX_CUBE_DASHES: u32 = 20;

fn err(file: &str, line: usize, message: impl Into<String>) -> TableError {
    TableError::Pla {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// Splits on LF, CRLF or a lone CR, numbering lines from 1 the way editors do.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut rest = bytes;
    let mut number = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ if end < rest.len() => 1,
            _ => 0,
        };
        rest = &rest[end + skip..];
        Some((number, line))
    })
}

/// Shows at most 40 characters of user text in a message, so a megabyte-long line is not echoed
/// whole.
fn excerpt(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(&text[..text.len().min(40)]).into_owned();
    if text.len() > 40 {
        format!("{s}…")
    } else {
        s
    }
}

fn count(file: &str, line: usize, key: &str, arg: Option<&str>) -> Result<usize, TableError> {
    let arg = arg.ok_or_else(|| err(file, line, format!("{key} needs a number")))?;
    let n: usize = arg
        .parse()
        .map_err(|_| err(file, line, format!("{key} expects a number, found '{}'", excerpt(arg.as_bytes()))))?;
    if key != ".p" && !(1..=MAX_PLA_COLUMNS).contains(&n) {
        return Err(err(
            file,
            line,
            format!("{key} {n}: the count must be between 1 and {MAX_PLA_COLUMNS}"),
        ));
    }
    Ok(n)
}

/// Parses PLA text into a [`SampleSet`]; `file` labels error messages.
pub fn read_pla(file: &str, bytes: &[u8]) -> Result<SampleSet, TableError> {
    let (mut ni, mut no, mut np) = (None::<usize>, None::<usize>, None::<(usize, usize)>);
    let (mut ilb, mut ob) = (None::<Vec<String>>, None::<Vec<String>>);
    let mut set: Option<SampleSet> = None;
    let mut cubes = 0usize;
    let mut last_line = 0usize;
    let (mut ins, mut outs, mut dashes) = (Vec::new(), Vec::new(), Vec::new());
    for (line, raw) in lines(bytes) {
        last_line = line;
        let text = std::str::from_utf8(raw).map_err(|_| err(file, line, "the line is not valid UTF-8"))?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if text.starts_with('.') {
            let mut words = text.split_whitespace();
            let key = words.next().unwrap_or_default();
            if set.is_some() && matches!(key, ".i" | ".o" | ".ilb" | ".ob" | ".type") {
                return Err(err(file, line, format!("{key} must come before the first cube")));
            }
            let given_before = match key {
                ".i" => ni.is_some(),
                ".o" => no.is_some(),
                ".p" => np.is_some(),
                ".ilb" => ilb.is_some(),
                ".ob" => ob.is_some(),
                _ => false,
            };
            if given_before {
                return Err(err(file, line, format!("{key} is given twice")));
            }
            match key {
                ".i" => ni = Some(count(file, line, key, words.next())?),
                ".o" => no = Some(count(file, line, key, words.next())?),
                ".p" => np = Some((count(file, line, key, words.next())?, line)),
                ".type" => match words.next() {
                    Some("f" | "fd" | "fr" | "fdr") => {}
                    Some(t) => {
                        return Err(err(
                            file,
                            line,
                            format!("unsupported .type '{}' (f, fd, fr and fdr are)", excerpt(t.as_bytes())),
                        ))
                    }
                    None => return Err(err(file, line, ".type needs a value")),
                },
                ".ilb" => ilb = Some(words.by_ref().map(str::to_string).collect()),
                ".ob" => ob = Some(words.by_ref().map(str::to_string).collect()),
                ".e" | ".end" => break,
                other => {
                    return Err(err(file, line, format!("unsupported directive '{}'", excerpt(other.as_bytes()))));
                }
            }
            if words.next().is_some() && matches!(key, ".i" | ".o" | ".p" | ".type") {
                return Err(err(file, line, format!("{key} takes one value")));
            }
            continue;
        }
        if set.is_none() {
            let (Some(n), Some(m)) = (ni, no) else {
                return Err(err(file, line, "cube before the .i and .o lines"));
            };
            let names = |given: Option<Vec<String>>, k: usize, prefix: &str, key: &str| match given {
                Some(v) if v.len() != k => Err(err(file, line, format!("{key} lists {} names but the file declares {k}", v.len()))),
                Some(v) => {
                    if let Some((name, why)) = v.iter().find_map(|n| crate::grammar::name_problem(n).map(|w| (n, w))) {
                        return Err(err(
                            file,
                            line,
                            format!("{key}: {:?} cannot be a column name: {why}", excerpt(name.as_bytes())),
                        ));
                    }
                    let mut seen = std::collections::HashSet::new();
                    match v.iter().find(|s| !seen.insert(s.as_str())) {
                        Some(d) => Err(err(file, line, format!("{key} repeats the name '{}'", excerpt(d.as_bytes())))),
                        None => Ok(v),
                    }
                }
                None => Ok((0..k).map(|i| format!("{prefix}{i}")).collect()),
            };
            let inputs = names(ilb.take(), n, "x", ".ilb")?;
            let outputs = names(ob.take(), m, "y", ".ob")?;
            if let Some(clash) = outputs.iter().find(|o| inputs.contains(o)) {
                return Err(err(
                    file,
                    line,
                    format!("'{}' names both an input and an output", excerpt(clash.as_bytes())),
                ));
            }
            set = Some(SampleSet::new(file, inputs, outputs));
        }
        let set = set.as_mut().expect("created above");
        let (n, m) = (set.num_inputs(), set.num_outputs());
        let cells: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace() && *b != b'|').collect();
        if cells.len() != n + m {
            return Err(err(
                file,
                line,
                format!(
                    "expected {n} input and {m} output characters, found {} in '{}'",
                    cells.len(),
                    excerpt(text.as_bytes())
                ),
            ));
        }
        ins.clear();
        dashes.clear();
        for (i, &c) in cells[..n].iter().enumerate() {
            match c {
                b'0' => ins.push(false),
                b'1' => ins.push(true),
                b'-' => {
                    ins.push(false);
                    dashes.push(i);
                }
                _ => {
                    return Err(err(
                        file,
                        line,
                        format!("input {}: expected 0, 1 or -, found '{}'", i + 1, excerpt(&[c])),
                    ))
                }
            }
        }
        outs.clear();
        for (j, &c) in cells[n..].iter().enumerate() {
            outs.push(match c {
                b'0' => Some(false),
                b'1' => Some(true),
                b'-' | b'~' => None,
                _ => {
                    return Err(err(
                        file,
                        line,
                        format!("output {}: expected 0, 1, - or ~, found '{}'", j + 1, excerpt(&[c])),
                    ))
                }
            });
        }
        if dashes.len() as u32 > MAX_CUBE_DASHES {
            return Err(err(
                file,
                line,
                format!(
                    "the cube has {} don't-care inputs and stands for 2^{} samples; at most {MAX_CUBE_DASHES} are expanded",
                    dashes.len(),
                    dashes.len()
                ),
            ));
        }
        // The whole cube's rows are checked against the limit before any is stored, so a file
        // past it is refused at once instead of after expanding millions of rows.
        set.reserve_rows(1usize << dashes.len()).map_err(|e| match e {
            TableError::TooLarge { message, .. } => err(file, line, message),
            e => e,
        })?;
        for fill in 0u64..1 << dashes.len() {
            for (k, &i) in dashes.iter().enumerate() {
                ins[i] = fill >> k & 1 == 1;
            }
            set.push_row(&ins, &outs).map_err(|e| match e {
                TableError::TooLarge { message, .. } => err(file, line, message),
                e => e,
            })?;
        }
        cubes += 1;
    }
    let Some(set) = set else {
        return Err(err(file, last_line.max(1), "no cubes: the file holds no samples"));
    };
    if let Some((p, line)) = np {
        if p != cubes {
            return Err(err(file, line, format!(".p {p} but the file holds {cubes} cubes")));
        }
    }
    Ok(set)
}

/// Writes `set` as an Espresso PLA of `.type fr`, one minterm per line (unspecified outputs as
/// `-`), with `.ilb`/`.ob` names where every name is free of whitespace.
pub fn write_pla(set: &SampleSet) -> String {
    let (n, m) = (set.num_inputs(), set.num_outputs());
    let mut s = String::with_capacity(64 + set.len() * (n + m + 2));
    s.push_str(&format!(".i {n}\n.o {m}\n"));
    // A name with whitespace cannot be written in .ilb/.ob; the reader then names columns itself.
    let plain = |names: &[String]| names.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace));
    if plain(set.input_names()) && plain(set.output_names()) {
        s.push_str(&format!(".ilb {}\n", set.input_names().join(" ")));
        s.push_str(&format!(".ob {}\n", set.output_names().join(" ")));
    }
    s.push_str(&format!(".p {}\n.type fr\n", set.len()));
    for r in 0..set.len() {
        s.extend((0..n).map(|i| if set.input(r, i) { '1' } else { '0' }));
        s.push(' ');
        s.extend((0..m).map(|j| match set.output(r, j) {
            Some(true) => '1',
            Some(false) => '0',
            None => '-',
        }));
        s.push('\n');
    }
    s.push_str(".e\n");
    s
}
