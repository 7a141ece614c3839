//! The textual program form, shared by the printer and the parser.
//!
//! ```text
//! program    := statement { (";" | newline) statement }   |   expr
//! statement  := NAME "=" expr
//! expr       := or_expr [ "IMPLIES" expr ]                 (right-associative)
//! or_expr    := xor_expr { ("OR" | "NOR") xor_expr }       (left-associative)
//! xor_expr   := and_expr { ("XOR" | "XNOR") and_expr }
//! and_expr   := unary { ("AND" | "NAND" | "NIMPLIES") unary }
//! unary      := "NOT" unary | "0" | "1" | NAME | "(" expr ")"
//! ```
//!
//! Precedence, tightest first: NOT, then AND/NAND/NIMPLIES, then XOR/XNOR,
//! then OR/NOR, then IMPLIES. Keywords are case-insensitive; names are
//! `[A-Za-z_][A-Za-z0-9_]*` and case-sensitive. `#` starts a comment to the
//! end of the line, and newlines inside parentheses are ignored.
//!
//! A statement whose left side is an output column defines that output;
//! any other left side names an intermediate value usable by later
//! statements (names must be defined before use and only once). A program
//! that is a bare expression defines the table's only output.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::circuit::{Circuit, GateExpr, Op, Signal};

/// A syntax or naming error, with a 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What was expected / what went wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Const(bool),
    Op(Op),
    LParen,
    RParen,
    Eq,
    Sep,
    Eof,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Name(n) => format!("name '{}'", shown(n)),
        Tok::Const(b) => format!("'{}'", *b as u8),
        Tok::Op(op) => format!("'{}'", op.name()),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Eq => "'='".into(),
        Tok::Sep => "end of statement".into(),
        Tok::Eof => "end of input".into(),
    }
}

/// The longest input or output name [`name_problem`] accepts, in characters (the length every
/// Verilog tool must support; C and Rust allow more).
pub const MAX_NAME_LEN: usize = 1024;

/// `name` as a message shows it: at most 40 characters, cut with '…', so a huge name in a file
/// is not echoed whole.
pub fn shown(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_string(),
    }
}

/// A list of names for a message: the first 12 (each [`shown`]), then how many more there are.
pub fn shown_list(names: &[String]) -> String {
    let mut s = names.iter().take(12).map(|n| shown(n)).collect::<Vec<_>>().join(", ");
    if names.len() > 12 {
        s.push_str(&format!(" and {} more", names.len() - 12));
    }
    s
}

/// Why `name` cannot name an input or output in the grammar, or `None` when it can: a name
/// starts with a letter or '_', continues with ASCII letters, digits or '_', and is not an
/// operator word. Printed programs must parse back to the same function, so readers of tables
/// refuse other names instead of printing something like `Y = 0 XOR 1` for columns `0` and `1`.
pub fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("a name cannot be empty".into());
    };
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "a name may be at most {MAX_NAME_LEN} characters long, this one has {}",
            name.chars().count()
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Some("a name must start with a letter or '_'".into());
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Some(format!("a name may hold only letters, digits and '_', not {bad:?}"));
    }
    Op::from_name(name).map(|op| format!("'{}' is an operator of the program grammar", op.name()))
}

fn lex(text: &str) -> Result<Vec<(Tok, Pos)>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line, mut col, mut depth) = (0usize, 1usize, 1usize, 0usize);
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, column: col };
        let err = |message: String| ParseError {
            line: pos.line,
            column: pos.column,
            message,
        };
        if c == '\n' {
            if depth == 0 {
                toks.push((Tok::Sep, pos));
            }
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
                col += 1;
            }
            continue;
        }
        let single = match c {
            '(' => {
                depth += 1;
                Some(Tok::LParen)
            }
            ')' => {
                depth = depth.saturating_sub(1);
                Some(Tok::RParen)
            }
            '=' => Some(Tok::Eq),
            ';' => Some(Tok::Sep),
            _ => None,
        };
        if let Some(t) = single {
            toks.push((t, pos));
            i += 1;
            col += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            col += i - start;
            let tok = if c.is_ascii_digit() {
                match word.as_str() {
                    "0" => Tok::Const(false),
                    "1" => Tok::Const(true),
                    _ => return Err(err(format!("expected 0, 1 or a name, found '{}'", shown(&word)))),
                }
            } else {
                match Op::from_name(&word) {
                    Some(op @ (Op::Buf | Op::Const0 | Op::Const1)) => {
                        return Err(err(format!(
                            "'{}' is not an operator of the grammar; write the value or 0/1 instead",
                            op.name()
                        )))
                    }
                    Some(op) => Tok::Op(op),
                    None => Tok::Name(word),
                }
            };
            toks.push((tok, pos));
            continue;
        }
        return Err(err(format!("unexpected character '{c}'")));
    }
    toks.push((Tok::Eof, Pos { line, column: col }));
    Ok(toks)
}

/// Parsed expression tree (before names are resolved).
#[derive(Debug, Clone)]
enum Expr {
    Name(String, Pos),
    Const(bool),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

/// One `name = expr` statement, or a bare expression (`name` is `None`).
#[derive(Debug, Clone)]
struct Stmt {
    name: Option<(String, Pos)>,
    expr: Expr,
}

/// Deepest nesting of parentheses, NOT and IMPLIES the parser accepts. The parser recurses once
/// per level, so a bound keeps hostile input (thousands of '(') from overflowing the stack; a
/// real program never comes close, and long flat chains (`a AND b AND …`) are not nesting.
pub const MAX_NESTING: usize = 256;

// Chains of a binary operator build left-deep trees as deep as the chain is long; dropping one
// recursively would overflow the stack on a 100,000-term chain, so children are dropped from a
// work list instead.
impl Drop for Expr {
    fn drop(&mut self) {
        let mut work: Vec<Expr> = Vec::new();
        let take = |e: &mut Expr, work: &mut Vec<Expr>| match e {
            Expr::Not(a) => work.push(std::mem::replace(&mut **a, Expr::Const(false))),
            Expr::Bin(_, a, b) => {
                work.push(std::mem::replace(&mut **a, Expr::Const(false)));
                work.push(std::mem::replace(&mut **b, Expr::Const(false)));
            }
            _ => {}
        };
        take(self, &mut work);
        while let Some(mut e) = work.pop() {
            take(&mut e, &mut work);
        }
    }
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at].0
    }
    fn pos(&self) -> Pos {
        self.toks[self.at].1
    }
    fn bump(&mut self) -> (Tok, Pos) {
        let t = self.toks[self.at].clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }
    fn expected(&self, what: &str) -> ParseError {
        let p = self.pos();
        ParseError {
            line: p.line,
            column: p.column,
            message: format!("expected {what}, found {}", describe(self.peek())),
        }
    }
    /// Enters one level of nesting, refusing to go past [`MAX_NESTING`].
    fn nest(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let p = self.pos();
            return Err(ParseError {
                line: p.line,
                column: p.column,
                message: format!(
                    "expression nested deeper than {MAX_NESTING} levels (parentheses, NOT or IMPLIES); split it into statements"
                ),
            });
        }
        Ok(())
    }

    fn skip_seps(&mut self) {
        while *self.peek() == Tok::Sep {
            self.bump();
        }
    }

    fn program(&mut self) -> Result<Vec<Stmt>, ParseError> {
        self.skip_seps();
        let is_statement = matches!(self.peek(), Tok::Name(_)) && matches!(self.toks.get(self.at + 1), Some((Tok::Eq, _)));
        if !is_statement {
            if *self.peek() == Tok::Eof {
                return Err(self.expected("a statement such as 'Y = X1 AND X2'"));
            }
            let expr = self.expr()?;
            self.skip_seps();
            if *self.peek() != Tok::Eof {
                return Err(self.expected("end of input after a bare expression (or use 'NAME = expr' statements)"));
            }
            return Ok(vec![Stmt { name: None, expr }]);
        }
        let mut stmts = Vec::new();
        loop {
            self.skip_seps();
            if *self.peek() == Tok::Eof {
                return Ok(stmts);
            }
            let (tok, pos) = self.bump();
            let Tok::Name(name) = tok else {
                self.at -= 1;
                return Err(self.expected("a name to define"));
            };
            if *self.peek() != Tok::Eq {
                return Err(self.expected(&format!("'=' after '{}'", shown(&name))));
            }
            self.bump();
            let expr = self.expr()?;
            stmts.push(Stmt {
                name: Some((name, pos)),
                expr,
            });
            match self.peek() {
                Tok::Sep | Tok::Eof => {}
                _ => return Err(self.expected("an operator, ';' or a new line")),
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let lhs = self.binary(0)?;
        if *self.peek() == Tok::Op(Op::Implies) {
            self.bump();
            self.nest()?;
            let rhs = self.expr()?;
            self.depth -= 1;
            return Ok(Expr::Bin(Op::Implies, Box::new(lhs), Box::new(rhs)));
        }
        Ok(lhs)
    }

    /// Left-associative levels: 0 = OR/NOR, 1 = XOR/XNOR, 2 = AND/NAND/NIMPLIES.
    fn binary(&mut self, level: usize) -> Result<Expr, ParseError> {
        if level == 3 {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        loop {
            let op = match self.peek() {
                Tok::Op(op) if op_level(*op) == Some(level) => *op,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.binary(level + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            Tok::Op(Op::Not) => {
                self.bump();
                self.nest()?;
                let e = Expr::Not(Box::new(self.unary()?));
                self.depth -= 1;
                Ok(e)
            }
            Tok::Const(b) => {
                self.bump();
                Ok(Expr::Const(b))
            }
            Tok::Name(n) => {
                let (_, p) = self.bump();
                Ok(Expr::Name(n, p))
            }
            Tok::LParen => {
                self.bump();
                self.nest()?;
                let e = self.expr()?;
                if *self.peek() != Tok::RParen {
                    return Err(self.expected("')'"));
                }
                self.bump();
                self.depth -= 1;
                Ok(e)
            }
            _ => Err(self.expected("an operand (a name, 0, 1, NOT or '(')")),
        }
    }
}

fn op_level(op: Op) -> Option<usize> {
    match op {
        Op::Or | Op::Nor => Some(0),
        Op::Xor | Op::Xnor => Some(1),
        Op::And | Op::Nand | Op::Nimplies => Some(2),
        _ => None,
    }
}

/// Names assigned by a program, in order, without resolving anything.
/// Useful to decide which table columns are outputs before parsing.
pub fn defined_names(text: &str) -> Result<Vec<String>, ParseError> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
        depth: 0,
    };
    Ok(p.program()?.into_iter().filter_map(|s| s.name.map(|(n, _)| n)).collect())
}

/// Names the program reads before any statement defines them (in order of first use): these are
/// its inputs, whatever it assigns later. A tool that decides which table columns are outputs
/// from the names a program defines must leave these among the inputs, so that assigning an
/// input is reported as such by [`parse`].
///
/// ```
/// use kiln_logic::grammar::names_read_before_defined;
/// let read = names_read_before_defined("A = X1 AND X2; X2 = A OR X3; Y = NOT X2").unwrap();
/// assert_eq!(read, ["X1", "X2", "X3"]);
/// ```
pub fn names_read_before_defined(text: &str) -> Result<Vec<String>, ParseError> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
        depth: 0,
    };
    let mut defined: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for st in p.program()? {
        // Iterative: a long chain of one operator is a tree as deep as the chain is long.
        let mut work = vec![&st.expr];
        while let Some(e) = work.pop() {
            match e {
                Expr::Name(n, _) => {
                    if !defined.contains(n) && seen.insert(n.clone()) {
                        out.push(n.clone());
                    }
                }
                Expr::Const(_) => {}
                Expr::Not(a) => work.push(a),
                Expr::Bin(_, a, b) => {
                    work.push(b);
                    work.push(a);
                }
            }
        }
        if let Some((n, _)) = st.name {
            defined.insert(n);
        }
    }
    Ok(out)
}

/// Parses a program over the given input and output names.
///
/// Every output must be defined. A bare expression (no `=`) is accepted
/// when there is exactly one output.
pub fn parse(text: &str, inputs: &[String], outputs: &[String]) -> Result<Circuit, ParseError> {
    // Names the grammar cannot spell would be read as constants or operators (inputs named `0`
    // and `1` made `Y = 0 XOR 1` a constant), so they are refused, whoever supplied them.
    for (kind, names) in [("input", inputs), ("output", outputs)] {
        if let Some((n, why)) = names.iter().find_map(|n| name_problem(n).map(|w| (n, w))) {
            return Err(ParseError {
                line: 1,
                column: 1,
                message: format!("{kind} {:?} cannot appear in a program: {why}", shown(n)),
            });
        }
    }
    // One name for two columns would bind both to whichever came first (inputs) or merge two
    // outputs into one, and the circuit would silently compute something else.
    let mut seen: HashSet<&str> = HashSet::new();
    if let Some(n) = inputs.iter().chain(outputs).find(|n| !seen.insert(n.as_str())) {
        return Err(ParseError {
            line: 1,
            column: 1,
            message: format!("{:?} names two columns: inputs and outputs need distinct names", shown(n)),
        });
    }
    let toks = lex(text)?;
    let end = toks.last().map(|t| t.1).unwrap_or(Pos { line: 1, column: 1 });
    let stmts = Parser { toks, at: 0, depth: 0 }.program()?;
    let mut c = Circuit::new(inputs.to_vec());
    let mut env: HashMap<String, Signal> = HashMap::new();
    for (i, name) in inputs.iter().enumerate() {
        env.insert(name.clone(), Signal::Input(i));
    }
    let at = |p: Pos, message: String| ParseError {
        line: p.line,
        column: p.column,
        message,
    };
    for st in stmts {
        let sig = compile(&st.expr, &env, &mut c, inputs)?;
        let (name, pos) = match st.name {
            Some(n) => n,
            None => match outputs {
                [only] => (only.clone(), Pos { line: 1, column: 1 }),
                _ => {
                    return Err(at(
                        Pos { line: 1, column: 1 },
                        format!(
                            "a bare expression needs exactly one output column, but there are {}; write 'NAME = expr' statements",
                            outputs.len()
                        ),
                    ))
                }
            },
        };
        if inputs.contains(&name) {
            return Err(at(pos, format!("'{}' is an input column and cannot be assigned", shown(&name))));
        }
        if env.contains_key(&name) {
            return Err(at(pos, format!("'{}' is defined twice", shown(&name))));
        }
        env.insert(name.clone(), sig);
        if outputs.contains(&name) {
            c.set_output(&name, sig).expect("compiled signals are in range");
        }
    }
    for o in outputs {
        if c.output(o).is_none() {
            return Err(at(end, format!("output '{}' is never defined", shown(o))));
        }
    }
    // Keep outputs in table order regardless of statement order.
    let mut ordered = Circuit::new(inputs.to_vec());
    for g in c.gates() {
        ordered.push(g.clone()).expect("gates were valid");
    }
    for o in outputs {
        ordered.set_output(o, c.output(o).unwrap()).expect("valid");
    }
    Ok(ordered)
}

/// Compiles `e` into gates of `c`, children before parents. Iterative: a chain of a binary
/// operator is a tree as deep as the chain is long.
fn compile(e: &Expr, env: &HashMap<String, Signal>, c: &mut Circuit, inputs: &[String]) -> Result<Signal, ParseError> {
    enum Step<'a> {
        Visit(&'a Expr),
        Build(&'a Expr),
    }
    let mut work = vec![Step::Visit(e)];
    let mut values: Vec<Signal> = Vec::new();
    while let Some(step) = work.pop() {
        match step {
            Step::Visit(e) => match e {
                Expr::Const(b) => values.push(Signal::Const(*b)),
                Expr::Name(n, p) => values.push(*env.get(n).ok_or_else(|| ParseError {
                    line: p.line,
                    column: p.column,
                    message: format!(
                        "unknown name '{}' (inputs are {}; other names must be defined by an earlier statement)",
                        shown(n),
                        shown_list(inputs)
                    ),
                })?),
                Expr::Not(a) => {
                    work.push(Step::Build(e));
                    work.push(Step::Visit(a));
                }
                Expr::Bin(_, a, b) => {
                    work.push(Step::Build(e));
                    work.push(Step::Visit(b));
                    work.push(Step::Visit(a));
                }
            },
            Step::Build(e) => {
                let (op, arity) = match e {
                    Expr::Not(_) => (Op::Not, 1),
                    Expr::Bin(op, _, _) => (*op, 2),
                    _ => unreachable!("only gates are built"),
                };
                let args = values.split_off(values.len() - arity);
                values.push(c.push(GateExpr { op, args }).expect("arguments are earlier signals"));
            }
        }
    }
    Ok(values.pop().expect("an expression has a value"))
}

/// Names used when printing: a gate that drives an output is printed under
/// the first such output's name; other gates get their `Z<k>` name.
fn print_names(c: &Circuit) -> Vec<String> {
    // The first output each gate drives, found in one pass over the outputs.
    let mut first: HashMap<usize, &str> = HashMap::new();
    for (n, s) in c.outputs() {
        if let Signal::Gate(g) = s {
            first.entry(*g).or_insert(n);
        }
    }
    let names = c.names();
    (0..c.num_gates())
        .map(|i| first.get(&i).map_or_else(|| names.gate(i), |n| n.to_string()))
        .collect()
}

fn atom(c: &Circuit, names: &[String], s: Signal) -> String {
    match s {
        Signal::Gate(g) => names[g].clone(),
        other => c.signal_name(other),
    }
}

/// Prints one statement per gate, separated by `sep`, then any output that
/// is not itself the value of a gate. Parsing the result with the same
/// inputs/outputs gives back an identical gate list, provided the circuit
/// has no BUF/CONST gates (those print as plain aliases; simplify first).
pub fn print_with(c: &Circuit, sep: &str) -> String {
    let names = print_names(c);
    let mut stmts = Vec::new();
    for (i, g) in c.gates().iter().enumerate() {
        let a = |k: usize| atom(c, &names, g.args[k]);
        let rhs = match g.op {
            Op::Const0 => "0".to_string(),
            Op::Const1 => "1".to_string(),
            Op::Buf => a(0),
            Op::Not => format!("NOT {}", a(0)),
            op => format!("{} {} {}", a(0), op.name(), a(1)),
        };
        stmts.push(format!("{} = {}", names[i], rhs));
    }
    for (name, s) in c.outputs() {
        let owns = matches!(s, Signal::Gate(g) if names[*g] == *name);
        if !owns {
            stmts.push(format!("{name} = {}", atom(c, &names, *s)));
        }
    }
    stmts.join(sep)
}

/// [`print_with`] using new lines between statements.
pub fn print(c: &Circuit) -> String {
    print_with(c, "\n")
}

/// Compact form: gates read only once are written inline as nested
/// expressions; shared gates get their own statement. Parses back to a
/// circuit with the same truth table (gate order may differ).
pub fn to_expression(c: &Circuit, sep: &str) -> String {
    let n = c.num_gates();
    let mut uses = vec![0usize; n];
    for g in c.gates() {
        for s in &g.args {
            if let Signal::Gate(j) = s {
                uses[*j] += 1;
            }
        }
    }
    let mut owner: Vec<Option<String>> = vec![None; n];
    for (name, s) in c.outputs() {
        if let Signal::Gate(j) = s {
            uses[*j] += 1;
            if owner[*j].is_none() {
                owner[*j] = Some(name.clone());
            }
        }
    }
    // A gate gets its own statement when it is shared, drives an output, or would sit more than
    // MAX_INLINE levels deep inside an inlined expression: printing recurses once per level, and
    // a chain of 100,000 single-use gates must not overflow the stack (nor make an unreadable line).
    const MAX_INLINE: usize = 64;
    let mut own: Vec<bool> = (0..n).map(|i| uses[i] >= 2 || owner[i].is_some()).collect();
    let mut depth = vec![0usize; n];
    for i in 0..n {
        let below = c.gates()[i]
            .args
            .iter()
            .filter_map(|s| match s {
                Signal::Gate(j) if !own[*j] => Some(depth[*j]),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        depth[i] = below + 1;
        if depth[i] > MAX_INLINE && uses[i] > 0 {
            own[i] = true;
        }
    }
    let prefix = c.gate_prefix();
    let mut names: Vec<Option<String>> = vec![None; n];
    let mut stmts = Vec::new();
    let mut counter = 0;
    for i in 0..n {
        if own[i] {
            let rhs = render(c, &names, Signal::Gate(i), None);
            let name = owner[i].clone().unwrap_or_else(|| {
                counter += 1;
                format!("{prefix}{counter}")
            });
            stmts.push(format!("{name} = {rhs}"));
            names[i] = Some(name);
        }
    }
    for (name, s) in c.outputs() {
        let owned = matches!(s, Signal::Gate(g) if names[*g].as_deref() == Some(name.as_str()));
        if !owned {
            stmts.push(format!("{name} = {}", render(c, &names, *s, None)));
        }
    }
    stmts.join(sep)
}

/// Renders `s`, inlining unnamed gates. `parent` is the enclosing binary op
/// (if any): nested binary expressions are always parenthesised, except
/// a repeated associative op, so readers never need the precedence table.
fn render(c: &Circuit, names: &[Option<String>], s: Signal, parent: Option<Op>) -> String {
    let Signal::Gate(g) = s else {
        return c.signal_name(s);
    };
    let gate = &c.gates()[g];
    // The gate being defined is not named yet, so this only shortens
    // references to earlier shared gates.
    if let Some(n) = &names[g] {
        return n.clone();
    }
    match gate.op {
        Op::Const0 => "0".into(),
        Op::Const1 => "1".into(),
        Op::Buf => render(c, names, gate.args[0], parent),
        Op::Not => format!("NOT {}", render(c, names, gate.args[0], Some(Op::Not))),
        op => {
            let associative = matches!(op, Op::And | Op::Or | Op::Xor);
            let body = format!(
                "{} {} {}",
                render(c, names, gate.args[0], Some(op)),
                op.name(),
                render(c, names, gate.args[1], Some(op))
            );
            let needs_parens = match parent {
                None => false,
                Some(p) if p == op && associative => false,
                Some(_) => true,
            };
            if needs_parens {
                format!("({body})")
            } else {
                body
            }
        }
    }
}
