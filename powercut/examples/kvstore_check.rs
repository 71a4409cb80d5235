//! A check for `examples/blackbox/kvstore.py`'s store (the `correct` variant), in Rust: its
//! recovery, read-only, printing the state. Run once per crash state, or as a check server:
//!
//! ```text
//! cargo build --release --example kvstore_check
//! powercut explore kv.trace --check 'target/release/examples/kvstore_check {dir}'
//! powercut explore kv.trace --check-server 'target/release/examples/kvstore_check --serve'
//! ```
//!
//! A segment is read up to its first bad record (torn or failing its CRC); every segment is read.

use std::collections::BTreeMap;
use std::path::Path;

const HEADER: usize = 10; // crc32 (4) | key length (2) | value length (4)
const DELETE: u32 = u32::MAX;

/// The store in `dir`, recovered as `kvstore.py DIR recover` does.
fn state(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let name = entry.map_err(|e| format!("{}: {e}", dir.display()))?.file_name();
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("seg-") && name.ends_with(".log") {
            names.push(name);
        }
    }
    names.sort();
    let mut state = BTreeMap::new();
    for name in names {
        let path = dir.join(&name);
        let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut at = 0;
        while at + HEADER <= data.len() {
            let word =
                |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            let (crc, klen) =
                (word(at), usize::from(u16::from_le_bytes([data[at + 4], data[at + 5]])));
            let vlen = word(at + 6);
            let size = HEADER + klen + if vlen == DELETE { 0 } else { vlen as usize };
            if at + size > data.len() || crc32fast::hash(&data[at + 4..at + size]) != crc {
                break; // torn or garbage: this segment ends here
            }
            let key = String::from_utf8_lossy(&data[at + HEADER..at + HEADER + klen]).into_owned();
            if vlen == DELETE {
                state.remove(&key);
            } else {
                let value = &data[at + HEADER + klen..at + size];
                state.insert(key, String::from_utf8_lossy(value).into_owned());
            }
            at += size;
        }
    }
    Ok(state)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--serve" => {
            if let Err(e) = powercut::blackbox::server::serve(state) {
                eprintln!("kvstore_check: {e}");
                std::process::exit(1);
            }
        }
        [dir] => match state(Path::new(dir)) {
            Ok(state) => {
                for (key, value) in state {
                    println!("{}", serde_json::json!({ "key": key, "value": value }));
                }
            }
            Err(e) => {
                eprintln!("kvstore_check: {e}");
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!("usage: kvstore_check DIR | --serve");
            std::process::exit(2);
        }
    }
}
