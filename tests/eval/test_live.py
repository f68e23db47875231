"""An adapter that changes nothing is refused: all-zero LoRA weights at load, or every answer equal to the base's."""

import pytest

from audited_ft.errors import AdapterNotLive
from audited_ft.eval.model import CachedModel
from audited_ft.eval.stage import _check_live
from tests.fakes import FakeModel


class Unapplied(FakeModel):
    """An adapter variant that answers exactly as the base: what a silently unapplied adapter looks like."""

    def generate(self, prompts, variant, max_new_tokens):
        return super().generate(prompts, "base", max_new_tokens)

    def score(self, contexts, continuations, variant):
        return super().score(contexts, continuations, "base")


def _cached(model, tmp_path):
    return CachedModel(model, tmp_path / "cache", identity={"model": "fake"}, adapter_hashes={"adapter": "x"})


def test_answers_equal_to_the_base_everywhere_fail_the_stage(tmp_path):
    model = _cached(Unapplied(), tmp_path)
    model.generate(["a", "b"], "base", 4)
    model.generate(["a", "b"], "adapter", 4)
    model.score(["c"], ["d"], "base")
    model.score(["c"], ["d"], "adapter")
    assert model.liveness() == {"adapter": {"compared": 2, "differed": 0}}
    with pytest.raises(AdapterNotLive, match="equal the base's on every one of the 2 model call"):
        _check_live(model)


class Quiet(FakeModel):
    """A live adapter too weak to flip a greedy token: equal answers, other log-likelihoods."""

    def generate(self, prompts, variant, max_new_tokens):
        return super().generate(prompts, "base", max_new_tokens)

    def adapter_bonus(self, context, continuation):
        return 1e-3


def test_equal_answers_from_a_live_adapter_are_not_refused(tmp_path):
    model = _cached(Quiet(), tmp_path)
    model.generate(["a", "b"], "base", 4)
    model.generate(["a", "b"], "adapter", 4)
    assert model.liveness() == {"adapter": {"compared": 1, "differed": 0}}
    assert model.scores_differ("adapter") and not _cached(Unapplied(), tmp_path).scores_differ("adapter")
    _check_live(model)  # no error: the fresh log-likelihood check shows the adapter in the forward pass


def test_one_differing_answer_is_enough(tmp_path):
    rows = [{"input": "a", "target": "the reference"}]
    model = _cached(FakeModel(rows), tmp_path)
    prompt = model.prompt("a")
    model.generate([prompt, "other"], "base", 4)
    model.generate([prompt, "other"], "adapter", 4)  # the adapter recites the reference of "a"
    assert model.liveness()["adapter"] == {"compared": 1, "differed": 1}
    _check_live(model)  # no error
    # answers read back from the cache count the same way
    again = _cached(FakeModel(rows), tmp_path)
    again.generate([prompt, "other"], "base", 4)
    again.generate([prompt, "other"], "adapter", 4)
    assert again.hits == 2 and again.liveness()["adapter"]["differed"] == 1


@pytest.mark.slow
def test_an_adapter_with_all_zero_lora_weights_is_refused_at_load(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from audited_ft.config import validate_config
    from audited_ft.eval.model import ModelUnderTest
    from tests.tiny_model import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tiny", ["a table for two please"])
    untrained = get_peft_model(AutoModelForCausalLM.from_pretrained(folder), LoraConfig(r=2, target_modules="all-linear"))
    untrained.save_pretrained(tmp_path / "adapter")  # LoRA B starts at zero: B·A = 0, the base model itself
    cfg = validate_config({"model": {"name_or_path": str(folder), "use_chat_template": False},
                           "data": {"source": "unused.jsonl"}, "train": {"device": "cpu"}})
    with pytest.raises(AdapterNotLive, match="every LoRA B matrix of this adapter is zero"):
        ModelUnderTest(cfg, tmp_path / "adapter")
