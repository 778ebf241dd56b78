"""The GPT model: causality, tied weights, decoding checks, and equality with transformers."""

import math

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from companion.gpt import GPT, GPTConfig
from companion.lm_train import next_char_loss

SMALL = GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=32)


def small_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(SMALL).eval()


def test_changing_later_tokens_leaves_earlier_outputs_bit_identical():
    model = small_gpt()
    x = torch.randint(0, 37, (2, 16), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[:, 9:] = (y[:, 9:] + 5) % 37
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[:, :9], b[:, :9])
    assert not torch.equal(a[:, 9:], b[:, 9:])


def test_loss_at_initialisation_is_within_ten_percent_of_log_vocab():
    model = small_gpt()
    x = torch.randint(0, 37, (8, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        loss = next_char_loss(model(x[:, :-1]), x[:, 1:]).item()
    assert abs(loss - math.log(37)) < 0.1 * math.log(37)


def test_tied_weights_share_storage_and_stay_tied_after_an_optimiser_step():
    model = small_gpt().train()
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()
    before = model.wte.weight.detach().clone()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(0, 37, (4, 16), generator=torch.Generator().manual_seed(3))
    next_char_loss(model(x[:, :-1]), x[:, 1:]).backward()
    opt.step()
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()
    assert torch.equal(model.lm_head.weight, model.wte.weight)
    assert not torch.equal(model.wte.weight, before)
    # the shared tensor is counted once
    assert model.num_parameters() == sum(p.numel() for p in set(model.parameters()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_invalid_decoding_settings_raise_naming_the_accepted_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_gpt().generate(torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)


def test_sequence_longer_than_the_context_is_rejected():
    with pytest.raises(ValueError, match="block_size"):
        small_gpt()(torch.zeros(1, 17, dtype=torch.long))


def test_generation_crops_to_the_context_and_keeps_the_prompt():
    model = small_gpt()
    prompt = torch.randint(0, 37, (2, 5), generator=torch.Generator().manual_seed(4))
    out = model.generate(prompt, 20, top_k=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 25) and torch.equal(out[:, :5], prompt)


def _reference_pair(attn_implementation):
    # Random init from a small config: nothing is downloaded.
    torch.manual_seed(0)
    hc = GPT2Config(
        vocab_size=53,
        n_positions=24,
        n_embd=48,
        n_layer=3,
        n_head=4,
        bos_token_id=None,
        eos_token_id=None,
        attn_implementation=attn_implementation,
    )
    hf = GPT2LMHeadModel(hc).eval()
    return hf, GPT.from_transformers(hf).eval()


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_same_logits_as_transformers_gpt2_within_1e_5(attn_implementation):
    hf, ours = _reference_pair(attn_implementation)
    x = torch.randint(0, 53, (3, 24), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected, got = hf(x).logits, ours(x)
    assert got.shape == expected.shape == (3, 24, 53)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_same_greedy_generation_as_transformers_gpt2():
    hf, ours = _reference_pair("eager")
    prompt = torch.randint(0, 53, (2, 4), generator=torch.Generator().manual_seed(6))
    expected = hf.generate(prompt, do_sample=False, max_new_tokens=18, pad_token_id=0)
    got = ours.generate(prompt, 18, greedy=True)
    assert torch.equal(got, expected)


def test_loading_rejects_a_different_activation():
    hc = GPT2Config(vocab_size=11, n_positions=8, n_embd=16, n_layer=1, n_head=2)
    hc.activation_function = "relu"
    with pytest.raises(ValueError, match="gelu_new"):
        GPT.from_transformers(GPT2LMHeadModel(hc))


@pytest.mark.parametrize("n, error", [(-3, ValueError), (True, TypeError), (2.0, TypeError)])
def test_generate_requires_a_non_negative_int_length(n, error):
    with pytest.raises(error, match="max_new_tokens must be an int >= 0"):
        small_gpt().generate(torch.zeros(1, 2, dtype=torch.long), n)


def test_generate_zero_tokens_returns_the_prompt():
    prompt = torch.zeros(1, 2, dtype=torch.long)
    assert torch.equal(small_gpt().generate(prompt, 0), prompt)


@pytest.mark.parametrize("value", [37, -1])
def test_ids_outside_the_vocabulary_raise_naming_the_range(value):
    model = small_gpt()
    with pytest.raises(ValueError, match=r"\[0, 37\)"):
        model(torch.full((2, 5), value))
    with pytest.raises(ValueError, match=r"\[0, 37\)"):
        model.generate(torch.full((1, 3), value), 2)


def test_float_ids_and_one_dimensional_input_are_rejected():
    model = small_gpt()
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="integer tensor"):
        model.generate(torch.zeros(1, 3), 2)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))


def test_generate_validates_greedy_and_decoding_settings_even_when_greedy():
    model = small_gpt()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(prompt, 2, temperature=-1.0, greedy=True)
    with pytest.raises(TypeError, match="greedy"):
        model.generate(prompt, 2, greedy=1)


@pytest.mark.parametrize("eps", [-1.0, 0.0, float("nan"), float("inf")])
def test_layer_norm_eps_must_be_finite_and_positive(eps):
    with pytest.raises(ValueError, match="layer_norm_eps must be a finite number > 0"):
        GPTConfig(layer_norm_eps=eps)


def test_sinusoidal_encoding_validates_length_dim_and_base():
    from companion.gpt import sinusoidal_encoding

    with pytest.raises(TypeError, match="length must be an int"):
        sinusoidal_encoding(4.5, 8)
    with pytest.raises(ValueError, match="dim a positive even int"):
        sinusoidal_encoding(4, 7)
    for base in (-1.0, 0.0, float("nan")):
        with pytest.raises(ValueError, match="base must be a finite number > 0"):
            sinusoidal_encoding(4, 8, base=base)
    assert torch.isfinite(sinusoidal_encoding(4, 8)).all()


def test_loading_rejects_an_object_that_is_not_gpt2():
    with pytest.raises(TypeError, match="GPT2LMHeadModel"):
        GPT.from_transformers(object())


def test_generate_and_sinusoidal_encoding_accept_numpy_scalars():
    from companion.gpt import sinusoidal_encoding

    model = small_gpt()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    plain = model.generate(
        prompt, 3, temperature=0.8, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(0)
    )
    numpy_args = model.generate(
        prompt,
        np.int64(3),
        temperature=np.float32(0.8),
        top_k=np.int64(5),
        top_p=np.float64(0.9),
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(plain, numpy_args)
    assert torch.equal(
        model.generate(prompt, 3, greedy=np.bool_(True)), model.generate(prompt, 3, greedy=True)
    )
    assert torch.equal(sinusoidal_encoding(np.int64(6), np.int64(8)), sinusoidal_encoding(6, 8))
    with pytest.raises(TypeError, match="max_new_tokens must be an int >= 0"):
        model.generate(prompt, np.bool_(True))
    with pytest.raises(TypeError, match="temperature"):
        model.generate(prompt, 2, temperature=np.bool_(True))
    with pytest.raises(ValueError, match="top_k"):
        model.generate(prompt, 2, top_k=np.float64(2.0))
