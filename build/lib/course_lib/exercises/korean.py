"""Checks for notebook 11 (the Korean track): Hangul arithmetic, macro-F1 by hand."""
import math

from .. import korean
from . import expect, expect_number

SYLLABLES = ("한", "가", "글", "없", "힣", "쌍", "뷁", "요")


def check_decompose(decompose) -> None:
    """``decompose(syllable)`` -> (initial, medial, final) letters, final "" when the syllable has none."""
    for syllable in SYLLABLES:
        got, want = decompose(syllable), korean.decompose(syllable)
        expect(isinstance(got, tuple) and len(got) == 3,
               f"decompose({syllable!r}) returned {got!r}: return a tuple of three letters (initial, medial, final)")
        expect(all(isinstance(letter, str) for letter in got),
               f"decompose({syllable!r}) returned {got!r}: return the letters themselves (e.g. INITIALS[i]), "
               "not their indices, and '' (not None) for a missing final")
        index = ord(syllable) - korean.SYLLABLE_BASE
        expect(got[0] == want[0], f"{syllable!r}: initial {got[0]!r}, expected {want[0]!r}. Subtract 0xAC00 from "
                                  f"the code point ({index:,} here), then initial = index // (21 * 28): every "
                                  "initial letter owns a run of 21 medials x 28 finals")
        expect(got[1] == want[1], f"{syllable!r}: medial {got[1]!r}, expected {want[1]!r}. medial = index // 28 "
                                  "% 21: skip the 28 finals of each medial, then wrap around the 21 medials")
        expect(got[2] == want[2], f"{syllable!r}: final {got[2]!r}, expected {want[2]!r}. final = index % 28, and "
                                  "final 0 means 'no final letter' (FINALS[0] is ''), which is why there are 28 "
                                  "finals for 27 letters")
    spelled = ", ".join(f"{s} = {' + '.join(filter(None, korean.decompose(s)))}" for s in SYLLABLES[:4])
    print(f"Correct: {spelled}, ... all {len(SYLLABLES)} syllables.")


# Rows: true class, columns: predicted class (sklearn's convention), classes none / offensive / hate.
CONFUSIONS = (
    [[50, 10, 5], [8, 30, 12], [2, 9, 20]],
    [[120, 30, 10], [40, 110, 39], [15, 35, 72]],
    [[60, 0, 0], [25, 0, 5], [10, 0, 30]],  # "offensive" is never predicted
)


def f1_per_class(confusion: list) -> list:
    """F1 of each class: 2PR / (P + R), with 0 for a class never predicted or never present."""
    scores = []
    for k in range(len(confusion)):
        true_positive = confusion[k][k]
        predicted = sum(row[k] for row in confusion)
        present = sum(confusion[k])
        scores.append(2 * true_positive / (predicted + present) if predicted + present else 0.0)
    return scores


def check_macro_f1(macro_f1) -> None:
    """``macro_f1(confusion)`` -> the mean of the per-class F1 scores of a confusion matrix (rows: true class)."""
    for confusion in CONFUSIONS:
        got = macro_f1(confusion)
        expect_number(got, "macro-F1 as a fraction")
        expect(not math.isnan(got), "you got nan: a class that is never predicted has precision 0/0; count its "
                                    "F1 as 0 (as sklearn does), do not divide by zero")
        per_class = f1_per_class(confusion)
        want = sum(per_class) / len(per_class)
        total = sum(map(sum, confusion))
        accuracy = sum(confusion[k][k] for k in range(len(confusion))) / total
        weighted = sum(f * sum(row) for f, row in zip(per_class, confusion)) / total
        if math.isclose(got, want, abs_tol=1e-9):
            continue
        expect(not math.isclose(got, 100 * want, rel_tol=1e-9), "return a fraction between 0 and 1, not a percentage")
        expect(not math.isclose(got, accuracy, abs_tol=1e-9),
               f"{got:.4f} is the accuracy (the diagonal over the total), which micro-averaged F1 equals for one label "
               "per example: compute F1 for each class separately, then average the three")
        expect(not math.isclose(got, weighted, abs_tol=1e-9),
               f"{got:.4f} weights each class's F1 by how many examples it has: macro-F1 gives every class the same "
               "weight, so a small class (hate) counts as much as a large one")
        expect(False, f"for {confusion} the per-class F1 are {', '.join(f'{f:.3f}' for f in per_class)}, so macro-F1 "
                      f"is {want:.4f}, not {got:.4f}. Precision of class k: the diagonal cell over its column's sum; "
                      "recall: over its row's sum; F1 = 2PR / (P + R)")
    print("Correct: the mean of three per-class F1 scores; a class the model never predicts scores 0 and pulls the "
          "mean down, however high the accuracy.")
