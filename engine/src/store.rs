//! The store: write path, sync strategies, sync-failure handling, reads, periodic work.
//!
//! Guarantees:
//! - A write is appended whole or not at all: a short or failed write is cut back before the
//!   error is returned, so no later record ever follows a partial one.
//! - Every acknowledgement says what it promises ([`Promise`]) and how far durability reaches
//!   (`durable_through`, a sequence number): the oracle reads the promise, it does not guess it.
//! - A newer data file never holds an acknowledged record while an older file may lose one: the
//!   active file is synced before every rotation, under every strategy. Files have no order on disk.
//! - A data file's directory entry is made durable before the first durable acknowledgement of a
//!   record in it.
//! - A failed sync is never retried as if nothing happened (fsyncgate). The records written since
//!   the last good sync (kept in memory, so this works whatever the kernel did to its cache) are
//!   rewritten into a fresh file, which is fsynced with its directory. Only if that fails too is the
//!   engine poisoned: every later call fails until it is reopened, naming the writes at risk.

use crate::config::{Config, SyncCall, SyncStrategy};
use crate::error::{AtRisk, Error, Result};
use crate::format::{
    self, MAX_KEY_BYTES, MAX_VALUE_BYTES, check_record, data_name, decode_header, decode_record,
};
use crate::keydir::Keydir;
use crate::recovery::RecoveryReport;
use powercut_vfs::{OpenOptions, SyncMode, Vfs, VfsFile};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// What an acknowledgement promises about durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// Durable now: it survives a power cut from here on.
    Durable,
    /// Durable by this time on the Vfs clock, provided `tick` keeps being called.
    By(Duration),
    /// Not promised: durable only once the OS writes it back (the `none` strategy).
    Writeback,
    /// Not acknowledged yet: a later acknowledgement (`durable_through` reaching this write's
    /// sequence number) will say it is durable (group commit).
    Queued,
}

/// The answer to a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The write's sequence number (every write, put or delete, gets the next one).
    pub seq: u64,
    pub promise: Promise,
    /// Every write with a sequence number up to this is durable.
    pub durable_through: u64,
}

/// What a `tick` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickReport {
    pub synced: bool,
    pub durable_through: u64,
}

/// Where the latest record of a key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub file: u32,
    pub offset: u64,
    pub len: u32,
    pub seq: u64,
    pub tombstone: bool,
}

pub(crate) struct Active<F> {
    pub id: u32,
    pub file: F,
    pub len: u64,
    /// Has the directory entry of this file been made durable?
    pub entry_durable: bool,
}

/// A Bitcask key-value store over a [`Vfs`].
pub struct Engine<V: Vfs> {
    pub(crate) vfs: V,
    pub(crate) config: Config,
    pub(crate) keydir: Keydir,
    /// Immutable data files, by id.
    pub(crate) readers: BTreeMap<u32, V::File>,
    pub(crate) active: Active<V::File>,
    pub(crate) max_file_id: u32,
    pub(crate) next_seq: u64,
    pub(crate) written_through: u64,
    pub(crate) durable_through: u64,
    /// Bytes appended to the active file since the last good sync, starting at `unsynced_from`.
    pub(crate) unsynced: Vec<u8>,
    pub(crate) unsynced_from: u64,
    pub(crate) last_sync: Duration,
    pub(crate) dirty_since: Option<Duration>,
    pub(crate) last_write: Duration,
    pub(crate) batch_first: Option<Duration>,
    pub(crate) batch_pending: u32,
    pub(crate) next_checkpoint: Duration,
    /// Checkpointer: set before the dirty flag is cleared, cleared when the sync returns.
    pub(crate) checkpoint_in_flight: bool,
    pub(crate) poisoned: Option<(Option<AtRisk>, String)>,
    pub(crate) recovery: RecoveryReport,
}

impl<V: Vfs> std::fmt::Debug for Engine<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("strategy", &self.config.strategy)
            .field("keys", &self.keydir.len())
            .field("active", &self.active.id)
            .field("written_through", &self.written_through)
            .field("durable_through", &self.durable_through)
            .finish()
    }
}

/// Options for creating a new data file (the active file's sync mode, failing if it exists).
fn new_file_options(config: &Config) -> OpenOptions {
    OpenOptions { create: true, create_new: true, ..active_options(config) }
}

pub(crate) fn active_options(config: &Config) -> OpenOptions {
    let sync = if config.sync_call == SyncCall::ODsync { SyncMode::ODsync } else { SyncMode::None };
    OpenOptions::existing().sync(sync)
}

impl<V: Vfs> Engine<V> {
    /// Store `value` under `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack> {
        self.write(key, value, false)
    }

    /// Delete `key` (a tombstone is written whether or not the key exists).
    pub fn delete(&mut self, key: &[u8]) -> Result<Ack> {
        self.write(key, &[], true)
    }

    fn check_poison(&self) -> Result<()> {
        match &self.poisoned {
            Some((at_risk, cause)) => {
                Err(Error::Poisoned { at_risk: *at_risk, cause: cause.clone() })
            }
            None => Ok(()),
        }
    }

    fn write(&mut self, key: &[u8], value: &[u8], tombstone: bool) -> Result<Ack> {
        self.write_batch(&[(key, (!tombstone).then_some(value))])
    }

    /// Apply `ops` — (key, `Some(value)` to store, `None` to delete) — atomically: after any
    /// crash, recovery finds all of them or none. One acknowledgement covers the batch; its
    /// `seq` is the last record's. The records go into one file (a batch never straddles a
    /// rotation), flagged as a batch (`docs/format.md`), in one write.
    pub fn write_batch(&mut self, ops: &[(&[u8], Option<&[u8]>)]) -> Result<Ack> {
        self.check_poison()?;
        if ops.is_empty() {
            return Err(Error::TooLarge { what: "batch (empty)", len: 0, max: 0 });
        }
        let mut len = 0usize;
        for (key, value) in ops {
            let value = value.unwrap_or_default();
            if key.len() > MAX_KEY_BYTES {
                return Err(Error::TooLarge { what: "key", len: key.len(), max: MAX_KEY_BYTES });
            }
            if value.len() > MAX_VALUE_BYTES {
                let max = MAX_VALUE_BYTES;
                return Err(Error::TooLarge { what: "value", len: value.len(), max });
            }
            len += format::record_bytes(key.len(), value.len());
        }
        let now = self.vfs.now();
        if self.active.len > 0 && self.active.len + len as u64 > self.config.max_file_bytes {
            let id = self.max_file_id + 1;
            self.rotate_to(id)?;
        }
        // The records are encoded where they are kept until synced, and written from there.
        let start = self.unsynced.len();
        let first_seq = self.next_seq;
        for (i, (key, value)) in ops.iter().enumerate() {
            let more = i + 1 < ops.len();
            let seq = first_seq + i as u64;
            let (tombstone, value) = (value.is_none(), value.unwrap_or_default());
            let ts = now.as_nanos() as u64;
            let (out, id) = (&mut self.unsynced, self.config.bugs.seal(self.active.id));
            format::encode_record_flagged(out, id, seq, ts, tombstone, more, key, value);
        }
        let offset = self.active.len;
        if let Err(e) = self.active.file.write_all_at(&self.unsynced[start..], offset) {
            self.unsynced.truncate(start);
            if !powercut_vfs::is_power_cut(&e) {
                // Best effort: remove any partial bytes. Later appends overwrite them anyway,
                // because the engine writes at its own offset.
                let _ = self.active.file.set_len(offset);
            }
            return Err(Error::io("append")(e));
        }
        let mut at = offset;
        for (i, (key, value)) in ops.iter().enumerate() {
            let seq = first_seq + i as u64;
            let n = format::record_bytes(key.len(), value.unwrap_or_default().len()) as u32;
            let tombstone = value.is_none();
            self.keydir
                .insert(key, Entry { file: self.active.id, offset: at, len: n, seq, tombstone });
            at += u64::from(n);
        }
        let seq = first_seq + ops.len() as u64 - 1;
        self.active.len += len as u64;
        self.next_seq = seq + 1;
        self.written_through = seq;
        self.dirty_since.get_or_insert(now);
        self.last_write = now;
        let promise = match self.config.strategy {
            SyncStrategy::OSync => {
                self.sync()?;
                Promise::Durable
            }
            SyncStrategy::Interval { ms } => {
                Promise::By((self.last_sync + Duration::from_millis(ms)).max(now))
            }
            SyncStrategy::None => Promise::Writeback,
            SyncStrategy::Batch { max_ops, max_delay_ms } => {
                self.batch_pending += ops.len() as u32;
                let first = *self.batch_first.get_or_insert(now);
                if self.batch_pending >= max_ops
                    || now >= first + Duration::from_millis(max_delay_ms)
                {
                    self.sync()?;
                    Promise::Durable
                } else {
                    Promise::Queued
                }
            }
            SyncStrategy::Checkpoint { interval_ms, max_delay_ms, .. } => {
                let dirty = self.dirty_since.unwrap_or(now);
                Promise::By(dirty + Duration::from_millis(max_delay_ms + interval_ms))
            }
        };
        Ok(Ack { seq, promise, durable_through: self.durable_through })
    }

    /// Make every write so far durable (the sync call of the config), handling a failed sync.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.config.bugs.no_fsync {
            self.mark_synced();
            return Ok(());
        }
        let data_durable = self.config.sync_call == SyncCall::ODsync;
        if !(self.unsynced.is_empty() || data_durable) {
            if let Err(e) = self.sync_active() {
                if powercut_vfs::is_power_cut(&e) {
                    return Err(Error::io("sync")(e));
                }
                if self.config.bugs.fsync_retry_after_eio {
                    // fsyncgate: Linux reported the error once and marked the pages clean, so
                    // this retry "succeeds" although the data never reached the disk.
                    self.sync_active().map_err(Error::io("sync (retry)"))?;
                } else {
                    self.rewrite_unsynced(&e)?;
                }
            }
        }
        if !self.active.entry_durable {
            self.vfs.sync_dir().map_err(Error::io("sync directory"))?;
            self.active.entry_durable = true;
        }
        self.mark_synced();
        Ok(())
    }

    fn sync_active(&self) -> io::Result<()> {
        match self.config.sync_call {
            SyncCall::Fsync => self.active.file.sync_all(),
            SyncCall::Fdatasync | SyncCall::ODsync => self.active.file.sync_data(),
        }
    }

    fn mark_synced(&mut self) {
        self.durable_through = self.written_through;
        self.unsynced.clear();
        self.unsynced_from = self.active.len;
        self.last_sync = self.vfs.now();
        self.dirty_since = None;
        self.batch_pending = 0;
        self.batch_first = None;
    }

    /// After a failed sync: write the unsynced records into a fresh file and make it durable, or
    /// poison the engine.
    fn rewrite_unsynced(&mut self, cause: &io::Error) -> Result<()> {
        let id = self.max_file_id + 1;
        let name = data_name(id);
        format::reseal(&mut self.unsynced, self.config.bugs.seal(id));
        let attempt = || -> io::Result<V::File> {
            let file = self.vfs.open(&name, new_file_options(&self.config))?;
            file.write_all_at(&self.unsynced, 0)?;
            file.sync_all()?;
            self.vfs.sync_dir()?;
            Ok(file)
        };
        match attempt() {
            Ok(file) => {
                self.max_file_id = id;
                self.repoint_unsynced(id);
                let len = self.unsynced.len() as u64;
                let old = std::mem::replace(
                    &mut self.active,
                    Active { id, file, len, entry_durable: true },
                );
                // Best effort: the old file must not keep a tail the disk may tear later. Its
                // records are durable in the new file either way.
                let _ = old.file.set_len(self.unsynced_from);
                self.readers.insert(old.id, old.file);
                Ok(())
            }
            Err(e) if powercut_vfs::is_power_cut(&e) => {
                Err(Error::io("rewrite after failed sync")(e))
            }
            Err(e) => {
                let at_risk = (self.written_through > self.durable_through).then(|| AtRisk {
                    first: self.durable_through + 1,
                    last: self.written_through,
                });
                let cause = format!("{cause}; rewriting into {name} failed too: {e}");
                self.poisoned = Some((at_risk, cause.clone()));
                Err(Error::Poisoned { at_risk, cause })
            }
        }
    }

    /// Point the keydir at the copies of the unsynced records in file `id`.
    fn repoint_unsynced(&mut self, id: u32) {
        let mut at = 0usize;
        // Bounded: `unsynced` holds whole records written by this engine.
        while at < self.unsynced.len() {
            let Ok(h) = decode_header(&self.unsynced[at..]) else { break };
            let key_at = at + format::RECORD_HEADER_BYTES;
            let key = &self.unsynced[key_at..key_at + h.key_len];
            if let Some(e) = self.keydir.get_mut(key) {
                if e.seq == h.seq {
                    e.file = id;
                    e.offset = at as u64;
                }
            }
            at += h.record_bytes();
        }
    }

    /// Sync the active file and start data file `id` as the new active file.
    pub(crate) fn rotate_to(&mut self, id: u32) -> Result<()> {
        if self.written_through > self.durable_through || !self.active.entry_durable {
            self.sync()?;
        }
        let name = data_name(id);
        let options = new_file_options(&self.config);
        let file = self.vfs.open(&name, options).map_err(Error::io("create data file"))?;
        self.max_file_id = self.max_file_id.max(id);
        let entry_durable = if self.config.bugs.no_dir_fsync_on_rotate {
            true // believes it, without asking the directory
        } else {
            match self.vfs.sync_dir() {
                Ok(()) => true,
                Err(e) if powercut_vfs::is_power_cut(&e) => {
                    return Err(Error::io("sync directory")(e));
                }
                Err(_) => false, // retried before the first durable acknowledgement in it
            }
        };
        let old = std::mem::replace(&mut self.active, Active { id, file, len: 0, entry_durable });
        self.readers.insert(old.id, old.file);
        self.unsynced_from = 0;
        Ok(())
    }

    /// The value of `key`, read and checked against its CRC; never serves a corrupt record.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_poison()?;
        let Some(entry) = self.keydir.get(key) else { return Ok(None) };
        if entry.tombstone {
            return Ok(None);
        }
        let value = self.read_record(entry)?.value;
        Ok(Some(value))
    }

    pub(crate) fn file(&self, id: u32) -> &V::File {
        if id == self.active.id { &self.active.file } else { &self.readers[&id] }
    }

    pub(crate) fn read_record(&self, entry: &Entry) -> Result<format::Record> {
        let mut buf = vec![0u8; entry.len as usize];
        self.file(entry.file)
            .read_exact_at(&mut buf, entry.offset)
            .map_err(Error::io("read record"))?;
        let corrupt = |reason: String| Error::Corrupt {
            file: data_name(entry.file),
            offset: entry.offset,
            reason,
        };
        let (record, _) = decode_record(self.config.bugs.seal(entry.file), &buf)
            .map_err(|b| corrupt(b.to_string()))?;
        if record.seq != entry.seq && !self.config.bugs.trusts_misplaced_record {
            return Err(corrupt(format!("expected seq {}, found {}", entry.seq, record.seq)));
        }
        Ok(record)
    }

    /// Every live key and its value, read and checked (the harness's view of the state). Each
    /// data file is read once; every record is checked against its key, its seq and its CRC.
    pub fn state(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut out = Vec::with_capacity(self.keydir.live());
        self.visit_state(|k, v| out.push((k.to_vec(), v.to_vec())))?;
        Ok(BTreeMap::from_iter(out))
    }

    /// [`Engine::state`] without copies: `visit` sees every live key and its value, in key order.
    pub fn visit_state(&self, visit: impl FnMut(&[u8], &[u8])) -> Result<()> {
        self.visit_state_reporting(visit, |_, e| Err(e))
    }

    /// [`Engine::visit_state`], handing each key whose record fails its checks to `unreadable`
    /// with the error, instead of failing at the first: the state as far as it can be read, and
    /// what could not be (a device damaged it). `unreadable` may still fail the visit.
    pub fn visit_state_reporting(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]),
        mut unreadable: impl FnMut(&[u8], Error) -> Result<()>,
    ) -> Result<()> {
        self.check_poison()?;
        let mut files: Vec<(u32, Vec<u8>)> = Vec::new();
        for (key, entry) in self.keydir.by_key() {
            if entry.tombstone {
                continue;
            }
            let id = entry.file;
            let bytes = match files.iter().position(|(f, _)| *f == id) {
                Some(i) => &files[i].1,
                None => {
                    let mut bytes = Vec::new();
                    self.file(id).read_to_end(&mut bytes).map_err(Error::io("read state"))?;
                    files.push((id, bytes));
                    &files[files.len() - 1].1
                }
            };
            let corrupt = |reason: String| Error::Corrupt {
                file: data_name(id),
                offset: entry.offset,
                reason,
            };
            let start = usize::try_from(entry.offset).unwrap_or(usize::MAX);
            let read = (|| {
                let slice = start
                    .checked_add(entry.len as usize)
                    .and_then(|end| bytes.get(start..end))
                    .ok_or_else(|| corrupt("record past the end of the file".into()))?;
                // Checked again, though recovery's scan checked it: this is another read, and a
                // device may corrupt any read.
                let h = check_record(self.config.bugs.seal(id), slice)
                    .map_err(|b| corrupt(b.to_string()))?;
                if h.record_bytes() != slice.len() {
                    return Err(corrupt(format!(
                        "record of {} bytes, expected {}",
                        h.record_bytes(),
                        slice.len()
                    )));
                }
                let key_at = format::RECORD_HEADER_BYTES;
                let (found, value) = slice[key_at..h.record_bytes()].split_at(h.key_len);
                // A checksum-valid record of another key or version (a misdirected write) is
                // not this key's value.
                let misplaced = h.seq != entry.seq || found != key;
                if misplaced && !self.config.bugs.trusts_misplaced_record {
                    return Err(corrupt(format!(
                        "expected {} seq {}, found {} seq {}",
                        String::from_utf8_lossy(key),
                        entry.seq,
                        String::from_utf8_lossy(found),
                        h.seq
                    )));
                }
                Ok(value)
            })();
            match read {
                Ok(value) => visit(key, value),
                Err(e) => unreadable(key, e)?,
            }
        }
        Ok(())
    }

    /// Periodic work against the Vfs clock: the interval sync, the batch deadline, the
    /// checkpointer.
    pub fn tick(&mut self) -> Result<TickReport> {
        self.check_poison()?;
        let now = self.vfs.now();
        let dirty = self.written_through > self.durable_through;
        let mut synced = false;
        match self.config.strategy {
            SyncStrategy::Interval { ms } => {
                if dirty && now >= self.last_sync + Duration::from_millis(ms) {
                    self.sync()?;
                    synced = true;
                }
            }
            SyncStrategy::Batch { max_delay_ms, .. } => {
                let due = self
                    .batch_first
                    .is_some_and(|f| now >= f + Duration::from_millis(max_delay_ms));
                if dirty && due {
                    self.sync()?;
                    synced = true;
                }
            }
            SyncStrategy::Checkpoint { interval_ms, idle_ms, max_delay_ms } => {
                if now >= self.next_checkpoint {
                    self.next_checkpoint = now + Duration::from_millis(interval_ms);
                    synced = dirty && self.checkpoint(now, idle_ms, max_delay_ms)?;
                }
            }
            SyncStrategy::OSync | SyncStrategy::None => {}
        }
        Ok(TickReport { synced, durable_through: self.durable_through })
    }

    /// Seed 001's checkpointer: defer while writes are still moving, unless dirty too long.
    fn checkpoint(&mut self, now: Duration, idle_ms: u64, max_delay_ms: u64) -> Result<bool> {
        let busy = now < self.last_write + Duration::from_millis(idle_ms);
        let dirty_since = self.dirty_since.unwrap_or(now);
        let overdue = now >= dirty_since + Duration::from_millis(max_delay_ms);
        if busy && !overdue {
            return Ok(false);
        }
        // The in-flight marker goes up before the dirty flag comes down: there is no moment
        // when the data looks clean while the sync has not returned.
        self.checkpoint_in_flight = true;
        let result = self.sync();
        self.checkpoint_in_flight = false;
        result.map(|()| true)
    }

    /// Sync now, whatever the strategy (seed 001's `sync_now`; used by `close`).
    pub fn sync_now(&mut self) -> Result<()> {
        self.check_poison()?;
        if self.written_through > self.durable_through || !self.active.entry_durable {
            self.sync()?;
        }
        Ok(())
    }

    /// Sync and close.
    pub fn close(mut self) -> Result<()> {
        self.sync_now()
    }

    /// Every write up to this sequence number is durable.
    pub fn durable_through(&self) -> u64 {
        self.durable_through
    }

    /// The last sequence number written.
    pub fn written_through(&self) -> u64 {
        self.written_through
    }

    /// The writes a poisoned engine reported at risk (`None` while healthy).
    pub fn poisoned(&self) -> Option<(Option<AtRisk>, &str)> {
        self.poisoned.as_ref().map(|(r, c)| (*r, c.as_str()))
    }

    /// What recovery found when this engine was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The Vfs the engine runs on.
    pub fn vfs(&self) -> &V {
        &self.vfs
    }

    /// (live keys, the bytes of their keys and values): what [`Engine::visit_state`] will visit.
    pub fn live_size(&self) -> (usize, usize) {
        self.keydir.live_size()
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.keydir.live()
    }

    /// No live keys?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
