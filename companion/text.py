"""Offline text corpora and a character tokenizer (chapter ``autoregressive-likelihood``).

Three sources, all read from disk, none downloaded:

* :func:`load_prose`: the prose of Python's bundled documentation topics
  (``pydoc_data.topics``, about 465,000 characters of English), the book's prose corpus;
* :func:`load_code`: the source of a fixed list of standard-library modules, the code
  corpus;
* :func:`load_text_file`: any UTF-8 text file a reader supplies (a poetry collection, say).

:func:`split_text` makes the fixed train/validation split that every language-model
chapter shares, and :class:`CharTokenizer` maps characters to integer ids. The exact text
depends on the Python version that ships it, so figures in the book are asserted with
bounds, not pinned.
"""

from __future__ import annotations

import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

from companion.checks import is_integer, is_real  # noqa: F401 (re-exported)

UNKNOWN = "\ufffd"  # the Unicode replacement character stands for any unseen character
VAL_FRACTION = 0.1  # one character in ten is held out for validation
SPLIT_BLOCK = 10_000  # the split works on blocks of this many characters (see split_text)

# Standard-library modules of plain, idiomatic Python that exist in every CPython 3.11+.
CODE_MODULES = (
    "bisect.py",
    "calendar.py",
    "colorsys.py",
    "copy.py",
    "dataclasses.py",
    "fnmatch.py",
    "fractions.py",
    "functools.py",
    "glob.py",
    "heapq.py",
    "queue.py",
    "random.py",
    "shlex.py",
    "statistics.py",
    "string.py",
    "textwrap.py",
)
ID_DTYPES = (torch.int64, torch.int32)  # the integer types an embedding lookup accepts
# Every integer dtype (no bool): ids that are only used for indexing may have any of these.
INTEGER_DTYPES = tuple(
    getattr(torch, name)
    for name in ("uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64")
    if hasattr(torch, name)
)


def _dtype_names(dtypes: tuple[torch.dtype, ...]) -> str:
    return " or ".join(str(d).removeprefix("torch.") for d in dtypes)


def check_ids(
    ids: torch.Tensor,
    name: str = "ids",
    vocab_size: int | None = None,
    dtypes: tuple[torch.dtype, ...] = ID_DTYPES,
) -> None:
    """Raise unless ``ids`` is an integer tensor of ``dtypes``, with values in ``[0, vocab_size)``.

    ``TypeError`` for anything but such a tensor, ``ValueError`` for an id out of range.
    The range check (only when ``vocab_size`` is given) is one combined comparison, so one
    device synchronisation; the shape is the caller's to check.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(
            f"{name} must be an integer tensor of token ids ({_dtype_names(dtypes)}), "
            f"got {type(ids).__name__}"
        )
    if ids.dtype not in dtypes:
        raise TypeError(
            f"{name} must be an integer tensor of token ids ({_dtype_names(dtypes)}), "
            f"got {ids.dtype}"
        )
    if vocab_size is not None and ((ids < 0) | (ids >= vocab_size)).any():
        lo, hi = int(ids.min()), int(ids.max())
        raise ValueError(
            f"{name} must be token ids in [0, {vocab_size}), got values from {lo} to {hi}"
        )


def check_count(value: int, name: str, minimum: int = 1) -> int:
    """Raise unless ``value`` is an integer ``>= minimum``; return it as a plain ``int``.

    Python and NumPy integers are accepted; bools (also ``numpy.bool_``), floats and
    anything else raise ``TypeError``, a value below ``minimum`` ``ValueError``.
    """
    if not is_integer(value):
        raise TypeError(
            f"{name} must be an int >= {minimum} (a Python or NumPy integer, not a bool or "
            f"float), got {value!r}"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def load_prose(dedupe: bool = True) -> str:
    """The documentation topics bundled with Python, joined in sorted topic order.

    Topics are separated by a blank line. The text is English prose with code examples,
    about 465,000 characters on CPython 3.11. Several topics repeat whole paragraphs
    (shared notes, table rules); with ``dedupe=True`` only the first copy of each
    paragraph is kept (about 373,000 characters remain), so that the validation split
    does not reward memorising passages that also sit in the training split.
    """
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key].strip("\n") for key in sorted(topics))
    return dedupe_paragraphs(text) if dedupe else text


def dedupe_paragraphs(text: str) -> str:
    """Drop every paragraph (blank-line separated) whose stripped text appeared before."""
    seen: set[str] = set()
    kept = []
    for paragraph in text.split("\n\n"):
        key = paragraph.strip()
        if key not in seen:
            seen.add(key)
            kept.append(paragraph)
    return "\n\n".join(kept)


def load_code(modules: tuple[str, ...] = CODE_MODULES) -> str:
    """Source of the given standard-library files (names relative to the stdlib folder).

    Files are joined in the given order, each preceded by a ``# file: name`` line.
    Raises ``FileNotFoundError`` naming the file that this Python does not ship.
    """
    if not isinstance(modules, (tuple, list)) or not all(isinstance(m, str) for m in modules):
        raise TypeError(
            f"modules must be a tuple or list of file names such as ('random.py',), "
            f"got {modules!r}"
        )
    if not modules:
        raise ValueError("modules must name at least one standard-library file")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for name in modules:
        path = stdlib / name
        if not path.is_file():
            raise FileNotFoundError(f"standard-library file {name!r} not found under {stdlib}")
        parts.append(f"# file: {name}\n" + path.read_text(encoding="utf-8"))
    return "\n\n".join(parts)


def load_text_file(path: str | Path, min_chars: int = 1_000) -> str:
    """Read a reader-supplied UTF-8 text file for training.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for a file that is not
    valid UTF-8 or shorter than ``min_chars`` characters (too little to split and train).
    Line endings are normalised to ``\\n``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not valid UTF-8 text ({err.reason} at byte {err.start})"
        ) from err
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) < min_chars:
        raise ValueError(f"{path} has {len(text)} characters; at least {min_chars} are needed")
    return text


def split_text(
    text: str, val_fraction: float = VAL_FRACTION, block: int = SPLIT_BLOCK
) -> tuple[str, str]:
    """Fixed train/validation split: every ``k``-th block is validation, ``k = 1 / val_fraction``.

    Cutting the text into blocks of ``block`` characters and holding out every tenth (for
    the default fraction) spreads validation over the whole corpus, so it is not one
    topic at the end. The split is deterministic: no randomness, no seed.
    ``val_fraction`` must be ``1 / k`` for an integer ``k >= 2`` (0.5, 0.25, 0.1, ...): any
    other fraction cannot be made of every k-th block and raises ``ValueError``.
    Returns ``(train, val)``; the blocks of each part are concatenated in order.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not is_real(val_fraction):
        raise TypeError(
            f"val_fraction must be a number 1/k with integer k >= 2, got {val_fraction!r}"
        )
    val_fraction = float(val_fraction)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    # 1/k need not be exact: a float32 0.1 is 1/9.99999985, so the tolerance is relative
    # and loose enough for float32 (whose relative precision is about 6e-8).
    k = 1.0 / val_fraction
    if not math.isfinite(k) or abs(k - round(k)) > 1e-6 * k or round(k) < 2:
        raise ValueError(
            f"val_fraction must be 1/k for an integer k >= 2 (0.5, 0.25, 0.1, ...): every "
            f"k-th block is validation; got {val_fraction!r}"
        )
    if not is_integer(block) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    block = int(block)
    every = round(k)
    if len(text) < every * block:
        raise ValueError(
            f"text has {len(text)} characters; at least {every * block} are needed for "
            f"val_fraction={val_fraction} and block={block} (lower block for short texts)"
        )
    blocks = [text[i : i + block] for i in range(0, len(text), block)]
    val = "".join(b for i, b in enumerate(blocks) if i % every == every - 1)
    train = "".join(b for i, b in enumerate(blocks) if i % every != every - 1)
    return train, val


@dataclass(frozen=True)
class CharTokenizer:
    """Characters to ids and back.

    ``chars`` is the vocabulary in id order. With ``unknown=True`` the id 0 is reserved
    for :data:`UNKNOWN` and any character outside the vocabulary encodes to it; with
    ``unknown=False`` (the default) such a character raises ``ValueError`` naming it, so a
    prompt never fails deep inside an embedding lookup.
    """

    chars: tuple[str, ...]
    unknown: bool = False

    @classmethod
    def from_text(cls, text: str, unknown: bool = False) -> CharTokenizer:
        """Vocabulary = the sorted set of characters in ``text`` (plus UNKNOWN if asked)."""
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        chars = sorted(set(text) - {UNKNOWN})
        return cls(tuple([UNKNOWN, *chars] if unknown else chars), unknown)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("chars must be distinct single characters")
        if self.unknown and (not self.chars or self.chars[0] != UNKNOWN):
            raise ValueError("with unknown=True the first character must be UNKNOWN")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """``text`` as a 1-D int64 tensor of ids, one per character."""
        index = self._index
        missing = sorted(set(text) - index.keys())
        if missing and not self.unknown:
            shown = ", ".join(repr(c) for c in missing[:10])
            raise ValueError(
                f"{len(missing)} character(s) not in the vocabulary: {shown}; build the "
                "tokenizer with unknown=True to map them to UNKNOWN"
            )
        ids = [index.get(c, 0) for c in text]
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """Inverse of :meth:`encode` for ids in ``[0, vocab_size)``.

        ``ids`` is a 1-D tensor of any integer dtype, or a sequence of Python or NumPy
        integers or 0-d integer tensors (not bools or floats); anything else raises
        ``TypeError``, an id out of range ``ValueError``.
        """
        if isinstance(ids, torch.Tensor):
            check_ids(ids, dtypes=INTEGER_DTYPES)
            if ids.ndim != 1:
                raise ValueError(
                    f"ids must be a 1-D tensor (decode one row at a time), got shape "
                    f"{tuple(ids.shape)}"
                )
            ids = ids.tolist()
        elif isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError(
                f"ids must be a 1-D integer tensor or a sequence of ints, got {type(ids).__name__}"
            )
        else:
            ids = list(ids)
            wrong = [i for i in ids if not _is_scalar_id(i)]
            if wrong:
                raise TypeError(
                    "ids must be ints (Python or NumPy integers or 0-d integer tensors, not "
                    f"bools or floats), got {wrong[:5]}"
                )
            ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise ValueError(f"ids must be in [0, {len(self.chars)}); got {bad[:5]}")
        return "".join(self.chars[i] for i in ids)


def _is_scalar_id(value: object) -> bool:
    """A Python or NumPy integer, or a 0-d tensor of an integer dtype (not bool)."""
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and value.dtype in INTEGER_DTYPES
    return is_integer(value)


@dataclass(frozen=True)
class Corpus:
    """A split corpus, its tokenizer and the encoded ids of each part."""

    name: str
    train_text: str
    val_text: str
    tokenizer: CharTokenizer
    train_ids: torch.Tensor  # (N_train,) int64
    val_ids: torch.Tensor  # (N_val,) int64

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size


def make_corpus(name: str, text: str, block: int = SPLIT_BLOCK, unknown: bool = False) -> Corpus:
    """Split ``text``, build the vocabulary from the whole text and encode both parts.

    The character set is fixed before training (it is not a learned parameter), so the
    vocabulary covers validation characters too and no validation character is unknown.
    """
    train, val = split_text(text, block=block)
    tok = CharTokenizer.from_text(text, unknown=unknown)
    return Corpus(name, train, val, tok, tok.encode(train), tok.encode(val))


def prose_corpus() -> Corpus:
    """The documentation-topics prose, split and encoded."""
    return make_corpus("prose", load_prose())


def code_corpus() -> Corpus:
    """The standard-library code, split and encoded (with UNKNOWN for stray characters)."""
    return make_corpus("code", load_code(), unknown=True)


def random_batch(
    ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows ``x = ids[i : i + T]`` and targets ``y = ids[i + 1 : i + T + 1]``.

    Targets are the inputs shifted by one: position ``t`` predicts character ``t + 1``.
    ``ids`` is a 1-D tensor of any integer dtype; returns two ``(B, T)`` tensors of that
    dtype on the CPU (int64 for the encoded corpora); ``generator`` is a CPU generator.
    ``batch_size`` and ``block_size`` are integers >= 1 (Python or NumPy).
    """
    check_ids(ids, dtypes=INTEGER_DTYPES)
    batch_size = check_count(batch_size, "batch_size")
    block_size = check_count(block_size, "block_size")
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise TypeError(f"generator must be a CPU torch.Generator, got {generator!r}")
    if ids.ndim != 1 or len(ids) < block_size + 1:
        raise ValueError(f"ids must be 1-D with more than block_size={block_size} elements")
    starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    windows = ids[starts[:, None] + offsets]  # (B, T + 1)
    return windows[:, :-1], windows[:, 1:]
