"""Layer groups are found in every architecture the course fine-tunes: BERT, GPT-2 and ModernBERT."""
import pytest

from course_lib import models, optim
from course_lib.tokenization import train_tokenizer

TEXTS = ["the film is good and the actors are great", "a dull and boring plot"] * 20


@pytest.mark.parametrize("arch", ["gpt", "bert"])
@pytest.mark.parametrize("task", ["pretrain", "classify"])
def test_every_parameter_lands_in_its_layer_group(arch, task):
    tokenizer = train_tokenizer(arch, TEXTS, 300)
    model = models.build(arch, "tiny", tokenizer, task=task)
    n = optim.num_layers(model)
    groups = {name: optim.layer_group(name, n) for name, _ in model.named_parameters()}
    embeddings = {"gpt": ("transformer.wte.", "transformer.wpe."), "bert": ("model.embeddings.",)}[arch]
    layer_prefix = {"gpt": "transformer.h.", "bert": "model.layers."}[arch]
    for name, group in groups.items():
        if name.startswith(embeddings):
            assert group == 0, name
        elif name.startswith(layer_prefix):
            assert group == int(name[len(layer_prefix):].split(".")[0]) + 1, name
        else:  # final norm and the head sit above the last layer
            assert group == n + 1, name
    assert set(groups.values()) == set(range(n + 2))


def test_layer_decay_rates_follow_the_groups_on_gpt2():
    tokenizer = train_tokenizer("gpt", TEXTS, 300)
    model = models.build("gpt", "tiny", tokenizer, task="classify")
    rates = {g["layer_group"]: g["lr"] for g in optim.param_groups(model, lr=1.0, layer_decay=0.5)}
    assert rates == pytest.approx({0: 0.125, 1: 0.25, 2: 0.5, 3: 1.0})
