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
//! Determinism: a seed's outcome depends only on the scenario, the seed, the subject's
//! configuration and the binary. Seeds run in parallel but share nothing, and results are ordered
//! by seed.
//!
//! Features: `cli` (the command line and black-box mode; clap, indicatif, regex), `bitcask` (the
//! built-in engine, its durability report and the `powercut` binary). Both are on by default;
//! a user crate takes `default-features = false` for the builder alone, adding
//! `features = ["cli"]` for its own command line.
#![warn(missing_docs)]

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

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt sets two glibc tunables and has no safety preconditions")]
fn set_malloc_thresholds() {
    // SAFETY: mallopt takes plain integers and only changes allocator thresholds.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}
