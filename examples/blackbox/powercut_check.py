"""Write a powercut check once, run it either way.

    import powercut_check

    def state(d):            # the program's recovery, read-only, on directory d
        ...                  # raise (or sys.exit("why")) when recovery fails
        return {"key": "value", ...}

    powercut_check.main(state)

`prog DIR` prints the state as JSON lines {"key": .., "value": ..} and exits 1 with the error on
stderr when `state` raises: a check for `powercut explore --check 'prog {dir}'`.

`prog --serve` is a check server for `powercut explore --check-server 'prog --serve'`: it reads one
directory per line on stdin and answers one JSON line, {"state": {...}} or {"error": "why"}, without
paying a Python start-up per crash state. `state` must not keep anything from one directory to the
next (close what it opens), since one server answers for many states.
"""
import json
import sys


def _answer(state_of, d):
    try:
        state = state_of(d)
    except SystemExit as e:
        return {"error": str(e.code) if e.code is not None else "exited"}
    except Exception as e:  # any failure of recovery is the state's answer
        return {"error": "%s: %s" % (type(e).__name__, e)}
    if not isinstance(state, dict):
        return {"error": "the check returned %s, not a dict" % type(state).__name__}
    return {"state": {str(k): str(v) for k, v in state.items()}}


def serve(state_of, stdin=sys.stdin, stdout=sys.stdout):
    """Answer for one directory per line until stdin closes."""
    for line in stdin:
        d = line.rstrip("\n")
        stdout.write(json.dumps(_answer(state_of, d)) + "\n")
        stdout.flush()


def main(state_of, argv=None):
    """`prog --serve` serves; `prog DIR` checks DIR once."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        serve(state_of)
        return
    if len(argv) != 1:
        sys.exit("usage: %s DIR | --serve" % sys.argv[0])
    answer = _answer(state_of, argv[0])
    if "error" in answer:
        sys.exit(answer["error"])
    for k in sorted(answer["state"]):
        print(json.dumps({"key": k, "value": answer["state"][k]}))
