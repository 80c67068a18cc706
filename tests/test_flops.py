"""The trainer's FLOPs against PyTorch's own count (``FlopCounterMode``), on every kind of model the course trains.

``FlopCounterMode`` counts the matrix multiplies one forward and backward pass really runs. Attention
is set to the eager implementation, whose matmuls it can see (it has no formula for the CPU kernel of
``scaled_dot_product_attention``). The course's formula leaves out what the standard accounting leaves
out (norms, softmax); the bounds say how close it must come.
"""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel, ModernBertConfig,
                          ModernBertForSequenceClassification, T5Config, T5ForConditionalGeneration)

from course_lib import costs, electra, gpt_finetune as gf, models, optim
from course_lib.distillation import Student
from course_lib.tokenization import train_tokenizer

B, T, V, H = 8, 32, 512, 64
BERT = dict(vocab_size=V, hidden_size=H, num_hidden_layers=2, num_attention_heads=2, intermediate_size=4 * H,
            max_position_embeddings=T, global_attn_every_n_layers=1, pad_token_id=0)


def counted(model, batch) -> float:
    """FLOPs of one training step's forward and backward, as PyTorch counts them."""
    for module in model.modules():
        if hasattr(module, "set_attn_implementation") and hasattr(module, "config"):
            module.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    return counter.get_total_flops()


def ids(vocab=V, rows=B):
    return torch.randint(5, vocab, (rows, T), generator=torch.Generator().manual_seed(0))


def masked(input_ids):
    labels = input_ids.masked_fill(torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(1)) > 0.15,
                                   -100)
    return {"input_ids": input_ids, "labels": labels, "masked_positions": (labels.flatten() != -100).nonzero()[:, 0]}


def gpt():
    return GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=H, n_layer=2, n_head=2, n_positions=T))


def course_bert(frozen_embeddings=False):
    model = models.ModernBertForMaskedLMAtPositions(ModernBertConfig(**BERT, sparse_prediction=True))
    model.get_input_embeddings().weight.requires_grad_(not frozen_embeddings)
    return model


def classifier(kind, top_groups=None):
    model = (ModernBertForSequenceClassification(ModernBertConfig(**BERT, num_labels=2, classifier_pooling="mean"))
             if kind == "modernbert" else
             BertForSequenceClassification(BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=3,
                                                      num_attention_heads=2, intermediate_size=4 * H,
                                                      max_position_embeddings=T)))
    optim.freeze_to(model, optim.trainable_groups_to_k(model, top_groups))
    return model


def gpt1(lm_weight):
    config = GPT2Config(vocab_size=V, n_embd=H, n_layer=2, n_head=2, n_positions=T, num_labels=2, pad_token_id=0)
    config.lm_weight, config.extract_token_id, config.gpt1_token_ids = lm_weight, V - 1, [V - 3, V - 2, V - 1]
    return gf.GPT1Classifier(config).train()


def gpt1_batch(model):
    input_ids = ids(V - 3)
    input_ids[:, 0], input_ids[:, -1] = V - 3, V - 1
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
             "labels": torch.randint(0, 2, (B,))}
    return {**batch, "extract_positions": gf.find_extract(input_ids, V - 1),
            "lm_positions": gf.lm_positions(input_ids, batch["attention_mask"], model.config.gpt1_token_ids)}


def electra_model():
    tokenizer = train_tokenizer("bert", ["the film is good and the actors are great", "a dull plot"] * 20, 300)
    model = electra.build(tokenizer, block_size=T)
    return model, masked(ids(len(tokenizer)))


def labels_of(n=B):
    return torch.randint(0, 2, (n,))


CASES = {  # name: (model, batch, how close the formula must come)
    "course GPT, causal LM": lambda: (gpt(), {"input_ids": ids(), "labels": ids()}, 0.02),
    "course BERT, masked LM": lambda: (course_bert(), masked(ids()), 0.01),
    "course BERT stage 2, frozen tied embeddings": lambda: (course_bert(frozen_embeddings=True), masked(ids()), 0.01),
    "ModernBERT classifier, all trains": lambda: (classifier("modernbert"), {"input_ids": ids(), "labels": labels_of()},
                                                  0.01),
    "ModernBERT classifier, head only": lambda: (classifier("modernbert", 1), {"input_ids": ids(), "labels": labels_of()},
                                                 0.01),
    "BERT (MiniLM) classifier, all trains": lambda: (classifier("bert"), {"input_ids": ids(), "labels": labels_of()},
                                                     0.02),
    "BERT (MiniLM) classifier, head only": lambda: (classifier("bert", 1), {"input_ids": ids(), "labels": labels_of()},
                                                    0.02),
    # gradual unfreezing: the lowest trainable layer's query/key/value are charged an input gradient
    # autograd does not compute (they read a frozen layer's output), a few percent of a small model
    "BERT (MiniLM) classifier, top 2 layers": lambda: (classifier("bert", 3), {"input_ids": ids(), "labels": labels_of()},
                                                       0.06),
    "GPT-1 classifier, λ = 0.5": lambda: (m := gpt1(0.5), gpt1_batch(m), 0.02),
    "GPT-1 classifier, λ = 0": lambda: (m := gpt1(0.0), gpt1_batch(m), 0.02),
    "ELECTRA generator + discriminator": lambda: (*electra_model(), 0.01),
    "distilled student": lambda: (Student(classifier("modernbert")),
                                  {"input_ids": ids(), "attention_mask": torch.ones(B, T, dtype=torch.long),
                                   "teacher_logits": torch.randn(B, 2)}, 0.01),
    # T5: the decoder's own and cross attention are not counted (targets are a tenth of the input here)
    "T5 span corruption": lambda: (T5ForConditionalGeneration(T5Config(
        vocab_size=V, d_model=H, d_kv=H // 2, d_ff=4 * H, num_layers=2, num_heads=2, dropout_rate=0.0,
        decoder_start_token_id=0, pad_token_id=0)), {"input_ids": ids(), "labels": ids()[:, :4].contiguous()}, 0.12),
}


@pytest.mark.parametrize("case", CASES)
def test_formula_agrees_with_pytorchs_count(case):
    torch.manual_seed(0)
    model, batch, bound = CASES[case]()
    formula, measured = costs.flops_profile(model).of(batch), counted(model, batch)
    assert formula == pytest.approx(measured, rel=bound), f"{case}: formula {formula:.4g}, counted {measured:.4g}"


def test_a_frozen_body_costs_about_a_third():
    everything, head_only = classifier("modernbert"), classifier("modernbert", 1)
    batch = {"input_ids": ids(), "labels": labels_of()}
    ratio = costs.flops_profile(head_only).of(batch) / costs.flops_profile(everything).of(batch)
    assert 0.3 < ratio < 0.36  # forward only (2) against forward and backward (6), the head aside


def test_sparse_prediction_needs_the_number_of_predictions():
    with pytest.raises(ValueError, match="n_predicted"):
        costs.flops_profile(course_bert()).batch(40, 16)
