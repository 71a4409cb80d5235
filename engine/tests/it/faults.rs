//! ENOSPC and EIO: what is acknowledged, what is cut back, what a failed sync costs.

use crate::*;
use engine::{Error, Promise};
use faultfs::{EioSemantics, Fault, FaultPlan, OpenOptions, Vfs};

fn fs_with(faults: FaultPlan) -> SimFs {
    let fs = sim(Profile::posix());
    fs.set_faults(faults);
    fs
}

/// Under o_sync a put with no rotation is a write then a sync: the sync is two operations away.
fn next_sync_op(fs: &SimFs) -> u64 {
    fs.op_count() + 2
}

#[test]
fn enospc_fails_the_put_cuts_the_partial_record_back_and_loses_nothing_else() {
    let fs = fs_with(FaultPlan::none().capacity(300));
    let mut db = open(&fs, osync());
    db.put(b"a", &[1; 100]).unwrap();
    let err = db.put(b"b", &[2; 300]).unwrap_err();
    assert_eq!(err.io_error().map(|e| e.kind()), Some(std::io::ErrorKind::StorageFull), "{err}");
    assert!(err.to_string().contains("0000000001.data"), "{err}");
    assert_eq!(
        fs.file_state("0000000001.data").unwrap().cached_len,
        130,
        "cut back to the first record"
    );
    db.put(b"c", &[3; 10]).unwrap();
    let state = recover(&durable_only(&fs), osync());
    assert_eq!(state.keys().cloned().collect::<Vec<_>>(), vec![b"a".to_vec(), b"c".to_vec()]);
}

#[test]
fn a_failed_fsync_is_rewritten_into_a_fresh_file_and_the_promise_kept() {
    for semantics in [EioSemantics::Linux, EioSemantics::BtrfsRevert, EioSemantics::Sticky] {
        let fs = sim(Profile::posix());
        let mut db = open(&fs, osync());
        db.put(b"a", b"1").unwrap();
        let op = next_sync_op(&fs);
        fs.set_faults(FaultPlan::none().at(op, Fault::SyncEio).semantics(semantics));
        let ack = db.put(b"b", b"2").unwrap();
        assert_eq!((ack.promise, ack.durable_through), (Promise::Durable, 2), "{semantics:?}");
        assert_eq!(fs.fired_faults(), vec![(op, Fault::SyncEio)]);
        db.put(b"c", b"3").unwrap();
        let state = recover(&durable_only(&fs), osync());
        assert_eq!(state, kv(&[("a", "1"), ("b", "2"), ("c", "3")]), "{semantics:?}");
    }
}

#[test]
fn fsync_retry_after_eio_acknowledges_data_the_disk_never_got() {
    // A failed fsync may or may not have persisted the write before failing (drawn from the
    // filesystem's seed): where it did not, the acknowledged write is gone.
    let mut lost = 0;
    for seed in 0..8 {
        let fs = SimFs::new(SimConfig::new(Profile::posix()).seed(seed));
        let config = with_bug(osync(), "fsync-retry-after-eio");
        let mut db = open(&fs, config.clone());
        db.put(b"a", b"1").unwrap();
        let op = next_sync_op(&fs);
        fs.set_faults(FaultPlan::none().at(op, Fault::SyncEio));
        let ack = db.put(b"b", b"2").unwrap();
        assert_eq!(ack.promise, Promise::Durable, "the retry 'succeeded'");
        let state = recover(&durable_only(&fs), config);
        assert!(state.contains_key(b"a".as_slice()));
        lost += usize::from(state == kv(&[("a", "1")]));
    }
    assert!(lost > 0, "the acknowledged write is gone");
}

#[test]
fn when_the_rewrite_fails_too_the_engine_poisons_itself_and_names_the_writes_at_risk() {
    let fs = sim(Profile::posix());
    let config = Config::new(SyncStrategy::Interval { ms: 10 });
    let mut db = open(&fs, config.clone());
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"2").unwrap();
    fs.advance(std::time::Duration::from_millis(20));
    // Every sync fails from here on (sticky), so the rewrite's fsync fails as well.
    fs.set_faults(FaultPlan { sync_eio_rate: 1.0, ..FaultPlan::none() });
    let err = db.tick().unwrap_err();
    let Error::Poisoned { at_risk: Some(r), .. } = &err else { panic!("{err}") };
    assert_eq!((r.first, r.last), (1, 2));
    assert!(err.to_string().contains("seq 1..=2"), "{err}");
    assert!(matches!(db.put(b"c", b"3"), Err(Error::Poisoned { .. })));
    assert!(matches!(db.get(b"a"), Err(Error::Poisoned { .. })));
    // The page cache still holds the writes, marked clean but never written (linux). Reopening
    // reads what the disk has, so it serves none of what it named at risk: a power cut after
    // the reopen could not take anything it served away.
    fs.set_faults(FaultPlan::none());
    drop(db);
    assert_eq!(fs.contents("0000000001.data").map(|c| c.is_empty()), Some(false));
    // Each reopen on its own copy (dropping the cache changes the copy it runs on).
    let reopened = || fs.crash_point_now().process_crash(faultfs::InFlight::Skipped);
    assert_eq!(recover(&reopened(), config.clone()).len(), 0);
    // Trusting the cache serves both, bytes the disk never got.
    assert_eq!(recover(&reopened(), with_bug(config, "trusts-page-cache")).len(), 2);
}

#[test]
fn a_write_eio_fails_the_put_and_changes_nothing() {
    let fs = sim(Profile::posix());
    let mut db = open(&fs, osync());
    db.put(b"a", b"1").unwrap();
    fs.set_faults(FaultPlan::none().at(fs.op_count() + 1, Fault::WriteEio));
    assert!(db.put(b"b", b"2").is_err());
    db.put(b"c", b"3").unwrap();
    assert_eq!(db.state().unwrap(), kv(&[("a", "1"), ("c", "3")]));
    assert_eq!(recover(&durable_only(&fs), osync()), kv(&[("a", "1"), ("c", "3")]));
}

#[test]
fn a_failed_directory_fsync_on_rotation_is_retried_before_acknowledging() {
    let fs = sim(Profile::posix());
    let config = osync().max_file_bytes(4096);
    let mut db = open(&fs, config.clone());
    let big = vec![7u8; 3000];
    db.put(b"a", &big).unwrap();
    // The next put rotates: sync old (already clean), open new, fsync(dir) <- fails.
    fs.set_faults(FaultPlan::none().at(fs.op_count() + 2, Fault::SyncEio));
    let ack = db.put(b"b", &big).unwrap();
    assert_eq!(ack.promise, Promise::Durable);
    let dir_syncs = fs.trace().iter().filter(|e| e.call == faultfs::Call::SyncDir).count();
    assert!(dir_syncs >= 3, "retried: {dir_syncs}");
    assert_eq!(recover(&durable_only(&fs), config).len(), 2);
    let _ = fs.open("0000000002.data", OpenOptions::existing()).unwrap();
}

/// 1,000 keys of 64-byte records, merged into one file written in 8 KiB chunks; returns the
/// operation number of the merged file's fsync.
fn merged_store(fs: &SimFs, config: &Config) -> u64 {
    let mut db = open(fs, config.clone().max_file_bytes(4096));
    for i in 0..1000 {
        db.put(&key(i), &value(i, 28)).unwrap();
    }
    db.merge().unwrap();
    let synced = fs.trace().into_iter().find(|e| {
        e.call == faultfs::Call::SyncAll
            && e.file.as_deref().is_some_and(|f| f.ends_with(".data.tmp"))
    });
    synced.expect("the merged file was fsynced").op
}

#[test]
fn a_misdirected_merge_chunk_is_caught_by_its_key_and_seq_and_served_by_the_bug() {
    // Records of 64 bytes (29 header + 7 key + 28 value): a chunk displaced by whole pages lands
    // its records exactly where other records began, each checksum-valid, under a valid hint.
    let config = osync();
    let op = merged_store(&sim(Profile::ext4_ordered()), &config);
    let (mut misplaced, mut hinted, mut named) = (0, 0, 0);
    for bug in [None, Some("trusts-misplaced-record")] {
        for seed in 0..8 {
            let fs = SimFs::new(SimConfig::new(Profile::ext4_ordered()).seed(seed));
            fs.set_faults(FaultPlan::none().at(op, Fault::MisdirectedWrite));
            let config = bug.map_or(config.clone(), |b| with_bug(config.clone(), b));
            assert_eq!(merged_store(&fs, &config), op);
            assert_eq!(fs.fired_faults(), vec![(op, Fault::MisdirectedWrite)]);
            let db = Engine::open(durable_only(&fs), config).unwrap();
            // Where the displaced chunk changed the file's length, the hint is not used.
            if db.recovery_report().hints_used == 0 {
                continue;
            }
            hinted += 1;
            let (mut served, mut unreadable) = (State::new(), Vec::new());
            let noted = |k: &[u8], e: Error| {
                unreadable.push((k.to_vec(), e.to_string()));
                Ok(())
            };
            db.visit_state_reporting(|k, v| drop(served.insert(k.to_vec(), v.to_vec())), noted)
                .unwrap();
            let foreign = |(k, v): &(&Vec<u8>, &Vec<u8>)| {
                let i: usize = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
                **v != value(i, 28)
            };
            let wrong = served.iter().filter(foreign).count();
            match bug {
                None => {
                    assert_eq!(wrong, 0, "seed {seed}: the correct engine serves no foreign value");
                    // The hole the chunk left fails its CRC; a record displaced onto another's
                    // place is named for what it is. (A forward displacement may be overwritten
                    // by the later chunks the same sync wrote.)
                    named += unreadable.iter().filter(|(_, e)| e.contains("expected key")).count();
                    assert_eq!(served.len() + unreadable.len(), 1000);
                }
                Some(_) => misplaced += wrong,
            }
        }
    }
    assert!(hinted >= 8, "most displacements keep the file's length: {hinted} of 16");
    assert!(named > 0, "the correct engine names displaced records");
    assert!(misplaced > 0, "the buggy engine serves other keys' values");
}
