//! The `Subject` trait: how the harness drives an engine under test, and the built-in Bitcask
//! subject.
//!
//! A subject is opened (recovering whatever is on the filesystem), takes key-value operations,
//! does periodic work on `tick`, and reads its whole state back. Every write's acknowledgement says
//! what it promises; the harness's oracle checks exactly that promise and nothing more.

pub use crate::state::State;
use engine::{Config, Engine, Promise as EnginePromise};
use faultfs::SimFs;
use std::fmt;
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
    pub promise: Promise,
    /// Every write with an id up to this is durable.
    pub durable_through: u64,
}

/// An error from a subject call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectError {
    pub message: String,
    /// The error is the simulated power cut (the run is over), not a failure to judge.
    pub power_cut: bool,
    /// The subject named acknowledged writes (ids `first..=last`) that may be lost.
    pub at_risk: Option<(u64, u64)>,
}

impl SubjectError {
    pub fn new(message: impl Into<String>) -> Self {
        SubjectError { message: message.into(), power_cut: false, at_risk: None }
    }
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An engine under test. Implement this for your own engine to put it under powercut's crash
/// tests (see the README).
pub trait Subject: Sized {
    /// What `open` needs besides the filesystem.
    type Config: Clone + Send + Sync;

    /// Open on `fs`, recovering whatever is there.
    fn open(fs: SimFs, config: &Self::Config) -> Result<Self, SubjectError>;
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError>;
    fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError>;
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError>;
    /// Compaction, if the subject has any.
    fn merge(&mut self) -> Result<(), SubjectError> {
        Ok(())
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
}

/// The built-in subject: powercut's Bitcask engine on SimFs.
#[derive(Debug)]
pub struct Bitcask {
    engine: Engine<SimFs>,
}

fn err(e: engine::Error) -> SubjectError {
    let at_risk = match &e {
        engine::Error::Poisoned { at_risk: Some(r), .. } => Some((r.first, r.last)),
        _ => None,
    };
    SubjectError { power_cut: e.is_power_cut(), message: e.to_string(), at_risk }
}

fn ack(a: engine::Ack) -> Ack {
    let promise = match a.promise {
        EnginePromise::Durable => Promise::Durable,
        EnginePromise::By(t) => Promise::By(t),
        EnginePromise::Writeback => Promise::Writeback,
        EnginePromise::Queued => Promise::Queued,
    };
    Ack { seq: a.seq, promise, durable_through: a.durable_through }
}

impl Subject for Bitcask {
    type Config = Config;

    fn open(fs: SimFs, config: &Config) -> Result<Self, SubjectError> {
        Engine::open(fs, config.clone()).map(|engine| Bitcask { engine }).map_err(err)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError> {
        self.engine.put(key, value).map(ack).map_err(err)
    }

    fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError> {
        self.engine.delete(key).map(ack).map_err(err)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError> {
        self.engine.get(key).map_err(err)
    }

    fn merge(&mut self) -> Result<(), SubjectError> {
        self.engine.merge().map(|_| ()).map_err(err)
    }

    fn tick(&mut self) -> Result<u64, SubjectError> {
        self.engine.tick().map(|t| t.durable_through).map_err(err)
    }

    fn state(&mut self) -> Result<State, SubjectError> {
        let (keys, bytes) = self.engine.live_size();
        let mut state = State::with_capacity(keys, bytes);
        self.engine.visit_state(|k, v| state.insert(k, v)).map_err(err)?;
        Ok(state)
    }

    fn recovery_notes(&self) -> Vec<String> {
        let r = self.engine.recovery_report();
        let mut notes: Vec<String> = r
            .corrupt
            .iter()
            .map(|c| format!("corrupt: {} at {} ({} bytes): {}", c.file, c.offset, c.len, c.reason))
            .collect();
        if let Some((file, from, to)) = &r.truncated {
            notes.push(format!("truncated torn tail of {file}: {from}..{to}"));
        }
        notes.extend(
            r.skipped.iter().map(|c| format!("skipped bad bytes in {} at {}", c.file, c.offset)),
        );
        notes
    }
}
