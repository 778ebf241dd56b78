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
from companion.sampling import check_decoding, sample_next


@dataclass
class LSTMConfig:
    vocab_size: int = 103  # characters in the prose corpus
    embed_dim: int = 64  # E: a character needs few dimensions
    hidden_dim: int = 256  # H: the state that summarises the past
    num_layers: int = 1  # stacked LSTM layers; one trains fastest on a CPU
    dropout: float = 0.0  # between layers (only used when num_layers > 1)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_dim", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


def prose_recipe(vocab_size: int) -> tuple[LSTMConfig, TrainConfig]:
    """The model and training run of chapter ``lstm-generator``, sized for a 2-core CPU."""
    model = LSTMConfig(vocab_size=vocab_size, embed_dim=64, hidden_dim=128)
    train = TrainConfig(
        steps=400, batch_size=32, block_size=64, lr=5e-3, warmup_steps=20, eval_every=50
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
        self.head = nn.Linear(config.hidden_dim, config.vocab_size)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_with_state(
        self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits ``(B, T, V)`` and the final ``(h, c)``, each ``(layers, B, H)``."""
        out, state = self.lstm(self.embed(idx), state)  # (B, T, E) -> (B, T, H)
        return self.head(out), state  # (B, T, V)

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
        """Append ``max_new_tokens`` ids to ``idx`` ``(B, T0)``; returns ``(B, T0 + n)``."""
        check_decoding(temperature, top_k, top_p)
        if idx.ndim != 2 or idx.shape[1] < 1:
            raise ValueError(f"idx must have shape (B, T0) with T0 >= 1, got {tuple(idx.shape)}")
        logits, state = self.forward_with_state(idx)  # read the prompt once
        out = [idx]
        for _ in range(max_new_tokens):
            nxt = sample_next(logits[:, -1, :], temperature, top_k, top_p, greedy, generator)
            out.append(nxt)  # (B, 1)
            logits, state = self.forward_with_state(nxt, state)  # one step, state carried
        return torch.cat(out, dim=1)
