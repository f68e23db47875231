"""Training throughput settings on the CPU (issue 7): packed rows keep examples apart, tokens are counted without
padding, the settings reach the summary, and the training stage runs under a 2-process launch (DDP over gloo).
The CUDA side (kernels, memory-budget calibration) is in test_gpu.py."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.train.speed import PackedRowsCollator, real_tokens
from tests.tiny_model import build_tiny_llama, tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    from tests.conftest import make_tiny_rows

    return tiny_config(tmp_path_factory.mktemp("tiny"), make_tiny_rows())


def _token_logprobs(model, batch):
    import torch

    with torch.no_grad():
        # use_cache=False as in training (TRL sets it): transformers derives the per-example mask from the position
        # ids only when there is no cache
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    return logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0][keep]


def test_packed_rows_give_each_example_the_loss_it_has_alone(tmp_path):
    """Two rows holding five examples of different lengths: every target token's log-probability equals the one
    computed on its example alone (no attention across example boundaries, positions restart per example)."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = build_tiny_llama(tmp_path / "m", ["a b c d e f g h i j k l m n o p q r s t u v w x y z"])
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()
    torch.manual_seed(0)
    lengths = [[7, 12, 5], [9, 4]]
    examples = [[torch.randint(4, 30, (n,)).tolist() for n in row] for row in lengths]
    # loss on the second half of each example, as completion-only loss would
    masks = [[[-100] * (n // 2) + ex[n // 2:] for ex, n in zip(row, ns)] for row, ns in zip(examples, lengths)]
    rows = [{"input_ids": sum(row, []), "labels": sum(mask, []), "seq_lengths": ns}
            for row, mask, ns in zip(examples, masks, lengths)]
    packed = PackedRowsCollator(pad_token_id=1)(rows)
    assert packed["input_ids"].shape == (2, 24) and "attention_mask" not in packed
    assert packed["position_ids"][0].tolist() == list(range(7)) + list(range(12)) + list(range(5))
    assert packed["position_ids"][1, 13:].eq(0).all() and packed["labels"][1, 13:].eq(-100).all()
    together = _token_logprobs(model, packed)
    alone = torch.cat([_token_logprobs(model, {"input_ids": torch.tensor([ex]), "labels": torch.tensor([m])})
                       for row, mrow in zip(examples, masks) for ex, m in zip(row, mrow)])
    assert together.shape == alone.shape and together.numel() == sum(n - n // 2 for ns in lengths for n in ns)
    assert torch.allclose(together, alone, atol=1e-5), (together - alone).abs().max()
    # without restarting positions the examples would see each other: the check above can fail
    crossed = dict(packed, position_ids=torch.arange(24).expand(2, 24))
    assert not torch.allclose(_token_logprobs(model, crossed), alone, atol=1e-3)
    assert real_tokens(packed["position_ids"]) == 24 + 13


def test_real_tokens_ignores_trailing_padding():
    import torch

    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7]])
    assert real_tokens(pos) == 5 + 8
    assert real_tokens(pos[0]) == 5


def _summary(run):
    return json.loads((run / "train/summary.json").read_text())


def test_packing_counts_the_same_tokens_as_padding_and_records_its_settings(tiny_cfg, tmp_path):
    """One epoch packed and one epoch padded train on the same tokens: the summaries' token counts match (padding is
    never counted), and the packed run takes fewer, fuller steps. A memory budget on the CPU is noted, not applied."""
    one_epoch = ["--set", "train.max_steps=-1", "--set", "train.epochs=1", "--set", "eval.limit=2",
                 "--set", "train.max_length=256"]  # rows of 256 tokens hold several of these ~70-token examples
    for run_id, packing in (("packed", "on"), ("padded", "off")):
        r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", run_id, *one_epoch,
                                "--set", f"train.packing={packing}", "--set", "train.memory_budget_gib=8"])
        assert r.exit_code == 0, r.output
    packed, padded = _summary(tmp_path / "packed"), _summary(tmp_path / "padded")
    assert packed["train_tokens"] == padded["train_tokens"] > 0
    assert packed["steps"] < padded["steps"]
    speed = packed["speed"]
    assert speed["packing"] is True and speed["pack_length"] == 256 and speed["mode"] == "single"
    assert speed["kernels"] == "none (CPU)" and speed["memory_budget_note"].startswith("ignored")
    assert speed["lm_head"] == "labelled positions only"
    assert speed["micro_batch"] == 4 and speed["measured_tokens_per_second"] == packed["tokens_per_second"]
    assert padded["speed"]["packing"] is False
    assert json.loads((tmp_path / "packed/train/speed.json").read_text())["train_rows"] == speed["train_rows"]
    stage = json.loads((tmp_path / "packed/manifest.json").read_text())["stages"]["train"]
    assert stage["speed"]["packing"] is True and stage["tokens_per_second"] == packed["tokens_per_second"]
    assert "train/speed.json" in json.loads((tmp_path / "packed/manifest.json").read_text())["artefacts"]
    html = (tmp_path / "packed/report.html").read_text()
    assert "Throughput settings the training stage chose" in html and "rows of 256 tokens" in html
    assert speed["unquantised_dtype"] == "float32" and "unquantised weights (embeddings, norms, head)" in html
    assert "off (padded batches)" in (tmp_path / "padded/report.html").read_text()


def test_other_commands_refuse_a_multi_process_launch(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert "started as one of 2" in r.output and "accelerate launch -m audited_ft train" in r.output
    assert not any(tmp_path.iterdir()), "nothing written"


def test_training_stage_under_a_two_process_launch(tiny_cfg, tmp_path):
    """torchrun starts the training stage twice (DDP over gloo on the CPU): the main process alone writes the log,
    summary, adapter and manifest; together the two processes train on the whole epoch's tokens, as one process
    does."""
    one_epoch = ["--set", "train.max_steps=-1", "--set", "train.epochs=1", "--set", "train.packing=on",
                 "--set", "train.max_length=256"]
    r = runner.invoke(app, ["audit", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "ddp", *one_epoch])
    assert r.exit_code == 0, r.output
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "audited_ft", "train", str(run)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("train: done —") == 2  # each process echoes its end (the stage log line is the main one's)
    m = json.loads((run / "manifest.json").read_text())
    assert m["stages"]["train"]["status"] == "done"
    ddp = _summary(run)
    assert ddp["speed"]["mode"] == "ddp" and ddp["speed"]["world_size"] == 2
    assert (run / "train/adapter/adapter_model.safetensors").is_file()
    assert not (run / "train/adapter/training_args.bin").exists()
    log = [json.loads(line) for line in (run / "train/log.jsonl").read_text().splitlines()]
    assert len([e for e in log if "loss" in e]) == ddp["steps"], "one log line per step, written once"
    # the same epoch in one process: the same tokens trained
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "one", *one_epoch,
                            "--set", "eval.limit=2"])
    assert r.exit_code == 0, r.output
    one = _summary(tmp_path / "one")
    assert ddp["train_tokens"] == one["train_tokens"]
    assert ddp["steps"] < one["steps"], "two processes: half the steps per epoch"
    # the rest of the run in one process continues from the trained adapter
    r = runner.invoke(app, ["run", "--resume", str(run), "--set", "eval.limit=2"])
    assert r.exit_code == 2  # --resume takes no --set: the refusal names it
    r = runner.invoke(app, ["run", "--resume", str(run)])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "manifest.json").read_text())["stages"]["report"]["status"] == "done"


def test_wrapper_names_are_stripped_and_an_incomplete_adapter_is_refused(tiny_cfg, tmp_path):
    """An adapter saved from an FSDP-wrapped model carries FSDP's module names; they are stripped so PEFT finds every
    LoRA weight. An adapter file that still lacks LoRA weights is refused at load (PEFT would only warn and evaluate
    those layers as the base model)."""
    from safetensors.torch import load_file, save_file

    from audited_ft.errors import ModelError
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.pipeline import open_run
    from audited_ft.train.stage import strip_wrapper_names

    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "a", "--set", "eval.limit=2"])
    assert r.exit_code == 0, r.output
    weights = tmp_path / "a/train/adapter/adapter_model.safetensors"
    good = load_file(str(weights))
    wrapped = {k.replace("layers.0.", "layers.0._fsdp_wrapped_module._checkpoint_wrapped_module."): v
               for k, v in good.items()}
    assert wrapped.keys() != good.keys()
    save_file(wrapped, str(weights))
    cfg, rf = open_run(tmp_path / "a")
    with pytest.raises(ModelError, match="lacks .* of the .* LoRA weights"):
        ModelUnderTest(cfg, rf / "train/adapter")
    strip_wrapper_names(weights)
    assert load_file(str(weights)).keys() == good.keys()
    ModelUnderTest(cfg, rf / "train/adapter")  # loads again


@pytest.mark.parametrize("choice, expected", [("float32", "float32"), ("compute", "bfloat16")])
def test_unquantised_weights_train_in_the_chosen_dtype(tiny_cfg, tmp_path, choice, expected):
    """train.unquantised_dtype: float32 upcasts the embeddings, norms and output head (the QLoRA recipe), compute keeps
    them in the compute dtype; either way only the LoRA weights train, the loss back-propagates to them through the
    4-bit layers, and train/speed.json says which dtype was used."""
    import torch
    from datasets import Dataset

    from audited_ft.config import load_config
    from audited_ft.models import load_tokenizer, resolve_model
    from audited_ft.train.stage import _prompt_rows, build_trainer
    from tests.conftest import make_tiny_rows

    cfg = load_config(tiny_cfg, [f"train.unquantised_dtype={choice}", "quantization.compute_dtype=bfloat16",
                                 "train.gradient_checkpointing=on"])
    assert cfg.quantization.load_in_4bit
    tok = load_tokenizer(resolve_model(cfg.model.name_or_path, cfg.model.licence), None, False)
    rows = [{"input": r["dialogue"], "target": r["summary"]} for r in make_tiny_rows()[:4]]
    trainer, speed = build_trainer(cfg, tmp_path, Dataset.from_list(_prompt_rows(cfg, tok, rows)), None, tokenizer=tok)
    model = trainer.model
    norms = [p for n, p in model.named_parameters() if "norm" in n]
    assert norms and {str(p.dtype) for p in norms} == {f"torch.{expected}"}
    assert str(model.get_input_embeddings().weight.dtype) == f"torch.{expected}"
    assert speed["unquantised_dtype"] == expected
    assert json.loads((tmp_path / "speed.json").read_text())["unquantised_dtype"] == expected
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    model.train()
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    loss = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}).loss
    loss.backward()  # through the checkpointed 4-bit layers, to every layer's LoRA B (A's gradient is 0 while B is 0)
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_the_cpu_lm_head_scores_only_labelled_positions_with_the_same_loss_and_gradients(tmp_path, monkeypatch):
    """TRL's fused LM head scores every position off Triton; score_labelled_positions_only makes it project only the
    labelled ones on the CPU. Checked on a tiny Llama with completion-only labels and padding: the head sees only the
    labelled rows, and the loss, the per-token outputs and every gradient are those of TRL's full-width path. Fails
    too when a TRL upgrade moves the binding the switch replaces."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM
    from trl.kernels import chunked_logprob

    from audited_ft.train.speed import score_labelled_positions_only

    # TRL's own choice on this device (the kernel module's binding, which the switch leaves alone); restored afterwards
    monkeypatch.setattr(trl_utils, "_use_triton", chunked_logprob._use_triton)
    rows_projected = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        rows_projected.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)
    folder = build_tiny_llama(tmp_path / "m", ["a b c d e f g h i j k l m n o p q r s t u v w x y z"])
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    torch.manual_seed(0)
    ids = torch.randint(4, 30, (3, 16))
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    mask[2, 6:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :4] = -100  # the prompt: no loss
    labelled = int((labels[:, 1:] != -100).sum())

    def step():
        model.zero_grad()
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    full, full_grads = step()
    assert score_labelled_positions_only() and score_labelled_positions_only()  # idempotent
    compact, compact_grads = step()
    assert rows_projected == [ids.shape[0] * (ids.shape[1] - 1), labelled]
    torch.testing.assert_close(compact.loss, full.loss)
    for field in ("log_probs", "entropy", "is_top1"):
        torch.testing.assert_close(getattr(compact, field), getattr(full, field))
    assert full_grads.keys() == compact_grads.keys() and "lm_head.weight" in full_grads
    for name, grad in full_grads.items():
        torch.testing.assert_close(compact_grads[name], grad, msg=name)


def test_compiled_decoder_layers_train_to_the_same_adapter_under_the_same_names(tiny_cfg, tmp_path):
    """train.compile=layers: each decoder layer compiled in place by torch.compile (inductor, on the CPU here). The
    losses and the saved adapter equal the eager run's (no dropout, so both draw no random numbers), the adapter's
    tensor names carry no torch.compile wrapper, and speed.json and the report say what was compiled."""
    from safetensors.torch import load_file
    from torch._dynamo.utils import counters

    common = ["--set", "eval.limit=2", "--set", "lora.dropout=0", "--set", "train.max_steps=2"]
    graphs = {}
    for run_id, setting in (("eager", "off"), ("compiled", "layers")):
        counters.clear()
        r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", run_id, *common,
                                "--set", f"train.compile={setting}"])
        assert r.exit_code == 0, r.output
        graphs[run_id] = counters["stats"]["unique_graphs"]
    assert graphs["eager"] == 0 and graphs["compiled"] > 0  # the compiled run did run dynamo's graphs
    eager, compiled = _summary(tmp_path / "eager"), _summary(tmp_path / "compiled")
    assert eager["speed"]["compile"] == "off"
    assert compiled["speed"]["compile"] == "2 decoder layers (torch.compile, inductor)"
    assert compiled["final_train_loss"] == pytest.approx(eager["final_train_loss"], rel=1e-4)
    assert compiled["final_eval_loss"] == pytest.approx(eager["final_eval_loss"], rel=1e-4)
    a = load_file(tmp_path / "eager/train/adapter/adapter_model.safetensors")
    b = load_file(tmp_path / "compiled/train/adapter/adapter_model.safetensors")
    assert a.keys() == b.keys() and not any("_orig_mod" in k for k in b)
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-5
    # the adapter moved from its start (lora_B starts at zero), so the comparison above can fail
    assert max(t.abs().max().item() for k, t in b.items() if "lora_B" in k) > 0
    assert "2 decoder layers (torch.compile, inductor)" in (tmp_path / "compiled/report.html").read_text()


def test_compile_is_refused_with_dp_training():
    from audited_ft.config import validate_config
    from audited_ft.errors import ConfigError

    with pytest.raises(ConfigError, match="train.privacy needs train.compile off"):
        validate_config({"model": {"name_or_path": "m"}, "data": {"source": "d.jsonl"},
                         "train": {"compile": "layers", "privacy": {"epsilon": 8.0}}})
