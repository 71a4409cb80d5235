//! Engine configuration: the sync strategy, the sync call, file size, and known-bug switches.
//!
//! Everything here is plain data with serde, so a scenario file can spell it; unknown fields are
//! rejected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// When the engine makes acknowledged writes durable.
///
/// As JSON, `{"kind": "o_sync"}`, `{"kind": "interval", "ms": 100}`, ...: a field the kind does
/// not take is an error, as is a missing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SyncStrategy {
    /// Every write durable before it is acknowledged.
    OSync,
    /// `tick` syncs when dirty and `ms` have passed since the last sync (seed 000's IntervalFsync).
    Interval { ms: u64 },
    /// Never sync; the OS writeback decides (the Riak default).
    None,
    /// Group commit: writes are acknowledged when the group's sync completes — when `max_ops`
    /// are pending, or `max_delay_ms` after the first of them (on a write or a tick).
    Batch { max_ops: u32, max_delay_ms: u64 },
    /// Seed 001's background checkpointer: every `interval_ms`, if dirty, sync — unless writes
    /// are still arriving (the last within `idle_ms`) and the data has been dirty for less than
    /// `max_delay_ms`. `close` syncs now.
    Checkpoint { interval_ms: u64, idle_ms: u64, max_delay_ms: u64 },
}

/// Every field any strategy takes; [`SyncStrategy`]'s deserializer checks which belong to the kind.
/// (serde's internally tagged enums let unknown fields of unit variants through.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    kind: String,
    ms: Option<u64>,
    max_ops: Option<u32>,
    max_delay_ms: Option<u64>,
    interval_ms: Option<u64>,
    idle_ms: Option<u64>,
}

impl<'de> Deserialize<'de> for SyncStrategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = RawStrategy::deserialize(d)?;
        let fields = [
            ("ms", raw.ms.is_some()),
            ("max_ops", raw.max_ops.is_some()),
            ("max_delay_ms", raw.max_delay_ms.is_some()),
            ("interval_ms", raw.interval_ms.is_some()),
            ("idle_ms", raw.idle_ms.is_some()),
        ];
        let takes: &[&str] = match raw.kind.as_str() {
            "o_sync" | "none" => &[],
            "interval" => &["ms"],
            "batch" => &["max_ops", "max_delay_ms"],
            "checkpoint" => &["interval_ms", "idle_ms", "max_delay_ms"],
            other => {
                return Err(D::Error::custom(format!(
                    "unknown strategy kind `{other}`, expected one of `o_sync`, `interval`, \
                     `none`, `batch`, `checkpoint`"
                )));
            }
        };
        if let Some((name, _)) = fields.iter().find(|(n, set)| *set && !takes.contains(n)) {
            let kind = &raw.kind;
            let expected =
                if takes.is_empty() { "no other field".into() } else { takes.join(", ") };
            return Err(D::Error::custom(format!(
                "unknown field `{name}` for strategy kind `{kind}` (it takes {expected})"
            )));
        }
        let missing = |name: &str| D::Error::custom(format!("missing field `{name}`"));
        Ok(match raw.kind.as_str() {
            "o_sync" => SyncStrategy::OSync,
            "none" => SyncStrategy::None,
            "interval" => SyncStrategy::Interval { ms: raw.ms.ok_or_else(|| missing("ms"))? },
            "batch" => SyncStrategy::Batch {
                max_ops: raw.max_ops.ok_or_else(|| missing("max_ops"))?,
                max_delay_ms: raw.max_delay_ms.ok_or_else(|| missing("max_delay_ms"))?,
            },
            _ => SyncStrategy::Checkpoint {
                interval_ms: raw.interval_ms.ok_or_else(|| missing("interval_ms"))?,
                idle_ms: raw.idle_ms.ok_or_else(|| missing("idle_ms"))?,
                max_delay_ms: raw.max_delay_ms.ok_or_else(|| missing("max_delay_ms"))?,
            },
        })
    }
}

impl SyncStrategy {
    /// Short name for tables and logs: `o_sync`, `interval(100ms)`, ...
    pub fn label(&self) -> String {
        match self {
            SyncStrategy::OSync => "o_sync".into(),
            SyncStrategy::Interval { ms } => format!("interval({ms}ms)"),
            SyncStrategy::None => "none".into(),
            SyncStrategy::Batch { max_ops, max_delay_ms } => {
                format!("batch({max_ops} ops/{max_delay_ms}ms)")
            }
            SyncStrategy::Checkpoint { interval_ms, idle_ms, max_delay_ms } => {
                format!("checkpoint({interval_ms}/{idle_ms}/{max_delay_ms}ms)")
            }
        }
    }
}

/// How a sync is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncCall {
    /// fsync: data and all metadata.
    Fsync,
    /// fdatasync: data and size, not mtime — enough for an append-only file (seed 004).
    #[default]
    Fdatasync,
    /// The active file is opened `O_DSYNC`: every write is durable on return; explicit syncs use
    /// fdatasync.
    ODsync,
}

/// Known-bug switches. Each reproduces one bug class from the seeds so the harness can prove it
/// catches it. All off in a correct engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineBugs {
    /// Flush only: acknowledge as durable without ever syncing (seed 002's log-structured variant).
    pub no_fsync: bool,
    /// Rotation creates the new data file without fsyncing the directory (seed 002).
    pub no_dir_fsync_on_rotate: bool,
    /// Merge writes the hint file in place instead of temp + fsync + rename (seed 002).
    pub hint_in_place: bool,
    /// Recovery truncates a torn tail without fsyncing the truncation (seed 002's WAL.truncate).
    pub unsynced_recovery_truncate: bool,
    /// After a failed sync, carry on and let the next sync "succeed" (seed 001's retry; fsyncgate).
    pub fsync_retry_after_eio: bool,
    /// Recovery skips a bad record and reads on, instead of ending the log there.
    pub skip_bad_records: bool,
    /// Merge drops every tombstone, even while an older file may still hold the key.
    pub merge_drops_tombstones: bool,
    /// Merge removes the old files before the merged file is durable.
    pub merge_removes_before_durable: bool,
    /// Recovery stops at a torn record but does not truncate; new records go after the garbage.
    pub append_after_torn_tail: bool,
    /// Recovery applies the records of a batch one by one, so a batch the crash cut short is
    /// half applied.
    pub batch_not_atomic: bool,
    /// Record CRCs do not cover the file id: a removed file's stale record that a crash exposes
    /// inside a new file passes its CRC and is taken for a write.
    pub crc_ignores_file: bool,
    /// Recovery takes a failed read for the end of the log and truncates there, dropping the
    /// durable records after an unreadable sector without a word.
    pub read_error_ends_log: bool,
    /// A read through the keydir (or a hint) checks only the record's CRC, not that the record at
    /// that offset is the one expected (its key and seq): a checksum-valid record a misdirected
    /// write put there is served as another key's value.
    pub trusts_misplaced_record: bool,
    /// Recovery reads through the page cache as it finds it, without dropping its clean pages:
    /// after a kill -9 that followed a failed fsync, it serves data the kernel never wrote.
    pub trusts_page_cache: bool,
}

/// The CLI names of the bug switches, with one-line descriptions.
pub const BUGS: [(&str, &str); 14] = [
    ("no-fsync", "acknowledge writes as durable without ever syncing (flush only)"),
    ("no-dir-fsync-on-rotate", "create a new data file without fsyncing the directory"),
    ("hint-in-place", "write merge hint files in place instead of temp + fsync + rename"),
    ("unsynced-recovery-truncate", "truncate a torn tail in recovery without fsyncing it"),
    ("fsync-retry-after-eio", "after a failed fsync, carry on as if the next one covers it"),
    ("skip-bad-records", "recovery skips a bad record and reads on"),
    ("merge-drops-tombstones", "merge drops tombstones while older files may hold the key"),
    ("merge-removes-before-durable", "merge removes old files before the merged file is durable"),
    ("append-after-torn-tail", "recovery leaves a torn tail in place and appends after it"),
    ("batch-not-atomic", "recovery applies the records of a torn batch one by one"),
    (
        "crc-ignores-file",
        "record CRCs do not cover the file: stale records from removed files pass",
    ),
    ("read-error-ends-log", "recovery takes a read error for the end of the log and truncates"),
    (
        "trusts-misplaced-record",
        "reads check only the CRC, not that the record is the one the keydir expects",
    ),
    (
        "trusts-page-cache",
        "recovery reads the page cache as found: pages a failed fsync never wrote included",
    ),
];

impl EngineBugs {
    /// No bugs.
    pub fn none() -> Self {
        Self::default()
    }

    /// The switch named `name` (a CLI name from [`BUGS`]); the error lists the accepted names.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        let flag = match name {
            "no-fsync" => &mut self.no_fsync,
            "no-dir-fsync-on-rotate" => &mut self.no_dir_fsync_on_rotate,
            "hint-in-place" => &mut self.hint_in_place,
            "unsynced-recovery-truncate" => &mut self.unsynced_recovery_truncate,
            "fsync-retry-after-eio" => &mut self.fsync_retry_after_eio,
            "skip-bad-records" => &mut self.skip_bad_records,
            "merge-drops-tombstones" => &mut self.merge_drops_tombstones,
            "merge-removes-before-durable" => &mut self.merge_removes_before_durable,
            "append-after-torn-tail" => &mut self.append_after_torn_tail,
            "batch-not-atomic" => &mut self.batch_not_atomic,
            "crc-ignores-file" => &mut self.crc_ignores_file,
            "read-error-ends-log" => &mut self.read_error_ends_log,
            "trusts-misplaced-record" => &mut self.trusts_misplaced_record,
            "trusts-page-cache" => &mut self.trusts_page_cache,
            _ => {
                let names: Vec<&str> = BUGS.iter().map(|(n, _)| *n).collect();
                return Err(format!("unknown engine bug {name:?}; accepted: {}", names.join(", ")));
            }
        };
        *flag = true;
        Ok(())
    }

    /// The file id a record in data file `id` is sealed to (its CRC covers it).
    pub fn seal(&self, id: u32) -> u32 {
        if self.crc_ignores_file { 0 } else { id }
    }

    /// A config with only the switch `name` on.
    pub fn only(name: &str) -> Result<Self, String> {
        let mut b = Self::none();
        b.enable(name)?;
        Ok(b)
    }

    /// CLI names of the switches that are on.
    pub fn enabled(&self) -> Vec<&'static str> {
        let on = [
            self.no_fsync,
            self.no_dir_fsync_on_rotate,
            self.hint_in_place,
            self.unsynced_recovery_truncate,
            self.fsync_retry_after_eio,
            self.skip_bad_records,
            self.merge_drops_tombstones,
            self.merge_removes_before_durable,
            self.append_after_torn_tail,
            self.batch_not_atomic,
            self.crc_ignores_file,
            self.read_error_ends_log,
            self.trusts_misplaced_record,
            self.trusts_page_cache,
        ];
        BUGS.iter().zip(on).filter(|(_, on)| *on).map(|((n, _), _)| *n).collect()
    }
}

impl fmt::Display for EngineBugs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = self.enabled();
        if on.is_empty() { f.write_str("none") } else { f.write_str(&on.join(",")) }
    }
}

/// Everything that configures an engine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub strategy: SyncStrategy,
    #[serde(default)]
    pub sync_call: SyncCall,
    /// Rotate to a new data file once the active one would grow past this.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    #[serde(default)]
    pub bugs: EngineBugs,
}

fn default_max_file_bytes() -> u64 {
    64 * 1024 * 1024
}

impl Config {
    /// `strategy` with fdatasync, 64 MiB files, no bugs.
    pub fn new(strategy: SyncStrategy) -> Self {
        Config {
            strategy,
            sync_call: SyncCall::default(),
            max_file_bytes: default_max_file_bytes(),
            bugs: EngineBugs::none(),
        }
    }

    pub fn sync_call(mut self, call: SyncCall) -> Self {
        self.sync_call = call;
        self
    }

    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    pub fn bugs(mut self, bugs: EngineBugs) -> Self {
        self.bugs = bugs;
        self
    }

    /// Check values no engine can run with; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_file_bytes < 4096 {
            return Err(format!(
                "engine field max_file_bytes = {}: must be at least 4096",
                self.max_file_bytes
            ));
        }
        match self.strategy {
            SyncStrategy::Interval { ms: 0 } => {
                Err("engine field strategy.ms = 0: an interval must be positive".into())
            }
            SyncStrategy::Batch { max_ops: 0, .. } => {
                Err("engine field strategy.max_ops = 0: a group needs at least one op".into())
            }
            SyncStrategy::Checkpoint { interval_ms: 0, .. } => {
                Err("engine field strategy.interval_ms = 0: must be positive".into())
            }
            _ => Ok(()),
        }
    }
}
