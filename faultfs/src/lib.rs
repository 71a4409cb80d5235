//! faultfs: the storage seam an engine under test is written against, and two filesystems behind
//! it.
//!
//! - [`Vfs`] / [`VfsFile`]: synchronous, positional, `&self`, `io::Result`, one flat directory.
//!   Every call but `now()` is one numbered operation.
//! - [`SimFs`]: a deterministic simulated disk and page cache. It keeps, per file, the durable
//!   image, the cached image and the ordered unsynced operations; per directory, the durable and the
//!   visible entries and the unsynced entry operations. A [`Profile`] decides which subsets of the
//!   unsynced state a power cut may keep (sector size, torn sectors, reordering, size before data,
//!   directory-operation order, whether a file fsync persists its entry, OS writeback in virtual
//!   time). Power cuts at any operation, process crashes, crashes of crash images (so a second crash
//!   can hit recovery), fsync EIO with `linux` / `btrfs-revert` / `sticky` semantics, write EIO,
//!   ENOSPC short writes, bit flips and latent sector errors. Same seed, same states, same bytes.
//! - [`MemFs`]: a plain in-memory directory with no fault tracking: the baseline SimFs's overhead is
//!   measured against.
//! - [`RealFs`]: the same seam over a real directory (`O_SYNC`/`O_DSYNC`, fsync, fdatasync,
//!   directory fsync), for measuring real throughput and running engines for real.
//!
//! Fault controls live on `SimFs` itself, never on the trait: an engine cannot tell it is being
//! tested.

mod blob;
mod crash;
mod fault;
mod mem;
mod model;
mod profile;
mod real;
mod sim;
mod trace;
mod vfs;

pub use crash::{
    Coverage, CrashPoint, CrashSpace, CrashState, Dropped, Fate, InFlight, image_hash,
};
pub use fault::{EioSemantics, Fault, FaultPlan, Latency};
pub use mem::{MemFile, MemFs};
pub use profile::{DirOps, PROFILE_NAMES, Profile, SizeBeforeData, TornSectors, Writeback};
pub use real::{RealFile, RealFs};
pub use sim::{Capture, FileState, PowerLost, SimConfig, SimFile, SimFs, is_power_cut};
pub use trace::{Call, Outcome, TraceEntry};
pub use vfs::{NAME_MAX_BYTES, OpenOptions, SyncMode, Vfs, VfsFile, check_name};
