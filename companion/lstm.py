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
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


def prose_recipe(vocab_size: int) -> tuple[LSTMConfig, TrainConfig]:
    """The model and training run of chapter ``lstm-generator``, sized for a 2-core CPU.

    About 26 passes over the 343k training characters: without dropout the model
    memorises the training split and its validation score stalls, so 20% of the
    embedding and hidden units are dropped during training.
    """
    model = LSTMConfig(vocab_size=vocab_size, embed_dim=64, hidden_dim=256, dropout=0.2)
    train = TrainConfig(
        steps=2200, batch_size=32, block_size=128, lr=5e-3, warmup_steps=30, eval_every=200
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
        """Logits ``(B, T, V)`` and the final ``(h, c)``, each ``(layers, B, H)``."""
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
