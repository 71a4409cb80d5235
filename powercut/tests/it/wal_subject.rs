//! A tiny append-only write-ahead log as a powercut `Subject`: the proof that the trait is not
//! shaped around Bitcask. `sync: false` reproduces the classic bug of acknowledging a write as
//! durable without syncing it. Used by `tests/it/wal.rs` and `tests/it/check.rs`.

use faultfs::{OpenOptions, SimFs, Vfs, VfsFile};
use powercut::subject::{Ack, Promise, State, Subject, SubjectError};
use std::collections::BTreeMap;

/// Records: crc32 (4) | key_len (2) | value_len (4, u32::MAX = delete) | key | value.
pub struct Wal {
    file: faultfs::SimFile,
    len: u64,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    seq: u64,
    /// `false` reproduces the classic bug: acknowledge as durable without syncing.
    sync: bool,
}

fn io(e: std::io::Error) -> SubjectError {
    SubjectError::from(e)
}

impl Wal {
    fn append(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<Ack, SubjectError> {
        let mut rec = vec![0u8; 4];
        rec.extend((key.len() as u16).to_le_bytes());
        rec.extend(value.map_or(u32::MAX, |v| v.len() as u32).to_le_bytes());
        rec.extend(key);
        rec.extend(value.unwrap_or_default());
        let crc = crc32(&rec[4..]);
        rec[..4].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&rec, self.len).map_err(io)?;
        if self.sync {
            self.file.sync_data().map_err(io)?;
        }
        self.len += rec.len() as u64;
        match value {
            Some(v) => self.state.insert(key.to_vec(), v.to_vec()),
            None => self.state.remove(key),
        };
        self.seq += 1;
        Ok(Ack { seq: self.seq, promise: Promise::Durable, durable_through: self.seq })
    }
}

/// A bitwise CRC-32 (IEEE), to keep the example free of dependencies.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

impl Subject for Wal {
    const NAME: &'static str = "wal";
    type Config = bool; // sync on every write?

    fn open(fs: SimFs, sync: &bool) -> Result<Self, SubjectError> {
        let file = fs.open("wal.log", OpenOptions::create()).map_err(io)?;
        let mut bytes = vec![0u8; file.len().map_err(io)? as usize];
        file.read_exact_at(&mut bytes, 0).map_err(io)?;
        let mut wal = Wal { file, len: 0, state: BTreeMap::new(), seq: 0, sync: *sync };
        // Replay up to the first bad record; cut the log there and make that durable.
        let mut at = 0usize;
        while let Some(h) = bytes.get(at..at + 10) {
            let key_len = u16::from_le_bytes([h[4], h[5]]) as usize;
            let raw = u32::from_le_bytes([h[6], h[7], h[8], h[9]]);
            let value_len = if raw == u32::MAX { 0 } else { raw as usize };
            let Some(rec) = bytes.get(at..at + 10 + key_len + value_len) else { break };
            if crc32(&rec[4..]) != u32::from_le_bytes([h[0], h[1], h[2], h[3]]) {
                break;
            }
            let key = rec[10..10 + key_len].to_vec();
            match raw {
                u32::MAX => wal.state.remove(&key),
                _ => wal.state.insert(key, rec[10 + key_len..].to_vec()),
            };
            at += rec.len();
        }
        wal.len = at as u64;
        wal.file.set_len(wal.len).map_err(io)?;
        wal.file.sync_data().map_err(io)?;
        fs.sync_dir().map_err(io)?;
        Ok(wal)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Ack, SubjectError> {
        self.append(key, Some(value))
    }

    fn delete(&mut self, key: &[u8]) -> Result<Ack, SubjectError> {
        self.append(key, None)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, SubjectError> {
        Ok(self.state.get(key).cloned())
    }

    fn tick(&mut self) -> Result<u64, SubjectError> {
        Ok(if self.sync { self.seq } else { 0 })
    }

    fn state(&mut self) -> Result<State, SubjectError> {
        Ok(self.state.iter().collect())
    }
}
