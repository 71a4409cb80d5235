//! fjall for the powercut zoo: each put inserted into a partition, then the keyspace persisted
//! with the setting's mode (`sync-all`: `PersistMode::SyncAll`; `buffer`: no persist call, the
//! journal left to fjall's own flushing).

#[path = "../../zoo_driver.rs"]
mod zoo_driver;

use fjall::{Config, PartitionCreateOptions, PersistMode};
use std::path::Path;

fn open(dir: &Path) -> Result<(fjall::Keyspace, fjall::PartitionHandle), String> {
    let keyspace = Config::new(dir.join("db")).open().map_err(|e| e.to_string())?;
    let kv = keyspace
        .open_partition("kv", PartitionCreateOptions::default())
        .map_err(|e| e.to_string())?;
    Ok((keyspace, kv))
}

fn load(dir: &Path, n: u64, setting: &str) -> Result<(), String> {
    let (keyspace, kv) = open(dir)?;
    for (k, v) in zoo_driver::workload(n) {
        kv.insert(k.as_bytes(), v.as_bytes()).map_err(|e| e.to_string())?;
        if setting == "sync-all" {
            keyspace.persist(PersistMode::SyncAll).map_err(|e| e.to_string())?;
        }
        zoo_driver::ack(&k, &v);
    }
    Ok(())
}

fn state(dir: &Path) -> Result<zoo_driver::State, String> {
    if !dir.join("db").exists() {
        return Ok(Default::default());
    }
    let (_keyspace, kv) = open(dir)?;
    let mut out = zoo_driver::State::new();
    for row in kv.iter() {
        let (k, v) = row.map_err(|e| e.to_string())?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        out.insert(text(&k), text(&v));
    }
    Ok(out)
}

fn main() {
    zoo_driver::main(&["sync-all", "buffer"], load, state);
}
