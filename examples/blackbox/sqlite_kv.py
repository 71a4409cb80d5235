#!/usr/bin/env python3
"""SQLite through Python's sqlite3 module, crash-tested by `powercut explore`.

    sqlite_kv.py DIR load N JOURNAL SYNCHRONOUS   N committed transactions, one ACK line after each
    sqlite_kv.py DIR check                        PRAGMA integrity_check, then the rows as JSON lines
    sqlite_kv.py --serve                          the same check as a check server (powercut_check.py)

JOURNAL is a journal_mode (delete, wal, ...); SYNCHRONOUS is extra, full, normal or off. The check exits
1 when the database is corrupt or cannot be opened.
"""
import json
import os
import sqlite3
import sys


def load(d, n, journal, synchronous):
    db = sqlite3.connect(os.path.join(d, "kv.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=%s" % journal)
    db.execute("PRAGMA synchronous=%s" % synchronous)
    db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    for i in range(n):
        key, value = "k%d" % (i % 7), "v%d-%s" % (i, "x" * (i * 53 % 300))
        db.execute("BEGIN")
        db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
        db.execute("COMMIT")
        print("ACK " + json.dumps({key: value}), flush=True)
    db.close()


def state(d):
    path = os.path.join(d, "kv.db")
    if not os.path.exists(path):
        return {}
    db = sqlite3.connect(path)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchall()
        if ok != [("ok",)]:
            raise RuntimeError("integrity_check: %r" % (ok,))
        tables = db.execute("SELECT name FROM sqlite_master WHERE name = 'kv'").fetchall()
        return dict(db.execute("SELECT k, v FROM kv")) if tables else {}
    finally:
        db.close()


def check(d):
    try:
        rows = state(d)
    except (RuntimeError, sqlite3.Error) as e:
        sys.exit(str(e))
    for k in sorted(rows):
        print(json.dumps({"key": k, "value": rows[k]}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 5 and a[1] == "load":
        load(a[0], int(a[2]), a[3], a[4])
    elif len(a) == 2 and a[1] == "check":
        check(a[0])
    elif a == ["--serve"]:
        import powercut_check

        powercut_check.serve(state)
    else:
        sys.exit(__doc__)
