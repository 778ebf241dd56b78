"""The Kneser-Ney character n-gram baseline."""

import math

import numpy as np
import pytest
import torch

from companion.ngram import CharNGram, best_order

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_each_conditional_distribution_sums_to_one(order):
    model = CharNGram(order, sorted(set(TEXT) | {"z"})).fit(TEXT)
    for context in ["", "th", "the c", "zzzz", "on the "]:
        assert model.distribution(context).sum().item() == pytest.approx(1.0, abs=1e-12)


def test_unigram_with_one_seen_character_matches_the_hand_computed_value():
    # Order 1, text "aab", vocab {a, b, c}, D = 0.5: counts a=2, b=1, total 3, 2 types.
    # P(a) = (2 - 0.5)/3 + 0.5*2/3 * 1/3 = 0.5 + 1/9; P(c) = 0.5*2/3 * 1/3 = 1/9.
    model = CharNGram(1, "abc", discount=0.5).fit("aab")
    assert model.prob("", "a") == pytest.approx(0.5 + 1 / 9)
    assert model.prob("", "c") == pytest.approx(1 / 9)


def test_bits_per_char_is_the_mean_negative_log2_probability():
    model = CharNGram(2, sorted(set(TEXT))).fit(TEXT)
    text = "the mat"
    expected = -sum(math.log2(model.prob(text[:t], text[t])) for t in range(1, len(text)))
    assert model.bits_per_char(text) == pytest.approx(expected / (len(text) - 1))


def test_higher_order_wins_on_repetitive_text_and_best_order_reports_all():
    model, scores = best_order(TEXT, TEXT[:200], sorted(set(TEXT)), orders=[1, 3])
    assert set(scores) == {1, 3} and scores[3] < scores[1]
    assert model.order == 3


def test_bad_arguments_and_unknown_characters_raise():
    with pytest.raises(ValueError, match="order"):
        CharNGram(0, "ab")
    with pytest.raises(ValueError, match="discount"):
        CharNGram(2, "ab", discount=1.5)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        CharNGram(2, "ab").fit("abc")


def test_sampling_only_produces_vocabulary_characters():
    model = CharNGram(3, sorted(set(TEXT))).fit(TEXT)
    out = model.sample("the ", 30, torch.Generator().manual_seed(0))
    assert len(out) == 34 and set(out) <= set(TEXT)


def test_empty_vocabulary_or_training_text_is_rejected():
    with pytest.raises(ValueError, match="at least one character"):
        CharNGram(2, "")
    with pytest.raises(ValueError, match="non-empty"):
        CharNGram(2, "ab").fit("")
    with pytest.raises(TypeError, match="single characters"):
        CharNGram(2, ["ab"])


def test_prob_requires_one_vocabulary_character():
    model = CharNGram(2, "ab").fit("abab")
    with pytest.raises(ValueError, match="single character of the vocabulary"):
        model.prob("ab", "Z")
    with pytest.raises(ValueError, match="single character of the vocabulary"):
        model.prob("ab", "ab")
    with pytest.raises(TypeError, match="context must be a str"):
        model.distribution(None)


@pytest.mark.parametrize("length, error", [(-2, ValueError), (True, TypeError), (2.0, TypeError)])
def test_sample_length_must_be_a_non_negative_int(length, error):
    model = CharNGram(2, "ab").fit("abab")
    with pytest.raises(error, match="length must be an int >= 0"):
        model.sample("ab", length, torch.Generator())


def test_sample_of_length_zero_returns_the_prompt():
    model = CharNGram(2, "ab").fit("abab")
    assert model.sample("ab", 0, torch.Generator()) == "ab"


def test_best_order_needs_at_least_one_order():
    with pytest.raises(ValueError, match="at least one"):
        best_order(TEXT, TEXT[:50], sorted(set(TEXT)), orders=[])


@pytest.mark.parametrize(
    "vocab", [set("ab"), frozenset("ab"), dict.fromkeys("ba").keys(), ["b", "a"], "ba"]
)
def test_vocab_may_be_any_iterable_of_single_characters(vocab):
    model = CharNGram(2, vocab).fit("abab")
    assert model.vocab == ("a", "b")
    with pytest.raises(TypeError, match="iterable of single characters"):
        CharNGram(2, 5)
    with pytest.raises(TypeError, match="iterable of single characters"):
        CharNGram(2, {"ab", "c"})


def test_a_context_with_characters_outside_the_vocabulary_backs_off():
    model = CharNGram(3, "abc").fit("abcabcab" * 4)
    # "Zc" and "ZZ" are unseen contexts: the model backs off to the orders they allow
    assert model.prob("Zc", "a") == pytest.approx(model.prob("c", "a"))
    assert model.prob("ZZ", "a") == pytest.approx(model.prob("", "a"))
    dist = model.distribution("aZ")
    assert dist.sum().item() == pytest.approx(1.0)
    assert torch.allclose(dist, model.distribution(""))
    assert model.sample("Z", 3, torch.Generator().manual_seed(0)).startswith("Z")
    with pytest.raises(ValueError, match="single character of the vocabulary"):
        model.prob("ab", "Z")


def test_numpy_scalars_are_accepted_for_order_discount_and_length():
    model = CharNGram(np.int64(2), "ab", discount=np.float32(0.5)).fit("abab")
    assert model.order == 2 and type(model.order) is int
    assert model.discount == pytest.approx(0.5) and type(model.discount) is float
    plain = CharNGram(2, "ab", discount=0.5).fit("abab")
    assert model.sample("a", np.int64(4), torch.Generator().manual_seed(1)) == plain.sample(
        "a", 4, torch.Generator().manual_seed(1)
    )
    for bad in (np.bool_(True), float("nan")):
        with pytest.raises((TypeError, ValueError), match="discount"):
            CharNGram(2, "ab", discount=bad)
    with pytest.raises(TypeError, match="length must be an int >= 0"):
        model.sample("a", np.float64(2.0), torch.Generator())
