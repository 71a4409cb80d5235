//! engine: a Bitcask key-value store written against the `Vfs` seam (powercut-vfs), with every sync strategy
//! and switches that reproduce known durability bugs.
//!
//! - Data files `NNNNNNNNNN.data`, append-only; each record carries a CRC-32 over all its other
//!   bytes, a sequence number, a timestamp, the key and the value (`docs/format.md`).
//! - An in-memory keydir maps each key to its latest record; rotation to a new file at
//!   `max_file_bytes`; merge rewrites live records into one file with a hint file.
//! - Sync strategies: `o_sync`, `interval`, `none`, `batch` (group commit), `checkpoint`
//!   (seed 001's background checkpointer); sync call fsync, fdatasync or O_DSYNC.
//! - Each acknowledgement states its promise; a failed sync is never retried as if nothing
//!   happened; recovery never panics on any bytes.
//!
//! The engine takes all I/O, time and randomness from its `Vfs` (it uses no randomness at all):
//! it never names `std::fs`, `Instant`, `SystemTime` or an RNG. The one thread in this crate is
//! the real-disk runner's ticker ([`runner`]), used only with `RealFs`.

mod config;
mod error;
pub mod format;
mod keydir;
mod merge;
mod recovery;
pub mod runner;
mod store;

pub use config::{BUGS, Config, EngineBugs, SyncCall, SyncStrategy};
pub use error::{AtRisk, Error, Result};
pub use merge::MergeReport;
pub use recovery::{Corruption, RecoveryReport};
pub use store::{Ack, Engine, Promise, TickReport};
