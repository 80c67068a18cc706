"""The from-scratch attention must agree with PyTorch's and with transformers' layers."""
import pytest
import torch
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

from course_lib import attention as A


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_sdpa_matches_pytorch_with_and_without_causal_mask():
    q, k, v = (torch.randn(2, 3, 7, 8) for _ in range(3))
    ours, weights = A.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(ours, torch.nn.functional.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 7))
    ours, _ = A.scaled_dot_product_attention(q, k, v, A.causal_mask(7))
    torch.testing.assert_close(ours, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_causal_mask_blocks_the_future_and_padding_mask_blocks_pads():
    weights = A.scaled_dot_product_attention(*(torch.randn(1, 1, 5, 4) for _ in range(3)), A.causal_mask(5))[1]
    assert torch.all(weights[0, 0].triu(1) == 0)
    mask = A.padding_mask(torch.tensor([[1, 1, 1, 0, 0]]))
    assert mask.shape == (1, 1, 1, 5)
    weights = A.scaled_dot_product_attention(*(torch.randn(1, 2, 5, 4) for _ in range(3)), mask)[1]
    assert torch.all(weights[..., 3:] == 0)


def test_split_and_merge_heads_are_inverse():
    x = torch.randn(2, 5, 12)
    assert A.split_heads(x, 3).shape == (2, 3, 5, 4)
    torch.testing.assert_close(A.merge_heads(A.split_heads(x, 3)), x)


def test_layer_norm_matches_pytorch():
    x, w, b = torch.randn(3, 6), torch.randn(6), torch.randn(6)
    torch.testing.assert_close(A.layer_norm(x, w, b, 1e-5), torch.nn.functional.layer_norm(x, (6,), w, b, 1e-5))


def test_sinusoidal_positions_values():
    pe = A.sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16)
    torch.testing.assert_close(pe[0, 0::2], torch.zeros(8))
    torch.testing.assert_close(pe[0, 1::2], torch.ones(8))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))


@torch.no_grad()
def test_block_equals_a_bert_layer_with_padding():
    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=64, attn_implementation="eager")
    bert = BertModel(cfg).eval()
    ids, mask = torch.randint(0, 50, (2, 6)), torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    out = bert(ids, attention_mask=mask, output_hidden_states=True)
    block = A.block_from_bert_layer(bert.encoder.layer[0], 4, cfg.layer_norm_eps)
    ours = block(out.hidden_states[0], A.padding_mask(mask))
    keep = mask.bool()
    torch.testing.assert_close(ours[keep], out.hidden_states[1][keep])


@torch.no_grad()
def test_block_equals_a_gpt2_block_with_causal_mask():
    cfg = GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=4, n_positions=16)
    gpt = GPT2Model(cfg).eval()
    ids = torch.randint(0, 50, (2, 7))
    block = A.block_from_gpt2_block(gpt.h[0], 4, cfg.layer_norm_epsilon)
    ours = gpt.ln_f(block(gpt.wte(ids) + gpt.wpe(torch.arange(7)), A.causal_mask(7)))
    torch.testing.assert_close(ours, gpt(ids).last_hidden_state)


def test_attention_cost_is_quadratic_in_length():
    small, big = A.attention_cost(128, 64, 4), A.attention_cost(256, 64, 4)
    assert big["score_flops"] == 4 * small["score_flops"]
    assert big["projection_flops"] == 2 * small["projection_flops"]


def test_multi_head_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible"):
        A.MultiHeadAttention(10, 3)
