//! Engine errors: typed, carrying the data a person needs (file, offset, sequence numbers).
//!
//! Operating errors (EIO, ENOSPC, a power cut, a corrupt record) are values, never panics.

use std::fmt;
use std::io;

/// Sequence numbers `first..=last` of acknowledged writes that may not be durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtRisk {
    pub first: u64,
    pub last: u64,
}

#[derive(Debug)]
pub enum Error {
    /// An I/O call failed (the io::Error names the file).
    Io { op: &'static str, source: io::Error },
    /// A record failed its checks when read: it is never served.
    Corrupt { file: String, offset: u64, reason: String },
    /// A sync failed and so did the attempt to rewrite the unsynced records elsewhere: the engine
    /// refuses every call until reopened. `at_risk` is `None` when no acknowledged write is.
    Poisoned { at_risk: Option<AtRisk>, cause: String },
    /// A configuration no engine can run with (the message names the field).
    Config(String),
    /// A key or value larger than the format allows.
    TooLarge { what: &'static str, len: usize, max: usize },
}

impl Error {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }

    /// The underlying I/O error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Was this caused by a simulated power cut?
    pub fn is_power_cut(&self) -> bool {
        self.io_error().is_some_and(powercut_vfs::is_power_cut)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "{op}: {source}"),
            Error::Corrupt { file, offset, reason } => {
                write!(f, "corrupt record in {file} at offset {offset}: {reason}")
            }
            Error::Poisoned { at_risk: Some(r), cause } => write!(
                f,
                "engine poisoned after a failed sync ({cause}); acknowledged writes seq {}..={} \
                 may be lost; reopen to recover",
                r.first, r.last
            ),
            Error::Poisoned { at_risk: None, cause } => {
                write!(f, "engine poisoned after a failed sync ({cause}); reopen to recover")
            }
            Error::Config(msg) => f.write_str(msg),
            Error::TooLarge { what, len, max } => {
                write!(f, "{what} of {len} bytes is larger than the limit of {max}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
