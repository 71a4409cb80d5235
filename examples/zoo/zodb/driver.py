#!/usr/bin/env python3
"""ZODB with a FileStorage, one transaction per put (see zoo_kv.py): the root mapping's key set
to the value, then `transaction.commit()`."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import transaction  # noqa: E402
import ZODB  # noqa: E402
import ZODB.FileStorage  # noqa: E402
import zoo_kv  # noqa: E402

SETTINGS = ("default",)


def load(d, n, setting):
    db = ZODB.DB(ZODB.FileStorage.FileStorage(os.path.join(d, "data.fs")))
    conn = db.open()
    root = conn.root()
    for k, v in zoo_kv.workload(n):
        root[k] = v
        transaction.commit()
        zoo_kv.ack(k, v)
    conn.close()
    db.close()


def state(d):
    path = os.path.join(d, "data.fs")
    if not os.path.exists(path):
        return {}
    # Opened as the application opens it (read-write: FileStorage truncates a torn last
    # transaction), in a copy-free way: the state directory is powercut's to throw away.
    db = ZODB.DB(ZODB.FileStorage.FileStorage(path))
    try:
        conn = db.open()
        try:
            return {str(k): str(v) for k, v in conn.root().items()}
        finally:
            conn.close()
    finally:
        db.close()


if __name__ == "__main__":
    zoo_kv.main(load, state, SETTINGS)
