//! Randomized recovery: arbitrary and mutated bytes as data and hint files. Recovery returns or
//! errors; it never panics, and it never serves a value that was not written.

use crate::*;
use engine::format::{HintEntry, data_name, encode_hint, encode_record, hint_name};
use faultfs::{OpenOptions, Vfs, VfsFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A valid data file of `n` records, and its hint.
fn valid_files(rng: &mut ChaCha8Rng, id: u32, n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut data = Vec::new();
    let mut hints = Vec::new();
    for i in 0..n {
        let key = key(rng.random_range(0..8));
        let tombstone = rng.random_ratio(1, 5);
        let value = if tombstone { Vec::new() } else { value(i, rng.random_range(5..40)) };
        hints.push(HintEntry {
            seq: i as u64 + 1,
            offset: data.len() as u64,
            value_len: value.len() as u32,
            tombstone,
            key: key.clone(),
        });
        data.extend(encode_record(id, i as u64 + 1, 0, tombstone, &key, &value));
    }
    let hint = encode_hint(data.len() as u64, &hints);
    (data, hint)
}

fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>) {
    match rng.random_range(0..5) {
        0 if !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        1 => bytes.truncate(rng.random_range(0..=bytes.len())),
        2 => bytes.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
        3 if !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            let end = (at + rng.random_range(1..600)).min(bytes.len());
            bytes[at..end].fill(0);
        }
        _ => *bytes = (0..rng.random_range(0..200)).map(|_| rng.random::<u8>()).collect(),
    }
}

#[test]
fn recovery_never_panics_and_never_serves_unwritten_values() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut opened = 0;
    for round in 0..1_500 {
        let fs = sim_zero(Profile::posix());
        let files = rng.random_range(1..4u32);
        for id in 1..=files {
            let n = rng.random_range(0..12);
            let (mut data, mut hint) = valid_files(&mut rng, id, n);
            if rng.random_ratio(2, 3) {
                mutate(&mut rng, &mut data);
            }
            let with_hint = rng.random_ratio(1, 2);
            if with_hint && rng.random_ratio(1, 2) {
                mutate(&mut rng, &mut hint);
            }
            let f = fs.open(&data_name(id), OpenOptions::create()).unwrap();
            f.write_all_at(&data, 0).unwrap();
            if with_hint {
                let h = fs.open(&hint_name(id), OpenOptions::create()).unwrap();
                h.write_all_at(&hint, 0).unwrap();
            }
        }
        let bugs = if round % 3 == 0 { "skip-bad-records" } else { "append-after-torn-tail" };
        for config in [osync(), with_bug(osync(), bugs)] {
            let image = fs.crash_point_now().process_crash(faultfs::InFlight::Skipped);
            let Ok(db) = Engine::open(image, config) else { continue };
            opened += 1;
            if let Ok(state) = db.state() {
                for (k, v) in state {
                    assert!(k.starts_with(b"key"), "round {round}: key {k:?} never written");
                    assert!(v.starts_with(b"value"), "round {round}: value {v:?} never written");
                }
            }
        }
    }
    assert!(opened > 1_000, "most random directories still open: {opened}");
}
