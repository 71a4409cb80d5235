//! [`State`]: what a subject holds after recovery, every live key with its value, sorted by key.
//!
//! It is built twice per crash state (recovery, then the reopen of the idempotence check) and read
//! once by the oracle, so it is flat: one byte arena and one sorted vector of spans, no allocation
//! per key. A subject that reads its keys back in order (the Bitcask engine does) appends in O(1)
//! each; any other order still works, by a sorted insert.

use std::cmp::Ordering;
use std::fmt;

/// Every live key and its value, sorted by key, each key once.
#[derive(Clone, Default)]
pub struct State {
    arena: Vec<u8>,
    /// (key start, key length, value length); the value follows its key in the arena.
    pairs: Vec<(u32, u32, u32)>,
    /// Arena bytes no pair points at any more (replaced values).
    garbage: usize,
}

impl State {
    /// An empty state.
    pub fn new() -> State {
        State::default()
    }

    /// Room for `pairs` keys and `bytes` of keys and values.
    pub fn with_capacity(pairs: usize, bytes: usize) -> State {
        State { arena: Vec::with_capacity(bytes), pairs: Vec::with_capacity(pairs), garbage: 0 }
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Forget every key, keeping the memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.pairs.clear();
        self.garbage = 0;
    }

    fn key(&self, &(at, k, _): &(u32, u32, u32)) -> &[u8] {
        &self.arena[at as usize..(at + k) as usize]
    }

    fn value(&self, &(at, k, v): &(u32, u32, u32)) -> &[u8] {
        &self.arena[(at + k) as usize..(at + k + v) as usize]
    }

    fn append(&mut self, key: &[u8], value: &[u8]) -> (u32, u32, u32) {
        let at = self.arena.len();
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(value);
        // Spans are u32: the whole arena must stay addressable by one.
        assert!(u32::try_from(self.arena.len()).is_ok(), "a recovered state of 4 GiB or more");
        (at as u32, key.len() as u32, value.len() as u32)
    }

    /// Set `key` to `value` (replacing any value it had). In key order this is an append.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let at = match self.pairs.last() {
            None => 0,
            Some(last) => match self.key(last).cmp(key) {
                Ordering::Less => self.pairs.len(),
                _ => match self.pairs.binary_search_by(|p| self.key(p).cmp(key)) {
                    Ok(i) => {
                        self.garbage += (self.pairs[i].1 + self.pairs[i].2) as usize;
                        self.pairs[i] = self.append(key, value);
                        self.compact_if_wasteful();
                        return;
                    }
                    Err(i) => i,
                },
            },
        };
        let pair = self.append(key, value);
        self.pairs.insert(at, pair);
    }

    fn compact_if_wasteful(&mut self) {
        if self.garbage * 2 <= self.arena.len() {
            return;
        }
        let mut fresh = State::with_capacity(self.pairs.len(), self.arena.len() - self.garbage);
        for (k, v) in self.iter() {
            fresh.insert(k, v);
        }
        *self = fresh;
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let i = self.pairs.binary_search_by(|p| self.key(p).cmp(key)).ok()?;
        Some(self.value(&self.pairs[i]))
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Every (key, value), in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { state: self, pairs: self.pairs.iter() }
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.pairs.iter().map(|p| self.key(p))
    }
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for State {}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_map().entries(self.iter().map(|(k, v)| (shown(k), shown(v)))).finish()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for State {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> State {
        let mut s = State::new();
        for (k, v) in pairs {
            s.insert(k.as_ref(), v.as_ref());
        }
        s
    }
}

/// The pairs of a [`State`], in key order.
#[derive(Debug)]
pub struct Iter<'a> {
    state: &'a State,
    pairs: std::slice::Iter<'a, (u32, u32, u32)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let p = self.pairs.next()?;
        Some((self.state.key(p), self.state.value(p)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pairs.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a State {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn any_insertion_order_gives_the_map_a_btreemap_gives() {
        // A deterministic shuffle with repeated keys: the last value of each key wins.
        let mut map = BTreeMap::new();
        let mut state = State::new();
        let mut x = 7u32;
        for i in 0..2_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = format!("k{:03}", (x >> 8) % 300);
            let value = format!("v{i}").repeat((x % 5) as usize);
            map.insert(key.clone().into_bytes(), value.clone().into_bytes());
            state.insert(key.as_bytes(), value.as_bytes());
        }
        let want: Vec<(&[u8], &[u8])> =
            map.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        assert_eq!(state.iter().collect::<Vec<_>>(), want);
        assert_eq!(state.get(b"k007"), map.get(b"k007".as_slice()).map(Vec::as_slice));
        assert_eq!(state.get(b"nope"), None);
        assert!(state.arena.len() <= 2 * (state.arena.len() - state.garbage) + 64, "compacted");
        // Equality is by content, not by the order things were inserted in.
        let sorted: State = map.iter().collect();
        assert_eq!(sorted, state);
        let mut other = sorted.clone();
        other.insert(b"k000", b"different");
        assert_ne!(other, state);
    }
}
