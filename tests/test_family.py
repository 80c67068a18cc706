"""BERT's family: sizes computed from the configurations match what the papers and model cards state."""
import pytest

from course_lib import family

STATED = {  # parameters as the papers or their READMEs state them (rounded there)
    "BERT-base": 110e6, "RoBERTa-large": 355e6, "ALBERT-xxlarge": 235e6, "DistilBERT": 66e6,
    "ELECTRA-large": 335e6, "BART-large": 400e6, "T5-11B": 11e9, "ModernBERT-base": 149e6,
}


@pytest.mark.parametrize("member", family.FAMILY, ids=lambda m: m.name)
def test_computed_size_matches_the_stated_one(member):
    assert member.parameters() == pytest.approx(STATED[member.name], rel=0.06)


def test_every_member_says_what_it_changes_and_cites_its_score():
    for member in family.FAMILY:
        assert member.objective and member.fixes and member.score and member.source, member.name
        assert any(ch.isdigit() for ch in member.score), member.name
