"""The model under test: one 4-bit base in memory, the adapter switched on or off per call.

Base and adapter therefore differ only by the LoRA weights — same quantised base, same prompts, same decoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

from audited_ft.config import Config

log = logging.getLogger(__name__)
# Scoring: items with the same context of at least this many tokens share one model row (the context computed
# once), at most SHARE_MAX continuations a row.
SHARE_MIN_CONTEXT = 8
SHARE_MAX = 8
# Most sequences per model call on CUDA with eval.gpu_batch_size auto (decoding a few tokens for many short prompts
# is bound by the per-step launch overhead, so short prompts want very large batches).
MAX_BATCH = 1024


def check_same_base(adapter_dir: Path, extra: dict[str, Path]) -> None:
    """Every further adapter must name the base the run's adapter was trained on (its adapter_config.json's
    base_model_name_or_path). Compared by last path part, so the same model cached under another home folder, or its
    hub id, matches; an adapter that names no base is not checked."""
    import json

    from audited_ft.errors import ModelError

    def base(folder: Path) -> str | None:
        f = Path(folder) / "adapter_config.json"
        if not f.is_file():
            return None  # PEFT says what is wrong when it loads the folder
        try:
            value = json.loads(f.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelError(f"{f}: cannot read this adapter config ({str(exc).splitlines()[0][:200]})") from None
        return value if isinstance(value, str) and value.strip() else None

    ours = base(adapter_dir)
    for name, folder in extra.items():
        theirs = base(folder)
        if ours and theirs and Path(ours.rstrip("/")).name.lower() != Path(theirs.rstrip("/")).name.lower():
            raise ModelError(f"--adapter {name}={folder}: its adapter_config.json has base_model_name_or_path = "
                             f"{theirs!r}, but this run's adapter was trained on {ours!r}; further adapters must be "
                             "of the run's base model")


def dequantised_too_big(base, cfg: Config, allocated: int) -> str | None:
    """Why dequantising ``base`` (a 4-bit model on a GPU with ``allocated`` bytes in use) would not fit
    ``eval.memory_budget_gib``, leaving a quarter of it for the KV cache and activations; None when it fits or no
    budget is set."""
    import math

    from audited_ft.eval.dequant import four_bit_weights
    from audited_ft.models import compute_dtype

    budget = cfg.eval.memory_budget_gib
    if budget is None:
        return None
    size = compute_dtype(cfg.quantization.compute_dtype, "cuda").itemsize
    four_bit = four_bit_weights(base)
    # a Params4bit holds two weights a byte; its quantisation state keeps the weight matrix's own shape
    weights = sum(math.prod(p.quant_state.shape) for p in four_bit)
    after = allocated + weights * size - sum(p.numel() * p.element_size() for p in four_bit)
    if after <= 0.75 * budget * 2**30:
        return None
    return (f"dequantised, the weights would take {after / 2**30:.1f} GiB of the {budget:g} GiB memory budget "
            "(eval.memory_budget_gib), leaving less than a quarter for the KV cache")


class ModelUnderTest:
    """One loaded base with the run's adapter ("adapter") and any further adapters switched in place.

    Variants: "base" (every adapter disabled), "adapter" (the run's own) and one per extra adapter, by name. The base
    weights are loaded once; an adapter adds only its LoRA matrices. With ``reference="full_precision"`` (and a 4-bit
    base) the unquantised base is loaded beside it as variant ``full_precision`` when its estimated memory fits
    (``self.reference`` says what happened); its keys compare it with the 4-bit base like an adapter's.
    """

    variants: tuple[str, ...] = ("base", "adapter")

    def __init__(self, cfg: Config, adapter_dir: Path, batch_size: int = 16,
                 extra_adapters: dict[str, Path] | None = None, reference: str = "none"):
        check_same_base(adapter_dir, extra_adapters or {})  # before the minutes of loading a base
        for folder in (adapter_dir, *(extra_adapters or {}).values()):
            check_adapter_weights(folder)  # safetensors only, refused before anything is loaded
        import torch
        from peft import PeftModel

        from audited_ft.errors import ModelError
        from audited_ft.models import load_base_model, load_tokenizer, pick_device, resolve_model

        self.cfg = cfg
        self.batch_size = batch_size
        self.device = pick_device(cfg.train.device)
        resolved = resolve_model(cfg.model.name_or_path, cfg.model.licence)
        self.tokenizer = load_tokenizer(resolved, cfg.model.revision, cfg.model.trust_remote_code)
        self.tokenizer.padding_side = "left"
        base = load_base_model(resolved, cfg.quantization, self.device, cfg.model.revision, cfg.model.trust_remote_code)
        self.dequantize_check: dict | None = None
        if cfg.quantization.load_in_4bit and cfg.eval.dequantize_base:
            too_big = dequantised_too_big(base, cfg, torch.cuda.memory_allocated()) if self.device == "cuda" else None
            if too_big:
                self.dequantize_check = {"passed": False, "dtype": "bfloat16", "reason": too_big}
                log.info("eval: the 4-bit base is kept: %s", too_big)
            else:
                base = self._dequantized(base, resolved)
        self.merge_adapter = cfg.eval.merge_adapter and not _has_4bit_layers(base)
        if cfg.eval.merge_adapter and not self.merge_adapter:
            log.info("eval: eval.merge_adapter does not apply: the base is 4-bit (its LoRA branch stays unmerged)")
        self._base_weights: dict | None = None  # host copies of the LoRA-wrapped layers' weights, taken at 1st merge
        self.precision = _precision(cfg, self.dequantize_check, merged=self.merge_adapter)
        extra = dict(extra_adapters or {})  # names checked by audited_ft.eval.stage.check_extra_adapters
        # On a GPU the adapter stays in the dtype it was trained and saved in (TRL trains QLoRA adapters in bf16):
        # PEFT would otherwise upcast it to float32, which makes every LoRA product a float32 matmul on bf16 inputs.
        keep = {"autocast_adapter_dtype": False} if self.device == "cuda" else {}
        try:
            self.model = PeftModel.from_pretrained(base, str(adapter_dir), adapter_name="default", **keep)
            check_adapter_complete(self.model, "default", adapter_dir)
            check_adapter_live(self.model, "default", adapter_dir)
            for name, path in extra.items():
                adapter_dir = path
                self.model.load_adapter(str(path), adapter_name=name, **keep)
                check_adapter_complete(self.model, name, path)
                check_adapter_live(self.model, name, path)
        except (ValueError, RuntimeError, OSError, KeyError) as exc:
            raise ModelError(f"{adapter_dir}: cannot load this adapter on {cfg.model.name_or_path!r}: "
                             f"{str(exc).splitlines()[0][:300]}") from None
        self.variants = ("base", "adapter", *extra)
        self.model.eval()
        self._torch = torch
        self.reference_model = None
        self.reference = load_reference(self, cfg, resolved, reference)
        if self.reference_model is not None:
            self.variants = (*self.variants, FULL_PRECISION)

    def _dequantized(self, base, resolved):
        """The base dequantised to the compute dtype when that reproduces the 4-bit base's next-token logits
        (``audited_ft.eval.dequant``), else the 4-bit base loaded again; the check is kept for the manifest."""
        from audited_ft.eval.dequant import CHECK_TEXTS, dequantize_checked
        from audited_ft.models import compute_dtype, load_base_model

        prompts = [self.chat(text) for text in CHECK_TEXTS]
        dtype = compute_dtype(self.cfg.quantization.compute_dtype, self.device)
        model, self.dequantize_check = dequantize_checked(base, self.tokenizer, prompts, dtype,
                                                          self.cfg.eval.dequantize_tolerance)
        if model is not None:
            return model
        cfg = self.cfg
        return load_base_model(resolved, cfg.quantization, self.device, cfg.model.revision, cfg.model.trust_remote_code)

    def prompt(self, text: str) -> str:
        """The task prompt (data.prompt_template + chat template), exactly as in training."""
        from audited_ft.models import build_prompt

        return build_prompt(self.tokenizer, self.cfg.data.prompt_template, text, self.cfg.model.use_chat_template,
                            self.cfg.model.system_prompt)

    def chat(self, text: str, system: str | None = None) -> str:
        """A plain user turn (no task template), through the chat template when the model has one.

        For probes that talk to the model as a user would (toxicity, refusals), not through the fine-tuning task.
        """
        from audited_ft.models import build_prompt

        return build_prompt(self.tokenizer, "{input}", text, self.cfg.model.use_chat_template, system)

    def _variant(self, variant: str):
        import contextlib

        if variant == "base":
            return self.model.disable_adapter()
        if variant == FULL_PRECISION and self.reference_model is not None:
            return self._reference_swapped()
        if variant not in self.variants:
            raise ValueError(f"unknown variant {variant!r} (have {', '.join(self.variants)})")
        name = "default" if variant == "adapter" else variant
        self.model.set_adapter(name)
        return self._merged(name) if self.merge_adapter else contextlib.nullcontext()

    def _merged(self, name: str):
        """A context in which adapter ``name``'s LoRA product is added into the weights it wraps and the LoRA branch
        is off; on exit every such weight gets its host copy back, bit for bit (PEFT's ``unmerge_adapter``
        subtracts the product again, which leaves rounding in the base's weights). Written here rather than with
        PEFT's merge/unmerge for that exact restore; each layer's product is PEFT's own ``get_delta_weight``."""
        import contextlib

        from peft.tuners.lora import LoraLayer

        torch = self._torch
        layers = [(path, m) for path, m in self.model.named_modules()
                  if isinstance(m, LoraLayer) and name in getattr(m, "lora_A", {})]
        if self._base_weights is None:
            self._base_weights = {path: m.get_base_layer().weight.detach().to("cpu", copy=True)
                                  for path, m in self.model.named_modules() if isinstance(m, LoraLayer)}

        @contextlib.contextmanager
        def merged():
            try:
                with torch.no_grad():
                    for _, m in layers:
                        weight = m.get_base_layer().weight
                        delta = m.get_delta_weight(name)
                        weight.copy_((weight.float() + delta.float()).to(weight.dtype))
                with self.model.disable_adapter():
                    yield
            finally:
                with torch.no_grad():
                    for path, m in layers:
                        m.get_base_layer().weight.copy_(self._base_weights[path])

        return merged()

    def _reference_swapped(self):
        """A context in which ``self.model`` is the full-precision base (every method reads ``self.model``)."""
        import contextlib

        @contextlib.contextmanager
        def swapped():
            peft_model, self.model = self.model, self.reference_model
            try:
                yield
            finally:
                self.model = peft_model

        return swapped()

    def generate_mixed(self, prompts: list[str], variants: list[str], max_new_tokens: int) -> list[str]:
        """Greedy continuations where each prompt names its own variant, in one batch per length bucket: PEFT routes
        each row through its adapter (or none, for "base"). Same answers as ``generate`` per variant."""
        if FULL_PRECISION in variants:
            raise ValueError("the full-precision base is another model: generate it with generate(), not mixed")
        torch = self._torch
        names = ["__base__" if v == "base" else "default" if v == "adapter" else v for v in variants]
        unknown = sorted(set(variants) - set(self.variants))
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown} (have {', '.join(self.variants)})")
        chunks = self._chunks(prompts, max_new_tokens)
        out: dict[int, str] = {}
        with torch.inference_mode():
            for k in self._mine(chunks, "generate_mixed", [prompts, variants, max_new_tokens]):
                idx = chunks[k]
                enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.model.device)
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id,
                                          adapter_names=[names[i] for i in idx], **self.cache_args())
                texts = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, t in zip(idx, texts):
                    out[i] = t.strip()
        return _in_order(out, len(prompts))

    def score(self, contexts: list[str], continuations: list[str], variant: str) -> list[tuple[float, int]]:
        """(sum of log-probabilities, token count) of each continuation given its context, in input order.

        Context and continuation are tokenized separately and joined, so the continuation's tokens are the same
        whatever the context. An empty context is scored after the tokenizer's BOS token (or EOS when it has none).
        Items are batched by length (left padding with each sequence's own position ids; padded positions are masked
        out).
        """
        items = self._encode_pairs(contexts, continuations, "score")
        return [(float(lp.sum()), len(lp)) for lp in self._continuation_logprobs(items, variant, "score")]

    def token_logprobs(self, contexts: list[str], continuations: list[str],
                       variant: str) -> list[list[tuple[str, float]]]:
        """Per continuation token: (its text, its log-probability given the context and the tokens before it).

        Same tokenization, batching and positions as :meth:`score`, so each item's log-probabilities sum to its
        ``score`` sum. A token's text is the span of the continuation it covers, including the whitespace before it,
        so the texts join back to the continuation exactly (tokenizers without offsets: decoded prefix differences).
        """
        items = self._encode_pairs(contexts, continuations, "token_logprobs")
        logprobs = self._continuation_logprobs(items, variant, "token_logprobs")
        return [list(zip(self._token_texts(x, cont_ids), (float(v) for v in lp.tolist())))
                for x, (_, cont_ids), lp in zip(continuations, items, logprobs)]

    def _encode_pairs(self, contexts: list[str], continuations: list[str], what: str) -> list[tuple[list, list]]:
        """(context ids, continuation ids) per pair; an empty context becomes the BOS (else EOS) token."""
        if len(contexts) != len(continuations):
            raise ValueError(f"{what}: contexts and continuations differ in length")
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        items = []
        for c, x in zip(contexts, continuations):
            ctx_ids = tok(c, add_special_tokens=False)["input_ids"] if c else []
            cont_ids = tok(x, add_special_tokens=False)["input_ids"]
            if not cont_ids:
                raise ValueError(f"{what}: empty continuation after tokenization: {x!r}")
            items.append((ctx_ids or [start], cont_ids))
        return items

    def _continuation_logprobs(self, items: list[tuple[list, list]], variant: str, what: str) -> list:
        """Per item, a 1-D CPU tensor of its continuation tokens' log-probabilities.

        Items are laid out in model rows (``_rows``): items whose context is the same (BBQ's three answers to one
        question, say) share one row, the context once and then each continuation, which attends to the context and
        to itself only and takes the positions it would have alone; other items get a row of their own. Rows are
        sorted by length and batched, left-padded, so every row's continuations end at the last position and only
        the last positions' logits are computed.
        """
        from tqdm.auto import tqdm

        torch = self._torch
        rows = self._rows(items)
        size = [len(items[r[0]][0]) + sum(len(items[i][1]) for i in r) for r in rows]
        order = sorted(range(len(rows)), key=size.__getitem__)
        out: dict = {}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        from audited_ft import distributed

        batch = distributed.broadcast(self.batch_for(max(size, default=1), "score"))  # every process the same batches
        log.debug("%s (%s): %d items in %d rows, batches of %d", what, variant, len(items), len(rows), batch)
        dev = self.model.device
        starts = list(range(0, len(order), batch))
        with self._variant(variant), torch.inference_mode():
            for k in tqdm(self._mine(starts, what, [variant, items]), desc=f"{what} ({variant})", leave=False,
                          disable=None if distributed.is_main() else True):
                b = starts[k]
                chunk = [rows[k] for k in order[b:b + batch]]
                width = max(size[k] for k in order[b:b + batch])
                # Only the continuations' logits are needed (a continuation is a few tokens; the vocabulary-wide
                # float logits of every context position were most of the memory traffic).
                keep = max(sum(len(items[i][1]) for i in r) for r in chunk) + 1
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                positions = torch.zeros((len(chunk), width), dtype=torch.long)
                segment = torch.full((len(chunk), width), -1, dtype=torch.long)  # -1 pad, 0 context, j continuation j
                rows_at, cols_at, targets, spans = [], [], [], []
                for r, members in enumerate(chunk):
                    ctx = items[members[0]][0]
                    tail = sum(len(items[i][1]) for i in members)
                    at = width - tail - len(ctx)
                    ids[r, at:at + len(ctx)] = torch.tensor(ctx)
                    positions[r, at:at + len(ctx)] = torch.arange(len(ctx))
                    segment[r, at:at + len(ctx)] = 0
                    at += len(ctx)
                    last_ctx = at - 1
                    for j, i in enumerate(members, 1):
                        cont = items[i][1]
                        ids[r, at:at + len(cont)] = torch.tensor(cont)
                        positions[r, at:at + len(cont)] = torch.arange(len(ctx), len(ctx) + len(cont))
                        segment[r, at:at + len(cont)] = j
                        # each token is predicted by the position before it; the first by the context's last
                        predictors = [last_ctx] + list(range(at, at + len(cont) - 1))
                        spans.append((i, len(targets), len(cont)))
                        rows_at += [r] * len(cont)
                        cols_at += [p - (width - keep) for p in predictors]
                        targets += cont
                        at += len(cont)
                shared = any(len(members) > 1 for members in chunk)
                mask = self._tree_mask(segment) if shared else (segment >= 0).long()
                inputs = {"input_ids": ids.to(dev), "attention_mask": mask.to(dev), "position_ids": positions.to(dev),
                          "use_cache": False}
                try:
                    logits = self.model(**inputs, logits_to_keep=keep).logits[:, -keep:]
                except TypeError:  # a model class without logits_to_keep
                    logits = self.model(**inputs).logits[:, -keep:]
                picked = logits[torch.tensor(rows_at, device=logits.device),
                                torch.tensor(cols_at, device=logits.device)].float()
                lp = torch.log_softmax(picked, dim=-1).gather(
                    -1, torch.tensor(targets, device=logits.device).unsqueeze(-1)).squeeze(-1).cpu()
                for i, first, n in spans:
                    out[i] = lp[first:first + n].clone()  # its own storage: a view would pickle the whole batch
        return _in_order(out, len(items))

    def _rows(self, items: list[tuple[list, list]]) -> list[tuple[int, ...]]:
        """Item indices per model row: items with the same context of at least ``SHARE_MIN_CONTEXT`` tokens share a
        row (up to ``SHARE_MAX`` of them), the rest one row each. No sharing where the attention implementation
        cannot take a per-row 4-D mask (flash attention)."""
        impl = getattr(self.model.config, "_attn_implementation", None) or "eager"
        if impl not in ("sdpa", "eager"):
            return [(i,) for i in range(len(items))]
        groups: dict = {}
        for i, (ctx, _) in enumerate(items):
            groups.setdefault(tuple(ctx) if len(ctx) >= SHARE_MIN_CONTEXT else i, []).append(i)
        return [tuple(m[k:k + SHARE_MAX]) for m in groups.values() for k in range(0, len(m), SHARE_MAX)]

    def _tree_mask(self, segment):
        """The 4-D attention mask of rows holding one context and several continuations: causal, no padding, and a
        continuation's tokens see the context and their own continuation only. Every position sees itself, so a
        padding row is never empty. Boolean for SDPA; additive (0 / dtype minimum) for eager attention."""
        torch = self._torch
        n = segment.shape[1]
        q, k = segment[:, :, None], segment[:, None, :]
        allowed = torch.ones(n, n, dtype=torch.bool).tril() & (k >= 0) & ((k == 0) | (k == q))
        allowed |= torch.eye(n, dtype=torch.bool)
        allowed = allowed[:, None]
        if getattr(self.model.config, "_attn_implementation", None) == "sdpa":
            return allowed
        dtype = self.model.get_input_embeddings().weight.dtype
        return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)

    def _token_texts(self, text: str, ids: list[int]) -> list[str]:
        """The piece of ``text`` each token covers, with the whitespace before it, so the pieces join to ``text``."""
        tok = self.tokenizer
        if getattr(tok, "is_fast", False):
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            if enc["input_ids"] == ids:
                ends, last = [], 0
                for _, end in enc["offset_mapping"]:
                    last = max(last, end)  # byte-level pieces of one character share offsets; keep ends monotonic
                    ends.append(last)
                ends[-1] = len(text)  # trailing whitespace goes to the last token
                return [text[a:b] for a, b in zip([0] + ends[:-1], ends)]
        prefixes = [""] + [tok.decode(ids[:k + 1]) for k in range(len(ids))]
        return [prefixes[k + 1][len(prefixes[k]):] if prefixes[k + 1].startswith(prefixes[k]) else tok.decode([i])
                for k, i in enumerate(ids)]

    def sample(self, prompts: list[str], variant: str, max_new_tokens: int, num_samples: int = 1,
               temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> list[list[str]]:
        """``num_samples`` sampled continuations per prompt. The generator is re-seeded per batch from ``seed``, so
        base and adapter draw from the same random stream and a rerun gives the same samples."""
        from tqdm.auto import tqdm

        torch = self._torch
        from audited_ft import distributed

        out: dict[int, list[str]] = {}
        chunks = self._chunks(prompts, max_new_tokens, max(1, num_samples))
        done = [sum(len(c) for c in chunks[:k]) for k in range(len(chunks))]  # prompts before a batch: its seed offset
        with self._variant(variant), torch.inference_mode():
            for k in tqdm(self._mine(chunks, "sample", [variant, prompts, max_new_tokens, num_samples, temperature,
                                                        top_p, seed]),
                          desc=f"sample ({variant})", leave=False, disable=None if distributed.is_main() else True):
                idx = chunks[k]
                enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.model.device)
                torch.manual_seed(seed + done[k])
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True,
                                          temperature=temperature, top_p=top_p, num_return_sequences=num_samples,
                                          pad_token_id=self.tokenizer.pad_token_id, **self.cache_args())
                texts = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for r, i in enumerate(idx):
                    out[i] = [t.strip() for t in texts[r * num_samples:(r + 1) * num_samples]]
        return _in_order(out, len(prompts))

    def _chunks(self, prompts: list[str], max_new_tokens: int, per_prompt: int = 1) -> list[list[int]]:
        """Prompt indices per generate call, shortest prompts first. With ``eval.gpu_batch_size: auto`` each call is
        as large as the memory allows for its own longest prompt (short prompts get large batches, long ones small),
        counting ``per_prompt`` sequences per prompt; otherwise every call has the configured size."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        if not (self.device == "cuda" and self.cfg.eval.gpu_batch_size == "auto"):
            size = max(1, self.batch_for(0) // per_prompt)
            return [order[k:k + size] for k in range(0, len(order), size)]
        from audited_ft import distributed

        if not distributed.is_main():  # several processes: the batches are the main process's (its free memory)
            return distributed.broadcast(None)
        lengths = [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        chunks: list[list[int]] = [[]]
        longest = fits = 0
        for i in order:  # grow the batch while the batch's longest prompt still fits; then start the next one
            if lengths[i] > longest:
                longest, fits = lengths[i], self.batch_for(lengths[i] + max_new_tokens) // per_prompt
            if chunks[-1] and len(chunks[-1]) + 1 > fits:
                chunks.append([])
                longest, fits = lengths[i], self.batch_for(lengths[i] + max_new_tokens) // per_prompt
            chunks[-1].append(i)
        from audited_ft import distributed

        return distributed.broadcast(chunks)

    def batch_for(self, seq_tokens: int, kind: str = "generate") -> int:
        """Items per model call. CPU: ``batch_size``. CUDA: ``eval.gpu_batch_size``, or with "auto" as many
        sequences of ``seq_tokens`` tokens as fit in 60% of the free GPU memory (a generated sequence holds its KV
        cache; a scored one its float32 logits), 1 to ``MAX_BATCH``."""
        setting = self.cfg.eval.gpu_batch_size
        if self.device != "cuda":
            return self.batch_size
        if setting != "auto":
            return int(setting)
        c = self.model.config
        c = getattr(c, "text_config", None) or c
        heads = getattr(c, "num_attention_heads", 1)
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
        kv = 2 * c.num_hidden_layers * (getattr(c, "num_key_value_heads", None) or heads) * head_dim * 2
        per_token = kv if kind == "generate" else kv + 4 * 2 * c.vocab_size  # logits and log-softmax, float32
        cuda = self._torch.cuda
        free, _ = cuda.mem_get_info()
        free += cuda.memory_reserved() - cuda.memory_allocated()  # blocks torch holds from earlier batches are free too
        if self.cfg.eval.memory_budget_gib is not None:
            free = min(free, max(0, int(self.cfg.eval.memory_budget_gib * 2**30) - cuda.memory_allocated()))
        return max(1, min(MAX_BATCH, int(0.6 * free // max(1, per_token * seq_tokens))))

    def generate_unstored(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """``generate``: this model stores nothing (the answer cache wraps it)."""
        return self.generate(prompts, variant, max_new_tokens)

    def generate(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """Greedy continuations, batched by similar length (left padding), in the order of ``prompts``."""
        from tqdm.auto import tqdm

        torch = self._torch
        from audited_ft import distributed

        out: dict[int, str] = {}
        chunks = self._chunks(prompts, max_new_tokens)
        log.debug("generate (%s): %d prompts, batches of %s", variant, len(prompts), [len(c) for c in chunks])
        with self._variant(variant), torch.inference_mode():
            for k in tqdm(self._mine(chunks, "generate", [variant, prompts, max_new_tokens]),
                          desc=f"generate ({variant})", leave=False, disable=None if distributed.is_main() else True):
                idx = chunks[k]
                enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.model.device)
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id, **self.cache_args())
                texts = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, t in zip(idx, texts):
                    out[i] = t.strip()
        return _in_order(out, len(prompts))

    def cache_args(self) -> dict:
        """``generate`` arguments of ``eval.kv_cache``: none for the dynamic cache; a static cache with Hugging Face's
        automatic compilation switched off ("static") or left on ("compiled"; it compiles on CUDA only)."""
        setting = self.cfg.eval.kv_cache
        if setting == "dynamic":
            return {}
        return {"cache_implementation": "static", **({"disable_compile": True} if setting == "static" else {})}

    def _mine(self, batches: list, what: str, inputs) -> list[int]:
        """The indices of ``batches`` this process computes (all of them in one process); see
        :mod:`audited_ft.distributed`. The processes first check that they are about to make the same call."""
        from audited_ft import distributed

        if distributed.is_distributed():
            import json

            distributed.check_same_call(what, json.dumps([inputs, batches], default=str))
        return distributed.mine(len(batches))


def _in_order(results: dict, n: int) -> list:
    """Per-item results (``{item index: result}`` of this process's batches) gathered from every process, as a list in
    item order. One process: the results as they are."""
    from audited_ft import distributed

    merged = distributed.gather_items(results)
    if len(merged) != n:
        raise RuntimeError(f"model call: {len(merged)} of {n} items have a result after gathering the processes'")
    return [merged[i] for i in range(n)]


FULL_PRECISION = "full_precision"  # the variant name of the unquantised base (eval.reference)
HEADROOM = 1.25  # estimated weights x this must fit in the free memory before the reference is loaded


def load_reference(under_test: "ModelUnderTest", cfg: Config, resolved, reference: str) -> dict:
    """Load the unquantised base onto ``under_test.reference_model`` when asked and when it fits; return what happened
    (for the manifest and the report): ``{"requested", "loaded", "dtype", "estimated_gib", "free_gib", "reason"}``."""
    out: dict = {"requested": reference, "loaded": False}
    if reference != FULL_PRECISION:
        return out
    if not cfg.quantization.load_in_4bit:
        out["reason"] = "the base is not quantised: it is the full-precision model already"
        return out
    from audited_ft.models import compute_dtype, load_base_model

    dtype = compute_dtype(cfg.quantization.compute_dtype, under_test.device)
    out["dtype"] = str(dtype).removeprefix("torch.")
    need, free = reference_memory(resolved.path, dtype, under_test.device)
    out.update(estimated_gib=None if need is None else round(need / 2**30, 2),
               free_gib=None if free is None else round(free / 2**30, 2))
    from audited_ft import distributed

    # several processes: the main process's memory decides for all (they must hold the same variants)
    if distributed.broadcast(need is not None and free is not None and need * HEADROOM > free):
        out["reason"] = (f"not enough memory: the full-precision weights need about {need / 2**30:.1f} GiB "
                         f"(x{HEADROOM} headroom) and {free / 2**30:.1f} GiB is free on the {under_test.device}")
        log.warning("eval.reference=full_precision skipped: %s", out["reason"])
        return out
    unquantised = cfg.quantization.model_copy(update={"load_in_4bit": False})
    model = load_base_model(resolved, unquantised, under_test.device, cfg.model.revision, cfg.model.trust_remote_code)
    if under_test.device != "cuda":
        model = model.to(under_test.device)
    model.eval()
    under_test.reference_model = model
    out["loaded"] = True
    return out


def reference_memory(path: str, dtype, device: str) -> tuple[int | None, int | None]:
    """(estimated bytes of the unquantised weights in ``dtype``, free bytes on ``device``), each None when unknown.

    The estimate reads the parameter count from the safetensors headers of a local model folder (no weights are
    loaded); a hub id gives None (the reference is then loaded unchecked). Free memory: ``torch.cuda.mem_get_info``
    on CUDA, psutil's available memory otherwise."""
    import json
    import struct

    import torch

    count = 0
    folder = Path(path)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    for f in files:
        with open(f, "rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        for name, entry in header.items():
            if name != "__metadata__":
                n = 1
                for d in entry.get("shape", []):
                    n *= int(d)
                count += n
    need = count * torch.tensor([], dtype=dtype).element_size() if count else None
    if device == "cuda" and torch.cuda.is_available():
        free = int(torch.cuda.mem_get_info()[0])
    else:
        import psutil  # installed with accelerate, which requires it

        free = int(psutil.virtual_memory().available)
    return need, free


def _has_4bit_layers(model) -> bool:
    """Whether any linear layer of ``model`` holds bitsandbytes 4-bit weights (merging into them would requantise)."""
    return any(type(getattr(m, "weight", None)).__name__ == "Params4bit" for m in model.modules())


def _precision(cfg: Config, check: dict | None = None, merged: bool = False) -> str:
    q = cfg.quantization
    lora = "LoRA merged into the weights per adapter (eval.merge_adapter)" if merged else "LoRA unmerged"
    if not q.load_in_4bit:
        return f"unquantised base, compute {q.compute_dtype}" + (f", {lora}" if merged else "")
    how = f"{q.quant_type}{'+double_quant' if q.double_quant else ''}"
    if cfg.eval.dequantize_base and (check is None or check["passed"]):
        return f"{how} base dequantised to the compute dtype for generation (same weight values), {lora}"
    if cfg.eval.dequantize_base and check.get("reason"):
        return f"{how} 4-bit base, LoRA unmerged (not dequantised: {check['reason']})"
    if cfg.eval.dequantize_base:
        return f"{how} 4-bit base, LoRA unmerged (dequantisation to {check['dtype']} refused by its check)"
    return f"{how} 4-bit base, LoRA unmerged"


class CachedModel:
    """The model under test with every answer cached in the run folder (``eval/cache/``).

    Each call (generate, sample, score or token_logprobs; one variant; a list of inputs) is stored as one JSON file
    whose name is a hash of everything that decides the answer: the method and its arguments, the inputs, the model
    and its precision, and — for a non-base variant — a hash of the adapter's weights. A probe that is re-run (an
    evaluation resumed after a crash, a report tweak, a second probe sharing prompts) reads the stored answers instead
    of generating them again; a retrained adapter or a changed decoding setting never hits an old entry.
    """

    def __init__(self, model, cache_dir: Path, identity: dict, adapter_hashes: dict[str, str]):
        self.model = model
        self.cache_dir = Path(cache_dir)
        self.identity = identity
        self.adapter_hashes = adapter_hashes
        self.hits = self.misses = 0
        self._answers: dict[str, dict[str, str]] = {}  # one call without its variant → variant → hash of the answers

    def __getattr__(self, name):  # prompt, chat, variants, precision, tokenizer ...
        return getattr(self.model, name)

    def _cached(self, method: str, variant: str, args: dict, inputs: list, compute, restore=None):
        # restore: turns one stored (JSON) output back into what the method returns (JSON has no tuples)
        import hashlib
        import json

        from audited_ft.run.folder import read_json, write_json

        key_obj = {"method": method, "variant": variant, "args": args, "inputs": inputs, "model": self.identity,
                   "adapter": self.adapter_hashes.get(variant) if variant != "base" else None}
        key = hashlib.sha256(json.dumps(key_obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        path = self.cache_dir / f"{method}-{variant}-{key[:20]}.json"
        call = hashlib.sha256(json.dumps({"method": method, "args": args, "inputs": inputs}, sort_keys=True,
                                         ensure_ascii=False).encode("utf-8")).hexdigest()
        from audited_ft import distributed

        found = None
        if distributed.is_main() and path.is_file():  # several processes: the main one reads, and says what it found
            stored = read_json(path)
            if stored.get("key") == key and len(stored.get("outputs", [])) == len(inputs):
                found = stored["outputs"]
        found = distributed.broadcast(found)
        if found is not None:
            self.hits += 1
            self._note(call, variant, found)
            return [restore(o) if restore else o for o in found]
        self.misses += 1
        outputs = compute()  # every process takes part (the call's batches are shared out)
        if distributed.is_main():
            write_json(path, {"key": key, "method": method, "variant": variant, "args": args, "n": len(inputs),
                              "outputs": outputs})
        self._note(call, variant, outputs)
        return outputs

    def _note(self, call: str, variant: str, outputs) -> None:
        import hashlib
        import json

        text = json.dumps(outputs, sort_keys=True, ensure_ascii=False, default=str)
        self._answers.setdefault(call, {})[variant] = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def liveness(self) -> dict[str, dict[str, int]]:
        """Per adapter variant: how many calls were also made on the base with the same inputs, and in how many the
        answers differed. An adapter whose answers equal the base's in every one of them is not live."""
        out: dict[str, dict[str, int]] = {}
        for answers in self._answers.values():
            if "base" not in answers:
                continue
            for variant, digest in answers.items():
                if variant != "base":
                    seen = out.setdefault(variant, {"compared": 0, "differed": 0})
                    seen["compared"] += 1
                    seen["differed"] += digest != answers["base"]
        return out

    def scores_differ(self, variant: str) -> bool:
        """Whether ``variant`` gives a fixed text another log-likelihood than the base, computed afresh (not cached).
        Equal greedy answers can come from a live adapter whose change is too small to flip a token; equal
        log-likelihoods to the last bit cannot: the adapter's product B·A is not in the forward pass."""
        context, text = "The report was reviewed on Monday.", " Everyone agreed that the findings were clear."
        base = self.model.score([context], [text], "base")[0][0]
        return self.model.score([context], [text], variant)[0][0] != base

    def generate(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        return self._cached("generate", variant, {"max_new_tokens": max_new_tokens}, prompts,
                            lambda: self.model.generate(prompts, variant, max_new_tokens))

    def generate_unstored(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """Greedy continuations computed afresh and written nowhere (a probe whose answers may repeat personal data
        from the training rows: the PII extraction probe); only a hash of them is kept for the liveness check."""
        import hashlib
        import json

        outputs = self.model.generate(prompts, variant, max_new_tokens)
        call = hashlib.sha256(json.dumps({"method": "generate_unstored", "args": {"max_new_tokens": max_new_tokens},
                                          "inputs": prompts}, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        self._note(call.hexdigest(), variant, outputs)
        return outputs

    def sample(self, prompts: list[str], variant: str, max_new_tokens: int, num_samples: int = 1,
               temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> list[list[str]]:
        args = {"max_new_tokens": max_new_tokens, "num_samples": num_samples, "temperature": temperature,
                "top_p": top_p, "seed": seed}
        return self._cached("sample", variant, args, prompts, lambda: self.model.sample(prompts, variant, **args))

    def score(self, contexts: list[str], continuations: list[str], variant: str) -> list[tuple[float, int]]:
        return self._cached("score", variant, {}, [list(p) for p in zip(contexts, continuations)],
                            lambda: self.model.score(contexts, continuations, variant), restore=tuple)

    def token_logprobs(self, contexts: list[str], continuations: list[str],
                       variant: str) -> list[list[tuple[str, float]]]:
        return self._cached("token_logprobs", variant, {}, [list(p) for p in zip(contexts, continuations)],
                            lambda: self.model.token_logprobs(contexts, continuations, variant),
                            restore=lambda o: [tuple(t) for t in o])


def check_adapter_weights(adapter_dir: Path) -> Path:
    """The adapter's weight file, ``adapter_model.safetensors``; a :class:`ModelError` when the folder has none.

    PEFT falls back to ``adapter_model.bin`` when there is no safetensors file, and a ``.bin`` file is a pickle: loading
    one from an adapter folder someone handed over can run any code it carries. So a folder with only a ``.bin`` (or
    no weights at all) is refused before anything is loaded.
    """
    from audited_ft.errors import ModelError

    folder = Path(adapter_dir)
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        return weights
    pickles = sorted(p.name for p in folder.glob("*.bin")) if folder.is_dir() else []
    if pickles:
        raise ModelError(f"{folder}: the adapter's weights are only in {', '.join(pickles)} (a pickle, which can run "
                         "code when loaded), not in adapter_model.safetensors; audited_ft loads adapters only from "
                         "safetensors. Convert it where you trust its source (load it there and save it again with "
                         "save_pretrained, which writes safetensors), then point to the new folder.")
    raise ModelError(f"{folder}: no adapter_model.safetensors there — not a trained PEFT adapter folder (a run "
                     "folder's adapter is RUN/train/adapter, written by the 'train' stage)")


def check_adapter_live(model, name: str, adapter_dir: Path) -> None:
    """:class:`~audited_ft.errors.AdapterNotLive` when every LoRA B matrix of adapter ``name`` is zero: the product
    B·A is then zero and the "adapter" is the base model (a LoRA adapter starts that way; one that never trained, or
    was saved before its first step, stays so). Evaluating it would report the base twice as a clean fine-tune."""
    from audited_ft.errors import AdapterNotLive

    weights = [p for n, p in model.named_parameters() if f".{name}." in n and "lora_B" in n]
    if weights and not any(bool(p.detach().abs().max() > 0) for p in weights):
        raise AdapterNotLive(f"{adapter_dir}: every LoRA B matrix of this adapter is zero ({len(weights)} of them), so "
                             "it changes nothing: it never trained, or was saved before its first step. Nothing of "
                             "it would be evaluated but the base model")


def check_adapter_complete(model, name: str, adapter_dir: Path) -> None:
    """A :class:`ModelError` unless the adapter's file held a weight for every LoRA layer PEFT created for it. PEFT
    only warns about missing keys and leaves those layers at their initial values (LoRA B = 0: the base model's
    output), so an adapter saved wrongly (for instance with another wrapper's parameter names) would be evaluated as
    if it were the base model."""
    from safetensors import safe_open

    from audited_ft.errors import ModelError

    with safe_open(str(Path(adapter_dir) / "adapter_model.safetensors"), framework="pt") as f:
        stored = set(f.keys())
    wanted = {n.replace(f".{name}.", ".") for n, _ in model.named_parameters() if f".{name}." in n and "lora_" in n}
    missing = sorted(wanted - stored)
    if missing:
        raise ModelError(f"{adapter_dir}: adapter_model.safetensors lacks {len(missing)} of the {len(wanted)} LoRA "
                         f"weights this adapter's config creates (first: {missing[0]}; the file holds "
                         f"{len(stored)} tensor(s){', e.g. ' + sorted(stored)[0] if stored else ''}); "
                         "it was saved incompletely or under other parameter names")


def adapter_hash(adapter_dir: Path) -> str:
    """sha256 of an adapter folder's weight and config files (what decides its answers)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(Path(adapter_dir).iterdir()):
        if p.is_file() and p.suffix in (".safetensors", ".bin", ".json"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()
