//! faultfs: the storage seam an engine under test is written against, and two filesystems behind
//! it.
//!
//! - [`Vfs`] / [`VfsFile`]: the seam, defined in the `powercut-vfs` crate (which a production
//!   engine depends on alone) and re-exported here. Every call but `now()` is one numbered
//!   operation.
//! - [`SimFs`]: a deterministic simulated disk and page cache. It keeps, per file, the durable
//!   image, the cached image and the ordered unsynced operations; per directory, the durable and the
//!   visible entries and the unsynced entry operations. A [`Profile`] decides which subsets of the
//!   unsynced state a power cut may keep (page and sector size, atomic sectors, page snapshots,
//!   torn sectors, reordering, size before data, journal rules, directory-operation order, what a
//!   file fsync commits, calibrated OS writeback in virtual time). Power cuts at any operation,
//!   process crashes, crashes of crash images (so a second crash can hit recovery), fsync EIO
//!   with `linux` / `btrfs-revert` / `sticky` semantics and errseq reporting, write EIO, writeback
//!   EIO, failed journal commits, ENOSPC short writes, bit flips, latent sector errors, and device
//!   faults (misdirected writes, lost flushes, read errors and corruption). Same seed, same
//!   states, same bytes.
//! - [`MemFs`]: a plain in-memory directory tree with no fault tracking: the baseline SimFs's overhead is
//!   measured against.
//! - [`RealFs`] (from `powercut-vfs`, re-exported): the same seam over a real directory.
//!
//! Fault controls live on `SimFs` itself, never on the trait: an engine cannot tell it is being
//! tested.

mod blob;
mod crash;
mod fault;
mod mem;
mod model;
mod names;
mod profile;
mod sim;
mod trace;

pub use crash::{
    Coverage, CrashPoint, CrashSpace, CrashState, Dropped, Fate, InFlight, Shape, image_hash,
};
pub use fault::{EioSemantics, Fault, FaultPlan, Latency};
pub use mem::{MemFile, MemFs};
/// The seam, re-exported: an engine names these through `powercut_vfs` (or here, in its tests).
pub use powercut_vfs::{
    DirEntry, EntryKind, NAME_MAX_BYTES, OpenOptions, PATH_MAX_BYTES, PowerLost, RealFile, RealFs,
    SyncMode, Vfs, VfsFile, check_dir, check_name, check_path, is_power_cut, split_path,
};
pub use profile::{DirOps, PROFILE_NAMES, Profile, SizeBeforeData, TornSectors, Writeback};
pub use sim::{Capture, DeviceDamage, FileState, SimConfig, SimFile, SimFs};
pub use trace::{Call, Outcome, TraceEntry};
