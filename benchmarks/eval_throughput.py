"""Generation throughput of the evaluation layer against the stock path, on one CUDA GPU, in one process.

Stock (issue 8's definition): the base in 4-bit (NF4 + double quant, bf16 compute) with the LoRA adapter unmerged
(PEFT), Hugging Face ``generate``, batch 16, greedy. Ours: ``audited_ft.eval.model.ModelUnderTest`` exactly as a run
uses it — the same 4-bit load, then the base dequantised to bf16 (``eval.dequantize_base``: the NF4 values as bf16
matrices), the adapter unmerged, prompts sorted by length and batched by ``eval.gpu_batch_size`` ("auto": from the
free GPU memory).

The model is a Llama-2-7B-shaped model with random weights (no hub here) and a random LoRA adapter (r=64, all linear
layers, B not zero so it changes the output), written once to ``--work``. Prompts are ``--prompt-tokens`` words of a
word-level tokenizer (one word, one token), so every prompt has exactly that many tokens; every answer gets
``--new-tokens`` tokens (a random model almost never emits EOS; the script counts the tokens it got). Useful
tokens/s = generated tokens / wall time of the generation calls (model loading not timed). It also compares outputs:
ours at its batch size against the same precision at batch 1 (bf16, same ModelUnderTest), and against the stock
4-bit path, and prints the share of identical greedy answers.

    python benchmarks/eval_throughput.py --out $OUT/eval_throughput.json

At equal memory (issue 23): ``--budgets 8,24,70`` compares, per GPU memory budget, the best stock setup that fits it
(``stock_best``: the adapter merged into a bf16 base where that fits, else 4-bit + PEFT; the largest batch within the
budget; dynamic or static KV cache, whichever is faster) with ours under ``eval.memory_budget_gib``, same prompts:

    python benchmarks/eval_throughput.py --budgets 8,24,70 --out $OUT/eval_budgets.json
    python benchmarks/eval_throughput.py --table eval_8gib.json eval_24gib.json   # the markdown table, no GPU

Decode rate against the card's memory bandwidth (issue 23, an ESTIMATE, not a measurement of bandwidth): a decode
step of a dense model reads every weight once, so one card cannot take more than ``bandwidth / weight bytes`` steps
per second (4.8 TB/s / 13.5 GB = 356 for a bf16 7B model on an H200), whatever the batch. The steps each setup took
per second are counted as generate calls x new tokens / seconds; the seconds include the prefill, so this
understates the decode rate a little.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import sys
import time
from pathlib import Path

log = logging.getLogger("eval_throughput")
SHAPES = {
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32),
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16, num_attention_heads=16,
               num_key_value_heads=16),
}
VOCAB = 32000
# Peak memory bandwidth in TB/s by card name (NVIDIA's data sheets), for the decode bound; others: --bandwidth-tbs.
BANDWIDTH_TBS = {"H200": 4.8, "H100 80GB HBM3": 3.35, "H100 NVL": 3.9, "H100 PCIe": 2.0}
BF16_7B_BYTES = 13.5e9  # issue 23's figure for a Llama-2-7B in bf16 (6.74e9 parameters x 2 bytes)


def build(work: Path, shape: str, seed: int) -> tuple[Path, Path]:
    """A random-weight model folder (bf16 safetensors, word-level tokenizer) and a random LoRA adapter for it."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    model_dir, adapter_dir = work / f"llama-{shape}", work / f"llama-{shape}-lora-bf16"
    if (model_dir / "config.json").is_file() and (adapter_dir / "adapter_model.safetensors").is_file():
        return model_dir, adapter_dir
    if (model_dir / "config.json").is_file():  # the model is there, only the adapter is missing
        with torch.device("cuda"):
            model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        return model_dir, _save_adapter(model, adapter_dir)
    specials = ["[UNK]", "[PAD]", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + [f"w{i}" for i in range(VOCAB - len(specials))])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(model_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=4096, pad_token_id=1, bos_token_id=2,
                         eos_token_id=3, torch_dtype="bfloat16", **SHAPES[shape])
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    return model_dir, _save_adapter(model, adapter_dir)


def _save_adapter(model, adapter_dir: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=64, lora_alpha=16, target_modules="all-linear",
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
            if "lora_" in name:
                p.data = p.data.to(torch.bfloat16)  # as TRL trains and saves a QLoRA adapter
    peft_model.save_pretrained(adapter_dir)
    del model, peft_model
    gc.collect()
    torch.cuda.empty_cache()
    return adapter_dir


def prompts_for(n: int, length: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(f"w{rng.randrange(VOCAB - 4)}" for _ in range(length)) for _ in range(n)]


def stock(model_dir: Path, adapter_dir: Path, prompts: list[str], new_tokens: int, batch: int) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.bfloat16)
    base = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, dtype=torch.bfloat16,
                                                device_map={"": 0})
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()

    def run(chunk):
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to("cuda")
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        return tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    run(prompts[:batch])  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start, outs = time.perf_counter(), []
    for i in range(0, len(prompts), batch):
        outs += run(prompts[i:i + batch])
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = _figures(outs, seconds)
    result.update(batch=batch, precision="nf4+double_quant 4-bit base, LoRA unmerged (PEFT), bf16 compute",
                  peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2), outputs=outs)
    del model, base
    gc.collect()
    torch.cuda.empty_cache()
    return result


def largest_batch(fits, limit: int) -> int:
    """The largest batch for which ``fits(batch)`` holds, up to ``limit``: 8, 16, 32 … 1024 until one does not fit,
    then the gap halved in multiples of 8 (peak memory grows with the batch). 0 when 8 does not fit."""
    batch, over = 0, None
    for b in (8, 16, 32, 64, 128, 256, 512, 1024):
        if b > limit:
            break
        if not fits(b):
            over = b
            break
        batch = b
    while batch and over and over - batch > 8:
        mid = (batch + over) // 16 * 8
        batch, over = (mid, over) if fits(mid) else (batch, mid)
    return batch


def stock_best(model_dir: Path, adapter_dir: Path, prompts: list[str], new_tokens: int, budget_gib: float) -> dict:
    """The best stock generation a demanding user would set up within ``budget_gib`` of GPU memory: the adapter
    merged into a bf16 base (``merge_and_unload``) where the bf16 weights leave a quarter of the budget, else the
    4-bit base with the adapter unmerged (PEFT cannot merge into 4-bit weights); HF ``generate``, greedy, at the
    largest batch whose peak memory stays within the budget (tried on the longest prompts: 8, 16, 32 … 1024, then
    bisected in multiples of 8 between the last that fitted and the first that did not), with the
    default dynamic KV cache and with ``cache_implementation="static"``; the faster of the two is the result."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    budget = budget_gib * 2**30
    bf16_bytes = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))  # the bf16 checkpoint's size
    if bf16_bytes <= 0.75 * budget:
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, device_map={"": 0})
        model = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().eval()
        precision = "bf16 base, adapter merged (merge_and_unload)"
    else:
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch.bfloat16)
        base = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, dtype=torch.bfloat16,
                                                    device_map={"": 0})
        model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
        precision = "nf4+double_quant 4-bit base, adapter unmerged (bf16 weights do not fit the budget)"

    def run(chunk, cache):
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to("cuda")
        extra = {"cache_implementation": "static"} if cache == "static" else {}
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, **extra)
        return tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    longest = sorted(prompts, key=len)[::-1]
    tried = {}

    def fits(b: int) -> bool:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            run(longest[:b], "dynamic")
        except torch.OutOfMemoryError:
            tried[b] = "out of memory"
            return False
        tried[b] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return tried[b] * 2**30 <= budget

    batch = largest_batch(fits, len(prompts))
    out = {"precision": precision, "budget_gib": budget_gib, "batch_trials_peak_gib": tried, "batch": batch}
    if not batch:
        out["error"] = "no batch of 8 fits the budget"
        return out
    for cache in ("dynamic", "static"):
        try:
            run(prompts[:batch], cache)  # warm-up (and the static cache's allocation)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start, outs = time.perf_counter(), []
            for i in range(0, len(prompts), batch):
                outs += run(prompts[i:i + batch], cache)
            torch.cuda.synchronize()
            r = _figures(outs, time.perf_counter() - start)
            r["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        except Exception as exc:  # out of memory, or the static cache's automatic compilation failing
            r = {"error": "out of memory" if isinstance(exc, torch.OutOfMemoryError)
                 else f"{type(exc).__name__}: {str(exc)[:300]}"}
            gc.collect()
            torch.cuda.empty_cache()
        out[cache] = r
    ok = [c for c in ("dynamic", "static") if "tokens_per_second" in out[c] and out[c]["peak_gib"] <= budget_gib]
    out["best"] = max(ok, key=lambda c: out[c]["tokens_per_second"]) if ok else None
    del model, base
    gc.collect()
    torch.cuda.empty_cache()
    return out


def at_budgets(model_dir: Path, adapter_dir: Path, prompts: list[str], new_tokens: int, budgets: list[float],
               caches: tuple[str, ...] = ("dynamic",)) -> list:
    """Per memory budget: the best stock setup (``stock_best``) and ours with ``eval.memory_budget_gib`` set, once
    per ``eval.kv_cache`` setting in ``caches`` (one load), on the same prompts, in this process; the ratio of
    generated tokens/s of each setting to the best stock where both kept within the budget. A setting's first pass
    over all prompts is its warm-up (for "compiled" it compiles every batch shape; its time is kept, as what a short
    evaluation pays), the second is timed."""
    import torch

    from audited_ft.config import validate_config
    from audited_ft.eval.model import ModelUnderTest

    rows = []
    for budget in budgets:
        st = stock_best(model_dir, adapter_dir, prompts, new_tokens, budget)
        log.info("budget %s GiB, stock: %s", budget, {k: v for k, v in st.items()})
        cfg = validate_config({"model": {"name_or_path": str(model_dir), "use_chat_template": False},
                               "data": {"source": "unused.jsonl", "prompt_template": "{input}"},
                               "train": {"device": "cuda"}, "eval": {"memory_budget_gib": budget}})
        gc.collect()
        torch.cuda.empty_cache()
        mut = ModelUnderTest(cfg, adapter_dir)
        best = st.get(st.get("best") or "", {})
        by_cache = {}
        for setting in caches:
            cache, _, lora = setting.partition("+")  # "compiled+merged": eval.kv_cache compiled, eval.merge_adapter
            mut.cfg.eval.kv_cache = cache
            mut.merge_adapter = lora == "merged"
            if mut.merge_adapter and "4-bit base" in mut.precision:
                by_cache[setting] = {"error": "eval.merge_adapter does not apply to a 4-bit base"}
                continue
            torch.cuda.reset_peak_memory_stats()
            try:
                start = time.perf_counter()
                mut.generate(prompts if cache == "compiled" else prompts[:8], "adapter", new_tokens)  # warm-up
                torch.cuda.synchronize()
                warm = time.perf_counter() - start
                start = time.perf_counter()
                outs = mut.generate(prompts, "adapter", new_tokens)
                torch.cuda.synchronize()
            except Exception as exc:  # out of memory, or a compilation that fails: the other settings still run
                by_cache[setting] = {"error": "out of memory" if isinstance(exc, torch.OutOfMemoryError)
                                     else f"{type(exc).__name__}: {str(exc)[:300]}"}
                log.exception("budget %s GiB, ours (%s) failed", budget, setting)
                gc.collect()
                torch.cuda.empty_cache()
                continue
            ou = _figures(outs, time.perf_counter() - start)
            precision = (mut.precision.replace("LoRA unmerged", "LoRA merged per adapter") if mut.merge_adapter
                         else mut.precision)
            ou.update(precision=precision, kv_cache=cache, lora="merged" if mut.merge_adapter else "unmerged",
                      warmup_seconds=round(warm, 2),
                      peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                      batch=mut.batch_for(len(prompts[0].split()) + new_tokens))
            ou["ratio_vs_best_stock"] = (round(ou["tokens_per_second"] / best["tokens_per_second"], 2)
                                         if best and ou["peak_gib"] <= budget else None)
            log.info("budget %s GiB, ours (%s): %s", budget, setting, ou)
            by_cache[setting] = ou
        del mut
        gc.collect()
        torch.cuda.empty_cache()
        fits = [c for c, r in by_cache.items() if "tokens_per_second" in r and r["peak_gib"] <= budget]
        top = max(fits, key=lambda c: by_cache[c]["tokens_per_second"]) if fits else caches[0]
        rows.append({"budget_gib": budget, "stock": st, "ours": by_cache[top], "ours_by_kv_cache": by_cache,
                     "ratio_vs_best_stock": by_cache[top].get("ratio_vs_best_stock")})
    return rows


def bandwidth_of(card: str, override: float | None = None) -> float | None:
    """The card's peak memory bandwidth in bytes/s (``override`` in TB/s first), or None when unknown."""
    if override:
        return override * 1e12
    hits = [tbs for name, tbs in BANDWIDTH_TBS.items() if name in card]
    return hits[0] * 1e12 if hits else None


def decode_steps(row: dict, prompts: int, new_tokens: int) -> float | None:
    """Decode steps per second of one setup's result: generate calls x new tokens / seconds (prefill included)."""
    if not row.get("batch") or not row.get("seconds"):
        return None
    calls = -(-prompts // row["batch"])
    return calls * new_tokens / row["seconds"]


def kv_bytes_per_token(shape: str) -> int:
    """Bytes of bf16 key and value cache one token holds over every layer of ``shape``."""
    s = SHAPES[shape]
    return 2 * s["num_hidden_layers"] * s["num_key_value_heads"] * (s["hidden_size"] // s["num_attention_heads"]) * 2


def nf4_weight_bytes(shape: str) -> float:
    """Bytes of ``shape`` loaded as the harness loads it in 4-bit: NF4 linear weights (half a byte each, plus double
    quantisation's 8-bit absmax per 64 weights and a float32 scale per 256 absmax), bf16 embeddings and head."""
    s = SHAPES[shape]
    h, i, n = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"]
    linear = n * (2 * h * h + 2 * h * h * s["num_key_value_heads"] // s["num_attention_heads"] + 3 * h * i)
    return linear * (0.5 + 1 / 64 + 4 / (64 * 256)) + 2 * VOCAB * h * 2


def decode_ceiling(budget_gib: float, rep: dict, bandwidth: float) -> dict | None:
    """The most generated tokens/s ANY engine could reach within ``budget_gib`` on this card for the report's prompt
    and answer lengths: a roofline (Williams, Waterman & Patterson, CACM 2009) with memory traffic alone. Each decode
    step reads every weight once and the whole key/value cache of the batch; the batch is the largest whose cache
    for prompt + answer fits beside the weights (bf16 weights where they fit with one sequence, else NF4). Tokens/s =
    batch x bandwidth / (weight bytes + batch x mean context x cache bytes per token). It leaves out the prefill,
    activations, the logits and every kernel's inefficiency, so it is an upper bound, an ESTIMATE from arithmetic."""
    kv = kv_bytes_per_token(rep.get("shape", "7b"))
    seq = rep["prompt_tokens"] + rep["new_tokens"]
    budget = budget_gib * 2**30
    weights, precision = rep.get("bf16_weight_bytes", BF16_7B_BYTES), "bf16"
    if weights + seq * kv > budget:
        weights, precision = nf4_weight_bytes(rep.get("shape", "7b")), "NF4"
    batch = int((budget - weights) // (seq * kv))
    if batch < 1:
        return None
    context = rep["prompt_tokens"] + (rep["new_tokens"] + 1) / 2  # step i attends to prompt + i tokens, i = 1..new
    return {"weights": precision, "batch": batch,
            "tokens_per_second": batch * bandwidth / (weights + batch * context * kv)}


def budget_table(reports: list[dict], bandwidth_tbs: float | None = None) -> str:
    """A markdown table of ``--budgets`` results: per budget, the best stock setup and ours, the ratio, and each
    side's decode steps/s as a share of the card's weight-read bound (an estimate; see the module's docstring)."""
    head = ("| budget | stock: setup | stock tok/s | stock peak GiB | ours: setup | ours tok/s | ours peak GiB "
            "| ours ÷ stock | stock steps/s (share of bound) | ours steps/s (share of bound) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for rep in reports:
        bw = bandwidth_of(rep.get("card", ""), bandwidth_tbs)
        bound = bw / rep.get("bf16_weight_bytes", BF16_7B_BYTES) if bw else None

        def steps(row: dict) -> str:
            s = decode_steps(row, rep["prompts"], rep["new_tokens"])
            if s is None:
                return "-"
            return f"{s:.1f} ({s / bound:.0%})" if bound else f"{s:.1f} (card unknown)"

        for b in rep["budgets"]:
            st, ou = b["stock"], b["ours"]
            best = st.get(st.get("best") or "", {})
            if best:
                stock_cells = (f"{st['precision']}, batch {st['batch']}, {st['best']} cache",
                               f"{best['tokens_per_second']:,.1f}", f"{best['peak_gib']}")
                best = {**best, "batch": st["batch"]}
            else:
                stock_cells = (st.get("error", "nothing fits"), "-", "-")
            for ou in (b.get("ours_by_kv_cache") or {"": ou}).values():  # one row per eval.kv_cache setting
                if "error" in ou:
                    lines.append(f"| {b['budget_gib']:g} GiB | " + " | ".join(stock_cells) + f" | {ou['error']} | - "
                                 f"| - | - | {steps(best) if best else '-'} | - |")
                    continue
                ratio = ou.get("ratio_vs_best_stock", b.get("ratio_vs_best_stock"))
                cache = (f", {ou['kv_cache']} cache" if ou.get("kv_cache") else "") + (
                    f" (warm-up pass {ou['warmup_seconds']} s)" if ou.get("kv_cache") == "compiled" else "")
                lines.append(f"| {b['budget_gib']:g} GiB | " + " | ".join(stock_cells) +
                             f" | {ou['precision']}, batch {ou['batch']}{cache} | {ou['tokens_per_second']:,.1f} | "
                             f"{ou['peak_gib']} | {f'{ratio:.2f}×' if ratio else '-'} | "
                             f"{steps(best) if best else '-'} | {steps(ou)} |")
    card = {r.get("card") for r in reports}
    lines.append(f"\nCard: {', '.join(sorted(c for c in card if c))}; bound = bandwidth / bf16 weight bytes "
                 "(an estimate of the ceiling, not a measurement).")
    for rep in reports:  # what no engine could pass at this budget (``decode_ceiling``), against the best stock
        bw = bandwidth_of(rep.get("card", ""), bandwidth_tbs)
        for b in rep["budgets"]:
            top = decode_ceiling(b["budget_gib"], rep, bw) if bw else None
            st = b["stock"]
            best = st.get(st.get("best") or "", {}).get("tokens_per_second")
            if top:
                versus = f" = {top['tokens_per_second'] / best:.1f}× the best stock measured" if best else ""
                lines.append(f"Roofline ceiling at {b['budget_gib']:g} GiB (an estimate): {top['weights']} weights, "
                             f"batch {top['batch']}, {top['tokens_per_second']:,.0f} tok/s{versus}.")
    return "\n".join(lines)


def _figures(outs: list[str], seconds: float) -> dict:
    tokens = sum(len(o.split()) for o in outs)
    return {"prompts": len(outs), "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_second": round(tokens / seconds, 1)}


def ours(model_dir: Path, adapter_dir: Path, prompts: list[str], new_tokens: int, gpu_batch: str,
         reference_n: int, score_items: int = 2048, score_single: int = 64) -> dict:
    import torch

    from audited_ft.config import validate_config
    from audited_ft.eval.model import ModelUnderTest

    cfg = validate_config({"model": {"name_or_path": str(model_dir), "use_chat_template": False},
                           "data": {"source": "unused.jsonl", "prompt_template": "{input}"},
                           "train": {"device": "cuda"},
                           "eval": {"gpu_batch_size": gpu_batch if gpu_batch == "auto" else int(gpu_batch)}})
    mut = ModelUnderTest(cfg, adapter_dir)
    batch = mut.batch_for(len(prompts[0].split()) + new_tokens)
    mut.generate(prompts[:min(batch, len(prompts))], "adapter", new_tokens)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    outs = mut.generate(prompts, "adapter", new_tokens)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    log.info("ours: %d prompts in %.2f s", len(prompts), seconds)
    result = _figures(outs, seconds)
    result.update(batch=batch, precision=mut.precision, peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                  outputs=outs)
    result["scoring"] = scoring(mut, score_items, score_single)
    # the same precision, one prompt at a time: what batching and padding change
    mut.cfg.eval.gpu_batch_size = 1
    result["batch1_outputs"] = mut.generate(prompts[:reference_n], "adapter", new_tokens)
    result["teacher_forced"] = teacher_forced(mut, prompts[:reference_n], outs[:reference_n])
    del mut
    gc.collect()
    torch.cuda.empty_cache()
    return result


def scoring(mut, n_items: int, n_single: int, seed: int = 7) -> dict:
    """Log-likelihood scoring (what CrowS-Pairs, BBQ and the loss probes do): ``ModelUnderTest.score`` on items of
    BBQ/CrowS-like lengths (context 10-120 tokens, continuation 2-20), length-bucketed batches (``gpu_batch_size``
    auto) against one item per call, items/s of both and the largest difference of the summed log-probabilities."""
    import torch

    rng = random.Random(seed)
    words = lambda k: " ".join(f"w{rng.randrange(VOCAB - 4)}" for _ in range(k))  # noqa: E731
    items = [(words(rng.randint(10, 120)), words(rng.randint(2, 20))) for _ in range(n_items)]
    contexts, conts = [c for c, _ in items], [x for _, x in items]
    mut.score(contexts[:64], conts[:64], "adapter")  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    batched = mut.score(contexts, conts, "adapter")
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    setting = mut.cfg.eval.gpu_batch_size
    mut.cfg.eval.gpu_batch_size = 1
    start = time.perf_counter()
    single = mut.score(contexts[:n_single], conts[:n_single], "adapter")
    torch.cuda.synchronize()
    single_seconds = time.perf_counter() - start
    mut.cfg.eval.gpu_batch_size = setting
    diff = max(abs(a[0] - b[0]) for a, b in zip(batched, single))
    out = {"items": n_items, "batch": mut.batch_for(130, "score"), "items_per_second": round(n_items / seconds, 1),
           "single_items": n_single, "single_items_per_second": round(n_single / single_seconds, 1),
           "max_abs_sum_logprob_diff_vs_single": round(diff, 4)}
    out["ratio"] = round(out["items_per_second"] / out["single_items_per_second"], 2)
    log.info("scoring: %s", out)
    return out


def teacher_forced(mut, prompts: list[str], answers: list[str]) -> dict:
    """Greedy answers of a random-weight model are fragile: its next-token distribution is nearly flat, so rounding
    noise flips the argmax and the two continuations part ways. This scores the same token sequences (prompt + our
    answer) once as one batch and once one at a time, and compares the next-token choice at every answer position
    (top-1 agreement), the largest log-probability difference, and the median gap between the best and second-best
    token, the margin that decides how much noise a greedy step can take."""
    import torch

    tok, model = mut.tokenizer, mut.model
    seqs = [tok(p + " " + a, add_special_tokens=False, return_tensors="pt")["input_ids"][0] for p, a in zip(prompts, answers)]
    n_prompt = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, s in enumerate(seqs):
        ids[r, :len(s)], mask[r, :len(s)] = s, 1
    with mut._variant("adapter"), torch.inference_mode():
        batched = model(input_ids=ids.cuda(), attention_mask=mask.cuda()).logits.float().log_softmax(-1)
        single = [model(input_ids=s[None].cuda()).logits.float().log_softmax(-1)[0] for s in seqs]
    agree, total, max_diff, gaps = 0, 0, 0.0, []
    for r, s in enumerate(seqs):
        a, b = batched[r, n_prompt[r] - 1:len(s) - 1], single[r][n_prompt[r] - 1:len(s) - 1]
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        total += len(a)
        max_diff = max(max_diff, float((a - b).abs().max()))
        top2 = b.topk(2, dim=-1).values
        gaps += (top2[:, 0] - top2[:, 1]).tolist()
    gaps.sort()
    return {"positions": total, "top1_agreement": round(agree / total, 4), "max_abs_logprob_diff": round(max_diff, 4),
            "median_top1_top2_gap": round(gaps[len(gaps) // 2], 4)}


def agreement(a: list[str], b: list[str]) -> dict:
    same = sum(x == y for x, y in zip(a, b))
    first_tokens = sum(x.split()[:1] == y.split()[:1] for x, y in zip(a, b))
    return {"n": len(b), "identical": same, "identical_share": round(same / len(b), 3) if b else None,
            "same_first_token_share": round(first_tokens / len(b), 3) if b else None}


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--work", type=Path, default=Path("/tmp/aft_eval_bench"))
    ap.add_argument("--prompts", type=int, default=512, help="prompts for ours")
    ap.add_argument("--stock-prompts", type=int, default=48, help="prompts for stock (a multiple of its batch)")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--stock-batch", type=int, default=16)
    ap.add_argument("--gpu-batch", default="auto", help="eval.gpu_batch_size for ours (auto or a number)")
    ap.add_argument("--reference", type=int, default=16, help="prompts compared with the batch-1 reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--table", nargs="+", type=Path, metavar="JSON", help="only print the markdown table of these "
                    "--budgets result files (no GPU needed)")
    ap.add_argument("--ours-caches", default="dynamic", help="with --budgets: ours once per eval.kv_cache setting, "
                    "comma-separated (dynamic,static,compiled; SETTING+merged: with eval.merge_adapter too)")
    ap.add_argument("--bandwidth-tbs", type=float, help="the card's memory bandwidth in TB/s, for the decode bound")
    ap.add_argument("--budgets", default="", help="comma-separated GPU memory budgets in GiB (e.g. 8,24,70): instead "
                    "of the batch-16 comparison, the best stock setup against ours at each budget (equal memory)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("audited_ft.eval.model").setLevel(logging.DEBUG)
    if args.table:
        print(budget_table([json.loads(f.read_text()) for f in args.table], args.bandwidth_tbs))
        return 0
    if not torch.cuda.is_available():
        log.error("needs a CUDA GPU")
        return 2
    model_dir, adapter_dir = build(args.work, args.shape, args.seed)
    prompts = prompts_for(args.prompts, args.prompt_tokens, args.seed + 1)
    if args.budgets:
        rows = at_budgets(model_dir, adapter_dir, prompts, args.new_tokens,
                          [float(b) for b in args.budgets.split(",")], tuple(args.ours_caches.split(",")))
        report = {"card": torch.cuda.get_device_name(0), "torch": torch.__version__, "shape": args.shape,
                  "prompts": len(prompts), "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                  "bf16_weight_bytes": sum(f.stat().st_size for f in model_dir.glob("*.safetensors")),
                  "budgets": rows}
        print(json.dumps(report, indent=2))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
        return 0
    st = stock(model_dir, adapter_dir, prompts[:args.stock_prompts], args.new_tokens, args.stock_batch)
    log.info("stock: %s tok/s (batch %d, %d prompts, %.1f s, peak %.1f GiB)", st["tokens_per_second"], st["batch"],
             st["prompts"], st["seconds"], st["peak_gib"])
    ou = ours(model_dir, adapter_dir, prompts, args.new_tokens, args.gpu_batch, args.reference)
    log.info("ours : %s tok/s (batch %d, %d prompts, %.1f s, peak %.1f GiB)", ou["tokens_per_second"], ou["batch"],
             ou["prompts"], ou["seconds"], ou["peak_gib"])
    ratio = ou["tokens_per_second"] / st["tokens_per_second"]
    vs_batch1 = agreement(ou["outputs"][:args.reference], ou["batch1_outputs"])
    vs_stock = agreement(ou["outputs"][:args.stock_prompts], st["outputs"])
    log.info("ratio: %.2fx   ours vs same precision at batch 1: %s   ours (bf16) vs stock (4-bit): %s", ratio,
             vs_batch1, vs_stock)
    log.info("teacher-forced, batch vs one at a time: %s", ou["teacher_forced"])
    report = {"card": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "shape": args.shape, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
              "stock": {k: v for k, v in st.items() if k != "outputs"},
              "ours": {k: v for k, v in ou.items() if k not in ("outputs", "batch1_outputs", "teacher_forced", "scoring")},
              "scoring": ou["scoring"],
              "teacher_forced_batch_vs_single": ou["teacher_forced"],
              "ratio": round(ratio, 2), "ours_vs_batch1_same_precision": vs_batch1, "ours_vs_stock_4bit": vs_stock}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
