"""What every zoo driver shares: the workload, the acknowledgement, the command line.

    driver.py DIR load N SETTING   open a new store in DIR, N puts, `ACK {"k": "v"}` on stdout
                                   as each put's call returns (after its commit, for a durable
                                   setting)
    driver.py DIR                  the engine's own recovery on DIR: the state as JSON lines
    driver.py --serve              the same as a check server (examples/blackbox/powercut_check.py)

The workload overwrites five keys in turn with values of 3 to ~200 bytes, so a lost, stale or
torn put is visible in the state.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blackbox"))
import powercut_check  # noqa: E402


def workload(n):
    for i in range(n):
        yield "k%d" % (i % 5), "v%d-%s" % (i, "x" * (i * 37 % 200))


def ack(key, value):
    print("ACK " + json.dumps({key: value}), flush=True)


def main(load, state, settings):
    """`load(dir, n, setting)` runs the workload; `state(dir)` is the read-only-in-spirit recovery."""
    a = sys.argv[1:]
    if len(a) == 4 and a[1] == "load":
        if a[3] not in settings:
            sys.exit("unknown setting %r; one of %s" % (a[3], ", ".join(settings)))
        load(a[0], int(a[2]), a[3])
    else:
        powercut_check.main(state)
