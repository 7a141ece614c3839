//! Helpers shared by the SAT engine's test files.

use kiln_logic::exact_sat::{synthesize, SatParams, SatResult};
use kiln_logic::{verify, Table};

/// [`synthesize`] on `t`, which must prove a minimum within `p`'s limits: the circuit verifies
/// against every row by complete simulation and has exactly `lower_bound` gates.
pub fn proven_minimum(t: &Table, p: &SatParams) -> SatResult {
    let r = synthesize(t, p).unwrap();
    let c = r.circuit.as_ref().expect("proven within the limits");
    assert!(verify(c, t).unwrap().ok(), "SAT circuit does not verify");
    assert_eq!(c.num_gates(), r.lower_bound);
    r
}
