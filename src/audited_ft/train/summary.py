"""The fields every training summary (``train/summary.json``) carries whichever loop trained the adapter: the
stock Trainer path (``train.stage``) and DP-SGD (``train.dp``) both report losses, memory and the model's make-up
the same way, so the report and the gates read one shape."""

from __future__ import annotations

import resource


def loss_fields(losses: list[float], evals: list[tuple[int, float]], final_eval: float | None) -> dict:
    """Last training loss, last and best evaluation loss and the best one's step. ``evals``: (step, eval loss)."""
    best = min(evals, key=lambda e: e[1]) if evals else (None, None)
    return {"final_train_loss": losses[-1] if losses else None, "final_eval_loss": final_eval,
            "best_eval_loss": best[1], "best_step": best[0]}


def footprint(model, trainable: int, device: str, dtype, cfg) -> dict:
    """Peak memory (CUDA allocated on a GPU, the process's peak resident set elsewhere), device, parameter counts,
    quantisation, compute dtype and LoRA settings."""
    import torch

    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    q = cfg.quantization
    return {"peak_memory_mb": round(peak, 1), "peak_memory_kind": "cuda_allocated" if device == "cuda" else "process_rss",
            "device": device, "trainable_params": trainable, "total_params": sum(p.numel() for p in model.parameters()),
            "quantization": (q.quant_type + ("+double_quant" if q.double_quant else "")) if q.load_in_4bit else "none",
            "compute_dtype": str(dtype).replace("torch.", ""), "lora": cfg.lora.model_dump()}
