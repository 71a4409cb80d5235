//! Check servers: a long-lived check process that answers for one crash state after another,
//! so a state costs a line on a pipe, not a process start-up (72 ms for `python -c pass`).
//!
//! The protocol (also in `docs/trace.md`): powercut starts `sh -c CMD` with a pipe on its stdin
//! and stdout. For each state it writes the directory's absolute path and a newline; the server
//! answers one JSON line:
//! - `{"state": {"key": "value", ...}}`: the recovered state (`{}` when nothing is judged);
//! - `{"error": "why"}`: recovery failed, as a check exiting non-zero with `why` on stderr.
//!
//! A server that does not answer within the timeout is killed with its process group (the state
//! is a hang); one that exits or closes its stdout instead of answering fails the state with its
//! exit code and what it wrote to stderr meanwhile. Either way a new server is started for the
//! next state. One server runs per job; servers are stopped when the exploration ends.

use super::explore::CheckRun;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Servers running one command, started on demand, at most one per concurrent check.
#[derive(Debug)]
pub struct Servers {
    command: String,
    timeout: Duration,
    /// Where each server's stderr goes (`server-N.err`).
    scratch: PathBuf,
    idle: Mutex<Vec<Server>>,
    started: AtomicUsize,
}

#[derive(Debug)]
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Read from stdout, not yet a whole line.
    pending: Vec<u8>,
    stderr: PathBuf,
}

/// How a server met one request.
enum Reply {
    Line(String),
    TimedOut,
    /// It closed its stdout or exited: its exit code (`None`: a signal).
    Died(Option<i32>),
}

impl Servers {
    /// Servers of `sh -c command`, each answer due within `timeout`; their stderr files in
    /// `scratch` (which must exist).
    pub fn new(command: &str, timeout: Duration, scratch: &Path) -> Servers {
        Servers {
            command: command.to_string(),
            timeout,
            scratch: scratch.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
        }
    }

    /// Servers started so far (restarts included).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    fn start(&self) -> Result<Server, String> {
        use std::os::unix::process::CommandExt;
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let stderr = self.scratch.join(format!("server-{n}.err"));
        let file =
            std::fs::File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(file)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("--check-server: sh -c {:?}: {e}", self.command))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => return Err("--check-server: no pipe to the server".into()),
        };
        Ok(Server { child, stdin, stdout, pending: Vec::new(), stderr })
    }

    /// Ask a server for the state of `dir` (an absolute path without a newline).
    pub fn check(&self, dir: &Path) -> Result<CheckRun, String> {
        let path = dir.display().to_string();
        if path.contains('\n') {
            return Err(format!("{path:?}: a check server cannot be sent a path with a newline"));
        }
        let idle = self.idle.lock().map_err(|_| "a check thread panicked".to_string())?.pop();
        let mut server = match idle {
            Some(mut s) => match s.idle_state() {
                Idle::Ready => s,
                // It died (or closed its stdout) after its last answer: not this state's doing.
                Idle::Gone => {
                    s.stop();
                    self.start()?
                }
                Idle::Stray(bytes) => {
                    s.stop();
                    return Err(format!(
                        "the check server wrote more than one line for one state (then {}): \
                         answers could no longer be matched to states",
                        preview(&bytes)
                    ));
                }
            },
            None => self.start()?,
        };
        let from = std::fs::metadata(&server.stderr).map_or(0, |m| m.len());
        let reply = server.ask(&path, self.timeout);
        let run = |exit, timed_out, stdout: String, stderr: String, protocol_error| CheckRun {
            exit,
            timed_out,
            stdout,
            stderr,
            protocol_error,
        };
        let out = match reply {
            Reply::Line(line) if !server.pending.is_empty() => {
                let extra = String::from_utf8_lossy(&server.pending).into_owned();
                server.stop();
                let e = format!(
                    "the check server answered {} and then more ({}): one line per state",
                    preview(&line),
                    preview(&extra)
                );
                run(Some(0), false, String::new(), String::new(), Some(e))
            }
            Reply::Line(line) => {
                let answer = parse_answer(&line);
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(server);
                }
                match answer {
                    Ok(Ok(stdout)) => run(Some(0), false, stdout, String::new(), None),
                    Ok(Err(why)) => run(Some(1), false, String::new(), why, None),
                    Err(e) => run(Some(0), false, String::new(), String::new(), Some(e)),
                }
            }
            Reply::TimedOut => {
                server.stop();
                run(None, true, String::new(), server.stderr_since(from), None)
            }
            Reply::Died(code) => {
                let stderr = server.stderr_since(from);
                let _ = std::fs::remove_file(&server.stderr);
                match code {
                    // Exiting cleanly is no answer: the state was not judged.
                    Some(0) => run(
                        Some(0),
                        false,
                        String::new(),
                        stderr,
                        Some("the check server exited (code 0) without answering".into()),
                    ),
                    _ => run(code, false, String::new(), stderr, None),
                }
            }
        };
        Ok(out)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Ok(idle) = self.idle.get_mut() {
            for mut s in idle.drain(..) {
                s.stop();
            }
        }
    }
}

/// What an idle server is doing just before a request.
enum Idle {
    /// Waiting, as it should.
    Ready,
    /// Exited, or closed its stdout.
    Gone,
    /// It wrote after its last answer.
    Stray(String),
}

impl Server {
    /// Check an idle server before sending it a request.
    fn idle_state(&mut self) -> Idle {
        if !self.pending.is_empty() {
            return Idle::Stray(String::from_utf8_lossy(&self.pending).into_owned());
        }
        if !matches!(self.child.try_wait(), Ok(None)) {
            return Idle::Gone;
        }
        let mut fds = [nix::poll::PollFd::new(self.stdout.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, 0u16) {
            Ok(0) => Idle::Ready,
            Ok(_) => {
                let mut buf = [0u8; 4096];
                match self.stdout.read(&mut buf) {
                    Ok(0) | Err(_) => Idle::Gone,
                    Ok(n) => Idle::Stray(String::from_utf8_lossy(&buf[..n]).into_owned()),
                }
            }
            Err(_) => Idle::Gone,
        }
    }

    fn ask(&mut self, path: &str, timeout: Duration) -> Reply {
        if self
            .stdin
            .write_all(format!("{path}\n").as_bytes())
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Reply::Died(self.wait());
        }
        let start = Instant::now();
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Reply::Line(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Reply::TimedOut;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds =
                [nix::poll::PollFd::new(self.stdout.as_fd(), nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, ms) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Reply::Died(self.wait()),
            }
            let mut buf = [0u8; 64 << 10];
            match self.stdout.read(&mut buf) {
                Ok(0) | Err(_) => return Reply::Died(self.wait()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Wait for the server to exit after it closed its stdout (killing it if it lingers).
    fn wait(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if start.elapsed() < Duration::from_secs(1) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => {
                    self.stop();
                    return None;
                }
            }
        }
    }

    /// Kill the server's process group and reap it.
    fn stop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }

    /// What the server wrote to stderr from byte `from` on (up to 1 MiB).
    fn stderr_since(&self, from: u64) -> String {
        let Ok(mut f) = std::fs::File::open(&self.stderr) else { return String::new() };
        let mut s = String::new();
        use std::io::Seek;
        let _ = f.seek(std::io::SeekFrom::Start(from));
        let _ = f.take(1 << 20).read_to_string(&mut s);
        s
    }
}

/// Be a check server: answer each directory read from stdin (one per line) with
/// `state_of(dir)`, a key → value state or why recovery failed, until stdin closes. What a Rust
/// program calls to serve `powercut explore --check-server` (see `examples/kvstore_check.rs`).
/// `state_of` must not keep anything from one directory to the next.
pub fn serve(
    mut state_of: impl FnMut(&Path) -> Result<BTreeMap<String, String>, String>,
) -> std::io::Result<()> {
    use std::io::BufRead;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let answer = match state_of(Path::new(&line)) {
            Ok(state) => serde_json::json!({ "state": state }),
            Err(why) => serde_json::json!({ "error": why }),
        };
        let mut out = stdout.lock();
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

/// Read an answer: Ok(Ok(the state as the JSON lines a check prints)), Ok(Err(a recovery
/// error)), or Err(what is wrong with the answer).
fn parse_answer(line: &str) -> Result<Result<String, String>, String> {
    let bad = |why: &str| Err(format!("the check server's answer {}: {why}", preview(line)));
    let Ok(serde_json::Value::Object(answer)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        return bad("is not a JSON object");
    };
    match (answer.get("state"), answer.get("error"), answer.len()) {
        (Some(serde_json::Value::Object(state)), None, 1) => {
            let mut out = String::new();
            for (k, v) in state {
                let Some(v) = v.as_str() else {
                    return bad(&format!("key {k:?}: the value is not a string"));
                };
                out.push_str(&serde_json::json!({"key": k, "value": v}).to_string());
                out.push('\n');
            }
            Ok(Ok(out))
        }
        (None, Some(serde_json::Value::String(why)), 1) => Ok(Err(why.clone())),
        _ => bad(r#"expected {"state": {key: string, ...}} or {"error": string}"#),
    }
}

fn preview(line: &str) -> String {
    let short: String = line.chars().take(120).collect();
    if short.len() < line.len() { format!("{short:?}...") } else { format!("{short:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_states_errors_or_protocol_errors() {
        assert_eq!(
            parse_answer(r#"{"state": {"b": "2", "a": "1"}}"#),
            Ok(Ok("{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"value\":\"2\"}\n".into()))
        );
        assert_eq!(parse_answer(r#"{"state": {}}"#), Ok(Ok(String::new())));
        assert_eq!(parse_answer(r#"{"error": "bad crc"}"#), Ok(Err("bad crc".into())));
        for bad in
            ["", "[]", r#"{"state": 1}"#, r#"{"state": {"a": 1}}"#, r#"{"state": {}, "x": 1}"#]
        {
            let e = parse_answer(bad).unwrap_err();
            assert!(e.contains("the check server's answer"), "{e}");
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("powercut-server-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_server_answers_many_states_and_is_restarted_after_a_hang_or_a_death() {
        let scratch = dir("restart");
        // Answers with the directory's name as a key; hangs on "slow", dies on "die".
        let script = r#"while read d; do case "$d" in
            *slow) sleep 30;;
            *die) echo "dying on $d" >&2; exit 7;;
            *quiet) exit 0;;
            *twice) printf '{"state": {}}\n{"state": {}}\n';;
            *bye) printf '{"state": {"%s": "ok"}}\n' "${d##*/}"; exit 3;;
            *) printf '{"state": {"%s": "ok"}}\n' "${d##*/}";;
            esac; done"#;
        let servers = Servers::new(script, Duration::from_millis(300), &scratch);
        let ask = |name: &str| servers.check(&scratch.join(name)).unwrap();
        let a = ask("a");
        assert_eq!((a.exit, a.stdout.as_str()), (Some(0), "{\"key\":\"a\",\"value\":\"ok\"}\n"));
        let b = ask("b");
        assert_eq!(b.stdout, "{\"key\":\"b\",\"value\":\"ok\"}\n");
        assert_eq!(servers.started(), 1, "one server answered both");
        let slow = ask("slow");
        assert!(slow.timed_out && slow.exit.is_none());
        let c = ask("c");
        assert_eq!(c.stdout, "{\"key\":\"c\",\"value\":\"ok\"}\n");
        assert_eq!(servers.started(), 2, "restarted after the hang");
        let die = ask("die");
        assert_eq!(die.exit, Some(7));
        assert!(die.stderr.contains("dying on"), "{die:?}");
        let quiet = ask("quiet");
        assert!(quiet.protocol_error.as_deref().unwrap_or("").contains("without answering"));
        let d = ask("d");
        assert_eq!(d.stdout, "{\"key\":\"d\",\"value\":\"ok\"}\n");
        assert_eq!(servers.started(), 4);
        // Two lines for one state: that state fails, and the server is replaced.
        let twice = ask("twice");
        assert!(
            twice.protocol_error.as_deref().unwrap_or("").contains("and then more"),
            "{twice:?}"
        );
        let e = ask("e");
        assert_eq!(e.stdout, "{\"key\":\"e\",\"value\":\"ok\"}\n");
        assert_eq!(servers.started(), 5);
        // Dying after an answer is not the next state's fault.
        let bye = ask("bye");
        assert_eq!(bye.stdout, "{\"key\":\"bye\",\"value\":\"ok\"}\n");
        std::thread::sleep(Duration::from_millis(100));
        let f = ask("f");
        assert_eq!(f.stdout, "{\"key\":\"f\",\"value\":\"ok\"}\n", "{f:?}");
        assert_eq!(servers.started(), 6);
        drop(servers);
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
