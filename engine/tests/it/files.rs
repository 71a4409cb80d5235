//! Rotation, merge and hint files.

use crate::*;
use engine::MergeReport;
use faultfs::{Call, OpenOptions, Vfs, VfsFile};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn small_files(config: Config) -> Config {
    config.max_file_bytes(4096)
}

/// 60 puts of 100-byte values over 20 keys, and 5 deletes.
fn churn(db: &mut Engine<SimFs>) -> State {
    let mut model = State::new();
    for i in 0..60 {
        let (k, v) = (key(i % 20), value(i, 100));
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    for i in [3, 7, 11, 15, 19] {
        db.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    model
}

#[test]
fn rotation_starts_new_files_with_a_directory_fsync_and_survives_a_power_cut() {
    let fs = sim(Profile::posix());
    let config = small_files(osync());
    let mut db = open(&fs, config.clone());
    let model = churn(&mut db);
    let data_files = fs.names().iter().filter(|n| n.ends_with(".data")).count();
    assert!(data_files >= 3, "{:?}", fs.names());
    // Every create of a data file is followed by a directory fsync before the next write.
    let trace = fs.trace();
    for (i, e) in trace.iter().enumerate() {
        if e.call == Call::Open && e.file.as_deref().is_some_and(|f| f.ends_with(".data")) {
            let next_write = trace[i..].iter().position(|e| e.call == Call::Write);
            let next_dir_sync = trace[i..].iter().position(|e| e.call == Call::SyncDir);
            if let Some(w) = next_write {
                assert!(
                    next_dir_sync.is_some_and(|d| d < w),
                    "op {}: write before dir fsync",
                    e.op
                );
            }
        }
    }
    assert_eq!(db.state().unwrap(), model);
    assert_eq!(recover(&durable_only(&fs), config), model);
}

#[test]
fn without_the_directory_fsync_a_rotated_file_vanishes_under_posix_not_under_ext4() {
    for (profile, loses) in [(Profile::posix(), true), (Profile::ext4_ordered(), false)] {
        let fs = sim(profile.clone());
        let config = with_bug(small_files(osync()), "no-dir-fsync-on-rotate");
        let mut db = open(&fs, config.clone());
        let model = churn(&mut db);
        let recovered = recover(&durable_only(&fs), config);
        assert_eq!(recovered != model, loses, "{profile}");
    }
}

#[test]
fn merge_keeps_the_state_shrinks_the_files_and_writes_a_hint() {
    let fs = sim(Profile::posix());
    let config = small_files(osync());
    let mut db = open(&fs, config.clone());
    let model = churn(&mut db);
    let report = db.merge().unwrap();
    assert!(report.files_merged >= 3, "{report:?}");
    assert_eq!(report.records_kept, 15);
    assert!(report.bytes_after < report.bytes_before / 2, "{report:?}");
    assert_eq!(db.state().unwrap(), model);
    // Only the merged file, its hint, and the new active file remain.
    let merged = report.merged_file.clone().unwrap();
    let active = format!("{:010}.data", merged[..10].parse::<u32>().unwrap() + 1);
    assert_eq!(fs.names(), vec![merged.clone(), merged.replace(".data", ".hint"), active]);
    // Recovery loads the merged file from its hint, and the state is the same.
    let reopened = Engine::open(durable_only(&fs), config).unwrap();
    assert_eq!(reopened.recovery_report().hints_used, 1);
    assert_eq!(reopened.state().unwrap(), model);
}

#[test]
fn merge_keeps_a_tombstone_while_an_older_record_is_in_the_merged_files() {
    let fs = sim(Profile::posix());
    let mut db = open(&fs, osync());
    db.put(b"gone", b"v").unwrap();
    db.put(b"kept", b"v").unwrap();
    db.delete(b"gone").unwrap();
    let first = db.merge().unwrap();
    // The put of "gone" was in the merged files: until their removal is durable, keep the
    // tombstone.
    assert_eq!((first.records_kept, first.tombstones_kept, first.tombstones_dropped), (1, 1, 0));
    let second = db.merge().unwrap();
    assert_eq!((second.records_kept, second.tombstones_kept, second.tombstones_dropped), (1, 0, 1));
    assert_eq!(db.state().unwrap(), kv(&[("kept", "v")]));
    let _ = MergeReport::default();
}

/// Churn, then merge, capturing a crash point at every operation of the merge and one after it;
/// recover from up to `budget` explored and `budget / 4` sampled power-cut states at each: how
/// many recovered states differ from the state before the merge.
fn merge_crash_failures(config: Config, budget: u32) -> usize {
    let fs = sim(Profile::posix());
    let mut db = open(&fs, config.clone());
    churn(&mut db);
    db.put(b"x", b"1").unwrap();
    db.delete(b"x").unwrap();
    let expected = db.state().unwrap();
    let first = fs.op_count() + 1;
    fs.capture_at(first..first + 200);
    db.merge().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut failures = 0;
    let mut points = fs.take_crash_points();
    points.push(fs.crash_point_now()); // after the merge: old files durably gone
    let mut check = |image: SimFs| {
        let got = Engine::open(image, config.clone()).and_then(|e| e.state());
        failures += usize::from(got.ok().as_ref() != Some(&expected));
    };
    for point in points {
        let space = point.power_cut_space();
        space.explore(u64::from(budget), |_, image| check(image));
        for _ in 0..budget / 4 {
            check(space.materialize(&space.sample(&mut rng)));
        }
    }
    failures
}

#[test]
fn a_power_cut_anywhere_in_a_merge_loses_nothing() {
    assert_eq!(merge_crash_failures(small_files(osync()), 48), 0);
}

#[test]
fn merge_bugs_lose_or_resurrect_data_at_some_crash_point() {
    for bug in ["merge-removes-before-durable", "hint-in-place", "merge-drops-tombstones"] {
        let failures = merge_crash_failures(with_bug(small_files(osync()), bug), 48);
        assert!(failures > 0, "{bug} went unnoticed");
    }
}

#[test]
fn a_hint_that_fails_its_checks_is_ignored_and_the_data_file_scanned() {
    let fs = sim(Profile::posix());
    let config = small_files(osync());
    let mut db = open(&fs, config.clone());
    let model = churn(&mut db);
    let merged = db.merge().unwrap().merged_file.unwrap();
    drop(db);
    let hint = merged.replace(".data", ".hint");
    let len = fs.contents(&hint).unwrap().len() as u64;
    fs.flip_bit(&hint, len - 3, 1).unwrap();
    let db = open(&fs, config);
    assert_eq!(db.recovery_report().hints_rejected, 1);
    assert_eq!(db.state().unwrap(), model);
    // And a leftover temp file of an interrupted merge is removed on open.
    let f = fs.open("0000000099.data.tmp", OpenOptions::create()).unwrap();
    f.write_all_at(b"half a merge", 0).unwrap();
    drop(f);
    let db = open(&fs, small_files(osync()));
    assert_eq!(db.recovery_report().temp_files_removed, vec!["0000000099.data.tmp"]);
    assert!(!fs.names().iter().any(|n| n.ends_with(".tmp")));
}
