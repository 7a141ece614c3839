//! Discrete logic for kiln: everything about boolean functions and circuits that needs no tensors.
//!
//! * [`table`]: example tables read from CSV or built from a function.
//! * [`circuit`]: straight-line gate circuits, evaluation and simplification.
//! * [`grammar`]: the text form of circuits (printer and parser).
//! * [`verify`](mod@verify): checking a circuit against a table row by row.
//! * [`search`](mod@search): exact minimum-size synthesis by enumeration.
//! * [`exact_sat`]: exact minimum-size synthesis with a SAT solver.
//! * [`emit`]: Rust, C and Verilog code generation.
//! * [`library`]: built-in benchmark tables.
//! * [`json`]: the machine-readable result format.
//! * [`repair`]: fixing near-exact circuits by resubstitution over their own signals.

pub mod circuit;
pub mod emit;
pub mod exact_sat;
pub mod grammar;
pub mod json;
pub mod library;
pub mod repair;
pub mod search;
pub mod table;
pub mod verify;

pub use circuit::{gate_from_truth_table, Circuit, CircuitError, GateExpr, Op, Signal};
pub use grammar::{parse, print, ParseError};
pub use search::{minimise, search, search_with, Basis, Engine, EngineChoice, SearchError, SearchOptions, SearchResult};
pub use table::{Row, SplitMix64, Table, TableError};
pub use verify::{verify, Failure, Verification};
