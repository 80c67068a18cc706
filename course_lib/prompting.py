"""Prompting a GPT to classify sentences, as GPT-2 and GPT-3 do: no weight changes.

The sentence is followed by a template (" it was") and the label whose word (" terrible" /
" great") the model finds more likely wins; k labelled examples written the same way before it
make it k-shot (in-context learning, Brown et al. 2020). Contextual calibration (Zhao et al. 2021)
divides out the bias the prompt has on its own. The other way, fine-tuning, is ``gpt_finetune``.
"""
import random
import statistics

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from . import pretraining
from .data import Split

TEMPLATE = "{text} it was"             # LM-BFF's SST-2 template (Gao et al. 2021), lower-cased like SST-2
LABEL_WORDS = (" terrible", " great")  # label id -> word: 0 negative, 1 positive
CONTENT_FREE = ("n/a", "")             # inputs with no sentiment (Zhao et al. 2021's "N/A" and the empty one)
SHOTS = (0, 1, 4, 8)


def window(model) -> int:
    """The most tokens the model has positions for (64 for the course GPT, 1,024 for GPT-2, 8,192 for SmolLM2).

    ``max_position_embeddings`` is the name every ``transformers`` config answers to (GPT-2's own is ``n_positions``).
    """
    return model.config.max_position_embeddings


def demonstration(text: str, label: int, template: str = TEMPLATE, words=LABEL_WORDS) -> str:
    """One solved example, written the way the query will be: ``"a gem . it was great ."``."""
    return template.format(text=text) + words[label] + " ."


def prompt(text: str, demos: Split | None = None, template: str = TEMPLATE, words=LABEL_WORDS,
           separator: str = "\n") -> str:
    """The demonstrations, then the query with the template; the model's next word is the answer."""
    shots = [demonstration(t, y, template, words) for t, y in zip(demos.texts, demos.labels)] if demos else []
    return separator.join(shots + [template.format(text=text)])


def fit_prompt(tokenizer, text: str, demos: Split | None, limit: int, separator: str, template: str = TEMPLATE,
               words=LABEL_WORDS) -> tuple:
    """(prompt, demonstrations kept): the earliest demonstrations are dropped until prompt and label fit in ``limit`` tokens.

    Whole demonstrations go, never half of one; a query too long on its own is cut from the left
    later, by ``label_logprobs``.
    """
    longest = max(len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words)
    n = len(demos) if demos else 0
    while True:
        kept = Split(demos.texts[len(demos) - n:], demos.labels[len(demos) - n:]) if n else None
        text_prompt = prompt(text, kept, template, words, separator)
        if n == 0 or len(tokenizer(text_prompt, add_special_tokens=False)["input_ids"]) + longest <= limit:
            return text_prompt, n
        n -= 1


@torch.no_grad()
def label_logprobs(model, tokenizer, prompts: list, words=LABEL_WORDS, batch_size: int = 64) -> torch.Tensor:
    """log p(word | prompt) for every prompt and label word, shape (prompts, words).

    A word of several tokens scores the sum of its tokens' log-probabilities, each given the prompt
    and the word's earlier tokens: one sequence per (prompt, word). When every word is one token,
    one sequence per prompt gives them all at its last position. The output layer runs only where a
    word's token is predicted, not at every position. Sequences longer than the model's window
    lose their first tokens.
    """
    model.eval()
    device = next(model.parameters()).device
    word_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if all(len(w) == 1 for w in word_ids):
        sequences = [(p[-window(model):], [w[0] for w in word_ids], 1) for p in prompt_ids]
    else:  # (prompt + word) with the word's last token dropped: each of its tokens is predicted once
        sequences = [((p + w)[-window(model) - 1:-1], w, len(w)) for p in prompt_ids for w in word_ids]
    scores = []
    for i in range(0, len(sequences), batch_size):
        chunk = sequences[i:i + batch_size]
        width = max(len(seq) for seq, _, _ in chunk)
        ids = torch.tensor([seq + [tokenizer.pad_token_id] * (width - len(seq)) for seq, _, _ in chunk], device=device)
        mask = (torch.arange(width) < torch.tensor([len(seq) for seq, _, _ in chunk])[:, None]).long().to(device)
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        for row, (seq, targets, n) in enumerate(chunk):
            logprobs = model.get_output_embeddings()(hidden[row, len(seq) - n:len(seq)]).float().log_softmax(-1)
            if n == 1 and len(targets) > 1:  # every word read at the last position
                scores += list(logprobs[0, targets])
            else:
                scores.append(logprobs[torch.arange(n), torch.tensor(targets, device=device)].sum())
    return torch.stack(scores).view(len(prompts), len(words)).cpu()


def draw_demonstrations(train: Split, k: int, seed: int, max_words: int = 8) -> Split | None:
    """``k`` training examples drawn at random (as GPT-3 drew them) among those of at most ``max_words`` words.

    Short ones, so that several fit in a small model's window next to a dev sentence.
    """
    if k == 0:
        return None
    pool = [i for i, text in enumerate(train.texts) if 2 <= len(text.split()) <= max_words]
    chosen = random.Random(seed).sample(pool, k)
    return Split([train.texts[i] for i in chosen], [train.labels[i] for i in chosen])


def calibrate(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration (Zhao et al. 2021): divide out the label bias the prompt has on its own.

    ``content_free`` are the label-word scores for inputs that say nothing ("n/a", ""); their mean
    probability over the label words is the model's prior for each word *in this prompt*. In log
    space dividing is subtracting, after both are normalised over the label words.
    """
    return scores.log_softmax(-1) - content_free.log_softmax(-1).exp().mean(0).log()


def k_shot(model, tokenizer, train: Split, dev: Split, k: int, seed: int = 0, separator: str = "\n",
           template: str = TEMPLATE, words=LABEL_WORDS) -> dict:
    """Accuracy on ``dev`` of ``k`` demonstrations (drawn with ``seed``) and the label words, no training.

    Also: contextual calibration (Zhao et al. 2021): the same prompt with a content-free input tells
    how much the model favours each word *before* reading any sentence; dividing that out (in
    log space: subtracting) removes the bias. Returns raw and calibrated accuracy, the share of
    sentences predicted positive, and how many demonstrations fitted in the window on average.
    """
    demos = draw_demonstrations(train, k, seed)
    fitted = [fit_prompt(tokenizer, text, demos, window(model), separator, template, words) for text in dev.texts]
    scores = label_logprobs(model, tokenizer, [p for p, _ in fitted], words)
    content_free = [fit_prompt(tokenizer, text, demos, window(model), separator, template, words)[0]
                    for text in CONTENT_FREE]
    labels = torch.tensor(dev.labels)
    raw = scores.argmax(-1)
    calibrated = calibrate(scores, label_logprobs(model, tokenizer, content_free, words)).argmax(-1)
    return {"k": k, "seed": seed, "accuracy": (raw == labels).float().mean().item(),
            "calibrated": (calibrated == labels).float().mean().item(),
            "positive_share": (raw == 1).float().mean().item(),
            "demos_used": statistics.mean(n for _, n in fitted)}


def prompt_model(name: str = "course") -> tuple:
    """(model, tokenizer, separator) for prompting: ``"course"`` (the course GPT) or a Hub name such as ``"gpt2"``.

    The separator between demonstrations is what the model saw between texts in pretraining: the
    course GPT's sentences were joined by its end-of-text token; GPT-2's web pages have newlines.
    """
    if name == "course":
        path = pretraining.course_checkpoint("gpt")
        tokenizer = AutoTokenizer.from_pretrained(path)
        return AutoModelForCausalLM.from_pretrained(path).eval(), tokenizer, tokenizer.eos_token
    tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # label_logprobs pads on the right; the mask hides it
    return AutoModelForCausalLM.from_pretrained(name).eval(), tokenizer, "\n"
