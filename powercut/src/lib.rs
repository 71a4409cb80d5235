//! powercut: crash-consistency torture tests for storage engines.
//!
//! Write your engine against the [`Vfs`] seam (the `powercut-vfs` crate, all a production build
//! needs), implement [`Subject`] for it in your tests, and [`Check`] runs it on [`SimFs`] — a
//! simulated disk and page cache — cutting the power (or killing the process) at chosen
//! operations, recovering on every crash state, and judging what survived against what each
//! acknowledgement promised.
//!
//! - [`Check`]: the test-side builder; `Check::<MyEngine>::new(config).run()` runs the default
//!   suite and returns a [`Summary`] or the shrunk, replayed first [`Failure`].
//! - [`subject`]: the [`Subject`] trait, and how to fill in an [`Ack`].
//! - [`scenario`] / [`scenarios`]: scenario files, and the default suite compiled in.
//! - [`run`], [`oracle`], [`suite`], [`shrink`], [`replay`]: one seed, the checks, many seeds in
//!   parallel, shrinking, and the replay a person reads.
//! - `cli` (feature `cli`): the whole command line for any subject,
//!   `powercut::cli::main::<MyEngine>()`.
//!
//! # Quick start
//!
//! An engine written against the seam (here a log of checksummed records), its [`Subject`]
//! adapter, and a `#[test]` that runs the default suite on it:
//!
//! ```
//! use powercut::{Ack, Check, Promise, SimFs, State, Subject, SubjectError};
//! use powercut::{OpenOptions, Vfs, VfsFile};
//! use std::collections::BTreeMap;
//! use std::io;
//!
//! /// The engine: generic over the seam, so production runs it on `RealFs`.
//! pub struct Log<V: Vfs> {
//!     file: V::File,
//!     len: u64,
//!     map: BTreeMap<Vec<u8>, Vec<u8>>,
//! }
//!
//! /// Record: key_len u8 | value_len u16 (0xFFFF: delete) | key | value | checksum u32, LE.
//! fn checksum(bytes: &[u8]) -> u32 {
//!     bytes.iter().fold(0x811c_9dc5, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
//! }
//!
//! impl<V: Vfs> Log<V> {
//!     pub fn open(fs: &V) -> io::Result<Self> {
//!         let file = fs.open("log", OpenOptions::create())?;
//!         let mut bytes = Vec::new();
//!         file.read_to_end(&mut bytes)?;
//!         let (mut at, mut map) = (0, BTreeMap::new());
//!         // Replay up to the first record that is short or fails its checksum.
//!         while let Some(h) = bytes.get(at..at + 3) {
//!             let (k, raw) = (h[0] as usize, u16::from_le_bytes([h[1], h[2]]));
//!             let end = at + 3 + k + if raw == 0xFFFF { 0 } else { raw as usize };
//!             let Some(sum) = bytes.get(end..end + 4) else { break };
//!             if checksum(&bytes[at..end]).to_le_bytes() != sum { break }
//!             let key = bytes[at + 3..at + 3 + k].to_vec();
//!             match raw {
//!                 0xFFFF => map.remove(&key),
//!                 _ => map.insert(key, bytes[at + 3 + k..end].to_vec()),
//!             };
//!             at = end + 4;
//!         }
//!         // Cut a torn tail, and make what was recovered durable, name included.
//!         file.set_len(at as u64)?;
//!         file.sync_data()?;
//!         fs.sync_dir()?;
//!         Ok(Log { file, len: at as u64, map })
//!     }
//!
//!     /// Durable when it returns: appended, then fdatasync.
//!     pub fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
//!         let mut rec = vec![key.len() as u8];
//!         rec.extend(value.map_or(0xFFFF, |v| v.len() as u16).to_le_bytes());
//!         rec.extend(key);
//!         rec.extend(value.unwrap_or_default());
//!         rec.extend(checksum(&rec).to_le_bytes());
//!         self.file.write_all_at(&rec, self.len)?;
//!         self.file.sync_data()?;
//!         self.len += rec.len() as u64;
//!         match value {
//!             Some(v) => self.map.insert(key.to_vec(), v.to_vec()),
//!             None => self.map.remove(key),
//!         };
//!         Ok(())
//!     }
//! }
//!
//! /// The adapter powercut drives (in the engine's tests, or behind a feature).
//! pub struct LogSubject {
//!     log: Log<SimFs>,
//!     seq: u64,
//! }
//!
//! impl LogSubject {
//!     fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<Ack, SubjectError> {
//!         self.log.write(key, value)?; // an io::Error converts; a power cut is marked as one
//!         self.seq += 1;
//!         Ok(Ack { seq: self.seq, promise: Promise::Durable, durable_through: self.seq })
//!     }
//! }
//!
//! impl Subject for LogSubject {
//!     const NAME: &'static str = "log";
//!     type Config = ();
//!
//!     fn open(fs: SimFs, _: &()) -> Result<Self, SubjectError> {
//!         Ok(LogSubject { log: Log::open(&fs)?, seq: 0 })
//!     }
//!     fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError> {
//!         self.write(key, Some(value))
//!     }
//!     fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError> {
//!         self.write(key, None)
//!     }
//!     fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError> {
//!         Ok(self.log.map.get(key).cloned())
//!     }
//!     fn tick(&mut self) -> Result<u64, SubjectError> {
//!         Ok(self.seq) // every write is synced before it is acknowledged
//!     }
//!     fn state(&mut self) -> Result<State, SubjectError> {
//!         Ok(self.log.map.iter().collect())
//!     }
//! }
//!
//! #[test]
//! fn the_log_survives_every_crash() {
//!     let summary = Check::<LogSubject>::new(()).seeds(0..10).run();
//!     println!("{}", summary.unwrap_or_else(|failure| panic!("{failure}")));
//! }
//! # fn main() {
//! #     let summary = Check::<LogSubject>::new(()).seeds(0..3).no_regressions().run();
//! #     let summary = summary.unwrap_or_else(|failure| panic!("{failure}"));
//! #     assert!(summary.to_string().contains("PASS log"), "{summary}");
//! # }
//! ```
//!
//! A failure prints the replay of the shrunk first failing case — every operation with its
//! acknowledgement, the syscalls around the crash, what the crash kept and dropped — and the
//! `POWERCUT_CASE=... cargo test ...` command that replays exactly that case. For the whole
//! command line (run, replay, shrink, merge, JUnit, partitions) on the same adapter, see
//! `cli` (feature `cli`).
//!
//! Determinism: a seed's outcome depends only on the scenario, the seed, the subject's
//! configuration and the binary. Seeds run in parallel but share nothing, and results are ordered
//! by seed.
//!
//! Features: `cli` (the command line and black-box mode; clap, indicatif, regex), `bitcask` (the
//! built-in engine, its durability report and the `powercut` binary). Both are on by default;
//! a user crate takes `default-features = false` for the builder alone, adding
//! `features = ["cli"]` for its own command line.
#![warn(missing_docs)]
#![expect(
    clippy::test_attr_in_doctest,
    reason = "the quick start shows the #[test] a user writes; its hidden main runs the same check"
)]

#[cfg(feature = "bitcask")]
pub mod bitcask;
#[cfg(feature = "cli")]
pub mod blackbox;
#[cfg(feature = "bitcask")]
pub mod bugs;
pub mod case;
pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod oracle;
pub mod replay;
#[cfg(feature = "bitcask")]
pub mod report;
#[cfg(feature = "bitcask")]
pub mod report_html;
pub mod run;
pub mod scenario;
pub mod scenarios;
pub mod shrink;
pub mod state;
pub mod subject;
pub mod suite;
pub mod workload;

pub use case::Case;
pub use check::{Check, Failure, Summary};
pub use scenario::Scenario;
pub use state::State;
pub use subject::{Ack, BatchOp, Promise, Subject, SubjectError};

/// The simulated filesystem and its fault model (the `faultfs` crate).
pub use faultfs;
pub use faultfs::{Profile, SimFile, SimFs};
/// The seam (the `powercut-vfs` crate).
pub use powercut_vfs as vfs;
pub use powercut_vfs::{OpenOptions, RealFs, SyncMode, Vfs, VfsFile, is_power_cut};

/// Keep freed memory in the process instead of handing it back to the kernel (glibc only; a
/// no-op elsewhere). A crash scenario allocates and frees a few hundred KiB (its workload, crash
/// images, recovered files and states); with glibc's defaults the top of the heap went back to the
/// kernel after a scenario and came back as fresh zeroed pages in the next, some 30 page faults a
/// scenario and a fifth of a run's time. `powercut`, [`Check`] and the benchmarks call this.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    set_malloc_thresholds();
}

/// End quietly, with exit status 141 as a Unix command killed by SIGPIPE, when stdout (or stderr)
/// is a pipe its reader closed (`| head`), instead of a panic and a backtrace: Rust ignores
/// SIGPIPE, so `println!` panics on the closed pipe. A panic hook rather than SIGPIPE's default
/// action, because black-box mode writes to check servers' pipes and must survive their deaths.
/// The command lines call this first.
pub fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info)
    }));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt sets two glibc tunables and has no safety preconditions")]
fn set_malloc_thresholds() {
    // SAFETY: mallopt takes plain integers and only changes allocator thresholds.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}
