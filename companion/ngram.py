"""A smoothed character n-gram model, the classical baseline (``autoregressive-likelihood``).

Interpolated Kneser-Ney smoothing (Kneser and Ney, 1995; in the interpolated form studied
by Chen and Goodman, 1999). Notation, for an n-gram model (context of ``n - 1``
characters), with ``h`` a context and ``c`` the next character:

* level ``n`` uses raw counts ``C(h c)``; a lower level ``k < n`` uses continuation
  counts ``N(. h c)``, the number of distinct characters seen before ``h c``;
* ``P_k(c | h) = max(C(h c) - D, 0) / C(h .) + D * N(h .) / C(h .) * P_{k-1}(c | h')``,
  where ``C(h .)`` sums the counts after ``h``, ``N(h .)`` counts the distinct characters
  seen after ``h``, and ``h'`` drops the first character of ``h``;
* an unseen context backs off entirely: ``P_k(c | h) = P_{k-1}(c | h')``;
* ``P_0(c) = 1 / V``, uniform over the vocabulary.

Each level sums to one over the vocabulary whenever ``0 < D <= 1``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from companion.text import check_count, is_integer, is_real


@dataclass
class _Level:
    counts: dict[str, int]  # k-gram -> raw or continuation count
    totals: dict[str, int]  # (k-1)-character context -> sum of counts after it
    types: dict[str, int]  # context -> number of distinct characters after it


class CharNGram:
    """Interpolated Kneser-Ney character n-gram model.

    ``order`` is n (the model conditions on ``order - 1`` previous characters);
    ``vocab`` is the character set the distribution is over: any iterable of single
    characters (a str, tuple, list, set, ``dict.keys()``, ...), at least one; it is sorted,
    so its order does not matter. ``discount`` is ``D``, a number in ``(0, 1]``.
    """

    def __init__(self, order: int, vocab: str | Iterable[str], discount: float = 0.75):
        if not is_integer(order) or order < 1:
            raise ValueError(f"order must be an int >= 1, got {order!r}")
        order = int(order)
        if not is_real(discount):
            raise TypeError(f"discount must be a number in (0, 1], got {discount!r}")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount!r}")
        discount = float(discount)
        chars = (
            list(vocab) if isinstance(vocab, Iterable) and not isinstance(vocab, bytes) else None
        )
        if chars is None or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise TypeError(
                "vocab must be an iterable of single characters (a str, tuple, list or set), "
                f"got {vocab!r}"
            )
        if not chars:
            raise ValueError("vocab must have at least one character")
        self.order = order
        self.vocab = tuple(sorted(set(chars)))
        self._vocab_set = frozenset(self.vocab)
        self.discount = discount
        self.levels: list[_Level] = []

    def fit(self, text: str) -> CharNGram:
        """Count n-grams of every order 1..n in ``text``; returns ``self``.

        ``text`` is a non-empty str of vocabulary characters.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text must be a non-empty str: there is nothing to count")
        bad = set(text) - set(self.vocab)
        if bad:
            raise ValueError(f"text has characters outside the vocabulary: {sorted(bad)[:10]}")
        n = self.order
        raw = Counter(text[i : i + n] for i in range(len(text) - n + 1))
        higher = raw
        levels = []
        for k in range(n, 0, -1):
            if k == n:
                counts = dict(raw)
            else:  # continuation count: distinct characters seen before each k-gram
                counts = dict(Counter(gram[1:] for gram in higher))
            totals: dict[str, int] = defaultdict(int)
            types: dict[str, int] = defaultdict(int)
            for gram, count in counts.items():
                totals[gram[:-1]] += count
                types[gram[:-1]] += 1
            levels.append(_Level(counts, dict(totals), dict(types)))
            higher = counts
        self.levels = levels[::-1]  # levels[k - 1] holds order k
        return self

    def prob(self, context: str, char: str) -> float:
        """``P(char | context)``; only the last ``order - 1`` characters of context matter.

        ``char`` must be a single character of the vocabulary (``ValueError`` otherwise)
        and ``context`` a str (``TypeError`` otherwise). A context that was never seen in
        training, also one with characters outside the vocabulary, backs off to the
        lower orders as Kneser-Ney does for any unseen context.
        """
        self._check_context(context)
        if not isinstance(char, str):
            raise TypeError(f"char must be a str of one character, got {type(char).__name__}")
        if len(char) != 1 or char not in self._vocab_set:
            raise ValueError(
                f"char must be a single character of the vocabulary, got {char!r}; "
                f"the vocabulary has {len(self.vocab)} characters (see .vocab)"
            )
        return self._prob(context, char)

    def _check_context(self, context: str) -> None:
        if not self.levels:
            raise RuntimeError("call fit(text) before prob")
        if not isinstance(context, str):
            raise TypeError(f"context must be a str, got {type(context).__name__}")
        # Characters outside the vocabulary are allowed: such a context is unseen, and
        # _prob backs off past it like past any unseen context.

    def _prob(self, context: str, char: str) -> float:
        """:meth:`prob` without the checks (for callers that made them)."""
        p = 1.0 / len(self.vocab)  # P_0
        d = self.discount
        tail = context[len(context) - self.order + 1 :] if self.order > 1 else ""
        for k in range(1, self.order + 1):
            level = self.levels[k - 1]
            h = tail[len(tail) - (k - 1) :] if k > 1 else ""
            if len(h) < k - 1:  # context shorter than this order: stop at the lower level
                break
            total = level.totals.get(h, 0)
            if total:
                count = level.counts.get(h + char, 0)
                p = (max(count - d, 0.0) + d * level.types[h] * p) / total
        return p

    def distribution(self, context: str) -> torch.Tensor:
        """Next-character probabilities over ``self.vocab``: a ``(V,)`` float64 tensor."""
        self._check_context(context)
        return self._distribution(context)

    def _distribution(self, context: str) -> torch.Tensor:
        return torch.tensor([self._prob(context, c) for c in self.vocab], dtype=torch.float64)

    def bits_per_char(self, text: str) -> float:
        """Mean ``-log2 P(x_t | x_<t)`` over ``text[1:]``, each with the preceding context.

        The first character is not scored, matching the neural models, whose first input
        has no target before it.
        """
        if not self.levels:
            raise RuntimeError("call fit(text) before bits_per_char")
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if len(text) < 2:
            raise ValueError("text must have at least 2 characters")
        bad = set(text) - set(self.vocab)
        if bad:
            raise ValueError(f"text has characters outside the vocabulary: {sorted(bad)[:10]}")
        span = self.order - 1
        total = 0.0
        for t in range(1, len(text)):
            total -= math.log2(self._prob(text[max(0, t - span) : t], text[t]))
        return total / (len(text) - 1)

    def sample(self, prompt: str, length: int, generator: torch.Generator) -> str:
        """Continue ``prompt`` by ``length`` characters drawn from the model.

        ``prompt`` is a str (it may be empty; characters outside the vocabulary back off
        as in :meth:`prob`), ``length`` an integer >= 0 (Python or NumPy) and
        ``generator`` a CPU ``torch.Generator``.
        """
        self._check_context(prompt)
        length = check_count(length, "length", minimum=0)
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise TypeError(f"generator must be a CPU torch.Generator, got {generator!r}")
        out = prompt
        for _ in range(length):
            probs = self._distribution(out)
            out += self.vocab[int(torch.multinomial(probs, 1, generator=generator))]
        return out


def best_order(
    train: str, val: str, vocab: str | tuple[str, ...], orders=range(1, 9), discount=0.75
) -> tuple[CharNGram, dict[int, float]]:
    """Fit one model per order and return the best on ``val`` with every order's bits/char.

    ``orders`` must name at least one order (ints >= 1).
    """
    orders = list(orders)
    if not orders:
        raise ValueError("orders must name at least one n-gram order (ints >= 1)")
    scores = {}
    best = None
    for order in orders:
        model = CharNGram(order, vocab, discount).fit(train)
        scores[order] = model.bits_per_char(val)
        if best is None or scores[order] < scores[best.order]:
            best = model
    return best, scores
