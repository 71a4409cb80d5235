//! Workloads: the operations a seed runs, drawn from the scenario's mix, key space, value sizes
//! and arrival gaps. Every value written carries a unique 12-byte tag, so a recovered value names
//! the one write that produced it.

use crate::scenario::Workload;
use rand::Rng;
use std::time::Duration;

/// One planned operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Set a key to a value of `value_bytes` bytes.
    Put {
        /// The key number.
        key: u32,
        /// The value's size.
        value_bytes: u32,
    },
    /// Remove a key.
    Delete {
        /// The key number.
        key: u32,
    },
    /// Read a key back and compare.
    Get {
        /// The key number.
        key: u32,
    },
    /// Compact.
    Merge,
    /// An atomic batch of `len` puts and deletes, drawn from `seed` ([`batch_members`]).
    Batch {
        /// Writes in the batch.
        len: u32,
        /// Seeds the draw of its writes.
        seed: u64,
    },
}

/// An operation and the virtual time to wait before issuing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Virtual time to wait before it.
    pub gap: Duration,
    /// The operation.
    pub op: Op,
}

/// The operations of one seed.
pub fn generate(w: &Workload, rng: &mut impl Rng) -> Vec<Planned> {
    plan(w, rng).collect()
}

/// The operations of one seed, drawn as they are taken: operation `i` is the same however many
/// are taken, so a run that stops early draws no more than it ran.
pub fn plan<'a>(w: &'a Workload, rng: &'a mut impl Rng) -> impl Iterator<Item = Planned> + 'a {
    let m = w.mix;
    let total = m.put + m.delete + m.get + m.merge + m.batch;
    (0..w.ops).map(move |_| {
        let gap = Duration::from_micros(rng.random_range(w.gap_us.min..=w.gap_us.max));
        let key = rng.random_range(0..w.keys);
        let pick = rng.random_range(0..total);
        let op = if pick < m.put {
            let value_bytes = rng.random_range(w.value_bytes.min..=w.value_bytes.max) as u32;
            Op::Put { key, value_bytes }
        } else if pick < m.put + m.delete {
            Op::Delete { key }
        } else if pick < m.put + m.delete + m.get {
            Op::Get { key }
        } else if pick < m.put + m.delete + m.get + m.merge {
            Op::Merge
        } else {
            let len = rng.random_range(w.batch_ops.min..=w.batch_ops.max) as u32;
            Op::Batch { len, seed: rng.random() }
        };
        Planned { gap, op }
    })
}

/// The writes of a batch: `Put`s and `Delete`s in the workload's put:delete proportion (all puts
/// when it has no deletes), keys and value sizes drawn as for single writes.
pub fn batch_members(w: &Workload, len: u32, seed: u64) -> Vec<Op> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (put, delete) = (w.mix.put, w.mix.delete);
    (0..len)
        .map(|_| {
            let key = rng.random_range(0..w.keys);
            if rng.random_range(0..put + delete) < put {
                let value_bytes = rng.random_range(w.value_bytes.min..=w.value_bytes.max) as u32;
                Op::Put { key, value_bytes }
            } else {
                Op::Delete { key }
            }
        })
        .collect()
}

/// `width` decimal digits of `n`, zero-padded, appended to `out`.
fn push_digits(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The bytes of key number `key`.
pub fn key_bytes(key: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    write_key(&mut k, key);
    k
}

/// [`key_bytes`] into `out` (cleared first).
pub fn write_key(out: &mut Vec<u8>, key: u32) {
    out.clear();
    out.extend_from_slice(b"key");
    push_digits(out, u64::from(key), 6);
}

/// The key number of `bytes`, if it is a workload key.
pub fn key_number(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.strip_prefix(b"key")?;
    if digits.len() != 6 {
        return None;
    }
    parse_digits(digits).map(|n| n as u32)
}

/// The number `digits` spell, if they are all ASCII digits (at most 19 of them, so no overflow).
fn parse_digits(digits: &[u8]) -> Option<u64> {
    debug_assert!(digits.len() <= 19);
    digits.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// The value of write number `write` (unique tag, then filler), `len` bytes (at least 12).
pub fn value_bytes(write: u64, len: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(12) as usize);
    write_value(&mut v, write, len);
    v
}

/// [`value_bytes`] into `out` (cleared first).
pub fn write_value(out: &mut Vec<u8>, write: u64, len: u32) {
    out.clear();
    out.push(b'w');
    push_digits(out, write, 11);
    out.resize(len.max(12) as usize, fill_byte(write));
}

fn fill_byte(write: u64) -> u8 {
    b'a' + (write % 26) as u8
}

/// Is `bytes` exactly `value_bytes(write, len)`? (Without building it.)
pub fn is_value(bytes: &[u8], write: u64, len: u32) -> bool {
    let fill = fill_byte(write);
    bytes.len() == len.max(12) as usize
        && value_tag(bytes) == Some(write)
        && bytes[12..].iter().fold(true, |same, &b| same & (b == fill)) // no early exit: vectorized
}

/// The write number a value was tagged with, if it carries a tag.
pub fn value_tag(bytes: &[u8]) -> Option<u64> {
    parse_digits(bytes.get(..12)?.strip_prefix(b"w")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        assert_eq!(value_tag(&value_bytes(42, 100)), Some(42));
        assert_eq!(value_bytes(42, 100).len(), 100);
        assert_eq!(key_number(&key_bytes(7)), Some(7));
        assert_eq!(value_tag(b"garbage-bytes-here"), None);
        assert_eq!(value_tag(b"w+0000000001aaaa"), None, "digits only, no sign");
        assert_eq!(key_number(b"key00001x"), None);
        assert!(is_value(&value_bytes(42, 100), 42, 100));
        assert!(!is_value(&value_bytes(42, 100), 42, 99));
        assert!(!is_value(&value_bytes(43, 100), 42, 100));
        assert_eq!(key_bytes(7), b"key000007");
    }
}
