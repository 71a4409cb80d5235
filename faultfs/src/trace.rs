//! A compact trace of SimFs operations, for replay output: one line per numbered operation.

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// The call an operation made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Open,
    Rename,
    Remove,
    List,
    SyncDir,
    Read,
    Write,
    Len,
    SetLen,
    SyncAll,
    SyncData,
    CreateDir,
    RemoveDir,
    Link,
    Symlink,
    ReadLink,
    DropCache,
}

impl Call {
    /// The syscall-like name used in trace lines.
    pub fn name(self) -> &'static str {
        match self {
            Call::Open => "open",
            Call::Rename => "rename",
            Call::Remove => "remove",
            Call::List => "list",
            Call::SyncDir => "fsync(dir)",
            Call::Read => "read",
            Call::Write => "write",
            Call::Len => "len",
            Call::SetLen => "set_len",
            Call::SyncAll => "fsync",
            Call::SyncData => "fdatasync",
            Call::CreateDir => "mkdir",
            Call::RemoveDir => "rmdir",
            Call::Link => "link",
            Call::Symlink => "symlink",
            Call::ReadLink => "readlink",
            Call::DropCache => "fadvise(DONTNEED)",
        }
    }

    /// Does the call change state that a power cut could lose?
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Call::Open
                | Call::Rename
                | Call::Remove
                | Call::Write
                | Call::SetLen
                | Call::CreateDir
                | Call::RemoveDir
                | Call::Link
                | Call::Symlink
        )
    }

    /// Is the call a sync point (fsync, fdatasync, directory fsync)?
    pub fn is_sync(self) -> bool {
        matches!(self, Call::SyncDir | Call::SyncAll | Call::SyncData)
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success, with a count (bytes, entries, or a length) where the call has one.
    Ok(u64),
    /// An error, as its errno-like name and whether it was injected.
    Err { errno: &'static str, injected: bool },
    /// The power was cut while this operation was in flight.
    PowerCut,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Operation number, from 1.
    pub op: u64,
    /// Virtual time when it completed.
    pub at: Duration,
    pub call: Call,
    /// The file (or, for rename, `from -> to`).
    pub file: Option<Rc<str>>,
    pub offset: u64,
    pub len: u64,
    pub outcome: Outcome,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.at.as_nanos() as f64 / 1_000.0;
        write!(f, "#{:<6} t={micros:>12.3}us {:<10}", self.op, self.call.name())?;
        if let Some(file) = &self.file {
            write!(f, " {file}")?;
        }
        match self.call {
            Call::Read | Call::Write => write!(f, " @{}+{}", self.offset, self.len)?,
            Call::SetLen => write!(f, " to {}", self.len)?,
            _ => {}
        }
        match &self.outcome {
            Outcome::Ok(n) if matches!(self.call, Call::Read | Call::Write | Call::Len) => {
                write!(f, " = {n}")
            }
            Outcome::Ok(_) => write!(f, " = ok"),
            Outcome::Err { errno, injected: true } => write!(f, " = {errno} (injected)"),
            Outcome::Err { errno, injected: false } => write!(f, " = {errno}"),
            Outcome::PowerCut => write!(f, " = POWER CUT (in flight)"),
        }
    }
}
