//! What the Rust zoo drivers share (each includes this file): the workload, the acknowledgement
//! and the command line of zoo_kv.py, in Rust.
//!
//! ```text
//! driver DIR load N SETTING   open a new store in DIR, N puts, `ACK {"k": "v"}` after each returns
//! driver DIR                  the engine's own recovery on DIR: the state as JSON lines
//! driver --serve              the same as a check server (docs/trace.md)
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

pub type State = BTreeMap<String, String>;

/// The (key, value) of each put: five keys overwritten in turn, values of 3 to ~200 bytes.
pub fn workload(n: u64) -> impl Iterator<Item = (String, String)> {
    (0..n).map(|i| (format!("k{}", i % 5), format!("v{i}-{}", "x".repeat((i * 37 % 200) as usize))))
}

pub fn ack(key: &str, value: &str) {
    let line = serde_json::json!({ key: value });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ACK {line}");
    let _ = out.flush();
}

/// Run the driver: `load(dir, n, setting)` and `state(dir)` are the engine's.
pub fn main(
    settings: &[&str],
    load: impl Fn(&Path, u64, &str) -> Result<(), String>,
    state: impl Fn(&Path) -> Result<State, String>,
) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.as_slice() {
        [dir, cmd, n, setting] if cmd == "load" => {
            if !settings.contains(&setting.as_str()) {
                eprintln!("unknown setting {setting:?}; one of {}", settings.join(", "));
                2
            } else {
                match n
                    .parse()
                    .map_err(|e| format!("N: {e}"))
                    .and_then(|n| load(Path::new(dir), n, setting))
                {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("{e}");
                        1
                    }
                }
            }
        }
        [flag] if flag == "--serve" => {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(dir) = line else { break };
                let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    state(Path::new(&dir))
                })) {
                    Ok(Ok(s)) => serde_json::json!({ "state": s }),
                    Ok(Err(e)) => serde_json::json!({ "error": e }),
                    Err(panic) => {
                        let msg = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "(no message)".into());
                        // One line: a check's failure is known by its last line of stderr.
                        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
                        serde_json::json!({ "error": format!("recovery panicked: {msg}") })
                    }
                };
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{answer}").and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
            0
        }
        [dir] => match state(Path::new(dir)) {
            Ok(s) => {
                for (k, v) in s {
                    println!("{}", serde_json::json!({ "key": k, "value": v }));
                }
                0
            }
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        _ => {
            eprintln!("usage: driver DIR load N SETTING | DIR | --serve");
            2
        }
    };
    std::process::exit(code);
}
