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


def test_rotary_positions_equal_modernberts_and_depend_on_the_offset_only():
    from transformers import ModernBertConfig
    from transformers.models.modernbert import modeling_modernbert as mb

    cfg = ModernBertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=96, max_position_embeddings=32)
    theta = cfg.rope_parameters["full_attention"]["rope_theta"]
    q, k = torch.randn(1, 2, 10, 32), torch.randn(1, 2, 10, 32)
    cos, sin = mb.ModernBertRotaryEmbedding(cfg)(q, torch.arange(10)[None], layer_type="full_attention")
    theirs_q, theirs_k = mb.apply_rotary_pos_emb(q, k, cos, sin)
    torch.testing.assert_close(A.rotary(q, theta), theirs_q)
    torch.testing.assert_close(A.rotary(k, theta), theirs_k)
    same = torch.randn(32).expand(10, 32)  # one vector at every position: only the positions differ
    dots = A.rotary(same) @ A.rotary(same).T
    torch.testing.assert_close(torch.diagonal(dots, 2), torch.full((8,), float(dots[0, 2])))


def test_gated_feed_forward_equals_modernberts_mlp():
    from transformers import ModernBertConfig
    from transformers.models.modernbert.modeling_modernbert import ModernBertMLP

    cfg = ModernBertConfig(hidden_size=64, intermediate_size=96, mlp_dropout=0.0)
    theirs, ours = ModernBertMLP(cfg).eval(), A.GatedFeedForward(64, 96)
    ours.up.weight.data.copy_(theirs.Wi.weight)
    ours.down.weight.data.copy_(theirs.Wo.weight)
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(ours(x), theirs(x))


def test_the_blocks_stacked_are_gpt2_with_its_tied_output_layer():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    theirs = GPT2LMHeadModel(GPT2Config(vocab_size=200, n_embd=64, n_layer=2, n_head=4, n_positions=32)).eval()
    ids = torch.randint(0, 200, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(A.GPT.from_gpt2(theirs)(ids), theirs(ids).logits, rtol=1e-4, atol=1e-5)
