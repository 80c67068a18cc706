"""Parameter groups for fine-tuning: who gets which learning rate, who gets weight decay, who trains.

A transformer is a stack: embeddings (group 0), layers 1..L, then the task head (group L+1).
Lower groups hold general features learned in pretraining, the head is brand new. So:
- layer-wise learning-rate decay gives group g the rate ``lr * decay ** (L + 1 - g)``
  (ULMFiT's discriminative fine-tuning, ELECTRA's and BEIT's layer decay);
- ``freeze_to(model, k)`` stops gradients for groups below k (ULMFiT's gradual unfreezing);
- biases and normalisation weights get no weight decay (decaying a LayerNorm gain to 0 helps nothing).
"""
import re

LAYER_NUMBER = re.compile(r"\.(?:layer|layers|h|block)\.(\d+)\.")
EMBEDDING_NAMES = ("embeddings", "wte", "wpe", "embed_tokens", "embed_positions")


def num_layers(model) -> int:
    return model.config.num_hidden_layers


def layer_group(name: str, n_layers: int) -> int:
    """0 for embeddings, i+1 for transformer layer i, n_layers+1 for everything above (head, final norm)."""
    match = LAYER_NUMBER.search(name)
    if match:
        return int(match.group(1)) + 1
    if any(part in name for part in EMBEDDING_NAMES):
        return 0
    return n_layers + 1


def param_groups(model, lr: float, weight_decay: float = 0.01, layer_decay: float | None = None) -> list:
    """AdamW parameter groups, one per (layer group, decay or not), each with its own learning rate."""
    n = num_layers(model)
    groups = {}
    for name, param in model.named_parameters():
        g = layer_group(name, n)
        no_decay = param.ndim < 2  # biases and LayerNorm weights
        scale = layer_decay ** (n + 1 - g) if layer_decay else 1.0
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
