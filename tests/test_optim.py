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


def test_lr_slice_spaces_the_three_parts_geometrically():
    tokenizer = train_tokenizer("bert", TEXTS, 300)
    model = models.build("bert", "tiny", tokenizer, task="classify")
    n = optim.num_layers(model)
    rates = {g["layer_group"]: g["lr"] for g in optim.param_groups(model, lr=1.0, lr_slice=0.01)}
    assert rates[0] == pytest.approx(0.01)                                # embeddings: the slice's low end
    assert all(rates[g] == pytest.approx(0.1) for g in range(1, n + 1))  # every layer of the body: between
    assert rates[n + 1] == pytest.approx(1.0)                            # the head: lr itself


def test_layer_decay_and_lr_slice_are_refused_together():
    from course_lib.errors import ConfigError
    from course_lib.trainer import TrainConfig
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(layer_decay=0.8, lr_slice=0.1)
