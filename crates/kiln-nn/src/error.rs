//! kiln-nn's error type: tensor errors from kiln-core plus the I/O, file-format and
//! configuration failures that only appear at this layer.

use std::path::PathBuf;

/// Result alias used throughout kiln-nn.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in kiln-nn.
// Each variant's doc and message say what its fields hold; they are not documented one by one.
#[allow(missing_docs)]
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
    Format { op: &'static str, path: String, msg: String },
    /// A tensor expected in a checkpoint is absent.
    #[error("{op}: tensor `{name}` is missing from {path}")]
    MissingTensor { op: &'static str, name: String, path: String },
    /// A checkpoint tensor has another shape or dtype than the parameter it should fill.
    #[error("{0}")]
    TensorMismatch(Box<TensorMismatch>),
    /// An argument a layer, loss, optimiser or loader cannot use.
    #[error("{op}: {msg}")]
    Config { op: &'static str, msg: String },
}

impl Error {
    pub(crate) fn config(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Config { op, msg: msg.into() }
    }
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(op: &'static str, path: impl std::fmt::Display, msg: impl Into<String>) -> Self {
        Error::Format {
            op,
            path: path.to_string(),
            msg: msg.into(),
        }
    }
}

/// Details of [`Error::TensorMismatch`] (boxed to keep `Result`s small).
#[derive(Debug, Clone)]
pub struct TensorMismatch {
    /// The loader that found it.
    pub op: &'static str,
    /// Tensor name.
    pub name: String,
    /// The file.
    pub path: String,
    /// Shape the model expects.
    pub expected: Vec<usize>,
    /// Dtype the model expects.
    pub expected_dtype: String,
    /// Shape in the file.
    pub found: Vec<usize>,
    /// Dtype in the file.
    pub found_dtype: String,
}

impl std::fmt::Display for TensorMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: tensor `{}` in {} has shape {:?} ({}), the model expects {:?} ({})",
            self.op, self.name, self.path, self.found, self.found_dtype, self.expected, self.expected_dtype
        )
    }
}

/// Lets kiln-nn calls be used with `?` inside closures that return kiln-core results (such as
/// [`kiln_core::gradcheck()`] functions); non-tensor errors become `Error::Value` with their message.
impl From<Error> for kiln_core::Error {
    fn from(e: Error) -> kiln_core::Error {
        match e {
            Error::Core(c) => c,
            other => kiln_core::Error::Value {
                op: "kiln_nn",
                msg: other.to_string(),
            },
        }
    }
}
