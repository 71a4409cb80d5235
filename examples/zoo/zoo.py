#!/usr/bin/env python3
"""The zoo: crash-test storage engines nobody wrote for powercut, each against the promise its
documentation makes, and write what holds to reports/zoo.{md,json}.

    python3 examples/zoo/zoo.py [ENGINE ...] [--quick] [--powercut BIN] [--python PY] [--out DIR]

Each engine is a directory here with an `engine.json`: how to run its workload and its recovery,
the promise as its documentation states it (quoted, with the source), the settings to run (one
that keeps the promise and, where the engine has one, a weaker one), and an explanation for every
failing group powercut finds. For each engine, setting and profile (`posix`, `ext4-ordered`) the
workload is traced once per setting under strace and explored with power cuts and process
crashes and `--generations 2`.

Every failing group must match an explanation (by class, check stderr and dropped operations),
or the zoo exits 1 naming it: no unexplained red. A durable setting that fails gets a write-up
in zoo.md: the minimal state, the dropped operations, the command that re-creates it (the traces
are kept gzipped under DIR/zoo-traces/), and why it breaks the documented promise.

--quick runs the engines marked quick, fewer operations and a smaller budget: what CI runs.
--python is the Python that has the engines' packages (default: this one). Exit: 0 every group
explained, 1 an unexplained group or a run that failed, 2 bad input.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROFILES = ("posix", "ext4-ordered")


def fail(msg, code=2):
    print("zoo: " + msg, file=sys.stderr)
    sys.exit(code)


def load_engine(name):
    path = os.path.join(HERE, name, "engine.json")
    try:
        with open(path) as f:
            e = json.load(f)
    except OSError as err:
        fail("no engine %r (%s)" % (name, err))
    except ValueError as err:
        fail("%s: %s" % (path, err))
    for field in ("name", "promise", "settings"):
        if field not in e:
            fail("%s: missing field %r" % (path, field))
    e["dir"] = name
    return e


# The table's order: SQLite first (the reference), then the key-value stores, the Rust ones, and
# what cannot be tested last; an engine directory not listed comes after, by name.
ORDER = ["sqlite", "leveldb", "rocksdb", "lmdb", "zodb", "diskcache", "git", "redb", "fjall", "dbm_gnu"]


def engines():
    found = [d for d in os.listdir(HERE) if os.path.exists(os.path.join(HERE, d, "engine.json"))]
    return sorted(found, key=lambda d: (ORDER.index(d) if d in ORDER else len(ORDER), d))


def fill(e, a, template, **kw):
    """An engine's command template with {here}, {python}, {root} (and {dir}, {n}, {setting}
    from `kw`) filled in."""
    kw = dict(here=os.path.join(HERE, e["dir"]), python=a.python, root=ROOT, **kw)
    return [t.format(**kw) for t in template]


def shell(words):
    return " ".join(w if re.fullmatch(r"[\w@%+=:,./{}-]+", w) else "'" + w.replace("'", "'\\''") + "'" for w in words)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def available(e, a):
    """None if the engine can run here (built, if it is built here), else why not."""
    if "build" in e:
        r = run(fill(e, a, e["build"]))
        if r.returncode != 0:
            return "build failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    probe = e.get("requires")
    if probe is None:
        return None
    r = run(fill(e, a, probe))
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or ["probe failed"])[-1]
    return None


def version(e, a):
    if "version" not in e:
        return ""
    r = run(fill(e, a, e["version"]))
    return r.stdout.strip() if r.returncode == 0 else "unknown (%s)" % r.stderr.strip()[-80:]


def matches(x, group, failure, profile, setting):
    """Does explanation `x` explain this failing group?"""
    if x.get("class") and not re.fullmatch(x["class"], group["class"]):
        return False
    if x.get("profiles") and profile not in x["profiles"]:
        return False
    if x.get("settings") and setting not in x["settings"]:
        return False
    if x.get("stderr") and not re.search(x["stderr"], group.get("stderr") or ""):
        return False
    if x.get("dropped"):
        dropped = "\n".join(failure.get("dropped") or []) + "\n" + (group.get("dropped_kinds") or "")
        if not re.search(x["dropped"], dropped):
            return False
    if x.get("why") and not re.search(x["why"], failure.get("why") or ""):
        return False
    if x.get("generation") and x["generation"] != group.get("generation", 1):
        return False
    if x.get("at") and not re.search(x["at"], failure.get("at") or ""):
        return False
    kills = [st for st in group.get("states", []) if "kill" in st]
    if x.get("crash") == "power" and kills:
        return False
    if x.get("crash") == "kill" and len(kills) < len(group.get("states", [])):
        return False
    return True


def judge_groups(e, groups, profile, setting, generation, trace, failures=()):
    out = []
    for g in groups:
        failure = (g.get("shrunk") or {}).get("failure") or {}
        if not failure:
            # Not shrunk (powercut's shrinking budget ran out): the group's first state as found.
            first = (g.get("states") or [None])[0]
            failure = next((f for f in failures if f.get("state") == first), {})
        g = dict(g, generation=generation)
        # An explanation written for this setting first (a weaker setting's documented loss
        # before a bug that also shows under it).
        xs = sorted(e.get("explanations", []), key=lambda x: setting not in x.get("settings", []))
        x = next((x for x in xs if matches(x, g, failure, profile, setting)), None)
        out.append(
            {
                "generation": generation,
                "class": g["class"],
                "states": g["count"],
                "stderr": g.get("stderr") or "",
                "dropped_kinds": g.get("dropped_kinds") or "",
                "minimal_state": failure.get("state"),
                "dropped": failure.get("dropped") or [],
                "why": failure.get("why") or "",
                "at": failure.get("at") or "",
                "recreate": "gunzip -kf %s.gz && powercut explore %s --profile %s --seed 0 --materialize '%s' --into /tmp/powercut-state"
                % (trace, trace, profile, failure.get("state")),
                "kill_states": sum(1 for st in g.get("states", []) if "kill" in st),
                "explanation": x["id"] if x else None,
                "kind": kind_of(x, generation, failure),
            }
        )
    return out


def trace_workload(e, a, setting, workdir, traces):
    """Run the setting's workload under `powercut trace` in `workdir`: (trace path, the run)."""
    os.makedirs(os.path.join(workdir, "data"))
    trace = os.path.join(traces, "%s-%s.trace" % (e["dir"], setting["name"]))
    n = e["quick_ops" if a.quick else "ops"]
    cmd = fill(e, a, e["load"], dir="data", n=str(n), setting=setting["name"])
    return trace, run([a.powercut, "trace", "--dir", "data", "--out", trace, "--"] + cmd, cwd=workdir)


def trace_only(e, a, setting, workdir, traces):
    """Trace the workload and return what `powercut trace` said (its summary and warnings)."""
    _, r = trace_workload(e, a, setting, workdir, traces)
    lines = [l for l in (r.stderr + r.stdout).splitlines() if l.startswith(("traced", "warning"))]
    return [re.sub(r" in /\S+:", ":", l).replace(ROOT + "/", "") for l in lines]


def explore(e, a, setting, workdir, traces):
    """Trace the setting's workload once, explore it under each profile."""
    trace, r = trace_workload(e, a, setting, workdir, traces)
    if r.returncode != 0:
        return {"error": "trace failed: " + (r.stderr.strip() or r.stdout.strip())[-400:]}
    traced = (r.stderr + r.stdout).strip().splitlines()
    rows = []
    for profile in PROFILES:
        out = os.path.join(workdir, "%s.json" % profile)
        # A copy per profile: a later generation's traces are written beside the trace explored
        # (TRACE.gen2-1, ...), and each profile's exploration makes its own.
        explored = trace[: -len(".trace")] + ".%s.trace" % profile
        shutil.copyfile(trace, explored)
        check = ["--check-server", shell(fill(e, a, e["serve"]))] if "serve" in e else ["--check", shell(fill(e, a, e["check"], dir="{dir}"))]
        gens = e.get("generations", 2)
        budget = e.get("quick_budget", 150) if a.quick else e.get("budget", 1000)
        args = [a.powercut, "explore", explored, "--profile", profile, "--budget", str(budget), "--generations", str(gens), "--json", out] + check
        start = time.time()
        r = run(args, cwd=workdir)
        if r.returncode not in (0, 1) or not os.path.exists(out):
            rows.append({"profile": profile, "error": "explore failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-400:])})
            continue
        with open(out) as f:
            d = json.load(f)
        rel = os.path.relpath(explored, ROOT)
        groups = judge_groups(e, d["groups"], profile, setting["name"], 1, rel, d.get("failures", []))
        judged, failing = d["checked"], sum(g["count"] for g in d["groups"])
        failed_runs = []
        for gen in d.get("generations", []):
            if gen.get("failed_run"):
                failed_runs.append("from %s: %s" % (gen.get("from"), gen["failed_run"]))
            x = gen.get("exploration")
            if x is None:
                continue
            judged += x["checked"]
            failing += sum(g["count"] for g in x["groups"])
            gen_trace = os.path.relpath(gen["trace"], ROOT) if gen.get("trace") else rel
            groups += judge_groups(e, x["groups"], profile, setting["name"], gen["generation"], gen_trace, x.get("failures", []))
        rows.append(
            {
                "profile": profile,
                "states_judged": judged,
                "failing_states": failing,
                "groups": groups,
                "failed_runs": failed_runs,
                "seconds": round(time.time() - start, 1),
            }
        )
    os.remove(trace)  # each profile explored its own identical copy
    return {"traced": traced[0] if traced else "", "trace": os.path.relpath(trace, ROOT), "profiles": rows}


def kind_of(x, generation, failure):
    """The explanation's kind, except that a `bug` whose crash came before the first
    acknowledgement of the first run has lost nothing acknowledged: there it is `robustness`.
    (A later generation counts only its own run's acknowledgements; the state it started from
    may hold earlier ones, so there a `bug` stays one.)"""
    if x is None:
        return "unexplained"
    if x["kind"] == "bug" and generation == 1 and acked(failure) == 0:
        return "robustness"
    return x["kind"]


def acked(g):
    """How many acknowledgements came before the group's smallest failing state's crash."""
    m = re.search(r", (\d+) acknowledged$", g.get("at") or "")
    return int(m.group(1)) if m else 0


def verdict(setting, row):
    if "error" in row:
        return "error"
    if not row.get("states_judged"):
        return "error"  # a check that never ran is no result
    kinds = {g["kind"] for g in row["groups"]}
    if "unexplained" in kinds:
        return "UNEXPLAINED"
    if not row["groups"]:
        return "holds" if setting["durable"] else "no loss seen"
    if setting["durable"]:
        if "bug" in kinds:
            return "BREAKS its promise"
        return "promise kept; fails only as " + ", ".join(sorted(kinds))
    if kinds - {"documented"}:
        return "loses writes, as documented; also " + ", ".join(sorted(kinds - {"documented"}))
    return "loses writes, as documented"


def summary(setting):
    """One verdict for a setting over both profiles: the worst, with the profiles that show each
    kind of failure."""
    rows = setting.get("profiles", [])
    if "error" in setting or not rows or any("error" in r or not r.get("states_judged") for r in rows):
        return "error"
    where = {}
    for row in rows:
        for g in row["groups"]:
            where.setdefault(g["kind"], []).append(row["profile"])
    also = lambda kinds: "; ".join(  # noqa: E731
        "%s (%s)" % (k, ", ".join(dict.fromkeys(where[k]))) for k in kinds if k in where
    )
    if "unexplained" in where:
        return "UNEXPLAINED (%s)" % ", ".join(dict.fromkeys(where["unexplained"]))
    if setting["durable"]:
        if "documented" in where:
            return "UNEXPLAINED (a documented loss under a setting called durable: %s)" % ", ".join(dict.fromkeys(where["documented"]))
        if "bug" in where:
            rest = also(("platform", "robustness"))
            return "**BREAKS its promise** (%s)%s" % (", ".join(dict.fromkeys(where["bug"])), "; also " + rest if rest else "")
        rest = also(("platform", "robustness"))
        return "keeps its promise" + ("; fails as " + rest if rest else "")
    if not where:
        return "no loss seen"
    rest = also(("bug", "platform", "robustness"))
    return "loses writes, as documented" + ("; also " + rest if rest else "")


def write_reports(results, a):
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "zoo.json"), "w") as f:
        json.dump({"quick": a.quick, "engines": results}, f, indent=2, sort_keys=True)
        f.write("\n")
    md = ["# The zoo: real storage engines, crash-tested against their own promises", ""]
    md.append(
        "Generated by `python3 examples/zoo/zoo.py%s`. Each engine runs a workload of puts that "
        "acknowledges each one when the engine's API returns; powercut traces it with strace and "
        "explores its crash states (power cuts and kill -9, `--generations 2`) under each "
        "profile, judging the state the engine's own recovery reads back. Every failing group "
        "below is explained: `bug` breaks the documented promise under the settings that make "
        "it; `documented` is what the documentation says a weaker setting may lose; `platform` "
        "is an engine relying on a guarantee `posix` (the weakest model POSIX allows) does not give "
        "but Linux and ext4 do; `robustness` is a real defect that loses no acknowledged write "
        "(a store that cannot be opened after a crash before its first commit)." % (" --quick" if a.quick else "")
    )
    md += ["", "| engine | version | setting | promise | posix | ext4-ordered | verdict |", "|---|---|---|---|---|---|---|"]
    for r in results:
        if "skipped" in r:
            md.append("| %s | %s | | | | | not tested: %s |" % (r["name"], r.get("version", ""), r["skipped"]))
            continue
        for s in r["settings"]:
            cells = []
            for p in PROFILES:
                row = next((x for x in s.get("profiles", []) if x["profile"] == p), None)
                if row is None or "error" in row:
                    cells.append("error" if row else "-")
                    continue
                cells.append("%d / %d" % (row["failing_states"], row["states_judged"]))
            md.append(
                "| %s | %s | `%s` | %s | %s | %s | %s |"
                % (r["name"], r["version"], s["name"], "promised durable" if s["durable"] else "weaker", cells[0], cells[1], summary(s))
            )
    md += ["", "Cells are failing / judged crash states (both generations)."]
    # The headline, and every broken promise written up for its engine's maintainers.
    tested = [r for r in results if "skipped" not in r]
    untestable = [r["name"] for r in results if "skipped" in r and r.get("why")]
    missing = [r["name"] for r in results if "skipped" in r and not r.get("why")]
    durable = lambda r: [s for s in r["settings"] if s["durable"]]  # noqa: E731
    broken = [(r, s) for r in tested for s in durable(r) if summary(s).startswith("**BREAKS")]
    kept = [r["name"] for r in tested if all(summary(s).startswith("keeps its promise") for s in durable(r))]
    other = [r["name"] for r in tested if r["name"] not in kept and not any(rr is r for rr, _ in broken)]
    md += [
        "",
        "**Headline.** %d engines tested. Under the settings their documentation calls durable, %s keep their promise on both profiles (apart from the failures classed `platform` or `robustness` below); %s do not.%s%s%s"
        % (
            len(tested),
            ", ".join(kept) or "none",
            ", ".join(dict.fromkeys(r["name"] for r, _ in broken)) or "none",
            " Not testable in black-box mode: %s." % ", ".join(untestable) if untestable else "",
            " Not run here: %s." % ", ".join(missing) if missing else "",
            " No verdict (an error or an unexplained failure): %s." % ", ".join(other) if other else "",
        ),
    ]
    if broken:
        md += ["", "## Broken promises, ready to send upstream", ""]
        for r, s in broken:
            for row in s["profiles"]:
                for cause in dict.fromkeys(g["explanation"] for g in row["groups"] if g["kind"] == "bug"):
                    x = next(x for x in r["explanations"] if x["id"] == cause)
                    gs = [g for g in row["groups"] if g["explanation"] == cause]
                    g = min(gs, key=lambda g: (acked(g) == 0, g["generation"], len(g["dropped"]), len(g["minimal_state"] or "")))
                    md += [
                        "### %s, `%s`, %s: %s" % (r["name"], s["name"], row["profile"], x["title"]),
                        "",
                        "- Settings: %s (%s)." % (s["what"], r["version"]),
                        "- Promise: \"%s\" (%s)" % (r["promise"]["quote"][:400] + ("..." if len(r["promise"]["quote"]) > 400 else ""), r["promise"]["source"]),
                        "- %d crash states of %d fail this way. The smallest: %s%s; state `%s` (generation %d), %s: %s."
                        % (
                            sum(g["states"] for g in gs),
                            row["states_judged"],
                            g["at"],
                            " (counted in a later generation's own run, which started from a recovered state of the first run)" if g["generation"] > 1 else "",
                            g["minimal_state"],
                            g["generation"],
                            g["class"],
                            g["why"] or g["stderr"],
                        ),
                        "- Dropped: %s." % ("; ".join(g["dropped"]) or "nothing"),
                        "- Re-create: `%s`, then open it with the engine (the zoo's check: `%s`)." % (g["recreate"], "examples/zoo/%s" % r["dir"]),
                        "- Why it breaks the promise: %s" % x["text"],
                        "",
                    ]
    for r in results:
        md += ["", "## " + r["name"], ""]
        if "skipped" in r:
            md += ["Not tested: " + r["skipped"] + "."]
            if r.get("why"):
                md += ["", r["why"]]
            if r.get("evidence"):
                md += ["", "What `powercut trace` says of its workload:", "", "```"] + r["evidence"] + ["```"]
            continue
        p = r["promise"]
        md += ["**Promise.** " + p["claim"], "", "> " + p["quote"].replace("\n", "\n> "), "", "Source: " + p["source"], ""]
        if r.get("notes"):
            md += ["**What is and is not tested.** " + r["notes"], ""]
        for s in r["settings"]:
            md += ["### `%s`%s" % (s["name"], " (promised durable)" if s["durable"] else ""), "", s.get("what", ""), ""]
            if "error" in s:
                md += ["Error: " + s["error"], ""]
                continue
            for row in s["profiles"]:
                if "error" in row:
                    md += ["- %s: error: %s" % (row["profile"], row["error"])]
                    continue
                kills = sum(g["kill_states"] for g in row["groups"])
                md += [
                    "- **%s**: %d of %d states fail, %d of them after kill -9 (%s s)"
                    % (row["profile"], row["failing_states"], row["states_judged"], kills, row["seconds"])
                ]
                by_cause = {}
                for g in row["groups"]:
                    by_cause.setdefault(g["explanation"], []).append(g)
                for cause, gs in by_cause.items():
                    x = next((x for x in r["explanations"] if x["id"] == cause), None)
                    g = min(gs, key=lambda g: (g["generation"], len(g["dropped"]), len(g["minimal_state"] or "")))
                    md += [
                        "  - **%s** (%s): %d states, %d distinct failures; the smallest: generation %d, %s, state `%s`, dropped: %s; re-create: `%s`"
                        % (
                            x["title"] if x else "UNEXPLAINED",
                            g["kind"],
                            sum(g["states"] for g in gs),
                            len(gs),
                            g["generation"],
                            g["class"],
                            g["minimal_state"],
                            "; ".join(g["dropped"]) or "nothing",
                            g["recreate"],
                        )
                    ]
            md += [""]
        runs = [(row["profile"], s["name"], f) for s in r["settings"] for row in s.get("profiles", []) for f in row.get("failed_runs", [])]
        if runs:
            md += ["**Later generations whose workload could not run again** (the state passed its check, then the engine refused to carry on from it):", ""]
            for x in r.get("failed_runs", []):
                hits = [(p, n, f) for p, n, f in runs if re.search(x["match"], f)]
                if hits:
                    p, n, f = hits[0]
                    md += ["- **%s** (%s), %d runs, e.g. `%s` on %s: %s. %s" % (x["title"], x["kind"], len(hits), n, p, f[:300], x["text"])]
            md += [""]
        used = {g["explanation"] for s in r["settings"] for row in s.get("profiles", []) for g in row.get("groups", [])}
        for x in r["explanations"]:
            if x["id"] in used:
                md += ["**%s** (%s). %s" % (x["title"], x["kind"], x["text"]), ""]
    with open(os.path.join(a.out, "zoo.md"), "w") as f:
        f.write("\n".join(md).rstrip() + "\n")


def compress(traces):
    """gzip every trace (hex of mostly-zero blocks: the traces of one run are ~1.7 GB raw, ~4 MB
    compressed), reproducibly (no name or time in the header)."""
    for name in sorted(os.listdir(traces)):
        path = os.path.join(traces, name)
        if name.endswith(".gz"):
            continue
        with open(path, "rb") as src, open(path + ".gz", "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as dst:
                shutil.copyfileobj(src, dst)
        os.remove(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("engines", nargs="*", help="engine directories under examples/zoo (default: all)")
    p.add_argument("--quick", action="store_true", help="the quick engines, fewer operations, a smaller budget")
    p.add_argument("--powercut", default=os.path.join(ROOT, "target", "release", "powercut"))
    p.add_argument("--python", default=sys.executable, help="a Python with the engines' packages")
    p.add_argument("--update", action="store_true", help="run only the ENGINEs named, keeping the others' results in --out")
    p.add_argument("--rewrite", action="store_true", help="run nothing: write zoo.md again from --out's zoo.json")
    p.add_argument("--out", default=os.path.join(ROOT, "target", "zoo"), help="where zoo.{md,json} and zoo-traces/ go (reports: the committed copy)")
    a = p.parse_args()
    # Commands run in scratch directories: a relative path would name nothing there.
    a.out, a.powercut = os.path.abspath(a.out), os.path.abspath(a.powercut)
    if os.sep in a.python:
        a.python = os.path.abspath(a.python)
    if a.rewrite:
        try:
            with open(os.path.join(a.out, "zoo.json")) as f:
                doc = json.load(f)
        except (OSError, ValueError) as err:
            fail("--rewrite: cannot read %s: %s" % (os.path.join(a.out, "zoo.json"), err))
        a.quick = doc.get("quick", False)
        write_reports(doc["engines"], a)
        print("wrote %s" % os.path.join(a.out, "zoo.md"))
        return
    if not os.access(a.powercut, os.X_OK):
        fail("no powercut binary at %s (cargo build --release)" % a.powercut)
    names = a.engines or engines()
    chosen = [load_engine(n) for n in names]
    if a.quick and not a.engines:
        chosen = [e for e in chosen if e.get("quick")]
    traces = os.path.join(a.out, "zoo-traces")
    kept = []
    if a.update:
        # Keep the other engines' results and traces; run the chosen ones again.
        try:
            with open(os.path.join(a.out, "zoo.json")) as f:
                kept = json.load(f)["engines"]
        except (OSError, ValueError, KeyError) as err:
            fail("--update: cannot read %s: %s" % (os.path.join(a.out, "zoo.json"), err))
        for e in chosen:
            for name in os.listdir(traces) if os.path.isdir(traces) else []:
                if name.startswith(e["dir"] + "-"):
                    os.remove(os.path.join(traces, name))
        kept = [r for r in kept if r["dir"] not in {e["dir"] for e in chosen}]
    else:
        shutil.rmtree(traces, ignore_errors=True)
    os.makedirs(traces, exist_ok=True)
    results, bad = [], []
    for e in chosen:
        r = {k: e[k] for k in ("name", "promise") if k in e}
        r["dir"] = e["dir"]
        r["explanations"] = e.get("explanations", [])
        r["notes"] = e.get("notes", "")
        r["failed_runs"] = e.get("failed_runs", [])
        why = available(e, a)
        if e.get("untestable"):
            r.update(skipped=e["untestable"], why=e.get("why", ""), version=version(e, a) if not why else "")
            if not why:
                # The evidence: what the trace of its workload shows and warns.
                with tempfile.TemporaryDirectory(prefix="powercut-zoo-") as w:
                    r["evidence"] = trace_only(e, a, e["settings"][0], w, traces)
            results.append(r)
            print("%s: not testable in black-box mode: %s" % (e["name"], e["untestable"]), flush=True)
            continue
        if why:
            r.update(skipped="not installed here (%s)" % why, version="")
            results.append(r)
            bad.append("%s: not installed (%s)" % (e["name"], why))
            continue
        r["version"] = version(e, a)
        r["settings"] = []
        for s in e["settings"]:
            with tempfile.TemporaryDirectory(prefix="powercut-zoo-") as w:
                got = explore(e, a, s, w, traces)
            got.update(name=s["name"], durable=s["durable"], what=s.get("what", ""))
            r["settings"].append(got)
            if "error" in got:
                bad.append("%s %s: %s" % (e["name"], s["name"], got["error"]))
                continue
            for row in got["profiles"]:
                v = verdict(s, row)
                line = "%s %s %s: %s" % (e["name"], s["name"], row["profile"], v)
                if "error" not in row:
                    line += " (%d / %d states failing, %s s)" % (row["failing_states"], row["states_judged"], row["seconds"])
                print(line, flush=True)
                if v in ("UNEXPLAINED", "error"):
                    bad.append(line)
                    for g in row.get("groups", []):
                        if g["kind"] == "unexplained":
                            print("  unexplained: generation %d %s, stderr %r, dropped %s\n    %s" % (g["generation"], g["class"], g["stderr"][:200], g["dropped"], g["recreate"]))
                for f in row.get("failed_runs", []):
                    x = next((x for x in e.get("failed_runs", []) if re.search(x["match"], f)), None)
                    if x is None:
                        bad.append("%s %s %s: a later generation's run failed: %s" % (e["name"], s["name"], row["profile"], f))
        results.append(r)
    compress(traces)
    order = engines()
    results = sorted(kept + results, key=lambda r: order.index(r["dir"]) if r["dir"] in order else len(order))
    write_reports(results, a)
    print("wrote %s" % os.path.join(a.out, "zoo.md"))
    if bad:
        print("zoo: %d problem(s):\n  %s" % (len(bad), "\n  ".join(bad)), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
