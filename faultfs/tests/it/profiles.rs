//! Profiles as data: names, knobs over a base, and errors that name the field.

use crate::*;
use faultfs::{SimConfig, Writeback};
use std::time::Duration;

#[test]
fn profiles_parse_by_name_or_as_knobs_over_a_base() {
    let p: Profile = serde_json::from_str(r#""posix""#).unwrap();
    assert_eq!(p, Profile::posix());
    let p: Profile =
        serde_json::from_str(r#"{"base": "ext4-ordered", "sector_bytes": 512, "writeback": null}"#)
            .unwrap();
    assert_eq!(p.sector_bytes, 512);
    assert_eq!(p.writeback, None);
    assert_eq!(p.to_string(), "ext4-ordered (custom)");
    // Round trip through JSON.
    let back: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    for name in faultfs::PROFILE_NAMES {
        let p = Profile::named(name).unwrap();
        assert_eq!(p.to_string(), name);
        p.validate().unwrap();
    }
}

#[test]
fn bad_profiles_are_rejected_naming_the_field_and_value() {
    let err = serde_json::from_str::<Profile>(r#""ext5""#).unwrap_err().to_string();
    assert!(err.contains("ext5") && err.contains("posix"), "{err}");
    let err = serde_json::from_str::<Profile>(r#"{"base": "posix", "sector_byte": 512}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sector_byte"), "{err}");
    let err = serde_json::from_str::<Profile>(r#"{"base": "posix", "sector_bytes": 1000}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sector_bytes = 1000"), "{err}");
    let err = serde_json::from_str::<Profile>(r#"{"base": "posix", "torn_sectors": "half"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("half") && err.contains("split_or_garbage"), "{err}");
}

#[test]
fn writeback_flushes_an_inode_dirty_past_its_expiry() {
    let durable_len = |fs: &SimFs| fs.file_state("log").unwrap().durable_len;
    // The first pass that finds dirty data writes it; the journal commit after it makes it durable.
    let fs = SimFs::new(SimConfig::new(Profile::ext4_ordered()));
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(b"dirty", 0).unwrap();
    fs.advance(Duration::from_secs(9));
    assert_eq!(durable_len(&fs), 0, "written at 5 s, just after that commit");
    fs.advance(Duration::from_secs(2));
    assert_eq!(durable_len(&fs), 5, "durable at the 10 s commit");
    // After that, an inode is written once dirty for 30 s, and durable at the next commit.
    f.write_all_at(b"again", 5).unwrap();
    fs.advance(Duration::from_secs(33));
    assert_eq!(durable_len(&fs), 5, "not yet expired, or not yet committed");
    fs.advance(Duration::from_secs(6));
    assert_eq!(durable_len(&fs), 10, "written by the pass after 30 s, then committed");
    // Without writeback (posix), nothing unsynced ever becomes durable by itself.
    let fs = SimFs::new(SimConfig::new(Profile::posix()));
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(b"dirty", 0).unwrap();
    fs.advance(Duration::from_secs(3600));
    assert_eq!(durable_len(&fs), 0);
    let custom = Profile {
        writeback: Some(Writeback {
            dirty_expire_ms: 1,
            interval_ms: 1,
            metadata_commit_ms: None,
            ..Writeback::LINUX
        }),
        ..Profile::posix()
    };
    let fs = SimFs::new(SimConfig::new(custom));
    let f = durable_file(&fs, "log", b"");
    f.write_all_at(b"dirty", 0).unwrap();
    fs.advance(Duration::from_millis(3));
    assert_eq!(durable_len(&fs), 5);
}
