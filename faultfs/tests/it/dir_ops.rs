//! Directory entries: create, rename and remove without and with a directory fsync.

use crate::*;
use faultfs::InFlight;

#[test]
fn created_file_without_dir_fsync_can_vanish_after_power_cut() {
    let fs = posix();
    let f = fs.open("a.data", OpenOptions::create()).unwrap();
    f.write_all_at(b"hello", 0).unwrap();
    f.sync_data().unwrap();
    let seen = outcomes(&images(&fs.crash_point_now()));
    // The data was fsynced, but the entry never was: under posix the file may be gone.
    assert_eq!(seen, BTreeSet::from([vec![], vec![file("a.data", b"hello")]]));
}

#[test]
fn created_file_without_dir_fsync_survives_kill_9() {
    let fs = posix();
    let f = fs.open("a.data", OpenOptions::create()).unwrap();
    f.write_all_at(b"hello", 0).unwrap();
    let image = fs.crash_point_now().process_crash(InFlight::Skipped);
    assert_eq!(snapshot(&image), vec![file("a.data", b"hello")]);
}

#[test]
fn created_file_with_dir_fsync_always_survives() {
    let fs = posix();
    durable_file(&fs, "a.data", b"hello");
    let seen = outcomes(&images(&fs.crash_point_now()));
    assert_eq!(seen, BTreeSet::from([vec![file("a.data", b"hello")]]));
}

#[test]
fn ext4_file_fsync_persists_its_new_entry_posix_does_not() {
    for (fs, can_vanish) in [(ext4(), false), (posix(), true)] {
        let f = fs.open("a.data", OpenOptions::create()).unwrap();
        f.write_all_at(b"hi", 0).unwrap();
        f.sync_all().unwrap();
        let seen = outcomes(&images(&fs.crash_point_now()));
        assert_eq!(seen.contains(&vec![]), can_vanish, "{fs:?}");
        assert!(seen.contains(&vec![file("a.data", b"hi")]));
    }
}

#[test]
fn rename_without_dir_fsync_leaves_old_or_new_name_never_neither() {
    let fs = posix();
    durable_file(&fs, "tmp", b"v1");
    fs.rename("tmp", "final").unwrap();
    let seen = outcomes(&images(&fs.crash_point_now()));
    assert_eq!(seen, BTreeSet::from([vec![file("final", b"v1")], vec![file("tmp", b"v1")]]));
}

#[test]
fn rename_over_an_existing_file_is_atomic() {
    let fs = posix();
    durable_file(&fs, "final", b"old");
    durable_file(&fs, "tmp", b"new");
    fs.rename("tmp", "final").unwrap();
    let seen = outcomes(&images(&fs.crash_point_now()));
    // `final` holds the old or the new content; it never disappears.
    assert_eq!(
        seen,
        BTreeSet::from([
            vec![file("final", b"new")],
            vec![file("final", b"old"), file("tmp", b"new")],
        ])
    );
}

#[test]
fn remove_without_dir_fsync_can_come_back() {
    let fs = posix();
    durable_file(&fs, "old.data", b"x");
    fs.remove("old.data").unwrap();
    assert!(fs.names().is_empty());
    let seen = outcomes(&images(&fs.crash_point_now()));
    assert_eq!(seen, BTreeSet::from([vec![], vec![file("old.data", b"x")]]));
    fs.sync_dir().unwrap();
    assert_eq!(outcomes(&images(&fs.crash_point_now())), BTreeSet::from([vec![]]));
}

#[test]
fn ordered_dir_ops_survive_as_a_prefix_any_subset_does_not() {
    let run = |profile: Profile| {
        let fs = SimFs::with_profile(profile);
        drop(fs.open("a", OpenOptions::create()).unwrap());
        drop(fs.open("b", OpenOptions::create()).unwrap());
        let seen = outcomes(&images(&fs.crash_point_now()));
        seen.into_iter().map(|s| s.into_iter().map(|(n, _)| n).collect()).collect::<Vec<Vec<_>>>()
    };
    let prefix = run(Profile::ext4_ordered());
    assert_eq!(prefix, vec![vec![], vec!["a".to_string()], vec!["a".into(), "b".into()]]);
    let subset = run(Profile::posix());
    assert_eq!(subset.len(), 4);
    assert!(subset.contains(&vec!["b".to_string()]), "b without a: any subset");
}

#[test]
fn metadata_commit_makes_entries_durable_after_five_seconds() {
    let fs = SimFs::new(faultfs::SimConfig::new(Profile::ext4_ordered()));
    drop(fs.open("a", OpenOptions::create()).unwrap());
    assert!(!fs.file_state("a").unwrap().entry_durable);
    fs.advance(std::time::Duration::from_millis(4_900));
    assert!(!fs.file_state("a").unwrap().entry_durable);
    fs.advance(std::time::Duration::from_millis(200));
    assert!(fs.file_state("a").unwrap().entry_durable);
}
