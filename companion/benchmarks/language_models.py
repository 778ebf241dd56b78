"""Character language models on the prose corpus (chapters ``autoregressive-likelihood`` to
``minimal-gpt``): n-gram, LSTM and GPT validation bits per character side by side, and the
training throughput of our GPT against ``transformers.GPT2LMHeadModel`` of the same config.
"""

from __future__ import annotations

import time

import torch

from companion import gpt, lstm
from companion.lm_train import TrainConfig, bits_per_char, make_optimizer, next_char_loss, train_lm
from companion.ngram import best_order
from companion.text import prose_corpus

GPT_MAX_BPC = 2.0  # the part's target for the minimal GPT on prose
THROUGHPUT_MIN_RATIO = 1.0  # ours should train at least as fast as the reference


def _train_steps(model, optimizer, x, y, steps: int) -> float:
    """Seconds for ``steps`` training steps on a fixed batch (synchronised by ``.item()``)."""
    start = time.perf_counter()
    for _ in range(steps):
        out = model(x)
        logits = out if isinstance(out, torch.Tensor) else out.logits  # (B, T, V)
        loss = next_char_loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
    return time.perf_counter() - start


def throughput_ratio(
    vocab_size: int, device: torch.device, rounds: int = 5, steps: int = 5
) -> dict:
    """Training characters per second of our GPT and of GPT2LMHeadModel, same config and batch.

    Both models see the same ``(B, T)`` batch, the same loss and the same AdamW settings;
    timing alternates between them in ``rounds`` blocks of ``steps`` steps, so that a
    change in machine load affects both alike.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config, train = gpt.prose_recipe(vocab_size)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab_size,
            n_positions=config.block_size,
            n_embd=config.n_embd,
            n_layer=config.n_layer,
            n_head=config.n_head,
            # the recipe's dropout, at the same three places as ours: embeddings,
            # attention weights and each residual branch
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            bos_token_id=None,
            eos_token_id=None,
        )
    ).to(device)
    ours = gpt.GPT(config).to(device)
    ids = torch.randint(0, vocab_size, (train.batch_size, train.block_size + 1))
    x, y = ids[:, :-1].to(device), ids[:, 1:].to(device)
    models = {"ours": ours.train(), "transformers": hf.train()}
    optimizers = {name: make_optimizer(m, train) for name, m in models.items()}
    seconds = dict.fromkeys(models, 0.0)
    for name, m in models.items():  # warm-up: allocator, kernels
        _train_steps(m, optimizers[name], x, y, 2)
    for _ in range(rounds):
        for name, m in models.items():
            seconds[name] += _train_steps(m, optimizers[name], x, y, steps)
    chars = rounds * steps * x.numel()
    rates = {name: chars / s for name, s in seconds.items()}
    return {
        "ours_chars_per_s": round(rates["ours"]),
        "transformers_chars_per_s": round(rates["transformers"]),
        "transformers_attn_implementation": hf.config._attn_implementation,
        "ratio": round(rates["ours"] / rates["transformers"], 3),
    }


def _train(model, config: TrainConfig, corpus, device, context: int) -> tuple[float, float]:
    history = train_lm(model, corpus.train_ids, corpus.val_ids, config, device, progress=False)
    return bits_per_char(model, corpus.val_ids, context, device), history.seconds


def run(device: torch.device) -> dict:
    corpus = prose_corpus()
    start = time.perf_counter()
    ngram, scores = best_order(
        corpus.train_text, corpus.val_text, corpus.tokenizer.chars, orders=range(5, 10)
    )
    ngram_seconds = time.perf_counter() - start
    best = scores[ngram.order]

    lstm_config, lstm_train = lstm.prose_recipe(corpus.vocab_size)
    torch.manual_seed(0)
    lstm_bpc, lstm_seconds = _train(
        lstm.CharLSTM(lstm_config), lstm_train, corpus, device, lstm.EVAL_CONTEXT
    )

    gpt_config, gpt_train = gpt.prose_recipe(corpus.vocab_size)
    torch.manual_seed(0)
    gpt_bpc, gpt_seconds = _train(
        gpt.GPT(gpt_config), gpt_train, corpus, device, gpt_config.block_size
    )
    speed = throughput_ratio(corpus.vocab_size, device)
    return {
        "val_bits_per_char": {
            f"ngram_order_{ngram.order}": round(best, 4),
            "lstm": round(lstm_bpc, 4),
            "gpt": round(gpt_bpc, 4),
        },
        "ngram_bits_per_char_by_order": {k: round(v, 4) for k, v in scores.items()},
        "train_seconds": {
            "ngram_all_orders": round(ngram_seconds, 1),
            "lstm": round(lstm_seconds, 1),
            "gpt": round(gpt_seconds, 1),
        },
        "train_steps": {"lstm": lstm_train.steps, "gpt": gpt_train.steps},
        "throughput": speed,
        "targets": {
            f"gpt val bits/char <= {GPT_MAX_BPC}": gpt_bpc <= GPT_MAX_BPC,
            "lstm beats best n-gram": lstm_bpc < best,
            "gpt beats best n-gram": gpt_bpc < best,
            f"gpt/transformers throughput >= {THROUGHPUT_MIN_RATIO}": speed["ratio"]
            >= THROUGHPUT_MIN_RATIO,
        },
    }
