"""Parameter groups for fine-tuning: who gets which learning rate, who gets weight decay, who trains.

A transformer is a stack: embeddings (group 0), layers 1..L, then the task head (group L+1).
Lower groups hold general features learned in pretraining, the head is brand new. So:
- layer-wise learning-rate decay gives group g the rate ``lr * decay ** (L + 1 - g)``
  (ELECTRA's and BEiT's layer decay: one step down per layer);
- discriminative rates by coarse part (ULMFiT, fastai's ``slice(lo, hi)``) split the model into
  ``PARTS`` — embeddings, transformer body, head — and space their rates geometrically from
  ``lr * lr_slice`` (embeddings) to ``lr`` (head);
- ``freeze_to(model, k)`` stops gradients for groups below k (ULMFiT's gradual unfreezing);
- biases and normalisation weights get no weight decay (decaying a LayerNorm gain to 0 helps nothing).
"""
import re

from .errors import ConfigError

LAYER_NUMBER = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")  # a bare GPT2Model's names start "h.0."
EMBEDDING_NAMES = ("embeddings", "wte", "wpe", "embed_tokens", "embed_positions")
PARTS = ("embeddings", "body", "head")


def num_layers(model) -> int:
    """The transformer layers of ``model`` (its config's ``num_hidden_layers``); 0 for a model without one."""
    return getattr(getattr(model, "config", None), "num_hidden_layers", 0) or 0


def layer_group(name: str, n_layers: int) -> int:
    """0 for embeddings, i+1 for transformer layer i, n_layers+1 for everything above (head, final norm)."""
    match = LAYER_NUMBER.search(name)
    if match:
        return int(match.group(1)) + 1
    if any(part in name for part in EMBEDDING_NAMES):
        return 0
    return n_layers + 1


def part(group: int, n_layers: int) -> int:
    """Index in ``PARTS`` of a layer group: 0 embeddings, 1 any transformer layer, 2 the head."""
    return 0 if group == 0 else 2 if group == n_layers + 1 else 1


def lr_scale(group: int, n_layers: int, layer_decay: float | None = None, lr_slice: float | None = None) -> float:
    """The factor on ``lr`` for a layer group: per-layer decay, per-part slice, or 1."""
    if layer_decay and lr_slice:
        raise ConfigError("choose layer_decay (per layer) or lr_slice (per part), not both")
    if layer_decay:
        return layer_decay ** (n_layers + 1 - group)
    if lr_slice:
        return lr_slice ** ((len(PARTS) - 1 - part(group, n_layers)) / (len(PARTS) - 1))
    return 1.0


def param_groups(model, lr: float, weight_decay: float = 0.01, layer_decay: float | None = None,
                 lr_slice: float | None = None) -> list:
    """AdamW parameter groups, one per (layer group, decay or not), each with its own learning rate."""
    n = num_layers(model)
    if (layer_decay or lr_slice) and not n:
        raise ConfigError("per-layer learning rates need a model with transformer layers (config.num_hidden_layers); "
                          "for another model, build the optimizer's parameter groups yourself (Trainer(param_groups=))")
    groups = {}
    for name, param in model.named_parameters():
        g = layer_group(name, n)
        no_decay = param.ndim < 2  # biases and LayerNorm weights
        scale = lr_scale(g, n, layer_decay, lr_slice)
        key = (g, no_decay)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "layer_group": g, "lr": lr * scale,
                           "weight_decay": 0.0 if no_decay else weight_decay}
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def freeze_to(model, k: int) -> None:
    """Train only layer groups >= k (fastai's ``freeze_to``); ``k=0`` trains everything."""
    n = num_layers(model)
    for name, param in model.named_parameters():
        param.requires_grad = layer_group(name, n) >= k


def trainable_groups_to_k(model, n_top: int | None) -> int:
    """The ``k`` for ``freeze_to`` that leaves the top ``n_top`` groups trainable (None: all)."""
    total = num_layers(model) + 2
    return 0 if n_top is None else max(total - n_top, 0)
