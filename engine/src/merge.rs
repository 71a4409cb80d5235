//! Merge (compaction): rewrite the live records of every immutable data file into one new file.
//!
//! Guarantees, in the order the steps happen:
//! 1. Everything written so far is synced, and a fresh active file is started, with an id above
//!    the merged file's — so the active file stays the last one, and everything older is immutable.
//! 2. The merged data file and its hint are each written to a temporary name, fsynced, and renamed
//!    into place; then the directory is fsynced. Only then are the old files removed (and the
//!    directory fsynced again). A crash at any point leaves either the old files, or the merged
//!    file, or both (duplicates are harmless: the highest sequence number wins).
//! 3. Every record copied is checked against its CRC and the seq the keydir expects first: a
//!    corrupt or misplaced record is never copied.
//! 4. A tombstone is kept while an older record of its key is still in a file this merge removes:
//!    until that removal is durable, a crash could bring the older record back. A later merge,
//!    when no older record remains, drops it.
//!
//! The merged file may be larger than `max_file_bytes`: one file makes the merge one rename. Both
//! files are written in 8 KiB chunks, as a buffered writer does (so a device fault at their sync
//! can displace one chunk of many, and a hint still fits the file it describes).

use crate::error::{Error, Result};
use crate::format::{self, HintEntry, data_name, hint_name};
use crate::store::{Engine, Entry};
use powercut_vfs::{OpenOptions, Vfs, VfsFile};
use std::collections::{BTreeMap, BTreeSet};

/// The merge writes its files in chunks of this many bytes (a buffered writer's default).
const WRITE_CHUNK_BYTES: usize = 8192;

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub files_merged: usize,
    pub merged_file: Option<String>,
    pub records_kept: usize,
    pub tombstones_kept: usize,
    pub tombstones_dropped: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl<V: Vfs> Engine<V> {
    /// Merge every immutable data file into one.
    pub fn merge(&mut self) -> Result<MergeReport> {
        if let Some((at_risk, cause)) = &self.poisoned {
            return Err(Error::Poisoned { at_risk: *at_risk, cause: cause.clone() });
        }
        let merged_id = self.max_file_id + 1;
        self.rotate_to(merged_id + 1)?;
        let sources: Vec<u32> = self.readers.keys().copied().collect();
        let mut report = MergeReport { files_merged: sources.len(), ..MergeReport::default() };
        if sources.is_empty() {
            return Ok(report);
        }
        let source_set: BTreeSet<u32> = sources.iter().copied().collect();
        let records_per_key = self.count_records(&sources, &mut report)?;
        let mut data = Vec::new();
        let mut hints = Vec::new();
        let mut moved: Vec<(Vec<u8>, Entry)> = Vec::new();
        let mut dropped: Vec<Vec<u8>> = Vec::new();
        for (key, entry) in self.keydir.by_key() {
            if !source_set.contains(&entry.file) {
                continue;
            }
            if entry.tombstone {
                let older = records_per_key.get(key).copied().unwrap_or(0) > 1;
                if !older || self.config.bugs.merge_drops_tombstones {
                    dropped.push(key.to_vec());
                    continue;
                }
                report.tombstones_kept += 1;
            } else {
                report.records_kept += 1;
            }
            let record = self.read_record(entry)?;
            let bytes = format::encode_record(
                self.config.bugs.seal(merged_id),
                record.seq,
                record.timestamp_ns,
                record.tombstone,
                &record.key,
                &record.value,
            );
            let offset = data.len() as u64;
            hints.push(HintEntry {
                seq: record.seq,
                offset,
                value_len: record.value.len() as u32,
                tombstone: record.tombstone,
                key: key.to_vec(),
            });
            moved.push((key.to_vec(), Entry { file: merged_id, offset, ..*entry }));
            data.extend_from_slice(&bytes);
        }
        report.tombstones_dropped = dropped.len();
        report.bytes_after = data.len() as u64;
        let merged = self.publish(merged_id, &data, &hints, &sources)?;
        report.merged_file = Some(data_name(merged_id));
        for (key, entry) in moved {
            self.keydir.insert(&key, entry);
        }
        for key in dropped {
            self.keydir.remove(&key);
        }
        self.readers.clear();
        self.readers.insert(merged_id, merged);
        Ok(report)
    }

    /// How many records each key has across `sources` (to know whether a tombstone still hides
    /// an older record), and the bytes they hold.
    fn count_records(
        &self,
        sources: &[u32],
        report: &mut MergeReport,
    ) -> Result<BTreeMap<Vec<u8>, u32>> {
        let mut counts = BTreeMap::new();
        for &id in sources {
            let file = self.file(id);
            let len = file.len().map_err(Error::io("merge: length"))?;
            report.bytes_before += len;
            let mut bytes = vec![0u8; len as usize];
            file.read_exact_at(&mut bytes, 0).map_err(Error::io("merge: read"))?;
            let mut at = 0usize;
            // Bounded: each step advances by a whole record; a bad record ends the file.
            while at < bytes.len() {
                let Ok((record, n)) =
                    format::decode_record(self.config.bugs.seal(id), &bytes[at..])
                else {
                    break;
                };
                *counts.entry(record.key).or_insert(0u32) += 1;
                at += n;
            }
        }
        Ok(counts)
    }

    /// Write the merged file and its hint and make them durable, then remove the sources.
    fn publish(
        &self,
        id: u32,
        data: &[u8],
        hints: &[HintEntry],
        sources: &[u32],
    ) -> Result<V::File> {
        let hint = format::encode_hint(data.len() as u64, hints);
        let (data_final, hint_final) = (data_name(id), hint_name(id));
        let bugs = self.config.bugs;
        let create = OpenOptions::create().truncate(true);
        let vfs = &self.vfs;
        if bugs.merge_removes_before_durable {
            // The bug: final names at once, old files gone before anything is synced.
            let f = vfs.open(&data_final, create).map_err(Error::io("merge: create"))?;
            f.write_all_at(data, 0).map_err(Error::io("merge: write"))?;
            let h = vfs.open(&hint_final, create).map_err(Error::io("merge: create hint"))?;
            h.write_all_at(&hint, 0).map_err(Error::io("merge: write hint"))?;
            self.remove_sources(sources)?;
            return Ok(f);
        }
        let write_synced = |name: &str, bytes: &[u8]| -> Result<()> {
            let tmp = format!("{name}.tmp");
            let f = vfs.open(&tmp, create).map_err(Error::io("merge: create temp"))?;
            // Through a buffer, as a buffered writer would: one write per chunk, so a device
            // fault at the sync can displace one chunk of many.
            for (i, chunk) in bytes.chunks(WRITE_CHUNK_BYTES).enumerate() {
                let at = (i * WRITE_CHUNK_BYTES) as u64;
                f.write_all_at(chunk, at).map_err(Error::io("merge: write temp"))?;
            }
            f.sync_all().map_err(Error::io("merge: fsync temp"))?;
            vfs.rename(&tmp, name).map_err(Error::io("merge: rename"))
        };
        write_synced(&data_final, data)?;
        if bugs.hint_in_place {
            // The bug: the hint is written at its final name as the merge goes, entry by entry,
            // and never synced. A crash leaves a prefix of whole entries, which parses.
            let h = vfs.open(&hint_final, create).map_err(Error::io("merge: create hint"))?;
            let header = format::encode_hint_header(data.len() as u64);
            h.write_all_at(&header, 0).map_err(Error::io("merge: write hint"))?;
            let mut at = header.len() as u64;
            for e in hints {
                let bytes = format::encode_hint_entry(e);
                h.write_all_at(&bytes, at).map_err(Error::io("merge: write hint"))?;
                at += bytes.len() as u64;
            }
        } else {
            write_synced(&hint_final, &hint)?;
        }
        vfs.sync_dir().map_err(Error::io("merge: sync directory"))?;
        self.remove_sources(sources)?;
        vfs.open(&data_final, OpenOptions::existing()).map_err(Error::io("merge: reopen"))
    }

    fn remove_sources(&self, sources: &[u32]) -> Result<()> {
        let names = self.vfs.list().map_err(Error::io("merge: list"))?;
        for &id in sources {
            for name in [data_name(id), hint_name(id)] {
                if names.contains(&name) {
                    self.vfs.remove(&name).map_err(Error::io("merge: remove old file"))?;
                }
            }
        }
        self.vfs.sync_dir().map_err(Error::io("merge: sync directory"))
    }
}
