"""course_lib: the small library behind the transfer-learning course.

Layers, from the one-liners down:
- ``runtime.setup()``: seeds, threads, quiet logs (first cell of every notebook)
- ``data``: the dataset registry, checksummed and identical offline and online
- ``tokenization``, ``models``: tokenizers trained with ``tokenizers``; GPT/BERT presets; MiniLM
- ``trainer``, ``optim``, ``costs``: the training loop, its parameter groups, what a run costs
"""
from .runtime import setup

__all__ = ["setup"]
