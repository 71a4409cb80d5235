//! The namespace: directory entries keyed by (directory inode, name), as a real filesystem keeps
//! them, and path resolution over a set of entries.
//!
//! Guarantees:
//! - An entry lives in its directory: creating, renaming or removing it is an operation on that
//!   directory (a rename across directories, on both), made durable by syncing it. A directory's
//!   own entry is in its parent, so a new directory is durable only once its parent is synced.
//! - A path resolves from the root ([`ROOT`], which has no entry), one component at a time. A
//!   symbolic link is followed (at most [`MAX_HOPS`] in one resolution) while its target stays
//!   below the root: an absolute target, or one that climbs above the root with `..`, is an
//!   error naming the path. An entry whose directory is not reachable (its own entry was lost in
//!   a crash) is not visible.
//! - Every walk is in a deterministic order (entries are a `BTreeMap`).

use crate::model::{Ino, Inode};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::rc::Rc;

/// The root directory's inode number. It is no entry's target and has no `Inode`.
pub(crate) const ROOT: Ino = Ino::MAX;

/// Symbolic links followed in one resolution before giving up (Linux's limit).
pub(crate) const MAX_HOPS: usize = 40;

/// A directory entry: (the directory's inode, the name in it).
pub(crate) type Key = (Ino, Rc<str>);

/// A set of directory entries.
pub(crate) type Entries = BTreeMap<Key, Ino>;

/// What an inode is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Kind {
    #[default]
    File,
    Dir,
    /// A symbolic link and its target, as given.
    Symlink(Rc<str>),
}

/// The result of resolving a path: the directory its last component is in, that name, and the
/// inode it names (if any). A path that resolves to a directory through `.` or `..` at its end
/// has an empty name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub dir: Ino,
    pub name: Rc<str>,
    pub ino: Option<Ino>,
}

impl Found {
    pub(crate) fn key(&self) -> Key {
        (self.dir, self.name.clone())
    }
}

fn not_found(path: &str, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such {what}"))
}

/// The kind of `ino` among `inodes` (the root is a directory).
pub(crate) fn kind_of(inodes: &[Inode], ino: Ino) -> &Kind {
    const DIR: Kind = Kind::Dir;
    if ino == ROOT { &DIR } else { &inodes[ino as usize].kind }
}

/// Resolve `path` (checked; `""` is the root) over `entries`. With `follow_last`, a symbolic
/// link as the last component is followed too.
pub(crate) fn resolve(
    entries: &Entries,
    inodes: &[Inode],
    path: &str,
    follow_last: bool,
) -> io::Result<Found> {
    if path.is_empty() {
        return Ok(Found { dir: ROOT, name: Rc::from(""), ino: Some(ROOT) });
    }
    let mut comps: VecDeque<Rc<str>> = path.split('/').map(Rc::from).collect();
    // The directories walked so far, the root first: `..` in a link target pops one.
    let mut chain = vec![ROOT];
    let mut hops = 0;
    let at = |chain: &[Ino]| *chain.last().expect("the root is never popped");
    while let Some(c) = comps.pop_front() {
        let last = comps.is_empty();
        match &*c {
            "" | "." => {}
            ".." => {
                if chain.len() == 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{path}: a symbolic link on the way leads above the root"),
                    ));
                }
                chain.pop();
            }
            _ => {
                let dir = at(&chain);
                let Some(&ino) = entries.get(&(dir, c.clone())) else {
                    if last {
                        return Ok(Found { dir, name: c, ino: None });
                    }
                    return Err(not_found(path, &format!("directory {c:?}")));
                };
                match kind_of(inodes, ino) {
                    Kind::Symlink(target) if !last || follow_last => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return Err(io::Error::other(format!(
                                "{path}: too many levels of symbolic links (ELOOP)"
                            )));
                        }
                        if target.starts_with('/') {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("{path}: symbolic link {c:?} points outside the root"),
                            ));
                        }
                        for t in target.split('/').rev() {
                            comps.push_front(Rc::from(t));
                        }
                    }
                    Kind::Dir if !last => chain.push(ino),
                    _ if last => return Ok(Found { dir, name: c, ino: Some(ino) }),
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotADirectory,
                            format!("{path}: {c:?} is not a directory"),
                        ));
                    }
                }
            }
        }
    }
    // The path ended on `.` or `..` (through a link): it names the directory reached.
    let dir = at(&chain);
    Ok(Found { dir, name: Rc::from(""), ino: Some(dir) })
}

/// Every entry reachable from the root, as (path, inode), in path order. A directory reached
/// twice (a crash can leave two entries of one) is walked once.
pub(crate) fn walk(entries: &Entries, inodes: &[Inode]) -> Vec<(String, Ino)> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut dirs: Vec<(Ino, String)> = vec![(ROOT, String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for (name, ino) in children(entries, dir) {
            let path =
                if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            if *kind_of(inodes, ino) == Kind::Dir && seen.insert(ino) {
                dirs.push((ino, path.clone()));
            }
            out.push((path, ino));
        }
    }
    out.sort();
    out
}

/// The entries of directory `dir`, in name order.
pub(crate) fn children(entries: &Entries, dir: Ino) -> impl Iterator<Item = (&Rc<str>, Ino)> {
    let from: Key = (dir, Rc::from(""));
    entries.range(from..).take_while(move |((d, _), _)| *d == dir).map(|((_, n), i)| (n, *i))
}

/// A visible path of `ino` in `entries`, if it has one (for messages).
pub(crate) fn path_of(entries: &Entries, inodes: &[Inode], ino: Ino) -> Option<String> {
    walk(entries, inodes).into_iter().find(|(_, i)| *i == ino).map(|(p, _)| p)
}
