//! powercut-vfs: the storage seam powercut crash-tests an engine through, and nothing else.
//!
//! An engine is written against [`Vfs`] / [`VfsFile`] (generic, `Engine<V: Vfs>`). In production
//! it runs on [`RealFs`], a real directory; under test, powercut runs it on its simulated
//! filesystem (`SimFs`, in the `faultfs` crate) and cuts the power at any operation. This crate is
//! all a production build needs: it depends on `std` and `libc` only, so the simulator and the
//! harness stay out of the engine's dependency graph.
//!
//! - [`Vfs`]: open, rename, remove, `create_dir`, `remove_dir`, `read_dir`, `sync_dir_at`, `link`,
//!   `symlink`, `read_link`, `now` over a directory tree below one root (with `list` and
//!   `sync_dir` for the root itself).
//! - [`VfsFile`]: positional `read_at` / `write_at`, `len`, `set_len`, `sync_all` (fsync),
//!   `sync_data` (fdatasync).
//! - [`is_power_cut`]: tells a simulated power cut (the run is over: stop, do not handle it) from
//!   an I/O error the engine must handle. On a real disk it is always `false`.
//!
//! ```
//! use powercut_vfs::{OpenOptions, RealFs, Vfs, VfsFile};
//!
//! let dir = std::env::temp_dir().join(format!("powercut-vfs-doc-{}", std::process::id()));
//! let fs = RealFs::create(&dir)?;
//! let log = fs.open("log", OpenOptions::create())?;
//! log.write_all_at(b"record", 0)?;
//! log.sync_data()?; // the bytes are durable
//! fs.sync_dir()?; // and so is the file's name
//! assert_eq!(fs.list()?, ["log"]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![warn(missing_docs)]

mod real;
mod seam;

pub use real::{RealFile, RealFs};
pub use seam::{
    DirEntry, EntryKind, NAME_MAX_BYTES, OpenOptions, PATH_MAX_BYTES, SyncMode, Vfs, VfsFile,
    check_dir, check_name, check_path, split_path,
};

use std::fmt;
use std::io;

/// The error inside every `io::Error` a simulated filesystem returns once its power is cut.
///
/// An engine should not handle it: the machine is off, and nothing it does now happens. Pass it
/// up (the harness recognizes it with [`is_power_cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerLost {
    /// The operation that was in flight.
    pub op: u64,
}

impl fmt::Display for PowerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "power cut during operation {}", self.op)
    }
}

impl std::error::Error for PowerLost {}

/// Is this error a simulated power cut (rather than an I/O error the engine should handle)?
pub fn is_power_cut(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<PowerLost>())
}
