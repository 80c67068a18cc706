"""What a GPU does differently, shown on a CPU: a second device, and a host that must not wait for it.

A second device: PyTorch's ``meta`` device holds shapes but no data, so a model moved there stands
for a model on a GPU. Every path that feeds it a batch must move the batch there first; a pre-hook
on the model checks the devices of what it receives, then stops the run (a meta model cannot
compute). On today's CPU-only machine ``seen == [model's device]`` could never fail; this can.

No waiting: on a GPU every read of a value on the host (``.item()``, ``.tolist()``, ``bool(t)``, a
boolean-mask index that must count its hits) waits for all queued work. A spy counts every such
read while the trainer runs, outside the work it does on the CPU copies of a batch, and a run that
logs twice must read twice. Two checks inside ``transformers`` also read, once per forward pass
in eager mode: whether an attention mask masks anything (``masking_utils``, to skip building it)
and whether unmasked input looks padded (``warn_if_padding_and_no_attention_mask``). They are the
library's, skipped when the model runs under ``torch.compile`` (``TrainConfig(compile=True)``); the
spy lists them apart, and the course's own code must add none.
"""
import traceback

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from course_lib import (cli, costs, distillation, electra, finetune, gpt_finetune as gf, models, objectives,
                        pretraining, prompting, trainer as trainer_module)
from course_lib.data import Split
from course_lib.tokenization import train_tokenizer
from course_lib.trainer import StepBatches, Trainer, TrainConfig, accuracy

TEXTS = [f"the film is {w} and the actors are {v} ." for w in ("good", "bad", "long", "dull")
         for v in ("great", "awful", "fine")] * 4
META = torch.device("meta")


class Reached(Exception):
    """The model got its batch on its own device: the path is right, and a meta model can go no further."""


def on_meta(model):
    """``model`` on the meta device, every submodule checking its inputs' devices before it runs."""
    model.to(META)

    def check(module, args, kwargs):
        tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
        wrong = {str(t.device) for t in tensors if t.device != META}
        assert not wrong, f"{type(module).__name__} on meta got tensors on {sorted(wrong)}"
        raise Reached
    for module in model.modules():
        module.register_forward_pre_hook(check, with_kwargs=True)
    return model


@pytest.fixture(scope="module")
def bert_tokenizer():
    return train_tokenizer("bert", TEXTS, vocab_size=80)


@pytest.fixture(scope="module")
def gpt_tokenizer():
    return train_tokenizer("gpt", TEXTS, vocab_size=300)


def sentence_classifier(tokenizer):
    return models.build("bert", "tiny", tokenizer, task="classify", max_length=32)


def labelled(n=8):
    return Split(TEXTS[:n], [i % 2 for i in range(n)])


def gpt1(gpt_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt") / "gpt"
    model = models.build("gpt", "tiny", gpt_tokenizer, max_length=32)
    model.save_pretrained(path), gpt_tokenizer.save_pretrained(path)
    return gf.load_gpt1_classifier(path)


# --- a second device ------------------------------------------------------------------------------

EVALUATIONS = {
    "trainer.evaluate": lambda tok, _: trainer_module.evaluate(
        on_meta(sentence_classifier(tok)), finetune.encode(tok, labelled()), finetune.padding_collator(tok),
        accuracy_fn=accuracy),
    "finetune.predict": lambda tok, _: finetune.predict(on_meta(sentence_classifier(tok)), tok, TEXTS[:4]),
    "finetune.masked_lm_loss": None,  # needs a saved checkpoint: below
    "electra.vector_similarity": lambda tok, _: electra.vector_similarity(
        on_meta(models.build("bert", "tiny", tok, task="classify", max_length=32).model), tok, TEXTS[:4]),
    "distillation.sentences_per_second": lambda tok, _: distillation.sentences_per_second(
        on_meta(sentence_classifier(tok)), tok, TEXTS[:4]),
    "pretraining.fill_mask": lambda tok, _: pretraining.fill_mask(
        on_meta(pretraining.build_model("bert", "tiny", tok, 32)), tok, "the film is [MASK] ."),
}


@pytest.mark.parametrize("path", [name for name, run in EVALUATIONS.items() if run])
def test_every_evaluation_moves_its_batches_to_the_models_device(path, bert_tokenizer):
    with pytest.raises(Reached):
        EVALUATIONS[path](bert_tokenizer, None)


def test_gpt1_evaluation_and_prompting_move_their_batches(gpt_tokenizer, tmp_path_factory):
    model, tokenizer = gpt1(gpt_tokenizer, tmp_path_factory)
    examples = gf.encode(tokenizer, labelled())
    with pytest.raises(Reached):
        gf.evaluate(on_meta(model), examples, gf.model_collator(model, tokenizer))
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(gpt_tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=32))
    with pytest.raises(Reached):
        prompting.label_logprobs(on_meta(lm), gpt_tokenizer, ["the film is good . it was"], (" great", " awful"))


def test_forgetting_is_measured_on_the_classifiers_device(bert_tokenizer, tmp_path, monkeypatch):
    path = tmp_path / "bert"
    pretraining.build_model("bert", "tiny", bert_tokenizer, 32).save_pretrained(path)
    bert_tokenizer.save_pretrained(path)
    blocks = pretraining.pack(bert_tokenizer, TEXTS, 16)
    load = finetune.AutoModelForMaskedLM.from_pretrained
    monkeypatch.setattr(finetune.AutoModelForMaskedLM, "from_pretrained", lambda *a, **k: on_meta(load(*a, **k)))
    with pytest.raises(Reached):
        finetune.masked_lm_loss(finetune.classifier(path).to(META), path, blocks)


def test_the_command_line_evaluates_on_the_device_it_names(bert_tokenizer, tmp_path, monkeypatch):
    path = tmp_path / "clf"
    sentence_classifier(bert_tokenizer).save_pretrained(path)
    bert_tokenizer.save_pretrained(path)
    loaded = []

    def load_on_meta(*args, **kwargs):
        model, tokenizer = load_classifier(*args, **kwargs)
        loaded.append(model)
        return on_meta(model), tokenizer
    load_classifier = finetune.load_classifier
    monkeypatch.setattr(cli.finetune, "load_classifier", load_on_meta)
    monkeypatch.setattr(cli, "pick_device", lambda name: META)
    monkeypatch.setattr(cli.data, "load", lambda name: type("Task", (), {
        "label_names": ["negative", "positive"], "__getitem__": lambda self, split: labelled()})())
    with pytest.raises(Reached):
        cli.cmd_evaluate(type("Args", (), {"task": "sst2", "split": "dev", "checkpoint": path, "device": "meta",
                                           "precision": "fp32"})())
    assert loaded


def test_a_training_step_moves_its_batches_to_the_trainers_device(bert_tokenizer):
    model = sentence_classifier(bert_tokenizer)
    trainer = Trainer(model, finetune.encode(bert_tokenizer, labelled()), finetune.padding_collator(bert_tokenizer),
                      TrainConfig(max_steps=1, batch_size=4, progress=False))
    trainer.device = META
    on_meta(model)
    with pytest.raises(Reached):
        trainer.train_step(trainer.step_batches(0)[0])


# --- no waiting for the device between logs ------------------------------------------------------

READS = ("item", "tolist", "cpu", "numpy", "nonzero", "__bool__", "__int__", "__float__", "__index__")


LIBRARY_CHECKS = ("masking_utils.py", "warn_if_padding_and_no_attention_mask")


class ReadSpy:
    """Counts every read of a tensor's values on the host, except while the trainer works on a batch's CPU copy.

    ``reads``: the course's; ``library``: those made inside transformers' ``LIBRARY_CHECKS``.
    """

    def __init__(self, monkeypatch):
        self.reads, self.library, self.host = [], [], 0
        for name in READS:
            self._wrap(monkeypatch, torch.Tensor, name)
        for name in ("__getitem__", "__setitem__"):
            self._wrap(monkeypatch, torch.Tensor, name, only_boolean_index=True)
        monkeypatch.setattr(torch, "nonzero", self._counting(torch.nonzero, "torch.nonzero"))
        for owner, name in ((Trainer, "host_side"), (StepBatches, "__getitem__")):
            original = getattr(owner, name)
            monkeypatch.setattr(owner, name, self._on_host(original))

    def _wrap(self, monkeypatch, owner, name, only_boolean_index=False):
        original = getattr(owner, name)

        def spy(tensor, *args, **kwargs):
            index = args[0] if args else None
            boolean = isinstance(index, torch.Tensor) and index.dtype == torch.bool or (
                isinstance(index, tuple) and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index))
            if not self.host and (not only_boolean_index or boolean):
                self.record(name)
            return original(tensor, *args, **kwargs)
        monkeypatch.setattr(owner, name, spy)

    def _counting(self, function, name):
        def spy(*args, **kwargs):
            if not self.host:
                self.record(name)
            return function(*args, **kwargs)
        return spy

    def record(self, name):
        stack = "".join(f"{frame.filename} {frame.name}" for frame in traceback.extract_stack())
        (self.library if any(check in stack for check in LIBRARY_CHECKS) else self.reads).append(name)

    def _on_host(self, method):
        def host_side(*args, **kwargs):
            self.host += 1
            try:
                return method(*args, **kwargs)
            finally:
                self.host -= 1
        return host_side


def runs(bert_tokenizer, gpt_tokenizer, tmp_path_factory):
    """(model, examples, collate, targets) for each kind of run the course trains."""
    blocks_bert = pretraining.pack(bert_tokenizer, TEXTS, 16)
    blocks_gpt = pretraining.pack(gpt_tokenizer, TEXTS, 16)
    gpt1_model, gpt1_tokenizer = gpt1(gpt_tokenizer, tmp_path_factory)
    student = distillation.Student(sentence_classifier(bert_tokenizer))
    soft = distillation.soft_examples(bert_tokenizer, TEXTS, torch.randn(len(TEXTS), 2))
    return {
        "course BERT, masked LM": (pretraining.build_model("bert", "tiny", bert_tokenizer, 16), blocks_bert,
                                   objectives.masked_lm_collator(bert_tokenizer, positions=True), costs.labelled),
        "course GPT, causal LM": (pretraining.build_model("gpt", "tiny", gpt_tokenizer, 16), blocks_gpt,
                                  objectives.causal_lm_collator(gpt_tokenizer), trainer_module.causal_targets),
        "classifier": (sentence_classifier(bert_tokenizer), finetune.encode(bert_tokenizer, labelled(16)),
                       finetune.padding_collator(bert_tokenizer), costs.labelled),
        "GPT-1 classifier": (gpt1_model, gf.encode(gpt1_tokenizer, labelled(16)),
                             gf.model_collator(gpt1_model, gpt1_tokenizer), gf.len_labels),
        "ELECTRA": (electra.build(bert_tokenizer, block_size=16), blocks_bert, electra.collator(bert_tokenizer),
                    costs.labelled),
        "distilled student": (student, soft, finetune.padding_collator(bert_tokenizer), costs.labelled),
    }


KINDS = ("course BERT, masked LM", "course GPT, causal LM", "classifier", "GPT-1 classifier", "ELECTRA",
         "distilled student")


@pytest.mark.parametrize("kind", KINDS)
def test_the_loop_reads_from_the_device_only_when_it_logs(kind, bert_tokenizer, gpt_tokenizer, tmp_path_factory,
                                                           monkeypatch):
    model, examples, collate, targets = runs(bert_tokenizer, gpt_tokenizer, tmp_path_factory)[kind]
    trainer = Trainer(model, examples, collate, TrainConfig(max_steps=6, batch_size=4, log_every=3, progress=False),
                      targets=targets)
    spy = ReadSpy(monkeypatch)
    trainer.fit()
    assert len(trainer.history["train"]) == 6
    assert spy.reads == ["tolist", "tolist"], f"{kind}: reads between logs: {spy.reads}"
    assert len(spy.library) <= 2 * 6, f"{kind}: transformers' mask checks read more than twice a step"
