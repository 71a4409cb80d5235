//! The subject contract, as an external engine meets it. Each test puts a small log under test
//! in a correct form (which must pass) and a wrong one (which must fail):
//! - an error from `merge` that reports acknowledged writes at risk excuses their loss, as a
//!   `put`'s does (the harness used to drop `merge`'s and `get`'s errors, and failed the store);
//! - a group commit that acknowledges `Queued` and keeps the group in memory is held to exactly
//!   that after recovery (the writes-after-recovery check used to require every write);
//! - the shrinker shrinks a seed whose injected fault changes how many filesystem operations
//!   later workload operations take (it used to learn positions from a fault-free run, and kept
//!   200 of 200 operations);
//! - `Shrunk::focus` replays the shrunk state itself (it used to drop the exhaustive budget the
//!   state index counts in).

use crate::wal_subject::crc32;
use crate::*;
use powercut::faultfs::{EioSemantics, OpenOptions, SimFs, Vfs, VfsFile};
use powercut::oracle::Class;
use powercut::run::run_seed;
use powercut::scenario::Scenario;
use powercut::shrink::shrink;
use powercut::subject::{Ack, Promise, State, Subject, SubjectError};
use powercut::suite::run_scenario;
use serde::Deserialize;

/// How the log behaves (each test picks a correct and a wrong one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
enum Mode {
    /// Sync every write; merge does nothing.
    #[default]
    Plain,
    /// Merge loses the last record and says so (`at_risk`).
    MergeLosesReported,
    /// Merge loses the last record and says nothing.
    MergeLosesSilently,
    /// Group commit: writes wait in memory, acknowledged `Queued`, synced every 4 or on a tick.
    GroupCommit,
    /// The same, but claiming `Durable` for writes still in memory.
    GroupCommitClaimsDurable,
    /// After a failed sync, acknowledge anyway (the bug), then refuse every later call without
    /// touching the disk.
    AckThenPoison,
}

/// Records: key_len (1) | value_len (2, 0xFFFF = delete) | key | value | crc32 of all before.
struct Log {
    file: powercut::SimFile,
    len: u64,
    /// Every record in the file, in order, with its start offset (and its write's id).
    records: Vec<(u64, Vec<u8>, Option<Vec<u8>>)>,
    ids: Vec<u64>,
    /// Where the next append cuts the file first (a merge dropped the record there).
    cut_at: Option<u64>,
    /// Writes waiting for the group's sync.
    queued: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    seq: u64,
    synced: u64,
    poisoned: bool,
    mode: Mode,
}

fn encode(key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut rec = vec![key.len() as u8];
    rec.extend(value.map_or(0xFFFF, |v| v.len() as u16).to_le_bytes());
    rec.extend(key);
    rec.extend(value.unwrap_or_default());
    let crc = crc32(&rec);
    rec.extend(crc.to_le_bytes());
    rec
}

impl Log {
    fn append(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), SubjectError> {
        let rec = encode(key, value);
        if let Some(at) = self.cut_at.take() {
            self.file.set_len(at)?;
        }
        self.file.write_all_at(&rec, self.len)?;
        self.records.push((self.len, key.to_vec(), value.map(<[u8]>::to_vec)));
        self.ids.push(self.seq);
        self.len += rec.len() as u64;
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), SubjectError> {
        for (k, v) in std::mem::take(&mut self.queued) {
            self.append(&k, v.as_deref())?;
        }
        self.file.sync_data()?;
        self.synced = self.seq;
        Ok(())
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<Ack, SubjectError> {
        if self.poisoned {
            return Err(SubjectError::new("poisoned by an earlier failed sync"));
        }
        self.seq += 1;
        let seq = self.seq;
        if matches!(self.mode, Mode::GroupCommit | Mode::GroupCommitClaimsDurable) {
            self.queued.push((key.to_vec(), value.map(<[u8]>::to_vec)));
            if self.queued.len() >= 4 {
                self.flush_group()?;
            }
            let promise = match self.mode {
                Mode::GroupCommit if self.synced < seq => Promise::Queued,
                _ => Promise::Durable,
            };
            return Ok(Ack { seq, promise, durable_through: self.synced });
        }
        self.append(key, value)?;
        if let Err(e) = self.file.sync_data() {
            if self.mode == Mode::AckThenPoison && !powercut::is_power_cut(&e) {
                self.poisoned = true;
                return Ok(Ack { seq, promise: Promise::Durable, durable_through: seq });
            }
            return Err(e.into());
        }
        self.synced = seq;
        Ok(Ack { seq, promise: Promise::Durable, durable_through: seq })
    }
}

impl Subject for Log {
    const NAME: &'static str = "log";
    type Config = Mode;

    fn open(fs: SimFs, mode: &Mode) -> Result<Self, SubjectError> {
        let file = fs.open("log", OpenOptions::create())?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut log = Log {
            file,
            len: 0,
            records: Vec::new(),
            ids: Vec::new(),
            cut_at: None,
            queued: Vec::new(),
            seq: 0,
            synced: 0,
            poisoned: false,
            mode: *mode,
        };
        let mut at = 0usize;
        while let Some(h) = bytes.get(at..at + 3) {
            let key_len = h[0] as usize;
            let raw = u16::from_le_bytes([h[1], h[2]]);
            let value_len = if raw == 0xFFFF { 0 } else { raw as usize };
            let end = at + 3 + key_len + value_len;
            let Some(crc) = bytes.get(end..end + 4) else { break };
            if crc32(&bytes[at..end]) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
                break;
            }
            let key = bytes[at + 3..at + 3 + key_len].to_vec();
            let value = (raw != 0xFFFF).then(|| bytes[at + 3 + key_len..end].to_vec());
            log.records.push((at as u64, key, value));
            log.ids.push(0);
            at = end + 4;
        }
        log.len = at as u64;
        log.file.set_len(log.len)?;
        log.file.sync_data()?;
        fs.sync_dir()?;
        Ok(log)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError> {
        self.write(key, Some(value))
    }

    fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError> {
        self.write(key, None)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError> {
        if self.poisoned {
            return Err(SubjectError::new("poisoned by an earlier failed sync"));
        }
        let queued = self.queued.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let logged = || self.records.iter().rev().find(|(_, k, _)| k == key).map(|r| r.2.clone());
        Ok(queued.or_else(logged).flatten())
    }

    fn merge(&mut self) -> Result<(), SubjectError> {
        if !matches!(self.mode, Mode::MergeLosesReported | Mode::MergeLosesSilently) {
            return Ok(());
        }
        // "Compaction" that cannot carry the last record over: the next append cuts it off, so
        // it is lost only after this call reported it.
        let (Some((start, _, _)), Some(seq)) = (self.records.pop(), self.ids.pop()) else {
            return Ok(());
        };
        self.len = start;
        self.cut_at = Some(start);
        match self.mode {
            Mode::MergeLosesReported => {
                Err(SubjectError::new("merge dropped the last record").at_risk(seq, seq))
            }
            _ => Ok(()),
        }
    }

    fn tick(&mut self) -> Result<u64, SubjectError> {
        if !self.queued.is_empty() && !self.poisoned {
            self.flush_group()?;
        }
        Ok(self.synced)
    }

    fn state(&mut self) -> Result<State, SubjectError> {
        let mut map = std::collections::BTreeMap::new();
        for (_, k, v) in &self.records {
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
        Ok(map.into_iter().collect())
    }
}

fn classes(s: &Scenario, mode: Mode, seeds: u64) -> std::collections::BTreeMap<Class, usize> {
    run_scenario::<Log>(s, &mode, 0..seeds, &|_| {}).by_class()
}

#[test]
fn an_error_from_merge_that_reports_its_loss_excuses_it() {
    let mut s = scenario("o_sync-posix");
    s.workload.mix.merge = 10;
    assert_eq!(classes(&s, Mode::Plain, 60), Default::default());
    assert_eq!(classes(&s, Mode::MergeLosesReported, 60), Default::default());
    // Said nothing: the lost write was promised durable, and later ones survive it.
    let silent = classes(&s, Mode::MergeLosesSilently, 60);
    assert!(silent.get(&Class::Ordering).is_some_and(|n| *n > 0), "{silent:?}");
    // The excused losses are counted as reported.
    let r = run_scenario::<Log>(&s, &Mode::MergeLosesReported, 0..60, &|_| {});
    assert!(r.loss().0.reported_lost > 0, "{:?}", r.loss());
}

#[test]
fn a_group_commit_is_held_to_queued_after_recovery_too() {
    let mut s = scenario("o_sync-posix");
    s.faults.after_recovery_writes = 6;
    s.faults.crash = powercut::scenario::CrashKinds { power_cut: 1, kill: 1 };
    assert_eq!(classes(&s, Mode::GroupCommit, 60), Default::default());
    let lying = classes(&s, Mode::GroupCommitClaimsDurable, 60);
    assert!(lying.get(&Class::Durability).is_some_and(|n| *n > 0), "{lying:?}");
}

#[test]
fn a_fault_that_changes_later_operation_counts_still_shrinks() {
    let mut s = scenario("o_sync-posix");
    s.faults.sync_eio_rate = 0.02;
    s.faults.eio_semantics = EioSemantics::Linux;
    let r = run_scenario::<Log>(&s, &Mode::AckThenPoison, 0..40, &|_| {});
    let seed = r
        .seeds
        .iter()
        .find(|o| o.violations.iter().any(|v| v.class == Class::Durability))
        .map(|o| o.seed)
        .expect("acknowledging a failed sync loses data");
    let shrunk = shrink::<Log>(&s, &Mode::AckThenPoison, seed, Some(Class::Durability)).unwrap();
    assert!(shrunk.keep.len() <= 10, "kept {} of {}", shrunk.keep.len(), shrunk.original_ops);
    assert!(!shrunk.faults.is_empty(), "the failed sync is part of the case");
    let again = run_seed::<Log>(&s, &Mode::AckThenPoison, seed, shrunk.focus());
    assert!(again.violations.iter().any(|v| v.class == Class::Durability));
}

#[test]
fn a_shrunk_focus_replays_the_very_state_it_names() {
    let s = scenario("o_sync-posix");
    let config = bitcask(&s, &["no-fsync"]);
    let shrunk = shrink::<powercut::bitcask::Bitcask>(&s, &config, 0, None).unwrap();
    assert!(shrunk.exhaustive.is_some(), "this case shrinks in exhaustive mode");
    let again = run_seed::<powercut::bitcask::Bitcask>(&s, &config, 0, shrunk.focus());
    assert_eq!(again.crash_states, 1, "one state: the one named");
    let v = again.violations.first().expect("the shrunk state fails");
    assert_eq!((v.class, &v.message), (shrunk.class, &shrunk.message));
}
