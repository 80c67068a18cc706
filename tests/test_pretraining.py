"""Pretraining: packing, 80/10/10 masking, the masked-only output layer, the skip-gram stage, resume,
the cached checkpoints, the fine-tuning starts."""
import json
import math

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, ModernBertForMaskedLM

from course_lib import checkpoints, finetune, hardware, models, objectives, pretraining, runtime, scaling
from course_lib.exercises import CheckFailed
from course_lib.exercises import pretraining as checks
from course_lib.tokenization import train_tokenizer
from course_lib.checkpoints import STATE_JSON
from course_lib.errors import CheckpointError
from course_lib.trainer import TrainConfig, accuracy

TOY = [f"the film is {a} {w} and the actors are {v} ." for w in ("good", "bad", "long", "funny", "dull")
       for v in ("great", "awful", "fine", "young") for a in ("very", "so", "quite", "rather", "truly", "not",
                                                            "really", "too", "fairly", "oddly")]


@pytest.fixture
def toy_corpus(monkeypatch, tmp_path):
    monkeypatch.setitem(pretraining.CORPORA, "toy", pretraining.Corpus(lambda: TOY))
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "cache"))
    return "toy"


@pytest.fixture(scope="module")
def bert_tokenizer():
    return train_tokenizer("bert", TOY, vocab_size=60)


def test_bert_blocks_are_packed_between_cls_and_sep(bert_tokenizer):
    blocks = pretraining.pack(bert_tokenizer, TOY, block_size=16)
    assert all(len(b["input_ids"]) == 16 for b in blocks)
    assert {b["input_ids"][0] for b in blocks} == {bert_tokenizer.cls_token_id}
    assert {b["input_ids"][-1] for b in blocks} == {bert_tokenizer.sep_token_id}


def test_masking_is_80_10_10_and_spares_special_tokens(bert_tokenizer):
    torch.manual_seed(0)
    ids = torch.randint(len(bert_tokenizer.all_special_ids), len(bert_tokenizer), (400, 64))
    ids[:, 0], ids[:, -1] = bert_tokenizer.cls_token_id, bert_tokenizer.sep_token_id
    inputs, labels = objectives.mask_tokens(ids, bert_tokenizer, rate=0.15)
    chosen = labels != -100
    assert not chosen[:, [0, -1]].any()
    assert 0.14 < chosen.float().mean() < 0.16
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    assert 0.78 < (inputs[chosen] == bert_tokenizer.mask_token_id).float().mean() < 0.82


def test_sparse_output_layer_gives_the_dense_loss(bert_tokenizer):
    model = pretraining.build_model("bert", "tiny", bert_tokenizer, block_size=16).eval()
    assert model.config.sparse_prediction
    dense = models.build("bert", "tiny", bert_tokenizer, max_length=16).eval()  # every position
    assert not dense.config.sparse_prediction
    dense.load_state_dict(model.state_dict())
    batch = objectives.masked_lm_collator(bert_tokenizer)(pretraining.pack(bert_tokenizer, TOY, 16)[:8])
    sparse_out, dense_out = model(**batch), dense(**batch)
    assert math.isclose(sparse_out.loss.item(), dense_out.loss.item(), rel_tol=1e-5)
    assert sparse_out.logits.shape == (int((batch["labels"] != -100).sum()), len(bert_tokenizer))
    assert accuracy(sparse_out.logits, batch["labels"]) == accuracy(dense_out.logits, batch["labels"])
    located = objectives.masked_lm_collator(bert_tokenizer, positions=True)
    torch.manual_seed(0)
    batch = located(pretraining.pack(bert_tokenizer, TOY, 16)[:8])
    plain = ModernBertForMaskedLM(model.config).eval()  # transformers' own class, the same weights
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        positioned = model(**batch)
        reference = plain(**{k: v for k, v in batch.items() if k != "masked_positions"})
    assert torch.equal(positioned.logits, reference.logits) and torch.equal(positioned.loss, reference.loss)


def test_pretraining_resumes_exactly(toy_corpus, tmp_path):
    args = dict(corpus=toy_corpus, vocab_size=300, block_size=16, batch_size=4, lr=1e-3, schedule="constant",
                progress=False)
    straight = pretraining.pretrain("gpt", "tiny", tmp_path / "straight", max_steps=4, **args)
    pretraining.pretrain("gpt", "tiny", tmp_path / "resumed", max_steps=2, **args)
    resumed = pretraining.pretrain("gpt", "tiny", tmp_path / "resumed", max_steps=4, **args)
    assert [h["loss"] for h in resumed.history["train"]] == [h["loss"] for h in straight.history["train"]]


def test_bert_checkpoint_resumes_and_loads_as_a_standard_model(toy_corpus, tmp_path):
    args = dict(corpus=toy_corpus, vocab_size=60, block_size=16, batch_size=4, min_lr_ratio=0.1, progress=False)
    pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=2, **args)
    trainer = pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=3, **args)
    assert [h["step"] for h in trainer.history["train"]] == [1, 2, 3]
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path / "bert")) is ModernBertForMaskedLM


@pytest.mark.parametrize("change", [dict(arch="gpt"), dict(preset="small"), dict(vocab_size=61),
                                    dict(block_size=32), dict(corpus="wiki"), dict(mask_rate=0.3)])
def test_resuming_refuses_another_run_naming_the_difference(toy_corpus, tmp_path, change):
    args = dict(arch="bert", preset="tiny", corpus=toy_corpus, vocab_size=60, block_size=16, mask_rate=0.15,
                batch_size=4, min_lr_ratio=0.1, progress=False)
    pretraining.pretrain(out_dir=tmp_path / "bert", max_steps=1, **args)
    (key, value), = change.items()
    with pytest.raises(CheckpointError, match=f"{key} .* \\(asked: {value!r}\\)"):
        pretraining.pretrain(out_dir=tmp_path / "bert", max_steps=2, **{**args, **change})


def test_a_truncated_checkpoint_is_refused_naming_the_file(toy_corpus, tmp_path):
    args = dict(corpus=toy_corpus, vocab_size=60, block_size=16, batch_size=4, min_lr_ratio=0.1, progress=False)
    pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=1, **args)
    weights = tmp_path / "bert" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt or truncated"):
        pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=2, **args)


def test_word2vec_stage_sets_the_embeddings_and_mlm_leaves_them_frozen(toy_corpus, tmp_path):
    args = dict(corpus=toy_corpus, vocab_size=60, block_size=16, batch_size=4, word2vec_epochs=1, min_lr_ratio=0.1,
                progress=False)
    first = pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=2, **args)
    stage1 = first.history["word2vec"]
    assert stage1["epochs"] == 1 and stage1["seconds"] > 0 and stage1["words_per_second"] > 0
    assert stage1["pairs"] > 0 and scaling.skipgram_stage(tmp_path / "bert")["pairs"] == stage1["pairs"]  # saved
    embeddings = first.model.get_input_embeddings().weight.detach().clone()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "bert")
    used = sorted({i for ids in tokenizer(TOY, add_special_tokens=False)["input_ids"] for i in ids})
    assert torch.allclose(embeddings[used].norm(dim=1), torch.tensor(pretraining.EMBEDDING_NORM))
    layer = first.model.model.layers[0].mlp.Wo.weight.detach().clone()
    del args["word2vec_epochs"]  # the checkpoint's saved configuration, not the caller, says the embeddings are frozen
    resumed = pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=4, **args)
    assert torch.equal(resumed.model.get_input_embeddings().weight, embeddings)  # frozen, also after resuming
    assert not torch.equal(resumed.model.model.layers[0].mlp.Wo.weight, layer)  # the encoder trains
    assert "skip-gram embeddings (1 epochs)" in pretraining.describe_checkpoint(tmp_path / "bert")


def test_classifier_starts_differ_only_where_they_should(toy_corpus, tmp_path):
    args = dict(corpus=toy_corpus, vocab_size=60, block_size=16, batch_size=4, min_lr_ratio=0.1, progress=False)
    pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=2, **args)
    saved = AutoModelForMaskedLM.from_pretrained(tmp_path / "bert")
    starts = {start: finetune.classifier(tmp_path / "bert", start) for start in finetune.STARTS}
    same_embeddings = {s: torch.equal(m.get_input_embeddings().weight, saved.get_input_embeddings().weight)
                       for s, m in starts.items()}
    same_layer = {s: torch.equal(m.model.layers[0].attn.Wqkv.weight, saved.model.layers[0].attn.Wqkv.weight)
                  for s, m in starts.items()}
    assert same_embeddings == {"pretrained": True, "embeddings": True, "scratch": False}
    assert same_layer == {"pretrained": True, "embeddings": False, "scratch": False}
    assert starts["pretrained"].config.classifier_dropout == finetune.FINETUNE_DROPOUT["modernbert"]["classifier_dropout"]
    with pytest.raises(ValueError, match="start must be one of"):
        finetune.classifier(tmp_path / "bert", "random")


def test_course_checkpoint_trains_once_and_prints_nothing(toy_corpus, monkeypatch, capsys):
    recipe = dict(preset="tiny", max_steps=3, corpus=toy_corpus, vocab_size=60, block_size=16, batch_size=4,
                  progress=False)
    monkeypatch.setitem(pretraining.RECIPES, ("gpt", "cpu"), recipe)
    path = pretraining.course_checkpoint("gpt")
    saved = (path / STATE_JSON).stat().st_mtime_ns
    assert pretraining.course_checkpoint("gpt") == path
    assert (path / STATE_JSON).stat().st_mtime_ns == saved  # loaded, not retrained
    assert capsys.readouterr().out == ""
    history, cost = pretraining.load_run(path)
    assert len(history["train"]) == 3 and cost.tokens == 3 * 4 * 16
    assert json.loads((path / STATE_JSON).read_text())["step"] == 3


def test_unigram_perplexity_passes_its_check_and_beats_uniform():
    checks.check_unigram_perplexity(pretraining.unigram_perplexity)
    assert pretraining.unigram_perplexity([0, 0, 0, 1], [0, 0], 50) < 50


def test_exercise_checks_accept_the_course_code_and_explain_mistakes():
    from course_lib import generation

    checks.check_top_p(lambda logits, p: generation.filter_logits(logits, top_p=p))
    with pytest.raises(CheckFailed, match="sort"):
        checks.check_top_p(lambda logits, p: logits.masked_fill(logits.softmax(-1).cumsum(-1) > p, float("-inf")))
    checks.check_masked_accuracy(lambda logits, labels: accuracy(logits, labels)[0] / accuracy(logits, labels)[1])
    with pytest.raises(CheckFailed, match="-100"):
        checks.check_masked_accuracy(lambda logits, labels: (logits.argmax(-1) == labels).float().mean())


def test_cpu_profile_pins_the_cpu_and_fp32_and_the_cache_says_so(monkeypatch, tmp_path):
    """The committed notebook outputs come from CPU checkpoints: a GPU in the machine must not change them."""
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(runtime.PROFILE_ENV, "cpu")
    for arch in ("gpt", "bert"):
        recipe = pretraining.RECIPES[arch, "cpu"]
        assert (recipe["device"], recipe["precision"]) == ("cpu", "fp32")
        assert pretraining.checkpoint_dir(arch).name.startswith(f"{arch}-cpu-cpu-fp32-")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hardware, "native_bf16", lambda device: True)
    assert TrainConfig().device is None and hardware.pick_device(TrainConfig().device).type == "cpu"  # fine-tuning too
    monkeypatch.setenv(runtime.PROFILE_ENV, "gpu")
    assert pretraining.checkpoint_dir("bert").name.startswith("bert-gpu-cuda-bf16-")
    assert hardware.pick_device(TrainConfig().device).type == "cuda"


def test_fill_mask_sends_its_inputs_to_the_models_device(toy_corpus, tmp_path):
    trainer = pretraining.pretrain("bert", "tiny", tmp_path / "bert", max_steps=1, corpus=toy_corpus, vocab_size=60,
                                   block_size=16, batch_size=4, progress=False)
    model, seen = trainer.model.eval(), []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].device),
                                    with_kwargs=True)
    guesses = pretraining.fill_mask(model, trainer.tokenizer, "the film is [MASK] .", k=3)
    assert len(guesses) == 3 and seen == [next(model.parameters()).device]


def test_a_checkpoint_is_written_by_one_process_at_a_time(tmp_path):
    from filelock import Timeout
    target = tmp_path / "checkpoints" / "bert"
    with checkpoints.exclusive(target):
        with pytest.raises(Timeout):
            checkpoints.exclusive(target).acquire(timeout=0.1)  # a second holder has to wait
    with checkpoints.exclusive(target):  # released: the next one gets it
        pass
