//! The powercut adapter (feature `powercut`): [`WalSnap`] on powercut's simulated filesystem.

use crate::{BUGS, Bug, Config, WalSnap};
use powercut::{Ack, Promise, SimFs, State, SubjectError};

/// walsnap as a powercut subject. Every write is fdatasynced before it is acknowledged, so each
/// acknowledgement promises `Durable` and reports everything up to it durable; `merge` takes a
/// snapshot now.
#[derive(Debug)]
pub struct Subject {
    engine: WalSnap<SimFs>,
}

fn ack(seq: u64) -> Ack {
    Ack { seq, promise: Promise::Durable, durable_through: seq }
}

impl powercut::Subject for Subject {
    const NAME: &'static str = "walsnap";
    type Config = Config;
    const BUGS: &'static [(&'static str, &'static str)] = BUGS;

    fn enable_bug(config: &mut Config, name: &str) -> Result<(), String> {
        let bug = Bug::from_name(name).ok_or_else(|| powercut::subject::unknown_bug(name, BUGS))?;
        config.bug = Some(bug);
        Ok(())
    }

    fn open(fs: SimFs, config: &Config) -> Result<Self, SubjectError> {
        Ok(Subject { engine: WalSnap::open(fs, config.clone())? })
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError> {
        Ok(ack(self.engine.put(key, value)?))
    }

    fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError> {
        Ok(ack(self.engine.delete(key)?))
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError> {
        Ok(self.engine.get(key).map(<[u8]>::to_vec))
    }

    fn merge(&mut self) -> Result<(), SubjectError> {
        Ok(self.engine.snapshot()?)
    }

    fn tick(&mut self) -> Result<u64, SubjectError> {
        Ok(self.engine.last_seq())
    }

    fn state(&mut self) -> Result<State, SubjectError> {
        Ok(self.engine.iter().collect())
    }

    fn recovery_notes(&self) -> Vec<String> {
        self.engine.recovery_notes().to_vec()
    }

    fn recovery_dropped(&self) -> Vec<String> {
        self.engine.recovery_dropped()
    }
}
