//! Unit tests: the format, what recovery chooses, and decoding arbitrary bytes.

use super::*;
use powercut::{Profile, SimFs};

fn config(snapshot_every: u32) -> Config {
    Config { snapshot_every, bug: None }
}

fn pairs<V: Vfs>(store: &WalSnap<V>) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

#[test]
fn crc32_is_the_ieee_one() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn writes_survive_a_reopen_across_snapshots() {
    let fs = SimFs::with_profile(Profile::posix());
    let mut store = WalSnap::open(fs.clone(), config(3)).unwrap();
    for (i, key) in [b"a", b"b", b"c", b"d", b"e", b"f", b"g"].iter().enumerate() {
        assert_eq!(store.put(*key, &[i as u8; 5]).unwrap(), i as u64 + 1);
    }
    assert_eq!(store.delete(b"b").unwrap(), 8);
    let before = pairs(&store);
    drop(store);
    let mut store = WalSnap::open(fs.clone(), config(3)).unwrap();
    assert_eq!(pairs(&store), before);
    assert_eq!(store.get(b"g"), Some(&[6u8; 5][..]));
    assert_eq!(store.get(b"b"), None);
    // Snapshots 2 and 3 were taken after writes 3 and 6, and recovery took snapshot 4 of what
    // it replayed from log 3 (writes 7 and 8); only the newest and its log remain.
    assert_eq!(fs.names(), ["snap-000004.snap", "wal-000004.log"]);
    assert_eq!(store.put(b"h", b"x").unwrap(), 9, "seqs continue after a reopen");
    assert!(store.recovery_notes().is_empty());
}

#[test]
fn recovery_skips_an_invalid_snapshot_and_cuts_a_torn_log_tail() {
    let fs = SimFs::with_profile(Profile::posix());
    let mut store = WalSnap::open(fs.clone(), config(0)).unwrap();
    store.put(b"k1", b"one").unwrap();
    store.snapshot().unwrap(); // snap-000002.snap and wal-000002.log
    store.put(b"k2", b"two").unwrap();
    let wal_len = store.wal_len;
    drop(store);
    // A newer snapshot that is garbage, and half a record at the end of the log.
    let junk = fs.open("snap-000009.snap", OpenOptions::create()).unwrap();
    junk.write_all_at(b"WSNP not a snapshot", 0).unwrap();
    let record = encode_record(3, b"k3", Some(b"three")).unwrap();
    let wal = fs.open("wal-000002.log", OpenOptions::existing()).unwrap();
    wal.write_all_at(&record[..10], wal_len).unwrap();
    let mut store = WalSnap::open(fs.clone(), config(0)).unwrap();
    assert_eq!(
        pairs(&store),
        [(b"k1".to_vec(), b"one".to_vec()), (b"k2".to_vec(), b"two".to_vec())]
    );
    assert_eq!(store.recovery_notes().len(), 2, "{:?}", store.recovery_notes());
    assert_eq!(wal.len().unwrap(), wal_len, "the torn tail is cut");
    // Recovery snapshotted what it replayed (write 2) with a number past every one seen, the
    // garbage snapshot's included; then every other file went.
    assert_eq!(fs.names(), ["snap-000010.snap", "wal-000010.log"]);
    assert_eq!(store.put(b"k3", b"3").unwrap(), 3);
}

#[test]
fn decoding_any_bytes_never_panics_and_any_damage_is_detected() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64; // xorshift: deterministic test bytes
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..next() % 300).map(|_| next() as u8).collect();
        decode_record(&bytes);
        decode_snapshot(&bytes);
        replay(&bytes, 0, &mut Map::new());
    }
    let record = encode_record(7, b"key", Some(b"value")).unwrap();
    let map: Map = [(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), vec![])].into();
    let snapshot = encode_snapshot(7, &map).unwrap();
    assert_eq!(decode_record(&record), Some((7, &b"key"[..], Some(&b"value"[..]), record.len())));
    assert_eq!(decode_snapshot(&snapshot), Some((7, map)));
    for (whole, is_valid) in [
        (&record, &(|b: &[u8]| decode_record(b).is_some()) as &dyn Fn(&[u8]) -> bool),
        (&snapshot, &|b: &[u8]| decode_snapshot(b).is_some()),
    ] {
        for cut in 0..whole.len() {
            assert!(!is_valid(&whole[..cut]), "a prefix of {cut} bytes decoded");
        }
        for bit in 0..whole.len() * 8 {
            let mut flipped = whole.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!is_valid(&flipped), "bit {bit} flipped went unnoticed");
        }
    }
}

#[test]
fn it_runs_on_a_real_directory() {
    let dir = std::env::temp_dir().join(format!("walsnap-test-{}", std::process::id()));
    let fs = powercut_vfs::RealFs::create(&dir).unwrap();
    let mut store = WalSnap::open(fs, config(2)).unwrap();
    for key in [b"x", b"y", b"z"] {
        store.put(key, b"value").unwrap();
    }
    drop(store);
    let store = WalSnap::open(powercut_vfs::RealFs::open(&dir).unwrap(), config(2)).unwrap();
    assert_eq!(store.iter().count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
