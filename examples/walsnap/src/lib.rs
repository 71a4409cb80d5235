//! walsnap: a key-value store made of a write-ahead log and snapshots published by rename. An
//! example engine for powercut, of another design than its built-in Bitcask.
//!
//! Every write appends one CRC-checked record to the current log and `fdatasync`s it before it is
//! acknowledged. Every `snapshot_every` writes the whole map goes to `snap-N.tmp`, which is
//! fsynced, renamed to `snap-N.snap`, and the directory fsynced; then a fresh log `wal-N.log` is
//! created (directory fsync) and every older snapshot and log is deleted (directory fsync).
//! Recovery loads the newest valid snapshot, replays the logs after it, and snapshots the result.
//!
//! # On-disk format (integers little-endian; CRC-32 is the IEEE one of zlib)
//!
//! Files, `N` a decimal number (6 digits or more) new for every snapshot attempt: `wal-N.log`, a
//! log; `snap-N.snap`, a published snapshot; `snap-N.tmp`, one being written (never read).
//!
//! ```text
//! log record                               snapshot file
//!  0  4  crc32 of bytes 4..end of record    0  4  magic "WSNP"
//!  4  8  seq (the write's id: 1, 2, ...)    4  4  crc32 of bytes 8..end of file
//! 12  1  kind: 1 put, 2 delete              8  8  seq of the last write it holds
//! 13  4  key length K                      16  4  entry count
//! 17  4  value length V (0 for a delete)   20  .. entries, by key: key length (4),
//! 21  .. K key bytes, V value bytes                value length (4), key, value
//! ```
//!
//! # Invariants
//!
//! - An acknowledged write is durable: its record was fdatasynced in a log whose name a directory
//!   fsync made durable, or a snapshot whose data was fsynced before its rename (and the rename
//!   before anything was deleted) holds it.
//! - Logs are replayed in file-number order, which is write order, and a record applies only if
//!   its seq is past the snapshot's. So a snapshot and the logs it supersedes may all survive a
//!   crash or a failed snapshot attempt unharmed: deleting superseded files is only tidying.
//! - In a log, the acknowledged records are a prefix of valid records with consecutive seqs, and
//!   nothing is appended after a failed append (the next write first moves to a fresh log through
//!   a snapshot). So the first invalid record ends a log; recovery truncates the last log there.
//! - Recovery makes what it returns durable before it deletes anything: it syncs each file it
//!   keeps, the truncation and the directory, then snapshots what it replayed from the logs (a
//!   record a failed fsync left only in the page cache reads back fine, but no fsync writes it).
//!   It ends with a directory fsync.
//! - Any bytes decode without a panic (every length is bounds-checked). No threads, clock or
//!   randomness: all I/O goes through the [`Vfs`] seam.

#[cfg(feature = "powercut")]
mod subject;
#[cfg(test)]
mod tests;
#[cfg(feature = "powercut")]
pub use subject::Subject;

use powercut_vfs::{OpenOptions, Vfs, VfsFile, is_power_cut};
use std::collections::BTreeMap;
use std::{fmt, io};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The planted bug switches: (name, what it does).
pub const BUGS: &[(&str, &str)] = &[(
    "publish-without-sync",
    "rename a snapshot into place without fsyncing it first: a power cut can leave it torn after \
     the logs it replaced are gone",
)];

/// A planted bug (see [`BUGS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "powercut", derive(serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Bug {
    /// Skip the fsync of a snapshot before its rename.
    PublishWithoutSync,
}

impl Bug {
    /// The bug switch called `name` in [`BUGS`].
    pub fn from_name(name: &str) -> Option<Bug> {
        (name == BUGS[0].0).then_some(Bug::PublishWithoutSync)
    }
}

/// What [`WalSnap::open`] needs besides the filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "powercut", derive(serde::Deserialize), serde(deny_unknown_fields, default))]
pub struct Config {
    /// Snapshot after this many writes (0: only when [`WalSnap::snapshot`] is called).
    pub snapshot_every: u32,
    /// A planted bug, or none.
    pub bug: Option<Bug>,
}

impl Default for Config {
    /// A snapshot every 32 writes, no bug.
    fn default() -> Self {
        Config { snapshot_every: 32, bug: None }
    }
}

/// The store, over any [`Vfs`] (a real directory in production, powercut's SimFs under test).
pub struct WalSnap<V: Vfs> {
    fs: V,
    config: Config,
    map: Map,
    /// The log appended to, and its length (the end of its last acknowledged record).
    wal: V::File,
    wal_len: u64,
    /// An append to `wal` failed: its tail is unknown, so nothing more goes into it.
    wal_failed: bool,
    /// The last acknowledged write's seq; writes since the last snapshot.
    seq: u64,
    since_snapshot: u64,
    /// The number the next snapshot attempt takes (past every file number seen).
    next_number: u64,
    notes: Vec<String>,
    /// Records recovery dropped after damage (not a torn tail).
    dropped: Vec<String>,
}

impl<V: Vfs> fmt::Debug for WalSnap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (keys, seq, wal_len) = (self.map.len(), self.seq, self.wal_len);
        write!(f, "WalSnap {{ keys: {keys}, seq: {seq}, wal_len: {wal_len}, .. }}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wal,
    Snap,
    Tmp,
}

const KINDS: [(Kind, &str, &str); 3] =
    [(Kind::Wal, "wal-", ".log"), (Kind::Snap, "snap-", ".snap"), (Kind::Tmp, "snap-", ".tmp")];

fn file_name(kind: Kind, number: u64) -> String {
    let (_, prefix, suffix) = KINDS[kind as usize];
    format!("{prefix}{number:06}{suffix}")
}

/// The kind and number of one of our files; `None` for any other name.
fn parse_name(name: &str) -> Option<(Kind, u64)> {
    KINDS.iter().find_map(|&(kind, prefix, suffix)| {
        let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        // Digits only, and small enough that counting on from them cannot overflow.
        let ok =
            !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit());
        Some((kind, digits.parse().ok().filter(|_| ok)?))
    })
}

impl<V: Vfs> WalSnap<V> {
    /// Open the store in `fs`, recovering whatever is there (an empty directory is a new store).
    pub fn open(fs: V, config: Config) -> io::Result<Self> {
        let (mut snaps, mut wals, mut junk, mut next_number) = (vec![], vec![], vec![], 1);
        for name in fs.list()? {
            let Some((kind, number)) = parse_name(&name) else { continue };
            next_number = next_number.max(number + 1);
            match kind {
                Kind::Snap => snaps.push((number, name)),
                Kind::Wal => wals.push((number, name)),
                Kind::Tmp => junk.push(name), // an unfinished snapshot
            }
        }
        snaps.sort_unstable();
        wals.sort_unstable();
        // 1. The newest valid snapshot. A torn or rotten one is noted and dropped (only bit rot,
        //    or the planted bug, makes one: a snapshot is synced before it is renamed into place).
        let mut notes = Vec::new();
        let mut dropped = Vec::new();
        let (mut snap_number, mut snap_seq, mut map) = (0, 0, Map::new());
        while let Some((number, name)) = snaps.pop() {
            let file = fs.open(&name, OpenOptions::existing())?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            if let Some((seq, entries)) = decode_snapshot(&bytes) {
                file.sync_all()?; // what recovery returns must be durable
                (snap_number, snap_seq, map) = (number, seq, entries);
                break;
            }
            notes.push(format!("{name}: invalid snapshot ({} bytes), ignored", bytes.len()));
            junk.push(name);
        }
        junk.extend(snaps.into_iter().map(|(_, name)| name)); // older than the one loaded
        // 2. Replay every log in order, skipping what the snapshot holds. The last log, if it
        //    is newer than the snapshot, is appended to: cut at its first invalid record.
        let (mut seq, mut target) = (snap_seq, None);
        for (i, (number, name)) in wals.iter().enumerate() {
            let file = fs.open(name, OpenOptions::existing())?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let (valid, last) = replay(&bytes, snap_seq, &mut map);
            seq = seq.max(last);
            if valid < bytes.len() {
                let bad = bytes.len() - valid;
                notes.push(format!("{name}: {bad} bytes from offset {valid} are no valid record"));
                // A whole record after the bad one: the log was damaged, not torn at its end,
                // and what followed the damage is dropped.
                if (valid + 1..bytes.len()).any(|at| decode_record(&bytes[at..]).is_some()) {
                    dropped.push(format!(
                        "{name}: records after the invalid one at offset {valid} dropped"
                    ));
                }
            }
            // (Appends continue its seqs: a log whose last seq is not the newest is not reused.)
            if i + 1 == wals.len() && *number >= snap_number && (last == 0 || last == seq) {
                if valid < bytes.len() {
                    file.set_len(valid as u64)?;
                }
                file.sync_data()?;
                target = Some((file, valid as u64));
            } else if last > snap_seq {
                file.sync_data()?; // holds writes the snapshot does not
            } else {
                junk.push(name.clone()); // everything in it is in the snapshot
            }
        }
        let (wal, wal_len) = match target {
            Some(t) => t,
            None => {
                next_number += 1;
                (fs.open(&file_name(Kind::Wal, next_number - 1), OpenOptions::create_new())?, 0)
            }
        };
        // 3. Names durable (a rename a killed process left unsynced, the new log) before any
        //    removal: the files removed are superseded only once the snapshot's name is durable.
        fs.sync_dir()?;
        let since_snapshot = seq - snap_seq;
        let mut store = WalSnap {
            fs,
            config,
            map,
            wal,
            wal_len,
            wal_failed: false,
            seq,
            since_snapshot,
            next_number,
            notes,
            dropped,
        };
        // 4. What came from the logs goes into a fresh snapshot, written from memory: after a
        //    failed fsync the page cache can show a record no later fsync will write (Linux marks
        //    its pages clean), and a recovery after kill -9 reads it. The snapshot's tidying
        //    removes the junk. If it fails (a full disk, say), the synced logs stand.
        if since_snapshot > 0 {
            match store.snapshot() {
                Ok(()) => return Ok(store),
                Err(e) if is_power_cut(&e) => return Err(e),
                Err(_) => {}
            }
        }
        if !junk.is_empty() {
            for name in &junk {
                store.fs.remove(name)?;
            }
            store.fs.sync_dir()?;
        }
        Ok(store)
    }

    /// Set `key` to `value`; returns the write's seq once it is durable.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<u64> {
        self.append(key, Some(value))
    }

    /// Remove `key`; returns the write's seq once it is durable.
    pub fn delete(&mut self, key: &[u8]) -> io::Result<u64> {
        self.append(key, None)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// Every key and its value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// The seq of the last acknowledged write (every write up to it is durable).
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// What recovery found wrong (invalid snapshots, log tails cut).
    pub fn recovery_notes(&self) -> &[String] {
        &self.notes
    }

    /// What recovery dropped although it may have been durable: whole records after an invalid
    /// one in a log (damage, not the torn tail a crash leaves), which the caller should know of.
    pub fn recovery_dropped(&self) -> Vec<String> {
        self.dropped.clone()
    }

    fn append(&mut self, key: &[u8], value: Option<&[u8]>) -> io::Result<u64> {
        if self.wal_failed {
            self.snapshot()?; // the failed log's tail is unknown: move to a fresh one first
        }
        let seq = self.seq.checked_add(1).ok_or_else(|| io::Error::other("seq exhausted"))?;
        let record = encode_record(seq, key, value)?;
        let written = self.wal.write_all_at(&record, self.wal_len);
        if let Err(e) = written.and_then(|()| self.wal.sync_data()) {
            self.wal_failed = true; // not acknowledged; the log is abandoned
            return Err(e);
        }
        self.wal_len += record.len() as u64;
        self.seq = seq;
        match value {
            Some(v) => self.map.insert(key.to_vec(), v.to_vec()),
            None => self.map.remove(key),
        };
        self.since_snapshot += 1;
        let every = u64::from(self.config.snapshot_every);
        if every > 0 && self.since_snapshot >= every {
            // The write is durable already; a failed snapshot is retried by the next write.
            if let Err(e) = self.snapshot() {
                if is_power_cut(&e) {
                    return Err(e);
                }
            }
        }
        Ok(seq)
    }

    /// Snapshot the whole map and start a fresh log; older files are deleted. A failure leaves
    /// every write where it was (the old snapshot and logs), to be retried.
    pub fn snapshot(&mut self) -> io::Result<()> {
        let number = self.next_number;
        self.next_number += 1; // never reuse a name whose fate a failure left unknown
        let (tmp, snap) = (file_name(Kind::Tmp, number), file_name(Kind::Snap, number));
        let bytes = encode_snapshot(self.seq, &self.map)?;
        let publish = || -> io::Result<()> {
            let file = self.fs.open(&tmp, OpenOptions::create().truncate(true))?;
            file.write_all_at(&bytes, 0)?;
            if self.config.bug != Some(Bug::PublishWithoutSync) {
                file.sync_all()?; // the data must be durable before the name says it is there
            }
            self.fs.rename(&tmp, &snap)?;
            self.fs.sync_dir()
        };
        if let Err(e) = publish() {
            if !is_power_cut(&e) {
                let _ = self.fs.remove(&tmp); // best effort: a leftover .tmp is never read
            }
            return Err(e);
        }
        // A fresh log, its name durable before a write that must survive goes into it.
        let wal = self.fs.open(&file_name(Kind::Wal, number), OpenOptions::create_new())?;
        self.fs.sync_dir()?;
        (self.wal, self.wal_len, self.wal_failed, self.since_snapshot) = (wal, 0, false, 0);
        // Tidy up: everything else is superseded. Leftovers are harmless (recovery skips what
        // the snapshot holds) and go at the next snapshot or recovery.
        let tidy = || -> io::Result<()> {
            for name in self.fs.list()? {
                if parse_name(&name).is_some_and(|(k, n)| k == Kind::Tmp || n != number) {
                    self.fs.remove(&name)?;
                }
            }
            self.fs.sync_dir()
        };
        match tidy() {
            Err(e) if is_power_cut(&e) => Err(e),
            _ => Ok(()),
        }
    }
}

/// Apply one log's valid records past `after` to `map`: returns the length of its valid prefix
/// and the seq of its last valid record (0 for none).
fn replay(bytes: &[u8], after: u64, map: &mut Map) -> (usize, u64) {
    let (mut at, mut last) = (0, 0u64);
    // Bounded: every record is at least HEADER bytes long.
    while let Some((seq, key, value, len)) = bytes.get(at..).and_then(decode_record) {
        if last != 0 && last.checked_add(1) != Some(seq) {
            break; // not the next write: a stale record, not part of this log
        }
        if seq > after {
            match value {
                Some(v) => map.insert(key.to_vec(), v.to_vec()),
                None => map.remove(key),
            };
        }
        (at, last) = (at + len, seq);
    }
    (at, last)
}

const HEADER: usize = 21;
const PUT: u8 = 1;
const DELETE: u8 = 2;
const MAGIC: &[u8; 4] = b"WSNP";

fn len32(n: usize) -> io::Result<[u8; 4]> {
    let n =
        u32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too long"))?;
    Ok(n.to_le_bytes())
}

fn encode_record(seq: u64, key: &[u8], value: Option<&[u8]>) -> io::Result<Vec<u8>> {
    let v = value.unwrap_or_default();
    let mut rec = Vec::with_capacity(HEADER + key.len() + v.len());
    rec.extend([0; 4]);
    rec.extend(seq.to_le_bytes());
    rec.push(if value.is_some() { PUT } else { DELETE });
    rec.extend(len32(key.len())?);
    rec.extend(len32(v.len())?);
    rec.extend(key);
    rec.extend(v);
    let crc = crc32(&rec[4..]);
    rec[..4].copy_from_slice(&crc.to_le_bytes());
    Ok(rec)
}

type Record<'a> = (u64, &'a [u8], Option<&'a [u8]>, usize);

/// The record at the start of `b`, if it is a whole valid one: (seq, key, value, length).
fn decode_record(b: &[u8]) -> Option<Record<'_>> {
    let (klen, vlen) = (u32_at(b, 13)? as usize, u32_at(b, 17)? as usize);
    let len = HEADER.checked_add(klen)?.checked_add(vlen)?;
    let rec = b.get(..len)?;
    if crc32(&rec[4..]) != u32_at(b, 0)? {
        return None;
    }
    let (key, value) = rec[HEADER..].split_at(klen);
    match rec[12] {
        PUT => Some((u64_at(b, 4)?, key, Some(value), len)),
        DELETE if vlen == 0 => Some((u64_at(b, 4)?, key, None, len)),
        _ => None,
    }
}

fn encode_snapshot(seq: u64, map: &Map) -> io::Result<Vec<u8>> {
    let mut b = Vec::from(*MAGIC);
    b.extend([0; 4]);
    b.extend(seq.to_le_bytes());
    b.extend(len32(map.len())?);
    for (key, value) in map {
        b.extend(len32(key.len())?);
        b.extend(len32(value.len())?);
        b.extend(key);
        b.extend(value);
    }
    let crc = crc32(&b[8..]);
    b[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(b)
}

/// A whole valid snapshot: (seq, map); `None` for anything else.
fn decode_snapshot(b: &[u8]) -> Option<(u64, Map)> {
    if b.get(..4)? != MAGIC || crc32(b.get(8..)?) != u32_at(b, 4)? {
        return None;
    }
    let (seq, count, mut at, mut map) = (u64_at(b, 8)?, u32_at(b, 16)?, 20usize, Map::new());
    // Bounded: every entry is at least 8 bytes long, or decoding stops.
    for _ in 0..count {
        let (klen, vlen) = (u32_at(b, at)? as usize, u32_at(b, at + 4)? as usize);
        let end = (at + 8).checked_add(klen)?.checked_add(vlen)?;
        let (key, value) = b.get(at + 8..end)?.split_at(klen);
        map.insert(key.to_vec(), value.to_vec());
        at = end;
    }
    (at == b.len()).then_some((seq, map))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// CRC-32 (IEEE, reflected, as zlib), table-driven; no dependency.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, &b| TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8))
}
