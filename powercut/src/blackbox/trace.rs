//! A trace: what an unmodified program did to one directory tree, as logical operations in the
//! vocabulary SimFs replays (open, write at an offset, set_len, fsync, fdatasync, directory fsync,
//! rename, remove, mkdir, rmdir, link, symlink), with the program's acknowledgements in order
//! between them. Paths are relative to the traced directory, with `/` below it.
//!
//! [`Tracer`] turns strace's system calls into that: it keeps each process's descriptor table
//! (shared open-file offsets across dup, `O_APPEND`, lseek and reads moving the offset), follows
//! a file across rename and unlink by the handle it was opened as, resolves `*at` calls against
//! their directory descriptor, tells a directory's fsync from a listing of it, and reads
//! acknowledgement lines from what the program writes to its stdout.

use super::strace::{Arg, Syscall};
use faultfs::SyncMode;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// The first line of a trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version (1).
    pub powercut_trace: u32,
    /// The directory the operations are in (as traced).
    pub dir: String,
    /// The command that was traced.
    pub command: Vec<String>,
    /// The directory it ran in (absent in traces written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The acknowledgement pattern.
    pub ack: String,
    /// The command's exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// fsync / fdatasync calls strace made fail with EIO (`--fail-sync`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_sync: Option<u64>,
    /// What the trace could not see (a file mapped shared and writable, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One logical operation. `file` names an open handle (unique in the trace, unlike an fd).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TraceOp {
    /// A file that was in the directory tree, durable, before the program started.
    Initial {
        /// Its path in the directory.
        name: String,
        /// Its contents, up to `len` if that is given.
        data: Hex,
        /// Its length, when it runs on past `data` in zeros (a preallocated or sparse file, as
        /// many engines keep their logs): the zeros are not written out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        len: Option<u64>,
    },
    /// A subdirectory that was there, durable, before the program started.
    InitialDir {
        /// Its path in the directory.
        name: String,
    },
    /// A symbolic link that was there, durable, before the program started.
    InitialSymlink {
        /// Its path in the directory.
        name: String,
        /// Its target, as stored.
        target: String,
    },
    /// A file in the directory opened (`open`, `openat`, `creat`; `truncate` by name opens a
    /// handle of its own).
    Open {
        /// The new handle.
        file: u32,
        /// The file's path in the directory.
        name: String,
        /// `O_CREAT`: create the file if it does not exist.
        create: bool,
        /// `O_EXCL`: fail if the file exists.
        excl: bool,
        /// `O_TRUNC`: cut the file to 0 bytes.
        truncate: bool,
        /// The write-through mode asked for: `O_SYNC`, else `O_DSYNC`, else none.
        sync: Sync,
    },
    /// Bytes written at an offset (any write, pwrite or writev; the zeros of a hole punched or a
    /// range zeroed by fallocate).
    Write {
        /// The handle written through.
        file: u32,
        /// Where the write starts, in bytes from the start of the file.
        offset: u64,
        /// The bytes that were written (as many as the call returned).
        data: Hex,
    },
    /// The file's length set (ftruncate, truncate, or fallocate growing the file).
    SetLen {
        /// The handle whose file changes.
        file: u32,
        /// The new length, in bytes.
        len: u64,
    },
    /// fsync of a file that succeeded.
    Fsync {
        /// The handle synced.
        file: u32,
    },
    /// fdatasync of a file that succeeded.
    Fdatasync {
        /// The handle synced.
        file: u32,
    },
    /// An fsync (or fdatasync) that returned EIO; `file: null` is a directory's (`dir`).
    SyncFailed {
        /// The handle synced, or `None` for a directory.
        file: Option<u32>,
        /// The directory, when `file` is `None` (`""`: the traced directory itself).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        dir: String,
    },
    /// fsync of a directory: the traced one (`dir` empty or absent) or a subdirectory.
    SyncDir {
        /// The directory's path (`""`: the traced directory itself).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        dir: String,
    },
    /// A listing of a directory (`getdents`): recorded to tell it from a directory fsync;
    /// replayed as nothing (it changes nothing a crash could lose).
    List {
        /// The directory's path (`""`: the traced directory itself).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        dir: String,
    },
    /// A rename within the tree, of a file or a directory (a rename out of it removes what
    /// moved: [`TraceOp::Remove`] and [`TraceOp::Rmdir`]).
    Rename {
        /// The old path.
        from: String,
        /// The new path (a file already there is replaced).
        to: String,
    },
    /// A name removed (unlink of a file or a symbolic link, or a rename out of the tree).
    Remove {
        /// The path removed.
        name: String,
    },
    /// A subdirectory created.
    Mkdir {
        /// Its path.
        name: String,
    },
    /// A subdirectory removed (it is empty).
    Rmdir {
        /// Its path.
        name: String,
    },
    /// A hard link made within the tree.
    Link {
        /// The existing path.
        from: String,
        /// The new path.
        to: String,
    },
    /// A symbolic link made within the tree.
    Symlink {
        /// Its target, as given (not resolved).
        target: String,
        /// The link's path.
        name: String,
    },
    /// The last descriptor of a handle closed.
    Close {
        /// The handle closed.
        file: u32,
    },
    /// The program acknowledged something: the text after the acknowledgement marker.
    Ack {
        /// The rest of the stdout line after the match, without its newline.
        text: String,
    },
}

/// A handle's write-through mode, as in the trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// Neither `O_SYNC` nor `O_DSYNC`: writes stay in the page cache until synced.
    None,
    /// `O_SYNC`: every write is synced, data and metadata, before it returns.
    OSync,
    /// `O_DSYNC`: every write's data (and the metadata needed to read it back) is synced before
    /// it returns.
    ODsync,
}

impl From<Sync> for SyncMode {
    fn from(s: Sync) -> SyncMode {
        match s {
            Sync::None => SyncMode::None,
            Sync::OSync => SyncMode::OSync,
            Sync::ODsync => SyncMode::ODsync,
        }
    }
}

/// How much of `data` an `initial` operation writes out, and the length to give it: a run of
/// zeros at the end of 4 KiB or more is left to `len`.
fn without_zero_tail(data: &[u8]) -> (usize, Option<u64>) {
    let kept = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if data.len() - kept >= 4096 { (kept, Some(data.len() as u64)) } else { (data.len(), None) }
}

/// Bytes, written as lowercase hex in the trace file.
#[derive(Clone, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 15)] as char);
        }
        s.serialize_str(&out)
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hex, D::Error> {
        let text = String::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(serde::de::Error::custom(format!("bad hex digit {:?}", c as char))),
        };
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("hex data of odd length"));
        }
        let b = text.as_bytes();
        (0..b.len() / 2)
            .map(|i| Ok(digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?))
            .collect::<Result<_, _>>()
            .map(Hex)
    }
}

/// A whole trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Where, what and how it was recorded.
    pub header: Header,
    /// The operations and acknowledgements, in the order the program made them.
    pub ops: Vec<TraceOp>,
}

impl Trace {
    /// The trace file: the header, then one operation per line (JSON).
    pub fn to_text(&self) -> String {
        let mut out = serde_json::to_string(&self.header).unwrap_or_default();
        out.push('\n');
        for op in &self.ops {
            out.push_str(&serde_json::to_string(op).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// Read a trace file; an error names the file, the line and what is wrong there.
    pub fn load(path: &Path) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, first) =
            lines.next().ok_or_else(|| format!("{}: empty trace file", path.display()))?;
        let header: Header = serde_json::from_str(first)
            .map_err(|e| format!("{}:1: not a powercut trace header: {e}", path.display()))?;
        if header.powercut_trace != 1 {
            return Err(format!(
                "{}:1: trace format {} (this powercut reads 1)",
                path.display(),
                header.powercut_trace
            ));
        }
        let ops = lines
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
            })
            .collect::<Result<Vec<TraceOp>, String>>()?;
        Ok(Trace { header, ops })
    }
}

/// Where a path is, seen from the traced directory.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    /// The directory itself.
    Dir,
    /// A path below it (`a`, or `a/b/c`).
    Path(String),
    Outside,
}

#[derive(Clone, Debug)]
enum Target {
    File {
        handle: u32,
        ino: usize,
    },
    /// A directory of the tree: its path (`""`: the traced directory).
    Dir(String),
    Outside,
}

/// What the traced directory held before the program started: files (path, bytes), directories
/// and symbolic links (path, target). All of it is durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Regular files and their contents.
    pub files: Vec<(String, Vec<u8>)>,
    /// Subdirectories, parents before children.
    pub dirs: Vec<String>,
    /// Symbolic links and their targets.
    pub links: Vec<(String, String)>,
}

impl From<Vec<(String, Vec<u8>)>> for Snapshot {
    fn from(files: Vec<(String, Vec<u8>)>) -> Snapshot {
        Snapshot { files, ..Snapshot::default() }
    }
}

#[derive(Debug)]
struct Desc {
    target: Target,
    offset: u64,
    append: bool,
}

type Table = BTreeMap<i64, Rc<RefCell<Desc>>>;

/// An open file in the directory: its description, handle and inode.
type OpenFile = (Rc<RefCell<Desc>>, u32, usize);

/// Turns system calls into trace operations.
#[derive(Debug)]
pub struct Tracer {
    dir: PathBuf,
    /// The working directory the program started in, and each process's since (a process
    /// inherits its parent's; `chdir` changes its own).
    cwd: PathBuf,
    cwds: BTreeMap<u32, PathBuf>,
    /// Processes that have ended (a child can end before its parent's clone returns).
    exited: BTreeSet<u32>,
    ack: Regex,
    tables: Vec<Table>,
    table_of: BTreeMap<u32, usize>,
    names: BTreeMap<String, usize>,
    /// The subdirectories, by path.
    dirs: BTreeSet<String>,
    /// The symbolic links, by path.
    links: BTreeSet<String>,
    sizes: Vec<u64>,
    next_handle: u32,
    stdout: Vec<u8>,
    /// The operations so far.
    pub ops: Vec<TraceOp>,
    /// What the trace cannot see, once per file.
    pub warnings: Vec<String>,
}

fn has_flag(flags: &str, flag: &str) -> bool {
    flags.split('|').any(|f| f.trim() == flag)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Tracer {
    /// A tracer for `dir` (absolute, canonical), the program starting in `cwd`, holding
    /// `initial` at the start, acknowledgements matching `ack`.
    pub fn new(dir: PathBuf, cwd: PathBuf, ack: Regex, initial: impl Into<Snapshot>) -> Tracer {
        let initial: Snapshot = initial.into();
        let mut t = Tracer {
            dir,
            cwd,
            cwds: BTreeMap::new(),
            exited: BTreeSet::new(),
            ack,
            tables: vec![Table::new()],
            table_of: BTreeMap::new(),
            names: BTreeMap::new(),
            dirs: BTreeSet::new(),
            links: BTreeSet::new(),
            sizes: Vec::new(),
            next_handle: 0,
            stdout: Vec::new(),
            ops: Vec::new(),
            warnings: Vec::new(),
        };
        for name in initial.dirs {
            t.dirs.insert(name.clone());
            t.ops.push(TraceOp::InitialDir { name });
        }
        for (name, target) in initial.links {
            t.links.insert(name.clone());
            t.ops.push(TraceOp::InitialSymlink { name, target });
        }
        for (name, mut data) in initial.files {
            t.names.insert(name.clone(), t.sizes.len());
            t.sizes.push(data.len() as u64);
            let (kept, len) = without_zero_tail(&data);
            data.truncate(kept);
            t.ops.push(TraceOp::Initial { name, data: Hex(data), len });
        }
        t
    }

    fn table(&mut self, pid: u32) -> &mut Table {
        // A process first seen before its parent's clone returned shares the first table until
        // that return says otherwise.
        let id = *self.table_of.entry(pid).or_insert(0);
        &mut self.tables[id]
    }

    fn cwd_of(&self, pid: u32) -> &PathBuf {
        self.cwds.get(&pid).unwrap_or(&self.cwd)
    }

    fn place(&self, pid: u32, base: Option<&[u8]>, path: &[u8]) -> Place {
        let path = Path::new(std::str::from_utf8(path).unwrap_or("\u{fffd}"));
        let full = if path.is_absolute() {
            normalize(path)
        } else {
            let base = base
                .and_then(|b| std::str::from_utf8(b).ok())
                .map_or_else(|| self.cwd_of(pid).clone(), PathBuf::from);
            normalize(&base.join(path))
        };
        match full.strip_prefix(&self.dir) {
            Ok(rest) if rest.as_os_str().is_empty() => Place::Dir,
            Ok(rest) => Place::Path(rest.to_string_lossy().into_owned()),
            Err(_) => Place::Outside,
        }
    }

    /// The base directory of an `*at` call's dirfd argument (`AT_FDCWD<cwd>` or `N<dir>`).
    fn at_base(arg: Option<&Arg>) -> Option<Vec<u8>> {
        arg.and_then(Arg::path).map(<[u8]>::to_vec)
    }

    fn desc(&mut self, pid: u32, fd: Option<i64>) -> Option<Rc<RefCell<Desc>>> {
        let fd = fd?;
        self.table(pid).get(&fd).cloned()
    }

    fn file_of(&mut self, call: &Syscall) -> Result<Option<OpenFile>, String> {
        let fd = call.args.first().and_then(Arg::int);
        match self.desc(call.pid, fd) {
            Some(d) => {
                let target = d.borrow().target.clone();
                Ok(match target {
                    Target::File { handle, ino } => Some((d, handle, ino)),
                    _ => None,
                })
            }
            None => {
                // An fd from before the trace: fine unless it is a file in the directory.
                if let Some(p) = call.args.first().and_then(Arg::path) {
                    if let Place::Path(n) = self.place(call.pid, None, p) {
                        return Err(format!(
                            "strace line {}: {}() on fd {} ({n} in the directory), opened before the trace began",
                            call.line,
                            call.name,
                            fd.unwrap_or(-1)
                        ));
                    }
                }
                Ok(None)
            }
        }
    }

    fn name_arg(&self, call: &Syscall, base: Option<Vec<u8>>, i: usize) -> Result<Place, String> {
        match call.args.get(i) {
            Some(Arg::Bytes(p)) => Ok(self.place(call.pid, base.as_deref(), p)),
            _ => Err(format!(
                "strace line {}: {}(): argument {} is not a path",
                call.line,
                call.name,
                i + 1
            )),
        }
    }

    fn write(&mut self, call: &Syscall, data: Vec<u8>, at: Option<u64>) -> Result<(), String> {
        let fd = call.args.first().and_then(Arg::int);
        match self.file_of(call)? {
            Some((d, handle, ino)) => {
                let mut d = d.borrow_mut();
                let offset = if d.append { self.sizes[ino] } else { at.unwrap_or(d.offset) };
                let end = offset + data.len() as u64;
                if at.is_none() || d.append {
                    d.offset = end;
                }
                self.sizes[ino] = self.sizes[ino].max(end);
                self.ops.push(TraceOp::Write { file: handle, offset, data: Hex(data) });
            }
            None if fd == Some(1) => self.stdout_bytes(&data),
            None => {}
        }
        Ok(())
    }

    fn stdout_bytes(&mut self, data: &[u8]) {
        self.stdout.extend_from_slice(data);
        while let Some(nl) = self.stdout.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.stdout.drain(..=nl).collect();
            self.ack_line(&String::from_utf8_lossy(&line[..nl]));
        }
    }

    fn ack_line(&mut self, line: &str) {
        if let Some(m) = self.ack.find(line) {
            self.ops.push(TraceOp::Ack { text: line[m.end()..].to_string() });
        }
    }

    /// The program ended: a last stdout line without a newline still counts.
    pub fn finish(&mut self) {
        if !self.stdout.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.stdout)).into_owned();
            self.ack_line(&line);
        }
    }

    fn open(&mut self, call: &Syscall, place: Place, flags: &str) -> Result<(), String> {
        let target = match place {
            Place::Dir => Target::Dir(String::new()),
            Place::Outside => Target::Outside,
            Place::Path(p) if has_flag(flags, "O_DIRECTORY") || self.dirs.contains(&p) => {
                Target::Dir(p)
            }
            Place::Path(name) if has_flag(flags, "O_PATH") => {
                let _ = name;
                Target::Outside
            }
            Place::Path(name) => {
                let create = has_flag(flags, "O_CREAT");
                let truncate = has_flag(flags, "O_TRUNC");
                let ino = match self.names.get(&name) {
                    Some(i) => *i,
                    None => {
                        self.names.insert(name.clone(), self.sizes.len());
                        self.sizes.push(0);
                        self.sizes.len() - 1
                    }
                };
                if truncate {
                    self.sizes[ino] = 0;
                }
                let sync = if has_flag(flags, "O_SYNC") {
                    Sync::OSync
                } else if has_flag(flags, "O_DSYNC") {
                    Sync::ODsync
                } else {
                    Sync::None
                };
                let handle = self.next_handle;
                self.next_handle += 1;
                let excl = has_flag(flags, "O_EXCL");
                self.ops.push(TraceOp::Open { file: handle, name, create, excl, truncate, sync });
                Target::File { handle, ino }
            }
        };
        let append = has_flag(flags, "O_APPEND");
        let desc = Rc::new(RefCell::new(Desc { target, offset: 0, append }));
        self.table(call.pid).insert(call.ret, desc);
        Ok(())
    }

    /// Process `pid` ended: unless another live process shares its descriptor table, every
    /// descriptor in it is closed (in fd order), and a handle whose last descriptor that was is
    /// closed too.
    fn exit(&mut self, pid: u32) {
        self.exited.insert(pid);
        let Some(id) = self.table_of.remove(&pid) else {
            // Never seen before its end: it held the first table's descriptors only if it is
            // the program itself; a process we never saw open anything has nothing to close.
            return;
        };
        if self.table_of.values().any(|&t| t == id) {
            return;
        }
        let table = std::mem::take(&mut self.tables[id]);
        for (_, d) in table {
            if Rc::strong_count(&d) == 1 {
                if let Target::File { handle, .. } = d.borrow().target {
                    self.ops.push(TraceOp::Close { file: handle });
                }
            }
        }
    }

    fn close_fd(&mut self, pid: u32, fd: i64) {
        if let Some(d) = self.table(pid).remove(&fd) {
            if Rc::strong_count(&d) == 1 {
                if let Target::File { handle, .. } = d.borrow().target {
                    self.ops.push(TraceOp::Close { file: handle });
                }
            }
        }
    }

    /// The paths at or below `path` in `set`.
    fn at_or_below<T: Clone>(set: &BTreeMap<String, T>, path: &str) -> Vec<(String, T)> {
        let prefix = format!("{path}/");
        set.iter()
            .filter(|(k, _)| *k == path || k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Move everything the tracer knows at or below `from` to `to`.
    fn move_paths(&mut self, from: &str, to: &str) {
        let moved = |p: &str| format!("{to}{}", &p[from.len()..]);
        for (p, ino) in Self::at_or_below(&self.names, from) {
            self.names.remove(&p);
            self.names.insert(moved(&p), ino);
        }
        for set in [&mut self.dirs, &mut self.links] {
            let map: BTreeMap<String, ()> = set.iter().map(|p| (p.clone(), ())).collect();
            for (p, ()) in Self::at_or_below(&map, from) {
                set.remove(&p);
                set.insert(moved(&p));
            }
        }
    }

    /// Everything at or below `path` left the tree: removes for its files and links, rmdirs for
    /// its directories, deepest first.
    fn leave(&mut self, path: &str) {
        let files: Vec<String> =
            Self::at_or_below(&self.names, path).into_iter().map(|(p, _)| p).collect();
        let set = |s: &BTreeSet<String>| -> Vec<String> {
            let map: BTreeMap<String, ()> = s.iter().map(|p| (p.clone(), ())).collect();
            Self::at_or_below(&map, path).into_iter().map(|(p, ())| p).collect()
        };
        let (links, mut dirs) = (set(&self.links), set(&self.dirs));
        for name in files.into_iter().chain(links) {
            self.names.remove(&name);
            self.links.remove(&name);
            self.ops.push(TraceOp::Remove { name });
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        for name in dirs {
            self.dirs.remove(&name);
            self.ops.push(TraceOp::Rmdir { name });
        }
    }

    fn rename(&mut self, call: &Syscall, from: Place, to: Place) -> Result<(), String> {
        match (from, to) {
            (Place::Path(from), Place::Path(to)) => {
                self.names.remove(&to);
                self.links.remove(&to);
                self.move_paths(&from, &to);
                self.ops.push(TraceOp::Rename { from, to });
            }
            (Place::Path(from), Place::Outside) => self.leave(&from),
            (Place::Outside, Place::Path(to)) => {
                return Err(format!(
                    "strace line {}: {}() moves a file from outside into the directory as {to}: its contents are not in the trace",
                    call.line, call.name
                ));
            }
            (Place::Dir, _) | (_, Place::Dir) => {
                return Err(format!(
                    "strace line {}: {}() renames the traced directory itself: not modelled",
                    call.line, call.name
                ));
            }
            (Place::Outside, Place::Outside) => {}
        }
        Ok(())
    }

    fn remove(&mut self, place: Place, dir: bool) {
        match place {
            Place::Path(name) if dir => {
                self.dirs.remove(&name);
                self.ops.push(TraceOp::Rmdir { name });
            }
            Place::Path(name) => {
                self.names.remove(&name);
                self.links.remove(&name);
                self.ops.push(TraceOp::Remove { name });
            }
            _ => {}
        }
    }

    /// Take one completed system call.
    pub fn call(&mut self, call: &Syscall) -> Result<(), String> {
        let ok = call.ret >= 0 && call.errno.is_none();
        let fd = call.args.first().and_then(Arg::int);
        let int = |i: usize| call.args.get(i).and_then(Arg::int).map(|v| v.max(0) as u64);
        match call.name.as_str() {
            "fsync" | "fdatasync" if !ok && call.errno.as_deref() == Some("EIO") => {
                let file = self.file_of(call)?.map(|(_, h, _)| h);
                let dir = self.desc(call.pid, fd).and_then(|d| match &d.borrow().target {
                    Target::Dir(p) => Some(p.clone()),
                    _ => None,
                });
                if file.is_some() {
                    self.ops.push(TraceOp::SyncFailed { file, dir: String::new() });
                } else if let Some(dir) = dir {
                    self.ops.push(TraceOp::SyncFailed { file: None, dir });
                }
            }
            _ if !ok => {}
            "open" | "creat" => {
                let place = self.name_arg(call, None, 0)?;
                let flags = if call.name == "creat" {
                    "O_CREAT|O_WRONLY|O_TRUNC"
                } else {
                    call.args.get(1).map_or("", Arg::text)
                };
                self.open(call, place, flags)?;
            }
            "openat" => {
                let place = self.name_arg(call, Self::at_base(call.args.first()), 1)?;
                let flags = call.args.get(2).map_or("", Arg::text).to_string();
                self.open(call, place, &flags)?;
            }
            "write" => {
                let data = bytes(call, 1)?;
                self.write(call, data, None)?;
            }
            "pwrite64" => {
                let data = bytes(call, 1)?;
                self.write(call, data, int(3))?;
            }
            "writev" | "pwritev" | "pwritev2" => {
                let mut data: Vec<u8> = match call.args.get(1) {
                    Some(Arg::Nested { strings, .. }) => strings.concat(),
                    _ => {
                        return Err(format!(
                            "strace line {}: {}(): no iovec",
                            call.line, call.name
                        ));
                    }
                };
                data.truncate(call.ret as usize);
                let at = if call.name == "writev" { None } else { int(3) };
                self.write(call, data, at)?;
            }
            "lseek" => {
                if let Some(d) = self.desc(call.pid, fd) {
                    d.borrow_mut().offset = call.ret as u64;
                }
            }
            "read" | "readv" => {
                if let Some(d) = self.desc(call.pid, fd) {
                    d.borrow_mut().offset += call.ret as u64;
                }
            }
            "ftruncate" => {
                if let Some((_, handle, ino)) = self.file_of(call)? {
                    let len = int(1).unwrap_or(0);
                    self.sizes[ino] = len;
                    self.ops.push(TraceOp::SetLen { file: handle, len });
                }
            }
            "truncate" => match self.name_arg(call, None, 0)? {
                Place::Path(name) if !self.dirs.contains(&name) => {
                    let len = int(1).unwrap_or(0);
                    let handle = self.next_handle;
                    self.next_handle += 1;
                    if let Some(ino) = self.names.get(&name) {
                        self.sizes[*ino] = len;
                    }
                    self.ops.push(TraceOp::Open {
                        file: handle,
                        name,
                        create: false,
                        excl: false,
                        truncate: false,
                        sync: Sync::None,
                    });
                    self.ops.push(TraceOp::SetLen { file: handle, len });
                    self.ops.push(TraceOp::Close { file: handle });
                }
                _ => {}
            },
            "fallocate" => {
                if let Some((_, handle, ino)) = self.file_of(call)? {
                    let mode = call.args.get(1).map_or("", Arg::text).to_string();
                    let (off, len) = (int(2).unwrap_or(0), int(3).unwrap_or(0));
                    if has_flag(&mode, "FALLOC_FL_PUNCH_HOLE")
                        || has_flag(&mode, "FALLOC_FL_ZERO_RANGE")
                    {
                        let end = if has_flag(&mode, "FALLOC_FL_KEEP_SIZE") {
                            (off + len).min(self.sizes[ino])
                        } else {
                            off + len
                        };
                        if end > off {
                            self.sizes[ino] = self.sizes[ino].max(end);
                            let data = Hex(vec![0; (end - off) as usize]);
                            self.ops.push(TraceOp::Write { file: handle, offset: off, data });
                        }
                    } else if !has_flag(&mode, "FALLOC_FL_KEEP_SIZE") && off + len > self.sizes[ino]
                    {
                        self.sizes[ino] = off + len;
                        self.ops.push(TraceOp::SetLen { file: handle, len: off + len });
                    }
                }
            }
            "fsync" | "fdatasync" => match self.desc(call.pid, fd) {
                Some(d) => {
                    let op = match &d.borrow().target {
                        Target::File { handle, .. } if call.name == "fsync" => {
                            Some(TraceOp::Fsync { file: *handle })
                        }
                        Target::File { handle, .. } => Some(TraceOp::Fdatasync { file: *handle }),
                        // Where the directory is now (strace's `-y` path), if it moved since.
                        Target::Dir(dir) => {
                            let now = call
                                .args
                                .first()
                                .and_then(Arg::path)
                                .map(|p| self.place(call.pid, None, p));
                            let dir = match now {
                                Some(Place::Path(p)) => p,
                                Some(Place::Dir) => String::new(),
                                _ => dir.clone(),
                            };
                            Some(TraceOp::SyncDir { dir })
                        }
                        Target::Outside => None,
                    };
                    self.ops.extend(op);
                }
                None => {
                    self.file_of(call)?;
                }
            },
            "rename" => {
                let (from, to) = (self.name_arg(call, None, 0)?, self.name_arg(call, None, 1)?);
                self.rename(call, from, to)?;
            }
            "renameat" | "renameat2" => {
                let from = self.name_arg(call, Self::at_base(call.args.first()), 1)?;
                let to = self.name_arg(call, Self::at_base(call.args.get(2)), 3)?;
                if call.args.get(4).is_some_and(|f| has_flag(f.text(), "RENAME_EXCHANGE")) {
                    return Err(format!(
                        "strace line {}: renameat2(RENAME_EXCHANGE) is not modelled",
                        call.line
                    ));
                }
                self.rename(call, from, to)?;
            }
            "unlink" => {
                let place = self.name_arg(call, None, 0)?;
                self.remove(place, false);
            }
            "rmdir" => {
                let place = self.name_arg(call, None, 0)?;
                self.remove(place, true);
            }
            "unlinkat" => {
                let place = self.name_arg(call, Self::at_base(call.args.first()), 1)?;
                let dir = call.args.get(2).is_some_and(|f| has_flag(f.text(), "AT_REMOVEDIR"));
                self.remove(place, dir);
            }
            "mkdir" | "mkdirat" => {
                let place = if call.name == "mkdir" {
                    self.name_arg(call, None, 0)?
                } else {
                    self.name_arg(call, Self::at_base(call.args.first()), 1)?
                };
                if let Place::Path(name) = place {
                    self.dirs.insert(name.clone());
                    self.ops.push(TraceOp::Mkdir { name });
                }
            }
            "symlink" | "symlinkat" => {
                let target = match call.args.first() {
                    Some(Arg::Bytes(t)) => String::from_utf8_lossy(t).into_owned(),
                    _ => {
                        return Err(format!(
                            "strace line {}: {}(): the target is not a string",
                            call.line, call.name
                        ));
                    }
                };
                let place = if call.name == "symlink" {
                    self.name_arg(call, None, 1)?
                } else {
                    self.name_arg(call, Self::at_base(call.args.get(1)), 2)?
                };
                if let Place::Path(name) = place {
                    self.links.insert(name.clone());
                    self.ops.push(TraceOp::Symlink { target, name });
                }
            }
            "getdents64" | "getdents" => {
                if let Some(d) = self.desc(call.pid, fd) {
                    if let Target::Dir(dir) = &d.borrow().target {
                        // One listing, however many calls it takes to read.
                        let dir = dir.clone();
                        if call.ret > 0
                            && self.ops.last() != Some(&TraceOp::List { dir: dir.clone() })
                        {
                            self.ops.push(TraceOp::List { dir });
                        }
                    }
                }
            }
            "link" | "linkat" => {
                let (from, to) = if call.name == "link" {
                    (self.name_arg(call, None, 0)?, self.name_arg(call, None, 1)?)
                } else {
                    (
                        self.name_arg(call, Self::at_base(call.args.first()), 1)?,
                        self.name_arg(call, Self::at_base(call.args.get(2)), 3)?,
                    )
                };
                match (from, to) {
                    (Place::Path(from), Place::Path(to)) => {
                        if let Some(ino) = self.names.get(&from).copied() {
                            self.names.insert(to.clone(), ino);
                        }
                        self.ops.push(TraceOp::Link { from, to });
                    }
                    (Place::Outside, Place::Path(to)) => {
                        return Err(format!(
                            "strace line {}: {}() links a file from outside into the directory as {to}: its contents are not in the trace",
                            call.line, call.name
                        ));
                    }
                    _ => {}
                }
            }
            "close" => {
                if let Some(fd) = fd {
                    self.close_fd(call.pid, fd);
                }
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                if call.name == "fcntl"
                    && !matches!(
                        call.args.get(1).map(Arg::text),
                        Some("F_DUPFD" | "F_DUPFD_CLOEXEC")
                    )
                {
                    return Ok(());
                }
                // dup2/dup3 close the target first, whatever the source is: a shell restoring
                // its stdout after `echo ... >> file` dup2s an fd the trace never saw onto 1.
                if call.name != "dup" && call.name != "fcntl" && fd != Some(call.ret) {
                    self.close_fd(call.pid, call.ret);
                }
                if let Some(d) = self.desc(call.pid, fd) {
                    self.table(call.pid).insert(call.ret, d);
                }
            }
            "mmap" => {
                let (prot, flags) = (
                    call.args.get(2).map_or("", Arg::text),
                    call.args.get(3).map_or("", Arg::text),
                );
                if has_flag(prot, "PROT_WRITE") && has_flag(flags, "MAP_SHARED") {
                    if let Some(Place::Path(name)) =
                        call.args.get(4).and_then(Arg::path).map(|p| self.place(call.pid, None, p))
                    {
                        let warning = format!(
                            "{name} is mapped shared and writable (strace line {}): writes through the mapping are not in the trace",
                            call.line
                        );
                        if !self
                            .warnings
                            .iter()
                            .any(|w| w.starts_with(&format!("{name} is mapped")))
                        {
                            self.warnings.push(warning);
                        }
                    }
                }
            }
            "copy_file_range" | "sendfile" | "splice" => {
                let out = if call.name == "sendfile" { 0 } else { 2 };
                let into = call
                    .args
                    .get(out)
                    .and_then(Arg::int)
                    .and_then(|fd| self.desc(call.pid, Some(fd)));
                if into.is_some_and(|d| matches!(d.borrow().target, Target::File { .. }))
                    && call.ret > 0
                {
                    return Err(format!(
                        "strace line {}: {}() writes into a file in the directory: the bytes are not in the trace, so this is not modelled",
                        call.line, call.name
                    ));
                }
            }
            "sync" | "syncfs" => {
                // Replaying it as nothing would judge states a real kernel could not leave.
                return Err(format!(
                    "strace line {}: {}(): a filesystem-wide sync is not modelled (explore would judge states as if it had not happened)",
                    call.line, call.name
                ));
            }
            "exit" => self.exit(call.pid),
            "chdir" => {
                if let Some(Arg::Bytes(p)) = call.args.first() {
                    let p = PathBuf::from(String::from_utf8_lossy(p).into_owned());
                    let cwd = normalize(&self.cwd_of(call.pid).join(p));
                    self.cwds.insert(call.pid, cwd);
                }
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                let child = call.ret as u32;
                if self.exited.contains(&child) {
                    // It has come and gone already, holding (at most) the first table.
                    return Ok(());
                }
                let shares = call.args.iter().any(|a| a.text().contains("CLONE_FILES"));
                let parent = {
                    self.table(call.pid);
                    self.table_of[&call.pid]
                };
                let id = if shares {
                    parent
                } else {
                    self.tables.push(self.tables[parent].clone());
                    self.tables.len() - 1
                };
                self.table_of.insert(child, id);
                let cwd = self.cwd_of(call.pid).clone();
                self.cwds.insert(child, cwd);
            }
            _ => {}
        }
        Ok(())
    }
}

fn bytes(call: &Syscall, i: usize) -> Result<Vec<u8>, String> {
    match call.args.get(i) {
        Some(Arg::Bytes(b)) => Ok(b[..(call.ret.max(0) as usize).min(b.len())].to_vec()),
        _ => Err(format!(
            "strace line {}: {}(): argument {} is not a string",
            call.line,
            call.name,
            i + 1
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blackbox::strace::Reader;
    use crate::blackbox::strace::tests::hex;

    #[test]
    fn only_a_zero_tail_of_a_page_or_more_is_left_to_len() {
        let mut preallocated = b"log".to_vec();
        preallocated.resize(1 << 20, 0);
        assert_eq!(without_zero_tail(&preallocated), (3, Some(1 << 20)));
        assert_eq!(without_zero_tail(&[0; 8192]), (0, Some(8192)));
        assert_eq!(without_zero_tail(b"ab\0\0"), (4, None));
        assert_eq!(without_zero_tail(b""), (0, None));
    }

    fn run(lines: &[String], initial: Vec<(String, Vec<u8>)>) -> Result<Vec<TraceOp>, String> {
        let mut reader = Reader::default();
        let mut t = Tracer::new("/d".into(), "/w".into(), Regex::new("^ACK ").unwrap(), initial);
        for (i, l) in lines.iter().enumerate() {
            if let Some(call) = reader.line(i + 1, l)? {
                t.call(&call)?;
            }
        }
        t.finish();
        Ok(t.ops)
    }

    #[test]
    fn follows_offsets_dup_append_rename_and_acks() {
        let (d, log, new) = (hex("/d"), hex("/d/log"), hex("/d/new"));
        let lines = vec![
            format!(
                "1 openat(AT_FDCWD<{}>, \"{}\", O_RDWR|O_CREAT|O_APPEND, 0644) = 3<{log}>",
                hex("/w"),
                hex("../d/log")
            ),
            format!("1 write(3<{log}>, \"{}\", 3) = 2", hex("abc")),
            format!("1 fcntl(3<{log}>, F_DUPFD_CLOEXEC, 0) = 4<{log}>"),
            format!("1 rename(\"{log}\", \"{new}\") = 0"),
            format!("1 write(4<{new}>, \"{}\", 2) = 2", hex("de")),
            format!("1 openat(AT_FDCWD<{}>, \"{d}\", O_RDONLY|O_DIRECTORY) = 5<{d}>", hex("/w")),
            format!("1 fsync(5<{d}>) = 0"),
            format!("1 getdents64(5<{d}>, 0x1 /* 2 entries */, 32768) = 48"),
            format!("1 write(1<{}>, \"{}\", 6) = 6", hex("pipe:[1]"), hex("ACK {\"")),
            format!("1 write(1<{}>, \"{}\", 9) = 9", hex("pipe:[1]"), hex("a\": \"b\"}\n")),
            format!("1 fdatasync(4<{new}>) = -1 EIO (Input/output error)"),
            format!("1 close(3<{new}>) = 0"),
            format!("1 close(4<{new}>) = 0"),
            format!("1 unlink(\"{}\") = 0", hex("/d/old")),
        ];
        let ops = run(&lines, vec![("old".into(), b"x".to_vec())]).unwrap();
        let file = 0;
        assert_eq!(
            ops,
            vec![
                TraceOp::Initial { name: "old".into(), data: Hex(b"x".to_vec()), len: None },
                TraceOp::Open {
                    file,
                    name: "log".into(),
                    create: true,
                    excl: false,
                    truncate: false,
                    sync: Sync::None
                },
                TraceOp::Write { file, offset: 0, data: Hex(b"ab".to_vec()) },
                TraceOp::Rename { from: "log".into(), to: "new".into() },
                TraceOp::Write { file, offset: 2, data: Hex(b"de".to_vec()) },
                TraceOp::SyncDir { dir: String::new() },
                TraceOp::List { dir: String::new() },
                TraceOp::Ack { text: "{\"a\": \"b\"}".into() },
                TraceOp::SyncFailed { file: Some(file), dir: String::new() },
                TraceOp::Close { file },
                TraceOp::Remove { name: "old".into() },
            ]
        );
    }

    /// What strace cannot show is said: a shared writable mapping is a warning, bytes copied in
    /// the kernel into a file of the directory an error.
    #[test]
    fn unseen_writes_are_warned_about_or_refused() {
        let shm = hex("/d/db-shm");
        let open = format!(
            "1 openat(AT_FDCWD<{}>, \"{shm}\", O_RDWR|O_CREAT, 0644) = 5<{shm}>",
            hex("/w")
        );
        let map =
            format!("1 mmap(NULL, 32768, PROT_READ|PROT_WRITE, MAP_SHARED, 5<{shm}>, 0) = 0x7f00");
        let mut reader = Reader::default();
        let mut t = Tracer::new("/d".into(), "/w".into(), Regex::new("^ACK ").unwrap(), vec![]);
        for (i, l) in [open.clone(), map.clone(), map].iter().enumerate() {
            let call = reader.line(i + 1, l).unwrap().unwrap();
            t.call(&call).unwrap();
        }
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("db-shm") && t.warnings[0].contains("line 2"));
        let copy = format!("1 copy_file_range(7, NULL, 5<{shm}>, NULL, 100, 0) = 100");
        let err = run(&[open, copy], vec![]).unwrap_err();
        assert!(err.contains("strace line 2") && err.contains("copy_file_range"), "{err}");
    }

    /// A process that ends closes what it held: a child that writes a file and exits without a
    /// close (a shell's `echo x > f`) closes its handle, so the replay sees the close.
    #[test]
    fn a_process_that_ends_closes_its_descriptors() {
        let f = hex("/d/f");
        let lines = vec![
            "1 clone(child_stack=NULL, flags=SIGCHLD) = 2".to_string(),
            format!(
                "2 openat(AT_FDCWD<{}>, \"{f}\", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3<{f}>",
                hex("/w")
            ),
            format!("2 write(3<{f}>, \"{}\", 1) = 1", hex("x")),
            "2 +++ exited with 0 +++".to_string(),
            "1 +++ exited with 0 +++".to_string(),
        ];
        let ops = run(&lines, vec![]).unwrap();
        assert_eq!(ops.last(), Some(&TraceOp::Close { file: 0 }), "{ops:?}");
        assert_eq!(ops.iter().filter(|o| matches!(o, TraceOp::Close { .. })).count(), 1);
    }

    /// A filesystem-wide sync is refused, naming the line: replayed as nothing it would make
    /// false failures.
    #[test]
    fn a_filesystem_wide_sync_is_refused() {
        let err = run(&["1 sync() = 0".to_string()], vec![]).unwrap_err();
        assert!(err.contains("strace line 1") && err.contains("sync()"), "{err}");
    }

    /// A tree: mkdir, a file opened relative to a directory descriptor, that directory's fsync
    /// (not its listing), a symbolic link, a hard link, a rename across directories, a rename
    /// of a directory, and a directory moved out of the tree (its contents leave with it).
    #[test]
    fn trees_are_traced_with_paths_below_the_directory() {
        let (w, d) = (hex("/w"), hex("/d"));
        let (sub, f) = (hex("/d/sub"), hex("/d/sub/f"));
        let lines = vec![
            format!("1 mkdir(\"{sub}\", 0777) = 0"),
            format!("1 openat(AT_FDCWD<{w}>, \"{sub}\", O_RDONLY|O_DIRECTORY) = 3<{sub}>"),
            format!("1 openat(3<{sub}>, \"{}\", O_WRONLY|O_CREAT, 0644) = 4<{f}>", hex("f")),
            format!("1 write(4<{f}>, \"{}\", 2) = 2", hex("hi")),
            format!("1 getdents64(3<{sub}>, 0x1 /* 3 entries */, 32768) = 72"),
            format!("1 getdents64(3<{sub}>, 0x1 /* 0 entries */, 32768) = 0"),
            format!("1 fsync(3<{sub}>) = 0"),
            format!("1 symlinkat(\"{}\", 3<{sub}>, \"{}\") = 0", hex("f"), hex("ln")),
            format!(
                "1 linkat(3<{sub}>, \"{}\", AT_FDCWD<{w}>, \"{}\", 0) = 0",
                hex("f"),
                hex("/d/g")
            ),
            format!(
                "1 renameat2(AT_FDCWD<{w}>, \"{}\", 3<{sub}>, \"{}\", 0) = 0",
                hex("/d/g"),
                hex("g2")
            ),
            format!("1 rename(\"{sub}\", \"{}\") = 0", hex("/d/sub2")),
            format!("1 write(4<{}>, \"{}\", 1) = 1", hex("/d/sub2/f"), hex("!")),
            format!("1 rename(\"{}\", \"{}\") = 0", hex("/d/sub2"), hex("/trash")),
            format!("1 fsync(5<{d}>) = 0"),
        ];
        let ops = run(&lines, vec![]).unwrap();
        let s = |x: &str| x.to_string();
        assert_eq!(
            ops,
            vec![
                TraceOp::Mkdir { name: s("sub") },
                TraceOp::Open {
                    file: 0,
                    name: s("sub/f"),
                    create: true,
                    excl: false,
                    truncate: false,
                    sync: Sync::None
                },
                TraceOp::Write { file: 0, offset: 0, data: Hex(b"hi".to_vec()) },
                TraceOp::List { dir: s("sub") },
                TraceOp::SyncDir { dir: s("sub") },
                TraceOp::Symlink { target: s("f"), name: s("sub/ln") },
                TraceOp::Link { from: s("sub/f"), to: s("g") },
                TraceOp::Rename { from: s("g"), to: s("sub/g2") },
                TraceOp::Rename { from: s("sub"), to: s("sub2") },
                TraceOp::Write { file: 0, offset: 2, data: Hex(b"!".to_vec()) },
                TraceOp::Remove { name: s("sub2/f") },
                TraceOp::Remove { name: s("sub2/g2") },
                TraceOp::Remove { name: s("sub2/ln") },
                TraceOp::Rmdir { name: s("sub2") },
            ]
        );
    }
}
