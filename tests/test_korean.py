"""Notebook 11's library: Hangul arithmetic, units of text, macro-F1 runs, and the graded checks."""
import unicodedata

import pytest

from course_lib import data, finetune, korean, label_budget, pretraining, runtime, tokenization
from course_lib.data import Split
from course_lib.errors import ConfigError
from course_lib.exercises import CheckFailed
from course_lib.exercises import korean as checks
from course_lib.tokenization import train_bpe, train_wordpiece

COMMENTS = ["노래를 정말 잘하는 배우가 좋아요", "사람들이 할수있는 일을 응원합니다", "연기력이 최고예요 ㅋㅋㅋ",
            "드라마가 재밌게 끝났어요", "보고싶다 노래 또 들려주세요", "배우들 연기가 너무 좋아요"] * 20


def test_decompose_agrees_with_unicode_and_compose_inverts_it():
    """Unicode's canonical decomposition (NFD) of every syllable gives the same three letters."""
    compatibility = {unicodedata.normalize("NFKC", c): c for c in korean.INITIALS + korean.MEDIALS}
    for code in range(korean.SYLLABLE_BASE, korean.SYLLABLE_BASE + korean.SYLLABLE_COUNT):
        syllable = chr(code)
        letters = korean.decompose(syllable)
        assert korean.compose(*letters) == syllable
        nfd = unicodedata.normalize("NFD", syllable)  # conjoining letters U+1100-U+11FF
        assert len(nfd) == (3 if letters[2] else 2)
        assert [compatibility[c] for c in nfd[:2]] == list(letters[:2])
    assert korean.decompose("한") == ("ㅎ", "ㅏ", "ㄴ") and korean.decompose("가") == ("ㄱ", "ㅏ", "")
    assert korean.to_jamo("한국 NLP!") == "ㅎㅏㄴㄱㅜㄱ NLP!"
    with pytest.raises(ValueError, match="not a precomposed Hangul syllable"):
        korean.decompose("ㅋ")


def test_ljust_counts_a_hangul_block_as_two_columns():
    assert korean.ljust("노래", 6) == "노래  " and korean.ljust("ab", 4) == "ab  " and korean.ljust("노래를", 4) == "노래를"


def test_units_of_a_word():
    assert korean.syllables("노래 를") == ["노", "래", "를"]
    assert korean.jamo("노래") == ["ㄴ", "ㅗ", "ㄹ", "ㅐ"]
    assert korean.morphemes("노래를") == ["노래", "를"]
    assert korean.morphemes("할수있는")[:2] == ["하", "ㄹ"]  # a morpheme boundary inside a syllable


def test_subword_units_and_fallback():
    wordpiece = korean.subword_units(train_wordpiece(COMMENTS, vocab_size=120, uncased=False))
    assert "".join(u.removeprefix("##") for u in wordpiece("노래를 좋아요")) == "노래를좋아요"
    bpe = korean.subword_units(train_bpe(COMMENTS, vocab_size=300))
    pieces = bpe("노래를 뷁")  # 뷁 never occurs: byte-level BPE falls back to its bytes
    assert any(korean.is_fallback(p) for p in pieces) and not korean.is_fallback("노래")
    uncased = korean.subword_units(train_wordpiece(COMMENTS, vocab_size=120))
    assert all(korean.is_fallback(u) for u in uncased("노래") if u != "[UNK]")  # lower-casing NFD-splits syllables


def test_unit_stats_counts_what_it_says():
    stats = korean.unit_stats(korean.syllables, ["가나", "나다"], ["가라", "다"])
    assert stats["per_comment"] == 1.5 and stats["distinct"] == 3
    assert stats["unseen"] == pytest.approx(1 / 3)  # 라 was never seen
    assert stats["unknown"] == 0 and stats["fallback"] == 0
    stats = korean.unit_stats(lambda text: text.split(), ["a b"], ["a [UNK]"], unknown="[UNK]")
    assert stats["unknown"] == 0.5


def test_scores_macro_f1_and_the_check_agree():
    labels, predictions = [0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2]
    result = korean.scores(labels, predictions)
    confusion = result["confusion"]
    assert confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    per_class = checks.f1_per_class(confusion)
    assert result["macro_f1"] == pytest.approx(sum(per_class) / 3)
    assert result["accuracy"] == pytest.approx(5 / 7)


def test_tfidf_run_scores_macro_f1():
    train = Split(COMMENTS[:60], [i % 3 for i in range(60)])
    row = korean.run_tfidf(train, Split(COMMENTS[:12], [i % 3 for i in range(12)]))
    assert 0 <= row["macro_f1"] <= 1 and len(row["confusion"]) == 3 and row["labels"] == 60


def test_korean_start_fine_tunes_three_classes(pretrain_tiny):
    checkpoint = pretrain_tiny("bert", COMMENTS, vocab_size=200, block_size=16, uncased=False)
    train, dev = Split(COMMENTS[:30], [i % 3 for i in range(30)]), Split(COMMENTS[:9], [i % 3 for i in range(9)])
    row = korean.run_start("pretrained", train, dev, checkpoint=checkpoint, max_steps=2)
    assert row["steps"] == 2 and sum(map(sum, row["confusion"])) == 9


def test_the_korean_recipe_keeps_hangul_and_is_named_apart(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))
    for profile in runtime.PROFILES:
        recipe = pretraining.RECIPES[korean.CHECKPOINT, profile]
        assert (recipe["arch"], recipe["corpus"], recipe["uncased"]) == ("bert", "korean", False)
        assert recipe["vocabulary"] == pretraining.KOREAN_VOCABULARY
    assert pretraining.checkpoint_dir(korean.CHECKPOINT).name.startswith("korean-bert-cpu-cpu-fp32-")
    assert set(korean.STARTS.values()) == set(finetune.STARTS)


def test_unknown_arm_is_refused():
    with pytest.raises(ConfigError, match="unknown arm"):
        korean.run("MiniLM", {"train": Split(["가"], [0])}, 1, 0)


def test_tfidf_classifier_defaults_are_notebook_07s():
    model = label_budget.tfidf_classifier(Split(["good film", "bad film"] * 5, [1, 0] * 5))
    vectorizer = model.steps[0][1]
    assert (vectorizer.analyzer, vectorizer.ngram_range) == ("word", (1, 2))


def test_decompose_check_accepts_the_arithmetic_and_explains_mistakes():
    checks.check_decompose(korean.decompose)
    swapped = lambda s: (korean.decompose(s)[0], korean.MEDIALS[(ord(s) - 0xAC00) % 21], korean.decompose(s)[2])
    with pytest.raises(CheckFailed, match="medial = index // 28 % 21"):
        checks.check_decompose(swapped)
    with pytest.raises(CheckFailed, match="not None"):
        checks.check_decompose(lambda s: tuple(x or None for x in korean.decompose(s)))
    with pytest.raises(CheckFailed, match="Subtract 0xAC00"):
        checks.check_decompose(lambda s: (korean.INITIALS[ord(s) // 588 % 19],) + korean.decompose(s)[1:])
    with pytest.raises(CheckFailed, match="final 0 means"):
        checks.check_decompose(lambda s: korean.decompose(s)[:2] + (korean.FINALS[(ord(s) - 0xAC00) % 28 - 1],))


def test_macro_f1_check_accepts_the_mean_and_explains_mistakes():
    def macro(confusion):
        return sum(checks.f1_per_class(confusion)) / 3
    checks.check_macro_f1(macro)
    with pytest.raises(CheckFailed, match="accuracy"):
        checks.check_macro_f1(lambda c: sum(c[k][k] for k in range(3)) / sum(map(sum, c)))
    with pytest.raises(CheckFailed, match="same weight"):
        checks.check_macro_f1(lambda c: sum(f * sum(r) for f, r in zip(checks.f1_per_class(c), c)) / sum(map(sum, c)))
    with pytest.raises(CheckFailed, match="percentage"):
        checks.check_macro_f1(lambda c: 100 * macro(c))
    with pytest.raises(CheckFailed, match="nan"):
        checks.check_macro_f1(lambda c: float("nan"))


def test_a_vocabulary_gives_back_the_tokenizer_trained_with_it():
    trained = train_wordpiece(COMMENTS, vocab_size=120, uncased=False)
    rebuilt = tokenization.wordpiece(list(trained.get_vocab()), uncased=False)
    assert rebuilt.backend_tokenizer.to_str() == trained.backend_tokenizer.to_str()
    assert rebuilt(COMMENTS)["input_ids"] == trained(COMMENTS)["input_ids"]


def test_the_shipped_korean_vocabulary_is_what_training_on_the_comments_gives_but_for_ties():
    shipped = tokenization.wordpiece(tokenization.shipped_vocabulary(pretraining.KOREAN_VOCABULARY), uncased=False)
    assert len(shipped) == 8000 and shipped.tokenize("노래를 응원합니다") == ["노래를", "응원합니다"]
    trained = train_wordpiece(data.korean_unlabeled_comments(), vocab_size=8000, uncased=False)
    assert len(set(shipped.get_vocab()) & set(trained.get_vocab())) > 0.99 * 8000
