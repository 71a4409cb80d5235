//! Directory trees: the seam's tree operations on every implementation, RealFs confined to its
//! root, and SimFs's per-directory durability rules in each profile, both ways (lost without the
//! directory sync, kept with it).

use crate::*;
use faultfs::{DirEntry, EntryKind, MemFs, RealFs};
use std::io::ErrorKind;

/// What an image holds, as lines: `d/` a directory, `f=contents` a file, `l -> target` a link.
fn tree(fs: &SimFs) -> Vec<String> {
    let mut out: Vec<String> = fs.dir_names().into_iter().map(|d| format!("{d}/")).collect();
    for name in fs.names() {
        match fs.link_target(&name) {
            Some(target) => out.push(format!("{name} -> {target}")),
            None => {
                let c = fs.contents(&name).unwrap();
                out.push(format!("{name}={}", String::from_utf8_lossy(&c)));
            }
        }
    }
    out.sort();
    out
}

/// Every distinct tree a power cut can leave at this moment.
fn trees(fs: &SimFs) -> BTreeSet<Vec<String>> {
    images(&fs.crash_point_now()).iter().map(tree).collect()
}

/// The tree a power cut leaves when nothing unsynced lands.
fn floor(fs: &SimFs) -> Vec<String> {
    let space = fs.crash_point_now().power_cut_space();
    tree(&space.materialize(&space.nothing_landed()))
}

/// Directories `dirs` (parents first) and the file `path` holding `data`, all durable: the
/// file fsynced, then every directory synced, deepest first, the root last.
fn durable_tree(fs: &SimFs, dirs: &[&str], path: &str, data: &[u8]) -> faultfs::SimFile {
    for d in dirs {
        fs.create_dir(d).unwrap();
    }
    let f = fs.open(path, OpenOptions::create()).unwrap();
    f.write_all_at(data, 0).unwrap();
    f.sync_all().unwrap();
    for d in dirs.iter().rev() {
        fs.sync_dir_at(d).unwrap();
    }
    fs.sync_dir().unwrap();
    f
}

fn names(entries: Vec<DirEntry>) -> Vec<(String, EntryKind)> {
    entries.into_iter().map(|e| (e.name, e.kind)).collect()
}

/// The seam's tree operations, the same on every implementation.
fn tree_operations(fs: &impl Vfs, follows_links: bool) {
    fs.create_dir("d").unwrap();
    fs.create_dir("d/e").unwrap();
    let f = fs.open("d/e/f", OpenOptions::create()).unwrap();
    f.write_all_at(b"data", 0).unwrap();
    fs.open("top", OpenOptions::create()).unwrap();
    let kinds = names(fs.read_dir("").unwrap());
    assert_eq!(kinds, [("d".into(), EntryKind::Dir), ("top".into(), EntryKind::File)]);
    assert_eq!(fs.list().unwrap(), ["top"], "list: the root's files");
    assert_eq!(names(fs.read_dir("d/e").unwrap()), [("f".into(), EntryKind::File)]);
    // A hard link shares the data; removing one name keeps the other.
    fs.link("d/e/f", "g").unwrap();
    fs.remove("d/e/f").unwrap();
    let g = fs.open("g", OpenOptions::existing()).unwrap();
    let mut buf = [0u8; 4];
    g.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"data");
    // A directory moves with what it holds, across directories.
    fs.open("d/e/h", OpenOptions::create()).unwrap();
    fs.rename("d/e", "e2").unwrap();
    assert!(fs.open("e2/h", OpenOptions::existing()).is_ok());
    let gone = fs.open("d/e/h", OpenOptions::existing()).err().map(|e| e.kind());
    assert_eq!(gone, Some(ErrorKind::NotFound));
    // A file renamed across directories.
    fs.rename("e2/h", "d/h").unwrap();
    assert_eq!(names(fs.read_dir("d").unwrap()), [("h".into(), EntryKind::File)]);
    // Not a directory's job, and not while it holds something.
    assert!(fs.remove("d").is_err());
    assert_eq!(fs.remove_dir("d").unwrap_err().kind(), ErrorKind::DirectoryNotEmpty);
    assert!(fs.rename("d", "d/h2").is_err(), "a directory below itself");
    fs.remove("d/h").unwrap();
    fs.remove_dir("d").unwrap();
    // Symbolic links.
    fs.symlink("e2", "link").unwrap();
    assert_eq!(fs.read_link("link").unwrap(), "e2");
    if follows_links {
        fs.open("link/new", OpenOptions::create()).unwrap();
        let listed = names(fs.read_dir("e2").unwrap());
        assert_eq!(listed, [("new".into(), EntryKind::File)], "followed below the root");
    }
    fs.sync_dir_at("e2").unwrap();
    fs.sync_dir().unwrap();
    // Bad paths are refused, naming the path.
    for bad in ["/abs", "a/../b", "a//b", "..", "e2/"] {
        let err = fs.create_dir(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn every_implementation_has_the_same_tree_operations() {
    tree_operations(&posix(), true);
    tree_operations(&MemFs::new(), false);
    let dir = tempfile::tempdir().unwrap();
    tree_operations(&RealFs::open(dir.path()).unwrap(), true);
}

#[test]
fn real_fs_cannot_be_led_out_of_its_root_by_a_symbolic_link() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let fs = RealFs::open(&root).unwrap();
    let outside = outer.path().to_str().unwrap().to_string();
    fs.symlink(&outside, "abs").unwrap();
    fs.symlink("..", "up").unwrap();
    fs.create_dir("d").unwrap();
    fs.symlink("../..", "d/upup").unwrap();
    for path in ["abs/escape", "up/escape", "d/upup/escape"] {
        assert!(fs.open(path, OpenOptions::create()).is_err(), "{path}");
        assert!(fs.create_dir(path).is_err(), "{path}");
        assert!(fs.rename("d", path).is_err(), "{path}");
        assert!(fs.link("d/upup", path).is_err() || !outer.path().join("escape").exists());
    }
    assert!(fs.read_dir("up").is_err());
    assert!(fs.sync_dir_at("abs").is_err());
    assert!(!outer.path().join("escape").exists(), "nothing was made outside the root");
    // A link that stays below the root is followed.
    fs.symlink("d", "ok").unwrap();
    fs.open("ok/inside", OpenOptions::create()).unwrap();
    assert!(root.join("d/inside").exists());
    // SimFs refuses the same escapes.
    let sim = posix();
    sim.symlink("/tmp", "abs").unwrap();
    sim.symlink("..", "up").unwrap();
    for path in ["abs/escape", "up/escape"] {
        let err = sim.open(path, OpenOptions::create()).unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
    }
}

/// `d/f` created in a new directory `d`, its data fsynced, then `sync` run.
fn new_file_in_new_dir(profile: Profile, sync: impl Fn(&SimFs)) -> Vec<String> {
    let fs = SimFs::with_profile(profile);
    fs.create_dir("d").unwrap();
    let f = fs.open("d/f", OpenOptions::create()).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync_data().unwrap();
    sync(&fs);
    floor(&fs)
}

#[test]
fn a_new_directory_is_durable_once_its_parent_is_synced() {
    let kept = vec!["d/".to_string(), "d/f=x".to_string()];
    // posix: syncing the new directory makes `f`'s entry durable, not `d`'s own: that is in
    // the root. Both syncs keep both.
    let only_d = new_file_in_new_dir(Profile::posix(), |fs| fs.sync_dir_at("d").unwrap());
    assert_eq!(only_d, Vec::<String>::new(), "d's entry lives in the root");
    let only_root = new_file_in_new_dir(Profile::posix(), |fs| fs.sync_dir().unwrap());
    assert_eq!(only_root, ["d/"], "f's entry lives in d");
    let both = new_file_in_new_dir(Profile::posix(), |fs| {
        fs.sync_dir_at("d").unwrap();
        fs.sync_dir().unwrap();
    });
    assert_eq!(both, kept);
    // ext4-ordered: a directory fsync commits the journal, the parent's new entries with it; so
    // does the file's own fsync.
    let ext4_d = new_file_in_new_dir(Profile::ext4_ordered(), |fs| fs.sync_dir_at("d").unwrap());
    assert_eq!(ext4_d, kept);
    let ext4_file = new_file_in_new_dir(Profile::ext4_ordered(), |fs| {
        fs.open("d/f", OpenOptions::existing()).unwrap().sync_all().unwrap();
    });
    assert_eq!(ext4_file, kept, "a file's fsync commits its ancestors' new entries too");
    let posix_file = new_file_in_new_dir(Profile::posix(), |fs| {
        fs.open("d/f", OpenOptions::existing()).unwrap().sync_all().unwrap();
    });
    assert_eq!(posix_file, Vec::<String>::new(), "posix promises no entry on a file's fsync");
}

#[test]
fn a_rename_across_directories_is_durable_once_both_are_synced() {
    let run = |profile: Profile, syncs: &[&str]| {
        let fs = SimFs::with_profile(profile);
        durable_tree(&fs, &["a", "b"], "a/f", b"x");
        fs.rename("a/f", "b/f").unwrap();
        for d in syncs {
            fs.sync_dir_at(d).unwrap();
        }
        (floor(&fs), trees(&fs))
    };
    let old = vec!["a/".to_string(), "a/f=x".into(), "b/".into()];
    let new = vec!["a/".to_string(), "b/".into(), "b/f=x".into()];
    for one in ["a", "b"] {
        let (floor, _) = run(Profile::posix(), &[one]);
        assert_eq!(floor, old, "posix, only {one} synced: not yet");
    }
    assert_eq!(run(Profile::posix(), &["a", "b"]).0, new);
    assert_eq!(run(Profile::ext4_ordered(), &["b"]).0, new, "ext4: one journal commit");
    // Unsynced, a crash leaves the old name or the new, never neither (nor both).
    let (_, states) = run(Profile::posix(), &[]);
    assert_eq!(states, BTreeSet::from([old, new]));
}

#[test]
fn hard_links_share_data_and_a_file_lives_while_any_name_does() {
    let fs = posix();
    let f = durable_file(&fs, "a", b"one");
    fs.link("a", "b").unwrap();
    fs.remove("a").unwrap();
    f.write_all_at(b"two", 0).unwrap();
    f.sync_all().unwrap();
    assert_eq!(fs.contents("b").unwrap(), b"two");
    // Unsynced: the link and the unlink land independently under posix.
    let states = trees(&fs);
    let expect: BTreeSet<Vec<String>> = [
        vec!["a=two".to_string()],
        vec!["a=two".to_string(), "b=two".into()],
        vec!["b=two".to_string()],
        vec![],
    ]
    .into();
    assert_eq!(states, expect);
    fs.sync_dir().unwrap();
    assert_eq!(floor(&fs), ["b=two"]);
    // Under ext4-ordered the directory operations land as a journal prefix: never neither name.
    let fs = ext4();
    let f = durable_file(&fs, "a", b"one");
    fs.link("a", "b").unwrap();
    fs.remove("a").unwrap();
    drop(f);
    assert!(!trees(&fs).contains(&vec![]), "ext4 never loses both names");
}

#[test]
fn a_removed_directory_whose_files_held_pending_data_comes_back_as_it_was_durable() {
    let fs = posix();
    let f = durable_tree(&fs, &["d"], "d/f", b"old");
    f.write_all_at(b"new", 0).unwrap(); // pending data
    fs.remove("d/f").unwrap();
    fs.remove_dir("d").unwrap();
    let states = trees(&fs);
    // Nothing synced: the directory and its file can come back, with either contents.
    assert!(states.contains(&vec!["d/".to_string(), "d/f=old".into()]));
    assert!(states.contains(&vec!["d/".to_string(), "d/f=new".into()]));
    assert!(states.contains(&vec![]));
    fs.sync_dir().unwrap();
    assert_eq!(floor(&fs), Vec::<String>::new(), "the rmdir is durable with the root's sync");
}

#[test]
fn symbolic_links_are_entries_made_durable_by_their_directory() {
    let fs = posix();
    durable_file(&fs, "target", b"t");
    fs.symlink("target", "link").unwrap();
    assert_eq!(fs.contents("link").unwrap(), b"t", "reads follow the link");
    assert_eq!(
        trees(&fs),
        BTreeSet::from([
            vec!["target=t".to_string()],
            vec!["link -> target".into(), "target=t".into()]
        ])
    );
    fs.sync_dir().unwrap();
    assert_eq!(floor(&fs), ["link -> target", "target=t"]);
}

#[test]
fn exhaustive_enumeration_covers_every_directory_operation() {
    // Three unsynced directory operations under posix: every subset is a distinct state.
    let fs = posix();
    fs.create_dir("a").unwrap();
    fs.create_dir("b").unwrap();
    fs.symlink("a", "c").unwrap();
    let states = trees(&fs);
    assert_eq!(states.len(), 8, "{states:?}");
    // Under a journal, a prefix: 4.
    let fs = ext4();
    fs.create_dir("a").unwrap();
    fs.create_dir("b").unwrap();
    fs.symlink("a", "c").unwrap();
    assert_eq!(trees(&fs).len(), 4);
}

/// Every profile's directory rules, both ways: what a power cut keeps of `d/f` (a new file in a
/// new directory, its data fsynced) after each way of syncing, and with nothing synced.
#[test]
fn every_profile_states_its_directory_rules() {
    let kept = vec!["d/".to_string(), "d/f=x".to_string()];
    let none: Vec<String> = Vec::new();
    let only_dir = vec!["d/".to_string()];
    type Sync = fn(&SimFs);
    let nothing: Sync = |_| {};
    let new_dir: Sync = |fs| fs.sync_dir_at("d").unwrap();
    let parent: Sync = |fs| fs.sync_dir().unwrap();
    let both: Sync = |fs| {
        fs.sync_dir_at("d").unwrap();
        fs.sync_dir().unwrap();
    };
    let file: Sync = |fs| fs.open("d/f", OpenOptions::existing()).unwrap().sync_all().unwrap();
    // (profile, [nothing, the new directory, its parent, both, the file's fsync])
    let rules: [(&str, [&Vec<String>; 5]); 4] = [
        // Every completed operation is durable at once.
        ("strict", [&kept, &kept, &kept, &kept, &kept]),
        // The file's fdatasync already had to persist its creation, so it committed the
        // journal: both new entries with it (and every later sync commits what is left).
        ("ext4-ordered", [&kept, &kept, &kept, &kept, &kept]),
        ("ext4-writeback", [&kept, &kept, &kept, &kept, &kept]),
        // Only what the calls promise: each entry by its own directory's sync.
        ("posix", [&none, &none, &only_dir, &kept, &none]),
    ];
    for (name, expect) in rules {
        for (sync, want) in [nothing, new_dir, parent, both, file].into_iter().zip(expect) {
            let got = new_file_in_new_dir(Profile::named(name).unwrap(), sync);
            assert_eq!(&got, want, "{name}");
        }
    }
}

/// A crash with a failing operation in flight (an rmdir of a directory that is not empty, a
/// rename of a directory below itself, a link of a directory, a remove of one) keeps what the
/// operation would not have changed.
#[test]
fn an_operation_that_would_fail_changes_nothing_when_a_crash_interrupts_it() {
    type Fails = fn(&SimFs) -> std::io::Result<()>;
    let cases: [(&str, Fails); 4] = [
        ("rmdir of a full directory", |fs| fs.remove_dir("d")),
        ("rename below itself", |fs| fs.rename("d", "d/e/d2")),
        ("link of a directory", |fs| fs.link("d", "d3")),
        ("remove of a directory", |fs| fs.remove("d")),
    ];
    for (what, fails) in cases {
        for profile in [Profile::posix(), Profile::ext4_ordered()] {
            let fs = SimFs::with_profile(profile);
            durable_tree(&fs, &["d", "d/e"], "d/f", b"x");
            let n = fs.op_count() + 1;
            fs.capture_at(n..n + 1);
            assert!(fails(&fs).is_err(), "{what}");
            let point = fs.take_crash_points().pop().expect("a crash point at the failing call");
            for image in images(&point) {
                assert_eq!(tree(&image), ["d/", "d/e/", "d/f=x"], "{what}");
            }
            for fate in point.process_crash_fates() {
                assert_eq!(tree(&point.process_crash(fate)), ["d/", "d/e/", "d/f=x"], "{what}");
            }
        }
    }
}
