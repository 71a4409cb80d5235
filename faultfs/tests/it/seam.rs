//! The seam's own semantics on SimFs: numbering, power cuts, sync calls, kill -9, second crashes.

use crate::*;
use faultfs::{Call, InFlight, Latency, Outcome, SimConfig, SyncMode, is_power_cut};
use std::time::Duration;

#[test]
fn power_cut_fails_the_op_in_flight_and_every_later_call() {
    let fs = posix();
    fs.arm_power_cut(3);
    let f = fs.open("a", OpenOptions::create()).unwrap(); // op 1
    f.write_all_at(b"abc", 0).unwrap(); // op 2
    let err = f.sync_data().unwrap_err(); // op 3: in flight
    assert!(is_power_cut(&err), "{err}");
    assert!(is_power_cut(&fs.list().unwrap_err()));
    assert!(is_power_cut(&f.read_at(&mut [0; 3], 0).unwrap_err()));
    assert_eq!(fs.power_cut_at(), Some(3));
    let trace = fs.trace();
    assert_eq!(trace.last().unwrap().call, Call::SyncData);
    assert_eq!(trace.last().unwrap().outcome, Outcome::PowerCut);
    let points = fs.take_crash_points();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].op(), 3);
}

#[test]
fn write_in_flight_at_a_power_cut_may_land_in_part() {
    let fs = SimFs::with_profile(Profile {
        torn_sectors: faultfs::TornSectors::None,
        size_before_data: faultfs::SizeBeforeData::Off,
        ..Profile::posix()
    });
    let f = durable_file(&fs, "log", b"");
    fs.arm_power_cut(fs.op_count() + 1);
    let err = f.write_at(&[7u8; 1024], 0).unwrap_err();
    assert!(is_power_cut(&err));
    let point = fs.take_crash_points().pop().unwrap();
    let lens: BTreeSet<Vec<u8>> =
        images(&point).iter().map(|i| i.contents("log").unwrap()).collect();
    // Two 512-byte sectors: none, either, or both landed (the second alone leaves a hole).
    let mut hole = vec![0u8; 512];
    hole.extend([7u8; 512]);
    assert_eq!(lens, BTreeSet::from([vec![], vec![7u8; 512], hole, vec![7u8; 1024]]));
}

#[test]
fn strict_loses_nothing_completed() {
    let fs = SimFs::with_profile(Profile::strict());
    let f = fs.open("a", OpenOptions::create()).unwrap();
    f.write_all_at(b"one", 0).unwrap();
    f.write_all_at(b"two", 3).unwrap();
    fs.rename("a", "b").unwrap();
    let seen = outcomes(&images(&fs.crash_point_now()));
    assert_eq!(seen, BTreeSet::from([vec![file("b", b"onetwo")]]));
}

#[test]
fn fdatasync_persists_data_and_size_but_not_mtime() {
    let fs = SimFs::new(SimConfig::new(Profile::posix()).latency(Latency::zero()));
    let f = durable_file(&fs, "a", b"");
    fs.advance(Duration::from_secs(7));
    f.write_all_at(b"data", 0).unwrap();
    f.sync_data().unwrap();
    let image = fs.crash_point_now().power_cut_space();
    let image = image.materialize(&image.nothing_landed());
    let state = image.file_state("a").unwrap();
    assert_eq!(image.contents("a").unwrap(), b"data");
    assert_eq!(state.durable_mtime, Duration::ZERO, "fdatasync must not persist mtime");
    f.sync_all().unwrap();
    let space = fs.crash_point_now().power_cut_space();
    let image = space.materialize(&space.nothing_landed());
    assert_eq!(image.file_state("a").unwrap().durable_mtime, Duration::from_secs(7));
}

#[test]
fn o_dsync_and_o_sync_writes_are_durable_on_return() {
    for mode in [SyncMode::ODsync, SyncMode::OSync] {
        let fs = posix();
        durable_file(&fs, "log", b"");
        let f = fs.open("log", OpenOptions::existing().sync(mode)).unwrap();
        f.write_all_at(b"acked", 0).unwrap();
        let seen = outcomes(&images(&fs.crash_point_now()));
        assert_eq!(seen, BTreeSet::from([vec![file("log", b"acked")]]), "{mode:?}");
    }
}

#[test]
fn kill_9_keeps_the_page_cache_but_a_later_power_cut_can_still_lose_it() {
    let fs = posix();
    let f = durable_file(&fs, "log", b"old");
    f.write_all_at(b"NEW", 0).unwrap();
    let after_kill = fs.crash_point_now().process_crash(InFlight::Skipped);
    assert_eq!(after_kill.contents("log").unwrap(), b"NEW");
    // Recovery runs on the image and the power goes: the unsynced bytes were never durable.
    let seen: BTreeSet<Vec<u8>> =
        images(&after_kill.crash_point_now()).iter().map(|i| i.contents("log").unwrap()).collect();
    assert!(seen.contains(b"old".as_slice()));
    assert!(seen.contains(b"NEW".as_slice()));
}

#[test]
fn a_crash_image_can_crash_again_during_recovery() {
    let fs = posix();
    let f = durable_file(&fs, "log", b"record1|torn");
    drop(f);
    let space = fs.crash_point_now().power_cut_space();
    let image = space.materialize(&space.nothing_landed());
    // "Recovery": truncate the torn tail, but the power goes during the fsync of the truncation.
    image.arm_power_cut(image.op_count() + 3);
    let log = image.open("log", OpenOptions::existing()).unwrap();
    log.set_len(8).unwrap();
    assert!(is_power_cut(&log.sync_data().unwrap_err()));
    let second = image.take_crash_points().pop().unwrap();
    let seen: BTreeSet<Vec<u8>> =
        images(&second).iter().map(|i| i.contents("log").unwrap()).collect();
    assert_eq!(seen, BTreeSet::from([b"record1|".to_vec(), b"record1|torn".to_vec()]));
}

#[test]
fn capture_at_gives_the_same_crash_points_as_arming_a_cut() {
    let workload = |fs: &SimFs| -> std::io::Result<()> {
        let f = fs.open("a", OpenOptions::create())?;
        for i in 0..5u64 {
            f.write_all_at(&[i as u8; 700], i * 700)?;
            if i % 2 == 1 {
                f.sync_data()?;
            }
        }
        fs.sync_dir()
    };
    let one_run = posix();
    one_run.capture_at([2, 5, 8]);
    workload(&one_run).unwrap();
    let reused = one_run.take_crash_points();
    assert_eq!(reused.iter().map(|p| p.op()).collect::<Vec<_>>(), vec![2, 5, 8]);
    for point in reused {
        let fresh = posix();
        fresh.arm_power_cut(point.op());
        assert!(workload(&fresh).is_err());
        let armed = fresh.take_crash_points().pop().unwrap();
        let hashes =
            |p: &CrashPoint| images(p).iter().map(faultfs::image_hash).collect::<BTreeSet<u64>>();
        assert_eq!(hashes(&point), hashes(&armed), "op {}", point.op());
    }
}

#[test]
fn every_call_but_now_is_one_numbered_operation_with_its_latency() {
    let fs = SimFs::new(SimConfig::new(Profile::posix()));
    let f = fs.open("a", OpenOptions::create()).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync_data().unwrap();
    let _ = fs.now();
    assert_eq!(fs.op_count(), 3);
    let l = Latency::default();
    let expected = l.metadata_ns + l.write_ns + l.sync_data_ns;
    assert_eq!(fs.now(), Duration::from_nanos(expected));
    let lines: Vec<String> = fs
        .trace()
        .iter()
        .map(|e| e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(lines[1].contains("write") && lines[1].contains("a @0+1 = 1"), "{}", lines[1]);
    assert!(lines[2].contains("fdatasync a = ok"), "{}", lines[2]);
}

#[test]
fn open_flags_behave_like_posix() {
    let fs = posix();
    let err = fs.open("missing", OpenOptions::existing()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing"), "{err}");
    durable_file(&fs, "a", b"abc");
    let err = fs.open("a", OpenOptions::create_new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    let f = fs.open("a", OpenOptions::existing().truncate(true)).unwrap();
    assert_eq!(f.len().unwrap(), 0);
    // The truncation is unsynced: a power cut may undo it.
    let seen = outcomes(&images(&fs.crash_point_now()));
    assert_eq!(seen, BTreeSet::from([vec![file("a", b"")], vec![file("a", b"abc")]]));
}

#[test]
fn names_that_escape_the_directory_are_refused() {
    let fs = posix();
    for bad in ["", ".", "..", "../x", "/abs", "a//b", "a/", "a/./b", "nul\0byte"] {
        let err = fs.open(bad, OpenOptions::create()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("bad path"), "{err}");
    }
    // Below a directory that does not exist: not found.
    let err = fs.open("a/b", OpenOptions::create()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(fs.names().is_empty());
}

/// The example in README.md, verbatim.
#[test]
fn readme_example_holds() -> std::io::Result<()> {
    let fs = SimFs::with_profile(Profile::posix());
    let f = fs.open("0000000001.data", OpenOptions::create())?;
    f.write_all_at(b"record", 0)?;
    f.sync_data()?; // data durable; the directory entry is not
    let space = fs.crash_point_now().power_cut_space();
    let image = space.materialize(&space.nothing_landed());
    assert!(image.names().is_empty()); // the file is gone after this power cut
    let readme = include_str!("../../../README.md");
    assert!(readme.contains("assert!(image.names().is_empty()); // the file is gone"));
    Ok(())
}

#[test]
fn a_capture_policy_picks_crash_points_in_one_run() {
    let fs = posix();
    // Every sync call, and a reservoir of one among the writes (the last write here).
    fs.capture_with(|_, call| match call {
        Call::SyncData => faultfs::Capture::Keep,
        _ => faultfs::Capture::Skip,
    });
    let f = fs.open("a", OpenOptions::create()).unwrap();
    for i in 0..4u64 {
        f.write_all_at(b"x", i).unwrap();
        f.sync_data().unwrap();
    }
    let ops: Vec<u64> = fs.take_crash_points().iter().map(|p| p.op()).collect();
    assert_eq!(ops, vec![3, 5, 7, 9]);
    fs.capture_with(|_, call| {
        if call == Call::Write { faultfs::Capture::Replace } else { faultfs::Capture::Skip }
    });
    f.write_all_at(b"y", 0).unwrap();
    f.write_all_at(b"z", 0).unwrap();
    let ops: Vec<u64> = fs.take_crash_points().iter().map(|p| p.op()).collect();
    assert_eq!(ops, vec![11], "Replace keeps only the latest");
}
