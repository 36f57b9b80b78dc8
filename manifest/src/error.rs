//! The one error type of the crate.
//!
//! Every error that comes from the manifest's content names the field with a dotted path
//! (`apps[1].publish[0]`, `mqtt.keepalive_secs`) and says what is allowed, so a user can fix
//! the manifest without reading this crate's source.

use std::fmt;
use std::path::PathBuf;

/// Why a manifest could not be loaded, parsed, validated or laid out in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// The manifest file could not be read.
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The operating system's description of the failure.
        message: String,
    },
    /// The text is not valid TOML.
    Syntax {
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// The parser's description.
        message: String,
    },
    /// A field has a wrong type, an unknown name or a value that is not allowed.
    Field {
        /// Dotted path of the field, e.g. `apps[1].publish[0]`; empty for the document root.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// An error found in a file, with the file's path (what [`crate::load`] returns).
    InFile {
        /// The manifest file.
        path: PathBuf,
        /// The error inside it.
        source: Box<ManifestError>,
    },
}

impl ManifestError {
    /// A field error; the constructor used by validation.
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The dotted path of the offending field, if the error is about one field.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            ManifestError::Field { field, .. } => Some(field),
            ManifestError::InFile { source, .. } => source.field_path(),
            _ => None,
        }
    }

    /// The error without the file context (what [`crate::parse`] would have returned).
    pub fn root(&self) -> &ManifestError {
        match self {
            ManifestError::InFile { source, .. } => source.root(),
            other => other,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Io { path, message } => {
                write!(f, "cannot read manifest {}: {message}", path.display())
            }
            ManifestError::Syntax {
                line: Some(line),
                message,
            } => write!(f, "TOML syntax error at line {line}: {message}"),
            ManifestError::Syntax {
                line: None,
                message,
            } => write!(f, "TOML syntax error: {message}"),
            ManifestError::Field { field, message } if field.is_empty() => {
                write!(f, "{message}")
            }
            ManifestError::Field { field, message } => write!(f, "{field}: {message}"),
            ManifestError::InFile { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ManifestError {}
