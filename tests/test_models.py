"""Presets, the MiniLM loader's checksum guard, and the save_pretrained/from_pretrained round trip."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from course_lib import data, models, tokenization

TEXTS = ["the film is a delight", "the plot is thin and the acting is worse", "a moving, funny film"] * 20


@pytest.fixture(scope="module")
def wordpiece():
    return tokenization.train_wordpiece(TEXTS, vocab_size=200, min_frequency=1)


@pytest.fixture(scope="module")
def bpe():
    return tokenization.train_bpe(TEXTS, vocab_size=300, min_frequency=1)


def test_presets_have_the_published_shapes(wordpiece):
    bert = models.build("bert", "small", wordpiece)
    assert (bert.config.num_hidden_layers, bert.config.hidden_size, bert.config.intermediate_size) == (4, 256, 1024)
    assert models.count_parameters(models.build("bert", "tiny", wordpiece)) < \
        models.count_parameters(bert) < models.count_parameters(models.build("bert", "base", wordpiece))


def test_gpt_special_tokens_come_from_its_tokenizer(bpe):
    gpt = models.build("gpt", "tiny", bpe)
    assert gpt.config.vocab_size == len(bpe)
    assert gpt.config.eos_token_id == bpe.eos_token_id == bpe.convert_tokens_to_ids("<|endoftext|>")


def test_bad_names_are_refused(wordpiece):
    with pytest.raises(ValueError, match="preset"):
        models.build("bert", "huge", wordpiece)
    with pytest.raises(ValueError, match="arch"):
        models.build("xlnet", "tiny", wordpiece)
    with pytest.raises(ValueError, match="task"):
        models.build("bert", "tiny", wordpiece, task="translate")


def test_wordpiece_adds_cls_sep_and_round_trips(wordpiece, tmp_path):
    ids = wordpiece("the film")["input_ids"]
    assert ids[0] == wordpiece.cls_token_id and ids[-1] == wordpiece.sep_token_id
    wordpiece.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("the film")["input_ids"] == ids


@pytest.mark.parametrize("arch, auto", [("bert", AutoModelForMaskedLM), ("gpt", AutoModelForCausalLM)])
def test_checkpoint_round_trip(arch, auto, wordpiece, bpe, tmp_path):
    tokenizer = wordpiece if arch == "bert" else bpe
    model = models.build(arch, "tiny", tokenizer).eval()
    model.save_pretrained(tmp_path)
    loaded = auto.from_pretrained(tmp_path).eval()
    batch = tokenizer(["the plot is thin"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, loaded(**batch).logits)


def test_minilm_is_verified_and_loads():
    model, tokenizer = models.load_minilm()
    # the body as MiniLM was trained: the file's 22,713,216 weights less the pooler it never trained (384 x 384 + 384)
    assert model.bert.pooler is None
    assert models.count_parameters(model.bert) == 22_713_216 - 147_840
    assert tokenizer.tokenize("Transfer learning!") == ["transfer", "learning", "!"]


def test_minilm_with_a_wrong_checksum_is_refused(monkeypatch):
    monkeypatch.setitem(models.MINILM_SHA256, "vocab.txt", "0" * 64)
    with pytest.raises(data.DataError, match="checksum mismatch.*vocab.txt"):
        models.load_minilm()


def test_scratch_minilm_has_the_same_shape_but_not_the_weights():
    pretrained, _ = models.load_minilm()
    scratch, _ = models.load_minilm(pretrained=False)
    assert models.count_parameters(pretrained) == models.count_parameters(scratch)
    assert not torch.equal(pretrained.bert.embeddings.word_embeddings.weight,
                           scratch.bert.embeddings.word_embeddings.weight)


def test_wordpiece_ids_are_the_same_in_every_process():
    """The WordPiece trainer numbers its alphabet in hash order; the course renumbers it."""
    import subprocess
    import sys

    script = ("from course_lib import tokenization; "
              "t = tokenization.train_wordpiece(['a moving, funny film', 'the plot is thin'] * 5, 80, 1); "
              "print(sorted(t.get_vocab().items(), key=lambda kv: kv[1]))")
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 1
