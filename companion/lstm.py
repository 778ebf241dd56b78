"""A character-level LSTM language model (chapter ``lstm-generator``).

Embedding -> stacked LSTM (Hochreiter and Schmidhuber, 1997) -> linear head. The LSTM
state carries the whole past, so generation feeds one character at a time and keeps the
state instead of re-reading the prompt. Dimension names: ``B`` batch, ``T`` time steps,
``E`` embedding width, ``H`` hidden width, ``V`` vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from companion.lm_train import TrainConfig
from companion.sampling import _sample_next, check_decoding, check_generator, check_greedy
from companion.text import check_count, check_ids, is_integer, is_real

# Validation windows for scoring: the LSTM has no positional table, so it can read long
# windows, and fewer characters then sit near the start of a window with little context.
EVAL_CONTEXT = 1024


@dataclass
class LSTMConfig:
    vocab_size: int = 103  # characters in the prose corpus
    embed_dim: int = 64  # E: a character needs few dimensions
    hidden_dim: int = 256  # H: the state that summarises the past
    num_layers: int = 1  # stacked LSTM layers; one trains fastest on a CPU
    dropout: float = 0.0  # on the embeddings, between layers and before the head (training only)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_dim", "num_layers"):
            value = getattr(self, name)
            if not is_integer(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))
        if not is_real(self.dropout):
            raise TypeError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


def prose_recipe(vocab_size: int) -> tuple[LSTMConfig, TrainConfig]:
    """The model and training run of chapter ``lstm-generator``, sized for a 2-core CPU.

    About 24 passes over the 343k training characters: without dropout the model
    memorises the training split and its validation score stalls, so 20% of the
    embedding and hidden units are dropped during training.
    """
    model = LSTMConfig(vocab_size=vocab_size, embed_dim=64, hidden_dim=256, dropout=0.2)
    train = TrainConfig(
        steps=2000, batch_size=32, block_size=128, lr=5e-3, warmup_steps=30, eval_every=200
    )
    return model, train


class CharLSTM(nn.Module):
    """``(B, T)`` int64 ids -> ``(B, T, V)`` logits, optionally from and to a state."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_dim,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)  # identity in eval mode, so generation is exact
        self.head = nn.Linear(config.hidden_dim, config.vocab_size)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_with_state(
        self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits ``(B, T, V)`` and the final ``(h, c)``, each ``(layers, B, H)``.

        ``idx`` is a ``(B, T)`` integer tensor of ids in ``[0, vocab_size)`` on the model's
        device (one device sync for the range check); ``state`` is ``None`` or an ``(h, c)``
        pair as returned by a previous call. ``TypeError``/``ValueError`` otherwise.
        """
        self._check_idx(idx)
        check_ids(idx, "idx", vocab_size=self.config.vocab_size)
        self._check_state(state, idx.shape[0])
        return self._run(idx, state)

    def _check_idx(self, idx: torch.Tensor) -> None:
        """The checks on ``idx`` that need no device synchronisation."""
        check_ids(idx, "idx")
        if idx.ndim != 2 or idx.shape[1] < 1:
            raise ValueError(f"idx must have shape (B, T) with T >= 1, got {tuple(idx.shape)}")
        if idx.device != self.head.weight.device:
            raise ValueError(
                f"idx is on {idx.device} but the model on {self.head.weight.device}; "
                "move one with .to(device)"
            )

    def _check_state(self, state, batch: int) -> None:
        if state is None:
            return
        shape = (self.config.num_layers, batch, self.config.hidden_dim)
        if (
            not isinstance(state, (tuple, list))
            or len(state) != 2
            or not all(isinstance(s, torch.Tensor) and s.shape == shape for s in state)
        ):
            raise ValueError(
                f"state must be None or a pair (h, c) of tensors of shape {shape} "
                "(layers, B, H), as returned by forward_with_state"
            )

    def _run(
        self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`forward_with_state` without the checks (``generate`` checks once)."""
        out, state = self.lstm(self.drop(self.embed(idx)), state)  # (B, T, E) -> (B, T, H)
        return self.head(self.drop(out)), state  # (B, T, V)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.forward_with_state(idx)[0]

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append ``max_new_tokens`` ids to ``idx`` ``(B, T0)``; returns ``(B, T0 + n)``.

        Every argument is validated before any work: ``max_new_tokens`` is an int >= 0, the
        prompt's ids lie in ``[0, vocab_size)`` and the decoding settings are checked as in
        :mod:`companion.sampling`. The generated ids need no check, so the loop adds no
        device synchronisation.
        """
        temperature, top_k, top_p = check_decoding(temperature, top_k, top_p)
        greedy = check_greedy(greedy)
        max_new_tokens = check_count(max_new_tokens, "max_new_tokens", minimum=0)
        self._check_idx(idx)
        if idx.shape[0] < 1:
            raise ValueError(f"idx must have shape (B, T0) with B >= 1, got {tuple(idx.shape)}")
        check_ids(idx, "idx", vocab_size=self.config.vocab_size)
        check_generator(generator, idx.device)
        logits, state = self._run(idx)  # read the prompt once
        out = [idx]
        for _ in range(max_new_tokens):
            nxt = _sample_next(logits[:, -1, :], temperature, top_k, top_p, greedy, generator)
            out.append(nxt)  # (B, 1)
            logits, state = self._run(nxt, state)  # one step, state carried
        return torch.cat(out, dim=1)
