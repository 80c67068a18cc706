"""Checks for notebook 02's exercises: encoding with learned BPE merges, WordPiece's greedy segmentation."""

from . import expect

def apply_merges(word: str, merges: list) -> list:
    """BPE encoding: split into characters (the last carrying the end marker), then apply the merges in order."""
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    for a, b in merges:
        i, out = 0, []
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


def check_bpe_encode(encode, merges: list) -> None:
    """``encode(word, merges)`` -> the word's BPE symbols after applying ``merges`` in the order learned."""
    for word in ("lowest", "newer", "wider", "slow", "x"):
        got, want = encode(word, merges), apply_merges(word, merges)
        expect(isinstance(got, list), f"return a list of symbols, got {type(got).__name__}")
        expect("".join(got) == "".join(want), f"{word!r} -> {got}: the symbols must spell the word "
                                              "with '</w>' attached to the last character")
        expect(got == want, f"{word!r}: expected {want}, got {got}. Apply the merges one after another in the "
                            "order they were learned (not by frequency, not longest-first)")


def check_wordpiece(segment, tokenizer) -> None:
    """``segment(word, vocab)`` -> WordPiece's greedy longest-match-first pieces, as the tokenizer does."""
    vocab = tokenizer.get_vocab()
    for word in ("unhappiness", "tokenization", "playing", "transformers", "xyzzy", "embeddings"):
        want = tokenizer.tokenize(word)
        got = segment(word, vocab)
        expect(isinstance(got, list), f"return a list of pieces, got {type(got).__name__}")
        expect(all(p == "[UNK]" or p.startswith("##") for p in got[1:]),
               f"{word!r} -> {got}: pieces after the first need the '##' continuation prefix")
        expect(got == want, f"{word!r}: expected {want}, got {got}. At each position take the *longest* "
                            "vocabulary entry that matches; if none matches, the whole word is [UNK]")
