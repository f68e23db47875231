"""A tiny random-weight Llama with a word-level tokenizer, built in a folder: a real Hugging Face model folder for
pipeline tests where the quality of the answers does not matter (CUDA path on a GPU machine, fast CPU checks)."""

from __future__ import annotations

import json
from pathlib import Path


def build_tiny_llama(folder: Path, texts: list[str], hidden: int = 128, layers: int = 2) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(folder)
    config = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def tiny_config(tmp: Path, rows: list[dict], device: str = "cpu") -> Path:
    """A config (and its data file) that runs the whole pipeline on the tiny model in seconds."""
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = build_tiny_llama(tmp / "tiny-llama", [r["dialogue"] + " " + r["summary"] for r in rows])
    cfg = tmp / "tiny.yaml"
    cfg.write_text(f"""
run: {{name: tiny, seed: 3}}
model: {{name_or_path: {model}, use_chat_template: false}}
data: {{source: {data}, id_field: id, split: {{train: 0.6, validation: 0.2, test: 0.2}}}}
train: {{max_steps: 3, batch_size: 4, eval_every_steps: 2, max_length: 128, device: {device}}}
lora: {{r: 4, alpha: 8}}
eval: {{max_new_tokens: 6, batch_size: 8, bootstrap_samples: 200}}
audits: {{leakage: {{}}, pii: {{enabled: false}}}}   # every registered audit runs unless disabled
probes: {{rouge: {{}}}}
gates:
  - {{metric: rouge.rougeL.adapter, min: 0.0}}
""")
    return cfg
