"""Static GPU memory of QLoRA training for the Llama 2 shapes, computed (not measured): what the shipped configs
state beside the measured figures (benchmarks/RESULTS.md). Activations come on top and are what
train.memory_budget_gib sizes the micro-batch for.

    python3 benchmarks/qlora_memory.py

Counted: the 4-bit NF4 linear weights with double quantisation (4 bits + 0.127 bits of constants per weight: one
8-bit constant per 64 weights, re-quantised with one float32 constant per 256 of those), the unquantised embeddings and
LM head in bf16, and the LoRA adapter (r=64 on every linear layer of the blocks) in bf16 with its bf16 gradients and
the optimizer state: paged 8-bit AdamW (2 bytes a parameter) on one GPU or DDP, float32 AdamW (8 bytes) under FSDP,
where everything is sharded across the GPUs.
"""

from __future__ import annotations

SHAPES = {  # Llama 2: hidden, intermediate, layers, key/value width (grouped-query attention on 70B), vocabulary
    "7b": (4096, 11008, 32, 4096, 32000),
    "13b": (5120, 13824, 40, 5120, 32000),
    "70b": (8192, 28672, 80, 1024, 32000),
}
NF4_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # 4.127 bits a weight


def static_gib(size: str, r: int = 64, gpus: int = 1, fsdp: bool = False) -> dict:
    h, ff, layers, kv, vocab = SHAPES[size]
    linear = [(h, h), (h, kv), (h, kv), (h, h), (h, ff), (h, ff), (ff, h)]  # q k v o gate up down
    base_linear = layers * sum(i * o for i, o in linear)
    lora = layers * sum(r * (i + o) for i, o in linear)
    gib = 2**30
    weights = base_linear * NF4_DQ_BITS / 8 + 2 * vocab * h * 2
    adapter = lora * 2 + lora * 2 + lora * (8 if fsdp else 2)  # bf16 weights + bf16 grads + optimizer state
    share = gpus if fsdp else 1
    return {"size": size, "gpus": gpus, "fsdp": fsdp, "quantised_weights": base_linear, "lora_params": lora,
            "base_gib": round(weights / gib / share, 1), "adapter_and_optimizer_gib": round(adapter / gib / share, 1),
            "static_gib_per_gpu": round((weights + adapter) / gib / share, 1)}


def main() -> None:
    print(f"{'model':6} {'layout':14} {'4-bit weights':>14} {'LoRA params':>12} {'base GiB':>9} {'LoRA+opt GiB':>13} "
          f"{'static GiB/GPU':>15}")
    for size, gpus, fsdp in (("7b", 1, False), ("13b", 1, False), ("13b", 2, True), ("70b", 1, False),
                             ("70b", 2, True), ("70b", 4, True)):
        s = static_gib(size, gpus=gpus, fsdp=fsdp)
        layout = f"FSDP x{gpus}" if fsdp else "one GPU / DDP"
        print(f"{size:6} {layout:14} {s['quantised_weights'] / 1e9:13.2f}B {s['lora_params'] / 1e6:11.0f}M "
              f"{s['base_gib']:9.1f} {s['adapter_and_optimizer_gib']:13.1f} {s['static_gib_per_gpu']:15.1f}")


if __name__ == "__main__":
    main()
