//! Programming by example for boolean functions: relaxed gate networks fitted by gradient descent
//! on kiln-core tensors, fired into discrete circuits.
//!
//! * [`learn`](mod@learn): the gradient learners (single units, gate networks, MLPs) for truth tables.
//! * [`generalise`]: learning from samples that generalises (gate networks and decision trees,
//!   chosen on validation within an AND-node budget), with [`gate_network`] and [`tree`].
//!
//! The discrete side (tables, circuits, grammar, search, repair, emission) lives in
//! [`kiln_logic`], which knows nothing of tensors; its modules are re-exported here so a user of
//! the learner has one crate to import.

#![warn(missing_docs)]
pub mod gate_network;
pub mod generalise;
pub mod learn;
pub mod threshold;
pub mod tree;

// `search` and `verify` bring both the module and the function of that name.
pub use generalise::{learn_samples, Method, SampleLearnOptions, SampleLearnResult};
pub use kiln_logic::{circuit, emit, grammar, json, library, repair, search, table, verify};
pub use kiln_logic::{
    gate_from_truth_table, minimise, parse, print, Basis, Circuit, CircuitError, Failure, GateExpr, Op, ParseError, Row, SearchError,
    SearchOptions, SearchResult, Signal, SplitMix64, Table, TableError, Verification,
};
pub use learn::{learn, GateParam, LearnOptions, LearnResult, Space, Wiring};
