"""The data registry: checksums, canonical order, source resolution, cache integrity."""
import shutil
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


def test_falls_back_to_the_bundled_sample_when_offline(monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)

    def no_network():
        raise ConnectionError("offline")

    monkeypatch.setattr(data, "_sst2_from_hub", no_network)
    sst2 = data.load_sst2()
    assert sst2.source.startswith("bundled sample")
    assert len(sst2["train"]) + len(sst2["dev"]) == 200


def test_take_is_balanced_deterministic_and_seeded():
    split = data.Split([f"s{i}" for i in range(100)], [i % 3 == 0 for i in range(100)])
    a, b, c = split.take(20, seed=0), split.take(20, seed=0), split.take(20, seed=1)
    assert a == b and a != c
    assert sum(a.labels) == 10
    with pytest.raises(ValueError):
        split.take(101)


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
