//! redb for the powercut zoo: one write transaction per put, committed with the setting's
//! durability (`immediate`, redb's default, or `none`).

#[path = "../../zoo_driver.rs"]
mod zoo_driver;

use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::path::Path;

const KV: TableDefinition<&str, &str> = TableDefinition::new("kv");

fn load(dir: &Path, n: u64, setting: &str) -> Result<(), String> {
    let db = Database::create(dir.join("kv.redb")).map_err(|e| e.to_string())?;
    for (k, v) in zoo_driver::workload(n) {
        let mut txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(if setting == "none" {
            Durability::None
        } else {
            Durability::Immediate
        });
        {
            let mut t = txn.open_table(KV).map_err(|e| e.to_string())?;
            t.insert(k.as_str(), v.as_str()).map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())?;
        zoo_driver::ack(&k, &v);
    }
    Ok(())
}

fn state(dir: &Path) -> Result<zoo_driver::State, String> {
    let path = dir.join("kv.redb");
    if !path.exists() {
        return Ok(Default::default());
    }
    // As the application opens it (`create` opens an existing file, repairing it if needed).
    let db = Database::create(&path).map_err(|e| e.to_string())?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let t = match txn.open_table(KV) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Default::default()),
        Err(e) => return Err(e.to_string()),
    };
    let mut out = zoo_driver::State::new();
    for row in t.iter().map_err(|e| e.to_string())? {
        let (k, v) = row.map_err(|e| e.to_string())?;
        out.insert(k.value().to_string(), v.value().to_string());
    }
    Ok(out)
}

fn main() {
    zoo_driver::main(&["immediate", "none"], load, state);
}
