#!/usr/bin/env python3
"""diskcache (SQLite in WAL mode, large values in files in subdirectories), one `set` per put
(see zoo_kv.py).

    default      sqlite_synchronous=1 (NORMAL, diskcache's default), values in the database
    full         sqlite_synchronous=2 (FULL), values in the database
    full-files   sqlite_synchronous=2 (FULL), disk_min_file_size=0: every value in its own file
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import diskcache  # noqa: E402
import zoo_kv  # noqa: E402

SETTINGS = {
    "default": {},
    "full": {"sqlite_synchronous": 2},
    "full-files": {"sqlite_synchronous": 2, "disk_min_file_size": 0},
}


def load(d, n, setting):
    cache = diskcache.Cache(os.path.join(d, "cache"), **SETTINGS[setting])
    for k, v in zoo_kv.workload(n):
        cache.set(k, v)
        zoo_kv.ack(k, v)
    cache.close()


def state(d):
    path = os.path.join(d, "cache")
    if not os.path.exists(path):
        return {}
    cache = diskcache.Cache(path)
    try:
        out = {}
        for k in list(cache.iterkeys()):
            v = cache.get(k, default=None)
            if v is not None:  # a value whose file is gone reads as a miss
                out[k] = v
        return out
    finally:
        cache.close()


if __name__ == "__main__":
    zoo_kv.main(load, state, SETTINGS)
