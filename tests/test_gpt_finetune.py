"""Notebook 08's library: GPT-1's input transformation, classifier and auxiliary LM loss, prompting by
label-word likelihood (demonstrations, the window, calibration), and the exercise checks."""
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2ForSequenceClassification

from course_lib import gpt_finetune as gf, prompting, runtime
from course_lib.data import Split
from course_lib.exercises import CheckFailed
from course_lib.exercises import gpt as checks
from course_lib.finetune import padding_collator
from course_lib.finetune import recipe

WORDS = {1: ["good", "great", "fine", "moving"], 0: ["bad", "dull", "awful", "boring"]}
TOY = [f"the film is {w} and the actors are {v} . it was {w} ." for w in WORDS[1] + WORDS[0]
       for v in ("young", "old")] * 10


def toy_split(n: int, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = [i % 2 for i in range(n)]
    return Split([f"the film is {WORDS[y][int(torch.randint(4, (1,), generator=g))]} ." for y in labels], labels)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices gain nothing from a second thread, and lose a lot when another process uses the core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(pretrain_tiny):
    """A tiny pretrained course GPT, saved like the real one (block size 32: a small window)."""
    return pretrain_tiny("gpt", TOY, vocab_size=300, block_size=32)


@pytest.fixture()
def classifier(checkpoint):
    runtime.seed_everything(0)
    return gf.load_gpt1_classifier(checkpoint)


# --- the input transformation --------------------------------------------------------------------

def test_transform_wraps_the_sentence_in_start_and_extract(classifier):
    _, tokenizer = classifier
    ids = gf.transform(tokenizer, "the film is good .")
    body = tokenizer("the film is good .", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens([ids[0], ids[-1]]) == [gf.START, gf.EXTRACT]
    assert ids[1:-1] == body


def test_a_long_sentence_is_cut_but_keeps_its_extract_token(classifier):
    _, tokenizer = classifier
    ids = gf.transform(tokenizer, " ".join(["the film is good"] * 20), max_length=10)
    assert len(ids) == 10 and tokenizer.convert_ids_to_tokens(ids[-1]) == gf.EXTRACT


def test_pairs_get_a_delimiter_and_are_cut_longest_first(classifier):
    _, tokenizer = classifier
    ids = gf.transform(tokenizer, " ".join(["good"] * 30), "it was bad .", max_length=16)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert len(ids) == 16 and tokens.count(gf.DELIMITER) == 1 and tokens[-1] == gf.EXTRACT
    assert ids[tokens.index(gf.DELIMITER) + 1:-1] == tokenizer("it was bad .", add_special_tokens=False)["input_ids"]


def test_transform_refuses_a_tokenizer_without_the_new_tokens(checkpoint):
    with pytest.raises(Exception, match="add_gpt1_tokens"):
        gf.transform(AutoTokenizer.from_pretrained(checkpoint), "the film is good .")


# --- the classifier and its losses -------------------------------------------------------------------

def test_loading_keeps_the_pretrained_body_and_adds_three_embedding_rows(checkpoint, classifier):
    model, tokenizer = classifier
    lm = AutoModelForCausalLM.from_pretrained(checkpoint)
    old = lm.transformer.wte.weight
    assert model.transformer.wte.weight.shape[0] == old.shape[0] + 3 == len(tokenizer)
    assert torch.equal(model.transformer.wte.weight[:len(old)], old)
    assert torch.equal(model.transformer.h[0].attn.c_attn.weight, lm.transformer.h[0].attn.c_attn.weight)
    runtime.seed_everything(0)
    scratch, _ = gf.load_gpt1_classifier(checkpoint, start="scratch")
    assert not torch.equal(scratch.transformer.h[0].attn.c_attn.weight, lm.transformer.h[0].attn.c_attn.weight)


def test_the_head_reads_the_extract_token_like_transformers_last_token_classifier(classifier):
    """With right padding the extract token is the last non-padding token, which transformers' class reads."""
    model, tokenizer = classifier
    batch = padding_collator(tokenizer)(gf.encode(tokenizer, toy_split(4)))
    model.eval()
    reference = GPT2ForSequenceClassification(model.config).eval()
    reference.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, reference(**batch).logits, atol=1e-5)


def test_tokens_after_the_extract_token_do_not_change_the_logits(classifier):
    model, tokenizer = classifier
    model.eval()
    ids = torch.tensor([gf.transform(tokenizer, "the film is good .") + [5, 6]])
    changed = ids.clone()
    changed[0, -2:] = torch.tensor([7, 8])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, model(input_ids=changed).logits, atol=1e-6)
        other = torch.tensor([gf.transform(tokenizer, "the film is bad .")])
        assert not torch.allclose(model(input_ids=ids[:, :-2]).logits, model(input_ids=other).logits)


def test_lm_targets_skip_padding_and_gpt1_tokens():
    ids, mask, special = checks._batch()
    targets = gf.lm_targets(ids, mask, special)
    assert targets[0].tolist() == [-100, 3, 4, 5, 6, -100, -100, -100]
    assert targets[1].tolist() == [-100, 7, 8, 9, 4, 5, 3, -100]


def test_the_loss_is_task_plus_lambda_times_lm_and_the_sparse_lm_equals_the_dense_one(classifier):
    model, tokenizer = classifier
    batch = padding_collator(tokenizer)(gf.encode(tokenizer, toy_split(6)))
    model.eval()
    with torch.no_grad():
        out = model(**batch)
        hidden = model.transformer(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        dense = gf.causal_lm_loss(hidden @ model.transformer.wte.weight.T,
                                  gf.lm_targets(batch["input_ids"], batch["attention_mask"], model.config.gpt1_token_ids))
    assert model.config.lm_weight == 0.5
    assert torch.allclose(out.task_loss, F.cross_entropy(out.logits, batch["labels"]))
    assert torch.allclose(out.lm_loss, dense, atol=1e-5)
    assert torch.allclose(out.loss, out.task_loss + 0.5 * out.lm_loss)


def test_the_collators_positions_give_the_numbers_the_model_finds_itself(classifier):
    """The collator finds the extract token and the LM targets on the CPU, so a GPU need not be waited for."""
    model, tokenizer = classifier
    examples = gf.encode(tokenizer, toy_split(6))
    located, plain = gf.model_collator(model, tokenizer)(examples), padding_collator(tokenizer)(examples)
    assert set(located) - set(plain) == {"extract_positions", "lm_positions"}
    model.eval()
    with torch.no_grad():
        a, b = model(**located), model(**plain)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.lm_loss, b.lm_loss)
    with pytest.raises(ValueError, match="no extract token"):
        gf.model_collator(model, tokenizer)([{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": 0}])


def test_lambda_zero_trains_on_the_task_loss_alone(checkpoint):
    runtime.seed_everything(0)
    model, tokenizer = gf.load_gpt1_classifier(checkpoint, lm_weight=0.0)
    batch = padding_collator(tokenizer)(gf.encode(tokenizer, toy_split(4)))
    model.train()
    out = model(**batch)
    assert out.lm_loss is None and torch.equal(out.loss, out.task_loss)
    model.eval()
    assert model(**batch).lm_loss is not None  # still reported when evaluating


def test_finetuning_learns_a_separable_toy_task(checkpoint):
    runtime.seed_everything(0)
    model, tokenizer = gf.load_gpt1_classifier(checkpoint)
    train = toy_split(64)
    before = gf.evaluate(model, gf.encode(tokenizer, train), gf.model_collator(model, tokenizer))
    trainer = gf.finetune(model, tokenizer, train, recipe(64, 3e-3, seed=0, max_steps=40))
    after = gf.evaluate(model, gf.encode(tokenizer, train), trainer.collate)
    assert after["accuracy"] >= 0.95 and after["task_loss"] < before["task_loss"] / 2


def test_run_gives_one_result_row(checkpoint):
    sst2 = {"train": toy_split(40), "dev": toy_split(10, seed=1)}
    row = gf.run("random weights, λ=0", sst2, 20, seed=0, checkpoint=checkpoint, max_steps=2)
    assert row["arm"] == "random weights, λ=0" and row["labels"] == 20 and row["steps"] == 2
    assert 0 <= row["dev"] <= 1 and row["dev_lm_loss"] > 0
    with pytest.raises(Exception, match="unknown arm"):
        gf.run("no such arm", sst2, 20, checkpoint=checkpoint)


# --- prompting ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lm(checkpoint):
    return AutoModelForCausalLM.from_pretrained(checkpoint).eval(), AutoTokenizer.from_pretrained(checkpoint)


def manual_logprob(model, tokenizer, prompt, word):
    ids = tokenizer(prompt + word, add_special_tokens=False)["input_ids"]
    n = len(tokenizer(word, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logprobs = model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
    return sum(logprobs[t - 1, ids[t]].item() for t in range(len(ids) - n, len(ids)))


def test_label_logprobs_sum_the_tokens_of_each_word(lm):
    model, tokenizer = lm
    words = (" good", " the film")  # one token and several: the general path
    assert len(tokenizer(words[1], add_special_tokens=False)["input_ids"]) > 1
    prompts = ["the film is good . it was", "it was"]
    got = prompting.label_logprobs(model, tokenizer, prompts, words)
    for i, p in enumerate(prompts):
        for j, w in enumerate(words):
            assert got[i, j].item() == pytest.approx(manual_logprob(model, tokenizer, p, w), abs=1e-4)


def test_single_token_words_take_the_one_pass_path_with_the_same_numbers(lm):
    model, tokenizer = lm
    words = (" bad", " good")
    prompts = ["the film is good . it was", "it was", "the actors are old . it was"]
    got = prompting.label_logprobs(model, tokenizer, prompts, words, batch_size=2)
    want = [[manual_logprob(model, tokenizer, p, w) for w in words] for p in prompts]
    assert torch.allclose(got, torch.tensor(want), atol=1e-4)


def test_prompts_longer_than_the_window_keep_their_end(lm):
    model, tokenizer = lm
    long = " ".join(["the film is good ."] * 10) + " it was"
    ids = tokenizer(long, add_special_tokens=False)["input_ids"]
    assert len(ids) > prompting.window(model)
    tail = tokenizer.decode(ids[-prompting.window(model):])
    got = prompting.label_logprobs(model, tokenizer, [long, tail], (" bad", " good"))
    assert torch.allclose(got[0], got[1], atol=1e-4)


def test_fit_prompt_drops_the_earliest_whole_demonstrations(lm):
    _, tokenizer = lm
    demos = Split(["the film is good", "the film is bad", "the film is dull"], [1, 0, 0])
    full, kept = prompting.fit_prompt(tokenizer, "the actors are old .", demos, 1000, "\n")
    assert kept == 3 and full == "the film is good it was great .\nthe film is bad it was terrible .\n" \
                                 "the film is dull it was terrible .\nthe actors are old . it was"
    one = "the film is dull it was terrible .\nthe actors are old . it was"
    limit = len(tokenizer(one)["input_ids"]) + len(tokenizer(" terrible")["input_ids"])
    assert prompting.fit_prompt(tokenizer, "the actors are old .", demos, limit, "\n") == (one, 1)
    assert prompting.fit_prompt(tokenizer, "the actors are old .", demos, limit - 1, "\n") == ("the actors are old . it was", 0)


def test_demonstrations_are_short_seeded_and_k_of_them():
    train = Split([f"w{i} " * (1 + i % 12) for i in range(200)], [i % 2 for i in range(200)])
    a, b = prompting.draw_demonstrations(train, 8, seed=3), prompting.draw_demonstrations(train, 8, seed=3)
    assert a == b and len(a) == 8 and all(2 <= len(t.split()) <= 8 for t in a.texts)
    assert a != prompting.draw_demonstrations(train, 8, seed=4)
    assert prompting.draw_demonstrations(train, 0, seed=0) is None


def test_calibration_removes_a_bias_the_prompt_has_on_its_own():
    # a model that always prefers word 1 by 2 nats, plus a small real signal
    signal = torch.tensor([0.3, -0.3, 0.2, -0.2])
    scores = torch.stack([-2 + signal, -signal], dim=1)
    labels = torch.tensor([0, 1, 0, 1])
    assert (scores.argmax(-1) == 1).all()
    content_free = torch.tensor([[-2.0, 0.0], [-2.0, 0.0]])
    assert torch.equal(prompting.calibrate(scores, content_free).argmax(-1), labels)


def test_k_shot_reports_accuracy_calibration_and_demonstrations_used(lm):
    model, tokenizer = lm
    train, dev = toy_split(40), toy_split(8, seed=1)
    row = prompting.k_shot(model, tokenizer, train, dev, k=4, seed=0, separator=tokenizer.eos_token,
                    words=(" bad", " good"))
    assert {"k", "seed", "accuracy", "calibrated", "positive_share", "demos_used"} <= set(row)
    assert 0 < row["demos_used"] < 4  # the tiny model's 32-token window holds only some of them
    zero = prompting.k_shot(model, tokenizer, train, dev, k=0, words=(" bad", " good"))
    assert zero["demos_used"] == 0 and 0 <= zero["accuracy"] <= 1


# --- exercise checks ------------------------------------------------------------------------------------

def test_transform_check_accepts_the_solution_and_names_what_is_missing(classifier):
    _, tokenizer = classifier
    checks.check_transform(lambda tok, text, n: gf.transform(tok, text, max_length=n), tokenizer)
    start, extract = tokenizer.convert_tokens_to_ids([gf.START, gf.EXTRACT])
    no_extract = lambda tok, text, n: [start] + tok(text, add_special_tokens=False)["input_ids"][:n - 1]
    with pytest.raises(CheckFailed, match="extract"):
        checks.check_transform(no_extract, tokenizer)
    cut_after = lambda tok, text, n: ([start] + tok(text, add_special_tokens=False)["input_ids"] + [extract])[:n]
    with pytest.raises(CheckFailed, match="extract token is gone"):
        checks.check_transform(cut_after, tokenizer)


def test_aux_lm_check_accepts_the_solution_and_names_the_mistake(classifier):
    model, tokenizer = classifier
    batch = padding_collator(tokenizer)(gf.encode(tokenizer, toy_split(4)))
    solution = lambda logits, ids, mask, special: gf.causal_lm_loss(logits, gf.lm_targets(ids, mask, special))
    checks.check_aux_lm_loss(solution, model, batch)
    unshifted = lambda logits, ids, mask, special: F.cross_entropy(
        logits.flatten(0, 1), gf.lm_targets(ids, mask, special).flatten(), ignore_index=-100)
    with pytest.raises(CheckFailed, match="t\\+1"):
        checks.check_aux_lm_loss(unshifted)
    with_padding = lambda logits, ids, mask, special: gf.causal_lm_loss(
        logits, gf.lm_targets(ids, torch.ones_like(mask), special))
    with pytest.raises(CheckFailed, match="padding"):
        checks.check_aux_lm_loss(with_padding)


def test_label_logprob_check_accepts_the_solution_and_catches_the_first_token_only(lm):
    model, tokenizer = lm
    assert len(tokenizer(" negative", add_special_tokens=False)["input_ids"]) > 1
    solution = lambda m, tok, prompt, word: prompting.label_logprobs(m, tok, [prompt], [word])[0, 0].item()
    checks.check_label_logprob(solution, model, tokenizer)

    def first_only(m, tok, prompt, word):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logprobs = m(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
        return logprobs[tok(word, add_special_tokens=False)["input_ids"][0]].item()
    with pytest.raises(CheckFailed, match="add the log-probabilities of all"):
        checks.check_label_logprob(first_only, model, tokenizer)
    with pytest.raises(CheckFailed, match="at most 0"):
        checks.check_label_logprob(lambda *a: math.exp(solution(*a)), model, tokenizer)
