//! The keydir: each key's latest record.
//!
//! A hash map (with a fixed, unseeded hasher, so the same inserts build the same table), because
//! every put and every recovered record looks a key up. It is never iterated in its own order:
//! whatever walks it (merge, the state read-back) gets a sorted view, so nothing the engine writes
//! or reports depends on hash order.

use crate::store::Entry;
use rustc_hash::FxHashMap;

#[derive(Default)]
pub(crate) struct Keydir {
    map: FxHashMap<Box<[u8]>, Entry>,
}

impl Keydir {
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.map.get_mut(key)
    }

    /// Point `key` at `entry`; the key is copied only when it is new.
    pub fn insert(&mut self, key: &[u8], entry: Entry) {
        match self.map.get_mut(key) {
            Some(e) => *e = entry,
            None => {
                self.map.insert(key.into(), entry);
            }
        }
    }

    /// Point `key` at `entry` unless it already points at a later record (recovery reads files
    /// in id order, and a key may appear twice after an interrupted merge or a sync rewrite).
    pub fn insert_latest(&mut self, key: &[u8], entry: Entry) {
        match self.map.get_mut(key) {
            Some(e) if e.seq < entry.seq => *e = entry,
            Some(_) => {}
            None => {
                self.map.insert(key.into(), entry);
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.map.remove(key);
    }

    /// Keys that are not tombstones.
    pub fn live(&self) -> usize {
        self.map.values().filter(|e| !e.tombstone).count()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Every entry in key order.
    pub fn by_key(&self) -> Vec<(&[u8], &Entry)> {
        let mut v: Vec<(&[u8], &Entry)> = self.map.iter().map(|(k, e)| (&**k, e)).collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Every entry in (file, offset) order: the order to read the records in.
    pub fn by_location(&self) -> Vec<(&[u8], &Entry)> {
        let mut v: Vec<(&[u8], &Entry)> = self.map.iter().map(|(k, e)| (&**k, e)).collect();
        v.sort_unstable_by_key(|(_, e)| (e.file, e.offset));
        v
    }
}
