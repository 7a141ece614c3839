//! Discrete logic for kiln: everything about boolean functions and circuits that needs no tensors.
//!
//! * [`aig`]: And-Inverter Graphs with structural hashing, conversion to and from circuits.
//! * [`aiger`]: the AIGER 1.9 formats (binary `.aig`, ASCII `.aag`), combinational subset.
//! * [`blif`]: BLIF for combinational logic, as ABC reads and writes it.
//! * [`table`]: example tables read from CSV or built from a function.
//! * [`samples`]: sample sets of any width (bit-packed columns, unspecified outputs allowed).
//! * [`pla`]: Espresso PLA files, the IWLS 2020 contest's sample format.
//! * [`source`]: reading files plain or gzip-compressed, with a size bound.
//! * [`circuit`]: straight-line gate circuits, evaluation and simplification.
//! * [`grammar`]: the text form of circuits (printer and parser).
//! * [`verify`](mod@verify): checking a circuit against a table row by row.
//! * [`search`](mod@search): exact minimum-size synthesis by enumeration.
//! * [`exact_sat`]: exact minimum-size synthesis with a SAT solver.
//! * [`npn`], [`npn_library`]: NPN classes of 4-input functions and their optimum circuits.
//! * [`cuts`], [`rewrite`], [`optimise`](mod@optimise): cut enumeration, DAG-aware rewriting and the
//!   resynthesis pipeline (rewriting plus resubstitution to a fixpoint).
//! * [`emit`]: Rust, C and Verilog code generation.
//! * [`library`]: built-in benchmark tables.
//! * [`local_search`]: evolving smaller circuits from a correct one (upper bounds, no proofs).
//! * [`json`]: the machine-readable result format.
//! * [`repair`]: fixing near-exact circuits by resubstitution over their own signals.

#![warn(missing_docs)]
pub mod aig;

/// Most threads a search parameter may start (SAT portfolios, local search); larger counts are
/// clamped to it. Threads past the cores only share them, and a count like 100,000 made the OS
/// refuse to spawn, which panicked.
pub const MAX_THREADS: usize = 256;
pub mod aiger;
pub mod arith;
pub mod blif;
pub mod circuit;
pub mod cuts;
pub mod diagram;
pub mod emit;
pub mod exact_sat;
pub mod grammar;
pub mod json;
pub mod library;
pub mod local_search;
pub mod npn;
pub mod npn_library;
pub mod optimise;
pub mod pla;
pub mod repair;
pub mod rewrite;
pub mod samples;
pub mod search;
pub mod source;
pub mod symmetric;
pub mod table;
pub mod verify;
pub mod window_sat;

pub use aig::{Aig, AigError, Lit};
pub use circuit::{gate_from_truth_table, Circuit, CircuitError, GateExpr, Op, Signal};
pub use grammar::{parse, print, ParseError};
pub use optimise::{optimise, OptimiseParams, OptimiseStats};
pub use samples::{Accuracy, SampleSet};
pub use search::{minimise, search, search_with, Basis, Engine, EngineChoice, SearchError, SearchOptions, SearchResult};
pub use table::{Row, SplitMix64, Table, TableError};
pub use verify::{verify, Failure, Verification};
