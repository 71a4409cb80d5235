//! engine integration tests, all on SimFs (and one on RealFs): every strategy's normal path,
//! rotation, merge and hints, recovery of torn tails and corruption, ENOSPC and EIO handling, a
//! randomized recovery test, and the documented format.
#![expect(clippy::unwrap_used, reason = "test helpers: a panic is the failure report")]

mod architecture;
mod faults;
mod files;
mod format_doc;
mod random;
mod real;
mod recovery;
mod strategies;

use engine::{Config, Engine, EngineBugs, SyncStrategy};
use faultfs::{Latency, Profile, SimConfig, SimFs};
use std::collections::BTreeMap;

pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A SimFs with the measured latencies, so syncs take virtual time.
pub fn sim(profile: Profile) -> SimFs {
    SimFs::new(SimConfig::new(profile))
}

pub fn sim_zero(profile: Profile) -> SimFs {
    SimFs::new(SimConfig::new(profile).latency(Latency::zero()))
}

pub fn open(fs: &SimFs, config: Config) -> Engine<SimFs> {
    Engine::open(fs.clone(), config).unwrap()
}

pub fn osync() -> Config {
    Config::new(SyncStrategy::OSync)
}

pub fn with_bug(config: Config, name: &str) -> Config {
    config.bugs(EngineBugs::only(name).unwrap())
}

/// The image a power cut leaves when nothing unsynced lands: the durable state alone.
pub fn durable_only(fs: &SimFs) -> SimFs {
    let space = fs.crash_point_now().power_cut_space();
    space.materialize(&space.nothing_landed())
}

/// Recover on an image and read the whole state back.
pub fn recover(image: &SimFs, config: Config) -> State {
    Engine::open(image.clone(), config).unwrap().state().unwrap()
}

pub fn kv(pairs: &[(&str, &str)]) -> State {
    pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

pub fn key(i: usize) -> Vec<u8> {
    format!("key{i:04}").into_bytes()
}

pub fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("value{i}-").into_bytes();
    v.resize(len, b'.');
    v
}

/// Count trace lines whose call name is `call`.
pub fn calls(fs: &SimFs, call: faultfs::Call) -> usize {
    fs.trace().iter().filter(|e| e.call == call).count()
}
