//! The keydir: each key's latest record.
//!
//! A hash map (with a fixed, unseeded hasher, so the same inserts build the same table), because
//! every put and every recovered record looks a key up. It is never iterated in its own order:
//! whatever walks it (merge, the state read-back) gets the view sorted by key, so nothing the engine writes
//! or reports depends on hash order.

use crate::store::Entry;
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// Keys live in one arena (a recovery of n records allocates O(1) times, not n); the table holds
/// where each key is and its entry.
#[derive(Default)]
pub(crate) struct Keydir {
    keys: Vec<u8>,
    /// Arena bytes of removed keys, reclaimed once they are half of it.
    garbage: usize,
    table: HashTable<Slot>,
}

struct Slot {
    at: usize,
    len: usize,
    entry: Entry,
}

fn hash(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Keydir {
    fn key<'a>(keys: &'a [u8], s: &Slot) -> &'a [u8] {
        &keys[s.at..s.at + s.len]
    }

    fn slot_mut(&mut self, key: &[u8]) -> Option<&mut Slot> {
        let keys = &self.keys;
        self.table.find_mut(hash(key), |s| Self::key(keys, s) == key)
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let keys = &self.keys;
        self.table.find(hash(key), |s| Self::key(keys, s) == key).map(|s| &s.entry)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.slot_mut(key).map(|s| &mut s.entry)
    }

    /// Point `key` at `entry` if `replace` says so of the entry it has, or if it has none. One
    /// hash and one probe either way.
    fn upsert(&mut self, key: &[u8], entry: Entry, replace: impl FnOnce(&Entry) -> bool) {
        use hashbrown::hash_table::Entry as Found;
        let h = hash(key);
        let keys = &self.keys;
        let found =
            self.table.entry(h, |s| Self::key(keys, s) == key, |s| hash(Self::key(keys, s)));
        match found {
            Found::Occupied(mut o) => {
                if replace(&o.get().entry) {
                    o.get_mut().entry = entry;
                }
            }
            Found::Vacant(v) => {
                let at = self.keys.len();
                v.insert(Slot { at, len: key.len(), entry });
                self.keys.extend_from_slice(key);
            }
        }
    }

    /// Point `key` at `entry`.
    pub fn insert(&mut self, key: &[u8], entry: Entry) {
        self.upsert(key, entry, |_| true);
    }

    /// Point `key` at `entry` unless it already points at a later record (recovery reads files
    /// in id order, and a key may appear twice after an interrupted merge or a sync rewrite).
    pub fn insert_latest(&mut self, key: &[u8], entry: Entry) {
        self.upsert(key, entry, |old| old.seq < entry.seq);
    }

    /// Room for `n` more keys (recovery knows how many records it is about to insert).
    pub fn reserve(&mut self, n: usize) {
        let keys = &self.keys;
        self.table.reserve(n, |s| hash(Self::key(keys, s)));
    }

    pub fn remove(&mut self, key: &[u8]) {
        let keys = &self.keys;
        let Ok(found) = self.table.find_entry(hash(key), |s| Self::key(keys, s) == key) else {
            return;
        };
        let (slot, _) = found.remove();
        self.garbage += slot.len;
        if self.garbage > self.keys.len() / 2 {
            self.compact();
        }
    }

    /// Rebuild the arena without the bytes of removed keys.
    fn compact(&mut self) {
        let mut keys = Vec::with_capacity(self.keys.len() - self.garbage);
        for s in self.table.iter_mut() {
            let at = keys.len();
            keys.extend_from_slice(&self.keys[s.at..s.at + s.len]);
            s.at = at;
        }
        self.keys = keys;
        self.garbage = 0;
    }

    /// Keys that are not tombstones.
    pub fn live(&self) -> usize {
        self.live_size().0
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// (live keys, their key and value bytes): a sum, so hash order does not matter.
    pub fn live_size(&self) -> (usize, usize) {
        self.table.iter().filter(|s| !s.entry.tombstone).fold((0, 0), |(n, b), s| {
            (n + 1, b + s.entry.len as usize - crate::format::RECORD_HEADER_BYTES)
        })
    }

    /// Every entry in key order.
    pub fn by_key(&self) -> Vec<(&[u8], &Entry)> {
        let keys = &self.keys;
        // Sorted on the first 16 bytes as a number (zero-padded, so the order is the byte order
        // among keys that differ there), then each run of equal prefixes on the whole key.
        let prefix = |k: &[u8]| -> u128 {
            let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            match k.len() {
                16.. => u128::from_be_bytes(k[..16].try_into().unwrap_or([0; 16])),
                // Two loads: the first 8 bytes, and the last 8 shifted so that the bytes after
                // the first 8 lead (those before them drop out; zeros fill in).
                9..16 => {
                    let low = word(&k[k.len() - 8..]) << (8 * (16 - k.len()));
                    (u128::from(word(&k[..8])) << 64) | u128::from(low)
                }
                n => {
                    let mut b = [0u8; 16];
                    b[..n].copy_from_slice(k);
                    u128::from_be_bytes(b)
                }
            }
        };
        let mut v: Vec<(u128, &Slot)> =
            self.table.iter().map(|s| (prefix(Self::key(keys, s)), s)).collect();
        sort_by_prefix(&mut v);
        let mut at = 0;
        // Bounded: `at` advances past one run of equal prefixes each time.
        while at < v.len() {
            let run = v[at..].iter().take_while(|(p, _)| *p == v[at].0).count();
            if run > 1 {
                v[at..at + run]
                    .sort_unstable_by(|a, b| Self::key(keys, a.1).cmp(Self::key(keys, b.1)));
            }
            at += run;
        }
        v.into_iter().map(|(_, s)| (Self::key(keys, s), &s.entry)).collect()
    }
}

/// Sort on the prefix. Keys usually share most of their first 16 bytes (`user000123`,
/// `key004711`), so when few of those bytes differ among them, a radix sort over just those bytes
/// (least significant first, each pass stable) beats comparing: a few linear passes instead of
/// n log n comparisons. Otherwise, or for few keys, a comparison sort.
fn sort_by_prefix<T: Copy>(v: &mut Vec<(u128, T)>) {
    const MAX_RADIX_BYTES: usize = 6;
    let Some(&(first, _)) = v.first() else { return };
    let differ = v.iter().fold(0u128, |acc, &(p, _)| acc | (p ^ first));
    let shifts: Vec<u32> =
        (0..16u32).map(|b| 8 * b).filter(|s| (differ >> s) & 0xff != 0).collect();
    if v.len() < 64 || shifts.len() > MAX_RADIX_BYTES {
        v.sort_unstable_by_key(|&(p, _)| p);
        return;
    }
    let mut out = v.clone();
    for shift in shifts {
        let digit = |p: u128| ((p >> shift) & 0xff) as usize;
        let mut at = [0usize; 256];
        for &(p, _) in v.iter() {
            at[digit(p)] += 1;
        }
        let mut sum = 0;
        for slot in &mut at {
            (*slot, sum) = (sum, sum + *slot);
        }
        for &e in v.iter() {
            let d = digit(e.0);
            out[at[d]] = e;
            at[d] += 1;
        }
        std::mem::swap(v, &mut out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry { file: 1, offset: seq * 10, len: 10, seq, tombstone: false }
    }

    #[test]
    fn latest_record_wins_and_views_are_sorted() {
        let mut k = Keydir::default();
        k.insert_latest(b"b", entry(5));
        k.insert_latest(b"a", entry(2));
        k.insert_latest(b"b", entry(3)); // older: ignored
        k.insert(b"c", entry(1));
        k.insert(b"c", entry(9));
        assert_eq!(k.get(b"b").map(|e| e.seq), Some(5));
        assert_eq!(k.get(b"c").map(|e| e.seq), Some(9));
        let keys: Vec<&[u8]> = k.by_key().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, [b"a" as &[u8], b"b", b"c"]);
        // Keys that tie on their 16-byte prefix are ordered on the whole key.
        for key in [&b"0123456789abcdef-z"[..], b"0123456789abcdef", b"0123456789abcdef-a", b"b\0"]
        {
            k.insert(key, entry(1));
        }
        let keys: Vec<&[u8]> = k.by_key().into_iter().map(|(key, _)| key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 7);
    }

    #[test]
    fn removing_keys_reclaims_the_arena() {
        let mut k = Keydir::default();
        for i in 0..1000u64 {
            k.insert(format!("key{i:06}").as_bytes(), entry(i));
        }
        for i in (0..1000u64).filter(|i| i % 4 != 0) {
            k.remove(format!("key{i:06}").as_bytes());
        }
        k.remove(b"never-inserted");
        assert_eq!(k.len(), 250);
        assert!(k.keys.len() - k.garbage == 250 * 9 && k.keys.len() <= 2 * 250 * 9 + 9);
        for i in 0..1000u64 {
            let got = k.get(format!("key{i:06}").as_bytes()).map(|e| e.seq);
            assert_eq!(got, (i % 4 == 0).then_some(i), "key{i:06}");
        }
    }

    #[test]
    fn by_key_sorts_like_a_comparison_sort_whichever_way_it_sorts() {
        // Few differing prefix bytes (the radix path), many (the comparison path), ties on the
        // prefix, and lengths on both sides of 16.
        let mut x = 11u64;
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        let sets: [Vec<Vec<u8>>; 3] = [
            (0..700).map(|_| format!("key{:06}", next() % 5_000).into_bytes()).collect(),
            (0..300).map(|_| (0..1 + next() % 24).map(|_| next() as u8).collect()).collect(),
            (0..200).map(|_| format!("0123456789abcdef{}", next() % 90).into_bytes()).collect(),
        ];
        for keys in sets {
            let mut k = Keydir::default();
            for (i, key) in keys.iter().enumerate() {
                k.insert(key, entry(i as u64));
            }
            let got: Vec<&[u8]> = k.by_key().into_iter().map(|(key, _)| key).collect();
            let mut want: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            want.sort();
            want.dedup();
            assert_eq!(got, want);
        }
    }
}
