"""What a grammar sampler needs to know about a model's vocabulary, read once per model.

A grammar refuses a token whose first character it refuses, and a token of one character is
refused exactly when that character is. So grouping the vocabulary by first character, with a
one-character token standing for each group, lets a refused pick be resampled by checking
~20k representatives and then only the tokens of the groups that passed, instead of all 262k
tokens of the starter model one by one. A second level does the same with the first two
characters, as most tokens start with a space (one group that passes wherever a space may).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np


@dataclass(frozen=True)
class VocabIndex:
    unsafe: np.ndarray  # bool per token: never picked under a grammar (see `build`)
    group: np.ndarray  # int32 per token: its first character's group, -1 when it has none
    representatives: np.ndarray  # int32 per group: a one-character token of that group
    ungrouped: np.ndarray  # ids checked one by one: end-of-generation, no one-char stand-in
    pair: np.ndarray  # int32 per token: the group of its first two characters, -1 when none
    pair_representatives: np.ndarray  # int32 per pair group: the token of those two characters

    def candidates(self, passed: np.ndarray) -> np.ndarray:
        """Token ids worth checking further, given which groups' representatives passed."""
        allowed = np.zeros(len(self.representatives) + 1, dtype=bool)
        allowed[:-1] = passed
        keep = allowed[self.group]  # group -1 reads the last, False, entry
        keep[self.ungrouped] = True
        return np.flatnonzero(keep)


def build(vocab: Any, n_vocab: int) -> VocabIndex:
    """Unsafe tokens are control tokens that do not end generation (they print as nothing while
    the grammar reads their names) and tokens whose bytes are not whole UTF-8 (the grammar's
    decoder takes overlong and surrogate forms the text turns into U+FFFD, so an overlong '"'
    could close a JSON string that the text leaves open)."""
    is_control, is_eog = llama_cpp.llama_vocab_is_control, llama_cpp.llama_vocab_is_eog
    buf = ctypes.create_string_buffer(256)
    unsafe = np.zeros(n_vocab, dtype=bool)
    group = np.full(n_vocab, -1, dtype=np.int32)
    groups: dict[str, int] = {}
    singles: dict[str, int] = {}
    texts: dict[int, str] = {}
    ungrouped = []
    for token in range(n_vocab):
        if is_eog(vocab, token):
            ungrouped.append(token)
            continue
        if is_control(vocab, token):
            unsafe[token] = True
            continue
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
        try:
            text = buf.raw[:n].decode("utf-8") if n > 0 else ""
        except UnicodeDecodeError:
            unsafe[token] = True
            continue
        if not text:
            ungrouped.append(token)
            continue
        group[token] = groups.setdefault(text[0], len(groups))
        if len(text) <= 2:
            singles.setdefault(text, token)
        else:
            texts[token] = text[:2]
    representatives = np.full(len(groups), -1, dtype=np.int32)
    for char, index in groups.items():
        if char in singles:
            representatives[index] = singles[char]
    # A group without a one-character token cannot be judged by one: its tokens go one by one.
    lone = np.flatnonzero(representatives < 0)
    if lone.size:
        ungrouped.extend(np.flatnonzero(np.isin(group, lone)).tolist())
        group[np.isin(group, lone)] = -1
    # Two-character groups: tokens whose first two characters are a token of their own.
    pair = np.full(n_vocab, -1, dtype=np.int32)
    pairs: dict[str, int] = {}
    for token, head in texts.items():
        if head in singles and group[token] >= 0:
            pair[token] = pairs.setdefault(head, len(pairs))
    pair_representatives = np.array([singles[head] for head in pairs], dtype=np.int32)
    return VocabIndex(unsafe, group, representatives,
                      np.array(sorted(ungrouped), dtype=np.int64), pair, pair_representatives)
