#!/usr/bin/env python3
"""LMDB through the `lmdb` package, one write transaction per put (see zoo_kv.py).

MDB_WRITEMAP stays off, so LMDB writes its pages with pwrite(2), which strace sees; with it on,
pages are written through a shared writable mapping no trace can see. `nosync` opens the
environment with `sync=False` (MDB_NOSYNC): commits are not flushed."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lmdb  # noqa: E402
import zoo_kv  # noqa: E402

SETTINGS = ("sync", "nosync")


def open_env(d, sync=True):
    return lmdb.open(os.path.join(d, "db"), map_size=1 << 24, writemap=False, sync=sync, metasync=sync)


def load(d, n, setting):
    env = open_env(d, sync=setting == "sync")
    for k, v in zoo_kv.workload(n):
        with env.begin(write=True) as txn:
            txn.put(k.encode(), v.encode())
        zoo_kv.ack(k, v)
    env.close()


def state(d):
    if not os.path.exists(os.path.join(d, "db")):
        return {}  # the application would create it empty
    env = open_env(d)
    try:
        with env.begin() as txn:
            return {k.decode(): v.decode() for k, v in txn.cursor()}
    finally:
        env.close()


if __name__ == "__main__":
    zoo_kv.main(load, state, SETTINGS)
