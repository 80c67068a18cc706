"""Self-supervised pretraining (사전학습) of the course's own GPT and BERT.

The recipe: unlabeled text -> a tokenizer trained on it -> token ids packed into fixed-length
blocks (no padding, no wasted compute) -> a language-modelling objective -> the course trainer.
The labels come from the text itself: the next token (GPT, causal LM) or the hidden tokens (BERT,
masked LM with 80/10/10 replacement). Running ``pretrain`` again on the same ``out_dir`` with a
larger ``max_steps`` resumes exactly where the last run stopped.

The course's CPU BERT is pretrained in two stages: skip-gram word vectors (notebook 01) for the
embedding layer, then MLM for the layers above it (``word2vec_embeddings``).

``course_checkpoint("bert")`` is what notebooks call: the course's pretrained model from the
cache, trained once (by the recipe in ``RECIPES``) when it is missing.
"""
import hashlib
import json
import math
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from . import data, models, word2vec
from .runtime import cache_dir, profile, seed_everything
from .objectives import unigram_loss
from .tokenization import train_tokenizer
from .costs import RunCost
from .trainer import STATE_JSON, Trainer, TrainConfig, accuracy, next_token_accuracy

CORPORA = {
    "sst2": lambda: data.load("sst2")["train"].texts,  # the sentences only: no labels are used
    "wiki": data.wiki_paragraphs,
}


def load_corpus(names: str = "sst2+wiki") -> list:
    """Unlabeled texts from one or more corpora joined with ``+``."""
    texts = []
    for name in names.split("+"):
        if name not in CORPORA:
            raise ValueError(f"unknown corpus {name!r}; choose from {sorted(CORPORA)} (join with '+')")
        texts += CORPORA[name]()
    return texts


def pack(tokenizer, texts: list, block_size: int) -> list:
    """Concatenate all texts (separated by the tokenizer's end token) and cut into equal blocks.

    BERT blocks start with [CLS] and end with [SEP], like its pretraining inputs.
    """
    separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    stream = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += ids + [separator]
    if tokenizer.cls_token_id is not None:
        body = block_size - 2
        return [{"input_ids": [tokenizer.cls_token_id] + stream[i:i + body] + [tokenizer.sep_token_id]}
                for i in range(0, len(stream) - body + 1, body)]
    return [{"input_ids": stream[i:i + block_size]} for i in range(0, len(stream) - block_size + 1, block_size)]


def split_blocks(blocks: list, eval_fraction: float = 0.05) -> tuple:
    """Every 20th block is held out for validation (interleaved, so both sides see every corpus)."""
    every = round(1 / eval_fraction)
    return ([b for i, b in enumerate(blocks) if i % every],
            [b for i, b in enumerate(blocks) if not i % every])


def corpus_blocks(tokenizer, corpus: str, block_size: int) -> tuple:
    """(train blocks, validation blocks) of a corpus, exactly as ``pretrain`` uses them."""
    return split_blocks(pack(tokenizer, load_corpus(corpus), block_size))


# --- GPT: causal language modelling -----------------------------------------------------------

def causal_lm_collate(examples: list) -> dict:
    """Packed blocks need no padding: the labels are the inputs (the model shifts them by one)."""
    input_ids = torch.tensor([e["input_ids"] for e in examples])
    return {"input_ids": input_ids, "labels": input_ids.clone()}


def unigram_perplexity(train_ids: list, eval_ids: list, vocab_size: int) -> float:
    """Perplexity of the context-free baseline (add-one token frequencies): e to the unigram loss."""
    return math.exp(unigram_loss(train_ids, eval_ids, vocab_size))


# --- BERT: masked language modelling ----------------------------------------------------------

def mask_tokens(input_ids: torch.Tensor, tokenizer, rate: float = 0.15) -> tuple:
    """BERT's corruption: choose ``rate`` of the ordinary tokens as targets, then replace
    80% of them by [MASK], 10% by a random token and keep 10% unchanged.

    Returns (corrupted inputs, labels); labels are -100 wherever there is nothing to predict.
    Called afresh for every batch, so a block gets a new mask each time it is seen (dynamic
    masking, RoBERTa) instead of one mask fixed in preprocessing (the original BERT).
    """
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    chosen = (torch.rand(input_ids.shape) < rate) & ~special
    labels = input_ids.masked_fill(~chosen, -100)
    roll = torch.rand(input_ids.shape)
    inputs = input_ids.masked_fill(chosen & (roll < 0.8), tokenizer.mask_token_id)
    random_token = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[random_token] = torch.randint(len(tokenizer), input_ids.shape)[random_token]
    return inputs, labels


def masked_lm_collator(tokenizer, rate: float = 0.15):
    """A collate function that stacks packed blocks and masks them (dynamic masking)."""
    def collate(examples):
        inputs, labels = mask_tokens(torch.tensor([e["input_ids"] for e in examples]), tokenizer, rate)
        return {"input_ids": inputs, "labels": labels}
    return collate


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, k: int = 5) -> list:
    """The ``k`` most probable tokens for the first [MASK] in ``text``, as (token, probability)."""
    model.eval()
    batch = tokenizer(text, return_tensors="pt")
    position = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
    probs = model(**batch).logits[0, position].softmax(-1)
    top = probs.topk(k)
    return [(tokenizer.convert_ids_to_tokens(int(i)), p.item()) for p, i in zip(top.values, top.indices)]


PRETRAINING_CONFIG = {
    # No dropout: a run that sees each token only a few times cannot overfit, and dropout would only
    # slow it down (Geiping & Goldstein 2022, "Cramming"). Fine-tuning turns it back on.
    "gpt": dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
    # The output layer only where there is something to predict: with a 4k-8k vocabulary and 128
    # hidden units it costs as much as BERT-Tiny's whole encoder, and only 15% of positions have a
    # label. With labels, logits come back flattened to (n_targets, vocab); without, for every position.
    "bert": dict(embedding_dropout=0.0, attention_dropout=0.0, mlp_dropout=0.0, sparse_prediction=True),
}


EMBEDDING_NORM = 3.0  # length of each word vector put into the (tied) embedding matrix


def word2vec_embeddings(model, tokenizer, texts: list, epochs: int, seed: int = 0) -> word2vec.SkipGramRun:
    """Stage 1 of the course BERT: skip-gram vectors of the tokenizer's tokens become its embedding layer.

    Why: at a CPU budget, MLM alone left an embedding layer that carries little sentiment (a linear
    probe on a sentence's averaged embeddings, 500 SST-2 labels: 58%, against 69% for skip-gram
    vectors of the same tokens), and the checkpoint did not transfer (-2.2 points against +6.0 with
    this stage; benchmarks/RESULTS.md). Skip-gram learns which tokens are used alike from *every*
    token's neighbours in about two minutes; MLM then trains the encoder on top while the vectors
    stay frozen. Each vector is scaled to length ``EMBEDDING_NORM``: the LayerNorm after the
    embeddings makes the input side scale-free, and the tied output layer needs logits of a useful
    size from the start.
    """
    sentences = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    config = word2vec.SkipGramConfig(dim=model.config.hidden_size, min_count=1, epochs=epochs, seed=seed)
    run = word2vec.train(sentences, config, progress=False)
    vectors = torch.from_numpy(run.vectors())
    with torch.no_grad():
        model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(run.vocab.words)] = (
            EMBEDDING_NORM * vectors / vectors.norm(dim=1, keepdim=True))
    return run


def build_model(arch: str, preset: str, tokenizer, block_size: int):
    """A fresh GPT or BERT language model, configured for pretraining (``PRETRAINING_CONFIG``)."""
    return models.build(arch, preset, tokenizer, max_length=block_size, **PRETRAINING_CONFIG[arch])


def load_model(arch: str, path):
    return (AutoModelForMaskedLM if arch == "bert" else AutoModelForCausalLM).from_pretrained(path)


def objective(arch: str, tokenizer, mask_rate: float) -> tuple:
    """(collate function, accuracy function) of an architecture's pretraining objective."""
    if arch == "gpt":
        return causal_lm_collate, next_token_accuracy
    if arch == "bert":
        return masked_lm_collator(tokenizer, mask_rate), accuracy
    raise ValueError(f"arch must be 'gpt' or 'bert', not {arch!r}")


def pretrain(arch: str, preset: str, out_dir, max_steps: int, corpus: str = "sst2+wiki",
             vocab_size: int = 8000, block_size: int = 128, mask_rate: float = 0.15, word2vec_epochs: int = 0,
             **train_args) -> Trainer:
    """Pretrain (or resume pretraining) a GPT or BERT and save it with its tokenizer in ``out_dir``.

    ``word2vec_epochs > 0`` first fills the embedding layer with skip-gram vectors trained for that
    many epochs on the corpus (``word2vec_embeddings``) and keeps it frozen while the language model
    trains; the skip-gram run's time and losses go into the saved history under ``"word2vec"``, and
    that entry is what keeps the embeddings frozen when the run is resumed.
    ``train_args`` are ``TrainConfig`` fields (batch_size, lr, warmup_steps, schedule, ...).
    """
    out_dir = Path(out_dir)
    resuming = (out_dir / STATE_JSON).is_file()
    stage1 = None
    if resuming:
        tokenizer = AutoTokenizer.from_pretrained(out_dir)
        model = load_model(arch, out_dir)
    else:
        texts = load_corpus(corpus)
        tokenizer = train_tokenizer(arch, texts, vocab_size)
        seed_everything(train_args.get("seed", 0))  # the initial weights depend only on the seed
        model = build_model(arch, preset, tokenizer, block_size)
        if word2vec_epochs:
            stage1 = word2vec_embeddings(model, tokenizer, texts, word2vec_epochs)
    collate, accuracy_fn = objective(arch, tokenizer, mask_rate)
    train_blocks, eval_blocks = corpus_blocks(tokenizer, corpus, block_size)
    config = TrainConfig(max_steps=max_steps, **train_args)
    trainer = Trainer(model, train_blocks, collate, config, eval_data=eval_blocks,
                      accuracy_fn=accuracy_fn, out_dir=out_dir, tokenizer=tokenizer)
    if resuming:
        trainer.resume(out_dir)
    elif stage1:
        trainer.history["word2vec"] = {"epochs": word2vec_epochs, "seconds": stage1.seconds,
                                       "words_per_second": stage1.words_per_second, "losses": stage1.losses}
    model.get_input_embeddings().weight.requires_grad_("word2vec" not in trainer.history)
    trainer.fit()
    return trainer


# --- the course's checkpoints: trained once, then loaded from the cache -------------------------

RECIPES = {  # (arch, profile) -> arguments of ``pretrain``
    ("gpt", "cpu"): dict(preset="tiny", max_steps=1000, corpus="sst2", vocab_size=4096, block_size=64,
                         batch_size=16, lr=2e-3, warmup_steps=50, eval_every=100),
    ("gpt", "gpu"): dict(preset="small", max_steps=3000, corpus="sst2+wiki", vocab_size=8000, block_size=128,
                         batch_size=128, lr=1e-3, warmup_steps=150, eval_every=250),
    ("bert", "cpu"): dict(preset="tiny", max_steps=7200, corpus="sst2", vocab_size=4096, block_size=64,
                          mask_rate=0.15, word2vec_epochs=5, batch_size=16, lr=3e-3, warmup_steps=100,
                          eval_every=600),
    ("bert", "gpu"): dict(preset="small", max_steps=6000, corpus="sst2+wiki", vocab_size=8000, block_size=128,
                          mask_rate=0.15, batch_size=256, lr=1e-3, warmup_steps=300, eval_every=500),
}


def checkpoint_dir(arch: str) -> Path:
    """Where the course's ``arch`` for the active profile lives in the cache.

    The name carries a digest of the recipe, so a cache filled by an older version of the course
    (another recipe, another model) is never mistaken for the current checkpoint.
    """
    recipe = json.dumps(RECIPES[arch, profile()], sort_keys=True)
    return cache_dir() / "checkpoints" / f"{arch}-{profile()}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def course_checkpoint(arch: str) -> Path:
    """The directory of the course's own pretrained ``arch`` for the active profile.

    Trained by ``RECIPES`` the first time (minutes; a progress bar on stderr), loaded from the
    cache afterwards. Prints nothing either way, so a notebook's output does not depend on it.
    """
    path = checkpoint_dir(arch)
    recipe = dict(RECIPES[arch, profile()])
    done = path / STATE_JSON
    if not done.is_file() or json.loads(done.read_text())["step"] < recipe["max_steps"]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # float sums depend on the thread count: one thread gives the same
        try:                      # checkpoint on every CPU (and tiny matrices gain little from two)
            pretrain(arch, recipe.pop("preset"), path, **recipe)
        finally:
            torch.set_num_threads(threads)
    return path


def load_run(path) -> tuple:
    """(history, RunCost) of the pretraining run saved in ``path``: the curves to plot, what it cost."""
    meta = json.loads((Path(path) / STATE_JSON).read_text())
    return meta["history"], RunCost.from_dict(meta["cost"])


def describe_checkpoint(path) -> str:
    """One line about a saved pretraining run: steps, tokens seen, final validation numbers."""
    meta = json.loads((Path(path) / STATE_JSON).read_text())
    final = meta["history"]["eval"][-1]
    stage1 = meta["history"].get("word2vec")
    prefix = f"skip-gram embeddings ({stage1['epochs']} epochs) + " if stage1 else ""
    return (f"{prefix}{meta['step']} steps, {meta['cost']['tokens']:,} tokens, "
            f"validation loss {final['loss']:.3f}, accuracy {final['accuracy']:.3f}")
