from pathlib import Path

import pytest

from audited_ft.config import apply_overrides
from audited_ft.errors import ConfigError
from audited_ft.pipeline import load_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))


def test_shipped_configs_exist():
    names = {p.name for p in SHIPPED}
    assert {"default.yaml", "dialogsum_smollm2.yaml", "llama2-7b_dialogsum.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.model.name_or_path
    assert cfg.gates, "every shipped config carries gates"


def test_default_config_resolves_embedded_data():
    cfg = load_config(REPO / "configs/default.yaml")
    src = Path(cfg.resolve_path(cfg.data.source))
    assert src.is_file() and src.name == "dailytalk_summaries.jsonl"


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_all_errors_listed_at_once_with_did_you_mean(tmp_path):
    p = _write(tmp_path, "data: {source: x.jsonl}\ntrain: {epoch: 2, batch_size: 0}\nlora: {r: -1}\n"
                         "probes: {rogue: {}}\naudits: {pii: {nonsense: 1}}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert str(p) in msg
    assert "train.epoch: unknown key. Did you mean 'epochs'?" in msg
    assert "train.batch_size" in msg and "lora.r" in msg
    assert "unknown probe 'rogue'. Did you mean 'rouge'?" in msg
    assert "audits.pii.nonsense" in msg


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "data: [unclosed"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_data_needs_a_source(tmp_path):
    with pytest.raises(ConfigError, match="give 'source'"):
        load_config(_write(tmp_path, "data: {input_field: a}\n"))
    with pytest.raises(ConfigError, match="not both"):
        load_config(_write(tmp_path, "data: {source: a.jsonl, train: b.jsonl, test: c.jsonl}\n"))


def test_overrides_parse_yaml_values_and_index_lists():
    raw = {"train": {"epochs": 1}, "gates": [{"metric": "m", "min": 0}]}
    apply_overrides(raw, ["train.epochs=3", "train.learning_rate=1e-4", "gates.0.min=0.5", "model.name_or_path=x/y"])
    assert raw["train"] == {"epochs": 3, "learning_rate": 1e-4}
    assert raw["gates"][0]["min"] == 0.5
    assert raw["model"]["name_or_path"] == "x/y"
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(raw, ["train.epochs"])
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(raw, ["gates.5.min=1"])


def test_override_reaches_validation(tmp_path):
    p = _write(tmp_path, "data: {source: a.jsonl}\n")
    assert load_config(p, ["train.epochs=2"]).train.epochs == 2
    with pytest.raises(ConfigError, match="quant_type"):
        load_config(p, ["quantization.quant_type=int3"])


def test_gate_needs_a_bound_and_statistic_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="needs 'min' or 'max'"):
        load_config(_write(tmp_path, "data: {source: a.jsonl}\ngates: [{metric: rouge.rougeL.delta}]\n"))


def test_validate_imports_no_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from audited_ft.pipeline import load_config; "
            f"load_config({str(REPO / 'configs/default.yaml')!r}); "
            "import audited_ft.cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
