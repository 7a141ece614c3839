//! kiln-nn's error type: tensor errors from kiln-core plus the I/O, file-format and
//! configuration failures that only appear at this layer.

use std::path::PathBuf;

/// Result alias used throughout kiln-nn.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in kiln-nn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor op failed (the message names the op and shapes).
    #[error(transparent)]
    Core(#[from] kiln_core::Error),
    /// Reading or writing a file failed.
    #[error("{op}: {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's contents are malformed (truncated, corrupt, wrong magic, ...).
    #[error("{op}: {path}: {msg}")]
    Format {
        op: &'static str,
        path: String,
        msg: String,
    },
    /// A tensor expected in a checkpoint is absent.
    #[error("{op}: tensor `{name}` is missing from {path}")]
    MissingTensor {
        op: &'static str,
        name: String,
        path: String,
    },
    /// A checkpoint tensor has another shape or dtype than the parameter it should fill.
    #[error("{op}: tensor `{name}` in {path} has shape {found:?} ({found_dtype}), the model expects {expected:?} ({expected_dtype})")]
    TensorMismatch {
        op: &'static str,
        name: String,
        path: String,
        expected: Vec<usize>,
        expected_dtype: String,
        found: Vec<usize>,
        found_dtype: String,
    },
    /// An argument a layer, loss, optimiser or loader cannot use.
    #[error("{op}: {msg}")]
    Config { op: &'static str, msg: String },
}

impl Error {
    pub(crate) fn config(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Config {
            op,
            msg: msg.into(),
        }
    }
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(
        op: &'static str,
        path: impl std::fmt::Display,
        msg: impl Into<String>,
    ) -> Self {
        Error::Format {
            op,
            path: path.to_string(),
            msg: msg.into(),
        }
    }
}
