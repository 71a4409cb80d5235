//! Recovery: rebuild the keydir from the files on disk, end the log at its first bad record.
//!
//! Guarantees:
//! - Never panics, whatever the bytes: every length is checked against the bytes present before it
//!   is used, and every record's CRC is checked before its key or value is believed.
//! - Data files are read in id order; for each key the record with the highest sequence number
//!   wins (so duplicates left by an interrupted merge or a sync-failure rewrite are harmless).
//! - A hint file is used only if its header CRC and every entry CRC hold and it describes a data
//!   file of exactly the length on disk; otherwise the data file is scanned. A hint is published by
//!   renaming a fully synced temporary file, so a hint under its final name is whole.
//! - The first bad or short record of the *last* data file ends the log: the file is truncated
//!   there, the truncation is synced, and only then are writes accepted. A bad record in any other
//!   file is corruption: reported with its file and offset, and nothing from there on is served.
//! - Before accepting writes, recovery syncs the active file and the directory, so everything it
//!   recovered (perhaps only from the page cache, after a kill -9 or a half-finished earlier open)
//!   is durable — directory entries included.
//! - Leftover temporary files of an interrupted merge are removed.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::{
    self, BadRecord, FileKind, RECORD_HEADER_BYTES, check_record, data_name, hint_name, parse_name,
};
use crate::keydir::Keydir;
use crate::store::{Active, Engine, Entry, active_options};
use powercut_vfs::{OpenOptions, Vfs, VfsFile};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A range of a data file that recovery would not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub file: String,
    pub offset: u64,
    pub len: u64,
    pub reason: String,
}

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub data_files: usize,
    pub hints_used: usize,
    pub hints_rejected: usize,
    pub records: u64,
    /// The torn tail cut from the last data file: (file, from offset, old length).
    pub truncated: Option<(String, u64, u64)>,
    /// Bad ranges inside older data files, not served.
    pub corrupt: Vec<Corruption>,
    /// Bad ranges skipped over (only with the `skip-bad-records` bug).
    pub skipped: Vec<Corruption>,
    /// Records the torn-tail truncation dropped although they were whole and sealed to the file:
    /// the bad record before them was mid-log damage, or a torn write the crash landed later
    /// records after. Recovery cannot tell which, so it says what it dropped.
    pub dropped: Option<Corruption>,
    pub temp_files_removed: Vec<String>,
    /// Names in the directory this engine does not own (left alone).
    pub ignored: Vec<String>,
}

/// The result of scanning one data file.
struct Scan {
    /// (header, offset) of each good record.
    records: Vec<(format::Header, u64)>,
    /// Where the good records end (the first bad one starts).
    end: u64,
    bad: Option<(u64, BadRecord)>,
    skipped: Vec<(u64, u64, BadRecord)>,
}

fn scan(id: u32, bytes: &[u8], skip_bad: bool, batch_not_atomic: bool) -> Scan {
    let mut s = Scan { records: Vec::new(), end: 0, bad: None, skipped: Vec::new() };
    let mut at = 0usize;
    // The batch being read: (index of its first record, its offset). Its records count only
    // once its last one is read.
    let mut batch: Option<(usize, u64)> = None;
    // Bounded: every iteration advances `at` by at least one byte.
    while at < bytes.len() {
        match check_record(id, &bytes[at..]) {
            Ok(h) => {
                if h.more && !batch_not_atomic {
                    batch.get_or_insert((s.records.len(), at as u64));
                } else {
                    batch = None;
                }
                s.records.push((h, at as u64));
                at += h.record_bytes();
                if batch.is_none() {
                    s.end = at as u64;
                }
            }
            Err(bad) if skip_bad => {
                // The bug: resynchronize one byte further on and read on.
                match s.skipped.last_mut() {
                    Some((offset, len, _)) if *offset + *len == at as u64 => *len += 1,
                    _ => s.skipped.push((at as u64, 1, bad)),
                }
                at += 1;
            }
            Err(bad) => {
                s.bad = Some((at as u64, bad));
                break;
            }
        }
    }
    if let Some((first, offset)) = batch {
        // A batch the log ends inside of never happened: the log ends where it starts.
        s.records.truncate(first);
        s.end = offset;
        if s.bad.is_none_or(|(bad_at, _)| bad_at > offset) {
            s.bad = Some((offset, BadRecord::Short));
        }
    }
    if skip_bad {
        // Reading on: the log "ends" after the last good record found anywhere.
        s.end = s.records.last().map_or(0, |(h, o)| o + h.record_bytes() as u64);
        s.skipped.retain(|(offset, _, _)| *offset < s.end);
        if (s.end as usize) < bytes.len() {
            s.bad = Some((s.end, BadRecord::Short));
        }
    }
    s
}

fn read_all<F: VfsFile>(file: &F, error_ends_log: bool) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    if !error_ends_log {
        file.read_to_end(&mut buf).map_err(Error::io("recovery: read"))?;
        return Ok(buf);
    }
    // The `read-error-ends-log` bug: read in pages, and take a failed read for the end.
    let len = file.len().map_err(Error::io("recovery: length"))?;
    let mut page = [0u8; 4096];
    while (buf.len() as u64) < len {
        let want = ((len - buf.len() as u64) as usize).min(page.len());
        match file.read_at(&mut page[..want], buf.len() as u64) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&page[..n]),
            Err(e) if powercut_vfs::is_power_cut(&e) => {
                return Err(Error::io("recovery: read")(e));
            }
            Err(_) => break,
        }
    }
    Ok(buf)
}

/// Offset of the first whole record sealed to file `seal` that starts after `from`, if any.
fn next_sealed_record(seal: u32, bytes: &[u8], from: usize) -> Option<usize> {
    // Bounded: one header check per byte; a CRC only where a header is sane.
    (from + 1..bytes.len()).find(|&at| check_record(seal, &bytes[at..]).is_ok())
}

impl<V: Vfs> Engine<V> {
    /// Open the store in `vfs`'s directory, recovering whatever is there.
    pub fn open(vfs: V, config: Config) -> Result<Engine<V>> {
        config.validate().map_err(Error::Config)?;
        let mut report = RecoveryReport::default();
        let mut data_ids = BTreeSet::new();
        let mut hint_ids = BTreeSet::new();
        for name in vfs.list().map_err(Error::io("recovery: list"))? {
            match parse_name(&name) {
                Some(FileKind::Data(id)) => {
                    data_ids.insert(id);
                }
                Some(FileKind::Hint(id)) => {
                    hint_ids.insert(id);
                }
                Some(FileKind::Temp) => {
                    vfs.remove(&name).map_err(Error::io("recovery: remove temp file"))?;
                    report.temp_files_removed.push(name);
                }
                None => report.ignored.push(name),
            }
        }
        let last_id = data_ids.last().copied();
        let mut keydir = Keydir::default();
        let mut readers = BTreeMap::new();
        let mut max_seq = 0u64;
        let mut active_len = 0u64;
        for &id in &data_ids {
            let name = data_name(id);
            let file =
                vfs.open(&name, OpenOptions::existing()).map_err(Error::io("recovery: open"))?;
            // The cache may hold pages a failed fsync never wrote (Linux marks them clean): read
            // what the disk has, so nothing served can vanish at the next power cut.
            if !config.bugs.trusts_page_cache {
                file.drop_cache().map_err(Error::io("recovery: drop the page cache"))?;
            }
            let mut bytes = read_all(&file, config.bugs.read_error_ends_log)?;
            report.data_files += 1;
            let from_hint = hint_ids.contains(&id)
                && Self::load_hint(&vfs, id, bytes.len() as u64, &mut keydir, &mut max_seq);
            if from_hint {
                report.hints_used += 1;
                active_len = bytes.len() as u64;
            } else {
                if hint_ids.contains(&id) {
                    report.hints_rejected += 1;
                }
                let bugs = &config.bugs;
                let mut found =
                    scan(bugs.seal(id), &bytes, bugs.skip_bad_records, bugs.batch_not_atomic);
                // A bad record may be a read the device corrupted on the way: read the file
                // again before believing it (twice), and keep the longest good log.
                for _ in 0..2 {
                    if found.bad.is_none() {
                        break;
                    }
                    let again = read_all(&file, bugs.read_error_ends_log)?;
                    let rescan =
                        scan(bugs.seal(id), &again, bugs.skip_bad_records, bugs.batch_not_atomic);
                    if rescan.end > found.end || rescan.bad.is_none() {
                        (bytes, found) = (again, rescan);
                    }
                }
                let scan = found;
                keydir.reserve(scan.records.len());
                for (h, offset) in scan.records {
                    let key_at = offset as usize + RECORD_HEADER_BYTES;
                    let key = &bytes[key_at..key_at + h.key_len];
                    report.records += 1;
                    max_seq = max_seq.max(h.seq);
                    let len = h.record_bytes() as u32;
                    let entry = Entry { file: id, offset, len, seq: h.seq, tombstone: h.tombstone };
                    keydir.insert_latest(key, entry);
                }
                for (offset, len, why) in scan.skipped {
                    let reason = why.to_string();
                    report.skipped.push(Corruption { file: name.clone(), offset, len, reason });
                }
                active_len = scan.end;
                if let Some((offset, why)) = scan.bad {
                    let len = bytes.len() as u64 - offset;
                    if Some(id) == last_id {
                        if config.bugs.append_after_torn_tail {
                            active_len = bytes.len() as u64; // the garbage stays; appends follow it
                        } else {
                            let seal = bugs.seal(id);
                            if let Some(at) = next_sealed_record(seal, &bytes, offset as usize) {
                                let reason = format!("a whole record follows at {at}");
                                let len = bytes.len() as u64 - offset;
                                let file = name.clone();
                                report.dropped = Some(Corruption { file, offset, len, reason });
                            }
                            file.set_len(offset)
                                .map_err(Error::io("recovery: truncate torn tail"))?;
                            report.truncated = Some((name.clone(), offset, bytes.len() as u64));
                        }
                    } else {
                        let reason = why.to_string();
                        report.corrupt.push(Corruption { file: name.clone(), offset, len, reason });
                    }
                }
            }
            readers.insert(id, file);
        }
        let now = vfs.now();
        let (active, max_file_id) = match last_id {
            Some(id) => {
                drop(readers.remove(&id));
                let file = vfs
                    .open(&data_name(id), active_options(&config))
                    .map_err(Error::io("recovery: open active file"))?;
                (Active { id, file, len: active_len, entry_durable: true }, id)
            }
            None => {
                let mut options = active_options(&config);
                options.create = true;
                let file =
                    vfs.open(&data_name(1), options).map_err(Error::io("create data file"))?;
                (Active { id: 1, file, len: 0, entry_durable: false }, 1)
            }
        };
        let mut engine = Engine {
            vfs,
            config,
            keydir,
            readers,
            active,
            max_file_id,
            next_seq: max_seq + 1,
            written_through: max_seq,
            durable_through: max_seq,
            unsynced: Vec::new(),
            unsynced_from: active_len,
            last_sync: now,
            dirty_since: None,
            last_write: now,
            batch_first: None,
            batch_pending: 0,
            next_checkpoint: now,
            checkpoint_in_flight: false,
            poisoned: None,
            recovery: report,
        };
        if !engine.config.bugs.unsynced_recovery_truncate {
            engine.make_recovered_durable()?;
        }
        Ok(engine)
    }

    /// Everything recovered may have come from the page cache (after a kill -9, or an earlier
    /// open that failed half way): make it durable, with any truncation and removal, before the
    /// first write is accepted. That includes the directory: a file found may be visible only in
    /// the page cache.
    fn make_recovered_durable(&mut self) -> Result<()> {
        // Older files too: one whose last sync failed may hold dirty pages recovery read and will
        // serve (a sticky error then fails this sync, and the open with it, saying why).
        for file in self.readers.values() {
            file.sync_data().map_err(Error::io("recovery: sync an older data file"))?;
        }
        let sync = match self.config.sync_call {
            crate::config::SyncCall::Fsync => self.active.file.sync_all(),
            _ => self.active.file.sync_data(),
        };
        sync.map_err(Error::io("recovery: sync active file"))?;
        self.vfs.sync_dir().map_err(Error::io("recovery: sync directory"))?;
        self.active.entry_durable = true;
        Ok(())
    }

    /// Load data file `id`'s hint if it is whole and matches; false means "scan instead".
    fn load_hint(vfs: &V, id: u32, data_len: u64, keydir: &mut Keydir, max_seq: &mut u64) -> bool {
        let Ok(file) = vfs.open(&hint_name(id), OpenOptions::existing()) else { return false };
        let Ok(bytes) = read_all(&file, false) else { return false };
        let Some((len, entries)) = format::decode_hint(&bytes) else { return false };
        let fits = |e: &format::HintEntry| {
            e.offset
                .checked_add(format::record_bytes(e.key.len(), e.value_len as usize) as u64)
                .is_some_and(|end| end <= data_len)
        };
        if len != data_len || !entries.iter().all(fits) {
            return false;
        }
        for e in entries {
            *max_seq = (*max_seq).max(e.seq);
            let len = format::record_bytes(e.key.len(), e.value_len as usize) as u32;
            let entry =
                Entry { file: id, offset: e.offset, len, seq: e.seq, tombstone: e.tombstone };
            keydir.insert_latest(&e.key, entry);
        }
        true
    }

    /// The clock value the engine last synced at (for tests of the interval strategy).
    pub fn last_sync(&self) -> Duration {
        self.last_sync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_stops_at_the_first_bad_record_and_skip_reads_on() {
        let mut bytes = format::encode_record(1, 1, 0, false, b"a", b"1");
        let good = bytes.len();
        bytes.extend(vec![0u8; 40]);
        bytes.extend(format::encode_record(1, 2, 0, false, b"b", b"2"));
        let s = scan(1, &bytes, false, false);
        assert_eq!((s.records.len(), s.end), (1, good as u64));
        assert_eq!(s.bad.map(|b| b.0), Some(good as u64));
        let s = scan(1, &bytes, true, false);
        assert_eq!(s.records.len(), 2, "the bug reads past the hole");
    }

    #[test]
    fn a_batch_counts_only_once_its_last_record_is_read() {
        let mut bytes = format::encode_record(1, 1, 0, false, b"a", b"1");
        let before = bytes.len();
        format::encode_record_flagged(&mut bytes, 1, 2, 0, false, true, b"b", b"2");
        format::encode_record_flagged(&mut bytes, 1, 3, 0, true, true, b"a", b"");
        let cut = bytes.len();
        format::encode_record_flagged(&mut bytes, 1, 4, 0, false, false, b"c", b"3");
        let whole = scan(1, &bytes, false, false);
        assert_eq!((whole.records.len(), whole.end, whole.bad), (4, bytes.len() as u64, None));
        // The log ends inside the batch (its last record torn or never written).
        for end in [cut, cut + 10, before + 5] {
            let s = scan(1, &bytes[..end], false, false);
            assert_eq!((s.records.len(), s.end), (1, before as u64), "cut at {end}");
            assert_eq!(s.bad.map(|b| b.0), Some(before as u64));
            // The bug applies what it read of the batch.
            let buggy = scan(1, &bytes[..end], false, true);
            assert!(buggy.records.len() > 1 || end < cut, "cut at {end}");
        }
    }
}
