#!/usr/bin/env python3
"""SQLite for the zoo: examples/blackbox/sqlite_kv.py's workload under a named setting.

    driver.py DIR load N SETTING    SETTING: wal-full, delete-extra, delete-full, wal-off
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "blackbox"))
import sqlite_kv  # noqa: E402

SETTINGS = {
    "wal-full": ("wal", "full"),
    "delete-extra": ("delete", "extra"),
    "delete-full": ("delete", "full"),
    "wal-off": ("wal", "off"),
}

if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) != 4 or a[1] != "load" or a[3] not in SETTINGS:
        sys.exit(__doc__)
    sqlite_kv.load(a[0], int(a[2]), *SETTINGS[a[3]])
