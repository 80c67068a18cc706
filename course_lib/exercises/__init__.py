"""Checks for the graded exercises: each says *what* is wrong, not just "failed".

A notebook's exercise cell ends with a call such as ``exercises.embeddings.check_pairs(skipgram_pairs)``.
Checks raise ``CheckFailed`` with a specific hint, or print a confirmation. In the student copy of a
notebook the solution is replaced by ``raise NotImplementedError``; ``grade`` turns that into a
friendly "not attempted yet" message.
"""


class CheckFailed(AssertionError):
    """Raised by a check with feedback a learner can act on."""


def expect(condition: bool, feedback: str) -> None:
    if not condition:
        raise CheckFailed(feedback)


def expect_number(value, what: str) -> None:
    """A learner's function must return a plain number (a bool is not one)."""
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"return a number ({what}), not {type(value).__name__}")


def grade(name: str, check, *args) -> None:
    """Run ``check(*args)`` and report the outcome of exercise ``name``."""
    try:
        check(*args)
    except NotImplementedError:
        raise CheckFailed(f"{name}: not attempted yet - replace `raise NotImplementedError` with your code.") from None
    print(f"{name}: correct!")


def small_bert(model_class, layers: int = 3):
    """A seeded BERT of ``layers`` tiny layers with a two-label head of ``model_class``: checks run on it in milliseconds."""
    import torch  # here, not at the top: importing the checks of a notebook stays as light as the notebook's own imports
    from transformers import BertConfig

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return model_class(config)


def rates_by_parameter(groups) -> dict:
    """{id(parameter): its learning rate} from a learner's AdamW groups, checked to be groups AdamW accepts."""
    expect(isinstance(groups, list) and all(isinstance(g, dict) and {"params", "lr"} <= set(g) for g in groups),
           "return a list of dicts, each with 'params' (a list of parameters) and 'lr' (a number)")
    rate_of = {}
    for g in groups:
        for p in g["params"]:
            expect(id(p) not in rate_of, "a parameter is in two groups: AdamW refuses that; put each in exactly one")
            rate_of[id(p)] = g["lr"]
    return rate_of
