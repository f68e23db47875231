"""Wall time of a config's whole probe suite, base + adapter, through ``audited-ft eval``, on one CUDA GPU.

What runs is the product's own path: ``pipeline.start_run`` and the data stage on the config's data sets (from
``--data-dir``), a LoRA adapter placed as the run's trained adapter, then ``audited-ft eval RUN`` in a subprocess,
timed from its start to its exit: loading and quantising the base to 4-bit, dequantising it for evaluation, every
enabled probe on base and adapter (generation, sampling, scoring, the toxicity and sentiment classifiers, bootstrap
CIs) and writing the results. The run folder is new, so nothing comes from the evaluation cache. Per-probe seconds
are read from the run's ``eval/probes.json``; generated and scored token counts from its generations.

The model (no hub here): Llama 2 7B's shape (32 layers, hidden 4096, MLP 11008, 32 heads, no grouped-query
attention) with random weights (std 0.02) and a real byte-level BPE tokenizer passed as ``--tokenizer`` (offline, the
embedded SmolLM2's, vocabulary 49,152; Llama 2's has 32,000, so this LM head is about 1.5x larger), and a random LoRA
adapter (r=64, alpha 16, every linear layer, B not zero, saved in bf16 as TRL saves a QLoRA adapter). A random model
rarely emits its end-of-sequence token, so every generation runs to its token limit: a trained model that stops
earlier generates less. Written once to ``--work`` and reused.

    python benchmarks/eval_suite.py --tokenizer TOKENIZER_DIR --data-dir ../shared/data --out result.json
    python benchmarks/eval_suite.py ... --probes bbq,crows_pairs     # a subset, the rest disabled

Prints one JSON object (also written to ``--out``): total wall seconds of the command, per-probe seconds, the card.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eval_throughput import SHAPES, _save_adapter  # noqa: E402  (same adapter recipe as the throughput benchmark)

log = logging.getLogger("eval_suite")


def build(work: Path, tokenizer_dir: Path, shape: str, seed: int) -> tuple[Path, Path]:
    """A random-weight model folder (bf16 safetensors, the given tokenizer) and a random LoRA adapter for it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    model_dir, adapter_dir = work / f"llama-{shape}-bpe", work / f"llama-{shape}-bpe-lora"
    if (model_dir / "config.json").is_file() and (adapter_dir / "adapter_model.safetensors").is_file():
        return model_dir, adapter_dir
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.save_pretrained(model_dir)
    torch.manual_seed(seed)
    eos = tok.eos_token_id
    config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=4096, bos_token_id=tok.bos_token_id or eos,
                         eos_token_id=eos, pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
                         tie_word_embeddings=False, torch_dtype="bfloat16", **SHAPES[shape])
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    return model_dir, _save_adapter(model, adapter_dir)


def make_run(config: Path, model_dir: Path, adapter_dir: Path, work: Path, probes: list[str] | None,
             overrides: list[str]) -> Path:
    """A run folder through the product's own start and data stage, with ``adapter_dir`` as its trained adapter."""
    from audited_ft.pipeline import stage_data, start_run

    tree = yaml.safe_load(config.read_text())
    tree["model"]["name_or_path"] = str(model_dir)
    if probes:
        unknown = set(probes) - set(tree["probes"])
        if unknown:
            raise SystemExit(f"--probes: not in {config}: {sorted(unknown)}")
        tree["probes"] = {k: v for k, v in tree["probes"].items() if k in probes}
    path = work / "suite-config.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    cfg, rf = start_run(path, overrides, out=str(runs), run_id="suite")
    stage_data(cfg, rf)
    shutil.copytree(adapter_dir, rf.path / "train" / "adapter")
    return rf.path


def counts(run: Path) -> dict:
    """Generated texts and scored items per probe, from the run's generations (what the wall time paid for)."""
    out = {}
    for f in sorted((run / "eval" / "generations").glob("*.jsonl")):
        out[f.stem] = sum(1 for _ in f.open())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE.parent / "configs" / "llama2-7b_dialogsum.yaml")
    ap.add_argument("--tokenizer", type=Path, required=True, help="A tokenizer folder (tokenizer.json, config).")
    ap.add_argument("--data-dir", type=Path, required=True, help="The evaluation data sets ({data_dir}).")
    ap.add_argument("--work", type=Path, default=Path("/tmp/eval_suite"))
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--probes", help="Comma-separated subset of the config's probes (default: all of them).")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="Config override, as the CLI's.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch

    os.environ["AFT_DATA_DIR"] = str(args.data_dir.resolve())
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model_dir, adapter_dir = build(args.work, args.tokenizer, args.shape, args.seed)
    torch.cuda.empty_cache()
    log.info("model and adapter ready in %.0f s", time.perf_counter() - started)
    probes = args.probes.split(",") if args.probes else None
    run = make_run(args.config, model_dir, adapter_dir, args.work, probes, args.overrides)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "audited_ft", "eval", str(run)], env=os.environ.copy())
    seconds = time.perf_counter() - start
    probes_info = json.loads((run / "eval" / "probes.json").read_text()) if proc.returncode == 0 else {}
    manifest = json.loads((run / "manifest.json").read_text())
    result = {"command": f"audited-ft eval RUN ({args.config.name}"
                         + (f", probes {args.probes}" if args.probes else ", every probe of the config") + ")",
              "exit_code": proc.returncode, "wall_seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
              "card": torch.cuda.get_device_name(0), "shape": args.shape, "vocab": None,
              "probe_seconds": {k: v.get("seconds") for k, v in probes_info.items() if v.get("status") == "done"},
              "rows_written": counts(run) if proc.returncode == 0 else {},
              "eval_manifest": manifest.get("eval"),
              "versions": {m: __import__(m).__version__ for m in ("torch", "transformers", "peft", "bitsandbytes")}}
    result["vocab"] = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    result["load_and_other_seconds"] = round(seconds - sum(v or 0 for v in result["probe_seconds"].values()), 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)


if __name__ == "__main__":
    main()
