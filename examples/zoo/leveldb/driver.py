#!/usr/bin/env python3
"""LevelDB through plyvel: each put a WriteBatch of one, `sync=True` or not (see zoo_kv.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plyvel  # noqa: E402
import zoo_kv  # noqa: E402

SETTINGS = {"sync": True, "default": False}


def load(d, n, setting):
    db = plyvel.DB(os.path.join(d, "db"), create_if_missing=True)
    for k, v in zoo_kv.workload(n):
        db.put(k.encode(), v.encode(), sync=SETTINGS[setting])
        zoo_kv.ack(k, v)
    db.close()


def state(d):
    # As the application opens it: a directory left without a CURRENT file is a new database.
    db = plyvel.DB(os.path.join(d, "db"), create_if_missing=True)
    try:
        return {k.decode(): v.decode() for k, v in db}
    finally:
        db.close()


if __name__ == "__main__":
    zoo_kv.main(load, state, SETTINGS)
