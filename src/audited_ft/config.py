"""Typed configuration: YAML → pydantic models, ``--set a.b=v`` overrides, every problem reported at once.

Unknown keys are rejected everywhere (``extra="forbid"``). Thresholds live here and in the YAML files, never in code.
This module is a leaf: it knows no audit, probe or metric. The sections those own (``audits:``, ``probes:``, the gates'
metric directions) are checked by ``checks`` that the caller passes in; ``audited_ft.pipeline.load_config`` passes the
registries' own checks, so every problem is still listed at once.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audited_ft.errors import ConfigError, did_you_mean

DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
_DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv", ".csv.gz", ".parquet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunConfig(_Strict):
    name: str = Field("run", description="Short name; part of the run id.", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    seed: int = Field(42, description="Seed for splitting, training and sampling.")
    out_dir: str = Field("runs", description="Folder under which run folders are created.")

    @field_validator("name")
    @classmethod
    def _no_parent(cls, v: str) -> str:
        if ".." in v:
            raise ValueError("must not contain '..' (the run id built from it is a folder name)")
        return v


class ModelConfig(_Strict):
    name_or_path: str = Field(DEFAULT_MODEL_ALIAS, description=(
        "Hugging Face hub id, local folder, or a built-in alias (smollm2-135m-instruct: embedded, offline)."))
    revision: Optional[str] = Field(None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(False, description="Allow model code from the hub. Off unless you say so.")
    use_chat_template: bool = Field(True, description="Wrap prompts in the tokenizer's chat template when it has one.")
    system_prompt: Optional[str] = Field(None, description="System message for chat-template models (None: template default).")
    licence: Optional[str] = Field(None, description="Licence of the base model, shown in the report.")


class SplitFractions(_Strict):
    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self):
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {total:g}")
        return self


class MaxRows(_Strict):
    train: Optional[int] = Field(None, ge=1)
    validation: Optional[int] = Field(None, ge=1)
    test: Optional[int] = Field(None, ge=1)


class SplitFields(_Strict):
    input_field: Optional[str] = None
    target_field: Optional[str] = None
    id_field: Optional[str] = None
    reference_fields: list[str] = Field(default_factory=list, description=(
        "Further reference fields of this split (DialogSum's test split: [summary2, summary3]). The ROUGE probe "
        "scores each answer against the target and these, keeping the best match per ROUGE type (rouge-score's "
        "score_multi); training never reads them."))


class CanaryConfig(_Strict):
    """Synthetic secrets planted in the train split to measure memorisation (the secret sharer test, Carlini et al.
    2019). Each canary is a row ``{input, template with a random secret}`` inserted ``repeats`` times into train only,
    after cleaning and splitting; the secrets are recorded in ``data/canaries.json`` and the ``canary`` probe reports
    their exposure. They are random strings, not personal data."""

    count: int = Field(0, ge=0, le=100, description="Canaries to plant (0: off).")
    repeats: int = Field(1, ge=1, le=1000, description="Copies of each canary row inserted into the train split.")
    template: str = Field("My secret code is {secret}.", description=(
        "Target text of a canary row; '{secret}' is replaced by the random secret. The loss is on targets only, so the "
        "secret must be in the target to be learned."))
    input: str = Field("What is my secret code?", description=(
        "Input of every canary row (wrapped in data.prompt_template like any row)."))
    alphabet: str = Field("0123456789", description="Characters a secret is drawn from (distinct characters).")
    length: int = Field(6, ge=2, le=32, description="Characters per secret: the candidate space is len(alphabet)**length.")
    seed: Optional[int] = Field(None, description="Seed for drawing the secrets (None: run.seed).")

    @field_validator("template")
    @classmethod
    def _one_secret(cls, v: str) -> str:
        if v.count("{secret}") != 1:
            raise ValueError("must contain '{secret}' exactly once")
        return v

    @field_validator("alphabet")
    @classmethod
    def _distinct(cls, v: str) -> str:
        if len(set(v)) < 2 or len(set(v)) != len(v):
            raise ValueError("needs at least 2 characters, each once")
        return v

    @field_validator("input")
    @classmethod
    def _has_text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class DataConfig(_Strict):
    source: Optional[str] = Field(None, description="One file/hub id to split deterministically into train/validation/test.")
    train: Optional[str] = Field(None, description="Train split: JSONL/CSV/Parquet path or hub id ('org/name:split').")
    validation: Optional[str] = Field(None, description="Validation split (path or hub id).")
    test: Optional[str] = Field(None, description="Test split (path or hub id).")
    data_dir: Optional[str] = Field(None, description=(
        "Root for '{data_dir}' in paths. Default: $AFT_DATA_DIR, else ../shared/data."))
    split: SplitFractions = Field(default_factory=SplitFractions, description="Fractions used with 'source'.")
    input_field: str = Field("dialogue", description="Field holding the model input.")
    target_field: str = Field("summary", description="Field holding the reference output.")
    id_field: Optional[str] = Field(None, description="Field holding a row id (default: split name + row number).")
    fields_by_split: dict[Literal["train", "validation", "test"], "SplitFields"] = Field(
        default_factory=dict, description="Per-split field names where a split differs (e.g. DialogSum test: summary1).")
    prompt_template: str = Field("Summarize the following dialogue.\n\n{input}",
                                 description="Prompt text; '{input}' is replaced by the input field.")
    max_rows: MaxRows = Field(default_factory=MaxRows, description="Cap per split after cleaning (first N rows, seeded).")
    min_input_chars: int = Field(1, ge=0, description="Drop rows whose input is shorter.")
    max_input_chars: int = Field(4000, ge=1, description="Drop rows whose input is longer.")
    max_target_chars: int = Field(1000, ge=1, description="Drop rows whose target is longer.")
    licence: Optional[str] = Field(None, description="Licence of the data set, shown in the report.")
    canaries: CanaryConfig = Field(default_factory=CanaryConfig, description=(
        "Random secrets planted in train only (count 0: off); exposure is measured by the 'canary' probe."))

    @field_validator("prompt_template")
    @classmethod
    def _has_input(cls, v: str) -> str:
        if "{input}" not in v:
            raise ValueError("must contain '{input}'")
        return v

    @model_validator(mode="after")
    def _one_way(self):
        explicit = [self.train, self.validation, self.test]
        if self.source and any(explicit):
            raise ValueError("give either 'source' (split automatically) or 'train'/'validation'/'test', not both")
        if not self.source and not (self.train and self.test):
            raise ValueError("give 'source', or at least 'train' and 'test'")
        return self


class EarlyStoppingConfig(_Strict):
    """Stop when the validation loss stops improving and keep the best adapter (not the last)."""

    enabled: bool = Field(False, description="Off by default: training runs the configured epochs/steps.")
    patience: int = Field(3, ge=1, description=(
        "Stop after this many validation evaluations in a row without improvement (evaluations every "
        "train.eval_every_steps steps)."))
    min_delta: float = Field(0.0, ge=0, description=(
        "An evaluation counts as an improvement only when the validation loss falls below the best so far by more "
        "than this."))


class PrivacyConfig(_Strict):
    """Differentially private training of the LoRA weights (DP-SGD: per-example clipping, Gaussian noise, Poisson
    sampling; Abadi et al. 2016) through Opacus. The unit of privacy is one training row (example-level DP): a person
    with several rows is protected only up to the group privacy bound (k rows: roughly k·ε)."""

    epsilon: float = Field(..., gt=0, le=100, description=(
        "The privacy budget ε to spend over the whole training. The noise multiplier is calibrated so that the "
        "accountant's ε after the planned steps is at most this."))
    delta: Optional[float] = Field(None, gt=0, lt=1, description=(
        "δ of the (ε, δ) guarantee. None: min(1e-5, 1 / (10 · training rows)), below 1/n as the DP literature "
        "asks (the value used is recorded in train/summary.json)."))
    max_grad_norm: float = Field(1.0, gt=0, description=(
        "Clipping bound C: each example's gradient (over all LoRA weights) is scaled down to L2 norm at most C "
        "before the noise N(0, (σC)²) is added to the batch's sum."))
    accountant: Literal["prv", "rdp"] = Field("prv", description=(
        "The accountant that calibrates σ and states the ε spent: prv (privacy random variables, Gopi et al. 2021; "
        "tight, Opacus' default) or rdp (Rényi DP, Mironov 2017; looser). The other one's ε for the same noise is "
        "recorded as a cross-check."))
    reference: bool = Field(True, description=(
        "Also train the same recipe without DP (train/nonprivate) and evaluate it beside the DP adapter, so the "
        "report shows the privacy–utility trade-off from one run (the non-private adapter is variant 'nonprivate'). "
        "Doubles the training stage's work."))


class TrainConfig(_Strict):
    epochs: float = Field(1.0, gt=0, description="Passes over the train split (ignored when max_steps > 0).")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    batch_size: int = Field(8, ge=1, description=(
        "Micro-batch size per device: examples, or packed rows of up to max_length tokens when packing is on. With "
        "memory_budget_gib set on CUDA it is chosen from the budget instead."))
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = Field("linear", description="transformers scheduler name.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of the steps spent warming the learning rate up.")
    weight_decay: float = Field(0.0, ge=0)
    max_length: int = Field(512, ge=16, description="Tokens per example (prompt + target); longer rows are truncated.")
    eval_every_steps: int = Field(10, ge=1, description="Validation loss every N steps.")
    gradient_checkpointing: Literal["auto", "on", "off"] = Field(
        "auto", description=("auto: on for CUDA, off on CPU (on CPU it costs time and small models fit anyway); with "
                             "memory_budget_gib, whichever trains faster within the budget (both are measured)."))
    packing: Literal["auto", "on", "off"] = Field("auto", description=(
        "Pack examples best-fit into rows of max_length tokens (no padding between them, each example attends only "
        "to itself, loss still on target tokens only). auto: on for CUDA, off on CPU. Packing changes what one "
        "optimizer step holds (rows, not examples), so steps per epoch drop."))
    kernels: Literal["auto", "liger", "none"] = Field("auto", description=(
        "Fused training kernels: liger-kernel's RMSNorm, RoPE and SwiGLU (the 'gpu' extra). auto: on CUDA where "
        "liger-kernel is installed and supports the architecture."))
    unquantised_dtype: Literal["float32", "compute"] = Field("float32", description=(
        "4-bit training only: the dtype of the weights left unquantised (embeddings, norms, output head). float32: "
        "the QLoRA recipe (PEFT's prepare_model_for_kbit_training), so the activations between the 4-bit layers are "
        "float32 and each layer converts them; compute: kept in the compute dtype, as stock TRL and the FSDP path "
        "keep them. On the GPU the float32 conversions took ~40% of a 7B step's kernel time (profile in "
        "benchmarks/RESULTS.md); the speed of 'compute' is not measured yet, so float32 stays the default."))
    compile: Literal["off", "layers"] = Field("off", description=(
        "layers: every decoder layer compiled in place by torch.compile (inductor) after the memory budget's "
        "calibration, so the element-wise work around the 4-bit and LoRA matmuls (casts, residual adds, dropout, "
        "norms) runs as fused kernels with fewer launches; one graph serves all layers. The first steps pay the "
        "compilation (tens of seconds; again when a batch shape changes). With LoRA dropout 0 it trains the same "
        "adapter as off (tested on the CPU); with dropout, compiled code draws other random numbers. Not under FSDP (noted in train/speed.json) nor with train.privacy; on the CPU it needs a C++ "
        "compiler. Its speed on the GPU is not measured yet, so off stays the default."))

    @field_validator("gradient_checkpointing", "packing", mode="before")
    @classmethod
    def _yaml_on_off(cls, v):
        # YAML reads a bare on/off (or yes/no) as a boolean
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("compile", mode="before")
    @classmethod
    def _yaml_compile(cls, v):
        # a bare off / false reads as False; true asks for the one compiled mode there is
        return {True: "layers", False: "off"}.get(v, v) if isinstance(v, bool) else v

    memory_budget_gib: Optional[float] = Field(None, gt=0, description=(
        "GPU memory for training, per device (GiB). Set, the micro-batch (batch_size) and activation checkpointing "
        "are chosen by measuring real training micro-steps at start-up: the largest micro-batch that fits, with or "
        "without checkpointing, whichever is faster. Ignored on CPU (noted in the summary)."))
    optimizer: str = Field("auto", description="auto: paged_adamw_8bit on CUDA, adamw_torch on CPU; or a transformers optim name.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train and evaluate.")
    checkpoint_every_steps: int = Field(50, ge=0, description=(
        "Save a resumable checkpoint (adapter, optimizer, scheduler, RNG state) every N optimizer steps into "
        "train/checkpoints (the latest kept), so `audited-ft run --resume RUN_DIR` continues a killed run from it; "
        "0: none. Removed once the adapter is saved. With early stopping, checkpoints follow eval_every_steps."))
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig, description=(
        "Stop on a validation-loss plateau and restore the best checkpoint (needs a validation split). Checkpoints "
        "are saved at every evaluation while training and removed afterwards."))
    privacy: Optional[PrivacyConfig] = Field(None, description=(
        "Train with DP-SGD to an (ε, δ) budget (None: ordinary training). Examples are not packed and activation "
        "checkpointing is off (per-example gradients need each example's own activations); no resumable "
        "checkpoints (a resumed run trains the DP adapter again, since noise already drawn cannot be replayed "
        "without keeping it); early stopping is refused (the ε is accounted for the planned steps)."))

    @model_validator(mode="after")
    def _privacy_fits(self):
        if self.privacy is not None and self.early_stopping.enabled:
            raise ValueError("train.privacy and train.early_stopping cannot be combined: DP training runs its planned "
                             "steps (the accountant's ε is for exactly those); turn early_stopping off")
        if self.privacy is not None and self.packing == "on":
            raise ValueError("train.privacy needs train.packing off or auto: the unit of privacy is one training row, "
                             "and a packed row mixes several")
        if self.privacy is not None and self.compile != "off":
            raise ValueError("train.privacy needs train.compile off: per-example gradients hook each layer's "
                             "activations and parameters, which a compiled layer does not expose one op at a time")
        if self.privacy is not None and self.gradient_checkpointing == "on":
            raise ValueError("train.privacy needs train.gradient_checkpointing off or auto: per-example gradients "
                             "hook each layer's activations, which checkpointing discards")
        return self


class LoraConfig(_Strict):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scaling = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description="'all-linear' or module names.")


class QuantizationConfig(_Strict):
    load_in_4bit: bool = Field(True, description="QLoRA: load the frozen base in 4 bit (bitsandbytes).")
    quant_type: Literal["nf4", "fp4"] = Field("nf4")
    double_quant: bool = Field(True, description="Quantise the quantisation constants too.")
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto: bfloat16 on CUDA, float32 on CPU (measured faster than bf16 on CPU here).")


class EvalConfig(_Strict):
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(16, ge=1, description="Items per model call on the CPU (generation and scoring).")
    gpu_batch_size: Union[int, Literal["auto"]] = Field("auto", description=(
        "Items per model call on CUDA. auto: per batch of similar-length prompts, as many sequences as the KV "
        "cache of the batch's longest prompt plus max_new_tokens fits in 60% of the GPU memory left after "
        "loading, at most 1024 (large batches are the biggest lever of generation speed on a GPU; "
        "benchmarks/eval_throughput.py, benchmarks/eval_suite.py)."))
    memory_budget_gib: Optional[float] = Field(None, gt=0, description=(
        "CUDA only: the GPU memory the evaluation may hold — weights, KV cache and activations — as on a shared card "
        "or to compare speed at equal memory. The base is dequantised (dequantize_base) only when its dequantised "
        "weights leave a quarter of the budget free, and gpu_batch_size auto sizes batches to what is left of the "
        "budget instead of the card's free memory. None: the whole card."))
    kv_cache: Literal["dynamic", "static", "compiled"] = Field("dynamic", description=(
        "The KV cache of generation. dynamic: Hugging Face's default, grown by concatenation every step. static: "
        "allocated once per batch at prompt + max_new_tokens (no copy per step). compiled: static, and on CUDA the "
        "decoding step compiled by torch.compile with CUDA graphs (Hugging Face's automatic compilation of a static "
        "cache; every new batch shape compiles again, which costs time on short evaluations). The same model and "
        "weights either way; greedy answers can differ by rounding, as between batch sizes."))
    merge_adapter: bool = Field(False, description=(
        "Generate and score one adapter at a time with its LoRA weights added into the base's weights (as PEFT's "
        "merge_and_unload does for deployment) instead of running the LoRA branch beside every layer: fewer kernels "
        "per token, which is what the best stock setup does (benchmarks/RESULTS.md, issue 23). Applies where the "
        "base is not 4-bit (dequantize_base, or an unquantised base); the base's own weights are copied to host "
        "memory once and restored exactly after each adapter's calls, so base answers are unchanged. Batches that "
        "mix base and adapter rows (generate_mixed) keep the LoRA branch. Greedy answers can differ by rounding."))
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples for confidence intervals.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description=(
        "Confidence level of every interval; 1 − confidence is the α of every test and of the power figures."))
    min_items: int = Field(10, ge=2, description=(
        "Fewest items an interval is computed from; below it the interval is 'not estimable' (never a confident "
        "[x, x] from a handful of items) and a gate on it is inconclusive."))
    min_changed: int = Field(5, ge=1, description=(
        "For a difference of mean scores: fewest items whose score changed between base and adapter for its interval "
        "(with most items unchanged, Student's t interval does not hold on fewer; measured in tests/eval/test_stats.py)."))
    power: float = Field(0.8, gt=0.5, lt=1, description=(
        "Power at which the minimum detectable effect of each difference is stated (delta.mde)."))
    report_samples: int = Field(6, ge=0, description="Side-by-side samples shown in the report.")
    dequantize_base: bool = Field(True, description=(
        "Generate with the 4-bit base dequantised to the compute dtype: the same NF4 weight values as float matrices, "
        "so the model is unchanged while decoding skips a dequantisation per layer per token (several times faster "
        "on CPU). Checked at load: the dequantised base must reproduce the 4-bit base's next-token logits on a few "
        "prompts within dequantize_tolerance, else the 4-bit base is used (manifest eval.dequantize_check; the "
        "report states the precision used)."))
    dequantize_tolerance: float = Field(0.1, gt=0, lt=1, description=(
        "Largest next-token logit difference allowed between the dequantised and the 4-bit base, as a fraction of "
        "the 4-bit base's largest |logit|. Rounding differences are about 1% (bfloat16 kernels); a broken "
        "dequantisation differs by about 100%."))
    reference: Literal["none", "full_precision"] = Field("none", description=(
        "full_precision: also evaluate the base model unquantised (in the compute dtype: bfloat16 on CUDA, float32 on "
        "CPU) as variant 'full_precision', so the report separates what the 4-bit quantisation changed (NF4 base − "
        "full-precision base) from what the adapter changed (adapter − NF4 base), over the same items with the same "
        "intervals. Loaded only when its estimated memory fits (else skipped, and the report says why); nothing to "
        "do when the base is not quantised. Every probe then runs a third model: about 1.5x the evaluation time."))
    limit: Optional[int] = Field(None, ge=1, description=(
        "Cap on the items every probe evaluates (its own 'limit' option, whichever is lower): keeps CPU "
        "and CI runs small. None: each probe's own setting."))


class Gate(_Strict):
    """A release gate: a threshold on a number (``min``/``max``, task quality), or a risk gate on a difference
    (``margin``): PASS when the interval shows the adapter is no worse than the margin, FAIL when it shows the adapter is
    worse, INCONCLUSIVE otherwise (see audited_ft.gate.decide)."""

    metric: str = Field(description="Key in eval/metrics.json (e.g. rouge.rougeL.delta).")
    min: Optional[float] = None
    max: Optional[float] = None
    statistic: Literal["point", "ci_low", "ci_high"] = Field(
        "point", description="Compare the point estimate, or the low/high end of its confidence interval.")
    margin: Optional[float] = Field(None, gt=0, description=(
        "Risk gate on a difference (a '.delta' key): the largest harmful change that does not matter in practice, in "
        "the metric's unit (e.g. 0.03 of stereotype rate). The harmful direction is the one the probe declares."))
    fail_when: Literal["beyond_zero", "beyond_margin"] = Field("beyond_zero", description=(
        "Risk gate: FAIL when the whole interval lies on the harmful side of 0 (a shown harm, however small), or only "
        "when it lies beyond the margin (a shown harm that matters)."))
    reason: Optional[str] = Field(None, description="Why this gate exists (shown in the report).")

    @model_validator(mode="after")
    def _has_bound(self):
        if self.margin is not None:
            if self.min is not None or self.max is not None or self.statistic != "point":
                raise ValueError("a risk gate ('margin') takes no 'min', 'max' or 'statistic': its interval decides")
            return self
        if self.min is None and self.max is None:
            raise ValueError("a gate needs 'min' or 'max' (a threshold), or 'margin' (a risk gate on a difference)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min:g}) is above 'max' ({self.max:g}): no value could pass this gate")
        return self

    @property
    def risk(self) -> bool:
        return self.margin is not None


class VerdictConfig(_Strict):
    """How the run's verdict treats gates the data could not decide."""

    inconclusive: Literal["fail", "warn"] = Field("fail", description=(
        "An INCONCLUSIVE risk gate (interval too wide, not estimable, or the probe blind on this base) fails the run "
        "(exit 1), or only warns (exit 0; the verdict word stays INCONCLUSIVE). --inconclusive on the command line "
        "overrides it."))
    junit_inconclusive: Literal["failure", "skipped"] = Field("failure", description=(
        "How gates.junit.xml shows an inconclusive gate: a failure with its own message, or a skipped test."))


class RegressionMetric(_Strict):
    direction: Literal["higher_is_better", "lower_is_better"] = Field(
        description="Which way is better for this metric; a move the other way beyond the tolerance is a regression.")
    tolerance: Optional[float] = Field(None, ge=0, description="Allowed worsening (absolute; None: default_tolerance).")


class RegressionConfig(_Strict):
    """How ``audited-ft gate RUN --baseline BASE`` compares a run with a baseline run's metrics."""

    default_tolerance: float = Field(0.02, ge=0, description=(
        "Allowed worsening of a metric against the baseline (absolute, in the metric's own unit) before it counts as a "
        "regression. Runs with the same config and seed give the same numbers; a changed data set or model moves them."))
    tolerances: dict[str, float] = Field(default_factory=dict, description=(
        "Per-metric tolerance overrides, keyed by metric (e.g. rouge.rougeL.adapter: 0.05)."))
    from_gates: bool = Field(True, description=(
        "Also compare every gated metric (its point estimate), the direction read from the gate: a gate with only "
        "'min' means higher is better, one with only 'max' lower is better."))
    metrics: dict[str, RegressionMetric] = Field(default_factory=dict, description=(
        "Further metrics to compare with the baseline, with their direction (and optional tolerance)."))


class AcceptedRisk(_Strict):
    audit: str = Field(description="Audit whose failure is accepted.")
    by: str = Field(description="Who accepted the risk.")
    reason: str = Field(description="Why.")
    date: str = Field(description="When (ISO date).")


class ReportConfig(_Strict):
    title: str = Field("Audited fine-tune: risk report")


class ComputeConfig(_Strict):
    """Figures behind the energy and CO2e estimate in the report (audited_ft.report.footprint). Every figure is listed there
    with where it came from; change them to match the machine and the grid that ran the job."""

    grid_gco2e_per_kwh: float = Field(481.0, ge=0, description=(
        "Carbon intensity of the electricity, in grams CO2e per kWh. Default: world average of electricity generation "
        "in 2023 (Ember, Global Electricity Review 2024 / Yearly Electricity Data). Use your grid's figure."))
    grid_source: str = Field("world average 2023, Ember Global Electricity Review 2024", description=(
        "Where grid_gco2e_per_kwh comes from; printed beside the figure in the report."))
    cpu_watts_per_core: float = Field(10.0, gt=0, description=(
        "Power drawn per CPU core (logical CPU) under load, in watts; used for every stage run on the CPU. Default: "
        "server CPU TDP divided by cores, rounded up (e.g. Xeon E5-2683 v4: 120 W / 16 cores = 7.5 W)."))
    cpu_cores: Optional[int] = Field(None, ge=1, description=(
        "CPU cores counted as busy (None: hardware.cpu_count from the manifest, an upper bound)."))
    gpu_watts: Optional[float] = Field(None, gt=0, description=(
        "Power per GPU in watts (None: the TDP of the GPU named in the manifest, from a built-in table; an unknown "
        "GPU leaves GPU energy unestimated). Measured power, where the run recorded it, takes precedence."))
    pue: float = Field(1.58, ge=1, description=(
        "Power usage effectiveness of the facility (total / IT power). Default: industry average 2023, Uptime "
        "Institute Global Data Center Survey. 1.0 for a machine outside a data centre."))


class Config(_Strict):
    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    quantization: QuantizationConfig = Field(default_factory=QuantizationConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    audits: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Audit name → options.")
    accepted_risks: list[AcceptedRisk] = Field(default_factory=list)
    probes: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"rouge": {}}, description="Probe name → options.")
    gates: list[Gate] = Field(default_factory=list)
    regression: RegressionConfig = Field(default_factory=RegressionConfig, description=(
        "Comparison with a baseline run (audited-ft gate RUN --baseline BASE)."))
    verdict: VerdictConfig = Field(default_factory=VerdictConfig, description=(
        "How inconclusive gates count in the run's verdict and exit code."))
    report: ReportConfig = Field(default_factory=ReportConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig, description=(
        "Power, facility and grid figures for the report's energy and CO2e estimate."))

    # Where relative paths in the config are resolved from (the config file's folder). Not a config key.
    _base_dir: Path = Path(".")

    def resolve_path(self, value: str) -> str:
        """Expand '{data_dir}' and make relative paths relative to the config file; hub ids pass through."""
        if "{data_dir}" in value:
            value = value.replace("{data_dir}", str(self.data_dir()))
        try:
            p = Path(value).expanduser()
        except RuntimeError:  # "~user/..." for an unknown user: the data stage says so
            return value
        if not p.is_absolute() and (self._base_dir / p).exists():
            return str((self._base_dir / p).resolve())
        if not p.exists() and not p.is_absolute() and value.lower().endswith(_DATA_SUFFIXES):
            # A missing relative file: name it where it was looked for (beside the config), not as the bare text.
            return str((self._base_dir / p).resolve())
        return str(p) if p.exists() or p.is_absolute() else value

    def data_dir(self) -> Path:
        raw = self.data.data_dir or os.environ.get("AFT_DATA_DIR") or "../shared/data"
        p = Path(raw).expanduser()
        if not p.is_absolute() and not p.exists() and (self._base_dir / p).exists():
            p = self._base_dir / p
        return p.resolve()


# ------------------------------------------------------------------------------------------------------------
def _fmt_loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _parse_scalar(text: str) -> Any:
    try:
        value = safe_yaml(text)
    except YamlRefused as exc:
        raise ConfigError(f"--set value {_short(text, 60)}: {exc}") from None
    except (yaml.YAMLError, RecursionError):
        return text
    if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads "1e-4" as a string; only that form ("nan", "inf" stay text)
    return value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested mapping; ``gates.0.min=1`` indexes lists."""
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not sep or not parts:
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. --set train.epochs=2)")
        node: Any = raw
        for depth, p in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth]) or "(top)"
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"--set {item!r}: '{where}' is a list of {len(node)}; '{p}' is not an index in it")
                p = int(p)
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: '{where}' is a value, not a section")
            if last:
                node[p] = _parse_scalar(value)
            else:
                if isinstance(node, dict) and node.get(p) is None:
                    node[p] = {}
                node = node[p]
    return raw


def _short(value: Any, n: int = 200) -> str:
    """repr of a value, cut: an error about a whole section must not print the whole section. ``reprlib`` bounds the
    work as well as the text (a full ``repr`` of a widely shared structure would be built first, then cut)."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxtuple, r.maxset, r.maxstring, r.maxother = 3, 6, 6, 6, 6, n, n
    text = r.repr(value)
    return text if len(text) <= n else text[:n] + "…"


# YAML the tool reads: PyYAML's safe loader (no object construction) with two refusals it lacks. Aliases are shared
# nodes, cheap to load but expanded by anything that walks the value (validation, deep copies, messages): nested
# aliases ("billion laughs") turn a few hundred bytes into billions of nodes. The expanded size is counted once per
# distinct node, before anything is built, and a document over MAX_YAML_NODES is refused (a config has hundreds).
# Duplicate keys, which PyYAML resolves silently (the last wins), are refused naming both lines.
MAX_YAML_NODES = 100_000


class YamlRefused(Exception):
    """A YAML document the tool will not load; the message names the line."""


class StrictSafeLoader(yaml.SafeLoader):
    def compose_document(self):
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n, path: tuple) -> int:
            if id(n) in sizes:
                return sizes[id(n)]
            if id(n) in path:
                raise YamlRefused(f"line {n.start_mark.line + 1}: an alias refers to a node that contains it "
                                  "(a recursive structure)")
            total = 1
            if isinstance(n, yaml.SequenceNode):
                total += sum(size(c, path + (id(n),)) for c in n.value)
            elif isinstance(n, yaml.MappingNode):
                total += sum(size(k, path + (id(n),)) + size(v, path + (id(n),)) for k, v in n.value)
            if total > MAX_YAML_NODES:
                raise YamlRefused(f"line {n.start_mark.line + 1}: aliases expand this value to more than "
                                  f"{MAX_YAML_NODES:,} nodes (nested anchors and aliases); write it out instead")
            sizes[id(n)] = total
            return total

        if node is not None:
            size(node, ())
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
                if first is not key_node:
                    raise YamlRefused(f"line {key_node.start_mark.line + 1}: key {_short(key, 60)} is given twice "
                                      f"(first on line {first.start_mark.line + 1}); YAML would keep only the last")
        return super().construct_mapping(node, deep=deep)


def safe_yaml(text: str) -> Any:
    """YAML text → Python by :class:`StrictSafeLoader` (raises :class:`YamlRefused` or PyYAML's errors)."""
    return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds, directly or as the values of a dict / items of a list (fields_by_split)."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(typing.get_args(annotation)):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_hint(e: dict, model: type[BaseModel] = None) -> str:
    if e["type"] == "extra_forbidden" and len(e["loc"]) >= 1:
        # Find the sibling field names to suggest the one meant.
        node: Any = model or Config
        for part in e["loc"][:-1]:
            fields = getattr(node, "model_fields", {})
            if part in fields:
                node = _model_in(fields[part].annotation) or node
        names = list(getattr(node, "model_fields", {}))
        return did_you_mean(str(e["loc"][-1]), names)
    return ""


Check = Callable[[dict], list[str]]  # raw config mapping -> problems, one line each


MAX_CONFIG_BYTES = 1_000_000  # a config or gates file is a few kilobytes; anything this size is not one


def path_problem(path: Path, want: str = "file", max_bytes: int | None = None) -> str | None:
    """Why ``path`` cannot be used as a ``want`` ("file", "folder" or "entry": either) — a symlink loop, a dangling
    link, a FIFO, socket or device, the other kind of entry, unreadable, too large — or None when it can (a path that
    does not exist is None: the caller says what missing means there). Checked with ``stat`` before anything is
    opened: opening a FIFO would block until someone writes to it."""
    import errno
    import stat as st

    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (it resolves to itself)"
        if os.path.lexists(path):
            if os.path.islink(path):
                return f"is a symbolic link to {os.readlink(path)}, which does not exist (a dangling link)"
            return f"cannot be read ({exc.strerror or exc})"
        return None if exc.errno == errno.ENOENT else f"cannot be read ({exc.strerror or exc})"
    mode = info.st_mode
    kinds = {st.S_ISFIFO: "a named pipe (FIFO)", st.S_ISSOCK: "a socket", st.S_ISCHR: "a character device",
             st.S_ISBLK: "a block device"}
    for test, name in kinds.items():
        if test(mode):
            if want == "folder":
                return f"is {name}, not a folder"
            return (f"is {name}, not a regular {'file' if want == 'entry' else want}; files are read whole, so it "
                    "is refused rather than waited on")
    if want == "file" and st.S_ISDIR(mode):
        return "is a folder, not a file"
    if want == "folder" and not st.S_ISDIR(mode):
        return "is a file, not a folder"
    if not os.access(path, os.R_OK | (os.X_OK if st.S_ISDIR(mode) else 0)):
        return "cannot be read (permission denied)"
    if max_bytes is not None and want == "file" and info.st_size > max_bytes:
        return f"is {info.st_size:,} bytes, too large to be what is expected here (at most {max_bytes:,})"
    return None


def load_config(path: str | Path, overrides: list[str] | None = None, checks: Sequence[Check] = ()) -> Config:
    """Load and validate a config file, raising one ConfigError that lists every problem (``checks`` add theirs)."""
    path = Path(path)
    problem = path_problem(path, "file", MAX_CONFIG_BYTES)
    if problem == "is a folder, not a file":
        raise ConfigError(f"{path}: is a folder, not a config file")
    if problem:
        raise ConfigError(f"{path}: {problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}, line {line}: not valid UTF-8 (byte offset {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 4]!r}); save the config as UTF-8") from None
    except OSError as exc:  # permissions, a broken link
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    raw = _parse_yaml(text, str(path))
    if raw is None and overrides:
        raw = {}  # an empty file completed by --set
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least a 'data:' section "
                          "(see configs/default.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    return validate_config(raw, source=str(path), base_dir=path.resolve().parent, checks=checks)


def _parse_yaml(text: str, where: str) -> Any:
    """YAML text → Python, or one ConfigError naming the line and column (PyYAML's own message spans lines)."""
    try:
        return safe_yaml(text)
    except YamlRefused as exc:
        raise ConfigError(f"{where}, {exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a NUL, a control character)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        line, column = text.count("\n", 0, exc.position) + 1, exc.position - text.rfind("\n", 0, exc.position)
        raise ConfigError(f"{where}, line {line}, column {column}: not valid YAML (the character {char} is not "
                          "allowed in YAML)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
        raise ConfigError(f"{where}{at}: not valid YAML ({what or str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None


def load_gates_file(path: str | Path, checks: Sequence[Check] = ()) -> dict:
    """A separate gates file (``--gates FILE``): a YAML list of gates, or a mapping with ``gates:`` and optionally
    ``regression:``. Returns the raw sections, checked, ready to use as config overrides."""
    path = Path(path)
    problem = path_problem(path, "file", MAX_CONFIG_BYTES)
    if problem:
        raise ConfigError(f"--gates {path}: {problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--gates {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--gates {path}: cannot read it as YAML ({str(exc).splitlines()[0]})") from None
    raw = _parse_yaml(text, f"--gates {path}")
    if isinstance(raw, list):
        raw = {"gates": raw}
    if not isinstance(raw, dict) or "gates" not in raw or set(raw) - {"gates", "regression"}:
        raise ConfigError(f"--gates {path}: expected a list of gates, or a mapping with 'gates' (and optionally "
                          f"'regression'), got {type(raw).__name__}"
                          + (f" with keys {sorted(raw)}" if isinstance(raw, dict) else ""))
    validate_config({"data": {"source": "unused"}, **raw}, source=str(path), checks=checks)  # every problem
    return raw


def validate_config(raw: dict, source: str = "<config>", base_dir: Path | None = None,
                    checks: Sequence[Check] = ()) -> Config:
    errors: list[str] = []
    cfg = None
    try:
        cfg = Config.model_validate(raw)  # not Config(**raw): YAML keys need not be strings
    except ValidationError as exc:
        for e in exc.errors():
            loc = _fmt_loc(e["loc"]) or "(top)"
            if e["type"] == "extra_forbidden":
                errors.append(f"{loc}: unknown key.{_field_hint(e)}")
            elif e["type"] == "missing":
                errors.append(f"{loc}: required key is missing")
            else:
                errors.append(f"{loc}: {e['msg']} (got {_short(e.get('input'))})")
    for check in checks:
        errors += check(raw)
    if errors:
        raise ConfigError(f"{source}: config is not well-formed, found the following errors:\n"
                          + "\n".join(f"  - {e}" for e in errors))
    cfg._base_dir = base_dir or Path(".").resolve()
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
