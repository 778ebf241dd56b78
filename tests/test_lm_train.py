"""Shared training loop, metrics and decoding filters."""

import math

import numpy as np
import pytest
import torch

from companion.gpt import GPT, GPTConfig
from companion.lm_train import (
    TrainConfig,
    bits_from_nats,
    bits_per_char,
    lr_at,
    next_char_loss,
    perplexity,
    train_lm,
)
from companion.lstm import CharLSTM, LSTMConfig
from companion.sampling import check_decoding, filter_logits, sample_next


def test_bits_and_perplexity_agree_with_hand_computed_values():
    # ln 2 nats is exactly one bit; ln 4 nats is two bits, perplexity 4.
    assert bits_from_nats(math.log(2)) == pytest.approx(1.0)
    assert bits_from_nats(math.log(4)) == pytest.approx(2.0)
    # Two sequences: NLLs [ln 2] and [ln 8, ln 8, ln 8]. Token mean = (ln 2 + 3 ln 8)/4
    # = (1 + 9)/4 ln 2 = 2.5 ln 2, perplexity 2^2.5; per-sequence mean would be (2+8)/2=5.
    ppl = perplexity([[math.log(2)], [math.log(8)] * 3])
    assert ppl == pytest.approx(2**2.5)
    assert ppl != pytest.approx(5.0)
    with pytest.raises(ValueError):
        perplexity([[]])


class _Uniform(torch.nn.Module):
    """Predicts the uniform distribution: exactly log2 V bits per character."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab)


@pytest.mark.parametrize("context", [1, 7, 10, 50])
def test_bits_per_char_of_a_uniform_model_is_log2_vocab_for_any_window(context):
    ids = torch.randint(0, 16, (101,), generator=torch.Generator().manual_seed(0))
    assert bits_per_char(_Uniform(16), ids, context, torch.device("cpu")) == pytest.approx(4.0)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: GPT(GPTConfig(vocab_size=v, block_size=16, n_layer=1, n_head=2, n_embd=32)),
        lambda v: CharLSTM(LSTMConfig(vocab_size=v, embed_dim=8, hidden_dim=32)),
    ],
    ids=["gpt", "lstm"],
)
def test_training_lowers_validation_bits_on_a_repetitive_text(make):
    torch.manual_seed(0)
    ids = torch.tensor([i % 7 for i in range(2_000)])
    model = make(7)
    cfg = TrainConfig(steps=60, batch_size=8, block_size=16, eval_every=30, eval_chars=200)
    history = train_lm(model, ids, ids[:300], cfg, torch.device("cpu"), progress=False)
    assert history.steps == [30, 60] and len(history.val_bpc) == 2
    assert history.val_bpc[-1] < 0.5 * math.log2(7)  # a cycle of 7 is easy to learn
    assert history.tokens == 60 * 8 * 16 and history.seconds > 0


def test_bad_train_config_raises():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)


def test_top_k_keeps_exactly_k_and_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept_k = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept_k.tolist() == [[True, True, False, False]]
    # mass before each token: 0, 0.5, 0.8, 0.95 -> p=0.8 keeps the first two
    kept_p = torch.isfinite(filter_logits(logits, top_p=0.8))
    assert kept_p.tolist() == [[True, True, False, False]]
    kept_all = torch.isfinite(filter_logits(logits, top_p=1.0))
    assert kept_all.all()


def test_low_temperature_approaches_greedy_and_greedy_is_the_argmax():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    assert sample_next(logits, greedy=True).item() == 1
    draws = [
        sample_next(logits, temperature=0.01, generator=torch.Generator().manual_seed(s)).item()
        for s in range(20)
    ]
    assert draws == [1] * 20


@pytest.mark.parametrize("context, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError)])
def test_bits_per_char_context_must_be_a_positive_int(context, error):
    ids = torch.randint(0, 16, (101,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(error, match="context must be an int >= 1"):
        bits_per_char(_Uniform(16), ids, context, torch.device("cpu"))


def test_bits_per_char_rejects_ids_outside_the_model_vocabulary_and_bad_devices():
    ids = torch.tensor([0, 3, 16, 2])
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        bits_per_char(_Uniform(16), ids, 2, torch.device("cpu"))
    with pytest.raises(ValueError, match="accepted: 'cpu'"):
        bits_per_char(_Uniform(16), torch.tensor([0, 1, 2]), 2, "gpu")


@pytest.mark.parametrize(
    "nlls, match",
    [
        ([[float("nan")]], "finite numbers >= 0"),
        ([[-5.0]], "finite numbers >= 0"),
        ([[float("inf")]], "finite numbers >= 0"),
        ([[1000.0]], "too large for a float"),
    ],
)
def test_perplexity_rejects_invalid_or_overflowing_nlls(nlls, match):
    with pytest.raises(ValueError, match=match):
        perplexity(nlls)


def test_perplexity_accepts_tensors_and_rejects_bools_and_non_sequences():
    assert perplexity([torch.tensor([math.log(2)] * 2)]) == pytest.approx(2.0)
    assert perplexity([[700.0]]) == pytest.approx(math.exp(700.0))
    with pytest.raises(TypeError, match="must be numbers"):
        perplexity([[True]])
    with pytest.raises(TypeError, match="list of sequences"):
        perplexity(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="1-D float tensor"):
        perplexity([torch.ones(2, 2)])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"warmup_steps": float("nan")}, TypeError, "warmup_steps must be an int >= 0"),
        ({"warmup_steps": 2.5}, TypeError, "warmup_steps must be an int >= 0"),
        ({"warmup_steps": -1}, ValueError, "warmup_steps must be an int >= 0"),
        ({"grad_clip": float("nan")}, ValueError, "grad_clip must be a finite number"),
        ({"weight_decay": float("nan")}, ValueError, "weight_decay must be a finite number"),
        ({"lr": float("inf")}, ValueError, "lr must be a finite number"),
        ({"lr": True}, TypeError, "lr must be a finite number"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_train_config_validates_every_field_up_front(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_train_lm_checks_the_device_and_ids_before_training():
    model = CharLSTM(LSTMConfig(vocab_size=7, embed_dim=8, hidden_dim=16))
    ids = torch.tensor([i % 7 for i in range(200)])
    cfg = TrainConfig(steps=2, batch_size=2, block_size=8, eval_every=1, eval_chars=20)
    with pytest.raises(ValueError, match="accepted: 'cpu'"):
        train_lm(model, ids, ids, cfg, "gpu", progress=False)
    with pytest.raises(TypeError, match="int64"):
        train_lm(model, ids.float(), ids, cfg, "cpu", progress=False)
    with pytest.raises(ValueError, match="val_ids must be 1-D with at least 2"):
        train_lm(model, ids, ids[:1], cfg, "cpu", progress=False)


def test_next_char_loss_rejects_mismatched_shapes_and_out_of_range_targets():
    logits = torch.randn(2, 5, 7)
    with pytest.raises(ValueError, match=r"same B and T"):
        next_char_loss(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        next_char_loss(logits[0], torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        next_char_loss(logits, torch.full((2, 5), 7))
    with pytest.raises(TypeError, match="int64"):
        next_char_loss(logits, torch.zeros(2, 5))


def test_filter_logits_and_sample_next_require_two_dimensional_logits():
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        filter_logits(torch.randn(10), top_k=3)
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        filter_logits(torch.randn(10), top_p=0.5)
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        sample_next(torch.randn(10))


@pytest.mark.parametrize(
    "row", [[float("nan"), 0.0], [float("-inf"), float("-inf")], [float("inf"), 0.0]]
)
def test_sample_next_rejects_rows_with_nothing_to_draw(row):
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        sample_next(torch.tensor([row]))
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        sample_next(torch.tensor([row]), greedy=True)


def test_sample_next_accepts_minus_inf_entries_and_validates_even_when_greedy():
    logits = torch.tensor([[float("-inf"), 1.0, 0.0]])
    assert sample_next(logits, generator=torch.Generator().manual_seed(0)).item() in (1, 2)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=-1, top_k=0, greedy=True)
    with pytest.raises(ValueError, match="top_k"):
        sample_next(logits, top_k=0, greedy=True)


def test_check_decoding_requires_a_finite_temperature():
    with pytest.raises(ValueError, match="finite number > 0"):
        check_decoding(temperature=float("inf"))
    with pytest.raises(ValueError, match="finite number > 0"):
        check_decoding(temperature=float("nan"))


def test_numpy_scalars_are_accepted_by_config_lr_at_and_bits_per_char():
    cfg = TrainConfig(steps=100, warmup_steps=np.int64(10), seed=np.int64(3), lr=np.float32(0.5))
    assert type(cfg.warmup_steps) is int and type(cfg.seed) is int and type(cfg.lr) is float
    plain = TrainConfig(steps=100, warmup_steps=10, seed=3, lr=float(np.float32(0.5)))
    assert cfg == plain
    for step in (0, 9, 50, 99):
        assert lr_at(np.int64(step), cfg) == lr_at(step, plain)
    ids = torch.randint(0, 16, (101,), generator=torch.Generator().manual_seed(0))
    device = torch.device("cpu")
    assert bits_per_char(_Uniform(16), ids, np.int64(10), device) == pytest.approx(4.0)
    with pytest.raises(TypeError, match="lr must be a finite number"):
        TrainConfig(lr=np.bool_(True))
    with pytest.raises(ValueError, match="lr must be a finite number"):
        TrainConfig(lr=np.float32("nan"))
    with pytest.raises(TypeError, match="step must be an int >= 0"):
        lr_at(np.float64(1.0), cfg)


def test_decoding_settings_accept_numpy_scalars():
    assert check_decoding(np.float32(0.5), np.int64(3), np.float32(0.5)) == (0.5, 3, 0.5)
    logits = torch.randn(2, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        filter_logits(logits, np.float64(0.7), np.int32(4), np.float64(0.9)),
        filter_logits(logits, 0.7, 4, 0.9),
    )
    with pytest.raises(ValueError, match="top_p must be None or a number in"):
        check_decoding(top_p=np.float64("nan"))
    with pytest.raises(ValueError, match="top_k must be None or an int >= 1"):
        check_decoding(top_k=np.bool_(True))


def test_check_greedy_accepts_numpy_bools_but_not_ints():
    from companion.sampling import check_greedy

    assert check_greedy(np.bool_(True)) is True and check_greedy(np.bool_(False)) is False
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    assert sample_next(logits, greedy=np.bool_(True)).item() == 1
    for bad in (1, 0, np.int64(1), "yes"):
        with pytest.raises(TypeError, match="greedy must be True or False"):
            check_greedy(bad)


def test_perplexity_accepts_a_batch_tensor_and_lists_of_scalar_tensors():
    nlls = torch.tensor([[math.log(2), math.log(2)], [math.log(2), math.log(2)]])
    assert perplexity(nlls) == pytest.approx(2.0)
    assert perplexity([[torch.tensor(math.log(3))] * 2, [torch.tensor(math.log(3))]]) == (
        pytest.approx(3.0)
    )
    with pytest.raises(TypeError, match=r"\(B, T\) float tensor"):
        perplexity(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="must be numbers"):
        perplexity([[torch.tensor(True)]])
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        perplexity(torch.tensor([[1.0, float("nan")]]))


def test_bits_from_nats_accepts_tensors_and_numpy_scalars():
    out = bits_from_nats(torch.tensor(1.0))
    assert isinstance(out, torch.Tensor) and out.item() == pytest.approx(1 / math.log(2))
    assert torch.allclose(
        bits_from_nats(torch.tensor([math.log(2), 0.0])), torch.tensor([1.0, 0.0])
    )
    assert bits_from_nats(np.float32(math.log(2))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN"):
        bits_from_nats(torch.tensor(float("nan")))
    with pytest.raises(TypeError, match="nats must be a number"):
        bits_from_nats(True)
    with pytest.raises(TypeError, match="nats must be a number"):
        bits_from_nats(torch.tensor(True))
