//! The `Subject` trait: how the harness drives an engine under test.
//!
//! A subject is opened (recovering whatever is on the filesystem), takes key-value operations,
//! does periodic work on `tick`, and reads its whole state back. Every write's acknowledgement says
//! what it promises; the harness's oracle checks exactly that promise and nothing more.
//!
//! # Acknowledgements, promises and `durable_through`
//!
//! Each `put` / `delete` (and `write_batch`) returns an [`Ack`]: the subject's id for the write
//! (`seq`, increasing), what it [`Promise`]s, and `durable_through`, the highest id the subject
//! knows to be durable now. How an engine fills them in, by design:
//!
//! | engine | `promise` | `durable_through` | `tick` |
//! |---|---|---|---|
//! | sync per write (fsync/fdatasync, `O_DSYNC`) before returning | `Durable` | this write's id | returns the last synced id |
//! | group commit that returns only once the group is synced | `Durable` | this write's id | flushes a group that is due |
//! | group commit that returns at once and syncs later | `Queued` | the last synced id | syncs a due group; returns the last synced id |
//! | interval sync (every `T`) | `By(next sync time)` | the last synced id | syncs when `T` has passed |
//! | no sync on the write path (the OS writes back) | `Writeback` | the last synced id, or 0 | nothing (or a periodic sync) |
//!
//! The oracle holds the subject to exactly that: after a power cut, `Durable` writes, `By(t)`
//! writes whose `t` has passed, `Writeback` writes older than the profile's writeback window, and
//! every write a `durable_through` report covered must survive. After a kill -9 (the page cache
//! survives) every acknowledged write must, except `Queued` ones nobody reported durable (those
//! lived in the process's memory). Promise less and you are judged by less; promise more than the
//! engine keeps and powercut finds it.
//!
//! # Errors and power cuts
//!
//! Return a [`SubjectError`] from any call that failed. `?` on an `io::Error` converts it, and
//! marks it as the simulated power cut when [`faultfs::is_power_cut`] says so: after a power cut
//! every filesystem call fails and the run is over, so do not retry or handle it, just return it.
//! An engine that knows which acknowledged writes a failure may have cost (a failed fsync, say)
//! says so with `at_risk`: those losses are excused and counted as reported.

pub use crate::state::State;
use faultfs::SimFs;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::io;
use std::time::Duration;

/// What an acknowledgement promises about durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// Durable now.
    Durable,
    /// Durable by this time on the filesystem clock, provided `tick` keeps being called.
    By(Duration),
    /// Durable once the OS writes it back (its writeback model bounds when).
    Writeback,
    /// Not acknowledged yet: a later `durable_through` at or past this write's `seq` acknowledges
    /// it as durable.
    Queued,
}

/// A write's acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The subject's own id for the write; ids increase with every write.
    pub seq: u64,
    /// What the subject promises about this write.
    pub promise: Promise,
    /// Every write with an id up to this is durable.
    pub durable_through: u64,
}

/// An error from a subject call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectError {
    /// What went wrong, for a person.
    pub message: String,
    /// The error is the simulated power cut (the run is over), not a failure to judge.
    pub power_cut: bool,
    /// The subject named acknowledged writes (ids `first..=last`) that may be lost.
    pub at_risk: Option<(u64, u64)>,
}

impl SubjectError {
    /// An error with this message (not a power cut, nothing reported at risk).
    pub fn new(message: impl Into<String>) -> Self {
        SubjectError { message: message.into(), power_cut: false, at_risk: None }
    }

    /// The subject does not do `what` (the default `write_batch`, say).
    pub fn unsupported(what: &str) -> Self {
        SubjectError::new(format!("unsupported: this subject has no {what}"))
    }

    /// Builder: the acknowledged writes with ids `first..=last` may be lost.
    pub fn at_risk(mut self, first: u64, last: u64) -> Self {
        self.at_risk = Some((first, last));
        self
    }
}

impl From<io::Error> for SubjectError {
    /// The error's message, marked as the power cut when it is one.
    fn from(e: io::Error) -> Self {
        SubjectError { power_cut: faultfs::is_power_cut(&e), ..SubjectError::new(e.to_string()) }
    }
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One write of a [`Subject::write_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
}

/// An engine under test. Implement this for your own engine to put it under powercut's crash
/// tests: see the crate's quick start, and the module documentation for what an [`Ack`] says.
pub trait Subject: Sized {
    /// The subject's name: its section in a scenario's `subject` object, and what output calls it.
    const NAME: &'static str;

    /// What `open` needs besides the filesystem. A scenario's `subject.<NAME>` section is
    /// deserialized into it (see [`Subject::config_from_json`]); reject unknown fields
    /// (`#[serde(deny_unknown_fields)]`) so a misspelled one is an error, not a silent default.
    type Config: Clone + Send + Sync + fmt::Debug + DeserializeOwned;

    /// Known-bug switches (name, what it does): planted bugs that prove your checks catch what
    /// they should. `--bug NAME` on a subject's command line, [`Subject::enable_bug`] in code.
    const BUGS: &'static [(&'static str, &'static str)] = &[];

    /// Whether [`Subject::write_batch`] is implemented. Scenarios with batches (`workload.mix.batch`)
    /// are skipped, and say so, for a subject without it.
    const WRITE_BATCH: bool = false;

    /// The configuration a scenario's `subject.<NAME>` section spells. The default deserializes
    /// it; an error names the field's path.
    fn config_from_json(section: &Value) -> Result<Self::Config, String> {
        config_from_value(section)
    }

    /// Turn on the bug switch `name` (one of [`Subject::BUGS`]).
    fn enable_bug(config: &mut Self::Config, name: &str) -> Result<(), String> {
        let _ = config;
        Err(unknown_bug(name, Self::BUGS))
    }

    /// Open on `fs`, recovering whatever is there.
    fn open(fs: SimFs, config: &Self::Config) -> Result<Self, SubjectError>;
    /// Set `key` to `value`.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError>;
    /// Remove `key` (acknowledged like a put).
    fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError>;
    /// The value of `key`. An error is judged like any other: it may report writes at risk.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError>;
    /// Compaction, if the subject has any.
    fn merge(&mut self) -> Result<(), SubjectError> {
        Ok(())
    }
    /// Apply every write of `batch` atomically: after any crash, all of them or none. One
    /// acknowledgement covers the batch; its `seq` is the batch's id. The default says
    /// unsupported; set [`Subject::WRITE_BATCH`] when you implement it.
    fn write_batch(&mut self, batch: &[BatchOp<'_>]) -> Result<Ack, SubjectError> {
        let _ = batch;
        Err(SubjectError::unsupported("write_batch"))
    }
    /// Periodic work; returns `durable_through`.
    fn tick(&mut self) -> Result<u64, SubjectError>;
    /// Every live key and its value (`State` collects from any iterator of pairs, a
    /// `BTreeMap<Vec<u8>, Vec<u8>>` say; it is cheapest filled in key order with `insert`).
    fn state(&mut self) -> Result<State, SubjectError>;
    /// Problems recovery reported (corrupt ranges, say): shown with a violation, never judged.
    fn recovery_notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// What recovery dropped although it may have been durable: whole records after a bad one,
    /// a damaged range of an older file, keys `state` left out because their records failed
    /// their checks (it is asked after `state` too). When the harness injected corruption into the image
    /// (bit flips, latent sector errors), losses the corruption did not cause are `durability`
    /// violations unless recovery reported dropping data here; then they are counted as
    /// reported losses. Outside injected corruption this is never consulted: a crash alone
    /// must not cost durable data, reported or not.
    fn recovery_dropped(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Deserialize a configuration from JSON, naming the path of a bad or unknown field.
pub fn config_from_value<T: DeserializeOwned>(section: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(section).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." | "" => e.inner().to_string(),
            _ => format!("field {path}: {}", e.inner()),
        }
    })
}

/// The error for a bug switch not in `known`, listing the accepted names.
pub fn unknown_bug(name: &str, known: &[(&str, &str)]) -> String {
    if known.is_empty() {
        return format!("unknown bug switch {name:?}: this subject has none");
    }
    let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
    format!("unknown bug switch {name:?}; accepted: {}", names.join(", "))
}

/// The configuration subject `S` runs `scenario` with: its `subject.<NAME>` section if it has
/// one, else `base`; then the bug switches `bugs` turned on. An error names the field by its
/// path from the scenario's root (`field subject.bitcask.strategy: ...`).
pub fn config_for<S: Subject>(
    scenario: &crate::Scenario,
    base: &S::Config,
    bugs: &[String],
) -> Result<S::Config, String> {
    let mut config = match scenario.subject.get(S::NAME) {
        Some(section) => {
            S::config_from_json(section).map_err(|e| match e.strip_prefix("field ") {
                Some(rest) => format!("field subject.{}.{rest}", S::NAME),
                None => format!("field subject.{}: {e}", S::NAME),
            })?
        }
        None => base.clone(),
    };
    for bug in bugs {
        S::enable_bug(&mut config, bug)?;
    }
    Ok(config)
}

/// The sections of `scenario` for subjects other than `S`, when it has none for `S` (a user's
/// misspelled subject name, say): `S` runs it with its given configuration, which is worth saying.
/// The built-in engine's sections, which every default scenario carries, are not listed.
pub fn foreign_sections<S: Subject>(scenario: &crate::Scenario) -> Vec<&str> {
    if scenario.subject.contains_key(S::NAME) {
        return Vec::new();
    }
    scenario.subject.keys().map(String::as_str).filter(|k| *k != "bitcask").collect()
}
