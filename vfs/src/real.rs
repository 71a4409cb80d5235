//! `RealFs`: the same seam over a real directory on a real disk.
//!
//! Guarantees: every call is the one syscall it names — `open(2)` with `O_SYNC` / `O_DSYNC` for a
//! write-through handle, `pread`/`pwrite`, `fsync`, `fdatasync`, `ftruncate`, `rename`, `unlink`,
//! and for `sync_dir` an `open(O_DIRECTORY)` of the directory followed by `fsync` of it (the
//! descriptor is closed after; `std` ignores an error from that close, as nothing is pending on a
//! read-only directory descriptor). Nothing is
//! buffered in user space. Names are checked by [`check_name`], so nothing escapes the directory.
//! Errors keep their kind and name the path (and the offset, where there is one).

use crate::seam::{OpenOptions, SyncMode, Vfs, VfsFile, check_name};
use std::fs;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A directory on the real filesystem.
#[derive(Debug)]
pub struct RealFs {
    dir: PathBuf,
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

impl RealFs {
    /// Use the existing directory `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<RealFs> {
        let dir = dir.into();
        let meta = fs::metadata(&dir).map_err(|e| context(e, &dir, "open directory"))?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a directory", dir.display()),
            ));
        }
        Ok(RealFs { dir, epoch: Instant::now() })
    }

    /// Create `dir` (and its parents) if needed, then use it.
    pub fn create(dir: impl Into<PathBuf>) -> io::Result<RealFs> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| context(e, &dir, "create directory"))?;
        RealFs::open(dir)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

impl Vfs for RealFs {
    type File = RealFile;

    fn open(&self, name: &str, options: OpenOptions) -> io::Result<RealFile> {
        let path = self.path(name)?;
        let flags = match options.sync {
            SyncMode::None => 0,
            SyncMode::OSync => libc::O_SYNC,
            SyncMode::ODsync => libc::O_DSYNC,
        };
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(options.create && !options.create_new)
            .create_new(options.create_new)
            .truncate(options.truncate)
            .custom_flags(flags | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| context(e, &path, "open"))?;
        Ok(RealFile { file, path })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (a, b) = (self.path(from)?, self.path(to)?);
        fs::rename(&a, &b).map_err(|e| context(e, &a, &format!("rename to {to}")))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let path = self.path(name)?;
        fs::remove_file(&path).map_err(|e| context(e, &path, "unlink"))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| context(e, &self.dir, "list"))? {
            let entry = entry.map_err(|e| context(e, &self.dir, "list"))?;
            if entry.file_type().map_err(|e| context(e, &entry.path(), "stat"))?.is_dir() {
                continue;
            }
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(raw) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: file name {raw:?} is not UTF-8", self.dir.display()),
                    ));
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self) -> io::Result<()> {
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.dir)
            .map_err(|e| context(e, &self.dir, "open directory for fsync"))?;
        dir.sync_all().map_err(|e| context(e, &self.dir, "fsync directory"))
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
}
