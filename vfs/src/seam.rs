//! The storage seam: what an engine under test may ask of a filesystem.
//!
//! Guarantees of the seam itself, for every implementation:
//! - A directory tree below one root. Paths are relative, with `/` between components, and are
//!   validated by [`check_path`]: no leading `/`, no empty, `.` or `..` component, no NUL, each
//!   component at most [`NAME_MAX_BYTES`] bytes, the whole at most [`PATH_MAX_BYTES`]. A directory
//!   argument may also be `""`, the root. Nothing escapes the root: a symbolic link is followed
//!   only while its target stays below it.
//! - A new entry (file, directory, link) is durable once its *parent* directory is synced;
//!   a rename across directories once both are. A new directory's own entry is in its parent.
//! - Every call except [`Vfs::now`] is one numbered *operation*: the unit at which a simulated power
//!   cut can be armed.
//! - Positional I/O only (`read_at` / `write_at`); there is no file cursor to forget about.
//! - Closing a file (dropping it) never syncs anything.
//! - `sync_all` is fsync (data and all metadata); `sync_data` is fdatasync (data and the size, not
//!   the modification time). Neither makes a new directory entry durable: only `sync_dir` promises
//!   that (a filesystem *may* do it anyway; see the SimFs profiles).
//! - Errors are `io::Error`s whose message names the file (and the offset, where there is one).

use std::io;
use std::time::Duration;

/// Longest accepted file name (one path component), in bytes (Linux NAME_MAX).
pub const NAME_MAX_BYTES: usize = 255;

/// Longest accepted path, in bytes (Linux PATH_MAX, less its NUL).
pub const PATH_MAX_BYTES: usize = 4095;

/// What a directory entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed by [`Vfs::read_dir`]).
    Symlink,
}

/// One entry of [`Vfs::read_dir`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirEntry {
    /// The entry's name within its directory.
    pub name: String,
    /// What it names.
    pub kind: EntryKind,
}

/// How writes through an open file reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SyncMode {
    /// Writes land in the page cache; nothing is durable until a sync call.
    #[default]
    None,
    /// `O_SYNC`: each write returns only once its data and all metadata are durable.
    OSync,
    /// `O_DSYNC`: each write returns only once its data and the file size are durable.
    ODsync,
}

/// Options for [`Vfs::open`]. Files are always opened for reading and writing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OpenOptions {
    /// Create the file if it does not exist.
    pub create: bool,
    /// Fail with `AlreadyExists` if the file exists (implies `create`).
    pub create_new: bool,
    /// Truncate the file to zero length on open.
    pub truncate: bool,
    /// Write-through mode of the handle.
    pub sync: SyncMode,
}

impl OpenOptions {
    /// Open an existing file; fail with `NotFound` otherwise.
    pub fn existing() -> Self {
        Self::default()
    }

    /// Open the file, creating it when missing.
    pub fn create() -> Self {
        Self { create: true, ..Self::default() }
    }

    /// Create a new file; fail with `AlreadyExists` when the name is taken.
    pub fn create_new() -> Self {
        Self { create: true, create_new: true, ..Self::default() }
    }

    /// Builder: truncate on open.
    pub fn truncate(mut self, truncate: bool) -> Self {
        self.truncate = truncate;
        self
    }

    /// Builder: write-through mode.
    pub fn sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }
}

/// A filesystem holding a directory tree below one root.
pub trait Vfs {
    /// An open file. Dropping it closes it; closing never syncs.
    type File: VfsFile;

    /// Open (and perhaps create or truncate) the file at `path`, following symbolic links that
    /// stay below the root. Its directory must exist.
    fn open(&self, path: &str, options: OpenOptions) -> io::Result<Self::File>;
    /// Atomically rename the file or directory `from` to `to`, replacing a file at `to` (or an
    /// empty directory, when `from` is one). Across directories too.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Remove the directory entry `path` (a file or a symbolic link; never a directory). Open
    /// handles keep working; other hard links keep the file.
    fn remove(&self, path: &str) -> io::Result<()>;
    /// Create the directory `path`; its parent must exist.
    fn create_dir(&self, path: &str) -> io::Result<()>;
    /// Remove the empty directory `path`.
    fn remove_dir(&self, path: &str) -> io::Result<()>;
    /// The entries of directory `dir` (`""`: the root), sorted bytewise by name.
    fn read_dir(&self, dir: &str) -> io::Result<Vec<DirEntry>>;
    /// fsync of directory `dir` (`""`: the root): its completed creates, renames, links and
    /// removes become durable (a rename across directories once both are synced).
    fn sync_dir_at(&self, dir: &str) -> io::Result<()>;
    /// A new name `new` for the existing file `existing` (a hard link; both names share data).
    fn link(&self, existing: &str, new: &str) -> io::Result<()>;
    /// A symbolic link at `link` whose target is `target` (relative to the link's directory;
    /// it need not exist, and is stored as given).
    fn symlink(&self, target: &str, link: &str) -> io::Result<()>;
    /// The target of the symbolic link `link`.
    fn read_link(&self, link: &str) -> io::Result<String>;
    /// Monotonic time since this Vfs was made: virtual in SimFs, a real clock in RealFs.
    /// Not an operation: reading the clock cannot be interrupted by a power cut.
    fn now(&self) -> Duration;

    /// The names of the files (not directories) in the root, sorted bytewise.
    fn list(&self) -> io::Result<Vec<String>> {
        let entries = self.read_dir("")?;
        Ok(entries.into_iter().filter(|e| e.kind != EntryKind::Dir).map(|e| e.name).collect())
    }

    /// fsync of the root directory ([`Vfs::sync_dir_at`] of `""`).
    fn sync_dir(&self) -> io::Result<()> {
        self.sync_dir_at("")
    }
}

/// An open file with positional I/O.
pub trait VfsFile {
    /// Read up to `buf.len()` bytes at `offset`; returns the count (0 at or past the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Write `buf` at `offset`; may write fewer bytes when the disk is full (a short write).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncate or extend (with zeros) to `len_bytes`.
    fn set_len(&self, len_bytes: u64) -> io::Result<()>;
    /// fsync: data, size and all other metadata durable on success.
    fn sync_all(&self) -> io::Result<()>;
    /// fdatasync: data and size durable on success; the modification time is not.
    fn sync_data(&self) -> io::Result<()>;

    /// Evict the file's clean cached pages (`posix_fadvise(POSIX_FADV_DONTNEED)`), so later reads
    /// come from the disk. After a failed fsync Linux marks the pages it could not write clean:
    /// the cache goes on serving data the disk never got, until they are evicted. A recovery
    /// that drops the cache first reads what a power cut would leave. Dirty pages stay. The
    /// default does nothing (a filesystem with no cache to drop).
    fn drop_cache(&self) -> io::Result<()> {
        Ok(())
    }

    /// Is the file empty?
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Read exactly `buf.len()` bytes at `offset`, or fail with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        // Bounded: each iteration reads at least one byte or returns.
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of {} bytes at offset {offset} hit the end of file", buf.len()),
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// Append the whole file to `out`; returns the count. One read, like `read_exact_at` over the
    /// file's length (a recovery scan reads this way).
    fn read_to_end(&self, out: &mut Vec<u8>) -> io::Result<usize> {
        let len = usize::try_from(self.len()?).map_err(|_| {
            io::Error::new(io::ErrorKind::OutOfMemory, "file larger than this address space")
        })?;
        let start = out.len();
        out.resize(start + len, 0);
        self.read_exact_at(&mut out[start..], 0)?;
        Ok(len)
    }

    /// Write all of `buf` at `offset`, or fail (a short write because the disk is full becomes
    /// `StorageFull` naming how much was written).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        // Bounded: each iteration writes at least one byte or returns.
        while done < buf.len() {
            let n = self.write_at(&buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "short write: {done} of {} bytes written at offset {offset}",
                        buf.len()
                    ),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// Check that `path` is a relative path below the root: components separated by single `/`,
/// each a valid [`check_name`]; the error names the path.
pub fn check_path(path: &str) -> io::Result<()> {
    let bad = |why: String| {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad path {path:?}: {why}")))
    };
    if path.is_empty() {
        return bad("empty".into());
    }
    if path.starts_with('/') {
        return bad("absolute (paths are relative to the root)".into());
    }
    if path.len() > PATH_MAX_BYTES {
        return bad(format!("longer than {PATH_MAX_BYTES} bytes"));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return bad("an empty component (a doubled or trailing '/')".into());
        }
        if component == ".." {
            return bad("a '..' component".into());
        }
        if let Err(e) = check_name(component) {
            return bad(format!("component {component:?}: {e}"));
        }
    }
    Ok(())
}

/// [`check_path`] for a directory argument, which may also be `""` (the root).
pub fn check_dir(dir: &str) -> io::Result<()> {
    if dir.is_empty() { Ok(()) } else { check_path(dir) }
}

/// The parent directory of a checked path (`""` for the root) and the last component.
pub fn split_path(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Check that `name` is a plain file name (one path component).
pub fn check_name(name: &str) -> io::Result<()> {
    let bad = |why: &str| {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad file name {name:?}: {why}")))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("refers to a directory");
    }
    if name.contains('/') {
        return bad("contains '/'");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    if name.len() > NAME_MAX_BYTES {
        return bad("longer than 255 bytes");
    }
    Ok(())
}
