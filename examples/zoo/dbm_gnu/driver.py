#!/usr/bin/env python3
"""dbm.gnu (GDBM), one store and `sync()` per put (see zoo_kv.py). Traced only, to show why it
cannot be explored: GDBM writes its data through a shared writable mapping of the file."""
import dbm.gnu
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import zoo_kv  # noqa: E402

SETTINGS = ("sync",)


def load(d, n, setting):
    db = dbm.gnu.open(os.path.join(d, "kv.gdbm"), "cf")
    for k, v in zoo_kv.workload(n):
        db[k] = v
        db.sync()
        zoo_kv.ack(k, v)
    db.close()


def state(d):
    path = os.path.join(d, "kv.gdbm")
    if not os.path.exists(path):
        return {}
    db = dbm.gnu.open(path, "r")
    try:
        return {k.decode(): db[k].decode() for k in db.keys()}
    finally:
        db.close()


if __name__ == "__main__":
    zoo_kv.main(load, state, SETTINGS)
