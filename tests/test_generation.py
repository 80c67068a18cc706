"""Decoding rules on hand-made logits, and the readable loop against ``model.generate``."""
import math

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from course_lib import generation

LOGITS = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))


def kept(logits):
    return torch.isfinite(logits)[0].tolist()


def test_top_k_keeps_the_k_best():
    assert kept(generation.filter_logits(LOGITS, top_k=2)) == [True, True, False, False]


def test_top_p_keeps_the_smallest_set_reaching_p():
    assert kept(generation.filter_logits(LOGITS, top_p=0.7)) == [True, True, False, False]
    assert kept(generation.filter_logits(LOGITS, top_p=0.5)) == [True, False, False, False]
    assert kept(generation.filter_logits(LOGITS, top_p=0.81)) == [True, True, True, False]


def test_top_p_works_on_unsorted_vocabularies():
    shuffled = LOGITS[:, [2, 0, 3, 1]]
    assert kept(generation.filter_logits(shuffled, top_p=0.7)) == [False, True, False, True]


def test_temperature_sharpens_and_flattens():
    cold = generation.filter_logits(LOGITS, temperature=0.5).softmax(-1)[0, 0].item()
    hot = generation.filter_logits(LOGITS, temperature=2.0).softmax(-1)[0, 0].item()
    assert hot < 0.5 < cold


def tiny_gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=32))


PROMPT = torch.tensor([[1, 2, 3], [4, 5, 6]])


def test_greedy_matches_model_generate():
    model = tiny_gpt2().eval()
    prompt = torch.tensor([[1, 2, 3]])
    ours = generation.generate(model, prompt, max_new_tokens=8, greedy=True)
    theirs = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0,
                            attention_mask=torch.ones_like(prompt))
    assert ours.tolist() == theirs.tolist()


def test_sampling_depends_on_the_seed_and_only_on_it():
    """Same seed, same samples; another seed, other samples (8 near-uniform draws from 50 tokens
    coincide by chance with probability about 50**-8), so a loop that ignored ``seed`` fails here."""
    model = tiny_gpt2()
    first = generation.generate(model, PROMPT, max_new_tokens=8, seed=3)
    again = generation.generate(model, PROMPT, max_new_tokens=8, seed=3)
    other = generation.generate(model, PROMPT, max_new_tokens=8, seed=4)
    assert first.tolist() == again.tolist()
    assert first[:, 3:].tolist() != other[:, 3:].tolist()


def test_samples_stay_those_of_earlier_versions():
    """The tokens this seed gave before the loop learned to follow the model's device."""
    model = tiny_gpt2()
    sampled = generation.generate(model, PROMPT, max_new_tokens=8, seed=3, top_k=10, eos_token_id=46)
    assert sampled.tolist() == [[1, 2, 3, 32, 16, 46, 46, 46, 46, 46, 46], [4, 5, 6, 16, 27, 0, 22, 4, 21, 11, 15]]


def test_the_model_gets_its_inputs_on_its_own_device(monkeypatch):
    model = tiny_gpt2()
    device = next(model.parameters()).device
    seen = []
    forward = model.forward

    def spy(input_ids=None, **kwargs):
        seen.append(input_ids.device)
        return forward(input_ids=input_ids, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    generation.generate(model, PROMPT, max_new_tokens=3, seed=0, eos_token_id=46)
    assert seen and all(d == device for d in seen)


def test_distinct_and_repeated_n():
    assert generation.distinct_n(["a b c d"], 2) == 1.0
    assert math.isclose(generation.distinct_n(["a b a b"], 2), 2 / 3)
    assert generation.repeated_n(["a b c a b c"], 3) == 1 / 4
    assert generation.repeated_n(["a b c d"], 3) == 0.0
