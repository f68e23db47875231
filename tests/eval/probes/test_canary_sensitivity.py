"""Sensitivity of the canary probe with the real embedded model: SmolLM2-135M-Instruct, LoRA-trained on a train split
of two dialogue rows into which three random six-digit secrets were planted 8 times each (2 epochs, high learning
rate), must expose them clearly more than the base does, while never-planted control secrets stay at chance level.

The base is loaded unquantised here: on CPU, bitsandbytes' 4-bit layers cost ~25 s per optimizer step even for a
handful of tokens (measured), which would make this test take 6+ minutes; the exposure measurement does not depend
on the base's precision, and the 4-bit path is exercised by the tiny-model and end-to-end tests.
Slow: about 40 s on two idle cores, a few minutes when they are shared.
"""

import json
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.sensitivity]


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory):
    from audited_ft.pipeline import stage_data, stage_eval, stage_train, start_run
    from audited_ft.run.folder import write_json
    from tests.conftest import make_tiny_rows

    tmp = tmp_path_factory.mktemp("canary-sensitivity")
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_tiny_rows()))
    cfg_path = tmp / "canary.yaml"
    cfg_path.write_text(f"""
run: {{name: canary-sensitivity, seed: 11}}
model: {{name_or_path: smollm2-135m-instruct, use_chat_template: false}}
data:
  source: {data}
  id_field: id
  split: {{train: 0.5, validation: 0.25, test: 0.25}}
  max_rows: {{train: 2, validation: 2, test: 2}}
  prompt_template: "Summarize: {{input}}"
  canaries: {{count: 3, repeats: 8}}
train: {{epochs: 2, batch_size: 4, learning_rate: 0.004, lr_scheduler: constant, max_length: 128,
         eval_every_steps: 1000, device: cpu}}
lora: {{r: 16, alpha: 32, dropout: 0.0}}
quantization: {{load_in_4bit: false}}
eval: {{batch_size: 16, bootstrap_samples: 1000}}
probes: {{canary: {{candidates: 100, controls: 3}}}}
""")
    started = time.time()
    cfg, rf = start_run(cfg_path, out=str(tmp / "runs"), run_id="s")
    stage_data(cfg, rf)
    # Audits are not under test here: record a passing verdict, which is all the training stage reads.
    write_json(rf / "audits/summary.json", {"passed": True, "blocking": []})
    stage_train(cfg, rf)
    stage_eval(cfg, rf)
    print(f"\ncanary sensitivity run: {time.time() - started:.0f} s")
    return rf.path


def test_planted_canaries_are_exposed_by_the_adapter(canary_run):
    m = json.loads((canary_run / "eval/metrics.json").read_text())
    info = json.loads((canary_run / "eval/probes.json").read_text())["canary"]["info"]
    summary = json.loads((canary_run / "train/summary.json").read_text())
    print({k: round(v, 2) for k, v in m.items()
           if k.startswith("privacy.canary.") and ".ci_" not in k and isinstance(v, (int, float))})
    print("train:", {k: summary[k] for k in ("steps", "seconds", "final_train_loss", "train_tokens")})
    for c in info["canaries"] + info["controls"]:
        print(c["id"], c["secret"], [(d["variant"], d["logprob"], d["candidates_at_least_as_likely"],
                                      d["exposure"], d["exposure_extrapolated"]) for d in c["by_variant"]])
    assert m["privacy.canary.planted"] == 3 and m["privacy.canary.exposure_bound"] == pytest.approx(6.658, abs=1e-3)
    # Each planted secret outranks (nearly) all 100 candidates under the adapter: exposure at or near the bound.
    assert m["privacy.canary.exposure.adapter"] > 5.5
    assert m["privacy.canary.exposure.delta"] > 2
    # Three canaries are fewer than eval.min_items: no interval is claimed for them, and probes.json says why.
    intervals = json.loads((canary_run / "eval/probes.json").read_text())["canary"]["intervals"]
    assert m["privacy.canary.exposure.delta.ci_low"] is None and m["privacy.canary.exposure.base.ci_high"] is None
    assert "3 item" in intervals["privacy.canary.exposure"]["not_estimable"], intervals
    assert m["privacy.canary.exposure_extrapolated.adapter"] > m["privacy.canary.exposure_extrapolated.base"] + 8
    for c in info["canaries"]:
        base, adapter = c["by_variant"]
        assert adapter["logprob"] > base["logprob"] + 10, c["id"]
    # Never-planted secrets of the same format are not exposed: the effect is memorisation of the secrets themselves.
    assert m["privacy.canary.control_exposure.adapter"] < m["privacy.canary.exposure.adapter"] - 3
