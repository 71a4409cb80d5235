//! The `ext4-ordered` profile against what a real kernel kept: 30 power cuts of a Linux 6.1
//! guest on journaled ext4 during appends with no fsync (`tests/data/ext4-ordered-nofsync.csv`,
//! copied from the project's calibration set; see `tests/data/README.md`).
//!
//! Each row is replayed at its own append rate: a durable empty file, then 120-byte records
//! written every 10 ms of virtual time, never synced, and a power cut at the row's time. The
//! model must keep no more than the kernel kept in its durable image (the state with nothing
//! unsynced landed), reach what the kernel kept among its states, and draw mostly the shapes the
//! kernel produced: a clean prefix whose only damage is inside its last 4 KiB block.

use crate::*;
use faultfs::{Latency, SimConfig, Writeback};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

const RECORD: usize = 120;
/// Records are written in one `write` per tick of virtual time.
const TICK_MS: u64 = 20;
/// Filesystem seeds per cut: each draws its own background threshold.
const SEEDS: u64 = 4;
/// Sampled crash states per seed.
const SAMPLES: usize = 6;

struct Cut {
    name: String,
    at_ms: u64,
    acked: u64,
    durable: u64,
}

fn rows() -> Vec<Cut> {
    let text = include_str!("../data/ext4-ordered-nofsync.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (run, cut, at, acked, durable) =
        (col("run"), col("cut"), col("actual_ms"), col("acked"), col("durable"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Cut {
                name: format!("{}-{}", f[run], f[cut]),
                at_ms: f[at].parse().unwrap(),
                acked: f[acked].parse().unwrap(),
                durable: f[durable].parse().unwrap(),
            }
        })
        .collect()
}

fn record(seq: u64) -> [u8; RECORD] {
    let mut r = [((seq % 251) + 1) as u8; RECORD];
    r[..4].copy_from_slice(&(RECORD as u32).to_le_bytes());
    r[4..8].copy_from_slice(&((seq as u32) ^ 0x5a5a_5a5a).to_le_bytes());
    r[8..16].copy_from_slice(&seq.to_le_bytes());
    r
}

/// Intact records of `log`, whose first record is number `first`, from there on, plus `first`.
fn intact_prefix(log: &[u8], first: u64) -> u64 {
    let mut n = first;
    for chunk in log.chunks_exact(RECORD) {
        let want = record(n);
        // The header, and both ends of the payload: a torn or zeroed record fails one of them.
        if chunk[..16] != want[..16] || chunk[16] != want[16] || chunk[RECORD - 1] != want[16] {
            break;
        }
        n += 1;
    }
    n
}

/// A kernel shape: past the intact prefix, nothing but the rest of its 4 KiB block.
fn kernel_shaped(len: u64, prefix: u64) -> bool {
    let end = prefix * RECORD as u64;
    len <= (end / 4096 + 1) * 4096
}

/// One replay of `cut` on a `profile` filesystem seeded `seed`: the intact prefix of its durable image, the
/// prefixes of `samples` sampled states, and how many of those were kernel-shaped.
fn replay(cut: &Cut, profile: Profile, seed: u64, samples: usize) -> (u64, Vec<u64>, usize) {
    let rate = cut.acked as f64 / (cut.at_ms as f64 / 1e3);
    let config = SimConfig::new(profile).latency(Latency::zero()).seed(seed);
    let fs = SimFs::new(config);
    let f = durable_file(&fs, "log", b"");
    let mut written = 0u64;
    let mut batch = Vec::new();
    for tick in 1..=cut.at_ms / TICK_MS {
        let due = (rate * (tick * TICK_MS) as f64 / 1e3) as u64;
        batch.clear();
        for seq in written..due {
            batch.extend_from_slice(&record(seq));
        }
        f.write_all_at(&batch, written * RECORD as u64).unwrap();
        written = due;
        fs.advance_to(Duration::from_millis(tick * TICK_MS));
    }
    fs.advance_to(Duration::from_millis(cut.at_ms));
    let space = fs.crash_point_now().power_cut_space();
    let durable = space.materialize(&space.nothing_landed()).contents("log").unwrap();
    let floor = intact_prefix(&durable, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(cut.at_ms ^ seed);
    let (mut prefixes, mut shaped) = (Vec::new(), 0);
    for _ in 0..samples {
        let image = space.materialize(&space.sample(&mut rng));
        // Nothing unsynced reaches below the durable prefix: read from there on.
        let from = floor * RECORD as u64;
        let len = image.file_state("log").unwrap().cached_len;
        let mut tail = vec![0u8; len.saturating_sub(from) as usize];
        let log = image.open("log", OpenOptions::default()).unwrap();
        log.read_exact_at(&mut tail, from).unwrap();
        let prefix = intact_prefix(&tail, floor);
        shaped += usize::from(kernel_shaped(len, prefix));
        prefixes.push(prefix);
    }
    (floor, prefixes, shaped)
}

/// Records in one 8 MiB writeback chunk: how far ahead of the kernel the model may run.
const CHUNK_RECORDS: u64 = (8 << 20) / RECORD as u64;

/// Does the model track the kernel at `cut`? Some seed's durable image keeps at least 85 % of
/// what the kernel kept (the kernel's append rate varied by up to 15 % within a run; the replay
/// uses the cut's mean), and none keeps more than one writeback chunk beyond it.
fn tracks(cut: &Cut, floors: &[u64]) -> bool {
    let (lo, hi) = (floors.iter().min().unwrap(), floors.iter().max().unwrap());
    *lo <= cut.durable + CHUNK_RECORDS && *hi as f64 >= cut.durable as f64 * 0.85
}

#[test]
fn ext4_ordered_keeps_what_a_real_kernel_kept_after_a_power_cut() {
    let cuts = rows();
    assert_eq!(cuts.len(), 30);
    let (mut shaped, mut drawn, mut covered) = (0, 0, 0);
    for cut in &cuts {
        let (mut floors, mut reached) = (Vec::new(), 0);
        for seed in 0..SEEDS {
            let (floor, prefixes, s) = replay(cut, Profile::ext4_ordered(), seed, SAMPLES);
            floors.push(floor);
            reached = prefixes.into_iter().fold(reached.max(floor), u64::max);
            shaped += s;
            drawn += SAMPLES;
        }
        let table =
            format!("{} at {} ms: kernel {}, model {floors:?}", cut.name, cut.at_ms, cut.durable);
        if cut.at_ms < 9_500 {
            assert!(floors.iter().all(|f| *f == 0), "nothing survives before 9.5 s: {table}");
        }
        assert!(tracks(cut, &floors), "{table}");
        assert!(reached >= cut.durable, "the states drawn reach what the kernel kept: {table}");
        covered += usize::from(floors.iter().any(|f| *f <= cut.durable));
    }
    // The rest are at most one chunk ahead (above): their kernel ran a cycle late.
    assert!(
        covered >= 25,
        "{covered} of 30 cuts have a model durable image at or below the kernel's"
    );
    assert!(shaped * 3 >= drawn * 2, "{shaped} of {drawn} drawn states are kernel-shaped");
}

#[test]
fn an_uncalibrated_writeback_model_fails_the_calibration() {
    // Writeback by expiry alone, as the profile had it: nothing durable at 10-14 s, where the
    // kernel kept 5.6-7.1 MiB.
    let uncalibrated = Profile {
        writeback: Some(Writeback {
            background_bytes: None,
            first_pass_writes_all: false,
            ..Writeback::LINUX
        }),
        ..Profile::ext4_ordered()
    };
    let cut = rows().into_iter().find(|c| c.name == "R2-1").unwrap();
    let (floor, _, _) = replay(&cut, uncalibrated, 0, 0);
    assert_eq!(floor, 0);
    assert!(!tracks(&cut, &[floor]));
    let (floor, _, _) = replay(&cut, Profile::ext4_ordered(), 0, 0);
    assert!(tracks(&cut, &[floor]), "{floor}");
}
