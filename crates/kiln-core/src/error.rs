//! The one error type of kiln-core: every fallible op names itself and the shapes or values at fault.

use crate::{DType, Shape};

/// Result alias used throughout kiln.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, and in which op.
// Each variant's doc and message say what its fields hold; they are not documented one by one.
#[allow(missing_docs)]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Two shapes that numpy-style broadcasting cannot reconcile.
    #[error("{op}: shapes {lhs} and {rhs} cannot be broadcast together (dimension {lhs_dim} vs {rhs_dim})")]
    Broadcast {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
        lhs_dim: usize,
        rhs_dim: usize,
    },
    /// Matrix product with incompatible inner dimensions.
    #[error("{op}: cannot multiply {lhs} by {rhs}: inner dimensions {k_lhs} and {k_rhs} differ")]
    Matmul {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
        k_lhs: usize,
        k_rhs: usize,
    },
    /// An op received a dtype it does not support, or two operands disagree.
    #[error("{op}: expected dtype {expected}, got {got}")]
    DType {
        op: &'static str,
        expected: &'static str,
        got: DType,
    },
    /// Two operands have different dtypes.
    #[error("{op}: dtypes differ: {lhs} and {rhs}")]
    DTypeMismatch { op: &'static str, lhs: DType, rhs: DType },
    /// A dimension index outside `-rank..rank`.
    #[error("{op}: dimension {dim} is out of range for a tensor of shape {shape}")]
    Dim { op: &'static str, dim: isize, shape: Shape },
    /// A data buffer whose length does not match the requested shape.
    #[error("{op}: {len} values cannot fill shape {shape} ({expected} elements)")]
    ElementCount {
        op: &'static str,
        len: usize,
        shape: Shape,
        expected: usize,
    },
    /// Shapes that the op cannot combine, with an explanation.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// Index values outside the indexed dimension.
    #[error("{op}: index {index} is out of range for dimension {dim} of size {size}")]
    Index {
        op: &'static str,
        index: i64,
        dim: usize,
        size: usize,
    },
    /// A buffer the allocator could not provide (or larger than `isize::MAX` bytes).
    #[error("{op}: cannot allocate {elems} elements of {elem_bytes} bytes: out of memory")]
    Alloc { op: &'static str, elems: usize, elem_bytes: usize },
    /// An argument value the op cannot use.
    #[error("{op}: {msg}")]
    Value { op: &'static str, msg: String },
    /// Misuse of the autodiff engine.
    #[error("backward: {0}")]
    Backward(String),
    /// Anomaly mode found a NaN or Inf.
    #[error("anomaly: the {phase} of `{op}` produced {what}{note}")]
    Anomaly {
        op: &'static str,
        phase: &'static str,
        what: &'static str,
        note: &'static str,
    },
    /// A gradient check failed; the message lists the worst element.
    #[error("gradcheck: {0}")]
    Gradcheck(String),
}

impl Error {
    /// A [`Error::Shape`] with a message.
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
    /// A [`Error::Value`] with a message.
    pub fn value(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Value { op, msg: msg.into() }
    }
}
