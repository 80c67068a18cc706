"""Train subword tokenizers with Hugging Face ``tokenizers`` and wrap them for ``transformers``.

Two recipes, matching the two model families: WordPiece for BERT (lower-cased, ``[CLS] … [SEP]``)
and byte-level BPE for GPT (no unknown tokens, ``<|endoftext|>`` between documents).
The result is a ``PreTrainedTokenizerFast``, so ``save_pretrained``/``from_pretrained`` just work.
"""
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BERT_SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                 "sep_token": "[SEP]", "mask_token": "[MASK]"}
GPT_EOS = "<|endoftext|>"
VOCABULARIES = Path(__file__).parent / "vocabularies"


def train_wordpiece(texts, vocab_size: int = 8000, min_frequency: int = 2,
                    uncased: bool = True) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer learned from ``texts``, uncased unless ``uncased=False``.

    Uncased also strips accents, by decomposing characters (NFD): for Korean that splits every Hangul
    syllable into its letters (jamo), so a Korean tokenizer keeps the text as written (notebook 11).
    """
    tok = _bert_pipeline(models.WordPiece(unk_token="[UNK]"), uncased)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(BERT_SPECIALS.values()),
        show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.model = _sorted_wordpiece(tok.get_vocab())
    return _bert_tokenizer(tok)


def wordpiece(tokens, uncased: bool = True) -> PreTrainedTokenizerFast:
    """The WordPiece tokenizer of a given vocabulary (e.g. ``shipped_vocabulary``), exactly as training makes it."""
    tok = _bert_pipeline(_sorted_wordpiece(tokens), uncased)
    tok.add_special_tokens(list(BERT_SPECIALS.values()))
    return _bert_tokenizer(tok)


def shipped_vocabulary(name: str) -> list:
    """A vocabulary the course ships in ``course_lib/vocabularies`` (one token per line).

    Why ship one: where many candidate merges are equally frequent, as for the thousands of rare Korean
    syllables, the WordPiece trainer breaks the ties in hash order, which changes between processes, so
    two trainings on the same text differ in a few of their last entries. A checkpoint that must come out
    the same on every machine (notebook 11's Korean BERT) starts from the vocabulary its results came from.
    """
    return (VOCABULARIES / name).read_text(encoding="utf-8").rstrip("\n").split("\n")


def _bert_pipeline(model, uncased: bool) -> Tokenizer:
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(lowercase=uncased)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def _bert_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """``[CLS] … [SEP]`` around each text, ``##`` pieces joined when decoding, wrapped for ``transformers``."""
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, **BERT_SPECIALS)


def _sorted_wordpiece(tokens) -> models.WordPiece:
    """The same vocabulary with reproducible ids: special tokens first, then the rest sorted.

    The WordPiece trainer numbers its initial alphabet in hash order, which changes between
    processes; a checkpoint and its tokenizer must not.
    """
    specials = list(BERT_SPECIALS.values())
    ordered = specials + sorted(t for t in tokens if t not in specials)
    return models.WordPiece({t: i for i, t in enumerate(ordered)}, unk_token="[UNK]")


def train_bpe(texts, vocab_size: int = 8000, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE tokenizer learned from ``texts`` (every string is encodable)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[GPT_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=GPT_EOS, eos_token=GPT_EOS,
                                   unk_token=GPT_EOS, pad_token=GPT_EOS)


def train_tokenizer(arch: str, texts, vocab_size: int = 8000, **options) -> PreTrainedTokenizerFast:
    """The tokenizer that goes with a model family: ``bert`` → WordPiece, ``gpt`` → byte-level BPE.

    ``options`` go to the family's trainer (e.g. ``uncased=False`` for a Korean WordPiece).
    """
    recipes = {"bert": train_wordpiece, "gpt": train_bpe}
    if arch not in recipes:
        raise ValueError(f"arch must be one of {sorted(recipes)}, not {arch!r}")
    return recipes[arch](texts, vocab_size=vocab_size, **options)
