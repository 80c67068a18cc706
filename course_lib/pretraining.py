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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from . import checkpoints, data, models, word2vec
from .runtime import cache_dir, profile, seed_everything
from .objectives import causal_lm_collator, masked_lm_collator, unigram_loss
from .tokenization import shipped_vocabulary, train_tokenizer, wordpiece
from .costs import RunCost
from .errors import ConfigError
from .costs import labelled
from .hardware import pick_device, pick_precision
from .trainer import RUN_FIELDS, Trainer, TrainConfig, accuracy, causal_targets, evaluate, next_token_accuracy

@dataclass(frozen=True)
class Corpus:
    """Unlabeled texts to pretrain on. ``nested``: the texts are phrases cut from longer texts of the same
    corpus, as SST-2's training set is (67,349 nodes of the parse trees of 6,886 sentences), so holding out a
    phrase is not holding out its text (``split_corpus``)."""
    load: Callable[[], list]
    nested: bool = False


CORPORA = {
    "sst2": Corpus(lambda: data.load("sst2")["train"].texts, nested=True),  # the phrases only: no labels are used
    "wiki": Corpus(data.wiki_paragraphs),
    "korean": Corpus(data.korean_unlabeled_comments),  # notebook 11
}
HELD_OUT_EVERY = 20  # one source text in 20 is held out for validation


def corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; choose from {sorted(CORPORA)} (join with '+')")
    return CORPORA[name]


def split_corpus(source: Corpus) -> tuple:
    """(training texts, held-out texts) of a corpus, the held-out text held out.

    Repeated texts count once (the Korean comments repeat about one line in seven). Every 20th source
    text is held out: for a nested corpus the sources are its longest texts, the ones no other text
    contains (SST-2's sentences), and every phrase cut from a held-out sentence leaves the training side
    too. Holding out every 20th *phrase* instead would leave most held-out text on the training side
    inside the longer phrases that contain it: a validation set that has been trained on.
    """
    texts = list(dict.fromkeys(source.load()))
    if not source.nested:
        return ([t for i, t in enumerate(texts) if i % HELD_OUT_EVERY], texts[::HELD_OUT_EVERY])
    held_out = outermost(texts)[::HELD_OUT_EVERY]
    inside = {hash(run) for text in held_out for run in word_runs(text)}
    return [t for t in texts if hash(tuple(t.split())) not in inside], held_out


def word_runs(text: str):
    """Every run of consecutive whole words of ``text``, as a tuple of words."""
    words = tuple(text.split())
    return (words[i:j] for i in range(len(words)) for j in range(i + 1, len(words) + 1))


def outermost(texts: list) -> list:
    """The texts that no longer text contains as a run of whole words, in their given order."""
    inside, kept = set(), set()
    for text in sorted(texts, key=lambda t: -len(t.split())):
        if hash(tuple(text.split())) not in inside:
            kept.add(text)
            inside.update(hash(run) for run in word_runs(text))
    return [t for t in texts if t in kept]


def corpus_texts(names: str = "sst2+wiki") -> tuple:
    """(training texts, held-out texts) of one or more corpora joined with ``+``."""
    splits = [split_corpus(corpus(name)) for name in names.split("+")]
    return [t for train, _ in splits for t in train], [t for _, held_out in splits for t in held_out]


def load_corpus(names: str = "sst2+wiki") -> list:
    """The texts a model trains on (tokenizer and word vectors included): ``corpus_texts``' training side."""
    return corpus_texts(names)[0]


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


def corpus_blocks(tokenizer, corpus: str, block_size: int) -> tuple:
    """(train blocks, validation blocks) of a corpus, exactly as ``pretrain`` uses them: packed apart."""
    train, held_out = corpus_texts(corpus)
    return pack(tokenizer, train, block_size), pack(tokenizer, held_out, block_size)


def contamination(model, tokenizer, arch: str, block_size: int, corpus: str = "sst2", mask_rate: float = 0.15) -> dict:
    """{kind of held-out text: evaluation} for a model pretrained on ``corpus`` (an SST-2 corpus), on three "validation" sets.

    ``every 20th block``: the corpus packed whole and every 20th block taken, as the course held out
    text before it held out sentences: most of it is inside phrases the model trained on.
    ``held-out sentences``: the blocks ``pretrain`` validates on (``split_corpus``). ``SST-2 dev``: 872
    sentences from another split of the treebank, never seen. The gap between the first and the others
    is what contamination does to a reported loss. Masked-LM masks are drawn with one seed for all three.
    """
    collate, accuracy_fn, targets = objective(arch, tokenizer, mask_rate)
    whole = [t for name in corpus.split("+") for t in dict.fromkeys(CORPORA[name].load())]
    sets = {"every 20th block": pack(tokenizer, whole, block_size)[::HELD_OUT_EVERY],
            "held-out sentences": corpus_blocks(tokenizer, corpus, block_size)[1],
            "SST-2 dev": pack(tokenizer, data.load("sst2")["dev"].texts, block_size)}
    return {name: evaluate(model, blocks, collate, accuracy_fn=accuracy_fn, targets=targets, seed=0)
            for name, blocks in sets.items()}


def unigram_perplexity(train_ids: list, eval_ids: list, vocab_size: int) -> float:
    """Perplexity of the context-free baseline (add-one token frequencies): e to the unigram loss."""
    return math.exp(unigram_loss(train_ids, eval_ids, vocab_size))


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, k: int = 5) -> list:
    """The ``k`` most probable tokens for the first [MASK] in ``text``, as (token, probability)."""
    model.eval()
    batch = tokenizer(text, return_tensors="pt")
    position = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]  # found on the CPU copy
    probs = model(**batch.to(next(model.parameters()).device)).logits[0, position].softmax(-1)
    top = probs.topk(k)
    return [(tokenizer.convert_ids_to_tokens(int(i)), p.item()) for p, i in zip(top.values, top.indices)]


PRETRAINING_CONFIG = {
    "gpt": dict(),
    # The output layer only where there is something to predict: with a 4k-8k vocabulary and 128
    # hidden units it costs as much as BERT-Tiny's whole encoder, and only 15% of positions have a
    # label. With labels, logits come back flattened to (n_targets, vocab); without, for every position.
    "bert": dict(sparse_prediction=True),
}
DROPOUT_FIELDS = {"gpt": ("resid_pdrop", "embd_pdrop", "attn_pdrop"),
                  "bert": ("embedding_dropout", "attention_dropout", "mlp_dropout")}


EMBEDDING_NORM = 3.0  # length of each word vector put into the (tied) embedding matrix


def word2vec_embeddings(model, tokenizer, texts: list, epochs: int, seed: int = 0) -> word2vec.SkipGramRun:
    """Stage 1 of the course BERT: skip-gram vectors of the tokenizer's tokens become its embedding layer.

    Why: at a CPU budget, MLM alone left an embedding layer that carries little sentiment (a linear
    probe on a sentence's averaged embeddings scores far below one on skip-gram vectors of the same
    tokens), and the checkpoint did not transfer, where it does with this stage (benchmarks/RESULTS.md,
    "Own pretraining that transfers", round 3). Skip-gram learns which tokens are used alike from
    *every* token's neighbours in a few minutes of CPU; MLM then trains the encoder on top while the
    vectors stay frozen. Each vector is scaled to length ``EMBEDDING_NORM``: the LayerNorm after the
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


def build_model(arch: str, preset: str, tokenizer, block_size: int, dropout: float = 0.0):
    """A fresh GPT or BERT language model, configured for pretraining (``PRETRAINING_CONFIG``).

    No dropout by default: a run that sees each token only a few times cannot overfit, and dropout
    would only slow it down (Geiping & Goldstein 2022, "Cramming"). Runs that repeat their data for
    many epochs (the GPU recipes) want it back; fine-tuning always turns it on.
    """
    dropout_config = {name: dropout for name in DROPOUT_FIELDS[arch]}
    return models.build(arch, preset, tokenizer, max_length=block_size, **PRETRAINING_CONFIG[arch], **dropout_config)


def load_model(arch: str, path):
    return (models.MODEL_CLASSES["bert", "pretrain"] if arch == "bert" else AutoModelForCausalLM).from_pretrained(path)


def objective(arch: str, tokenizer, mask_rate: float) -> tuple:
    """(collate function, accuracy function, target count) of an architecture's pretraining objective."""
    if arch == "gpt":
        return causal_lm_collator(tokenizer), next_token_accuracy, causal_targets
    if arch == "bert":
        return masked_lm_collator(tokenizer, mask_rate, positions=True), accuracy, labelled
    raise ConfigError(f"arch must be 'gpt' or 'bert', not {arch!r}")


def pretrain(arch: str, preset: str, out_dir, max_steps: int, corpus: str = "sst2+wiki",
             vocab_size: int = 8000, block_size: int = 128, mask_rate: float = 0.15, word2vec_epochs: int = 0,
             dropout: float = 0.0, uncased: bool = True, vocabulary: str | None = None, announce=None,
             **train_args) -> Trainer:
    """Pretrain a GPT or BERT and save it with its tokenizer in ``out_dir``, or continue the run there.

    ``word2vec_epochs > 0`` first fills the embedding layer with skip-gram vectors trained for that
    many epochs on the corpus (``word2vec_embeddings``) and keeps it frozen while the language model
    trains (``freeze_embeddings`` in the saved training configuration, so a resumed run keeps it too).
    A run already in ``out_dir`` continues (same ``max_steps``: exactly where it stopped; larger: an
    extension) if it was started with the same architecture, preset, corpus, vocabulary, block size
    and masking rate; otherwise it is refused, naming the difference. Training settings not given
    are the saved run's (``resumed_settings``); one given that differs from it is refused too.
    ``dropout`` applies to a new model (a resumed one keeps its saved configuration). ``uncased=False``
    keeps the text's characters as written in the tokenizer (Korean: ``tokenization.train_wordpiece``).
    ``vocabulary`` names a WordPiece vocabulary the course ships (``tokenization.shipped_vocabulary``),
    used instead of training one, where training would not give the same one on every machine.
    ``announce`` (e.g. ``print``) is told what happens — a new run, a continued one or an extension —
    once the checks have passed and before training starts.
    ``train_args`` are ``TrainConfig`` fields (batch_size, lr, warmup_steps, schedule, ...); a new run
    warms up for ``default_warmup(max_steps)`` steps unless told.
    """
    out_dir = Path(out_dir)
    run = {"arch": arch, "preset": preset, "corpus": corpus, "vocab_size": vocab_size, "block_size": block_size}
    if arch == "bert":
        run["mask_rate"] = mask_rate
    if not uncased:
        run["uncased"] = False
    if vocabulary:
        run["vocabulary"] = vocabulary
    checkpoints.recover(out_dir)  # a save that a crash interrupted is finished or undone first
    state = checkpoints.read_state(out_dir) if checkpoints.is_resumable(out_dir) else None
    plan = describe_plan(out_dir, max_steps, state and state[1])
    stage1 = None
    if state:
        tensors, meta = state
        checkpoints.require_same_run(out_dir, meta.get("run", {}), run)
        checkpoints.require_model(out_dir)
        train_args = {**resumed_settings(meta), **train_args}  # what was not asked for is what the run had
        tokenizer = AutoTokenizer.from_pretrained(out_dir)
        model = load_model(arch, out_dir)
    else:
        texts = load_corpus(corpus)
        tokenizer = (wordpiece(shipped_vocabulary(vocabulary), uncased) if vocabulary else
                     train_tokenizer(arch, texts, vocab_size, **({} if uncased else {"uncased": False})))
        seed_everything(train_args.get("seed", 0))  # the initial weights depend only on the seed
        model = build_model(arch, preset, tokenizer, block_size, dropout)
        train_args = {"warmup_steps": default_warmup(max_steps), **train_args,
                      "freeze_embeddings": word2vec_epochs > 0}
        if word2vec_epochs:
            stage1 = word2vec_embeddings(model, tokenizer, texts, word2vec_epochs)
    collate, accuracy_fn, targets = objective(arch, tokenizer, mask_rate)
    train_blocks, eval_blocks = corpus_blocks(tokenizer, corpus, block_size)
    trainer = Trainer(model, train_blocks, collate, TrainConfig(max_steps=max_steps, **train_args),
                      eval_data=eval_blocks, accuracy_fn=accuracy_fn, out_dir=out_dir, tokenizer=tokenizer, run=run,
                      targets=targets)
    if state:
        trainer.resume(out_dir, state, weights=False)  # the weights came with from_pretrained
    elif stage1:
        trainer.history["word2vec"] = {"epochs": word2vec_epochs, "seconds": stage1.seconds,
                                       "words_per_second": stage1.words_per_second, "losses": stage1.losses,
                                       "pairs": stage1.pairs, "dim": stage1.config.dim,
                                       "negatives": stage1.config.negatives}
    if announce:
        announce(plan)
    trainer.fit()
    return trainer


def default_warmup(max_steps: int) -> int:
    """Warmup of a new run that does not say: 100 steps, or a tenth of a shorter run."""
    return min(100, max_steps // 10)


def resumed_settings(meta: dict) -> dict:
    """The training settings a saved run was started with, which its continuation keeps unless told otherwise.

    Everything that defines the run (``trainer.RUN_FIELDS``) and how it is logged and saved; not its
    length (``max_steps``, asked for anew) nor where it runs (device, precision, compile, workers).
    """
    kept = (*RUN_FIELDS, "log_every", "eval_every", "eval_batch_size", "checkpoint_every")
    return {key: meta["config"][key] for key in kept if key in meta["config"]}


def describe_plan(out_dir: Path, max_steps: int, meta: dict | None) -> str:
    """What ``pretrain`` does with ``out_dir`` (whose saved run's ``meta``, if any, is given): start, continue or extend."""
    if meta is None:
        return f"new run in {out_dir}"
    done, planned = meta["step"], meta["config"]["max_steps"]
    horizon = meta["config"].get("decay_steps") or planned
    if max_steps <= done:
        return f"{out_dir} has already run {done} steps; nothing to train (ask for more --max-steps to extend it)"
    if max_steps <= planned:
        return f"continuing the run in {out_dir} from step {done} of {planned}"
    return (f"extending the run in {out_dir} from {planned} to {max_steps} steps: its learning rate decays until step "
            f"{horizon}, then stays at {meta['config'].get('min_lr_ratio', 0.0)} of its peak")


# --- the course's checkpoints: trained once, then loaded from the cache -------------------------

# (name, profile) -> arguments of ``pretrain`` (with ``arch`` where the name is not one). The cpu profile
# pins the CPU and fp32: its checkpoints are the ones the committed notebook outputs come from, so a GPU
# in the machine must not change them.
# The gpu recipes stop near 10 epochs of sst2+wiki (`python benchmarks/gpu_profile.py --plan` counts them)
# with dropout on (the text repeats), the BERT keeps the skip-gram stage that gave the cpu recipe its
# transfer, and both log every 25 steps (each log waits for the GPU). They have not yet run on a GPU:
# benchmarks/RESULTS.md, "Hardening", the GPU figures.
KOREAN_VOCABULARY = "korean_comments_wordpiece_8000.txt"  # train_wordpiece(comments, 8000, uncased=False)
RECIPES = {
    ("gpt", "cpu"): dict(preset="tiny", max_steps=1000, corpus="sst2", vocab_size=4096, block_size=64,
                         batch_size=16, lr=2e-3, warmup_steps=50, eval_every=100, device="cpu", precision="fp32"),
    ("gpt", "gpu"): dict(preset="small", max_steps=900, corpus="sst2+wiki", vocab_size=8000, block_size=128,
                         batch_size=128, lr=1e-3, warmup_steps=50, eval_every=100, dropout=0.1, log_every=25),
    ("bert", "cpu"): dict(preset="tiny", max_steps=7200, corpus="sst2", vocab_size=4096, block_size=64,
                          mask_rate=0.15, word2vec_epochs=5, batch_size=16, lr=3e-3, warmup_steps=100,
                          eval_every=600, device="cpu", precision="fp32"),
    ("bert", "gpu"): dict(preset="small", max_steps=900, corpus="sst2+wiki", vocab_size=8000, block_size=128,
                          mask_rate=0.15, word2vec_epochs=5, batch_size=128, lr=2e-3, warmup_steps=50,
                          eval_every=100, dropout=0.1, log_every=25),
    # Notebook 11's Korean BERT: the cpu BERT's two stages on the unlabelled comments (each distinct text
    # once, every 20th held out), short enough to train inside the notebook's budget. WordPiece keeps the
    # syllables (uncased would split them into letters) and needs more than the English BERT's 4,096 entries, which Korean's syllables alone, each
    # also as a ## continuation, would fill (notebook 11, exercise 4); its vocabulary is the shipped one
    # that training on the comments gave (see tokenization.shipped_vocabulary for why). The gpu recipe
    # (not yet run on a GPU) goes about 10 times over the comments.
    ("korean-bert", "cpu"): dict(arch="bert", preset="tiny", max_steps=1500, corpus="korean", vocab_size=8000,
                                 uncased=False, vocabulary=KOREAN_VOCABULARY, block_size=64, mask_rate=0.15, word2vec_epochs=5, batch_size=16,
                                 lr=3e-3, warmup_steps=100, eval_every=500, device="cpu", precision="fp32"),
    ("korean-bert", "gpu"): dict(arch="bert", preset="small", max_steps=900, corpus="korean", vocab_size=8000,
                                 uncased=False, vocabulary=KOREAN_VOCABULARY, block_size=64, mask_rate=0.15, word2vec_epochs=5, batch_size=128,
                                 lr=2e-3, warmup_steps=50, eval_every=100, dropout=0.1, log_every=25),
}


# Part of every course checkpoint's name: raised when the training code changes what a recipe's run draws
# (masks, data order, initial weights), so a cache filled by an older version is trained again.
TRAINING_VERSION = 2


def checkpoint_dir(name: str) -> Path:
    """Where the course's model ``name`` (a key of ``RECIPES``) for the active profile lives in the cache.

    The name says the device and precision it is trained with and carries a digest of the recipe,
    so a cache filled by an older version of the course (another recipe, another model) or on other
    hardware is never mistaken for the current checkpoint.
    """
    recipe = RECIPES[name, profile()]
    device = pick_device(recipe.get("device"))
    precision = pick_precision(recipe.get("precision", "auto"), device)
    versioned = {**recipe, "version": TRAINING_VERSION}
    digest = hashlib.sha256(json.dumps(versioned, sort_keys=True).encode()).hexdigest()[:8]
    return cache_dir() / "checkpoints" / f"{name}-{profile()}-{device.type}-{precision}-{digest}"


def course_checkpoint(name: str) -> Path:
    """The directory of the course's own pretrained model ``name`` (``gpt``, ``bert``, ``korean-bert``).

    Trained by ``RECIPES`` the first time (minutes; a progress bar on stderr), loaded from the
    cache afterwards. Prints nothing either way, so a notebook's output does not depend on it.
    """
    path = checkpoint_dir(name)
    recipe = dict(RECIPES[name, profile()])
    with checkpoints.exclusive(path):  # another process training it: wait for it, then find it done
        checkpoints.recover(path)
        if not checkpoints.is_resumable(path) or checkpoints.read_meta(path)["step"] < recipe["max_steps"]:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # float sums depend on the thread count: one thread gives the same
            try:                      # checkpoint on every machine of one CPU kind (tiny matrices gain little
                                      # from two); another kind may round differently (RESULTS.md, round 4)
                pretrain(recipe.pop("arch", name), recipe.pop("preset"), path, **recipe)
            finally:
                torch.set_num_threads(threads)
    return path


def load_run(path) -> tuple:
    """(history, RunCost) of the pretraining run saved in ``path``: the curves to plot, what it cost."""
    meta = checkpoints.read_meta(path)
    return meta["history"], RunCost.from_dict(meta["cost"])


def describe_checkpoint(path) -> str:
    """One line about a saved pretraining run: steps, tokens seen, final validation numbers."""
    meta = checkpoints.read_meta(path)
    final = meta["history"]["eval"][-1]
    stage1 = meta["history"].get("word2vec")
    prefix = f"skip-gram embeddings ({stage1['epochs']} epochs) + " if stage1 else ""
    return (f"{prefix}{meta['step']} steps, {meta['cost']['tokens']:,} tokens, "
            f"validation loss {final['loss']:.3f}, accuracy {final['accuracy']:.3f}")
