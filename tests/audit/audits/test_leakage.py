"""The leakage audit with the real datasketch; no mocks."""

from __future__ import annotations

import random
import zlib

import pytest

from audited_ft.audit.audits import AUDITS, AuditContext
from audited_ft.audit.audits.leakage import LeakageAudit
from audited_ft.errors import DataError

pytest.importorskip("datasketch")

WORDS = ("apple river mountain quiet yellow window seven garden ticket morning station doctor coffee letter bridge "
         "winter orange market silver forest candle pocket thunder island marble engine violet harbor lantern "
         "meadow basket copper falcon pepper saddle timber velvet walnut anchor bottle cactus dragon feather glacier "
         "hammer jungle kettle ladder magnet needle oyster parrot quartz ribbon shovel tunnel umbrella vessel wagon "
         "yogurt zipper blanket cabinet dolphin").split()


def text(seed: int, n: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def row(rid: str, inp: str, tgt: str | None = None) -> dict:
    target = tgt if tgt is not None else f"summary of {rid} " + text(zlib.crc32(rid.encode()), 12)
    return {"id": rid, "input": inp, "target": target}


def clean_splits() -> dict[str, list[dict]]:
    return {"train": [row(f"tr{i}", text(i)) for i in range(40)],
            "validation": [row(f"va{i}", text(100 + i)) for i in range(8)],
            "test": [row(f"te{i}", text(200 + i)) for i in range(8)]}


def run(splits, probes=None, **options):
    return AUDITS.get("leakage")(LeakageAudit.Options(**options)).run(
        AuditContext(splits=splits, probe_texts=probes or {}))


def kinds(outcome) -> set[tuple]:
    return {(f["kind"], f["split_a"], f["row_a"], f["split_b"], f["row_b"], f["field"])
            for f in outcome.result["findings"]}


def test_registered_with_a_docstring_and_option_help():
    assert AUDITS.get("leakage") is LeakageAudit
    assert LeakageAudit.__doc__.strip().splitlines()[0] and "Blind spots" in LeakageAudit.__doc__
    assert all(f.description for name, f in LeakageAudit.Options.model_fields.items() if name != "enabled")


def test_clean_data_passes():
    outcome = run(clean_splits(), probes={"other": [text(999, 40)]})
    result = outcome.result
    assert result["status"] == "pass" and result["blocking"] is False and result["findings"] == []
    assert all(v == 0 for v in result["summary"]["totals"].values())
    assert outcome.splits is None


def test_exact_cross_split_duplicate_after_normalisation():
    splits = clean_splits()
    original = splits["train"][3]["input"]
    # same text, other case, punctuation and whitespace
    splits["test"][5]["input"] = "  " + original.upper().replace(" ", "  \n ").replace(".", "!!") + " ..."
    result = run(splits).result
    assert result["status"] == "fail" and result["blocking"] is True
    assert ("exact_cross_split", "train", "tr3", "test", "te5", "input") in kinds(run(splits))
    assert result["summary"]["exact_cross_split"]["train~test"]["input"] == 1
    assert result["summary"]["rows_affected"]["test"]["count"] == 1
    # an exact duplicate is not reported a second time as a near-duplicate
    assert result["summary"]["totals"]["near_duplicate_cross_split"] == 0


def test_near_duplicate_one_word_changed():
    splits = clean_splits()
    words = splits["train"][7]["input"].split()
    assert len(words) == 60
    words[30] = "xylophone"
    splits["validation"][2]["input"] = " ".join(words)
    outcome = run(splits)
    near = [f for f in outcome.result["findings"] if f["kind"] == "near_duplicate_cross_split"]
    assert [(f["row_a"], f["row_b"], f["field"]) for f in near] == [("tr7", "va2", "input")]
    assert 0.8 <= near[0]["jaccard"] < 1.0  # 51 of 56 distinct 5-grams survive a mid-text change
    assert outcome.result["status"] == "fail"
    # the unrelated pairs (same vocabulary, different order) are not reported
    assert outcome.result["summary"]["totals"]["near_duplicate_cross_split"] == 1


def test_unrelated_pair_is_not_near_duplicate():
    splits = {"train": [row("a", text(1))], "test": [row("b", text(2))]}
    result = run(splits, threshold=0.5).result
    assert result["summary"]["totals"]["near_duplicate_cross_split"] == 0 and result["status"] == "pass"


def test_within_split_duplicates_warn():
    splits = clean_splits()
    splits["train"][9]["target"] = splits["train"][4]["target"].lower()
    result = run(splits).result
    assert result["status"] == "warn" and result["blocking"] is False
    assert result["summary"]["exact_within_split"]["train"]["target"] == {"duplicate_rows": 1, "groups": 1}
    assert result["findings"][0]["kind"] == "exact_within_split"


def test_contamination_by_probe_texts():
    splits = clean_splits()
    probe_long = text(500, 30)      # 13 consecutive words of it end up inside a training input
    probe_exact = text(501, 10)     # appears as a whole training target
    probe_short = text(502, 9)      # 9 words: found whole inside a training input
    words = probe_long.split()
    splits["train"][0]["input"] += " " + " ".join(words[5:18])
    splits["train"][1]["target"] = probe_exact.upper()
    splits["train"][2]["input"] = "Intro words here. " + probe_short + " And the rest."
    splits["test"][0]["input"] = probe_long  # test rows are not checked by default (contamination_splits)
    probes = {"bench": [probe_long, probe_exact, text(503, 30), probe_short], "empty": []}
    result = run(splits, probes=probes).result
    sets = result["summary"]["contamination"]["sets"]
    assert sets["bench"] == {"probes": 4, "contaminated": 3, "percent": 75.0, "exact": 1, "ngram": 2}
    assert sets["empty"]["contaminated"] == 0
    found = {(f["row_a"], f["row_b"], f["match"]) for f in result["findings"] if f["kind"] == "contamination"}
    assert found == {("tr0", "0", "ngram"), ("tr1", "1", "exact"), ("tr2", "3", "ngram")}
    assert result["status"] == "fail"
    # 12 shared words are not enough for a 30-word probe
    splits2 = clean_splits()
    splits2["train"][0]["input"] += " " + " ".join(words[5:17])
    assert run(splits2, probes={"bench": [probe_long]}).result["summary"]["totals"]["contamination"] == 0


def test_partial_overlap_between_train_and_test_rows_warns():
    splits = clean_splits()
    shared = text(4242, 14)  # 14 words: one shared 13-gram is enough
    splits["train"][3]["input"] += " " + shared
    splits["test"][6]["input"] = shared + " " + splits["test"][6]["input"]
    result = run(splits).result
    assert result["status"] == "warn"
    assert result["summary"]["ngram_overlap_cross_split"]["train~test"] == {"input": 1, "target": 0}
    assert ("ngram_overlap_cross_split", "train", "tr3", "test", "te6", "input") in kinds(run(splits))
    # 12 shared words are not enough
    splits = clean_splits()
    splits["train"][3]["input"] += " " + " ".join(shared.split()[:12])
    splits["test"][6]["input"] = " ".join(shared.split()[:12]) + " " + splits["test"][6]["input"]
    assert run(splits).result["summary"]["totals"]["ngram_overlap_cross_split"] == 0


def test_policy_options():
    splits = clean_splits()
    splits["test"][1]["input"] = splits["train"][1]["input"]
    assert run(splits, policy={"exact_cross_split": "warn"}).result["status"] == "warn"
    assert run(splits, policy={"exact_cross_split": "ignore"}).result["status"] == "pass"
    with pytest.raises(ValueError):
        LeakageAudit.Options(policy={"exact_cross_splits": "fail"})
    with pytest.raises(ValueError, match="contamination_min_words"):
        LeakageAudit.Options(contamination_ngram=5, contamination_min_words=8)


def test_drop_policy_removes_train_rows_only():
    splits = clean_splits()
    splits["test"][1]["input"] = splits["train"][1]["input"]            # exact leak train↔test
    splits["validation"][2] = dict(splits["train"][5], id="va-copy")    # whole-row copy train↔validation
    splits["train"][9] = dict(splits["train"][3], id="tr-dup")          # duplicate inside train
    probe = " ".join(splits["train"][20]["target"].split() + splits["train"][20]["input"].split()[:20])
    outcome = run(splits, probes={"bench": [splits["train"][20]["input"]], "other": [probe]},
                  policy={"exact_cross_split": "drop", "near_duplicate_cross_split": "drop",
                          "contamination": "drop", "exact_within_split": "drop"})
    result = outcome.result
    assert result["status"] == "warn" and result["blocking"] is False
    dropped = result["summary"]["dropped"]
    assert set(dropped["row_ids"]) == {"tr1", "tr5", "tr-dup", "tr20"}
    assert dropped["train_rows_before"] == 40 and dropped["train_rows_after"] == 36 and dropped["rows"] == 4
    new = outcome.splits
    assert [r["id"] for r in new["train"]] == [r["id"] for r in splits["train"] if r["id"] not in dropped["row_ids"]]
    assert new["validation"] == splits["validation"] and new["test"] == splits["test"]
    # the remaining data passes the same audit with the default (fail) policy
    assert run(new).result["status"] == "pass"
    # dropping everything is refused with a clear error
    with pytest.raises(DataError, match="would remove every training row"):
        run({"train": splits["train"][:1], "test": [dict(splits["train"][0], id="t")]},
            policy={"exact_cross_split": "drop"})


def test_findings_capped_and_bad_rows_named():
    splits = {"train": [row(f"a{i}", "same text " * 8, "same target") for i in range(30)]}
    result = run(splits, max_findings=10).result
    assert len(result["findings"]) == 10 and result["findings_truncated"] is True
    assert result["summary"]["totals"]["exact_within_split"] == 29 * 3
    with pytest.raises(DataError, match=r"split 'train' row 1 \(id 'x'\): field 'input'"):
        run({"train": [row("ok", "fine"), {"id": "x", "input": 3, "target": "t"}]})


def test_scales_to_thousands_of_rows():
    rng = random.Random(0)
    splits = {"train": [row(f"tr{i}", text(10_000 + i, rng.randint(40, 120))) for i in range(6000)],
              "validation": [row(f"va{i}", text(20_000 + i)) for i in range(300)],
              "test": [row(f"te{i}", text(30_000 + i)) for i in range(300)]}
    splits["test"][7]["input"] = splits["train"][4321]["input"]
    result = run(splits).result
    assert result["summary"]["exact_cross_split"]["train~test"]["input"] == 1


@pytest.mark.parametrize("shingle", [1, 3, 5])
def test_joined_signature_equals_the_signature_of_the_joined_text(shingle):
    """input+target signatures are assembled from the parts (min of input, target and seam shingles): they must be
    exactly what hashing the joined text gives, short parts included."""
    import numpy as np

    from audited_ft.audit.audits.leakage import _Hashed, _Signatures, _texts

    rows = [row(f"r{i}", text(i, n), text(50 + i, m)) for i, (n, m) in
            enumerate([(60, 12), (2, 12), (60, 1), (1, 1), (4, 4), (0, 9), (30, 0), (5, 5)])]
    texts = _texts({"train": rows})
    hashed = _Hashed(texts)
    opts = LeakageAudit.Options(shingle_size=shingle)
    sig, ok = _Signatures(hashed, opts)("train", "input+target")
    joined = hashed("train", "input+target")
    want_ok = np.array([len(w) >= shingle for w in joined])
    assert (ok == want_ok).all()
    direct = _Signatures(hashed, opts)._minhash([w for w in joined if len(w) >= shingle])
    assert np.array_equal(sig, direct)


def test_band_candidates_are_the_pairs_agreeing_on_a_whole_band():
    import numpy as np

    from audited_ft.audit.audits.leakage import _band_candidates

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(30, 12), dtype=np.uint32)   # few values: many bands agree by chance
    b = rng.integers(0, 4, size=(20, 12), dtype=np.uint32)
    ok_a, ok_b = np.ones(33, dtype=bool), np.ones(21, dtype=bool)
    ok_a[[3, 10, 31]] = False  # rows without a signature are skipped; indices stay those of the split
    ok_b[7] = False
    rows_a, rows_b = np.flatnonzero(ok_a), np.flatnonzero(ok_b)
    got = _band_candidates(a, ok_a, b, ok_b, (4, 3))
    want = sorted(((int(rows_a[i]), int(rows_b[j])) for i in range(30) for j in range(20)
                   if any((a[i, k * 3:(k + 1) * 3] == b[j, k * 3:(k + 1) * 3]).all() for k in range(4))),
                  key=lambda p: (p[1], p[0]))
    assert got == want and len(want) > 20


def test_ascii_fast_path_of_normalize_matches_the_general_rule():
    import re
    import unicodedata

    from audited_ft.audit.audits._text import normalize

    def general(t: str) -> str:
        t = re.sub(r"[^\w\s]|_", "", unicodedata.normalize("NFKC", t).lower())
        return re.sub(r"\s+", " ", t).strip()

    rng = random.Random(3)
    alphabet = [chr(c) for c in range(128)] + list("éß ﬁ２")
    for k in range(500):
        t = "".join(rng.choice(alphabet[:128] if k % 2 else alphabet) for _ in range(rng.randint(0, 40)))
        assert normalize(t) == general(t), repr(t)
    assert normalize("  Don't  e-mail\tME_now!! ") == "dont email menow"
