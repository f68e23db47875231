"""A fake model under test for probe contract tests: deterministic, instant, and with known differences between base
and adapter. Real-model behaviour is tested elsewhere (tests/test_pipeline_tiny.py, tests/test_end_to_end.py)."""

from __future__ import annotations

import hashlib
import re


def _unit(text: str) -> float:
    """A deterministic pseudo-random number in [0, 1) from a string."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


class FakeModel:
    """Base answers "lorem ipsum dolor"; the adapter copies the reference of a known prompt.

    ``score`` gives each continuation a log-probability from a hash of (context, continuation), minus 0.1 per
    character; the adapter variant adds ``adapter_bonus(context, continuation)`` — override it to plant a bias.
    ``sample`` returns ``num_samples`` strings derived from the prompt, the variant and the seed. ``token_logprobs``
    splits a continuation into words (with the whitespace before each) whose log-probabilities sum to ``score``'s;
    the adapter moves weight between words by a hash of the word, so its per-token changes differ from word to word.
    """

    variants = ("base", "adapter")

    def __init__(self, rows=()):
        self._ref = {self.prompt(r["input"]): r["target"] for r in rows}

    def prompt(self, text):
        return f"<prompt>{text}"

    def chat(self, text, system=None):
        return f"<user>{text}"

    def generate(self, prompts, variant, max_new_tokens):
        return [self._ref.get(p, "lorem ipsum dolor") if variant == "adapter" else "lorem ipsum dolor"
                for p in prompts]

    def generate_unstored(self, prompts, variant, max_new_tokens):
        return self.generate(prompts, variant, max_new_tokens)

    def sample(self, prompts, variant, max_new_tokens, num_samples=1, temperature=1.0, top_p=1.0, seed=0):
        return [[f"sample {k} of {variant} for {p[:20]} seed {seed}" for k in range(num_samples)] for p in prompts]

    def adapter_bonus(self, context: str, continuation: str) -> float:
        return 0.0

    def score(self, contexts, continuations, variant):
        out = []
        for c, x in zip(contexts, continuations):
            lp = -0.1 * len(x) - _unit(c + "\x00" + x)
            if variant != "base":
                lp += self.adapter_bonus(c, x)
            out.append((lp, max(1, len(x.split()))))
        return out

    def token_logprobs(self, contexts, continuations, variant):
        out = []
        for (lp, _), c, x in zip(self.score(contexts, continuations, variant), contexts, continuations):
            words = re.findall(r"\s*\S+", x) or [x]
            words[-1] += x[len("".join(words)):]  # trailing whitespace stays with the last word
            # base: the sequence's hash share spread evenly; the adapter shifts it between words (summing to zero)
            rest = (lp + 0.1 * len(x)) / len(words)
            shift = [0.0] * len(words)
            if variant != "base":
                raw = [_unit(f"{variant}\x00{k}\x00{w}") - 0.5 for k, w in enumerate(words)]
                shift = [r - sum(raw) / len(raw) for r in raw]
            out.append([(w, -0.1 * len(w) + rest + s) for w, s in zip(words, shift)])
        return out
