//! The built-in subject: powercut's Bitcask engine (the `engine` crate) on SimFs, and its
//! configuration as scenarios spell it (`"subject": {"bitcask": {...}}`).

use crate::subject::{Ack, BatchOp, Promise, State, Subject, SubjectError, config_from_value};
use engine::{Config, Engine, EngineBugs, Promise as EnginePromise, SyncCall, SyncStrategy};
use faultfs::SimFs;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Bitcask engine's configuration in a scenario, bug switches by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcaskSpec {
    /// When acknowledged writes are made durable.
    pub strategy: SyncStrategy,
    /// fsync, fdatasync or O_DSYNC.
    #[serde(default)]
    pub sync_call: SyncCall,
    /// Rotate to a new data file past this size, in bytes.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Known-bug switches on (names from `engine::BUGS`).
    #[serde(default)]
    pub bugs: Vec<String>,
}

fn default_max_file_bytes() -> u64 {
    1 << 20
}

impl Default for BitcaskSpec {
    /// o_sync with fdatasync, 1 MiB files, no bugs.
    fn default() -> Self {
        BitcaskSpec {
            strategy: SyncStrategy::OSync,
            sync_call: SyncCall::default(),
            max_file_bytes: default_max_file_bytes(),
            bugs: Vec::new(),
        }
    }
}

impl BitcaskSpec {
    /// The engine's configuration, bug switches resolved and values checked.
    pub fn engine_config(&self) -> Result<Config, String> {
        let mut bugs = EngineBugs::none();
        for name in &self.bugs {
            bugs.enable(name).map_err(|e| format!("field bugs: {e}"))?;
        }
        let config = Config::new(self.strategy)
            .sync_call(self.sync_call)
            .max_file_bytes(self.max_file_bytes)
            .bugs(bugs);
        config.validate()?;
        Ok(config)
    }
}

/// The built-in subject: powercut's Bitcask engine on SimFs.
#[derive(Debug)]
pub struct Bitcask {
    engine: Engine<SimFs>,
    /// Keys the last `state` could not read (their records failed their checks), and why: the
    /// engine said so, so the harness counts them as reported losses.
    unreadable: Vec<String>,
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
    const NAME: &'static str = "bitcask";
    type Config = BitcaskSpec;
    const BUGS: &'static [(&'static str, &'static str)] = &engine::BUGS;
    const WRITE_BATCH: bool = true;

    fn config_from_json(section: &Value) -> Result<BitcaskSpec, String> {
        let spec: BitcaskSpec = config_from_value(section)?;
        spec.engine_config()?;
        Ok(spec)
    }

    fn enable_bug(spec: &mut BitcaskSpec, name: &str) -> Result<(), String> {
        EngineBugs::none().enable(name)?;
        if !spec.bugs.iter().any(|b| b == name) {
            spec.bugs.push(name.to_string());
        }
        Ok(())
    }

    fn open(fs: SimFs, spec: &BitcaskSpec) -> Result<Self, SubjectError> {
        let config = spec.engine_config().map_err(SubjectError::new)?;
        Engine::open(fs, config)
            .map(|engine| Bitcask { engine, unreadable: Vec::new() })
            .map_err(err)
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

    fn write_batch(&mut self, batch: &[BatchOp<'_>]) -> Result<Ack, SubjectError> {
        let ops: Vec<(&[u8], Option<&[u8]>)> = batch
            .iter()
            .map(|op| match *op {
                BatchOp::Put { key, value } => (key, Some(value)),
                BatchOp::Delete { key } => (key, None),
            })
            .collect();
        self.engine.write_batch(&ops).map(ack).map_err(err)
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
        let unreadable = &mut self.unreadable;
        unreadable.clear();
        let noted = |k: &[u8], e: engine::Error| {
            unreadable.push(format!("key {}: {e}", String::from_utf8_lossy(k)));
            Ok(())
        };
        self.engine.visit_state_reporting(|k, v| state.insert(k, v), noted).map_err(err)?;
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

    fn recovery_dropped(&self) -> Vec<String> {
        let r = self.engine.recovery_report();
        let corrupt = r.corrupt.iter().chain(&r.dropped);
        let corrupt =
            corrupt.map(|c| format!("{} at {} ({} bytes): {}", c.file, c.offset, c.len, c.reason));
        corrupt.chain(self.unreadable.iter().cloned()).collect()
    }
}
