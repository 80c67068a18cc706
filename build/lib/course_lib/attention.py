"""Attention (어텐션) and one Transformer block, written from scratch in small functions.

Every piece is a few lines of plain PyTorch so a learner can read it next to the formula:

    attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V

Masks are boolean tensors where ``True`` means "may attend". The block can be loaded with the
weights of a ``transformers`` BERT layer (post-norm) or GPT-2 block (pre-norm), so notebook 03 can
check, number for number, that the from-scratch code computes what the library computes.
"""
import math
import time

import torch
import torch.nn.functional as F
from torch import nn


# --- the core: scaled dot-product attention and its masks --------------------------------------

def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights). ``q``: (..., T_q, d), ``k``/``v``: (..., T_k, d).

    Dividing by sqrt(d) keeps the scores' variance near 1 whatever the head size, so the softmax
    does not saturate into a one-hot (which would give vanishing gradients).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def causal_mask(length: int) -> torch.Tensor:
    """(T, T) lower-triangular: position i may look at positions 0..i only (no peeking ahead)."""
    return torch.tril(torch.ones(length, length, dtype=torch.bool))


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) 1/0 tokenizer mask -> (B, 1, 1, T) boolean: every query ignores padded keys."""
    return attention_mask.bool()[:, None, None, :]


# --- multi-head attention ----------------------------------------------------------------------

def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, d_model) -> (B, heads, T, d_model / heads): each head works in its own subspace."""
    b, t, d = x.shape
    return x.view(b, t, n_heads, d // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, T, d_head) -> (B, T, heads * d_head): concatenate the heads again."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class MultiHeadAttention(nn.Module):
    """Project to queries, keys, values; attend in ``n_heads`` subspaces; project back."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, x, mask=None):
        q, k, v = (split_heads(proj(x), self.n_heads) for proj in (self.q, self.k, self.v))
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        self.last_weights = weights  # kept for plotting; (B, heads, T, T)
        return self.o(merge_heads(out))


# --- the rest of the block -----------------------------------------------------------------------

def layer_norm(x, weight, bias, eps: float = 1e-5):
    """Normalise each token's vector to mean 0, variance 1, then rescale: keeps activations in range."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


class LayerNorm(nn.Module):
    def __init__(self, d_model: int, eps: float):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(d_model)), nn.Parameter(torch.zeros(d_model)), eps

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)


class FeedForward(nn.Module):
    """Two linear maps with a GELU between: the per-token 'thinking' step, 4x wider inside."""

    def __init__(self, d_model: int, d_ff: int, gelu: str = "none"):
        super().__init__()
        self.up, self.down, self.gelu = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model), gelu

    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate=self.gelu))


class TransformerBlock(nn.Module):
    """Attention then feed-forward, each wrapped in a residual connection and a layer norm.

    ``pre_norm=False`` is BERT / the original Transformer: x = LN(x + sublayer(x)).
    ``pre_norm=True`` is GPT-2: x = x + sublayer(LN(x)), which trains more stably when deep.
    ``gelu``: ``"none"`` is BERT's exact GELU, ``"tanh"`` GPT-2's approximation.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, pre_norm: bool = False,
                 eps: float = 1e-12, gelu: str = "none"):
        super().__init__()
        self.attn, self.ff = MultiHeadAttention(d_model, n_heads), FeedForward(d_model, d_ff, gelu)
        self.ln1, self.ln2 = LayerNorm(d_model, eps), LayerNorm(d_model, eps)
        self.pre_norm = pre_norm

    def forward(self, x, mask=None):
        if self.pre_norm:
            x = x + self.attn(self.ln1(x), mask)
            return x + self.ff(self.ln2(x))
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.ff(x))


# --- positions -------------------------------------------------------------------------------------

def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """(T, d) encodings of Vaswani et al. 2017: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...).

    Each pair of dimensions is a clock at its own frequency, so relative offsets are linear maps.
    BERT and GPT instead *learn* a position table; the idea (add a position vector) is the same.
    """
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)
    return pe


# --- loading library weights, to check the from-scratch code against transformers ----------------

@torch.no_grad()
def block_from_bert_layer(layer, n_heads: int, eps: float) -> TransformerBlock:
    """A post-norm block holding the weights of a ``transformers`` ``BertLayer``."""
    d_model = layer.attention.self.query.weight.shape[0]
    block = TransformerBlock(d_model, n_heads, layer.intermediate.dense.weight.shape[0], pre_norm=False, eps=eps)
    pairs = [(block.attn.q, layer.attention.self.query), (block.attn.k, layer.attention.self.key),
             (block.attn.v, layer.attention.self.value), (block.attn.o, layer.attention.output.dense),
             (block.ln1, layer.attention.output.LayerNorm), (block.ff.up, layer.intermediate.dense),
             (block.ff.down, layer.output.dense), (block.ln2, layer.output.LayerNorm)]
    for ours, theirs in pairs:
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)
    return block.eval()


@torch.no_grad()
def block_from_gpt2_block(gpt_block, n_heads: int, eps: float) -> TransformerBlock:
    """A pre-norm block holding the weights of a ``GPT2Block``.

    GPT-2 stores its projections as ``Conv1D`` with the weight transposed (in, out) and Q, K, V
    fused into one (d, 3d) matrix, so they are split and transposed here.
    """
    d_model = gpt_block.ln_1.weight.shape[0]
    block = TransformerBlock(d_model, n_heads, gpt_block.mlp.c_fc.weight.shape[1], pre_norm=True, eps=eps,
                             gelu="tanh")
    w_qkv, b_qkv = gpt_block.attn.c_attn.weight.split(d_model, dim=1), gpt_block.attn.c_attn.bias.split(d_model)
    for linear, w, b in zip((block.attn.q, block.attn.k, block.attn.v), w_qkv, b_qkv):
        linear.weight.copy_(w.T)
        linear.bias.copy_(b)
    for linear, conv in ((block.attn.o, gpt_block.attn.c_proj), (block.ff.up, gpt_block.mlp.c_fc),
                         (block.ff.down, gpt_block.mlp.c_proj)):
        linear.weight.copy_(conv.weight.T)
        linear.bias.copy_(conv.bias)
    for ours, theirs in ((block.ln1, gpt_block.ln_1), (block.ln2, gpt_block.ln_2)):
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)
    return block.eval()


# --- cost ------------------------------------------------------------------------------------------

def attention_cost(length: int, d_model: int, n_heads: int) -> dict:
    """FLOPs and score-matrix memory of one attention layer's core (fp32, batch 1).

    Q K^T and weights @ V are each 2·T²·d FLOPs; the four projections are 8·T·d². The first grows
    with T², the second with T, so the scores dominate once T > 2d: the long-context wall.
    """
    return {"score_flops": 4 * length ** 2 * d_model, "projection_flops": 8 * length * d_model ** 2,
            "score_bytes": 4 * n_heads * length ** 2}


@torch.no_grad()
def time_attention(length: int, d_model: int = 384, n_heads: int = 12, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds for one from-scratch attention call: batch 1, ``n_heads`` heads of
    length ``length`` and size d_model / n_heads (MiniLM's 384 and 12 by default), random inputs."""
    x = torch.randn(1, n_heads, length, d_model // n_heads)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scaled_dot_product_attention(x, x, x)
        best = min(best, time.perf_counter() - start)
    return best
