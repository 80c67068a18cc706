"""The data registry: checksums, canonical order, source resolution, cache integrity."""
import random
import shutil
import time
from pathlib import Path

import pytest

from course_lib import data


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A private copy of the SST-2 dev/test mirror files that a test may damage."""
    source = data.mirror_dir()
    if source is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    (tmp_path / "sst2").mkdir()
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        shutil.copy(source / "sst2" / name, tmp_path / "sst2" / name)
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path))
    return tmp_path


def test_mirror_file_verifies_checksum(mirror):
    assert data.mirror_file("sst2/dev.tsv") == mirror / "sst2" / "dev.tsv"


def test_flipped_byte_is_refused(mirror):
    path = mirror / "sst2" / "dev.tsv"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.load_sst2()


def test_missing_file_names_the_variable(mirror):
    (mirror / "sst2" / "test.tsv").unlink()
    with pytest.raises(data.DataError, match=r"COURSE_DATA_DIR=.*sst2/test.tsv"):
        data.load_sst2("mirror")


def test_unset_mirror_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    with pytest.raises(data.DataError, match="COURSE_DATA_DIR is not set"):
        data.mirror_file("sst2/dev.tsv")


def test_canonical_order_ignores_source_order_and_whitespace():
    rows = [("b film .", 1), ("a film", 0), ("c  plot ", 0), ("d", 1)]
    reordered = [("c plot", 0), ("d ", 1), ("a film", 0), (" b film .", 1)]
    assert data.canonical(rows) == data.canonical(reordered)
    assert data.canonical(rows).texts != sorted(data.canonical(rows).texts)  # shuffled, not just sorted


def test_sst2_mirror_sizes_and_labels():
    if data.mirror_dir() is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    sst2 = data.load("sst2")
    assert sst2.source.startswith("local mirror")
    assert {k: len(v) for k, v in sst2.splits.items()} == {"train": 67349, "dev": 872, "test": 1821}
    assert sum(sst2["train"].labels) == 37569 and sum(sst2["dev"].labels) == 444


def test_falls_back_to_the_bundled_sample_when_the_hub_fails(monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setattr(data, "hub_unreachable", lambda: None)

    def no_network():
        raise ConnectionError("offline")

    monkeypatch.setattr(data, "_sst2_from_hub", no_network)
    sst2 = data.load_sst2()
    assert sst2.source == data.SAMPLE_SOURCE
    assert len(sst2["train"]) + len(sst2["dev"]) == 200
    assert capsys.readouterr().err == ("SST-2: COURSE_DATA_DIR is not set and loading from the Hub failed "
                                       "(ConnectionError); using the bundled 200-sentence sample.\n")


def test_offline_mode_skips_the_hub(monkeypatch, capsys):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(data, "_sst2_from_hub", lambda: pytest.fail("offline mode must not try the Hub"))
    assert data.load_sst2().source == data.SAMPLE_SOURCE
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err


def test_an_unreachable_hub_is_noticed_within_seconds(monkeypatch):
    for name in data.HUB_OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # the discard port: nothing listens there
    start = time.perf_counter()
    assert data.hub_unreachable().startswith("127.0.0.1 cannot be reached")
    assert time.perf_counter() - start < data.HUB_PROBE_SECONDS + 1


def test_a_split_the_source_lacks_is_named():
    sample = data.load_sst2("sample")
    with pytest.raises(data.DataError, match="has no labelled 'test' split; it has train, dev"):
        sample["test"]


def test_take_is_balanced_deterministic_and_seeded():
    split = data.Split([f"s{i}" for i in range(100)], [i % 3 == 0 for i in range(100)])
    a, b, c = split.take(20, seed=0), split.take(20, seed=0), split.take(20, seed=1)
    assert a == b and a != c
    assert sum(a.labels) == 10
    with pytest.raises(ValueError, match=r"cannot draw 101 examples from a split of 100 .*ask for 1 to 100"):
        split.take(101)
    with pytest.raises(ValueError, match="ask for 1 to 100"):
        split.take(0)


def take_before_the_fill(split, n, seed):
    """``Split.take`` as it was before short classes were filled: what published numbers were drawn with."""
    rng = random.Random(seed)
    by_label = {}
    for i in rng.sample(range(len(split)), len(split)):
        by_label.setdefault(split.labels[i], []).append(i)
    per_label = [n // len(by_label) + (k < n % len(by_label)) for k in range(len(by_label))]
    chosen = [i for k, label in enumerate(sorted(by_label)) for i in by_label[label][: per_label[k]]]
    assert len(chosen) == n, "only for draws that were possible"
    rng.shuffle(chosen)
    return data.Split([split.texts[i] for i in chosen], [split.labels[i] for i in chosen])


@pytest.mark.parametrize("n,seed", [(20, 0), (33, 3), (500, 0), (1000, 7), (1500, 2)])
def test_take_draws_what_it_always_drew_where_balance_is_possible(n, seed):
    rng = random.Random(n)
    labels = [rng.choice([0, 0, 1, 2]) for _ in range(3000)]  # imbalanced, but every class has >= 500
    split = data.Split([f"sentence {i}" for i in range(3000)], labels)
    assert split.take(n, seed) == take_before_the_fill(split, n, seed)


def test_take_fills_a_short_class_with_the_others():
    split = data.Split([f"s{i}" for i in range(30)], [0] * 3 + [1] * 12 + [2] * 15)
    drawn = split.take(20, seed=0)
    assert [drawn.labels.count(label) for label in (0, 1, 2)] == [3, 9, 8]
    assert len(set(drawn.texts)) == 20
    assert data.balanced_quotas([69, 71], 140) == [69, 71]  # the bundled sample's training split, all of it


def test_cache_round_trip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    data.write_cache("x/notes.txt", b"hello")
    assert data.read_cache("x/notes.txt") == b"hello"
    Path(tmp_path / "x" / "notes.txt").write_bytes(b"hellO")
    with pytest.raises(data.DataError, match="failed its checksum and was removed"):
        data.read_cache("x/notes.txt")
    assert not (tmp_path / "x" / "notes.txt").exists()  # nothing corrupt is left behind
    assert data.read_cache("x/notes.txt") is None


def test_wiki_sample_is_plain_text(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    paragraphs = data.wiki_paragraphs()
    assert 5000 < len(paragraphs) < 8000
    text = " ".join(paragraphs[:500])
    assert "[[" not in text and "'''" not in text and "{{" not in text
    assert data.wiki_paragraphs() == paragraphs  # second call reads the verified cache


def test_korean_corpus_counts():
    if data.mirror_dir() is None:
        pytest.skip("COURSE_DATA_DIR is not set")
    korean = data.load("korean_hate_speech")
    assert (len(korean["train"]), len(korean["dev"])) == (7896, 471)
    assert set(korean["train"].labels) == {0, 1, 2}


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(KeyError, match="sst2"):
        data.load("imdb")
