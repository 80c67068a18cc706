"""Notebook 00's checks accept right answers and say what is wrong with the usual mistakes."""
import pytest

from course_lib import exercises
from course_lib.exercises import CheckFailed, big_picture


def test_training_flops_accepts_6nd():
    big_picture.check_training_flops(lambda n, d: 6 * n * d)
    big_picture.check_training_flops(lambda n, d: 6.0 * d * n)


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, d: 2 * n * d, "forward pass only"),
    (lambda n, d: 4 * n * d, "backward pass only"),
    (lambda n, d: 6 * n, "multiply by the number of training tokens"),
    (lambda n, d: 6 * n * d * 1000, "too large"),
    (lambda n, d: str(6 * n * d), "return a number"),
])
def test_training_flops_explains_mistakes(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        big_picture.check_training_flops(wrong)


def test_co2_accepts_grams():
    big_picture.check_co2_grams(lambda kwh, intensity: kwh * intensity * 1000)


@pytest.mark.parametrize("wrong, hint", [
    (lambda kwh, intensity: kwh * intensity, "kilograms"),
    (lambda kwh, intensity: kwh * intensity * 1e6, "thousand times too much"),
    (lambda kwh, intensity: kwh / intensity * 1000, "multiply"),
    (lambda kwh, intensity: kwh * 1000, "expected"),
])
def test_co2_explains_mistakes(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        big_picture.check_co2_grams(wrong)


def test_grade_reports_unattempted_exercise():
    def not_done(*args):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="not attempted yet"):
        exercises.grade("Exercise 1", big_picture.check_training_flops, not_done)


def test_published_bert_tokens_follow_its_schedule():
    """BERT trained 90% of its 1M steps on 128-token sequences and 10% on 512 (Devlin et al. 2018, A.2)."""
    from course_lib.published import PUBLISHED

    by_name = {m.name: m for m in PUBLISHED}
    for name in ("BERT-base", "BERT-large"):
        assert by_name[name].tokens == pytest.approx(256 * (0.9 * 128 + 0.1 * 512) * 1e6)
    assert by_name["BERT-base"].flops == pytest.approx(2.81e19, rel=1e-3)
    assert "not in the paper" in by_name["GPT-1"].source
