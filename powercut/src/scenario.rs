//! Scenario files: what to run, on what, with which faults, for how many seeds.
//!
//! A scenario is JSON with unknown fields rejected; every value is checked when the file is
//! loaded, and an error names the file, the field and the accepted values. One seed derives the
//! workload, the crash points and the fault choices from one ChaCha stream.

use faultfs::{EioSemantics, Profile};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A scenario: the workload a seed runs, the faults it meets, how many seeds the default run
/// covers, and optionally a configuration per subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Letters, digits, `-`, `_` and `.`; names the scenario in output and repro commands.
    pub name: String,
    /// One line saying what the scenario is for.
    #[serde(default)]
    pub description: String,
    /// Subject configurations by subject name ([`crate::Subject::NAME`]): the subject under test
    /// reads its own section, if there is one, and ignores the others. Absent: the subject runs
    /// with the configuration it was given (by the builder, or its CLI's default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subject: BTreeMap<String, Value>,
    /// What each seed does.
    pub workload: Workload,
    /// What goes wrong.
    pub faults: Faults,
    /// How many seeds the default run covers (seeds 0..seeds).
    pub seeds: u64,
}

/// An inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The smallest value.
    pub min: u64,
    /// The largest value.
    pub max: u64,
}

/// Relative weights of the operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    /// Weight of puts.
    pub put: u32,
    #[serde(default)]
    /// Weight of deletes.
    pub delete: u32,
    #[serde(default)]
    /// Weight of gets (checked against what was acknowledged).
    pub get: u32,
    #[serde(default)]
    /// Weight of merges (compaction).
    pub merge: u32,
    /// Atomic batches of puts and deletes ([`crate::Subject::write_batch`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batch: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn twenty() -> u32 {
    20
}

fn is_twenty(n: &u32) -> bool {
    *n == 20
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// What each seed does: operations, keys, values, their timing.
pub struct Workload {
    /// Operations per seed.
    pub ops: u32,
    /// Keys are drawn from `key0000..key{keys-1}`.
    pub keys: u32,
    /// Value sizes in bytes (at least 12: a value carries its write's tag).
    pub value_bytes: Range,
    /// Relative weights of the operations.
    pub mix: Mix,
    /// Virtual time between operations, in microseconds, uniform in the range.
    pub gap_us: Range,
    /// Idle virtual time after the last operation (ticks keep running), in milliseconds.
    #[serde(default)]
    pub tail_ms: u64,
    /// Writes per atomic batch (`mix.batch`), uniform in the range.
    #[serde(default = "default_batch_ops", skip_serializing_if = "is_default_batch_ops")]
    pub batch_ops: Range,
}

fn default_batch_ops() -> Range {
    Range { min: 2, max: 8 }
}

fn is_default_batch_ops(r: &Range) -> bool {
    *r == default_batch_ops()
}

/// Where crash points are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashPoints {
    /// `faults.points_per_seed` per seed, from one run: a crash during each of that many distinct
    /// workload operations (or the idle tail and the end of the run), chosen uniformly, at one of
    /// its filesystem operations, chosen uniformly. The run stops after the last of them.
    Random,
    /// Every operation, and the end of the run.
    EveryOp,
    /// Every fsync, fdatasync and directory fsync, and the end of the run.
    AtSyncPoints,
}

/// How crash states are chosen at each crash point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum States {
    /// `per_point` states drawn from the seed.
    /// States drawn per crash point.
    Sampled {
        /// States drawn per crash point.
        per_point: u32,
    },
    /// Every distinct state, up to `budget` per crash point.
    /// At most this many distinct states per crash point.
    Exhaustive {
        /// At most this many distinct states per crash point.
        budget: u64,
    },
}

/// Relative weights of the crash kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashKinds {
    #[serde(default)]
    /// Weight of power cuts.
    pub power_cut: u32,
    #[serde(default)]
    /// Weight of process crashes (kill -9).
    pub kill: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// What goes wrong: the persistence profile, crashes, injected faults.
pub struct Faults {
    /// The persistence profile: a name, or `{"base": NAME, ...overrides}`.
    pub profile: Profile,
    /// Relative weights of the crash kinds.
    pub crash: CrashKinds,
    /// Where crash points are taken.
    pub crash_points: CrashPoints,
    /// With `random` crash points: how many points one run of the workload yields (K distinct
    /// workload operations drawn per seed, a point in each; the run stops after the last). The
    /// points share the run up to them, so K of them cost about one run. Default:
    /// [`Faults::DEFAULT_POINTS_PER_SEED`]; refused with the other crash-point modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_per_seed: Option<u32>,
    /// How crash states are chosen at each crash point.
    pub states: States,
    /// After recovering, cut the power during (or right after) a recovery of the same image, and
    /// recover again — this many times in a row, each during the previous one's recovery.
    #[serde(default)]
    pub crashes_during_recovery: u32,
    /// After recovering, make this many acknowledged writes, then reopen: they must be there.
    #[serde(default)]
    pub after_recovery_writes: u32,
    /// Generations in all (1: the workload's run alone). For each later one, a recovered crash
    /// state is opened again, takes `generation_writes` writes, and is crashed at a random
    /// filesystem operation of that run (the first crash's kind), recovered and judged; the
    /// image it leaves starts the next.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub generations: u32,
    /// Writes each later generation makes (random workload keys, 16-byte values).
    #[serde(default = "twenty", skip_serializing_if = "is_twenty")]
    pub generation_writes: u32,
    #[serde(default)]
    /// Probability that an fsync/fdatasync fails with EIO.
    pub sync_eio_rate: f64,
    #[serde(default)]
    /// Probability that a write fails with EIO.
    pub write_eio_rate: f64,
    #[serde(default)]
    /// Probability that the background writeback of a file fails.
    pub writeback_eio_rate: f64,
    #[serde(default)]
    /// Probability that a journal commit fails, shutting the filesystem down read-only.
    pub commit_eio_rate: f64,
    #[serde(default)]
    /// Device: probability that a file sync lands one of its writes a few pages away.
    pub misdirect_rate: f64,
    #[serde(default)]
    /// Device: probability that a file sync is acknowledged and lost.
    pub lost_flush_rate: f64,
    #[serde(default)]
    /// Device: probability that a read fails with EIO, once (in the run and in recovery).
    pub read_eio_rate: f64,
    #[serde(default)]
    /// Device: probability that a read returns a flipped bit (in the run and in recovery).
    pub read_corrupt_rate: f64,
    #[serde(default)]
    /// Device: probability that a read finds a latent sector error (in the run and in recovery).
    pub latent_on_read_rate: f64,
    #[serde(default)]
    /// What a failed fsync leaves behind (`linux`, `btrfs-revert`, `sticky`).
    pub eio_semantics: EioSemantics,
    #[serde(default)]
    /// Disk capacity in bytes: writes past it are short (ENOSPC).
    pub capacity_bytes: Option<u64>,
    /// Bits flipped in the durable data of each crash image before recovery.
    #[serde(default)]
    pub bit_flips: u32,
    /// Latent sector errors in each crash image before recovery.
    #[serde(default)]
    pub latent_errors: u32,
    /// Virtual time between `tick`s, in milliseconds.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
}

impl Faults {
    /// Crash points a `random` seed takes from one run of its workload when the scenario does
    /// not say: chosen by measurement (see ARCHITECTURE.md).
    pub const DEFAULT_POINTS_PER_SEED: u32 = 8;

    /// The crash points a `random` seed takes.
    pub fn points_per_seed(&self) -> u32 {
        self.points_per_seed.unwrap_or(Self::DEFAULT_POINTS_PER_SEED)
    }
}

fn default_tick_ms() -> u64 {
    1
}

impl Scenario {
    /// Parse and check a scenario; `origin` names where it came from in errors. An error names
    /// the field by its path (`faults.states.per_point`), the line and the column.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let (path, inner) = (e.path().to_string(), e.inner());
            let at = format!("line {}, column {}", inner.line(), inner.column());
            // serde_json ends its message with the position too: say it once.
            let what = inner.to_string();
            let suffix = format!(" at line {} column {}", inner.line(), inner.column());
            let what = what.strip_suffix(&suffix).unwrap_or(&what);
            match path.as_str() {
                "." | "" => format!("{origin}: {at}: {what}"),
                _ => format!("{origin}: field {path}: {at}: {what}"),
            }
        })?;
        scenario.validate().map_err(|e| format!("{origin}: {e}"))?;
        Ok(scenario)
    }

    /// The scenario as JSON text (what [`Scenario::parse`] reads back).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// A hash of the scenario's content (its JSON), for results that must say what they ran.
    pub fn content_hash(&self) -> String {
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(self.to_json().as_bytes()))
    }

    /// Load and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Scenario::parse(&text, &path.display().to_string())
    }

    fn validate(&self) -> Result<(), String> {
        let field = |name: &str, why: &str| Err(format!("field {name}: {why}"));
        if !is_name(&self.name) {
            return field("name", "must be non-empty, of letters, digits, '-', '_', '.'");
        }
        for name in self.subject.keys() {
            if !is_name(name) {
                return field(
                    &format!("subject.{name}"),
                    "a subject name is letters, digits, '-', '_'",
                );
            }
        }
        let w = &self.workload;
        if w.ops == 0 || w.ops > 1_000_000 {
            return field("workload.ops", "must be from 1 to 1000000");
        }
        if w.keys == 0 || w.keys > 1_000_000 {
            return field("workload.keys", "must be from 1 to 1000000");
        }
        if w.value_bytes.min < 12
            || w.value_bytes.min > w.value_bytes.max
            || w.value_bytes.max > 1 << 24
        {
            return field(
                "workload.value_bytes",
                "needs 12 <= min <= max <= 16777216 (a value carries a 12-byte tag)",
            );
        }
        if w.gap_us.min > w.gap_us.max {
            return field("workload.gap_us", "min must not exceed max");
        }
        let m = w.mix;
        if m.put == 0 {
            return field("workload.mix.put", "must be positive (a workload must write)");
        }
        if u64::from(m.put)
            + u64::from(m.delete)
            + u64::from(m.get)
            + u64::from(m.merge)
            + u64::from(m.batch)
            > u64::from(u32::MAX)
        {
            return field("workload.mix", "weights too large");
        }
        let b = w.batch_ops;
        if b.min == 0 || b.min > b.max || b.max > 10_000 {
            return field("workload.batch_ops", "needs 1 <= min <= max <= 10000");
        }
        let f = &self.faults;
        if f.crash.power_cut == 0 && f.crash.kill == 0 {
            return field("faults.crash", "power_cut and kill weights cannot both be 0");
        }
        for (name, rate) in [
            ("faults.sync_eio_rate", f.sync_eio_rate),
            ("faults.write_eio_rate", f.write_eio_rate),
            ("faults.writeback_eio_rate", f.writeback_eio_rate),
            ("faults.commit_eio_rate", f.commit_eio_rate),
            ("faults.misdirect_rate", f.misdirect_rate),
            ("faults.lost_flush_rate", f.lost_flush_rate),
            ("faults.read_eio_rate", f.read_eio_rate),
            ("faults.read_corrupt_rate", f.read_corrupt_rate),
            ("faults.latent_on_read_rate", f.latent_on_read_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return field(name, &format!("{rate} is not a probability in [0, 1]"));
            }
        }
        match f.states {
            States::Sampled { per_point: 0 } => {
                return field("faults.states.per_point", "must be positive");
            }
            States::Exhaustive { budget: 0 } => {
                return field("faults.states.budget", "must be positive");
            }
            _ => {}
        }
        if f.points_per_seed.is_some_and(|k| !(1..=64).contains(&k)) {
            return field("faults.points_per_seed", "1 to 64");
        }
        if f.points_per_seed.is_some() && f.crash_points != CrashPoints::Random {
            return field(
                "faults.points_per_seed",
                "only with crash_points random (every-op and at-sync-points take every point)",
            );
        }
        if !(1..=8).contains(&f.generations) {
            return field("faults.generations", "1 to 8 (1: the workload's run alone)");
        }
        if f.generations > 1 && f.after_recovery_writes > 0 {
            return field(
                "faults.generations",
                "cannot be combined with after_recovery_writes yet (generation 2 makes its own \
                 writes; set after_recovery_writes to 0)",
            );
        }
        if f.generation_writes > 10_000 {
            return field("faults.generation_writes", "at most 10000");
        }
        if f.crashes_during_recovery > 16 {
            return field("faults.crashes_during_recovery", "at most 16");
        }
        if f.tick_ms == 0 {
            return field("faults.tick_ms", "must be positive");
        }
        if self.seeds == 0 {
            return field("seeds", "must be positive");
        }
        Ok(())
    }
}

/// Scenario and subject names: non-empty, of ASCII letters, digits, `-`, `_`, `.`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}
