//! States a real filesystem of the profile's name can and cannot produce: atomic sectors, page
//! snapshots, journaled truncates and `auto_da_alloc`. Each test shows both sides: the knob on
//! never yields the state, and a profile without it does.

use crate::*;
use faultfs::{CrashSpace, Latency, SimConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The contents of `name` in every enumerated image and in `samples` sampled ones.
fn seen(fs: &SimFs, name: &str, samples: usize) -> BTreeSet<Option<Vec<u8>>> {
    let point = fs.crash_point_now();
    let mut out: BTreeSet<Option<Vec<u8>>> =
        images(&point).iter().map(|i| i.contents(name)).collect();
    let space = point.power_cut_space();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..samples {
        out.insert(space.materialize(&space.sample(&mut rng)).contents(name));
    }
    out
}

/// A 100-byte overwrite of a synced sector, on `profile`: what its 100 bytes can read as.
fn small_overwrite(profile: Profile) -> BTreeSet<Vec<u8>> {
    let fs = SimFs::with_profile(profile);
    let f = durable_file(&fs, "meta", &[b'o'; 4096]);
    f.write_all_at(&[b'n'; 100], 0).unwrap();
    seen(&fs, "meta", 2_000).into_iter().map(|c| c.unwrap()[..100].to_vec()).collect()
}

#[test]
fn an_atomic_sector_lands_whole_or_not_at_all() {
    let (old, new) = (vec![b'o'; 100], vec![b'n'; 100]);
    for profile in [Profile::ext4_ordered(), Profile::ext4_writeback()] {
        let base = profile.base.clone();
        assert_eq!(small_overwrite(profile), BTreeSet::from([old.clone(), new.clone()]), "{base}");
    }
    // The paranoid profile tears inside a sector, and so does ext4 told its disk does not.
    let paranoid = |p: Profile| small_overwrite(p).iter().any(|c| c != &old && c != &new);
    assert!(paranoid(Profile::posix()));
    assert!(paranoid(Profile { atomic_sector_writes: false, ..Profile::ext4_ordered() }));
}

#[test]
fn a_torn_page_tears_at_every_sector_boundary_and_nowhere_else() {
    let fs = ext4();
    let f = durable_file(&fs, "data", &[b'o'; 4096]);
    f.write_all_at(&[b'n'; 4096], 0).unwrap();
    let mut tears = BTreeSet::new();
    for image in images(&fs.crash_point_now()) {
        let c = image.contents("data").unwrap();
        let new = c.iter().take_while(|b| **b == b'n').count();
        assert!(c[new..].iter().all(|b| *b == b'o'), "new then old, nothing else");
        assert_eq!(new % 512, 0, "a tear at a sector boundary");
        tears.insert(new);
    }
    assert_eq!(tears, (0..=8).map(|s| s * 512).collect(), "every boundary, and whole or none");
}

#[test]
fn a_page_lands_as_the_page_cache_held_it_at_one_moment() {
    // Two writes in one page: the later one never lands without the earlier where a page is
    // written back whole, and does where each write's part lands on its own.
    let later_alone = |profile: Profile| {
        let fs = SimFs::with_profile(profile);
        let f = durable_file(&fs, "page", &[b'o'; 4096]);
        f.write_all_at(&[b'A'; 100], 0).unwrap();
        f.write_all_at(&[b'B'; 100], 200).unwrap();
        seen(&fs, "page", 2_000).iter().any(|c| {
            let c = c.as_ref().unwrap();
            c[0] == b'o' && c[200] == b'B'
        })
    };
    assert!(!later_alone(Profile::ext4_ordered()));
    assert!(later_alone(Profile::posix()));
    assert!(later_alone(Profile { page_snapshots: false, ..Profile::ext4_ordered() }));
}

/// A durable 8 KiB file rewritten with `O_TRUNC`: 100 new bytes, nothing synced.
fn truncate_rewrite(profile: Profile) -> BTreeSet<Option<Vec<u8>>> {
    let fs = SimFs::with_profile(profile);
    drop(durable_file(&fs, "cfg", &[b'o'; 8192]));
    let f = fs.open("cfg", OpenOptions { truncate: true, ..OpenOptions::create() }).unwrap();
    f.write_all_at(&[b'n'; 100], 0).unwrap();
    seen(&fs, "cfg", 2_000)
}

#[test]
fn a_lost_truncate_never_lets_new_data_land_on_the_old_tail() {
    let head_on_tail = |c: &Option<Vec<u8>>| {
        c.as_ref().is_some_and(|c| c.len() == 8192 && c[0] == b'n' && c[8191] == b'o')
    };
    let ext4 = truncate_rewrite(Profile::ext4_ordered());
    assert!(!ext4.iter().any(head_on_tail), "{} states", ext4.len());
    // What ext4 can leave: the old file, an empty one, the new bytes, or their size alone.
    assert!(ext4.contains(&Some(vec![b'o'; 8192])));
    assert!(ext4.contains(&Some(vec![])));
    assert!(ext4.contains(&Some(vec![b'n'; 100])));
    let unjournaled = Profile { journaled_truncate: false, ..Profile::ext4_ordered() };
    assert!(truncate_rewrite(unjournaled).iter().any(head_on_tail));
    assert!(truncate_rewrite(Profile::posix()).iter().any(head_on_tail));
}

/// [`truncate_rewrite`], then the file closed: what `cfg` can read as, and what it holds once
/// `wait` of virtual time has passed with nothing landed beyond the durable state.
fn truncate_rewrite_close(
    profile: Profile,
    wait: Duration,
) -> (BTreeSet<Option<Vec<u8>>>, Vec<u8>) {
    let fs = SimFs::with_profile(profile);
    drop(durable_file(&fs, "cfg", &[b'o'; 8192]));
    let f = fs.open("cfg", OpenOptions { truncate: true, ..OpenOptions::create() }).unwrap();
    f.write_all_at(&[b'n'; 100], 0).unwrap();
    drop(f);
    let states = seen(&fs, "cfg", 2_000);
    fs.advance(wait);
    let space = fs.crash_point_now().power_cut_space();
    let floor = space.materialize(&space.nothing_landed()).contents("cfg").unwrap();
    (states, floor)
}

#[test]
fn a_truncated_and_rewritten_file_closed_is_old_or_new_where_auto_da_alloc_flushes_it() {
    let (old, new) = (vec![b'o'; 8192], vec![b'n'; 100]);
    // ext4 data=ordered: the close flushes the new data before the truncate can commit, so the
    // file is never found empty; and after the next journal commit the new contents are durable.
    let (states, floor) = truncate_rewrite_close(Profile::ext4_ordered(), Duration::from_secs(6));
    assert_eq!(states, BTreeSet::from([Some(old.clone()), Some(new.clone())]));
    assert_eq!(floor, new, "the commit after the close made the new contents durable");
    // Left open, the same rewrite can be found empty (the truncate landed, its data did not).
    assert!(truncate_rewrite(Profile::ext4_ordered()).contains(&Some(vec![])));
    // Without auto_da_alloc (data=writeback's profile here, and the paranoid one) a closed file
    // can be found empty, and the close writes nothing back.
    for profile in [Profile::ext4_writeback(), Profile::posix()] {
        let base = profile.base.clone();
        let (states, floor) = truncate_rewrite_close(profile, Duration::from_secs(6));
        assert!(states.contains(&Some(vec![])), "{base}");
        assert_ne!(floor, new, "{base}");
    }
}

/// `cfg` durable, then replaced by rename from an unsynced `cfg.tmp`: what `cfg` can read as.
fn replace_via_rename(profile: Profile) -> (BTreeSet<Option<Vec<u8>>>, CrashSpace) {
    let fs = SimFs::with_profile(profile);
    drop(durable_file(&fs, "cfg", b"old settings"));
    let f = fs.open("cfg.tmp", OpenOptions::create()).unwrap();
    f.write_all_at(&[b'n'; 1500], 0).unwrap();
    fs.rename("cfg.tmp", "cfg").unwrap();
    (seen(&fs, "cfg", 2_000), fs.crash_point_now().power_cut_space())
}

#[test]
fn a_rename_over_a_file_lands_with_the_renamed_files_data_where_auto_da_alloc_flushes_it() {
    let (ordered, space) = replace_via_rename(Profile::ext4_ordered());
    let expected = BTreeSet::from([Some(b"old settings".to_vec()), Some(vec![b'n'; 1500])]);
    assert_eq!(ordered, expected);
    // A state with the rename landed and the data lost is refused by name.
    let mut text = space.encode(&space.nothing_landed());
    text.pop();
    text.pop();
    text.push_str("11");
    let err = space.decode(&text).unwrap_err();
    assert!(err.contains("auto_da_alloc"), "{err}");
    // data=writeback, and the paranoid profile, can leave the new name on missing data.
    for profile in [Profile::ext4_writeback(), Profile::posix()] {
        let base = profile.base.clone();
        let (states, _) = replace_via_rename(profile);
        assert!(
            states.iter().any(|c| c.as_ref().is_some_and(|c| c.len() < 1500 || c[0] == 0)),
            "{base}"
        );
    }
}

/// `a` renamed to `b` without a directory fsync, then `other` (durable) written as `write` says
/// and synced by `sync`: is the rename durable?
fn rename_durable_after(profile: Profile, grow: bool, sync: fn(&faultfs::SimFile)) -> bool {
    let fs = SimFs::with_profile(profile);
    drop(durable_file(&fs, "a", b"a"));
    let other = durable_file(&fs, "other", b"other");
    fs.rename("a", "b").unwrap();
    other.write_all_at(b"!", if grow { 5 } else { 0 }).unwrap();
    sync(&other);
    fs.file_state("b").unwrap().entry_durable
}

#[test]
fn an_ext4_fsync_commits_the_whole_journal_transaction() {
    let fsync: fn(&faultfs::SimFile) = |f| f.sync_all().unwrap();
    let fdatasync: fn(&faultfs::SimFile) = |f| f.sync_data().unwrap();
    // ext4: a file's fsync commits the running transaction, an unrelated rename with it; so does
    // an fdatasync that must persist a size change; an fdatasync of an overwrite commits nothing.
    assert!(rename_durable_after(Profile::ext4_ordered(), false, fsync));
    assert!(rename_durable_after(Profile::ext4_ordered(), true, fdatasync));
    assert!(!rename_durable_after(Profile::ext4_ordered(), false, fdatasync));
    // POSIX promises none of it.
    assert!(!rename_durable_after(Profile::posix(), false, fsync));
    assert!(!rename_durable_after(Profile::posix(), true, fdatasync));
}

#[test]
fn garbage_is_what_a_disk_exposes_stale_records_or_plausible_lengths() {
    // A removed file's checksum-valid records are what a recycled block exposes; data=ordered
    // exposes zeros instead.
    // Garbage is seeded per piece and filesystem: eight filesystems give eight draws.
    let tails = |profile: Profile| {
        let mut out = Vec::new();
        for seed in 0..8 {
            let config = SimConfig::new(profile.clone()).latency(Latency::zero()).seed(seed);
            let fs = SimFs::new(config);
            drop(durable_file(&fs, "old.log", &b"OLDRECORD".repeat(200)));
            fs.remove("old.log").unwrap();
            fs.sync_dir().unwrap();
            let f = durable_file(&fs, "log", b"");
            f.write_all_at(&[b'n'; 1500], 0).unwrap();
            let tails = seen(&fs, "log", 200).into_iter().flatten();
            out.extend(tails.filter(|c| c.first() != Some(&b'n') && !c.is_empty()));
        }
        out
    };
    let stale = |tail: &Vec<u8>| tail.windows(9).any(|w| w == b"OLDRECORD");
    let small_length = |tail: &Vec<u8>| {
        tail.chunks_exact(4).any(|w| (1..=256).contains(&u32::from_le_bytes(w.try_into().unwrap())))
    };
    let writeback = tails(Profile::ext4_writeback());
    assert!(writeback.iter().any(stale), "a stale record from the removed file");
    assert!(writeback.iter().any(|t| !stale(t) && small_length(t)), "random with small lengths");
    let ordered = tails(Profile::ext4_ordered());
    assert!(!ordered.is_empty() && ordered.iter().all(|t| t.iter().all(|b| *b == 0)), "zeros only");
}

#[test]
fn without_powersafe_overwrite_a_garbled_sector_takes_its_synced_neighbours() {
    let neighbours_garbled = |profile: Profile| {
        let fs = SimFs::with_profile(profile);
        let f = durable_file(&fs, "f", &[b'o'; 512]);
        f.write_all_at(&[b'n'; 12], 500).unwrap();
        seen(&fs, "f", 500).iter().any(|c| c.as_ref().unwrap()[..500].iter().any(|b| *b != b'o'))
    };
    assert!(!neighbours_garbled(Profile::posix()));
    assert!(neighbours_garbled(Profile { powersafe_overwrite: false, ..Profile::posix() }));
}
