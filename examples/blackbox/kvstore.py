#!/usr/bin/env python3
"""A small append-only key-value store, written to be crash-tested by `powercut explore`.

Records go to segment files seg-NNNNNN.log, a new segment every 4 records. A record is
    crc32 (4 bytes, over the rest) | key length (2) | value length (4, 0xFFFFFFFF: delete) | key | value
and a put is acknowledged (a line "ACK {json}" on stdout) only once it is durable.

    kvstore.py DIR load N [--variant V]     put N keys (every fifth also deletes an older key)
    kvstore.py DIR recover [--variant V]    print the recovered state as JSON lines
    kvstore.py --serve [--variant V]        the recovery as a check server (powercut_check.py)

A load on a directory that already has segments (the program run again after a crash) carries on
in a new segment after the last; the recovery reads every segment, each up to its first bad record.

Variants, each with one classic mistake (the correct one has none):
    correct       fsync each record; fsync the directory after creating a segment; CRC on read
    no-fsync      acknowledges records that are only in the page cache
    no-dir-fsync  never fsyncs the directory, so a new segment's name may vanish at a power cut
    no-crc        recovery trusts the lengths and skips the CRC check, so it serves torn records
    retry-fsync   when fsync fails, retries it and acknowledges once the retry succeeds (on Linux
                  the failed fsync already dropped the dirty pages: PostgreSQL's "fsyncgate")
    subdir        correct, with the segments in a subdirectory DIR/segs it creates: fsyncs DIR
                  after the mkdir (the new directory's entry is in its parent), and DIR/segs
                  after creating a segment
    subdir-no-parent-fsync
                  as subdir, but never fsyncs DIR: the segments are durable in a directory
                  whose own name may vanish at a power cut
    two-bugs      no-dir-fsync and no-crc at once: two different failures in one program
    append-after-torn-tail
                  a load on an existing store appends to the last segment as it is: after a power
                  cut tore its last record, every record appended lies behind the garbage, where
                  recovery stops
    bad-segment-hides-later
                  recovery stops at the first bad record of any segment, so a segment torn by one
                  power cut hides every segment written after it

The correct store exits on a failed fsync without acknowledging.
"""
import json
import os
import struct
import sys
import zlib

HEADER = struct.Struct("<IHI")
DELETE = 0xFFFFFFFF
PER_SEGMENT = 4
VARIANTS = (
    "correct",
    "no-fsync",
    "no-dir-fsync",
    "no-crc",
    "retry-fsync",
    "subdir",
    "subdir-no-parent-fsync",
    "two-bugs",
    "append-after-torn-tail",
    "bad-segment-hides-later",
)


def segments_dir(d, variant):
    return os.path.join(d, "segs") if variant.startswith("subdir") else d


def segment_name(n):
    return "seg-%06d.log" % n


def encode(key, value):
    k = key.encode()
    v = b"" if value is None else value.encode()
    body = struct.pack("<HI", len(k), DELETE if value is None else len(v)) + k + v
    return struct.pack("<I", zlib.crc32(body)) + body


def segments(d):
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f.startswith("seg-") and f.endswith(".log"))


def scan(data, check_crc):
    """The records of one segment up to its first bad one, and where that is."""
    records, at = [], 0
    while at + HEADER.size <= len(data):
        crc, klen, vlen = HEADER.unpack_from(data, at)
        size = HEADER.size + klen + (0 if vlen == DELETE else vlen)
        if at + size > len(data):
            break  # a torn tail: the record never finished
        body = data[at + 4 : at + size]
        if check_crc and zlib.crc32(body) != crc:
            break  # a torn or garbage record: the segment ends here
        key = body[6 : 6 + klen].decode("utf-8", "replace")
        records.append((key, None if vlen == DELETE else body[6 + klen :].decode("utf-8", "replace")))
        at += size
    return records, at


def load(d, n, variant):
    if variant.startswith("subdir") and not os.path.isdir(os.path.join(d, "segs")):
        os.mkdir(os.path.join(d, "segs"))
        if variant == "subdir":
            parent = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(parent)
            os.close(parent)
    d = segments_dir(d, variant)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    fd, first = None, 0
    # Run again on an existing store: carry on after its last segment.
    if os.path.exists(os.path.join(d, segment_name(0))):
        last = segments(d)[-1]
        number = int(last[4:10])
        first = (number + 1) * PER_SEGMENT
        if variant == "append-after-torn-tail":
            with open(os.path.join(d, last), "rb") as f:
                records, _ = scan(f.read(), True)
            first = number * PER_SEGMENT + sum(1 for _, v in records if v is not None)
            fd = os.open(os.path.join(d, last), os.O_WRONLY | os.O_APPEND)
    for i in range(first, first + n):
        if i % PER_SEGMENT == 0 and not (fd is not None and i == first):
            if fd is not None:
                os.close(fd)
            fd = os.open(os.path.join(d, segment_name(i // PER_SEGMENT)), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if variant not in ("no-dir-fsync", "two-bugs"):
                os.fsync(dfd)
        ops = [("k%d" % i, "value-%d-%s" % (i, "x" * (i * 37 % 90)))]
        if i % 5 == 4:
            ops.append(("k%d" % (i - 3), None))
        # Each record is its own acknowledged operation: two records are not atomic together.
        for key, value in ops:
            os.write(fd, encode(key, value))
            if variant == "retry-fsync":
                try:
                    os.fsync(fd)
                except OSError:
                    os.fsync(fd)
            elif variant != "no-fsync":
                os.fsync(fd)
            print("ACK " + json.dumps({key: value}), flush=True)
    os.close(fd)
    os.close(dfd)


def state(d, variant):
    state = {}
    d = segments_dir(d, variant)
    for name in segments(d):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        records, end = scan(data, variant not in ("no-crc", "two-bugs"))
        for key, value in records:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        if end < len(data) and variant == "bad-segment-hides-later":
            break  # wrong: only this segment ends here
    return state


def recover(d, variant):
    s = state(d, variant)
    for key in sorted(s):
        print(json.dumps({"key": key, "value": s[key]}))


def main(argv):
    variant = "correct"
    if "--variant" in argv:
        i = argv.index("--variant")
        variant = argv[i + 1]
        del argv[i : i + 2]
    if variant in VARIANTS and argv == ["--serve"]:
        import powercut_check

        powercut_check.serve(lambda d: state(d, variant))
        return
    if variant not in VARIANTS or len(argv) < 2:
        sys.exit(__doc__)
    if argv[1] == "load":
        load(argv[0], int(argv[2]), variant)
    elif argv[1] == "recover":
        recover(argv[0], variant)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
