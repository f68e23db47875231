"""Capability and truthfulness probes: the scoring rules (acc, acc_norm, MC1, MC2) on hand-made log-likelihoods, the
plumbing from items to metrics on a scorer that knows the answers, the macro average's interval coverage by
simulation, and the blind spot at chance."""

import math

import numpy as np
import pytest

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.probes.capability import SETS, choice_scores, correct, macro_metric
from audited_ft.eval.probes.truthfulness import mc1, mc2, shuffled
from audited_ft.eval.stats import IntervalSettings


class TableScorer:
    """A scorer reading log-likelihoods off a table (context, continuation) → value, per variant: a contract-test
    stand-in for the model, so the expected accuracies are known exactly."""

    variants = ("base", "adapter")

    def __init__(self, table, default=-9.0):
        self.table, self.default, self.calls = table, default, 0

    def score(self, contexts, continuations, variant):
        self.calls += 1
        return [(self.table.get((variant, c, x), self.default), max(1, len(x.split())))
                for c, x in zip(contexts, continuations)]


def test_acc_and_acc_norm_follow_lm_evaluation_harness():
    # a long gold option with a lower total log-likelihood but a higher one per character
    items = [{"contexts": ["Q", "Q"], "choices": [" short", " a much longer right answer"], "label": 1}]
    model = TableScorer({("base", "Q", " short"): -6.0, ("base", "Q", " a much longer right answer"): -9.0})
    scores = choice_scores(model, items, "base")
    assert correct(scores, [1], 0) == [0.0]  # acc: raw log-likelihood prefers the short option
    assert correct(scores, [1], 1) == [1.0]  # acc_norm: −9/27 > −6/6
    assert model.calls == 1  # one batched call for every option of every item


def test_mc1_and_mc2_as_the_paper_defines_them():
    ll = np.log(np.array([0.5, 0.3, 0.2]))
    assert mc1(ll, [0, 1, 0]) == 0.0 and mc1(ll, [1, 0, 0]) == 1.0
    assert mc2(ll, [1, 1, 0]) == pytest.approx(0.8)
    assert mc2(np.array([-1000.0, -1001.0]), [0, 1]) == pytest.approx(1 / (1 + math.e))  # stable far from 0
    choices, labels = ["true", "false a", "false b", "false c"], [1, 0, 0, 0]
    c1, l1 = shuffled(choices, labels, seed=7, index=3)
    assert shuffled(choices, labels, seed=7, index=3) == (c1, l1)  # reproducible from the seed
    assert dict(zip(c1, l1)) == dict(zip(choices, labels))  # options keep their labels
    firsts = {shuffled(choices, labels, seed=7, index=i)[1].index(1) for i in range(40)}
    assert len(firsts) == 4  # the true answer is not always first any more


def _knows_answers(items_by_set, lose_every=2):
    """Base ranks every gold option first; the adapter loses every ``lose_every``-th item of each set."""
    table = {}
    for items in items_by_set.values():
        for n, it in enumerate(items):
            for j, (c, x) in enumerate(zip(it["contexts"], it["choices"])):
                gold = j == it["label"]
                table[("base", c, x)] = -1.0 if gold else -50.0
                table[("adapter", c, x)] = (-1.0 if gold else -50.0) if n % lose_every else (-50.0 if gold else -1.0)
    return TableScorer(table)


def test_capability_probe_turns_known_answers_into_accuracies():
    from audited_ft.eval.sets import load_probe_set

    items = {name: load_probe_set(name, "embedded", None).items for name in SETS}
    out = PROBES.get("capability")(PROBES.get("capability").Options()).run(
        ProbeContext(model=_knows_answers(items), splits={}, stats=IntervalSettings(bootstrap_samples=300)))
    m = out.metrics
    for name, (_, reported) in SETS.items():
        n = len(items[name])
        lost = len(range(0, n, 2))
        assert m[f"capability.{name}.{reported}.base"] == 1.0
        assert m[f"capability.{name}.{reported}.adapter"] == pytest.approx(1 - lost / n)
        assert m[f"capability.{name}.{reported}.n"] == n
    assert m["capability.macro.score.base"] == 1.0
    assert m["capability.macro.score.delta"] < 0 and m["capability.macro.score.delta.ci_high"] < 0
    assert out.info["reported"] == {k: v[1] for k, v in SETS.items()}
    assert not out.info.get("blind")  # a base at 100% is far from chance
    assert all(row["correct_base"] == 1.0 for row in out.generations["capability_piqa"])


def test_a_base_at_chance_is_a_blind_spot():
    from audited_ft.eval.sets import load_probe_set

    items = load_probe_set("arc_easy", "embedded", None).items
    # every option equally likely: argmax takes the first option, right only where the gold is first
    out = PROBES.get("capability")(PROBES.get("capability").Options(data={"arc_easy": "embedded"})).run(
        ProbeContext(model=TableScorer({}), splits={}, stats=IntervalSettings(bootstrap_samples=300)))
    assert "capability.arc_easy.acc_norm" in out.info["blind"]
    assert "chance" in out.info["blind"]["capability.arc_easy.acc_norm"]
    assert out.info["chance"]["arc_easy"] == pytest.approx(np.mean([1 / len(it["choices"]) for it in items]), abs=1e-4)


def test_options_name_only_known_sets():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown capability set"):
        PROBES.get("capability").Options(data={"mmlu": "embedded"})


def test_macro_interval_coverage_by_simulation():
    """The stratified percentile bootstrap of the macro average's difference covers the true difference at about
    the nominal 95% on samples of the size the CPU configs use (3 sets × 60 items), paired outcomes correlated as
    base and adapter answers are."""
    rng = np.random.default_rng(0)
    p_base, p_change = [0.45, 0.6, 0.7], 0.15
    truth = np.mean([pb - p_change * pb + p_change * (1 - pb) * 0.5 for pb in p_base]) - np.mean(p_base)
    reps, covered = 400, 0
    for r in range(reps):
        per = {}
        for k, pb in enumerate(p_base):
            b = (rng.random(60) < pb).astype(float)
            flip = rng.random(60) < p_change  # the adapter changes 15% of answers: right→wrong, or wrong→right half the time
            a = b.copy()
            a[flip & (b == 1)] = 0.0
            gain = flip & (b == 0) & (rng.random(60) < 0.5)
            a[gain] = 1.0
            per[f"s{k}"] = (b, a)
        out = macro_metric("m", per, IntervalSettings(bootstrap_samples=400, seed=r))
        covered += out["m.score.delta.ci_low"] <= truth <= out["m.score.delta.ci_high"]
    rate = covered / reps
    assert 0.91 <= rate <= 0.985, rate


def test_truthfulness_probe_on_known_answers():
    from audited_ft.eval.sets import load_probe_set

    items = load_probe_set("truthfulqa", "embedded", None).items
    table = {}
    for n, it in enumerate(items):
        for key in ("mc1", "mc2"):
            for c, lab in zip(it[key]["choices"], it[key]["labels"]):
                table[("base", f"Q: {it['question']}\nA:", " " + c)] = -1.0 if lab else -3.0
                table[("adapter", f"Q: {it['question']}\nA:", " " + c)] = (-3.0 if lab else -1.0) if n < 6 else (
                    -1.0 if lab else -3.0)
    out = PROBES.get("truthfulness")(PROBES.get("truthfulness").Options()).run(
        ProbeContext(model=TableScorer(table), splits={}, stats=IntervalSettings(bootstrap_samples=300)))
    m = out.metrics
    assert m["truthfulness.mc1.base"] == 1.0 and m["truthfulness.mc1.adapter"] == pytest.approx(1 - 6 / len(items))
    assert m["truthfulness.mc2.base"] > m["truthfulness.mc2.adapter"]
    assert len(out.info["changed"]) == 5 and not out.info.get("blind")
