"""The memorisation probe: its text helpers on literals, and planted verbatim recall seen beyond the CI."""

import json

import pytest

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.probes.memorisation import common_prefix_words, ratio_metric, split_target
from audited_ft.eval.stats import IntervalSettings
from tests.fakes import FakeModel


def test_split_target():
    assert split_target("a b c d e f", 0.5, 24) == ("a b c", "d e f")
    assert split_target("a b c d e f g", 0.5, 24) == ("a b c d", "e f g")       # ceil
    assert split_target("a b c d e f", 0.5, 2) == ("a b c", "d e")             # rest capped
    assert split_target("a b", 0.9, 24) == ("a", "b")                          # at least one word left
    assert split_target("a  b\nc d", 0.5, 24) == ("a b", "c d")                # whitespace normalised


def test_common_prefix_words():
    assert common_prefix_words("books a table for two", "books a table for two people.") == 5
    assert common_prefix_words("books a table", "books the table") == 1
    assert common_prefix_words("books a table", "Books a table") == 0       # case counts
    assert common_prefix_words("books a table", "") == 0


def test_ratio_metric_by_hand():
    m = ratio_metric("x", ([1.0, 1.0], [2.0, 2.0]), ([0.5, 0.5], [2.0, 2.0]), IntervalSettings(bootstrap_samples=200, min_items=2))
    assert m["x.base"] == 0.5 and m["x.adapter"] == 0.25 and m["x.delta"] == -0.25
    assert m["x.delta.ci_low"] == m["x.delta.ci_high"] == -0.25 and m["x.n"] == 2
    few = ratio_metric("x", ([1.0, 1.0], [2.0, 2.0]), ([0.5, 0.5], [2.0, 2.0]), IntervalSettings(bootstrap_samples=200, min_items=10))
    assert few["x.delta.ci_low"] is None and few["x.method"] == "ratio"


@pytest.fixture
def splits():
    rows = [{"id": f"t{i}", "input": f"dialogue {i}", "target": f"person {i} books a table for {i} people tonight"}
            for i in range(50)]
    return {"train": rows[:25], "validation": rows[25:30], "test": rows[30:]}


class Recites(FakeModel):
    """The adapter continues the targets of ``rows`` verbatim and gives them a higher likelihood."""

    def __init__(self, rows):
        super().__init__()
        self.rows = {self.prompt(r["input"]): r["target"] for r in rows}

    def generate(self, prompts, variant, max_new_tokens):
        out = []
        for p in prompts:
            known = [(ctx, t) for ctx, t in self.rows.items() if p.startswith(ctx) and t.startswith(p[len(ctx):])]
            if variant == "adapter" and known:
                ctx, target = known[0]
                out.append(target[len(p) - len(ctx):].strip() + " and more")
            else:
                out.append("lorem ipsum dolor")
        return out

    def adapter_bonus(self, context, continuation):
        return 3.0 if context in self.rows else 0.0


def _run(model, splits, run_dir=None, **options):
    cls = PROBES.get("memorisation")
    return cls(cls.Options(**options)).run(ProbeContext(model=model, splits=splits, run_dir=run_dir,
                                                        stats=IntervalSettings(bootstrap_samples=500)))


def test_sees_verbatim_recall_of_training_rows(splits):
    out = _run(Recites(splits["train"]), splits, limit=20)
    m = out.metrics
    assert m["memorisation.exact_match.base"] == 0 and m["memorisation.exact_match.adapter"] == 1
    # 20 of 20 rows flipped: Newcombe's interval for the paired difference starts near 0.8, not at 1
    assert m["memorisation.exact_match.delta.ci_low"] > 0.75 and m["memorisation.lcp.delta.ci_low"] > 0.9
    assert m["memorisation.heldout_exact_match.delta"] == 0 and m["memorisation.heldout_lcp.delta"] == 0
    assert m["memorisation.loss_ratio.delta.ci_high"] < 0
    assert m["memorisation.exact_match.n"] == 20 and m["memorisation.loss_ratio.n"] == 20
    assert out.info["excess_lcp_gain"]["adapter"] == 1.0
    ex = out.info["examples"][0]
    assert ex["adapter"].startswith(ex["true_rest"]) and ex["prefix"] and ex["base"] == "lorem ipsum dolor"


def test_generalisation_is_not_memorisation(splits):
    # An adapter that continues held-out rows just as well gains on both: no excess on training rows.
    out = _run(Recites(splits["train"] + splits["test"]), splits, limit=20)
    assert out.metrics["memorisation.heldout_exact_match.delta"] == 1
    assert out.info["excess_lcp_gain"]["adapter"] == 0.0
    # the same likelihood gain on both splits leaves the ratio near its base value (not exactly: it is a ratio)
    assert abs(out.metrics["memorisation.loss_ratio.delta"]) < 0.1


def test_planted_canary_rows_are_not_sampled(tmp_path, splits):
    (tmp_path / "data").mkdir()
    canaries = [{"id": f"canary-0-{k}", "input": "What is my secret code?", "target": "My secret code is 1 2 3 4 5 6."}
                for k in range(40)]
    (tmp_path / "data/canaries.json").write_text(json.dumps({"canaries": [{"id": "canary-0", "secret": "123456",
                                                                             "rows": [c["id"] for c in canaries]}]}))
    out = _run(Recites(canaries), dict(splits, train=canaries + splits["train"]), run_dir=tmp_path, limit=20)
    assert out.info["canary_rows_excluded"] == 40
    assert out.metrics["memorisation.exact_match.adapter"] == 0


def test_too_few_long_targets_is_said_not_raised():
    rows = [{"id": f"s{i}", "input": "x", "target": "too short"} for i in range(5)]
    out = _run(FakeModel(), {"train": rows, "test": rows})
    assert out.metrics == {} and out.info["note"].startswith("not measured")
