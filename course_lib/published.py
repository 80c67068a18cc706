"""Published figures of the scale-up race, and the arithmetic notebooks 00 and 10 do with them.

Lesson data, not the trainer's: parameter counts, pretraining tokens, energy and CO2 as the cited
papers give them, with the compute they imply (6·N·D, ``costs``), GPU-hours at an assumed
utilisation, the race's doubling time, and how many tasks a pretraining must serve to pay for itself.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PublishedModel:
    name: str
    year: float          # publication date as a decimal year
    params: float
    tokens: float | None  # pretraining tokens, where the paper states them
    mwh: float | None     # training energy, where measured/estimated by the cited work
    tco2e: float | None
    source: str
    reported_flops: float | None = None  # training compute as a cited work states it, where 6·N·D is wrong

    @property
    def flops(self) -> float | None:
        """Training FLOPs: the reported figure where there is one, else 6·N·D (Kaplan et al. 2020).

        6·N·D assumes every token passes through every weight. In an encoder-decoder (T5) a token goes
        through the encoder *or* the decoder, about half of them, so 6·N·D overcounts it.
        """
        if self.reported_flops:
            return self.reported_flops
        return 6 * self.params * self.tokens if self.tokens else None


PUBLISHED = [
    # GPT-1's paper gives no parameter count; 117M is the size of the model OpenAI released, the smallest in
    # the GPT-2 paper's table of sizes (Radford et al. 2019).
    PublishedModel("GPT-1", 2018.44, 117e6, None, None, None,
                   "Radford et al. 2018; parameters not in the paper: 117M from Radford et al. 2019 (GPT-2, Table 2)"),
    # BERT: 1M steps of 256 sequences, 90% of the steps at length 128 and 10% at 512 (Devlin et al. 2018,
    # appendix A.2), so about 4.26e10 tokens: the nominal 256 x 512 x 1M = 1.31e11 counts every step at 512.
    PublishedModel("BERT-base", 2018.78, 110e6, 256 * (0.9 * 128 + 0.1 * 512) * 1e6, 1.507, 0.652,
                   "Devlin et al. 2018 (1M steps x 256 sequences, 90% of them 128 tokens long, 10% 512; "
                   "appendix A.2); energy: Strubell et al. 2019"),
    PublishedModel("BERT-large", 2018.78, 340e6, 256 * (0.9 * 128 + 0.1 * 512) * 1e6, None, None,
                   "Devlin et al. 2018 (same schedule as BERT-base, appendix A.2)"),
    PublishedModel("GPT-2", 2019.12, 1.5e9, None, None, None, "Radford et al. 2019"),
    PublishedModel("RoBERTa-large", 2019.57, 355e6, 2.1e12, None, None, "Liu et al. 2019 (500k steps x 8k x 512 tokens)"),
    PublishedModel("BART-large", 2019.83, 406e6, None, None, None, "Lewis et al. 2019"),
    PublishedModel("T5-11B", 2019.81, 11e9, 1e12, 85.7, 46.7,
                   "Raffel et al. 2019 (1M steps x 2^11 x 512 tokens); compute (4.05e22 FLOPs, not 6·N·D) and energy: "
                   "Patterson et al. 2021, Table 4", reported_flops=4.05e22),
    PublishedModel("GPT-3", 2020.41, 175e9, 300e9, 1287.0, 552.0, "Brown et al. 2020; energy: Patterson et al. 2021"),
]


# --- who can afford it: GPU-hours, the race's pace, amortisation ---------------------------------

def gpu_hours(flops: float, peak_flops: float, mfu: float) -> float:
    """GPU-hours to do ``flops`` of training on GPUs of ``peak_flops`` FLOP/s kept ``mfu`` busy (0-1)."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu is a fraction of the peak, in (0, 1], not {mfu}")
    return flops / (peak_flops * mfu) / 3600


def doubling_time_months(published: list) -> float:
    """Months for the largest models to double in size: a straight line through log2(parameters) by year.

    Fitted to every model given (not only the record holders), so it measures the field's pace.
    """
    years = [m.year for m in published]
    slope = np.polyfit(years, np.log2([m.params for m in published]), 1)[0]
    return 12 / slope


def break_even_tasks(pretrain_flops: float, finetune_flops: float, scratch_flops: float) -> float | None:
    """Tasks that must share one pretraining before it has paid for itself in compute.

    Each task costs ``finetune_flops`` on top of the pretraining, or ``scratch_flops`` to reach the
    same accuracy from random weights (more labels, so more steps). Pretraining pays off after
    pretrain / (scratch - finetune) tasks; None when fine-tuning saves no compute per task (then
    pretraining pays only in labels and accuracy, never in FLOPs).
    """
    saved = scratch_flops - finetune_flops
    return pretrain_flops / saved if saved > 0 else None
