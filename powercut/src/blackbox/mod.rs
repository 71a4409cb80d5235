//! Black-box mode: crash-test an unmodified program, in any language, from its system-call trace.
//!
//! - [`record`] runs the program under strace and keeps what it did to one directory as a
//!   [`Trace`] of logical operations, with its acknowledgements in order between them.
//! - [`explore`] replays a trace into SimFs, so the crash states come from the same fault model
//!   and the same persistence profiles as every other powercut run, materializes each distinct
//!   state into a directory, runs the program's own recovery on it, and judges what it prints.

pub mod cmd;
pub mod explore;
pub mod generations;
pub mod server;
pub mod strace;
pub mod trace;

pub use trace::{Header, Trace, TraceOp};

use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system calls a trace needs (everything that changes a file, a name or a file offset, plus
/// descriptor duplication, process creation and chdir; mmap, the in-kernel copies and the
/// filesystem-wide syncs only to say what the trace cannot model).
const TRACED: &str = "open,openat,creat,write,pwrite64,writev,pwritev,pwritev2,lseek,read,readv,\
                      ftruncate,truncate,fallocate,fsync,fdatasync,sync_file_range,rename,renameat,\
                      renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,link,linkat,symlink,symlinkat,close,dup,dup2,\
                      dup3,fcntl,getdents64,sync,syncfs,chdir,clone,clone3,fork,vfork,mmap,copy_file_range,\
                      sendfile,splice";

/// Longest string strace is asked to print in full; a longer write is a hard error.
const STRING_LIMIT: usize = 64 << 20;

/// What to record.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// The directory the program keeps its data in.
    pub dir: PathBuf,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// A stdout line matching this acknowledges something; the text after the match is kept.
    pub ack: String,
    /// Make the Nth fsync and the Nth fdatasync of each process fail with EIO (strace's
    /// `inject=...:when=N`), to see what the program does after a failed sync.
    pub fail_sync: Option<u64>,
    /// Discard the program's stdout and send its stderr (and strace's) into this file, instead
    /// of letting both pass through.
    pub quiet: Option<PathBuf>,
    /// Run the program in this directory (default: the current one).
    pub cwd: Option<PathBuf>,
    /// Kill the program (its process group) after this long, and fail (default: no limit).
    pub timeout: Option<std::time::Duration>,
}

/// Run the recording's command under strace and return its trace. The program's own stdout and
/// stderr pass through.
pub fn record(r: &Recording) -> Result<Trace, String> {
    let ack = Regex::new(&r.ack).map_err(|e| format!("--ack {:?}: {e}", r.ack))?;
    if r.command.is_empty() {
        return Err("no command to trace (put it after --)".into());
    }
    let dir = r.dir.canonicalize().map_err(|e| format!("--dir {}: {e}", r.dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("--dir {}: not a directory", dir.display()));
    }
    let initial = snapshot(&dir)?;
    let cwd = match &r.cwd {
        Some(cwd) => cwd.clone(),
        None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    static RECORDINGS: AtomicU64 = AtomicU64::new(0);
    let n = RECORDINGS.fetch_add(1, Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!("powercut-strace-{}-{n}.txt", std::process::id()));
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-xx", "-y", "-e", "signal=none", "-e"])
        .arg(format!("trace={TRACED}"))
        .arg("-s")
        .arg(STRING_LIMIT.to_string())
        .arg("-o")
        .arg(&log);
    if let Some(n) = r.fail_sync {
        cmd.arg("-e").arg(format!("inject=fsync,fdatasync:error=EIO:when={n}"));
    }
    cmd.arg("--").args(&r.command).current_dir(&cwd);
    if let Some(path) = &r.quiet {
        let err = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(err);
    }
    let spawn_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "strace not found: install it (Debian: apt-get install strace)".to_string()
        }
        _ => format!("strace: {e}"),
    };
    let status = match r.timeout {
        None => cmd.status().map_err(spawn_error)?,
        Some(limit) => {
            use std::os::unix::process::CommandExt;
            let mut child = cmd.process_group(0).spawn().map_err(spawn_error)?;
            let start = std::time::Instant::now();
            loop {
                if let Some(status) = child.try_wait().map_err(|e| format!("strace: {e}"))? {
                    break status;
                }
                if start.elapsed() > limit {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = child.wait();
                    let _ = std::fs::remove_file(&log);
                    return Err(format!(
                        "the program ran past {} s and was killed",
                        limit.as_secs_f64()
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    };
    let text = std::fs::read_to_string(&log);
    let _ = std::fs::remove_file(&log);
    let text = text.map_err(|e| format!("strace's output {}: {e}", log.display()))?;
    if text.is_empty() && !status.success() {
        return Err(format!("strace failed ({status}) and wrote nothing: is ptrace allowed here?"));
    }
    let mut reader = strace::Reader::default();
    let mut tracer = trace::Tracer::new(dir.clone(), cwd.clone(), ack, initial);
    for (i, line) in text.lines().enumerate() {
        if let Some(call) = reader.line(i + 1, line)? {
            tracer.call(&call)?;
        }
    }
    tracer.finish();
    Ok(Trace {
        header: Header {
            powercut_trace: 1,
            dir: dir.display().to_string(),
            command: r.command.clone(),
            cwd: Some(cwd.display().to_string()),
            ack: r.ack.clone(),
            exit_code: status.code(),
            fail_sync: r.fail_sync,
            warnings: std::mem::take(&mut tracer.warnings),
        },
        ops: tracer.ops,
    })
}

/// What `dir` holds before the program runs (its durable starting state): regular files,
/// subdirectories (parents first) and symbolic links, by path below `dir`. Other kinds (a FIFO, a
/// socket, a device) are refused, naming them.
fn snapshot(dir: &Path) -> Result<trace::Snapshot, String> {
    let mut out = trace::Snapshot::default();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let here = if rel.is_empty() { dir.to_path_buf() } else { dir.join(&rel) };
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&here).map_err(|e| format!("{}: {e}", here.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", here.display()))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| format!("{}: file name {n:?} is not UTF-8", here.display()))?;
            entries.push((name, entry));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, entry) in entries {
            let path = entry.path();
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let kind = entry.file_type().map_err(|e| format!("{}: {e}", path.display()))?;
            if kind.is_symlink() {
                let target = std::fs::read_link(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .into_os_string()
                    .into_string()
                    .map_err(|t| format!("{}: link target {t:?} is not UTF-8", path.display()))?;
                out.links.push((rel, target));
            } else if kind.is_dir() {
                out.dirs.push(rel.clone());
                stack.push(rel);
            } else if kind.is_file() {
                let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                out.files.push((rel, data));
            } else {
                return Err(format!(
                    "{}: neither a file, a directory nor a symbolic link: not modelled",
                    path.display()
                ));
            }
        }
    }
    out.dirs.sort_by_key(|d| d.matches('/').count());
    out.files.sort();
    out.links.sort();
    Ok(out)
}
