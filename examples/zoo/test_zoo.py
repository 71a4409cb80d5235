"""Tests of the zoo's judging: every failing group needs an explanation, and the verdicts say
what the explanations' kinds mean. Run: python3 -m unittest examples/zoo/test_zoo.py"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # noqa: E402

ENGINE = {
    "explanations": [
        {"id": "weak", "kind": "documented", "settings": ["nosync"], "class": "durability", "crash": "power"},
        {"id": "dir", "kind": "platform", "profiles": ["posix"], "class": "durability", "dropped": "mkdir db: lost"},
        {"id": "torn", "kind": "bug", "class": "recovery-failed", "stderr": "corrupt", "at": ", [1-9]\\d* acknowledged$"},
    ]
}


def group(cls, dropped=(), stderr="", states=("5:L-/1",), at="crash point at operation 5, 2 acknowledged"):
    return {
        "class": cls,
        "count": len(states),
        "states": list(states),
        "stderr": stderr,
        "dropped_kinds": "",
        "shrunk": {"failure": {"dropped": list(dropped), "why": "", "at": at, "state": states[0]}},
    }


def judge(g, profile="posix", setting="sync", generation=1):
    return zoo.judge_groups(ENGINE, [g], profile, setting, generation, "t.trace")[0]


class Judging(unittest.TestCase):
    def test_each_field_of_an_explanation_must_match(self):
        self.assertEqual(judge(group("durability", ["directory: op #1 mkdir db: lost"]))["explanation"], "dir")
        # The same drop under ext4-ordered is not what `dir` explains.
        self.assertEqual(judge(group("durability", ["directory: op #1 mkdir db: lost"]), "ext4-ordered")["kind"], "unexplained")
        self.assertEqual(judge(group("recovery-failed", stderr="file corrupt"))["explanation"], "torn")
        # Nothing acknowledged: not the bug `torn` describes.
        at0 = "crash point at operation 5, 0 acknowledged"
        self.assertEqual(judge(group("recovery-failed", stderr="file corrupt", at=at0))["kind"], "unexplained")
        self.assertEqual(judge(group("validity"))["kind"], "unexplained")

    def test_a_setting_s_own_explanation_comes_first_and_kill_states_are_told_apart(self):
        self.assertEqual(judge(group("durability", ["directory: op #1 mkdir db: lost"]), setting="nosync")["explanation"], "weak")
        # `weak` explains power cuts only: a kill -9 that loses a put is something else.
        killed = group("durability", states=("5:kill-applied",))
        self.assertEqual(judge(killed, setting="nosync")["kind"], "unexplained")
        self.assertEqual(judge(killed, setting="nosync")["kill_states"], 1)

    def test_verdicts(self):
        durable, weak = {"durable": True}, {"durable": False}
        row = lambda *kinds: {"states_judged": 10, "groups": [{"kind": k} for k in kinds]}  # noqa: E731
        self.assertEqual(zoo.verdict(durable, row()), "holds")
        self.assertEqual(zoo.verdict(durable, row("bug", "platform")), "BREAKS its promise")
        self.assertEqual(zoo.verdict(durable, row("platform")), "promise kept; fails only as platform")
        self.assertEqual(zoo.verdict(durable, row("platform", "unexplained")), "UNEXPLAINED")
        self.assertEqual(zoo.verdict(weak, row("documented")), "loses writes, as documented")
        self.assertEqual(zoo.verdict(weak, row()), "no loss seen")
        self.assertEqual(zoo.verdict(durable, {"error": "x"}), "error")
        # Nothing judged is no result, not a pass.
        self.assertEqual(zoo.verdict(durable, {"states_judged": 0, "groups": []}), "error")

    def test_a_setting_s_summary_names_the_profiles(self):
        rows = [
            {"profile": "posix", "states_judged": 9, "groups": [{"kind": "bug"}, {"kind": "platform"}]},
            {"profile": "ext4-ordered", "states_judged": 9, "groups": [{"kind": "bug"}]},
        ]
        s = {"durable": True, "profiles": rows}
        self.assertEqual(zoo.summary(s), "**BREAKS its promise** (posix, ext4-ordered); also platform (posix)")
        s = {"durable": True, "profiles": [dict(r, groups=[{"kind": "platform"}]) for r in rows]}
        self.assertEqual(zoo.summary(s), "keeps its promise; fails as platform (posix, ext4-ordered)")
        s = {"durable": False, "profiles": [dict(r, groups=[{"kind": "unexplained"}]) for r in rows[:1]]}
        self.assertEqual(zoo.summary(s), "UNEXPLAINED (posix)")


class EngineFiles(unittest.TestCase):
    def test_every_engine_file_is_complete_and_its_explanations_are_unique(self):
        for name in zoo.engines():
            e = zoo.load_engine(name)
            ids = [x["id"] for x in e.get("explanations", [])]
            self.assertEqual(len(ids), len(set(ids)), name)
            for x in e.get("explanations", []):
                self.assertIn(x["kind"], ("bug", "documented", "platform", "robustness"), (name, x["id"]))
                self.assertTrue(x.get("title") and x.get("text"), (name, x["id"]))
            self.assertTrue(e["promise"].get("quote") and e["promise"].get("source"), name)
            self.assertTrue(any(s["durable"] for s in e["settings"]), name)
            # A documented loss belongs to a weaker setting, never to one called durable.
            durable = {s["name"] for s in e["settings"] if s["durable"]}
            for x in e.get("explanations", []):
                if x["kind"] == "documented":
                    self.assertTrue(x.get("settings") and not durable & set(x["settings"]), (name, x["id"]))


if __name__ == "__main__":
    unittest.main()
