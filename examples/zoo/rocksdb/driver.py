#!/usr/bin/env python3
"""RocksDB through rocksdict (RocksDB in its wheel): each put with WriteOptions `sync=True`, the
default (no sync), or the WAL disabled (see zoo_kv.py). Background work is kept out of the run:
the write buffer holds the whole workload, so no flush or compaction thread writes during it."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rocksdict  # noqa: E402
import zoo_kv  # noqa: E402

SETTINGS = ("sync", "default", "no-wal")


def options():
    o = rocksdict.Options(raw_mode=True)
    o.create_if_missing(True)
    o.set_max_background_jobs(1)
    return o


def load(d, n, setting):
    db = rocksdict.Rdict(os.path.join(d, "db"), options())
    w = rocksdict.WriteOptions()
    w.sync = setting == "sync"
    w.disable_wal = setting == "no-wal"
    for k, v in zoo_kv.workload(n):
        db.put(k.encode(), v.encode(), w)
        zoo_kv.ack(k, v)
    db.close()


def state(d):
    db = rocksdict.Rdict(os.path.join(d, "db"), options())
    try:
        return {k.decode(): v.decode() for k, v in db.items()}
    finally:
        db.close()


if __name__ == "__main__":
    zoo_kv.main(load, state, SETTINGS)
