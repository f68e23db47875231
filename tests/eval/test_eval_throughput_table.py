"""benchmarks/eval_throughput.py's equal-memory table: the decode steps it counts, the card's bandwidth bound and the
share it prints (the figures RESULTS.md quotes come from this arithmetic)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_throughput", REPO / "benchmarks/eval_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(stock_best: str | None, ratio: float | None) -> dict:
    stock = {"precision": "bf16 merged", "batch": 64, "best": stock_best,
             "static": {"tokens_per_second": 9000.0, "peak_gib": 20.1, "seconds": 1.8},
             "dynamic": {"tokens_per_second": 3000.0, "peak_gib": 20.0, "seconds": 5.4}}
    if stock_best is None:
        stock = {"error": "no batch of 8 fits the budget"}
    return {"card": "NVIDIA H200", "prompts": 256, "prompt_tokens": 128, "new_tokens": 64,
            "bf16_weight_bytes": 12e9,
            "budgets": [{"budget_gib": 24, "stock": stock, "ratio_vs_best_stock": ratio,
                         "ours": {"precision": "bf16", "batch": 100, "tokens_per_second": 2500.0, "peak_gib": 21.0,
                                  "seconds": 6.4}}]}


def test_decode_steps_count_every_generate_call(bench):
    # 256 prompts in batches of 100: 3 calls of 64 steps each in 6.4 s
    assert bench.decode_steps({"batch": 100, "seconds": 6.4}, 256, 64) == pytest.approx(3 * 64 / 6.4)
    assert bench.decode_steps({"batch": 0, "seconds": 6.4}, 256, 64) is None


def test_bandwidth_is_looked_up_by_card_name_or_given(bench):
    assert bench.bandwidth_of("NVIDIA H200") == 4.8e12
    assert bench.bandwidth_of("NVIDIA H100 80GB HBM3") == 3.35e12
    assert bench.bandwidth_of("NVIDIA L4") is None
    assert bench.bandwidth_of("NVIDIA L4", 0.3) == 0.3e12


def test_the_table_shows_each_sides_share_of_the_weight_read_bound(bench):
    text = bench.budget_table([report("static", 0.28)])
    row = next(line for line in text.splitlines() if line.startswith("| 24 GiB"))
    bound = 4.8e12 / 12e9  # 400 steps/s
    stock_steps, ours_steps = 4 * 64 / 1.8, 3 * 64 / 6.4  # batch 64: 4 calls; batch 100: 3 calls
    assert f"{stock_steps:.1f} ({stock_steps / bound:.0%})" in row
    assert f"{ours_steps:.1f} ({ours_steps / bound:.0%})" in row
    assert "static cache" in row and "0.28×" in row and "9,000.0" in row


def test_a_budget_nothing_stock_fits_says_so_without_a_ratio(bench):
    text = bench.budget_table([report(None, None)], bandwidth_tbs=3.35)
    row = next(line for line in text.splitlines() if line.startswith("| 24 GiB"))
    assert "no batch of 8 fits the budget" in row
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[7] == "-" and cells[8] == "-"  # no ratio, no stock steps


def test_each_kv_cache_setting_of_ours_gets_its_own_row_and_ratio(bench):
    rep = report("static", 0.5)
    first = rep["budgets"][0]["ours"]
    rep["budgets"][0]["ours_by_kv_cache"] = {
        "dynamic": {**first, "kv_cache": "dynamic", "ratio_vs_best_stock": 0.28},
        "compiled": {**first, "kv_cache": "compiled", "tokens_per_second": 4500.0, "warmup_seconds": 61.2,
                     "ratio_vs_best_stock": 0.5},
        "static": {"error": "out of memory"}}
    rows = [line for line in bench.budget_table([rep]).splitlines() if line.startswith("| 24 GiB")]
    assert len(rows) == 3
    assert "dynamic cache" in rows[0] and "0.28×" in rows[0]
    assert "compiled cache (warm-up pass 61.2 s)" in rows[1] and "0.50×" in rows[1] and "4,500.0" in rows[1]
    assert "out of memory" in rows[2]


def test_the_roofline_ceiling_fills_the_budget_with_cache_and_reads_weights_and_cache_each_step(bench):
    kv = 2 * 32 * 32 * 128 * 2  # Llama-2-7B: K and V, 32 layers, 32 heads of 128, bf16
    assert bench.kv_bytes_per_token("7b") == kv
    rep = {"shape": "7b", "prompt_tokens": 128, "new_tokens": 64, "bf16_weight_bytes": 13.5e9}
    top = bench.decode_ceiling(24, rep, 3.35e12)
    batch = int((24 * 2**30 - 13.5e9) // (192 * kv))
    assert top["weights"] == "bf16" and top["batch"] == batch
    assert top["tokens_per_second"] == pytest.approx(batch * 3.35e12 / (13.5e9 + batch * 160.5 * kv))
    # one more sequence would not fit: the batch is the largest
    assert 13.5e9 + (batch + 1) * 192 * kv > 24 * 2**30
    # 8 GiB holds no bf16 7B: NF4 weights (about 3.9 GB with bf16 embeddings and head), a smaller read per step
    small = bench.decode_ceiling(8, rep, 3.35e12)
    assert small["weights"] == "NF4" and 3.7e9 < bench.nf4_weight_bytes("7b") < 4.0e9
    assert small["batch"] == int((8 * 2**30 - bench.nf4_weight_bytes("7b")) // (192 * kv))
    assert bench.decode_ceiling(3, rep, 3.35e12) is None  # not even the NF4 weights and one sequence fit


def test_the_table_states_the_ceiling_against_the_best_stock(bench):
    rep = report("static", 0.28)
    rep.update(shape="7b", prompt_tokens=128)
    line = next(x for x in bench.budget_table([rep]).splitlines() if x.startswith("Roofline ceiling at 24 GiB"))
    top = bench.decode_ceiling(24, rep, 4.8e12)
    assert f"batch {top['batch']}, {top['tokens_per_second']:,.0f} tok/s" in line
    assert f"{top['tokens_per_second'] / 9000.0:.1f}× the best stock measured" in line and "estimate" in line


def test_the_stock_batch_is_the_largest_multiple_of_8_that_fits(bench):
    for limit_memory in (8, 20, 96, 100, 127, 128, 700):
        calls = []

        def fits(b, cap=limit_memory):
            calls.append(b)
            return b <= cap
        got = bench.largest_batch(fits, 1024)
        assert got == limit_memory // 8 * 8, limit_memory
        assert len(calls) <= 8 + 7  # the doublings, then at most log2(1024 / 8) halvings
    assert bench.largest_batch(lambda b: False, 1024) == 0
    assert bench.largest_batch(lambda b: True, 256) == 256  # every prompt in one batch: no larger batch is tried
    assert bench.largest_batch(lambda b: b <= 96, 100) == 64  # 128 exceeds the prompts, so no bisection past 64
