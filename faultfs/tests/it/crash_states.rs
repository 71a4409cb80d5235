//! Power-cut crash states: torn sectors, size before data, reordering, sampling, enumeration.

use crate::*;
use faultfs::{DirOps, SizeBeforeData, TornSectors};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

fn custom(f: impl FnOnce(&mut Profile)) -> SimFs {
    let mut p = Profile::posix();
    f(&mut p);
    SimFs::with_profile(p)
}

/// Classify one sector of an image against its old and new content.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Sector {
    Old,
    New,
    NewThenOld(usize),
    Garbage,
}

fn classify(sector: &[u8], old: u8, new: u8) -> Sector {
    if sector.iter().all(|b| *b == old) {
        return Sector::Old;
    }
    if sector.iter().all(|b| *b == new) {
        return Sector::New;
    }
    let k = sector.iter().take_while(|b| **b == new).count();
    if sector[k..].iter().all(|b| *b == old) { Sector::NewThenOld(k) } else { Sector::Garbage }
}

fn torn_sector_outcomes(profile: Profile) -> BTreeSet<Sector> {
    let fs = SimFs::with_profile(profile);
    let f = durable_file(&fs, "f", &[b'o'; 1024]);
    f.write_all_at(&[b'n'; 1024], 0).unwrap();
    let mut seen = BTreeSet::new();
    for image in images(&fs.crash_point_now()) {
        let bytes = image.contents("f").unwrap();
        assert_eq!(bytes.len(), 1024, "an overwrite never changes the size");
        for sector in bytes.chunks(512) {
            seen.insert(classify(sector, b'o', b'n'));
        }
    }
    seen
}

#[test]
fn torn_sector_shows_only_old_new_split_or_garbage_per_sector() {
    let seen = torn_sector_outcomes(Profile::posix());
    // Exhaustive mode splits a torn sector in its middle.
    let expected =
        BTreeSet::from([Sector::Old, Sector::New, Sector::NewThenOld(256), Sector::Garbage]);
    assert_eq!(seen, expected);
}

#[test]
fn torn_split_profile_never_shows_garbage_and_none_never_tears() {
    let split =
        torn_sector_outcomes(Profile { torn_sectors: TornSectors::Split, ..Profile::posix() });
    assert_eq!(split, BTreeSet::from([Sector::Old, Sector::New, Sector::NewThenOld(256)]));
    // ext4's sectors are atomic: a page tears between sectors, never inside one.
    let ext4 = torn_sector_outcomes(Profile::ext4_ordered());
    assert_eq!(ext4, BTreeSet::from([Sector::Old, Sector::New]));
    let whole =
        torn_sector_outcomes(Profile { torn_sectors: TornSectors::None, ..Profile::posix() });
    assert_eq!(whole, BTreeSet::from([Sector::Old, Sector::New]));
}

#[test]
fn sampled_torn_sectors_split_at_seeded_points() {
    let fs = posix();
    let f = durable_file(&fs, "f", &[b'o'; 512]);
    f.write_all_at(&[b'n'; 512], 0).unwrap();
    let space = fs.crash_point_now().power_cut_space();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut splits = BTreeSet::new();
    for _ in 0..400 {
        let image = space.materialize(&space.sample(&mut rng));
        if let Sector::NewThenOld(k) = classify(&image.contents("f").unwrap(), b'o', b'n') {
            splits.insert(k);
        }
    }
    assert!(splits.len() > 10, "sampled tears should split at many points: {splits:?}");
}

#[test]
fn size_before_data_yields_a_zero_filled_tail() {
    let fs = ext4();
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(&[b'x'; 100], 0).unwrap();
    let seen: BTreeSet<Vec<u8>> =
        images(&fs.crash_point_now()).iter().map(|i| i.contents("log").unwrap()).collect();
    assert!(seen.contains(&vec![0u8; 100]), "size landed, data did not: zeros");
    assert!(seen.contains(&vec![b'x'; 100]));
    assert!(seen.contains(&vec![]));
    // With the knob off, a grown size always comes with its data.
    let fs = SimFs::with_profile(Profile {
        size_before_data: SizeBeforeData::Off,
        torn_sectors: TornSectors::None,
        ..Profile::ext4_ordered()
    });
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(&[b'x'; 100], 0).unwrap();
    let seen: BTreeSet<Vec<u8>> =
        images(&fs.crash_point_now()).iter().map(|i| i.contents("log").unwrap()).collect();
    assert_eq!(seen, BTreeSet::from([vec![], vec![b'x'; 100]]));
}

#[test]
fn data_whose_size_change_was_lost_stays_past_the_end_of_the_file() {
    // 600 bytes appended to a durable 100-byte file, nothing synced. Whatever lands, the file's
    // length is 100 (size lost) or 700 (size landed): never the new data showing past a size the
    // disk never recorded, torn or whole.
    for profile in [Profile::ext4_ordered(), Profile::posix(), Profile::ext4_writeback()] {
        let fs = SimFs::with_profile(profile.clone());
        let f = durable_file(&fs, "log", &[b'o'; 100]);
        f.write_all_at(&[b'n'; 600], 100).unwrap();
        let space = fs.crash_point_now().power_cut_space();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut lengths = BTreeSet::new();
        for _ in 0..500 {
            let state = space.sample(&mut rng);
            let log = space.materialize(&state).contents("log").unwrap();
            lengths.insert(log.len());
            assert!(log[..100].iter().all(|b| *b == b'o'), "{}: durable bytes kept", profile.base);
        }
        assert_eq!(lengths, BTreeSet::from([100, 700]), "{}", profile.base);
        // Enumeration agrees: a state with data landed and the size lost is the old file.
        let seen: BTreeSet<Vec<u8>> =
            images(&fs.crash_point_now()).iter().map(|i| i.contents("log").unwrap()).collect();
        assert!(seen.contains(&vec![b'o'; 100]));
        assert!(seen.iter().all(|c| c.len() == 100 || c.len() == 700), "{}", profile.base);
    }
    // Without size pieces, data and size land together: the file grows with each sector landed.
    let fs = custom(|p| p.size_before_data = SizeBeforeData::Off);
    let f = durable_file(&fs, "log", &[b'o'; 100]);
    f.write_all_at(&[b'n'; 600], 100).unwrap();
    let lengths: BTreeSet<usize> =
        images(&fs.crash_point_now()).iter().map(|i| i.contents("log").unwrap().len()).collect();
    assert!(lengths.len() > 2, "{lengths:?}");
}

#[test]
fn writeback_profile_can_expose_a_garbage_tail() {
    let fs = SimFs::with_profile(Profile::ext4_writeback());
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(&[b'x'; 100], 0).unwrap();
    let garbage = images(&fs.crash_point_now()).iter().any(|i| {
        let c = i.contents("log").unwrap();
        c.len() == 100 && c.iter().any(|b| *b != b'x' && *b != 0)
    });
    assert!(garbage);
}

#[test]
fn without_reorder_only_prefixes_of_the_unsynced_writes_land() {
    let fs = custom(|p| {
        p.reorder = false;
        p.torn_sectors = TornSectors::None;
        p.size_before_data = SizeBeforeData::Off;
    });
    let f = durable_file(&fs, "log", b"");
    for (i, b) in [b'a', b'b', b'c'].into_iter().enumerate() {
        f.write_all_at(&[b; 512], i as u64 * 512).unwrap();
    }
    let seen: Vec<Vec<u8>> = images(&fs.crash_point_now())
        .iter()
        .map(|i| i.contents("log").unwrap())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let prefix = |n: usize| -> Vec<u8> { [[b'a'; 512], [b'b'; 512], [b'c'; 512]][..n].concat() };
    assert_eq!(seen, vec![prefix(0), prefix(1), prefix(2), prefix(3)]);
}

#[test]
fn exhaustive_mode_reaches_every_clean_prefix_within_a_small_budget() {
    // 64 unsynced appends of 100 bytes: with any subset allowed, the space is huge, and a search
    // by how many pieces differ from "nothing landed" visited only 2 clean prefixes of two or
    // more records in 4,096 states. The likely shapes come first now.
    for fs in [posix(), ext4()] {
        let f = durable_file(&fs, "log", b"");
        for i in 0..64u64 {
            f.write_all_at(&[b'a' + (i % 26) as u8; 100], i * 100).unwrap();
        }
        let record = |i: usize| vec![b'a' + (i % 26) as u8; 100];
        let mut prefixes = BTreeSet::new();
        let mut zero_tail = false;
        fs.crash_point_now().power_cut_space().explore(256, |_, image| {
            let log = image.contents("log").unwrap();
            let whole = log.len() / 100;
            if log.len() % 100 == 0 && (0..whole).all(|i| log[i * 100..][..100] == record(i)[..]) {
                prefixes.insert(whole);
            }
            zero_tail |= log.len() == 6_400 && log.iter().all(|b| *b == 0);
        });
        assert!(prefixes.len() >= 60, "clean prefixes visited: {prefixes:?}");
        assert!(zero_tail, "size landed, data lost: a zero-filled file");
    }
}

#[test]
fn sampling_draws_each_realistic_shape_at_a_useful_rate() {
    // 64 unsynced appends of 100 bytes to a durable empty file. Independent draws per piece gave
    // a hole in 83-94 % of samples, a clean prefix of two or more records in 2-3 %, a long zero
    // tail in at most 0.2 %, and never an empty file in 5,000 samples.
    for fs in [posix(), ext4()] {
        let f = durable_file(&fs, "log", b"");
        for i in 0..64u64 {
            f.write_all_at(&[b'a' + (i % 26) as u8; 100], i * 100).unwrap();
        }
        let space = fs.crash_point_now().power_cut_space();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let samples = 2_000;
        let (mut clean, mut empty, mut zero_tail, mut hole) = (0, 0, 0, 0);
        let mut shapes = BTreeMap::new();
        for _ in 0..samples {
            let (state, shape) = space.sample_shaped(&mut rng);
            *shapes.entry(shape).or_insert(0) += 1;
            let log = space.materialize(&state).contents("log").unwrap();
            let good = |i: usize| {
                log.len() >= (i + 1) * 100
                    && log[i * 100..][..100].iter().all(|b| *b == b'a' + (i % 26) as u8)
            };
            let prefix = (0..64).take_while(|&i| good(i)).count();
            clean += usize::from(prefix >= 2 && log.len() == prefix * 100);
            empty += usize::from(log.is_empty());
            zero_tail += usize::from(
                log.len() >= (prefix + 10) * 100 && log[prefix * 100..].iter().all(|b| *b == 0),
            );
            hole += usize::from((prefix..64).any(good));
        }
        let base = &fs.config().profile.base;
        assert!(clean * 8 >= samples, "{base}: {clean} clean prefixes of {samples}");
        assert!(empty * 20 >= samples, "{base}: {empty} empty files of {samples}");
        assert!(zero_tail * 30 >= samples, "{base}: {zero_tail} long zero tails of {samples}");
        assert!(hole * 2 <= samples, "{base}: {hole} states with a hole of {samples}");
        assert_eq!(shapes.len(), 4, "{base}: every shape drawn: {shapes:?}");
    }
}

#[test]
fn exhaustive_mode_counts_distinct_states_and_deduplicates() {
    let fs = custom(|p| {
        p.torn_sectors = TornSectors::None;
        p.size_before_data = SizeBeforeData::Off;
        p.dir_ops = DirOps::Ordered;
    });
    let f = durable_file(&fs, "log", &[b'.'; 1024]);
    f.write_all_at(b"A", 0).unwrap();
    f.write_all_at(b"B", 512).unwrap();
    let space = fs.crash_point_now().power_cut_space();
    assert_eq!(space.piece_count(), 2);
    let coverage = space.explore(1_000, |_, _| {});
    // Five candidates: the clean prefix "A landed, B not" is visited early as a likely shape and
    // generated again by the search, which dedup by image catches.
    assert_eq!((coverage.distinct, coverage.candidates, coverage.complete), (4, 5, true));
    // Two writes of the same byte to the same place: four combinations (and the likely prefix
    // again), two distinct images.
    f.sync_data().unwrap();
    f.write_all_at(b"C", 0).unwrap();
    f.write_all_at(b"C", 0).unwrap();
    let coverage = fs.crash_point_now().power_cut_space().explore(1_000, |_, _| {});
    assert_eq!((coverage.distinct, coverage.candidates, coverage.complete), (2, 5, true));
    // A budget stops the enumeration and says so.
    let many = posix();
    let g = durable_file(&many, "big", &[0; 8192]);
    g.write_all_at(&[1; 8192], 0).unwrap();
    let coverage = many.crash_point_now().power_cut_space().explore(50, |_, _| {});
    assert_eq!(coverage.distinct, 50);
    assert!(!coverage.complete);
}

#[test]
fn same_seed_gives_the_same_crash_state_twice() {
    let run = |seed: u64| {
        let fs = posix();
        let f = durable_file(&fs, "log", b"");
        for i in 0..20u64 {
            f.write_all_at(&[i as u8; 300], i * 300).unwrap();
        }
        fs.rename("log", "log2").unwrap();
        let space = fs.crash_point_now().power_cut_space();
        let state = space.sample(&mut ChaCha8Rng::seed_from_u64(seed));
        let image = space.materialize(&state);
        (state, faultfs::image_hash(&image), snapshot(&image))
    };
    assert_eq!(run(42), run(42));
    let distinct: BTreeSet<u64> = (0..20).map(|s| run(s).1).collect();
    assert!(distinct.len() > 10, "different seeds explore different states");
}

#[test]
fn ext4_ordered_produces_the_calibrated_real_kernel_states() {
    // 16 records of 1 KiB appended without any sync, then a power cut.
    let fs = ext4();
    let f = durable_file(&fs, "log", b"");
    for i in 0..16u64 {
        f.write_all_at(&[b'a' + i as u8; 1024], i * 1024).unwrap();
    }
    let space = fs.crash_point_now().power_cut_space();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut prefix, mut torn, mut zero_tail, mut hole) = (false, false, false, false);
    for _ in 0..2_000 {
        let log = space.materialize(&space.sample(&mut rng)).contents("log").unwrap();
        let records: Vec<&[u8]> = log.chunks(1024).collect();
        let whole = |r: &[u8], i: usize| r.len() == 1024 && r.iter().all(|b| *b == b'a' + i as u8);
        let good: Vec<bool> = records.iter().enumerate().map(|(i, r)| whole(r, i)).collect();
        let first_bad = good.iter().position(|g| !g).unwrap_or(good.len());
        prefix |= first_bad > 0 && first_bad == good.len();
        if let Some(last) = records.last() {
            let i = records.len() - 1;
            torn |= last.first() == Some(&(b'a' + i as u8)) && !whole(last, i);
            zero_tail |= last.iter().all(|b| *b == 0);
        }
        hole |= good[first_bad..].iter().any(|g| *g);
    }
    assert!(prefix && torn && zero_tail && hole, "{prefix} {torn} {zero_tail} {hole}");
}

#[test]
fn posix_produces_strictly_more_states_than_ext4_ordered() {
    let count = |profile: Profile| {
        let fs = SimFs::with_profile(profile);
        let f = fs.open("log", OpenOptions::create()).unwrap();
        f.write_all_at(&[1; 1500], 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(&[2; 1000], 1500).unwrap();
        let mut hashes = BTreeSet::new();
        let c = fs.crash_point_now().power_cut_space().explore(100_000, |_, i| {
            hashes.insert(snapshot(&i));
        });
        assert!(c.complete);
        hashes
    };
    let ext4 = count(Profile::ext4_ordered());
    let posix = count(Profile::posix());
    assert!(posix.len() > ext4.len(), "{} vs {}", posix.len(), ext4.len());
}

#[test]
fn describe_says_what_a_crash_kept_and_dropped() {
    let fs = posix();
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(b"abc", 0).unwrap();
    fs.rename("log", "log.old").unwrap();
    let space = fs.crash_point_now().power_cut_space();
    let lines = space.describe(&space.nothing_landed());
    assert!(
        lines.iter().any(|l| l.starts_with("log.old: op #") && l.contains("bytes 0..3: lost")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("rename log -> log.old: lost")), "{lines:?}");
}

#[test]
fn exhaustive_mode_visits_the_empty_file_a_lost_rewrite_leaves_early() {
    // A durable file truncated and rewritten with 64 small writes: the state with the truncate
    // landed and every write lost (an empty file) comes among the first states — the clean
    // prefix of one piece — not after thousands of combinations of the writes.
    let fs = ext4();
    drop(durable_file(&fs, "cfg", &[b'o'; 4096]));
    let f = fs.open("cfg", OpenOptions { truncate: true, ..OpenOptions::create() }).unwrap();
    for i in 0..64u64 {
        f.write_all_at(&[b'n'; 100], i * 100).unwrap();
    }
    let mut empty_at = None;
    let mut visited = 0;
    fs.crash_point_now().power_cut_space().explore(16, |_, image| {
        visited += 1;
        if empty_at.is_none() && image.contents("cfg").unwrap().is_empty() {
            empty_at = Some(visited);
        }
    });
    assert!(empty_at.is_some_and(|k| k <= 8), "{empty_at:?} of {visited}");
}
