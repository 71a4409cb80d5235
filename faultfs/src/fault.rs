//! Injected faults and the device latency model.
//!
//! Faults, each deterministic given the SimFs seed and the operation number:
//! - `SyncEio`: an fsync / fdatasync / directory fsync / write-through write fails with EIO. What
//!   happens to the dirty data then is the [`EioSemantics`] — the place real engines lose data
//!   (Rebello et al., ATC'20; PostgreSQL "fsyncgate", 2018):
//!   - `linux`: the dirty pages are marked clean. Reads still show the new data, the durable image
//!     keeps the old, the error is reported once, and the next fsync succeeds with nothing to do.
//!   - `btrfs-revert`: the file's cached image reverts to its durable image.
//!   - `sticky`: the pages stay dirty, and this and every later fsync of the file fail.
//! - `WriteEio`: a write or truncate fails with EIO and changes nothing.
//! - `WritebackEio`: background writeback of a file fails. Under `linux` what it wrote is dropped
//!   (the pages are marked clean: the data vanishes silently unless someone fsyncs), and the error
//!   is recorded on the file, errseq-style: the next fsync through *every* descriptor opened
//!   before it reports EIO once (and through one opened later, if no one has seen it yet).
//! - Device faults, as TigerBeetle's storage simulator has them: `MisdirectedWrite` (a file sync
//!   lands one write a few pages from its place), `LostFlush` (a file sync acknowledged and lost),
//!   `ReadEio` (one read fails), `ReadCorrupt` (one read returns a flipped bit), `LatentOnRead`
//!   (a read finds a latent sector error). Each fault that can cost data records what it may
//!   have cost ([`crate::SimFs::device_damage`]): the bytes that did not land, or that were
//!   overwritten, so an oracle can tell the records it touched from the ones it did not.
//! - `CommitEio`: a journal commit fails: the filesystem shuts down read-only (ext4
//!   `errors=remount-ro`); every later write, sync, create, rename or remove fails.
//! - A failed fsync under `linux` may still have persisted some of the file's pages (a prefix of
//!   its unsynced writes, drawn from the seed); a later write to a page whose data was dropped
//!   makes the whole page dirty again, so the dropped bytes reach the disk with it.
//! - ENOSPC: with a capacity, a write that would grow the live files past it is cut short at the
//!   capacity (a short write); a write of which nothing fits fails with `StorageFull`.
//! - Read faults (set on a SimFs directly, see `SimFs::flip_bit` and `SimFs::add_latent_error`):
//!   a flipped bit in a durable sector, or a latent sector error that fails every read touching
//!   the sector with EIO until the sector is rewritten.
//!
//! Faults fire either at a scheduled operation number or at random with a per-operation rate drawn
//! from the SimFs's seeded ChaCha stream. Every fired fault is recorded (`SimFs::fired_faults`) so a
//! shrinker can turn a random run into an explicit schedule and remove faults one by one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a failed fsync does to the dirty data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EioSemantics {
    /// Pages marked clean, cache keeps new data, durable keeps old, next fsync succeeds.
    #[default]
    Linux,
    /// The cached image reverts to the durable image.
    BtrfsRevert,
    /// Pages stay dirty; every later fsync of the file fails.
    Sticky,
}

impl EioSemantics {
    /// Names accepted in scenario files.
    pub const NAMES: [&'static str; 3] = ["linux", "btrfs-revert", "sticky"];
}

/// A fault injected at one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// fsync / fdatasync / directory fsync / write-through write returns EIO.
    SyncEio,
    /// write / set_len returns EIO and changes nothing.
    WriteEio,
    /// Background writeback of a file fails (at the first writeback at or after the operation):
    /// what it wrote is handled per the [`EioSemantics`], and the error is reported at the next
    /// fsync of every descriptor that has not seen it — or never, if none comes.
    WritebackEio,
    /// A journal commit fails (the first at or after the operation): nothing of it becomes
    /// durable and the filesystem shuts down read-only (ext4 `errors=remount-ro`): every later
    /// write, sync or directory operation fails.
    CommitEio,
    /// Device: a file sync lands one of the writes it flushes at the wrong place (a page or a
    /// few away): checksum-valid data where it does not belong, old data where it does.
    MisdirectedWrite,
    /// Device: a file sync is acknowledged and lost: nothing it flushed is durable yet.
    LostFlush,
    /// Device: a read fails with EIO this once.
    ReadEio,
    /// Device: a read returns one bit flipped; the disk is fine.
    ReadCorrupt,
    /// Device: a read finds a latent sector error in the range it reads: it fails with EIO, and
    /// so does every later read of the page until it is rewritten.
    LatentOnRead,
}

impl Fault {
    /// Every fault, with the name schedules use.
    pub const NAMES: [(Fault, &'static str); 9] = [
        (Fault::SyncEio, "sync-eio"),
        (Fault::WriteEio, "write-eio"),
        (Fault::WritebackEio, "writeback-eio"),
        (Fault::CommitEio, "commit-eio"),
        (Fault::MisdirectedWrite, "misdirected-write"),
        (Fault::LostFlush, "lost-flush"),
        (Fault::ReadEio, "read-eio"),
        (Fault::ReadCorrupt, "read-corrupt"),
        (Fault::LatentOnRead, "latent-on-read"),
    ];

    /// The name schedules use.
    pub fn name(self) -> &'static str {
        Fault::NAMES.iter().find(|(f, _)| *f == self).map_or("", |(_, n)| n)
    }

    /// The fault named `name`.
    pub fn named(name: &str) -> Option<Fault> {
        Fault::NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// Which faults to inject.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Faults at exact operation numbers. A fault at an operation it does not apply to (a
    /// `SyncEio` at a read, say) does not fire.
    pub at_ops: BTreeMap<u64, Fault>,
    /// Probability that any one sync operation fails with EIO.
    pub sync_eio_rate: f64,
    /// Probability that any one write or set_len fails with EIO.
    pub write_eio_rate: f64,
    /// Probability that the writeback of any one file fails.
    pub writeback_eio_rate: f64,
    /// Probability that any one journal commit fails (and the filesystem shuts down).
    pub commit_eio_rate: f64,
    /// Device faults, each a probability per file sync ([`Fault::MisdirectedWrite`],
    /// [`Fault::LostFlush`]) or per read ([`Fault::ReadEio`], [`Fault::ReadCorrupt`],
    /// [`Fault::LatentOnRead`]).
    pub misdirect_rate: f64,
    pub lost_flush_rate: f64,
    pub read_eio_rate: f64,
    pub read_corrupt_rate: f64,
    pub latent_on_read_rate: f64,
    /// What a failed sync does to the dirty data.
    pub eio_semantics: EioSemantics,
    /// A `linux` fsync EIO persists none of the writes it was flushing (the worst case), instead
    /// of a prefix of them drawn from the seed.
    pub eio_persists_nothing: bool,
    /// Total bytes the live files may hold; `None` is unlimited.
    pub capacity_bytes: Option<u64>,
}

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Schedule `fault` at operation `op`.
    pub fn at(mut self, op: u64, fault: Fault) -> Self {
        self.at_ops.insert(op, fault);
        self
    }

    /// The plan with every random rate at zero: its schedule, semantics and capacity alone (what
    /// a replay of recorded faults runs with).
    pub fn without_rates(self) -> Self {
        FaultPlan {
            sync_eio_rate: 0.0,
            write_eio_rate: 0.0,
            writeback_eio_rate: 0.0,
            commit_eio_rate: 0.0,
            misdirect_rate: 0.0,
            lost_flush_rate: 0.0,
            read_eio_rate: 0.0,
            read_corrupt_rate: 0.0,
            latent_on_read_rate: 0.0,
            ..self
        }
    }

    /// Builder: EIO semantics.
    pub fn semantics(mut self, semantics: EioSemantics) -> Self {
        self.eio_semantics = semantics;
        self
    }

    /// Builder: capacity limit.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity_bytes = Some(bytes);
        self
    }
}

/// Virtual time each operation costs. Defaults are what this project measured on a virtio disk
/// under ext4 (append ~1 µs, fdatasync ~130 µs, fsync ~150 µs, create + directory fsync ~170 µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub read_ns: u64,
    pub write_ns: u64,
    pub sync_data_ns: u64,
    pub sync_all_ns: u64,
    pub sync_dir_ns: u64,
    /// open, rename, remove, list, len, set_len.
    pub metadata_ns: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            read_ns: 500,
            write_ns: 1_000,
            sync_data_ns: 130_000,
            sync_all_ns: 150_000,
            sync_dir_ns: 150_000,
            metadata_ns: 20_000,
        }
    }
}

impl Latency {
    /// Operations take no virtual time (unit tests that set the clock by hand).
    pub fn zero() -> Self {
        Latency {
            read_ns: 0,
            write_ns: 0,
            sync_data_ns: 0,
            sync_all_ns: 0,
            sync_dir_ns: 0,
            metadata_ns: 0,
        }
    }

    pub(crate) fn of(ns: u64) -> Duration {
        Duration::from_nanos(ns)
    }
}
