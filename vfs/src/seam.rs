//! The storage seam: what an engine under test may ask of a filesystem.
//!
//! Guarantees of the seam itself, for every implementation:
//! - One flat directory. Names are validated by [`check_name`]: no `/`, no NUL, not empty, not `.`
//!   or `..`, at most [`NAME_MAX_BYTES`] bytes. Nothing can escape the directory.
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

/// Longest accepted file name, in bytes (Linux NAME_MAX).
pub const NAME_MAX_BYTES: usize = 255;

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

/// A filesystem holding one flat directory.
pub trait Vfs {
    /// An open file. Dropping it closes it; closing never syncs.
    type File: VfsFile;

    /// Open (and perhaps create or truncate) `name`.
    fn open(&self, name: &str, options: OpenOptions) -> io::Result<Self::File>;
    /// Atomically rename `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Remove the directory entry `name`. Open handles keep working.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// The names in the directory, sorted bytewise.
    fn list(&self) -> io::Result<Vec<String>>;
    /// fsync of the directory: every completed create, rename and remove becomes durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Monotonic time since this Vfs was made: virtual in SimFs, a real clock in RealFs.
    /// Not an operation: reading the clock cannot be interrupted by a power cut.
    fn now(&self) -> Duration;
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

/// Check that `name` is a plain file name inside the one directory.
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
