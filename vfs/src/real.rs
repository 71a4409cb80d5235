//! `RealFs`: the same seam over a real directory tree on a real disk.
//!
//! Guarantees:
//! - Every call is the one syscall it names, relative to a descriptor of the root held open:
//!   `openat2(2)` (`O_SYNC` / `O_DSYNC` for a write-through handle), `pread`/`pwrite`, `fsync`,
//!   `fdatasync`, `ftruncate`, `renameat`, `unlinkat`, `mkdirat`, `linkat`, `symlinkat`,
//!   `readlinkat`; `sync_dir_at` opens the directory (`O_DIRECTORY`) and fsyncs it (the
//!   descriptor is closed after; nothing is pending on a read-only directory descriptor).
//!   Nothing is buffered in user space.
//! - Confined to the root. Paths are checked by [`check_path`] (relative, no `..`), and every
//!   lookup resolves with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: a symbolic link is followed
//!   only while it stays below the root; one pointing out (absolute, or up through `..`) fails
//!   with `EXDEV`. Where `openat2` is missing (a kernel before 5.6) or refused (a seccomp filter),
//!   each directory component is opened with `O_NOFOLLOW` instead, so no symbolic link is
//!   followed at all.
//! - Errors keep their kind and name the path (and the offset, where there is one).
#![expect(
    unsafe_code,
    reason = "the *at syscalls and openat2 through libc: this crate depends on std and libc only"
)]

use crate::seam::{
    DirEntry, EntryKind, OpenOptions, SyncMode, Vfs, VfsFile, check_dir, check_path, split_path,
};
use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A directory on the real filesystem, and everything below it.
#[derive(Debug)]
pub struct RealFs {
    dir: PathBuf,
    /// `O_PATH | O_DIRECTORY` descriptor of the root: every lookup starts here.
    root: OwnedFd,
    epoch: Instant,
}

/// An open file in a [`RealFs`].
#[derive(Debug)]
pub struct RealFile {
    file: fs::File,
    path: PathBuf,
}

fn context(err: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {what}: {err}", path.display()))
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))
}

/// The result of a libc call returning -1 on error.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

impl RealFs {
    /// Use the existing directory `dir` as the root.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<RealFs> {
        let dir = dir.into();
        let meta = fs::metadata(&dir).map_err(|e| context(e, &dir, "open directory"))?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a directory", dir.display()),
            ));
        }
        let c = CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the root path"))?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        let fd = check(unsafe { libc::open(c.as_ptr(), flags) })
            .map_err(|e| context(e, &dir, "open directory"))?;
        // SAFETY: `fd` was just returned by open(2) and is owned by nothing else.
        let root = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RealFs { dir, root, epoch: Instant::now() })
    }

    /// Create `dir` (and its parents) if needed, then use it.
    pub fn create(dir: impl Into<PathBuf>) -> io::Result<RealFs> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| context(e, &dir, "create directory"))?;
        RealFs::open(dir)
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `path` below the root, for messages.
    fn shown(&self, path: &str) -> PathBuf {
        if path.is_empty() { self.dir.clone() } else { self.dir.join(path) }
    }

    /// Open `path` (`""`: the root) relative to the root, confined beneath it.
    fn resolve(&self, path: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        let rel = if path.is_empty() { "." } else { path };
        let c = cstring(rel)?;
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        // openat2 refuses a mode without O_CREAT (EINVAL).
        how.mode = if flags & libc::O_CREAT != 0 { u64::from(mode) } else { 0 };
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: `c` and `how` outlive the call; the size passed is `how`'s.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.root.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            // SAFETY: a descriptor openat2 just returned, owned by nothing else.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let err = io::Error::last_os_error();
        // No openat2: an old kernel (ENOSYS), or a seccomp filter that refuses it (EPERM).
        if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
            return Err(err);
        }
        self.resolve_nofollow(path, flags, mode)
    }

    /// Without `openat2`: walk the directories with `O_NOFOLLOW`, then open the last component
    /// with `O_NOFOLLOW` too (no symbolic link is followed).
    fn resolve_nofollow(
        &self,
        path: &str,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> io::Result<OwnedFd> {
        let dup = |fd: RawFd| -> io::Result<OwnedFd> {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we hold.
            let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
            // SAFETY: a descriptor just made, owned by nothing else.
            Ok(unsafe { OwnedFd::from_raw_fd(new) })
        };
        let mut at = dup(self.root.as_raw_fd())?;
        if path.is_empty() {
            let c = cstring(".")?;
            // SAFETY: `c` outlives the call; `at` is a valid directory descriptor.
            let f = flags | libc::O_CLOEXEC;
            let fd = check(unsafe { libc::openat(at.as_raw_fd(), c.as_ptr(), f, mode) })?;
            // SAFETY: as above.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let parts: Vec<&str> = path.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let f = if last {
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC
            } else {
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
            };
            let c = cstring(part)?;
            // SAFETY: `c` outlives the call; `at` is a valid directory descriptor.
            let fd = check(unsafe { libc::openat(at.as_raw_fd(), c.as_ptr(), f, mode) })?;
            // SAFETY: a descriptor openat just returned.
            at = unsafe { OwnedFd::from_raw_fd(fd) };
        }
        Ok(at)
    }

    /// The parent directory of `path` (confined), and its last component.
    fn parent<'p>(&self, path: &'p str) -> io::Result<(OwnedFd, CString, &'p str)> {
        check_path(path)?;
        let (dir, name) = split_path(path);
        let fd = self.resolve(dir, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok((fd, cstring(name)?, name))
    }

    fn read_entries(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
        let fd = self.resolve(dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)?.into_raw_fd();
        // SAFETY: fdopendir takes ownership of the descriptor on success.
        let stream = unsafe { libc::fdopendir(fd) };
        if stream.is_null() {
            let err = io::Error::last_os_error();
            // SAFETY: the descriptor is still ours when fdopendir fails.
            unsafe { libc::close(fd) };
            return Err(err);
        }
        let mut out = Vec::new();
        let result = loop {
            // SAFETY: a stream fdopendir returned, not yet closed. errno is reset to tell the
            // end of the directory from an error.
            unsafe { *libc::__errno_location() = 0 };
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                let err = io::Error::last_os_error();
                break if err.raw_os_error().unwrap_or(0) == 0 { Ok(()) } else { Err(err) };
            }
            // SAFETY: readdir returned a valid entry, alive until the next readdir.
            let (name, kind) =
                unsafe { (CStr::from_ptr((*entry).d_name.as_ptr()), (*entry).d_type) };
            let name = name.to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                break Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {:?} is not UTF-8", String::from_utf8_lossy(name)),
                ));
            };
            let kind = match kind {
                libc::DT_DIR => EntryKind::Dir,
                libc::DT_LNK => EntryKind::Symlink,
                libc::DT_REG => EntryKind::File,
                _ => {
                    let full =
                        if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
                    match self.kind_of(&full) {
                        Ok(kind) => kind,
                        Err(e) => break Err(e), // the stream is closed below
                    }
                }
            };
            out.push(DirEntry { name: name.to_string(), kind });
        };
        // SAFETY: the stream is closed once, with its descriptor.
        unsafe { libc::closedir(stream) };
        result?;
        out.sort();
        Ok(out)
    }

    /// What `path` is, without following a symbolic link there.
    fn kind_of(&self, path: &str) -> io::Result<EntryKind> {
        let (dir, name, _) = self.parent(path)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` and `st` outlive the call.
        check(unsafe {
            libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
        })?;
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => EntryKind::Dir,
            libc::S_IFLNK => EntryKind::Symlink,
            _ => EntryKind::File,
        })
    }
}

impl Vfs for RealFs {
    type File = RealFile;

    fn open(&self, path: &str, options: OpenOptions) -> io::Result<RealFile> {
        let shown = self.shown(path);
        check_path(path).map_err(|e| context(e, &shown, "open"))?;
        let mut flags = libc::O_RDWR;
        flags |= match options.sync {
            SyncMode::None => 0,
            SyncMode::OSync => libc::O_SYNC,
            SyncMode::ODsync => libc::O_DSYNC,
        };
        if options.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else if options.create {
            flags |= libc::O_CREAT;
        }
        if options.truncate {
            flags |= libc::O_TRUNC;
        }
        let fd = self.resolve(path, flags, 0o644).map_err(|e| context(e, &shown, "open"))?;
        Ok(RealFile { file: fs::File::from(fd), path: shown })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let shown = self.shown(from);
        let what = format!("rename to {to}");
        let (a, na, _) = self.parent(from).map_err(|e| context(e, &shown, &what))?;
        let (b, nb, _) = self.parent(to).map_err(|e| context(e, &self.shown(to), "rename into"))?;
        // SAFETY: the names outlive the call; the descriptors are valid directories.
        check(unsafe { libc::renameat(a.as_raw_fd(), na.as_ptr(), b.as_raw_fd(), nb.as_ptr()) })
            .map(drop)
            .map_err(|e| context(e, &shown, &what))
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let shown = self.shown(path);
        let (dir, name, _) = self.parent(path).map_err(|e| context(e, &shown, "unlink"))?;
        // SAFETY: `name` outlives the call; `dir` is a valid directory descriptor.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
            .map(drop)
            .map_err(|e| context(e, &shown, "unlink"))
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        let shown = self.shown(path);
        let (dir, name, _) = self.parent(path).map_err(|e| context(e, &shown, "mkdir"))?;
        // SAFETY: `name` outlives the call; `dir` is a valid directory descriptor.
        check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) })
            .map(drop)
            .map_err(|e| context(e, &shown, "mkdir"))
    }

    fn remove_dir(&self, path: &str) -> io::Result<()> {
        let shown = self.shown(path);
        let (dir, name, _) = self.parent(path).map_err(|e| context(e, &shown, "rmdir"))?;
        // SAFETY: `name` outlives the call; `dir` is a valid directory descriptor.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
            .map(drop)
            .map_err(|e| context(e, &shown, "rmdir"))
    }

    fn read_dir(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
        let shown = self.shown(dir);
        check_dir(dir).map_err(|e| context(e, &shown, "list"))?;
        self.read_entries(dir).map_err(|e| context(e, &shown, "list"))
    }

    fn sync_dir_at(&self, dir: &str) -> io::Result<()> {
        let shown = self.shown(dir);
        check_dir(dir).map_err(|e| context(e, &shown, "open directory for fsync"))?;
        let fd = self
            .resolve(dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| context(e, &shown, "open directory for fsync"))?;
        fs::File::from(fd).sync_all().map_err(|e| context(e, &shown, "fsync directory"))
    }

    fn link(&self, existing: &str, new: &str) -> io::Result<()> {
        let shown = self.shown(existing);
        let what = format!("link to {new}");
        let (a, na, _) = self.parent(existing).map_err(|e| context(e, &shown, &what))?;
        let (b, nb, _) = self.parent(new).map_err(|e| context(e, &shown, &what))?;
        // SAFETY: the names outlive the call; the descriptors are valid directories.
        check(unsafe { libc::linkat(a.as_raw_fd(), na.as_ptr(), b.as_raw_fd(), nb.as_ptr(), 0) })
            .map(drop)
            .map_err(|e| context(e, &shown, &what))
    }

    fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        let shown = self.shown(link);
        let what = format!("symlink to {target:?}");
        if target.is_empty() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "an empty symlink target");
            return Err(context(e, &shown, &what));
        }
        let t = cstring(target).map_err(|e| context(e, &shown, &what))?;
        let (dir, name, _) = self.parent(link).map_err(|e| context(e, &shown, &what))?;
        // SAFETY: the strings outlive the call; `dir` is a valid directory descriptor.
        check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
            .map(drop)
            .map_err(|e| context(e, &shown, &what))
    }

    fn read_link(&self, link: &str) -> io::Result<String> {
        let shown = self.shown(link);
        let (dir, name, _) = self.parent(link).map_err(|e| context(e, &shown, "readlink"))?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: `name` and `buf` outlive the call; the length passed is `buf`'s.
        let n = unsafe {
            libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n < 0 {
            return Err(context(io::Error::last_os_error(), &shown, "readlink"));
        }
        buf.truncate(n as usize);
        String::from_utf8(buf).map_err(|_| {
            let e =
                io::Error::new(io::ErrorKind::InvalidData, "a symlink target that is not UTF-8");
            context(e, &shown, "readlink")
        })
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

impl VfsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file
            .read_at(buf, offset)
            .map_err(|e| context(e, &self.path, &format!("read at offset {offset}")))
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file
            .write_at(buf, offset)
            .map_err(|e| context(e, &self.path, &format!("write at offset {offset}")))
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata().map_err(|e| context(e, &self.path, "stat"))?.len())
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        self.file
            .set_len(len_bytes)
            .map_err(|e| context(e, &self.path, &format!("ftruncate to {len_bytes}")))
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all().map_err(|e| context(e, &self.path, "fsync"))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data().map_err(|e| context(e, &self.path, "fdatasync"))
    }

    fn drop_cache(&self) -> io::Result<()> {
        // SAFETY: posix_fadvise on a descriptor this file owns; it returns an errno, not -1.
        let err =
            unsafe { libc::posix_fadvise(self.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if err == 0 {
            Ok(())
        } else {
            let e = io::Error::from_raw_os_error(err);
            Err(context(e, &self.path, "posix_fadvise(DONTNEED)"))
        }
    }
}
