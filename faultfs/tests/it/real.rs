//! RealFs: the same seam over a real directory.

use faultfs::{OpenOptions, RealFs, SyncMode, Vfs, VfsFile};
use std::io::ErrorKind;

#[test]
fn real_fs_does_positional_io_syncs_renames_and_lists_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let fs = RealFs::open(dir.path()).unwrap();
    let f = fs.open("b.data", OpenOptions::create_new()).unwrap();
    f.write_all_at(b"hello world", 0).unwrap();
    f.write_all_at(b"W", 6).unwrap();
    f.sync_data().unwrap();
    f.sync_all().unwrap();
    let mut buf = [0u8; 11];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"hello World");
    assert_eq!(f.len().unwrap(), 11);
    f.set_len(5).unwrap();
    assert_eq!(f.len().unwrap(), 5);
    let g = fs.open("a.data", OpenOptions::create().sync(SyncMode::ODsync)).unwrap();
    g.write_all_at(b"durable on return", 0).unwrap();
    let h = fs.open("c.data", OpenOptions::create().sync(SyncMode::OSync)).unwrap();
    h.write_all_at(b"x", 0).unwrap();
    fs.sync_dir().unwrap();
    assert_eq!(fs.list().unwrap(), vec!["a.data", "b.data", "c.data"]);
    fs.rename("b.data", "a.data").unwrap();
    fs.remove("c.data").unwrap();
    fs.sync_dir().unwrap();
    assert_eq!(fs.list().unwrap(), vec!["a.data"]);
    assert!(fs.now() > std::time::Duration::ZERO);
}

#[test]
fn real_fs_errors_name_the_file_and_names_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let fs = RealFs::open(dir.path()).unwrap();
    let err = fs.open("missing", OpenOptions::existing()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing"), "{err}");
    fs.open("x", OpenOptions::create()).unwrap();
    let err = fs.open("x", OpenOptions::create_new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    for bad in ["..", "../escape", "/abs", "a//b", "a/", "a/../b", "", "nul\0"] {
        let err = fs.open(bad, OpenOptions::create()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(fs.rename("x", bad).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    // A path below a directory that does not exist is not found, and creates nothing.
    assert_eq!(fs.open("a/b", OpenOptions::create()).unwrap_err().kind(), ErrorKind::NotFound);
    assert!(!dir.path().parent().unwrap().join("escape").exists());
    let err = RealFs::open(dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn mem_fs_behaves_like_the_seam() {
    let fs = faultfs::MemFs::new();
    let f = fs.open("b", OpenOptions::create_new()).unwrap();
    f.write_all_at(b"hello", 2).unwrap();
    let mut buf = [9u8; 7];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"\0\0hello");
    assert_eq!(
        fs.open("b", OpenOptions::create_new()).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    fs.open("a", OpenOptions::create()).unwrap();
    fs.rename("b", "c").unwrap();
    assert_eq!(fs.list().unwrap(), vec!["a", "c"]);
    assert_eq!(fs.open("b", OpenOptions::existing()).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs.open("../x", OpenOptions::create()).unwrap_err().kind(), ErrorKind::InvalidInput);
    f.set_len(3).unwrap();
    assert_eq!(f.len().unwrap(), 3);
    fs.remove("c").unwrap();
    assert_eq!(fs.list().unwrap(), vec!["a"]);
}
