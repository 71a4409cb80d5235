//! On-disk formats: data-file records, hint files, file names. The byte layout is documented in
//! `docs/format.md`, and a test decodes the example bytes given there.
//!
//! Guarantees: every multi-byte integer is little-endian; every record and every hint entry carries
//! a CRC-32 (IEEE, crc32fast) over all of its bytes after the CRC field; decoding never panics and
//! never allocates more than the bytes it was given.

/// Bytes of a record header: crc32, seq, timestamp, key_len, value_len, flags.
pub const RECORD_HEADER_BYTES: usize = 4 + 8 + 8 + 4 + 4 + 1;
/// Flag bit: the record is a tombstone (a delete); its value is empty.
pub const FLAG_TOMBSTONE: u8 = 1;
/// Flag bit: the record belongs to an atomic batch whose next record follows it. A batch is
/// records flagged `FLAG_BATCH_MORE` and one last record without the flag; recovery applies the
/// batch only once it has read that last record.
pub const FLAG_BATCH_MORE: u8 = 2;
/// Every flag bit a writer may set.
const RECORD_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_BATCH_MORE;
/// Largest accepted key.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Largest accepted value.
pub const MAX_VALUE_BYTES: usize = 64 * 1024 * 1024;

/// Hint file magic, first 8 bytes.
pub const HINT_MAGIC: [u8; 8] = *b"PCUTHINT";
/// Hint file header: magic, version, data_len, crc32 of the preceding 20 bytes.
pub const HINT_HEADER_BYTES: usize = 8 + 4 + 8 + 4;
/// Bytes of a hint entry before its key: crc32, seq, offset, key_len, value_len, flags.
pub const HINT_ENTRY_HEADER_BYTES: usize = 4 + 8 + 8 + 4 + 4 + 1;
pub const HINT_VERSION: u32 = 1;

/// A decoded data-file record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub tombstone: bool,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Why bytes do not hold a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRecord {
    /// Fewer bytes than the header, or than the lengths the header declares (a torn tail).
    Short,
    /// Lengths or flags no writer produces.
    Malformed,
    /// The CRC does not match the bytes.
    Checksum { expected: u32, actual: u32 },
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRecord::Short => f.write_str("short record (torn tail)"),
            BadRecord::Malformed => f.write_str("malformed header"),
            BadRecord::Checksum { expected, actual } => {
                write!(f, "checksum mismatch: stored {expected:#010x}, computed {actual:#010x}")
            }
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Total encoded size of a record with these lengths.
pub fn record_bytes(key_len: usize, value_len: usize) -> usize {
    RECORD_HEADER_BYTES + key_len + value_len
}

/// Encode a record.
pub fn encode_record(
    file_id: u32,
    seq: u64,
    timestamp_ns: u64,
    tombstone: bool,
    key: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(record_bytes(key.len(), value.len()));
    encode_record_into(&mut out, file_id, seq, timestamp_ns, tombstone, key, value);
    out
}

/// [`encode_record`], appended to `out`.
pub fn encode_record_into(
    out: &mut Vec<u8>,
    file_id: u32,
    seq: u64,
    timestamp_ns: u64,
    tombstone: bool,
    key: &[u8],
    value: &[u8],
) {
    encode_record_flagged(out, file_id, seq, timestamp_ns, tombstone, false, key, value);
}

/// [`encode_record_into`], with `more` setting [`FLAG_BATCH_MORE`].
#[expect(clippy::too_many_arguments, reason = "the record's fields, in their order on disk")]
pub fn encode_record_flagged(
    out: &mut Vec<u8>,
    file_id: u32,
    seq: u64,
    timestamp_ns: u64,
    tombstone: bool,
    more: bool,
    key: &[u8],
    value: &[u8],
) {
    debug_assert!(key.len() <= MAX_KEY_BYTES && value.len() <= MAX_VALUE_BYTES);
    debug_assert!(!tombstone || value.is_empty());
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&timestamp_ns.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let flags = if tombstone { FLAG_TOMBSTONE } else { 0 };
    out.push(flags | if more { FLAG_BATCH_MORE } else { 0 });
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    let crc = record_crc(file_id, &out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Recompute the CRC of every whole record in `bytes` (records this engine encoded) for data file
/// `file_id`: records copied to another file are sealed to it.
pub fn reseal(bytes: &mut [u8], file_id: u32) {
    let mut at = 0usize;
    // Bounded: each step advances by a whole record; a bad header ends it.
    while let Ok(h) = decode_header(&bytes[at..]) {
        let n = h.record_bytes();
        let Some(record) = bytes.get_mut(at..at + n) else { break };
        let crc = record_crc(file_id, &record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
        at += n;
    }
}

/// A record's CRC: over the id of the data file it is written to, then every byte after the CRC
/// field. A record read from any other file fails it: a stale record from a removed file that a
/// crash exposes inside a new one is not taken for a write.
pub fn record_crc(file_id: u32, body: &[u8]) -> u32 {
    // A fresh hasher detects the CPU's features each time; a clone of one made once does not
    // (every record of every recovery and read-back comes here).
    static FRESH: std::sync::LazyLock<crc32fast::Hasher> =
        std::sync::LazyLock::new(crc32fast::Hasher::new);
    let mut h = FRESH.clone();
    h.update(&file_id.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The fields of a record header that decide its length, checked for sanity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub crc: u32,
    pub seq: u64,
    pub timestamp_ns: u64,
    pub key_len: usize,
    pub value_len: usize,
    pub tombstone: bool,
    /// More records of the same atomic batch follow.
    pub more: bool,
}

impl Header {
    /// Total bytes of the record this header starts.
    pub fn record_bytes(&self) -> usize {
        record_bytes(self.key_len, self.value_len)
    }
}

/// Parse a header from the first [`RECORD_HEADER_BYTES`] of `b`.
pub fn decode_header(b: &[u8]) -> Result<Header, BadRecord> {
    if b.len() < RECORD_HEADER_BYTES {
        return Err(BadRecord::Short);
    }
    let flags = b[28];
    let h = Header {
        crc: u32_at(b, 0),
        seq: u64_at(b, 4),
        timestamp_ns: u64_at(b, 12),
        key_len: u32_at(b, 20) as usize,
        value_len: u32_at(b, 24) as usize,
        tombstone: flags & FLAG_TOMBSTONE != 0,
        more: flags & FLAG_BATCH_MORE != 0,
    };
    if flags & !RECORD_FLAGS != 0
        || h.key_len > MAX_KEY_BYTES
        || h.value_len > MAX_VALUE_BYTES
        || (h.tombstone && h.value_len != 0)
    {
        return Err(BadRecord::Malformed);
    }
    Ok(h)
}

/// Check the whole record at the start of `b`, read from data file `file_id` (lengths and CRC),
/// without copying it.
pub fn check_record(file_id: u32, b: &[u8]) -> Result<Header, BadRecord> {
    let h = decode_header(b)?;
    let n = h.record_bytes();
    if b.len() < n {
        return Err(BadRecord::Short);
    }
    let actual = record_crc(file_id, &b[4..n]);
    if actual != h.crc {
        return Err(BadRecord::Checksum { expected: h.crc, actual });
    }
    Ok(h)
}

/// Decode one whole record from the start of `b`, read from data file `file_id`, checking its CRC.
pub fn decode_record(file_id: u32, b: &[u8]) -> Result<(Record, usize), BadRecord> {
    let h = check_record(file_id, b)?;
    let n = h.record_bytes();
    let key_at = RECORD_HEADER_BYTES;
    let record = Record {
        seq: h.seq,
        timestamp_ns: h.timestamp_ns,
        tombstone: h.tombstone,
        key: b[key_at..key_at + h.key_len].to_vec(),
        value: b[key_at + h.key_len..n].to_vec(),
    };
    Ok((record, n))
}

/// One entry of a hint file: where a record lives in its data file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintEntry {
    pub seq: u64,
    pub offset: u64,
    pub value_len: u32,
    pub tombstone: bool,
    pub key: Vec<u8>,
}

/// Encode a hint file describing a data file of `data_len` bytes.
pub fn encode_hint(data_len: u64, entries: &[HintEntry]) -> Vec<u8> {
    let mut out = encode_hint_header(data_len);
    for e in entries {
        out.extend_from_slice(&encode_hint_entry(e));
    }
    out
}

/// The 24-byte header of a hint file.
pub fn encode_hint_header(data_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HINT_HEADER_BYTES);
    out.extend_from_slice(&HINT_MAGIC);
    out.extend_from_slice(&HINT_VERSION.to_le_bytes());
    out.extend_from_slice(&data_len.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// One hint entry.
pub fn encode_hint_entry(e: &HintEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(HINT_ENTRY_HEADER_BYTES + e.key.len());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&e.seq.to_le_bytes());
    out.extend_from_slice(&e.offset.to_le_bytes());
    out.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
    out.extend_from_slice(&e.value_len.to_le_bytes());
    out.push(if e.tombstone { FLAG_TOMBSTONE } else { 0 });
    out.extend_from_slice(&e.key);
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decode a hint file: its data length and entries, or `None` if any part fails its checks (a bad
/// CRC anywhere, or an entry cut short). A hint that ends cleanly after any whole entry decodes:
/// the format relies on hints being published atomically (temp, fsync, rename).
pub fn decode_hint(b: &[u8]) -> Option<(u64, Vec<HintEntry>)> {
    if b.len() < HINT_HEADER_BYTES || b[..8] != HINT_MAGIC || u32_at(b, 8) != HINT_VERSION {
        return None;
    }
    if crc32fast::hash(&b[..20]) != u32_at(b, 20) {
        return None;
    }
    let data_len = u64_at(b, 12);
    let mut entries = Vec::new();
    let mut at = HINT_HEADER_BYTES;
    // Bounded: each entry consumes at least HINT_ENTRY_HEADER_BYTES.
    while at < b.len() {
        let rest = &b[at..];
        if rest.len() < HINT_ENTRY_HEADER_BYTES {
            return None;
        }
        let key_len = u32_at(rest, 20) as usize;
        let flags = rest[28];
        if key_len > MAX_KEY_BYTES || flags & !FLAG_TOMBSTONE != 0 {
            return None;
        }
        let n = HINT_ENTRY_HEADER_BYTES + key_len;
        if rest.len() < n || crc32fast::hash(&rest[4..n]) != u32_at(rest, 0) {
            return None;
        }
        entries.push(HintEntry {
            seq: u64_at(rest, 4),
            offset: u64_at(rest, 12),
            value_len: u32_at(rest, 24),
            tombstone: flags & FLAG_TOMBSTONE != 0,
            key: rest[HINT_ENTRY_HEADER_BYTES..n].to_vec(),
        });
        at += n;
    }
    Some((data_len, entries))
}

/// `0000000042.data`
pub fn data_name(id: u32) -> String {
    format!("{id:010}.data")
}

/// `0000000042.hint`
pub fn hint_name(id: u32) -> String {
    format!("{id:010}.hint")
}

/// A file name this engine owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Data(u32),
    Hint(u32),
    /// A temporary file of an unfinished merge.
    Temp,
}

/// Classify a directory entry; `None` for names the engine does not own.
pub fn parse_name(name: &str) -> Option<FileKind> {
    if name.ends_with(".tmp") {
        return Some(FileKind::Temp);
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 10 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let id: u32 = stem.parse().ok()?;
    match ext {
        "data" => Some(FileKind::Data(id)),
        "hint" => Some(FileKind::Hint(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_every_single_bit_flip_is_caught() {
        let bytes = encode_record(1, 7, 1_000, false, b"key", b"value");
        let (r, n) = decode_record(1, &bytes).unwrap();
        assert!(decode_record(2, &bytes).is_err(), "a record read from another file fails its CRC");
        assert_eq!(
            (r.seq, r.key.as_slice(), r.value.as_slice(), n),
            (7, &b"key"[..], &b"value"[..], bytes.len())
        );
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode_record(1, &bad).is_err(), "bit {i} flipped went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(decode_record(1, &bytes[..cut]).is_err());
        }
    }

    #[test]
    fn hint_round_trip_and_corruption() {
        let e =
            HintEntry { seq: 3, offset: 99, value_len: 5, tombstone: false, key: b"k".to_vec() };
        let bytes = encode_hint(1234, std::slice::from_ref(&e));
        assert_eq!(decode_hint(&bytes), Some((1234, vec![e])));
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode_hint(&bad), None);
        assert_eq!(decode_hint(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn names() {
        assert_eq!(data_name(42), "0000000042.data");
        assert_eq!(parse_name("0000000042.data"), Some(FileKind::Data(42)));
        assert_eq!(parse_name("0000000042.hint"), Some(FileKind::Hint(42)));
        assert_eq!(parse_name("0000000042.data.tmp"), Some(FileKind::Temp));
        assert_eq!(parse_name("42.data"), None);
        assert_eq!(parse_name("notes.txt"), None);
    }
}
