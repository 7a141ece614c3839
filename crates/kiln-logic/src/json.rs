//! The JSON result format shared by `kiln search` and `kiln learn`:
//!
//! ```json
//! {"inputs":["X1","X2"],"outputs":["Y"],"exact":true,"gates":1,
//!  "program":{"gates":[{"name":"Z1","op":"XOR","args":["X1","X2"]}],"outputs":{"Y":"Z1"}},
//!  "expression":"Y = X1 XOR X2","restarts":0,"steps":3,"seconds":0.001,"optimal":true,"engine":"enumeration"}
//! ```

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::circuit::Circuit;
use crate::grammar::to_expression;

/// One gate of [`ProgramJson`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GateJson {
    /// Gate name (`Z1`, …).
    pub name: String,
    /// Operation name (`AND`, …).
    pub op: String,
    /// Argument names: inputs, earlier gates, `0` or `1`.
    pub args: Vec<String>,
}

/// A circuit as JSON: gates in topological order and the output map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramJson {
    /// The gates.
    pub gates: Vec<GateJson>,
    /// Output name → signal name, in output order.
    pub outputs: Vec<(String, String)>,
}

impl Serialize for ProgramJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A map written entry by entry keeps output order (serde_json's own
        // Map would sort the keys).
        struct Outputs<'a>(&'a [(String, String)]);
        impl Serialize for Outputs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("gates", &self.gates)?;
        m.serialize_entry("outputs", &Outputs(&self.outputs))?;
        m.end()
    }
}

impl ProgramJson {
    /// Describes `c` (names as printed by [`crate::grammar::print`]'s gate
    /// naming, i.e. `Z1..Zn`).
    pub fn from_circuit(c: &Circuit) -> ProgramJson {
        let names = c.names();
        let gates = c
            .gates()
            .iter()
            .enumerate()
            .map(|(i, g)| GateJson {
                name: names.gate(i),
                op: g.op.name().to_string(),
                args: g.args.iter().map(|&s| names.signal(s)).collect(),
            })
            .collect();
        let outputs = c.outputs().iter().map(|(n, s)| (n.clone(), names.signal(*s))).collect();
        ProgramJson { gates, outputs }
    }
}

/// The full result document.
#[derive(Debug, Clone, Serialize)]
pub struct ResultJson {
    /// Input column names.
    pub inputs: Vec<String>,
    /// Output column names.
    pub outputs: Vec<String>,
    /// Whether the program matches every row of the table.
    pub exact: bool,
    /// Gate count.
    pub gates: usize,
    /// The program.
    pub program: ProgramJson,
    /// The program in compact grammar form (statements joined by `; `).
    pub expression: String,
    /// Restarts used (0 for search).
    pub restarts: u64,
    /// Optimisation steps, or search nodes for search.
    pub steps: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// For search: whether the circuit is proven minimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimal: Option<bool>,
    /// For search: the exact engine that ran last, `"sat"` or
    /// `"enumeration"` (see [`crate::search::Engine`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<&'static str>,
    /// For search: every circuit with fewer gates than this was ruled out (equal to `gates`
    /// when `optimal`), so a reader sees how far an unfinished proof got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<usize>,
}

impl ResultJson {
    /// Builds the document for `c`; the remaining fields are the caller's.
    pub fn new(c: &Circuit, outputs: &[String], exact: bool, restarts: u64, steps: u64, seconds: f64) -> ResultJson {
        ResultJson {
            inputs: c.inputs().to_vec(),
            outputs: outputs.to_vec(),
            exact,
            gates: c.num_gates(),
            program: ProgramJson::from_circuit(c),
            expression: to_expression(c, "; "),
            restarts,
            steps,
            seconds,
            optimal: None,
            engine: None,
            lower_bound: None,
        }
    }

    /// Serialises to a single line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data always serialises")
    }
}
