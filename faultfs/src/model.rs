//! The state a simulated disk and page cache hold, and the transitions on it. No randomness, no
//! clock, no faults here: those are decided in `sim` and `crash`, and applied through these.
//!
//! Per inode: the *durable image* (what the platter holds), the *cached image* (what reads
//! return), and the ordered list of unsynced data operations (write, set_len) whose application to
//! the durable image would give the cached one — except after a `linux` fsync EIO, which drops
//! pending operations without applying them (the pages were marked clean but never written).
//!
//! For the one directory: durable entries, visible entries, and the ordered list of unsynced entry
//! operations (create, rename, remove) whose application to the durable entries gives the visible.

use crate::blob::Blob;
use crate::names::{self, Entries, Found, Key, Kind, ROOT, kind_of};
use powercut_vfs::check_path;
use std::collections::BTreeSet;
use std::io;
use std::rc::Rc;
use std::time::Duration;

pub(crate) type Ino = u32;

#[derive(Clone, Debug)]
pub(crate) enum DataOp {
    /// `len_before` is the cached length just before the write: the write grows the file when
    /// `offset + data.len() > len_before`.
    Write {
        offset: u64,
        data: Rc<[u8]>,
        len_before: u64,
    },
    SetLen {
        len: u64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Pending {
    /// The operation number that issued it.
    pub seq: u64,
    pub op: DataOp,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Inode {
    /// A file, a directory, or a symbolic link (fixed at creation).
    pub kind: Kind,
    pub durable: Blob,
    pub cached: Blob,
    pub pending: Vec<Pending>,
    pub durable_mtime: Duration,
    pub cached_mtime: Duration,
    /// When the inode first became dirty (for the writeback expiry).
    pub dirty_since: Option<Duration>,
    /// Leading pending operations writeback has written, durable at the next journal commit.
    pub written: usize,
    /// Bytes of pending writes writeback has not written yet.
    pub unwritten_bytes: u64,
    /// Write errors recorded on the file (errseq): a descriptor reports each once.
    pub err_seq: u32,
    /// The latest error has not been reported through any descriptor yet.
    pub err_unseen: bool,
    /// Pages (by index) whose dirty data a `linux` error dropped: the cache still holds it, and
    /// the next write to the page makes the whole page dirty again.
    pub dropped_pages: BTreeSet<u64>,
    /// `sticky` EIO: every later sync of this inode fails.
    pub sticky_eio: bool,
    pub open_handles: u32,
    /// Truncated to zero since its last close (ext4's `EXT4_STATE_DA_ALLOC_CLOSE`).
    pub truncated_to_zero: bool,
    /// (truncate's seq, the last operation before a close): a close after a truncate to zero
    /// flushed the data written between them, so while that truncate is pending, it commits
    /// only with that data (`auto_da_alloc`).
    pub close_flushes: Vec<(u64, u64)>,
    /// Byte offsets of sectors (by the profile's sector size) with latent read errors.
    pub latent_sectors: BTreeSet<u64>,
}

/// An operation on directory entries. Each carries the path it was issued with, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DirOp {
    /// A new file, directory or symbolic link (its inode's kind says which).
    Create {
        at: Key,
        ino: Ino,
        path: Rc<str>,
    },
    /// A hard link: another name for an existing file.
    Link {
        at: Key,
        ino: Ino,
        path: Rc<str>,
    },
    Rename {
        from: Key,
        to: Key,
        ino: Ino,
        paths: (Rc<str>, Rc<str>),
    },
    /// An unlink, or an rmdir.
    Remove {
        at: Key,
        ino: Ino,
        path: Rc<str>,
    },
}

impl DirOp {
    pub(crate) fn ino(&self) -> Ino {
        match self {
            DirOp::Create { ino, .. }
            | DirOp::Link { ino, .. }
            | DirOp::Rename { ino, .. }
            | DirOp::Remove { ino, .. } => *ino,
        }
    }

    /// The directories whose entries it changes (one, or two for a rename across directories).
    pub(crate) fn dirs(&self) -> Vec<Ino> {
        match self {
            DirOp::Create { at, .. } | DirOp::Link { at, .. } | DirOp::Remove { at, .. } => {
                vec![at.0]
            }
            DirOp::Rename { from, to, .. } if from.0 == to.0 => vec![from.0],
            DirOp::Rename { from, to, .. } => vec![from.0, to.0],
        }
    }

    /// Apply to a set of entries. A rename sets the new name and drops the old one only if it still
    /// names the same inode: the result always has the old name or the new, never neither.
    pub(crate) fn apply(&self, entries: &mut Entries) {
        match self {
            DirOp::Create { at, ino, .. } | DirOp::Link { at, ino, .. } => {
                entries.insert(at.clone(), *ino);
            }
            DirOp::Rename { from, to, ino, .. } => {
                if entries.get(from) == Some(ino) {
                    entries.remove(from);
                }
                entries.insert(to.clone(), *ino);
            }
            DirOp::Remove { at, ino, .. } => {
                if entries.get(at) == Some(ino) {
                    entries.remove(at);
                }
            }
        }
    }
}

/// How a directory operation reads in a message (`create`, `mkdir` and `symlink` by the kind of
/// what it made, `rmdir` for a directory's removal).
pub(crate) fn describe_dir_op(op: &DirOp, inodes: &[Inode]) -> String {
    let kind = kind_of(inodes, op.ino());
    match op {
        DirOp::Create { path, .. } => match kind {
            Kind::Dir => format!("mkdir {path}"),
            Kind::Symlink(target) => format!("symlink {path} -> {target}"),
            Kind::File => format!("create {path}"),
        },
        DirOp::Link { path, ino, .. } => format!("link {path} (inode {ino})"),
        DirOp::Rename { paths: (from, to), .. } => format!("rename {from} -> {to}"),
        DirOp::Remove { path, .. } if *kind == Kind::Dir => format!("rmdir {path}"),
        DirOp::Remove { path, .. } => format!("remove {path}"),
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PendingDir {
    pub seq: u64,
    pub op: DirOp,
    /// Directories among `op.dirs()` synced since it was issued (it is durable once all are).
    pub synced: Vec<Ino>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    /// Indexed by `Ino`; inodes are never reused.
    pub inodes: Vec<Inode>,
    pub durable_dir: Entries,
    pub visible_dir: Entries,
    pub pending_dir: Vec<PendingDir>,
    /// Bytes of pending writes writeback has not written yet, over every inode.
    pub dirty_bytes: u64,
    /// The page size (for re-dirtying whole pages).
    pub page_bytes: u64,
}

impl Model {
    pub(crate) fn inode(&self, ino: Ino) -> &Inode {
        &self.inodes[ino as usize]
    }

    pub(crate) fn inode_mut(&mut self, ino: Ino) -> &mut Inode {
        &mut self.inodes[ino as usize]
    }

    /// The inode `path` names in the visible namespace, following symbolic links.
    pub(crate) fn lookup(&self, path: &str) -> Option<Ino> {
        self.resolve(path, true).ok()?.ino.filter(|&ino| ino != ROOT)
    }

    /// Resolve `path` in the visible namespace.
    pub(crate) fn resolve(&self, path: &str, follow_last: bool) -> io::Result<Found> {
        names::resolve(&self.visible_dir, &self.inodes, path, follow_last)
    }

    pub(crate) fn kind(&self, ino: Ino) -> &Kind {
        kind_of(&self.inodes, ino)
    }

    /// A visible path of `ino`, if it has one (for messages).
    pub(crate) fn name_of(&self, ino: Ino) -> Option<Rc<str>> {
        names::path_of(&self.visible_dir, &self.inodes, ino).map(Rc::from)
    }

    /// A new inode of `kind` at `at` (issued as `path`).
    pub(crate) fn create(
        &mut self,
        at: Key,
        path: Rc<str>,
        kind: Kind,
        seq: u64,
        now: Duration,
    ) -> Ino {
        let ino = Ino::try_from(self.inodes.len()).expect("inode numbers exhausted");
        assert!(ino != ROOT, "inode numbers exhausted");
        let inode = Inode { kind, durable_mtime: now, cached_mtime: now, ..Inode::default() };
        self.inodes.push(inode);
        self.dir_op(DirOp::Create { at, ino, path }, seq);
        ino
    }

    /// Is directory `dir` `ancestor` or below it (in the visible namespace)?
    pub(crate) fn is_within(&self, dir: Ino, ancestor: Ino) -> bool {
        // A crash state can leave a directory two names (even a cycle): walk each once.
        let mut seen = BTreeSet::new();
        let mut stack = vec![ancestor];
        while let Some(d) = stack.pop() {
            if d == dir {
                return true;
            }
            if !seen.insert(d) {
                continue;
            }
            let sub = names::children(&self.visible_dir, d).map(|(_, i)| i);
            stack.extend(sub.filter(|&i| *self.kind(i) == Kind::Dir));
        }
        false
    }

    /// Would `op` succeed on the visible namespace? The checks SimFs makes before it runs an
    /// operation, and the error it returns; an operation in flight at a crash point changes the
    /// crash state only if they pass (see [`Model::apply_unsynced`]).
    pub(crate) fn check(&self, op: &Op) -> io::Result<()> {
        let fail = |kind: io::ErrorKind, path: &str, what: &str| {
            Err(io::Error::new(kind, format!("{path}: {what}")))
        };
        let is_dir = |ino: Ino| *self.kind(ino) == Kind::Dir;
        let empty = |ino: Ino| names::children(&self.visible_dir, ino).next().is_none();
        // The existing entry `path` names (a symbolic link at its end not followed).
        let existing = |path: &str| -> io::Result<Ino> {
            check_path(path)?;
            let ino = self.resolve(path, false)?.ino.filter(|&i| i != ROOT);
            ino.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
            })
        };
        // Where a new entry `path` goes: its directory must exist and the name be free.
        let free = |path: &str| -> io::Result<()> {
            check_path(path)?;
            match self.resolve(path, false)?.ino {
                Some(_) => fail(io::ErrorKind::AlreadyExists, path, "file exists"),
                None => Ok(()),
            }
        };
        match op {
            Op::Open { name, create, .. } => {
                check_path(name)?;
                match self.resolve(name, true)?.ino {
                    Some(ino) if is_dir(ino) => {
                        fail(io::ErrorKind::IsADirectory, name, "is a directory")
                    }
                    None if !create => fail(io::ErrorKind::NotFound, name, "no such file"),
                    _ => Ok(()),
                }
            }
            Op::Rename { from, to } => {
                let ino = existing(from)?;
                check_path(to)?;
                let target = self.resolve(to, false)?;
                match target.ino {
                    Some(t) if t == ino => return Ok(()),
                    Some(t) if is_dir(ino) && !is_dir(t) => {
                        let what = format!("not a directory (renaming directory {from} over it)");
                        return fail(io::ErrorKind::NotADirectory, to, &what);
                    }
                    Some(t) if !is_dir(ino) && is_dir(t) => {
                        let what = format!("is a directory (renaming file {from} over it)");
                        return fail(io::ErrorKind::IsADirectory, to, &what);
                    }
                    Some(t) if !empty(t) => {
                        return fail(io::ErrorKind::DirectoryNotEmpty, to, "directory not empty");
                    }
                    _ => {}
                }
                if is_dir(ino) && self.is_within(target.dir, ino) {
                    let what = format!("a directory cannot move below itself ({from})");
                    return fail(io::ErrorKind::InvalidInput, to, &what);
                }
                Ok(())
            }
            Op::Remove { name } => match existing(name)? {
                ino if is_dir(ino) => fail(
                    io::ErrorKind::IsADirectory,
                    name,
                    "is a directory (remove_dir removes one)",
                ),
                _ => Ok(()),
            },
            Op::RemoveDir { path } => match existing(path)? {
                ino if !is_dir(ino) => fail(io::ErrorKind::NotADirectory, path, "not a directory"),
                ino if !empty(ino) => {
                    fail(io::ErrorKind::DirectoryNotEmpty, path, "directory not empty")
                }
                _ => Ok(()),
            },
            Op::CreateDir { path } => free(path),
            Op::Symlink { target, path } => {
                if target.is_empty() || target.contains('\0') {
                    return fail(
                        io::ErrorKind::InvalidInput,
                        path,
                        &format!("bad symlink target {target:?}"),
                    );
                }
                free(path)
            }
            Op::Link { from, to } => {
                if is_dir(existing(from)?) {
                    let what = "a directory cannot be hard-linked (EPERM)";
                    return fail(io::ErrorKind::PermissionDenied, from, what);
                }
                free(to)
            }
            Op::Write { .. } | Op::SetLen { .. } | Op::NoEffect => Ok(()),
        }
    }

    pub(crate) fn dir_op(&mut self, op: DirOp, seq: u64) {
        op.apply(&mut self.visible_dir);
        self.pending_dir.push(PendingDir { seq, op, synced: Vec::new() });
    }

    pub(crate) fn write(&mut self, ino: Ino, offset: u64, data: Rc<[u8]>, seq: u64, now: Duration) {
        let page = self.page_bytes.max(1);
        let inode = self.inode_mut(ino);
        let len_before = inode.cached.len();
        // A page whose dirty data an error dropped is dirty again, whole, as the cache holds it.
        let end = offset + data.len() as u64;
        let pages: Vec<u64> =
            inode.dropped_pages.range(offset / page..end.div_ceil(page)).copied().collect();
        let mut bytes = data.len() as u64;
        for p in pages {
            inode.dropped_pages.remove(&p);
            let from = p * page;
            let to = (from + page).min(len_before);
            if from < to {
                let mut whole = vec![0u8; (to - from) as usize];
                inode.cached.read(&mut whole, from);
                let op = DataOp::Write { offset: from, data: Rc::from(whole), len_before };
                inode.pending.push(Pending { seq, op });
                bytes += to - from;
            }
        }
        inode.cached.write(&data, offset);
        inode.pending.push(Pending { seq, op: DataOp::Write { offset, data, len_before } });
        inode.unwritten_bytes += bytes;
        Self::touch(inode, now);
        self.dirty_bytes += bytes;
    }

    pub(crate) fn set_len(&mut self, ino: Ino, len: u64, seq: u64, now: Duration) {
        let inode = self.inode_mut(ino);
        inode.cached.set_len(len);
        inode.truncated_to_zero |= len == 0;
        inode.pending.push(Pending { seq, op: DataOp::SetLen { len } });
        Self::touch(inode, now);
    }

    fn touch(inode: &mut Inode, now: Duration) {
        inode.cached_mtime = now;
        inode.dirty_since.get_or_insert(now);
    }

    /// Make every pending data operation of `ino` durable; with `metadata`, the mtime too.
    pub(crate) fn flush_inode(&mut self, ino: Ino, metadata: bool) {
        let inode = self.inode_mut(ino);
        // Drained, not taken: the list keeps its capacity for the next writes.
        for p in inode.pending.drain(..) {
            apply_data_op(&mut inode.durable, &p.op);
        }
        if metadata {
            inode.durable_mtime = inode.cached_mtime;
        }
        self.forget_dirt(ino);
        // Durable and cached may still differ: a `linux` EIO dropped operations the cache kept.
    }

    /// A flush of `ino` in which pending operation `index` (a write) lands at `target` instead
    /// of its offset. Returns the durable bytes the write overwrote there.
    pub(crate) fn flush_misdirected(&mut self, ino: Ino, index: usize, target: u64) -> Vec<u8> {
        let inode = self.inode_mut(ino);
        let mut overwritten = Vec::new();
        for (i, p) in inode.pending.drain(..).enumerate() {
            match &p.op {
                DataOp::Write { data, .. } if i == index => {
                    overwritten = vec![0u8; data.len()];
                    let n = inode.durable.read(&mut overwritten, target);
                    overwritten.truncate(n);
                    inode.durable.write(data, target);
                }
                op => apply_data_op(&mut inode.durable, op),
            }
        }
        inode.durable_mtime = inode.cached_mtime;
        self.forget_dirt(ino);
        overwritten
    }

    /// The inode has nothing left for writeback to write.
    fn forget_dirt(&mut self, ino: Ino) {
        let inode = self.inode_mut(ino);
        let bytes = std::mem::take(&mut inode.unwritten_bytes);
        inode.dirty_since = None;
        inode.written = 0;
        self.dirty_bytes -= bytes;
    }

    /// `linux` EIO: the first `persisted` pending operations had reached the disk before the
    /// error; the rest are marked clean without reaching it (their pages remembered as dropped).
    pub(crate) fn drop_pending(&mut self, ino: Ino, persisted: usize) {
        let page = self.page_bytes.max(1);
        let inode = self.inode_mut(ino);
        let persisted = persisted.min(inode.pending.len());
        for p in inode.pending.drain(..persisted) {
            apply_data_op(&mut inode.durable, &p.op);
        }
        for p in inode.pending.drain(..) {
            remember_dropped(&mut inode.dropped_pages, &p.op, page);
        }
        self.forget_dirt(ino);
    }

    /// `posix_fadvise(DONTNEED)` of `ino`: its clean pages are evicted. A page a `linux` error
    /// dropped (clean, never written) then reads as the disk has it — the durable bytes, zeros
    /// past them; the file's length stays. Dirty pages stay as they are.
    pub(crate) fn drop_clean_pages(&mut self, ino: Ino) {
        let page = self.page_bytes.max(1);
        let inode = self.inode_mut(ino);
        let mut dirty = BTreeSet::new();
        for p in &inode.pending {
            remember_dropped(&mut dirty, &p.op, page);
        }
        let clean: Vec<u64> =
            inode.dropped_pages.iter().copied().filter(|p| !dirty.contains(p)).collect();
        for p in clean {
            inode.dropped_pages.remove(&p);
            let start = p * page;
            let len = inode.cached.len().saturating_sub(start).min(page);
            if len == 0 {
                continue;
            }
            let mut bytes = vec![0u8; len as usize];
            inode.durable.read(&mut bytes, start);
            inode.cached.write(&bytes, start);
        }
    }

    /// Record a write error on `ino` (errseq), not yet reported through any descriptor.
    pub(crate) fn record_error(&mut self, ino: Ino) {
        let inode = self.inode_mut(ino);
        inode.err_seq += 1;
        inode.err_unseen = true;
    }

    /// A failed writeback of `ino`: the operations it had marked written from `from` on are
    /// dropped (`linux`: marked clean, never durable), and the error recorded.
    pub(crate) fn fail_written(&mut self, ino: Ino, from: usize) {
        let page = self.page_bytes.max(1);
        let inode = self.inode_mut(ino);
        let to = inode.written;
        for p in inode.pending.drain(from..to) {
            remember_dropped(&mut inode.dropped_pages, &p.op, page);
        }
        inode.written = from;
        self.record_error(ino);
    }

    /// A failed journal commit: the filesystem shuts down, and nothing unsynced will ever reach
    /// the disk (reads still see the cache).
    pub(crate) fn shut_down(&mut self) {
        for ino in 0..self.inodes.len() {
            self.inode_mut(ino as Ino).pending.clear();
            self.forget_dirt(ino as Ino);
        }
        self.pending_dir.clear();
    }

    /// `btrfs-revert` EIO: the cache forgets everything not durable.
    pub(crate) fn revert(&mut self, ino: Ino) {
        let inode = self.inode_mut(ino);
        inode.pending.clear();
        inode.cached = inode.durable.clone();
        inode.cached_mtime = inode.durable_mtime;
        self.forget_dirt(ino);
    }

    /// Writeback of `ino`: write its pending operations in issue order, up to `budget` bytes
    /// (`None`: all of them). A write the budget ends inside is split at a page boundary, so a
    /// record that straddles it is written in part. Returns the bytes written.
    pub(crate) fn write_back(&mut self, ino: Ino, budget: Option<u64>, page: u64) -> u64 {
        let inode = self.inode_mut(ino);
        if inode.sticky_eio {
            return 0;
        }
        let mut done = 0u64;
        while inode.written < inode.pending.len() {
            let i = inode.written;
            let (seq, op) = (inode.pending[i].seq, inode.pending[i].op.clone());
            let len = match &op {
                DataOp::Write { data, .. } => data.len() as u64,
                DataOp::SetLen { .. } => 0,
            };
            let room = budget.map_or(u64::MAX, |b| b - done);
            if len > room {
                // Split at the last page boundary the budget reaches, if it falls inside.
                if let DataOp::Write { offset, data, len_before } = op {
                    let cut = ((offset + room) / page * page).saturating_sub(offset);
                    if cut > 0 {
                        let k = cut as usize;
                        let head = DataOp::Write { offset, data: Rc::from(&data[..k]), len_before };
                        let tail = DataOp::Write {
                            offset: offset + cut,
                            data: Rc::from(&data[k..]),
                            len_before: len_before.max(offset + cut),
                        };
                        inode.pending[i] = Pending { seq, op: head };
                        inode.pending.insert(i + 1, Pending { seq, op: tail });
                        inode.written += 1;
                        done += cut;
                    }
                }
                break;
            }
            inode.written += 1;
            done += len;
        }
        if inode.written == inode.pending.len() {
            inode.dirty_since = None;
        }
        inode.unwritten_bytes -= done;
        self.dirty_bytes -= done;
        done
    }

    /// A journal commit of written-back data: every operation writeback wrote becomes durable,
    /// and a file's durable size reaches the end of the last page written (never past what
    /// reads see), as ext4 with delayed allocation leaves it.
    pub(crate) fn commit_written(&mut self, page: u64) {
        for inode in &mut self.inodes {
            if inode.written == 0 {
                continue;
            }
            let written = inode.written;
            for p in inode.pending.drain(..written) {
                apply_data_op(&mut inode.durable, &p.op);
            }
            inode.written = 0;
            let end = inode.durable.len();
            let rounded = end.div_ceil(page).saturating_mul(page).min(inode.cached.len());
            if rounded > end {
                inode.durable.set_len(rounded);
            }
            inode.durable_mtime = inode.cached_mtime;
        }
    }

    /// Commit every pending directory operation (a directory fsync).
    pub(crate) fn commit_dir(&mut self) {
        for p in std::mem::take(&mut self.pending_dir) {
            p.op.apply(&mut self.durable_dir);
        }
        debug_assert!(self.durable_dir == self.visible_dir);
    }

    /// A sync of directory `dir`. `ordered` (a journal): every pending operation up to the last
    /// one on `dir` commits. Otherwise each operation on `dir` notes the sync, and commits once
    /// every directory it changed is synced (both, for a rename across directories).
    pub(crate) fn commit_dir_at(&mut self, dir: Ino, ordered: bool) {
        if ordered {
            let Some(last) = self.pending_dir.iter().rposition(|p| p.op.dirs().contains(&dir))
            else {
                return;
            };
            for p in self.pending_dir.drain(..=last) {
                p.op.apply(&mut self.durable_dir);
            }
            return;
        }
        let durable = &mut self.durable_dir;
        self.pending_dir.retain_mut(|p| {
            let dirs = p.op.dirs();
            if dirs.contains(&dir) && !p.synced.contains(&dir) {
                p.synced.push(dir);
            }
            let done = dirs.iter().all(|d| p.synced.contains(d));
            if done {
                p.op.apply(durable);
            }
            !done
        });
    }

    /// Commit the pending directory operations on `ino` (a file sync that persists its entry).
    /// `ordered`: everything up to the last one on `ino` commits too, as a journal would.
    pub(crate) fn commit_dir_for(&mut self, ino: Ino, ordered: bool) {
        let Some(last) = self.pending_dir.iter().rposition(|p| p.op.ino() == ino) else {
            return;
        };
        if ordered {
            for p in self.pending_dir.drain(..=last) {
                p.op.apply(&mut self.durable_dir);
            }
        } else {
            let durable = &mut self.durable_dir;
            self.pending_dir.retain(|p| {
                let mine = p.op.ino() == ino;
                if mine {
                    p.op.apply(durable);
                }
                !mine
            });
        }
    }

    /// Make everything durable (the `strict` profile after each operation).
    pub(crate) fn flush_all(&mut self) {
        for ino in 0..self.inodes.len() {
            if !self.inodes[ino].sticky_eio {
                self.flush_inode(ino as Ino, true);
            }
        }
        self.commit_dir();
    }

    /// Inodes with data writeback has not written, oldest dirty first.
    pub(crate) fn dirty_inodes(&self) -> Vec<Ino> {
        let mut dirty: Vec<(Duration, Ino)> = (self.inodes.iter().enumerate())
            .filter(|(_, n)| n.written < n.pending.len() && !n.sticky_eio)
            .map(|(i, n)| (n.dirty_since.unwrap_or_default(), i as Ino))
            .collect();
        dirty.sort_unstable();
        dirty.into_iter().map(|(_, ino)| ino).collect()
    }

    /// An inode is live while it has a visible name or an open handle.
    pub(crate) fn used_bytes(&self) -> u64 {
        let named: BTreeSet<Ino> = self.visible_dir.values().copied().collect();
        self.inodes
            .iter()
            .enumerate()
            .filter(|(i, n)| n.open_handles > 0 || named.contains(&(*i as Ino)))
            .map(|(_, n)| n.cached.len())
            .sum()
    }
}

/// The pages a dropped write dirtied: the cache holds their data, the disk never got it.
fn remember_dropped(dropped: &mut BTreeSet<u64>, op: &DataOp, page: u64) {
    if let DataOp::Write { offset, data, .. } = op {
        let end = offset + data.len() as u64;
        dropped.extend(offset / page..end.div_ceil(page));
    }
}

impl Inode {
    /// The pending writes, as (index in `pending`, offset, data).
    pub(crate) fn pending_writes(&self) -> impl Iterator<Item = (usize, u64, &[u8])> + '_ {
        self.pending.iter().enumerate().filter_map(|(i, p)| match &p.op {
            DataOp::Write { offset, data, .. } => Some((i, *offset, &data[..])),
            DataOp::SetLen { .. } => None,
        })
    }
}

pub(crate) fn apply_data_op(blob: &mut Blob, op: &DataOp) {
    match op {
        DataOp::Write { offset, data, .. } => blob.write(data, *offset),
        DataOp::SetLen { len } => blob.set_len(*len),
    }
}

/// One operation's effect on the model, as captured when a crash point is taken. Applying it
/// *unsynced* gives the state where it completed but reached only the page cache — which, for a
/// power cut, is what an operation in flight may leave behind at most.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Open {
        name: Rc<str>,
        create: bool,
        truncate: bool,
    },
    Rename {
        from: Rc<str>,
        to: Rc<str>,
    },
    Remove {
        name: Rc<str>,
    },
    CreateDir {
        path: Rc<str>,
    },
    RemoveDir {
        path: Rc<str>,
    },
    Link {
        from: Rc<str>,
        to: Rc<str>,
    },
    Symlink {
        target: Rc<str>,
        path: Rc<str>,
    },
    Write {
        ino: Ino,
        offset: u64,
        data: Rc<[u8]>,
    },
    SetLen {
        ino: Ino,
        len: u64,
    },
    /// Reads, lists, lengths and syncs: nothing to apply.
    NoEffect,
}

impl Model {
    /// Apply `op` to the cache and the pending lists, without any durability effect; an
    /// operation that would fail ([`Model::check`]) changes nothing and says why.
    pub(crate) fn apply_unsynced(&mut self, op: &Op, seq: u64, now: Duration) -> io::Result<()> {
        // An operation that would fail changes nothing.
        self.check(op)?;
        // Checked: every path below resolves as `check` found it.
        let found = |m: &Model, path: &str, follow: bool| m.resolve(path, follow);
        match op {
            Op::Open { name, create, truncate } => match found(self, name, true)? {
                Found { ino: Some(ino), .. } if *truncate && self.inode(ino).cached.len() > 0 => {
                    self.set_len(ino, 0, seq, now);
                }
                Found { ino: Some(_), .. } => {}
                f if *create => {
                    self.create(f.key(), name.clone(), Kind::File, seq, now);
                }
                _ => {}
            },
            Op::Rename { from, to } => {
                let (a, b) = (found(self, from, false)?, found(self, to, false)?);
                // Renaming a name onto itself, or onto another name of the same file, does nothing.
                if let Some(ino) = a.ino.filter(|&i| b.ino != Some(i)) {
                    let paths = (from.clone(), to.clone());
                    self.dir_op(DirOp::Rename { from: a.key(), to: b.key(), ino, paths }, seq);
                }
            }
            Op::Remove { name: path } | Op::RemoveDir { path } => {
                if let Found { dir, name, ino: Some(ino) } = found(self, path, false)? {
                    let at = (dir, name);
                    self.dir_op(DirOp::Remove { at, ino, path: path.clone() }, seq);
                }
            }
            Op::CreateDir { path } => {
                let f = found(self, path, false)?;
                self.create(f.key(), path.clone(), Kind::Dir, seq, now);
            }
            Op::Symlink { target, path } => {
                let f = found(self, path, false)?;
                self.create(f.key(), path.clone(), Kind::Symlink(target.clone()), seq, now);
            }
            Op::Link { from, to } => {
                let (a, b) = (found(self, from, false)?, found(self, to, false)?);
                if let Some(ino) = a.ino {
                    self.dir_op(DirOp::Link { at: b.key(), ino, path: to.clone() }, seq);
                }
            }
            Op::Write { ino, offset, data } => self.write(*ino, *offset, data.clone(), seq, now),
            Op::SetLen { ino, len } => self.set_len(*ino, *len, seq, now),
            Op::NoEffect => {}
        }
        Ok(())
    }
}
