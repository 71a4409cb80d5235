//! Persistence profiles: which subsets of the unsynced state may survive a power cut.
//!
//! A profile is data. A scenario names one (`"posix"`) or spells knobs over a base
//! (`{"base": "ext4-ordered", "sector_bytes": 512}`); unknown knobs and bad values are rejected
//! with the field named.
//!
//! The knobs, and the state each one lets a power cut produce:
//! - `page_bytes`: the unit unsynced data lands in. An unsynced write is cut into *pieces*, one
//!   per page it touches; a piece lands whole, not at all, or (with `torn_sectors`) torn.
//! - `sector_bytes`: the device's sector. With `atomic_sector_writes` a sector is written whole or
//!   not at all, so a torn page is torn only at a sector boundary (Linux block devices, and every
//!   disk that promises atomic sector writes: what LMDB's meta page and SQLite's
//!   `SQLITE_IOCAP_ATOMIC512` rely on). Without it a tear may fall at any byte (a paranoid model).
//! - `page_snapshots`: a page lands as the page cache held it at one moment: writeback copies a
//!   whole page, so a later write in a page never lands without the earlier ones (any
//!   page-cache filesystem). Without it, each write's part of a page lands on its own.
//! - `torn_sectors`: `none`; `split` (the first part of the page new, the rest old); or
//!   `split_or_garbage` (also: the sector holds garbage; only without `atomic_sector_writes`).
//! - `powersafe_overwrite`: a torn or garbled write never garbles the bytes around it. Off, garbage
//!   covers the whole sector a write touched, synced neighbours included (SQLite's crash VFS
//!   without `SQLITE_IOCAP_POWERSAFE_OVERWRITE`). Garbage itself is what a disk exposes: the
//!   program's own older records from removed files, or random bytes with plausible small
//!   lengths in them.
//! - `reorder`: `true` lets any subset of a file's unsynced pages land; `false` only a prefix of
//!   them in issue order. There is never an order between files.
//! - `size_before_data`: a write that grows a file may persist its new size without its data: the
//!   tail then reads as zeros (`zeros`), stale garbage (`garbage`), or either (`zeros_or_garbage`).
//! - `dir_ops`: unsynced entry operations (create, mkdir, symlink, link, rename, remove, rmdir)
//!   survive as a prefix (`ordered`, like a journal) or any subset (`any_subset`). A rename is
//!   always atomic: the old name or the new, never neither. An entry lives in its directory: a
//!   directory's fsync makes the operations on it durable, under `any_subset` each once every
//!   directory it touched is synced (a new directory's entry is in its parent; a rename across
//!   directories needs both), under `ordered` the journal prefix through the last one on it. An
//!   entry below a directory whose own entry did not survive is unreachable.
//! - `file_sync_persists_entry`: a successful fsync/fdatasync of a file also commits the pending
//!   directory operations on it (ext4 does this in practice; POSIX does not promise it); with a
//!   journal, the prefix through it, so its ancestors' new entries too.
//! - `journaled_truncate`: a truncate (`set_len`, `O_TRUNC`) is a journaled metadata change:
//!   data written after it into the blocks it freed lands only if the truncate did, and a later
//!   size change only with it (ext4: freed blocks stay the file's until the truncate commits; new
//!   data goes to blocks the file does not reference before then). Without it, the new head of a
//!   truncated and rewritten file can land on its old tail.
//! - `auto_da_alloc`: a rename over an existing file commits with the renamed file's data written
//!   before it (ext4 `data=ordered`'s default `auto_da_alloc`: replace-via-rename flushes the
//!   data before the rename's commit). Without it, the target can be empty after the rename. Its
//!   other half, replace-via-truncate: closing a file truncated to zero since its last close
//!   (dropping its `SimFile`; a traced `close`) writes its data back at once, and while the
//!   truncate is pending it lands only with the data written before the close, so the file
//!   holds its old contents or its new ones, never nothing. (Once the truncate has committed, a
//!   crash before the next commit can still find the file empty, as on ext4.)
//! - `sync_on_completion`: every completed operation is durable at once (the `strict` baseline);
//!   only the operation in flight can be lost.
//! - `fsync_commits_journal`: a file's fsync — and an fdatasync that must persist a size change or
//!   the file's creation — commits the whole running journal transaction: every pending directory
//!   operation and every written-back size, the file's own or not (ext4, jbd2). An fdatasync with
//!   nothing of the kind commits nothing beyond the file's data.
//! - `writeback`: the OS writes dirty data back in virtual time, as calibrated against a real
//!   kernel (`../shared/calibration/`): a pass every `interval_ms` writes the inodes dirty for
//!   `dirty_expire_ms`; the first pass that finds dirty data writes all of it
//!   (`first_pass_writes_all`); when dirty data reaches `background_bytes` (each filesystem draws
//!   its threshold from its seed within a quarter of it: the kernel's is a share of free memory,
//!   which varies from run to run), `chunk_bytes` of the oldest is written at once, and the rest
//!   `interval_ms` later (a second chunk first if dirty data reaches the threshold again). With
//!   `metadata_commit_ms`, what
//!   writeback wrote becomes durable at the next journal commit (delayed allocation: the size and
//!   block map commit with the journal), the size reaching the end of the last page written;
//!   pending directory operations commit then too. Without it, written data is durable at once.
//!   `null`: no writeback.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// How a sector in flight at a power cut may land.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TornSectors {
    /// Sectors land whole or not at all.
    None,
    /// A sector may land with its first part new and the rest old.
    Split,
    /// As `Split`, or the sector may hold garbage.
    SplitOrGarbage,
}

/// What a file's tail holds when its new size persisted but its data did not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeBeforeData {
    /// The size never persists ahead of the data.
    Off,
    /// The size may persist first; the tail reads as zeros.
    Zeros,
    /// The size may persist first; the tail reads as stale garbage.
    Garbage,
    /// Either of the above.
    ZerosOrGarbage,
}

/// Which unsynced directory operations may survive a power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirOps {
    /// A prefix, in issue order (a metadata journal).
    Ordered,
    /// Any subset (each rename still atomic).
    AnySubset,
}

/// The OS writeback model, in virtual time (Linux `vm.dirty_expire_centisecs`,
/// `vm.dirty_writeback_centisecs`, `vm.dirty_background_bytes`, and the ext4 journal `commit=`
/// interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writeback {
    /// An inode dirty for this long is written at the next writeback pass.
    pub dirty_expire_ms: u64,
    /// Time between writeback passes.
    pub interval_ms: u64,
    /// Time between journal commits (`null`: never; written data is then durable at once).
    pub metadata_commit_ms: Option<u64>,
    /// Dirty bytes, over all files, at which background writeback starts (`null`: never).
    #[serde(default)]
    pub background_bytes: Option<u64>,
    /// What background writeback writes at once; the rest follows `interval_ms` later.
    #[serde(default = "Writeback::default_chunk")]
    pub chunk_bytes: u64,
    /// The first pass that finds dirty data writes all of it.
    #[serde(default)]
    pub first_pass_writes_all: bool,
}

impl Writeback {
    /// Linux defaults as measured on a 6.1 kernel with journaled ext4 (`../shared/calibration/`):
    /// 30 s expiry, 5 s passes, a journal commit every 5 s, background writeback from 16.8 MiB
    /// of dirty data in 8 MiB chunks, and a first pass that writes everything dirty.
    pub const LINUX: Writeback = Writeback {
        dirty_expire_ms: 30_000,
        interval_ms: 5_000,
        metadata_commit_ms: Some(5_000),
        background_bytes: Some(17_616_077),
        chunk_bytes: Writeback::CHUNK_BYTES,
        first_pass_writes_all: true,
    };

    /// The calibrated kernel's background writeback chunk: 8 MiB.
    const CHUNK_BYTES: u64 = 8 << 20;

    fn default_chunk() -> u64 {
        Writeback::CHUNK_BYTES
    }

    /// The longest data written under this model can stay volatile: it expires, waits for the
    /// next pass, then for the next journal commit.
    pub fn durable_within(&self) -> std::time::Duration {
        let commit = self.metadata_commit_ms.unwrap_or(0);
        std::time::Duration::from_millis(self.dirty_expire_ms + self.interval_ms + commit)
    }
}

/// A persistence model: the knobs described in the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Profile {
    /// The named profile these knobs started from.
    pub base: String,
    pub page_bytes: u32,
    pub sector_bytes: u32,
    pub atomic_sector_writes: bool,
    pub page_snapshots: bool,
    pub torn_sectors: TornSectors,
    pub powersafe_overwrite: bool,
    pub reorder: bool,
    pub size_before_data: SizeBeforeData,
    pub dir_ops: DirOps,
    pub file_sync_persists_entry: bool,
    pub journaled_truncate: bool,
    pub auto_da_alloc: bool,
    pub fsync_commits_journal: bool,
    pub sync_on_completion: bool,
    pub writeback: Option<Writeback>,
}

/// Names accepted by [`Profile::named`], weakest last.
pub const PROFILE_NAMES: [&str; 4] = ["strict", "ext4-ordered", "ext4-writeback", "posix"];

impl Profile {
    /// Every completed operation durable at once: the sanity baseline.
    pub fn strict() -> Profile {
        Profile {
            base: "strict".into(),
            page_bytes: 4096,
            sector_bytes: 512,
            atomic_sector_writes: true,
            page_snapshots: true,
            torn_sectors: TornSectors::None,
            powersafe_overwrite: true,
            reorder: false,
            size_before_data: SizeBeforeData::Off,
            dir_ops: DirOps::Ordered,
            file_sync_persists_entry: true,
            journaled_truncate: true,
            auto_da_alloc: true,
            fsync_commits_journal: true,
            sync_on_completion: true,
            writeback: None,
        }
    }

    /// ext4 with `data=ordered` and delayed allocation, as calibrated on a real kernel: 4 KiB
    /// pages land in any order (holes are possible), each as the page cache held it at one moment,
    /// torn only at a 512-byte sector boundary; a grown file may keep its size with a zero-filled
    /// tail; truncates and directory operations are journaled in order; an fsync of a new file
    /// commits its entry; a rename over a file commits with the renamed file's data.
    pub fn ext4_ordered() -> Profile {
        Profile {
            base: "ext4-ordered".into(),
            page_bytes: 4096,
            sector_bytes: 512,
            atomic_sector_writes: true,
            page_snapshots: true,
            torn_sectors: TornSectors::Split,
            powersafe_overwrite: true,
            reorder: true,
            size_before_data: SizeBeforeData::Zeros,
            dir_ops: DirOps::Ordered,
            file_sync_persists_entry: true,
            journaled_truncate: true,
            auto_da_alloc: true,
            fsync_commits_journal: true,
            sync_on_completion: false,
            writeback: Some(Writeback::LINUX),
        }
    }

    /// ext4 with `data=writeback`: as `ext4-ordered`, but a grown file's tail may expose stale
    /// garbage, and a rename over a file does not wait for the renamed file's data.
    pub fn ext4_writeback() -> Profile {
        Profile {
            base: "ext4-writeback".into(),
            size_before_data: SizeBeforeData::Garbage,
            auto_da_alloc: false,
            ..Profile::ext4_ordered()
        }
    }

    /// The weakest model POSIX allows, and the paranoid one: 512-byte units that land on their
    /// own, torn at any byte or holding garbage (no atomic sectors, no page cache), any subset of
    /// unsynced data and of directory operations, no entry persisted without a directory fsync,
    /// no journal ordering, and no writeback promise at all.
    pub fn posix() -> Profile {
        Profile {
            base: "posix".into(),
            page_bytes: 512,
            sector_bytes: 512,
            atomic_sector_writes: false,
            page_snapshots: false,
            torn_sectors: TornSectors::SplitOrGarbage,
            powersafe_overwrite: true,
            reorder: true,
            size_before_data: SizeBeforeData::ZerosOrGarbage,
            dir_ops: DirOps::AnySubset,
            file_sync_persists_entry: false,
            journaled_truncate: false,
            auto_da_alloc: false,
            fsync_commits_journal: false,
            sync_on_completion: false,
            writeback: None,
        }
    }

    /// Look a profile up by name.
    pub fn named(name: &str) -> Result<Profile, String> {
        match name {
            "strict" => Ok(Profile::strict()),
            "ext4-ordered" => Ok(Profile::ext4_ordered()),
            "ext4-writeback" => Ok(Profile::ext4_writeback()),
            "posix" => Ok(Profile::posix()),
            _ => Err(format!(
                "unknown persistence profile {name:?}; accepted: {}",
                PROFILE_NAMES.join(", ")
            )),
        }
    }

    /// One line per profile for `powercut list`.
    pub fn describe(name: &str) -> &'static str {
        match name {
            "strict" => "every completed operation durable at once; a sanity baseline",
            "ext4-ordered" => {
                "ext4 data=ordered: pages in any order, torn at sectors, zero tails, journaled"
            }
            "ext4-writeback" => "ext4 data=writeback: as ext4-ordered, plus stale garbage in tails",
            "posix" => {
                "weakest POSIX, paranoid: byte tears, garbage, any subset of data and dir ops"
            }
            _ => "",
        }
    }

    /// Check the knobs; the error names the field and value.
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [("page_bytes", self.page_bytes), ("sector_bytes", self.sector_bytes)] {
            if !(512..=65536).contains(&v) || !v.is_power_of_two() {
                return Err(format!(
                    "profile field {field} = {v}: must be a power of two from 512 to 65536"
                ));
            }
        }
        if self.sector_bytes > self.page_bytes {
            return Err(format!(
                "profile field sector_bytes = {}: must not exceed page_bytes ({})",
                self.sector_bytes, self.page_bytes
            ));
        }
        if self.atomic_sector_writes && self.torn_sectors == TornSectors::SplitOrGarbage {
            return Err("profile field torn_sectors = split_or_garbage: a sector written \
                        atomically never holds garbage; set atomic_sector_writes to false"
                .into());
        }
        if let Some(w) = self.writeback {
            if w.interval_ms == 0 {
                return Err("profile field writeback.interval_ms = 0: must be positive".into());
            }
            if w.chunk_bytes == 0 {
                return Err("profile field writeback.chunk_bytes = 0: must be positive".into());
            }
            if w.metadata_commit_ms == Some(0) {
                return Err("profile field writeback.metadata_commit_ms = 0: must be positive or \
                            null"
                    .into());
            }
        }
        Ok(())
    }

    /// True when the knobs are exactly those of the named base profile.
    pub fn is_named(&self) -> bool {
        Profile::named(&self.base).is_ok_and(|p| p == *self)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_named() { f.write_str(&self.base) } else { write!(f, "{} (custom)", self.base) }
    }
}

/// The object form: a base profile and any knobs to override.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    base: String,
    page_bytes: Option<u32>,
    sector_bytes: Option<u32>,
    atomic_sector_writes: Option<bool>,
    page_snapshots: Option<bool>,
    torn_sectors: Option<TornSectors>,
    powersafe_overwrite: Option<bool>,
    reorder: Option<bool>,
    size_before_data: Option<SizeBeforeData>,
    dir_ops: Option<DirOps>,
    file_sync_persists_entry: Option<bool>,
    journaled_truncate: Option<bool>,
    auto_da_alloc: Option<bool>,
    fsync_commits_journal: Option<bool>,
    sync_on_completion: Option<bool>,
    #[serde(default, deserialize_with = "explicit_option")]
    writeback: Option<Option<Writeback>>,
}

/// Distinguish a missing `writeback` (keep the base's) from `"writeback": null` (none).
fn explicit_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Writeback>>, D::Error> {
    Option::<Writeback>::deserialize(d).map(Some)
}

impl Overrides {
    fn apply(self) -> Result<Profile, String> {
        let mut p = Profile::named(&self.base)?;
        p.page_bytes = self.page_bytes.unwrap_or(p.page_bytes);
        p.sector_bytes = self.sector_bytes.unwrap_or(p.sector_bytes);
        p.atomic_sector_writes = self.atomic_sector_writes.unwrap_or(p.atomic_sector_writes);
        p.page_snapshots = self.page_snapshots.unwrap_or(p.page_snapshots);
        p.torn_sectors = self.torn_sectors.unwrap_or(p.torn_sectors);
        p.powersafe_overwrite = self.powersafe_overwrite.unwrap_or(p.powersafe_overwrite);
        p.reorder = self.reorder.unwrap_or(p.reorder);
        p.size_before_data = self.size_before_data.unwrap_or(p.size_before_data);
        p.dir_ops = self.dir_ops.unwrap_or(p.dir_ops);
        p.file_sync_persists_entry =
            self.file_sync_persists_entry.unwrap_or(p.file_sync_persists_entry);
        p.journaled_truncate = self.journaled_truncate.unwrap_or(p.journaled_truncate);
        p.auto_da_alloc = self.auto_da_alloc.unwrap_or(p.auto_da_alloc);
        p.fsync_commits_journal = self.fsync_commits_journal.unwrap_or(p.fsync_commits_journal);
        p.sync_on_completion = self.sync_on_completion.unwrap_or(p.sync_on_completion);
        if let Some(w) = self.writeback {
            p.writeback = w;
        }
        p.validate()?;
        Ok(p)
    }
}

impl<'de> Deserialize<'de> for Profile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Profile, D::Error> {
        struct ProfileVisitor;
        impl<'de> Visitor<'de> for ProfileVisitor {
            type Value = Profile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a profile name ({}) or an object {{\"base\": NAME, knobs...}}",
                    PROFILE_NAMES.join(", ")
                )
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Profile, E> {
                Profile::named(name).map_err(E::custom)
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Profile, M::Error> {
                let o = Overrides::deserialize(de::value::MapAccessDeserializer::new(map))?;
                o.apply().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(ProfileVisitor)
    }
}
