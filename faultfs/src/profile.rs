//! Persistence profiles: which subsets of the unsynced state may survive a power cut.
//!
//! A profile is data. A scenario names one (`"posix"`) or spells knobs over a base
//! (`{"base": "ext4-ordered", "sector_bytes": 512}`); unknown knobs and bad values are rejected
//! with the field named.
//!
//! The knobs, and the state each one lets a power cut produce:
//! - `sector_bytes`: the unit of atomicity for data. An unsynced write is cut into *pieces*, one
//!   per sector it touches; a piece lands whole, not at all, or (with `torn_sectors`) torn.
//! - `torn_sectors`: `none`; `split` (the first part of the sector new, the rest old); or
//!   `split_or_garbage` (also: the sector holds garbage).
//! - `reorder`: `true` lets any subset of a file's unsynced pieces land; `false` only a prefix of
//!   them in issue order. There is never an order between files.
//! - `size_before_data`: a write that grows a file may persist its new size without its data: the
//!   tail then reads as zeros (`zeros`), stale garbage (`garbage`), or either (`zeros_or_garbage`).
//! - `dir_ops`: unsynced create / rename / remove survive as a prefix (`ordered`, like a journal) or
//!   any subset (`any_subset`). A rename is always atomic: the old name or the new, never neither.
//! - `file_sync_persists_entry`: a successful fsync/fdatasync of a file also commits the pending
//!   directory operations on it (ext4 does this in practice; POSIX does not promise it).
//! - `sync_on_completion`: every completed operation is durable at once (the `strict` baseline);
//!   only the operation in flight can be lost.
//! - `writeback`: the OS flushes an inode's dirty data once it has been dirty for
//!   `dirty_expire_ms`, checking every `interval_ms` of virtual time, and commits pending
//!   directory operations every `metadata_commit_ms` (a journal commit). `null`: no writeback.

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
/// `vm.dirty_writeback_centisecs`, and the ext4 journal `commit=` interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writeback {
    /// An inode dirty for this long is flushed at the next writeback pass.
    pub dirty_expire_ms: u64,
    /// Time between writeback passes.
    pub interval_ms: u64,
    /// Time between journal commits of pending directory operations (`null`: never).
    pub metadata_commit_ms: Option<u64>,
}

impl Writeback {
    /// Linux defaults: 30 s expiry, 5 s passes, ext4 journal commit every 5 s.
    pub const LINUX: Writeback =
        Writeback { dirty_expire_ms: 30_000, interval_ms: 5_000, metadata_commit_ms: Some(5_000) };
}

/// A persistence model: the knobs described in the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Profile {
    /// The named profile these knobs started from.
    pub base: String,
    pub sector_bytes: u32,
    pub torn_sectors: TornSectors,
    pub reorder: bool,
    pub size_before_data: SizeBeforeData,
    pub dir_ops: DirOps,
    pub file_sync_persists_entry: bool,
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
            sector_bytes: 4096,
            torn_sectors: TornSectors::None,
            reorder: false,
            size_before_data: SizeBeforeData::Off,
            dir_ops: DirOps::Ordered,
            file_sync_persists_entry: true,
            sync_on_completion: true,
            writeback: None,
        }
    }

    /// ext4 with `data=ordered` and delayed allocation, as calibrated on a real kernel: pages land
    /// in any order (holes are possible), the last sector may be torn, a grown file may keep its
    /// size with a zero-filled tail, directory operations are journaled in order, and an fsync of a
    /// new file commits its entry.
    pub fn ext4_ordered() -> Profile {
        Profile {
            base: "ext4-ordered".into(),
            sector_bytes: 4096,
            torn_sectors: TornSectors::Split,
            reorder: true,
            size_before_data: SizeBeforeData::Zeros,
            dir_ops: DirOps::Ordered,
            file_sync_persists_entry: true,
            sync_on_completion: false,
            writeback: Some(Writeback::LINUX),
        }
    }

    /// ext4 with `data=writeback`: as `ext4-ordered`, but a grown file's tail and a torn sector
    /// may expose stale garbage.
    pub fn ext4_writeback() -> Profile {
        Profile {
            base: "ext4-writeback".into(),
            torn_sectors: TornSectors::SplitOrGarbage,
            size_before_data: SizeBeforeData::Garbage,
            ..Profile::ext4_ordered()
        }
    }

    /// The weakest model POSIX allows: 512-byte sectors, torn or garbage, any subset of unsynced
    /// data and of directory operations, no entry persisted without a directory fsync, and no
    /// writeback promise at all.
    pub fn posix() -> Profile {
        Profile {
            base: "posix".into(),
            sector_bytes: 512,
            torn_sectors: TornSectors::SplitOrGarbage,
            reorder: true,
            size_before_data: SizeBeforeData::ZerosOrGarbage,
            dir_ops: DirOps::AnySubset,
            file_sync_persists_entry: false,
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
                "ext4 data=ordered: any page order, torn last sector, zero tails, journaled dir ops"
            }
            "ext4-writeback" => "ext4 data=writeback: as ext4-ordered, plus stale garbage in tails",
            "posix" => "weakest POSIX: 512 B torn/garbage sectors, any subset of data and dir ops",
            _ => "",
        }
    }

    /// Check the knobs; the error names the field and value.
    pub fn validate(&self) -> Result<(), String> {
        let s = self.sector_bytes;
        if !(512..=65536).contains(&s) || !s.is_power_of_two() {
            return Err(format!(
                "profile field sector_bytes = {s}: must be a power of two from 512 to 65536"
            ));
        }
        if let Some(w) = self.writeback {
            if w.interval_ms == 0 {
                return Err("profile field writeback.interval_ms = 0: must be positive".into());
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
    sector_bytes: Option<u32>,
    torn_sectors: Option<TornSectors>,
    reorder: Option<bool>,
    size_before_data: Option<SizeBeforeData>,
    dir_ops: Option<DirOps>,
    file_sync_persists_entry: Option<bool>,
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
        p.sector_bytes = self.sector_bytes.unwrap_or(p.sector_bytes);
        p.torn_sectors = self.torn_sectors.unwrap_or(p.torn_sectors);
        p.reorder = self.reorder.unwrap_or(p.reorder);
        p.size_before_data = self.size_before_data.unwrap_or(p.size_before_data);
        p.dir_ops = self.dir_ops.unwrap_or(p.dir_ops);
        p.file_sync_persists_entry =
            self.file_sync_persists_entry.unwrap_or(p.file_sync_persists_entry);
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
