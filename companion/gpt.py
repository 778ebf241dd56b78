"""A GPT-2-style decoder-only Transformer (chapters ``attention`` and ``minimal-gpt``).

Pre-norm blocks ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``, learned positional
embeddings, a final layer norm and an output head that shares its weight with the token
embedding (weight tying). The layout follows GPT-2 (Radford et al., 2019) closely enough
that :meth:`GPT.from_transformers` loads the weights of a ``transformers``
``GPT2LMHeadModel`` and computes the same function. Dimension names:
``B`` batch, ``T`` sequence length, ``C`` width (``n_embd``), ``H`` heads, ``D = C / H``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from companion.lm_train import TrainConfig
from companion.sampling import _sample_next, check_decoding, check_generator, check_greedy
from companion.text import check_count, check_ids, is_integer, is_real


@dataclass
class GPTConfig:
    vocab_size: int = 103  # characters in the prose corpus
    block_size: int = 128  # longest context the model attends over (positional table size)
    n_layer: int = 4  # Transformer blocks
    n_head: int = 4  # attention heads per block; must divide n_embd
    n_embd: int = 128  # residual-stream width C
    dropout: float = 0.0  # training only; eval mode is exact either way (see prose_recipe)
    layer_norm_eps: float = 1e-5  # GPT-2's value, needed for equality with transformers

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not is_integer(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_head={self.n_head} must divide n_embd={self.n_embd}")
        if not is_real(self.dropout):
            raise TypeError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        eps = self.layer_norm_eps
        if not is_real(eps):
            raise TypeError(f"layer_norm_eps must be a finite number > 0, got {eps!r}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"layer_norm_eps must be a finite number > 0, got {eps!r}")
        self.layer_norm_eps = float(eps)


def tiny_gpt(vocab_size: int, block_size: int = 64) -> GPTConfig:
    """The preset the book trains on a 2-core CPU: 2 blocks of width 128, 4 heads."""
    return GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_embd=128)


def prose_recipe(vocab_size: int) -> tuple[GPTConfig, TrainConfig]:
    """The model and training run of chapter ``minimal-gpt`` on the prose corpus.

    About 11 passes over the 343k training characters, with dropout 0.1 so that the
    later passes still generalise; a high peak learning rate suits a 2-block model.
    """
    train = TrainConfig(
        steps=1800, batch_size=32, block_size=64, lr=6e-3, warmup_steps=30, eval_every=200
    )
    config = replace(tiny_gpt(vocab_size, train.block_size), dropout=0.1)
    return config, train


def code_recipe(vocab_size: int) -> tuple[GPTConfig, TrainConfig]:
    """The shorter code-completion run of chapter ``minimal-gpt``."""
    train = TrainConfig(
        steps=150, batch_size=32, block_size=64, lr=3e-3, warmup_steps=20, eval_every=50
    )
    return tiny_gpt(vocab_size, train.block_size), train


def sinusoidal_encoding(length: int, dim: int, base: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal positional encoding of Vaswani et al. (2017), chapter ``attention``.

    ``PE[p, 2i] = sin(p w_i)`` and ``PE[p, 2i + 1] = cos(p w_i)`` with
    ``w_i = base ** (-2i / dim)``. Returns a ``(length, dim)`` float32 tensor, computed in
    float64. GPT-2 (and :class:`GPT`) learns its positions instead; this is the fixed
    alternative whose dot products depend only on the offset between positions.
    ``length`` is an int >= 1, ``dim`` an even int >= 2 and ``base`` a finite number > 0.
    """
    length = check_count(length, "length")
    dim = check_count(dim, "dim", minimum=2)
    if length < 1 or dim < 2 or dim % 2:
        raise ValueError(f"length must be >= 1 and dim a positive even int, got {length}, {dim}")
    if not is_real(base):
        raise TypeError(f"base must be a finite number > 0, got {base!r}")
    if not (math.isfinite(base) and base > 0):
        raise ValueError(f"base must be a finite number > 0, got {base!r}")
    base = float(base)
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    pe = torch.empty(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)  # (L, dim/2)
    pe[:, 1::2] = torch.cos(pos * freq)  # (L, dim/2)
    return pe.float()


class CausalSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention in which position t sees positions <= t."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q = q.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, D)
        # softmax(q k^T / sqrt(D) + causal mask) v, fused; is_causal builds the mask itself.
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side
        return F.dropout(self.c_proj(y), self.dropout, self.training)


class MLP(nn.Module):
    """Position-wise feed-forward network: C -> 4C -> C with GPT-2's tanh-approximate GELU."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.c_fc(x), approximate="tanh")  # (B, T, 4C)
        return F.dropout(self.c_proj(h), self.dropout, self.training)  # (B, T, C)


class Block(nn.Module):
    """One pre-norm Transformer block."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only language model: ``(B, T)`` int64 ids -> ``(B, T, V)`` float logits."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned positions
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one (V, C) tensor, two roles
        self.apply(self._init_weights)
        # GPT-2 scales the projections that write into the residual stream by
        # 1/sqrt(2 n_layer), so the stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def context_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        """Trainable weights, counting the tied embedding once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` integer ids in ``[0, vocab_size)`` -> ``(B, T, V)`` logits.

        Raises ``TypeError`` for ids that are not an integer tensor and ``ValueError`` for
        another shape, ``T > block_size``, an id out of range or ids on another device than
        the model. The range check is one combined comparison (one device sync).
        """
        self._check_idx(idx)
        check_ids(idx, "idx", vocab_size=self.config.vocab_size)
        return self._logits(idx)

    def _check_idx(self, idx: torch.Tensor) -> None:
        """The checks of :meth:`forward` that need no device synchronisation."""
        check_ids(idx, "idx")
        if idx.ndim != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        if idx.device != self.wte.weight.device:
            raise ValueError(
                f"idx is on {idx.device} but the model on {self.wte.weight.device}; "
                "move one with .to(device)"
            )

    def _logits(self, idx: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without the checks (``generate`` checks its prompt once)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.config.block_size}")
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.lm_head(self.ln_f(x))  # (B, T, C) @ (C, V) -> (B, T, V)

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

        The context is cropped to the last ``block_size`` ids. Every argument is
        validated before any work (see :mod:`companion.sampling`): ``max_new_tokens`` is an
        int >= 0 and the prompt's ids lie in ``[0, vocab_size)``; the generated ids need no
        check, so the loop adds no device synchronisation.
        """
        temperature, top_k, top_p = check_decoding(temperature, top_k, top_p)
        greedy = check_greedy(greedy)
        max_new_tokens = check_count(max_new_tokens, "max_new_tokens", minimum=0)
        self._check_idx(idx)
        if idx.shape[0] < 1 or idx.shape[1] < 1:
            raise ValueError(
                f"idx must have shape (B, T0) with B, T0 >= 1, got {tuple(idx.shape)}"
            )
        check_ids(idx, "idx", vocab_size=self.config.vocab_size)
        check_generator(generator, idx.device)
        for _ in range(max_new_tokens):
            logits = self._logits(idx[:, -self.config.block_size :])[:, -1, :]  # (B, V)
            nxt = _sample_next(logits, temperature, top_k, top_p, greedy, generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    @classmethod
    def from_transformers(cls, hf_model) -> GPT:
        """Build a GPT with the weights of a ``transformers.GPT2LMHeadModel``.

        GPT-2 stores its linear layers as ``Conv1D`` with weights of shape (in, out);
        ``nn.Linear`` stores (out, in), so those weights are transposed. Raises
        ``ValueError`` for a config this model cannot reproduce and ``TypeError`` for a
        model that is not a ``GPT2LMHeadModel``.
        """
        try:
            from transformers import GPT2LMHeadModel
        except ImportError:  # without transformers there is no GPT2LMHeadModel to load
            GPT2LMHeadModel = None
        if GPT2LMHeadModel is None or not isinstance(hf_model, GPT2LMHeadModel):
            raise TypeError(
                f"hf_model must be a transformers.GPT2LMHeadModel, got {type(hf_model).__name__}"
            )
        hc = hf_model.config
        if hc.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(
                f"activation {hc.activation_function!r} unsupported; accepted: "
                "'gelu_new', 'gelu_pytorch_tanh'"
            )
        if not getattr(hc, "scale_attn_weights", True) or getattr(
            hc, "scale_attn_by_inverse_layer_idx", False
        ):
            raise ValueError("only the default attention scaling 1/sqrt(D) is supported")
        config = GPTConfig(
            vocab_size=hc.vocab_size,
            block_size=hc.n_positions,
            n_layer=hc.n_layer,
            n_head=hc.n_head,
            n_embd=hc.n_embd,
            dropout=0.0,
            layer_norm_eps=hc.layer_norm_epsilon,
        )
        model = cls(config)
        src = hf_model.state_dict()
        conv1d = (
            "attn.c_attn.weight",
            "attn.c_proj.weight",
            "mlp.c_fc.weight",
            "mlp.c_proj.weight",
        )
        state = {}
        for name in model.state_dict():
            if name == "lm_head.weight":
                continue  # tied to wte.weight
            key = "transformer." + name.replace("blocks.", "h.")
            tensor = src[key]
            state[name] = tensor.t() if name.endswith(conv1d) else tensor
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys != ["lm_head.weight"] or result.unexpected_keys:
            raise RuntimeError(f"weights did not map one to one: {result}")
        return model
