//! A trace: what an unmodified program did to one directory, as logical operations in the
//! vocabulary SimFs replays (open, write at an offset, set_len, fsync, fdatasync, directory fsync,
//! rename, remove), with the program's acknowledgements in order between them.
//!
//! [`Tracer`] turns strace's system calls into that: it keeps each process's descriptor table
//! (shared open-file offsets across dup, `O_APPEND`, lseek and reads moving the offset), follows
//! a file across rename and unlink by the handle it was opened as, tells the directory's own fsync
//! from a listing, and reads acknowledgement lines from what the program writes to its stdout.

use super::strace::{Arg, Syscall};
use faultfs::SyncMode;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
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
    /// A file that was in the directory, durable, before the program started.
    Initial {
        /// Its name in the directory.
        name: String,
        /// Its contents.
        data: Hex,
    },
    /// A file in the directory opened (`open`, `openat`, `creat`; `truncate` by name opens a
    /// handle of its own).
    Open {
        /// The new handle.
        file: u32,
        /// The file's name in the directory.
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
    /// An fsync (or fdatasync) that returned EIO; `file: null` is the directory's.
    SyncFailed {
        /// The handle synced, or `None` for the directory itself.
        file: Option<u32>,
    },
    /// fsync of the directory itself.
    SyncDir,
    /// A rename within the directory (a rename out of it is a [`TraceOp::Remove`]).
    Rename {
        /// The old name.
        from: String,
        /// The new name (a file already there is replaced).
        to: String,
    },
    /// A file's name removed (unlink, or a rename out of the directory).
    Remove {
        /// The name removed.
        name: String,
    },
    /// A subdirectory created (recorded, not replayed: SimFs is one flat directory).
    Mkdir {
        /// The subdirectory's name.
        name: String,
    },
    /// A subdirectory removed (recorded, not replayed).
    Rmdir {
        /// The subdirectory's name.
        name: String,
    },
    /// A hard link made within the directory (replaying a trace with one is an error).
    Link {
        /// The existing name.
        from: String,
        /// The new name.
        to: String,
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
    /// A name directly in it.
    Name(String),
    /// Somewhere below a subdirectory of it (not modelled).
    Below(String),
    Outside,
}

#[derive(Clone, Debug)]
enum Target {
    File { handle: u32, ino: usize },
    Dir,
    Outside,
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
    cwd: PathBuf,
    ack: Regex,
    tables: Vec<Table>,
    table_of: BTreeMap<u32, usize>,
    names: BTreeMap<String, usize>,
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
    /// A tracer for `dir` (absolute, canonical), the program starting in `cwd`, holding the
    /// files `initial` (name, bytes) at the start, acknowledgements matching `ack`.
    pub fn new(dir: PathBuf, cwd: PathBuf, ack: Regex, initial: Vec<(String, Vec<u8>)>) -> Tracer {
        let mut t = Tracer {
            dir,
            cwd,
            ack,
            tables: vec![Table::new()],
            table_of: BTreeMap::new(),
            names: BTreeMap::new(),
            sizes: Vec::new(),
            next_handle: 0,
            stdout: Vec::new(),
            ops: Vec::new(),
            warnings: Vec::new(),
        };
        for (name, data) in initial {
            t.names.insert(name.clone(), t.sizes.len());
            t.sizes.push(data.len() as u64);
            t.ops.push(TraceOp::Initial { name, data: Hex(data) });
        }
        t
    }

    fn table(&mut self, pid: u32) -> &mut Table {
        // A process first seen before its parent's clone returned shares the first table until
        // that return says otherwise.
        let id = *self.table_of.entry(pid).or_insert(0);
        &mut self.tables[id]
    }

    fn place(&self, base: Option<&[u8]>, path: &[u8]) -> Place {
        let path = Path::new(std::str::from_utf8(path).unwrap_or("\u{fffd}"));
        let full = if path.is_absolute() {
            normalize(path)
        } else {
            let base = base
                .and_then(|b| std::str::from_utf8(b).ok())
                .map_or(self.cwd.clone(), PathBuf::from);
            normalize(&base.join(path))
        };
        match full.strip_prefix(&self.dir) {
            Ok(rest) if rest.as_os_str().is_empty() => Place::Dir,
            Ok(rest) if rest.components().count() == 1 => {
                Place::Name(rest.to_string_lossy().into_owned())
            }
            Ok(rest) => Place::Below(rest.to_string_lossy().into_owned()),
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
                    if let Place::Name(n) = self.place(None, p) {
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

    fn below(call: &Syscall, rest: &str) -> String {
        format!(
            "strace line {}: {}() on {rest}: files below a subdirectory of the traced directory are not modelled (SimFs is one flat directory)",
            call.line, call.name
        )
    }

    fn name_arg(&self, call: &Syscall, base: Option<Vec<u8>>, i: usize) -> Result<Place, String> {
        match call.args.get(i) {
            Some(Arg::Bytes(p)) => Ok(self.place(base.as_deref(), p)),
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
            Place::Dir => Target::Dir,
            Place::Outside => Target::Outside,
            Place::Below(rest) => {
                if has_flag(flags, "O_DIRECTORY") {
                    Target::Outside
                } else {
                    return Err(Self::below(call, &rest));
                }
            }
            Place::Name(_) if has_flag(flags, "O_DIRECTORY") => Target::Outside,
            Place::Name(name) => {
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

    fn close_fd(&mut self, pid: u32, fd: i64) {
        if let Some(d) = self.table(pid).remove(&fd) {
            if Rc::strong_count(&d) == 1 {
                if let Target::File { handle, .. } = d.borrow().target {
                    self.ops.push(TraceOp::Close { file: handle });
                }
            }
        }
    }

    fn rename(&mut self, call: &Syscall, from: Place, to: Place) -> Result<(), String> {
        match (from, to) {
            (Place::Name(from), Place::Name(to)) => {
                if let Some(ino) = self.names.remove(&from) {
                    self.names.insert(to.clone(), ino);
                }
                self.ops.push(TraceOp::Rename { from, to });
            }
            (Place::Name(from), Place::Outside) => {
                self.names.remove(&from);
                self.ops.push(TraceOp::Remove { name: from });
            }
            (Place::Outside, Place::Name(to)) => {
                return Err(format!(
                    "strace line {}: {}() moves a file from outside into the directory as {to}: its contents are not in the trace",
                    call.line, call.name
                ));
            }
            (Place::Below(r), _) | (_, Place::Below(r)) => return Err(Self::below(call, &r)),
            _ => {}
        }
        Ok(())
    }

    fn remove(&mut self, call: &Syscall, place: Place, dir: bool) -> Result<(), String> {
        match place {
            Place::Name(name) if dir => self.ops.push(TraceOp::Rmdir { name }),
            Place::Name(name) => {
                self.names.remove(&name);
                self.ops.push(TraceOp::Remove { name });
            }
            Place::Below(r) => return Err(Self::below(call, &r)),
            _ => {}
        }
        Ok(())
    }

    /// Take one completed system call.
    pub fn call(&mut self, call: &Syscall) -> Result<(), String> {
        let ok = call.ret >= 0 && call.errno.is_none();
        let fd = call.args.first().and_then(Arg::int);
        let int = |i: usize| call.args.get(i).and_then(Arg::int).map(|v| v.max(0) as u64);
        match call.name.as_str() {
            "fsync" | "fdatasync" if !ok && call.errno.as_deref() == Some("EIO") => {
                let file = self.file_of(call)?.map(|(_, h, _)| h);
                let is_dir = self
                    .desc(call.pid, fd)
                    .is_some_and(|d| matches!(d.borrow().target, Target::Dir));
                if file.is_some() || is_dir {
                    self.ops.push(TraceOp::SyncFailed { file });
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
                Place::Name(name) => {
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
                Place::Below(r) => return Err(Self::below(call, &r)),
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
                    let op = match d.borrow().target {
                        Target::File { handle, .. } if call.name == "fsync" => {
                            Some(TraceOp::Fsync { file: handle })
                        }
                        Target::File { handle, .. } => Some(TraceOp::Fdatasync { file: handle }),
                        Target::Dir => Some(TraceOp::SyncDir),
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
                self.remove(call, place, false)?;
            }
            "rmdir" => {
                let place = self.name_arg(call, None, 0)?;
                self.remove(call, place, true)?;
            }
            "unlinkat" => {
                let place = self.name_arg(call, Self::at_base(call.args.first()), 1)?;
                let dir = call.args.get(2).is_some_and(|f| has_flag(f.text(), "AT_REMOVEDIR"));
                self.remove(call, place, dir)?;
            }
            "mkdir" | "mkdirat" => {
                let place = if call.name == "mkdir" {
                    self.name_arg(call, None, 0)?
                } else {
                    self.name_arg(call, Self::at_base(call.args.first()), 1)?
                };
                match place {
                    Place::Name(name) => self.ops.push(TraceOp::Mkdir { name }),
                    Place::Below(r) => return Err(Self::below(call, &r)),
                    _ => {}
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
                if let (Place::Name(from), Place::Name(to)) = (from, to) {
                    self.ops.push(TraceOp::Link { from, to });
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
                if let Some(d) = self.desc(call.pid, fd) {
                    if call.name != "dup" && call.name != "fcntl" {
                        self.close_fd(call.pid, call.ret);
                    }
                    self.table(call.pid).insert(call.ret, d);
                }
            }
            "mmap" => {
                let (prot, flags) = (
                    call.args.get(2).map_or("", Arg::text),
                    call.args.get(3).map_or("", Arg::text),
                );
                if has_flag(prot, "PROT_WRITE") && has_flag(flags, "MAP_SHARED") {
                    if let Some(Place::Name(name)) =
                        call.args.get(4).and_then(Arg::path).map(|p| self.place(None, p))
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
            "chdir" => {
                if let Some(Arg::Bytes(p)) = call.args.first() {
                    let p = PathBuf::from(String::from_utf8_lossy(p).into_owned());
                    self.cwd = normalize(&self.cwd.join(p));
                }
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                let child = call.ret as u32;
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
                TraceOp::Initial { name: "old".into(), data: Hex(b"x".to_vec()) },
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
                TraceOp::SyncDir,
                TraceOp::Ack { text: "{\"a\": \"b\"}".into() },
                TraceOp::SyncFailed { file: Some(file) },
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

    #[test]
    fn files_below_a_subdirectory_are_refused_by_line() {
        let line = format!(
            "1 openat(AT_FDCWD<{}>, \"{}\", O_RDWR|O_CREAT, 0644) = 3",
            hex("/w"),
            hex("/d/sub/f")
        );
        let err = run(&[line], vec![]).unwrap_err();
        assert!(err.contains("strace line 1") && err.contains("sub/f"), "{err}");
    }
}
