"""The typed result contract: every claim has the keys and a valid verdict; bad data is one clear error."""

import json
import math

import pytest

from discern.core import Claim, Result, ResultError


def claim(**kw):
    base = dict(statement="A beats B", paper="86.0 vs 84.0", ours="85.1 vs 84.9", test="paired bootstrap",
                ci=(-0.5, 0.9), p_value=0.3, verdict="inconclusive")
    return Claim(**{**base, **kw})


def test_round_trip_keeps_every_key():
    c = claim()
    r = Result(paper="x", title="X", claims=[c], plots=["plots/a.png"], table=[{"a": 1}], details={"n": 3})
    d = json.loads(json.dumps(r.to_dict()))
    assert set(d["claims"][0]) == {"statement", "paper", "ours", "test", "p_value", "ci", "verdict", "level"}
    assert d["claims"][0]["ci"] == [-0.5, 0.9] and d["n"] == 3
    back = Result.from_dict(d)
    assert back.claims == [c] and back.details == {"n": 3} and back.plots == ["plots/a.png"]
    assert r["claims"][0]["verdict"] == "inconclusive"
    assert back.verdicts() == {"held": 0, "not held": 0, "inconclusive": 1, "self-test": 0}


@pytest.mark.parametrize("kw, message", [
    (dict(verdict="held-ish"), "is not one of"),
    (dict(verdict="held", ci=None, p_value=None), "needs a p_value or a ci"),
    (dict(verdict="not held", ci=None, p_value=None), "needs a p_value or a ci"),
    (dict(p_value=1.5), "outside [0, 1]"),
    (dict(ci=(2.0, 1.0)), "low 2.0 > high 1.0"),
    (dict(ci=(1.0,)), "must be [low, high]"),
    (dict(statement=""), "non-empty string"),
    (dict(test="  "), "non-empty string"),
    (dict(p_value="0.01"), "expected a number"),
    (dict(p_value=True), "expected a number"),
])
def test_bad_claims_are_one_clear_error(kw, message):
    with pytest.raises(ResultError, match=message.replace("[", r"\[").replace("]", r"\]")):
        claim(**kw)


def test_inconclusive_and_self_test_may_lack_numbers_held_may_not():
    assert claim(verdict="inconclusive", ci=None, p_value=None).verdict == "inconclusive"
    assert claim(verdict="self-test", ci=None, p_value=None).verdict == "self-test"
    assert claim(verdict="held", ci=None, p_value=0.01).held
    assert not claim(verdict="not held", ci=(-2.0, -1.0), p_value=None).held


def test_non_finite_numbers_become_null():
    c = claim(p_value=float("nan"), ci=(float("-inf"), 1.0))
    assert c.p_value is None and c.ci is None
    assert json.loads(json.dumps(c.to_dict()))["ci"] is None


def test_result_validation():
    with pytest.raises(ResultError, match="no claims"):
        Result(paper="x", title="X", claims=[])
    with pytest.raises(ResultError, match="list of Claim"):
        Result(paper="x", title="X", claims=[{"statement": "s"}])
    with pytest.raises(ResultError, match="details may not use"):
        Result(paper="x", title="X", claims=[claim()], details={"claims": 1})
    with pytest.raises(ResultError, match="missing key 'title'"):
        Result.from_dict({"paper": "x", "claims": []})
    old_style = {"paper": "x", "title": "X", "claims": [{"claim": "A > B", "paper": "1", "ours": "2", "held": True}]}
    with pytest.raises(ResultError, match="missing keys"):
        Result.from_dict(old_style)
    no_numbers = {"paper": "x", "title": "X", "claims": [{"statement": "s", "paper": "1", "ours": "2", "test": "t",
                                                        "verdict": "inconclusive"}]}
    with pytest.raises(ResultError, match="p_value and/or ci"):
        Result.from_dict(no_numbers)
    assert math.isclose(claim(level=0.9).level, 0.9)
    with pytest.raises(ResultError, match="level"):
        claim(level=95)
