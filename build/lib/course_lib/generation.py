"""Decoding: turning a language model's next-token distribution into text.

A causal LM gives, at every step, logits over the vocabulary. A decoding strategy picks one token
from them; the text is the loop ``pick -> append -> run again``. The strategies differ only in
how they pick:
- greedy: the most probable token (deterministic, tends to loop);
- temperature T: sample from softmax(logits / T); T < 1 sharpens, T > 1 flattens;
- top-k: sample among the k most probable tokens only;
- top-p (nucleus): sample among the smallest set of tokens whose probability adds up to p.
``model.generate`` implements the same rules; ``generate`` here is the readable version.
Diversity and repetition of the results are measured with distinct-n and repeated-n.
"""
import torch


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Logits (..., vocab) with temperature applied and excluded tokens set to -inf."""
    logits = logits / temperature
    if top_k is not None:
        kth_best = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token if the tokens before it already reach p (the first token always stays)
        drop_sorted = cumulative - sorted_logits.softmax(-1) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def pick(logits: torch.Tensor, greedy: bool = False, generator: torch.Generator | None = None,
         **filters) -> torch.Tensor:
    """One next token per row of ``logits`` (batch, vocab)."""
    if greedy:
        return logits.argmax(-1)
    probs = filter_logits(logits, **filters).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, max_new_tokens: int = 30, greedy: bool = False,
             seed: int = 0, eos_token_id: int | None = None, **filters) -> torch.Tensor:
    """Extend ``input_ids`` (batch, length) token by token; stops early when every row hit EOS.

    No key/value cache: each step re-reads the whole sequence, which is simple and fast enough
    for the course's small models (``model.generate`` caches and is faster). Everything lives on
    the model's device, the random generator too: ``multinomial`` refuses one on another device.
    The result is on that device.
    """
    model.eval()
    device = next(model.parameters()).device
    input_ids = input_ids.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
    context = model.config.n_positions if hasattr(model.config, "n_positions") else input_ids.shape[1] + max_new_tokens
    for _ in range(max_new_tokens):
        logits = model(input_ids=input_ids[:, -context:]).logits[:, -1, :].float()
        token = pick(logits, greedy=greedy, generator=generator, **filters)
        if eos_token_id is not None:
            token = token.masked_fill(finished, eos_token_id)
            finished |= token == eos_token_id
        input_ids = torch.cat([input_ids, token[:, None]], dim=1)
        if finished.all():
            break
    return input_ids


def complete(model, tokenizer, prompt: str, n: int = 1, max_new_tokens: int = 30, **strategy) -> list:
    """``n`` continuations of ``prompt`` as text (the prompt itself not included)."""
    prompt_ids = tokenizer(prompt, return_tensors="pt")["input_ids"].repeat(n, 1)
    out = generate(model, prompt_ids, max_new_tokens, eos_token_id=tokenizer.eos_token_id, **strategy)
    return [tokenizer.decode(row, skip_special_tokens=True) for row in out[:, prompt_ids.shape[1]:].tolist()]


# --- measuring what decoding does ------------------------------------------------------------

def ngrams(tokens: list, n: int) -> list:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list, n: int = 2) -> float:
    """Distinct n-grams / all n-grams over a set of texts (Li et al. 2016): 1.0 means no n-gram repeats."""
    grams = [g for text in texts for g in ngrams(text.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_n(texts: list, n: int = 3) -> float:
    """Share of n-grams that already occurred earlier in the same text (loops, "the the the")."""
    repeats = total = 0
    for text in texts:
        grams = ngrams(text.split(), n)
        repeats += len(grams) - len(set(grams))
        total += len(grams)
    return repeats / total if total else 0.0


def ngram_index(texts: list, n: int = 8) -> set:
    """Every word n-gram of ``texts``: the corpus side of ``copied_share``."""
    return {g for text in texts for g in ngrams(text.split(), n)}


def copied_share(texts: list, index: set, n: int = 8) -> float:
    """Share of the word n-grams of ``texts`` found verbatim in ``index`` (``ngram_index`` of a corpus).

    Eight words in a row rarely repeat by chance, so a high share means text copied from the
    corpus rather than composed; human text the model never saw gives the chance level.
    """
    grams = [g for text in texts for g in ngrams(text.split(), n)]
    return sum(g in index for g in grams) / len(grams) if grams else 0.0
