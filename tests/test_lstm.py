"""The character LSTM: shapes, causality, stateful generation and validation."""

import math

import numpy as np
import pytest
import torch

from companion.lm_train import next_char_loss
from companion.lstm import CharLSTM, LSTMConfig
from companion.sampling import sample_next

CONFIG = LSTMConfig(vocab_size=29, embed_dim=8, hidden_dim=32)


def small_lstm():
    torch.manual_seed(0)
    return CharLSTM(CONFIG).eval()


def test_later_tokens_do_not_change_earlier_outputs():
    model = small_lstm()
    x = torch.randint(0, 29, (2, 12), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 3) % 29
    with torch.no_grad():
        assert torch.equal(model(x)[:, :7], model(y)[:, :7])


def test_loss_at_initialisation_is_within_ten_percent_of_log_vocab():
    model = small_lstm()
    x = torch.randint(0, 29, (8, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss = next_char_loss(model(x[:, :-1]), x[:, 1:]).item()
    assert abs(loss - math.log(29)) < 0.1 * math.log(29)


def test_stateful_generation_matches_rereading_the_whole_prefix():
    model = small_lstm()
    prompt = torch.randint(0, 29, (1, 5), generator=torch.Generator().manual_seed(2))
    out = model.generate(prompt, 10, greedy=True)
    assert out.shape == (1, 15)
    with torch.no_grad():
        # greedy: each new id is the arg-max after reading everything before it
        logits = model(out[:, :-1])
    assert torch.equal(logits[0, 4:].argmax(-1), out[0, 5:])


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="hidden_dim"):
        LSTMConfig(hidden_dim=0)
    with pytest.raises(ValueError, match="top_p"):
        small_lstm().generate(torch.zeros(1, 1, dtype=torch.long), 2, top_p=2.0)


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = CharLSTM(LSTMConfig(vocab_size=29, embed_dim=8, hidden_dim=32, dropout=0.5))
    x = torch.randint(0, 29, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))  # fresh masks on every call
        model.eval()
        assert torch.equal(model(x), model(x))  # generation and scoring are exact


@pytest.mark.parametrize("n, error", [(-1, ValueError), (True, TypeError)])
def test_generate_requires_a_non_negative_int_length(n, error):
    with pytest.raises(error, match="max_new_tokens must be an int >= 0"):
        small_lstm().generate(torch.zeros(1, 2, dtype=torch.long), n)


@pytest.mark.parametrize("value", [29, -1])
def test_ids_outside_the_vocabulary_raise_naming_the_range(value):
    model = small_lstm()
    with pytest.raises(ValueError, match=r"\[0, 29\)"):
        model(torch.full((2, 5), value))
    with pytest.raises(ValueError, match=r"\[0, 29\)"):
        model.generate(torch.full((1, 3), value), 2)


def test_float_ids_and_a_bad_state_are_rejected():
    model = small_lstm()
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="state must be None or a pair"):
        model.forward_with_state(torch.zeros(2, 5, dtype=torch.long), (torch.zeros(1, 1, 1),) * 2)


def test_generate_on_a_batch_keeps_the_stream_of_forward_with_state():
    # the unchecked generation path computes exactly what the checked public one does
    model = small_lstm()
    prompt = torch.randint(0, 29, (2, 4), generator=torch.Generator().manual_seed(5))
    out = model.generate(prompt, 6, top_k=5, generator=torch.Generator().manual_seed(0))
    logits, state = model.forward_with_state(prompt)
    gen = torch.Generator().manual_seed(0)
    ids = [prompt]
    for _ in range(6):
        nxt = sample_next(logits[:, -1, :], top_k=5, generator=gen)
        ids.append(nxt)
        logits, state = model.forward_with_state(nxt, state)
    assert torch.equal(out, torch.cat(ids, dim=1))


def test_generate_accepts_numpy_scalars_with_the_same_stream():
    model = small_lstm()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    plain = model.generate(prompt, 4, temperature=0.7, top_p=0.8, generator=torch.Generator())
    numpy_args = model.generate(
        prompt,
        np.int64(4),
        temperature=np.float32(0.7),
        top_p=np.float32(0.8),
        generator=torch.Generator(),
    )
    assert torch.equal(plain, numpy_args)
    assert model.generate(prompt, np.int32(3), greedy=np.bool_(False)).shape == (1, 5)
    with pytest.raises(TypeError, match="greedy"):
        model.generate(prompt, 2, greedy=0)
