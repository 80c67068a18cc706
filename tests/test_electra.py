"""ELECTRA: token replacement, the detection loss, and the generator + discriminator pair."""
import math

import pytest
import torch

from transformers import AutoModel, AutoTokenizer

from course_lib import costs, electra, finetune, pretraining
from course_lib.costs import IGNORE


def test_replace_tokens_fills_only_masked_positions_and_marks_real_replacements():
    input_ids = torch.tensor([[5, 1, 7, 1]])           # 1 = [MASK]
    mlm_labels = torch.tensor([[IGNORE, 3, IGNORE, 4]])  # originals 3 and 4 were masked
    logits = torch.full((2, 10), -1e9)                  # the generator's logits at the two masked positions
    logits[0, 3] = 0.0                                  # it is sure: position 1 -> 3 (the original)
    logits[1, 9] = 0.0                                  # position 3 -> 9 (a replacement)
    corrupted, replaced = electra.replace_tokens(input_ids, mlm_labels, logits, torch.tensor([1, 3]))
    assert corrupted.tolist() == [[5, 3, 7, 9]]
    assert replaced.tolist() == [[0.0, 0.0, 0.0, 1.0]]  # a sampled original counts as original


def test_replaced_token_detection_loss_ignores_padding():
    logits = torch.tensor([[2.0, -2.0, 50.0]])
    replaced = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0]])                     # the confident wrong answer sits on padding
    want = -(math.log(torch.sigmoid(torch.tensor(2.0)).item()) + math.log(torch.sigmoid(torch.tensor(2.0)).item())) / 2
    assert electra.replaced_token_detection_loss(logits, replaced, mask).item() == pytest.approx(want, rel=1e-5)
    assert electra.replaced_token_detection_loss(logits, replaced).item() > 10  # without the mask it counts


TEXTS = ["the film was a delight from start to finish", "a dull and lifeless script", "i loved every minute",
         "the acting is wooden and the plot is thin", "a warm and funny story", "nothing works in this mess"] * 8


@pytest.fixture(scope="module")
def course_bert(pretrain_tiny):
    return pretrain_tiny("bert", TEXTS, vocab_size=120, block_size=16)


@pytest.fixture(scope="module")
def tokenizer(course_bert):
    return AutoTokenizer.from_pretrained(course_bert)


def test_generator_and_discriminator_share_one_embedding_layer(tokenizer):
    model = electra.build(tokenizer, generator_layers=1, block_size=16)
    shared = model.discriminator.model.embeddings.tok_embeddings.weight
    assert model.generator.model.embeddings.tok_embeddings.weight is shared
    assert model.generator.decoder.weight is shared
    assert model.get_input_embeddings().weight is shared
    assert len(model.generator.model.layers) == 1 and len(model.discriminator.model.layers) == 2


def test_electra_is_priced_as_generator_plus_discriminator(tokenizer):
    model = electra.build(tokenizer, block_size=16)
    g, d = costs.flops_profile(model.generator), costs.flops_profile(model.discriminator)
    both = costs.flops_profile(model)
    assert both.per_token == g.per_token + d.per_token
    assert both.per_prediction == g.per_prediction > 0  # the vocabulary layer runs at masked positions only
    assert d.per_prediction == 0 and both.attention == g.attention + d.attention
    mlm = costs.flops_profile(pretraining.build_model("bert", "tiny", tokenizer, 16))
    assert both.per_token > mlm.per_token  # a step of ELECTRA costs more than a step of masked LM


def test_the_generator_sees_every_target_as_mask(tokenizer):
    torch.manual_seed(0)
    ids = torch.tensor(tokenizer(TEXTS[:4], padding=True)["input_ids"])
    batch = electra.collator(tokenizer, rate=0.5)([{"input_ids": row.tolist()} for row in ids])
    targets = batch["labels"] != IGNORE
    assert targets.any()
    assert (batch["input_ids"][targets] == tokenizer.mask_token_id).all()
    assert (batch["input_ids"][~targets] == ids[~targets]).all()


def test_a_forward_pass_labels_what_the_generator_changed(tokenizer):
    torch.manual_seed(0)
    model = electra.build(tokenizer, block_size=16)
    ids = torch.tensor(tokenizer(TEXTS[:4], padding="max_length", truncation=True, max_length=16)["input_ids"])
    batch = electra.collator(tokenizer, rate=0.3)([{"input_ids": row.tolist()} for row in ids])
    out = model(**batch)
    assert out.logits.shape == ids.shape and out.replaced.shape == ids.shape
    assert (out.replaced[batch["labels"] == IGNORE] == 0).all()  # only masked positions can be replaced
    assert out.loss.item() == pytest.approx(out.generator_loss.item() + electra.RTD_WEIGHT * out.detection_loss.item(),
                                            rel=1e-5)


def test_pretraining_keeps_the_skip_gram_vectors_and_saves_a_fine_tunable_encoder(course_bert, tmp_path, monkeypatch):
    monkeypatch.setitem(pretraining.CORPORA, "tests", pretraining.Corpus(lambda: [f"{t} {i}" for i, t in enumerate(TEXTS)]))
    trainer = electra.pretrain(tmp_path / "electra", max_steps=3, tokenizer_from=course_bert,
                               embeddings_from=course_bert, corpus="tests", block_size=16, batch_size=4, progress=False)
    vectors = AutoModel.from_pretrained(course_bert).get_input_embeddings().weight
    assert torch.equal(trainer.model.get_input_embeddings().weight, vectors)  # frozen, as in the course BERT
    assert trainer.cost.flops > 0 and len(trainer.history["train"]) == 3
    model, _ = finetune.load_classifier(tmp_path / "electra")
    encoder = trainer.model.discriminator.model.state_dict()
    assert all(torch.equal(v, encoder[k]) for k, v in model.model.state_dict().items())


def test_vector_similarity_sees_collapse(course_bert, tokenizer):
    encoder = AutoModel.from_pretrained(course_bert)
    sentences, tokens = electra.vector_similarity(encoder, tokenizer, TEXTS[:6])
    assert -1 <= tokens <= sentences <= 1  # averaging over a sentence makes vectors more alike
    encoder.final_norm.register_forward_hook(lambda module, inputs, out: torch.ones_like(out))  # collapse
    assert electra.vector_similarity(encoder, tokenizer, TEXTS[:6]) == pytest.approx((1.0, 1.0))
