"""The cost-of-scale tools: power-law fits, the IsoFLOP minimum, the compute frontier, GPU-hours,
the race's pace, amortisation, copied n-grams, and one tiny scaling run end to end."""
import json
import math

import numpy as np
import pytest
from tokenizers import Tokenizer, models as tok_models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from course_lib import checkpoints, generation, models, published, results, scaling, word2vec
from course_lib.errors import ConfigError
from course_lib.exercises import CheckFailed
from course_lib.exercises import scale as checks


# --- fits ---------------------------------------------------------------------------------------

def test_power_law_fit_recovers_exponent_and_coefficient():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    law = scaling.fit_power_law(n, 12.0 * n ** -0.08)
    assert law.exponent == pytest.approx(0.08)
    assert law.coefficient == pytest.approx(12.0)
    assert law.r2 == pytest.approx(1.0)
    assert law(1e7) == pytest.approx(12.0 * 1e7 ** -0.08)
    assert str(law) == "loss ∝ N^-0.080, R² = 1.000"


def test_power_law_fit_reports_a_poor_fit():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    law = scaling.fit_power_law(n, [5.0, 3.0, 5.0, 3.0, 5.0])  # no trend at all
    assert law.r2 < 0.1


def test_power_law_fit_needs_three_points():
    with pytest.raises(ValueError, match="three points"):
        scaling.fit_power_law([1, 2], [3, 4])


def test_best_size_is_the_parabola_vertex_in_log_n():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    losses = (np.log(n) - np.log(6e4)) ** 2 + 4.0
    assert scaling.best_size(n, losses) == pytest.approx(6e4, rel=1e-6)
    assert scaling.best_size(n[::-1], losses[::-1]) == pytest.approx(6e4, rel=1e-6)  # any order


def test_best_size_fits_only_the_points_near_the_minimum():
    n = np.geomspace(1e4, 1e7, 9)
    losses = (np.log(n) - np.log(3e4)) ** 2 + 4.0
    losses[-3:] += [5.0, 20.0, 80.0]  # starved large models: far off any parabola
    assert scaling.best_size(n, losses) == pytest.approx(3e4, rel=1e-6)


def test_best_size_is_none_when_the_minimum_is_at_an_end_of_the_grid():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    assert scaling.best_size(n, 5.0 - 0.1 * np.log(n)) is None               # still falling at the largest
    assert scaling.best_size(n, 5.0 + 0.1 * np.log(n)) is None               # still rising from the smallest


def test_frontier_keeps_only_points_better_than_everything_cheaper():
    rows = [{"flops": 100.0, "steps": 10, "curve": [[5, 6.0], [10, 5.0]]},   # 10 FLOPs a step
            {"flops": 400.0, "steps": 10, "curve": [[5, 5.5], [10, 4.0]]}]   # 40 FLOPs a step
    assert scaling.frontier(rows) == [(50.0, 6.0), (100.0, 5.0), (400.0, 4.0)]  # (200, 5.5) is beaten


# --- costs --------------------------------------------------------------------------------------

def test_gpu_hours():
    assert published.gpu_hours(3600 * 1e12, 1e12, 1.0) == pytest.approx(1.0)
    assert published.gpu_hours(3600 * 1e12, 1e12, 0.5) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="fraction"):
        published.gpu_hours(1e12, 1e12, 40)


def test_doubling_time_of_a_model_family_that_doubles_every_six_months():
    family = [published.PublishedModel(f"m{i}", 2018 + i / 2, 1e8 * 2 ** i, None, None, None, "") for i in range(5)]
    assert published.doubling_time_months(family) == pytest.approx(6.0)


def test_break_even_tasks():
    assert published.break_even_tasks(1000.0, 10.0, 60.0) == pytest.approx(20.0)
    assert published.break_even_tasks(1000.0, 60.0, 60.0) is None  # fine-tuning saves nothing per task


# --- copying ------------------------------------------------------------------------------------

def test_copied_share_counts_verbatim_ngrams():
    corpus = ["a b c d e f g h i j"]
    index = generation.ngram_index(corpus, n=3)
    assert generation.copied_share(["a b c x"], index, n=3) == pytest.approx(0.5)   # "a b c" yes, "b c x" no
    assert generation.copied_share(["c d e f"], index, n=3) == 1.0
    assert generation.copied_share(["z y x w"], index, n=3) == 0.0
    assert generation.copied_share(["too short"], index, n=3) == 0.0


# --- shapes and one run -------------------------------------------------------------------------

def word_tokenizer():
    words = "the a film movie is good bad not very fun dull".split()
    vocab = {"<unk>": 0, "<eos>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    backend = Tokenizer(tok_models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>",
                                   bos_token="<eos>", pad_token="<eos>")


def test_shape_presets_are_checked():
    assert models.preset(scaling.shape(64)) == {"layers": scaling.LAYERS, "hidden": 64, "heads": 4}
    with pytest.raises(ValueError, match="heads dividing hidden"):
        models.preset({"layers": 2, "hidden": 50, "heads": 4})


def test_non_embedding_parameters_leave_out_token_and_position_embeddings():
    tokenizer = word_tokenizer()
    model = scaling.build(32, tokenizer)
    embeddings = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    assert scaling.non_embedding_parameters(model) == models.count_parameters(model) - embeddings
    layer = 12 * 32 ** 2 + 13 * 32  # attention 4·d² + MLP 8·d², biases and two LayerNorms
    assert scaling.non_embedding_parameters(model) == scaling.LAYERS * layer + 2 * 32  # + the final LayerNorm


def test_compute_grid_gives_smaller_models_more_steps():
    tokenizer = word_tokenizer()
    small, large = scaling.build(32, tokenizer), scaling.build(64, tokenizer)
    blocks = [{"input_ids": [2] * scaling.BLOCK_SIZE}] * 40
    assert scaling.steps("tokens", small, blocks) == scaling.steps("tokens", large, blocks) == 40 // scaling.BATCH_SIZE
    assert scaling.steps("compute", small, blocks) > scaling.steps("compute", large, blocks)
    assert scaling.steps("compute", small, blocks) == round(scaling.COMPUTE_BUDGET / scaling.flops_per_step(small))
    with pytest.raises(ValueError, match="grid"):
        scaling.steps("time", small, blocks)


def test_a_tiny_run_learns_and_records_its_cost(tmp_path):
    tokenizer = word_tokenizer()
    rng = np.random.default_rng(0)
    sentences = ["the film is very good", "the movie is not fun", "a film is dull", "the movie is bad"]
    ids = [t for _ in range(600) for t in tokenizer(sentences[rng.integers(4)] + " <eos>")["input_ids"]]
    size = scaling.BLOCK_SIZE
    blocks = [{"input_ids": ids[i:i + size]} for i in range(0, len(ids) - size + 1, size)]
    row, model = scaling.train(32, 12, tokenizer, blocks[:-2], blocks[-2:], eval_every=6)
    assert row["params"] == models.count_parameters(model)
    assert row["steps"] == 12 and row["tokens"] == 12 * scaling.BATCH_SIZE * size
    assert [step for step, _ in row["curve"]] == [6, 12]
    assert row["curve"][-1][1] < math.log(len(tokenizer))  # better than a uniform guess
    assert row["flops_6nd"] == 6 * row["params_non_embedding"] * row["tokens"] < row["flops"]
    path = tmp_path / "runs.jsonl"
    results.append_result(path, row)
    results.append_result(path, row)
    assert results.read_results(path) == [row, row]


# --- the graded exercises of notebook 10 --------------------------------------------------------

def test_power_law_check_accepts_the_fit_and_explains_mistakes():
    checks.check_power_law_fit(lambda n, loss: (scaling.fit_power_law(n, loss).exponent, scaling.fit_power_law(n, loss).r2))
    with pytest.raises(CheckFailed, match="minus the slope"):
        checks.check_power_law_fit(lambda n, loss: (-scaling.fit_power_law(n, loss).exponent, 1.0))
    with pytest.raises(CheckFailed, match="log"):
        checks.check_power_law_fit(lambda n, loss: (float(-np.polyfit(n, loss, 1)[0]), 1.0))
    with pytest.raises(CheckFailed, match="R²"):
        checks.check_power_law_fit(lambda n, loss: (scaling.fit_power_law(n, loss).exponent, 1.0))


def test_co2_check_names_the_unit_mistake():
    checks.check_run_co2(lambda w, s, i: w * s / 3.6e6 * i)
    for wrong, hint in [(lambda w, s, i: w * s * i, "3.6 million joules"),
                        (lambda w, s, i: w * s / 3600 * i, "another 1,000"),
                        (lambda w, s, i: 1000 * w * s / 3.6e6 * i, "not grams")]:
        with pytest.raises(CheckFailed, match=hint):
            checks.check_run_co2(wrong)


def test_break_even_check_explains_the_two_usual_mistakes():
    checks.check_break_even(published.break_even_tasks)
    with pytest.raises(CheckFailed, match="alternative"):
        checks.check_break_even(lambda p, f, s: p / f)
    with pytest.raises(CheckFailed, match="scratch - fine-tune"):
        checks.check_break_even(lambda p, f, s: p / s)
    with pytest.raises(CheckFailed, match="None"):
        checks.check_break_even(lambda p, f, s: p / (s - f) if s != f else float("inf"))


def test_benchmark_shards_split_the_whole_grid_and_skip_what_is_done():
    grid = [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("a", 1)]  # a repeated job runs once
    assert results.my_jobs(grid, "0/2", done=set()) == [("a", 1), ("b", 1)]
    assert results.my_jobs(grid, "1/2", done={("a", 2)}) == [("b", 2)]
    for wrong in ("2/2", "1", "a/b"):
        with pytest.raises(ConfigError, match="shard"):
            results.my_jobs(grid, wrong, done=set())


# --- the skip-gram stage, priced from its history ----------------------------------------------------

def _checkpoint_with(tmp_path, stage):
    history = {"train": [], "eval": [], **({"word2vec": stage} if stage is not None else {})}
    (tmp_path / checkpoints.STATE_JSON).write_text(json.dumps({"history": history}))
    return tmp_path


def test_skipgram_stage_is_priced_from_the_pairs_its_history_counted(tmp_path):
    stage = {"epochs": 5, "seconds": 12.5, "losses": [3.0], "pairs": 1000, "dim": 128, "negatives": 5}
    priced = scaling.skipgram_stage(_checkpoint_with(tmp_path, stage))
    assert priced == {"epochs": 5, "pairs": 1000, "flops_per_pair": word2vec.flops_per_pair(128, 5),
                      "flops": 1000.0 * 6 * 6 * 128, "seconds": 12.5}


def test_skipgram_stage_refuses_a_checkpoint_that_predates_the_pair_count(tmp_path):
    old = {"epochs": 5, "seconds": 12.5, "losses": [3.0]}
    with pytest.raises(ValueError, match="retrain"):
        scaling.skipgram_stage(_checkpoint_with(tmp_path, old))


def test_skipgram_stage_refuses_a_checkpoint_without_that_stage(tmp_path):
    with pytest.raises(ValueError, match="without a skip-gram stage"):
        scaling.skipgram_stage(_checkpoint_with(tmp_path, None))
