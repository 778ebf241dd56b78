"""Corpus loaders, the fixed split and the character tokenizer."""

import numpy as np
import pytest
import torch

from companion.text import (
    UNKNOWN,
    CharTokenizer,
    check_count,
    check_ids,
    dedupe_paragraphs,
    load_code,
    load_prose,
    load_text_file,
    random_batch,
    split_text,
)


def test_prose_corpus_is_large_english_text_and_dedupe_removes_only_repeats():
    raw, deduped = load_prose(dedupe=False), load_prose()
    assert len(raw) > 400_000 and len(deduped) > 300_000
    assert len(deduped) < len(raw)
    paragraphs = [p.strip() for p in deduped.split("\n\n")]
    assert len(paragraphs) == len(set(paragraphs))
    assert " the " in deduped


def test_dedupe_keeps_the_first_copy_in_order():
    assert dedupe_paragraphs("a\n\nb\n\na\n\nc") == "a\n\nb\n\nc"


def test_code_corpus_reads_stdlib_sources_and_names_a_missing_file():
    code = load_code(("heapq.py", "bisect.py"))
    assert code.startswith("# file: heapq.py\n") and "def insort" in code
    with pytest.raises(FileNotFoundError, match="no_such_module.py"):
        load_code(("no_such_module.py",))


def test_split_is_fixed_disjoint_and_complete():
    text = "".join(chr(97 + i % 26) for i in range(25_000))
    train, val = split_text(text, block=1_000)
    assert len(train) + len(val) == len(text)
    # blocks 9 and 19 (0-based) are validation
    assert val == text[9_000:10_000] + text[19_000:20_000]
    assert split_text(text, block=1_000) == (train, val)


def test_split_rejects_bad_arguments_and_short_text():
    with pytest.raises(ValueError, match="val_fraction"):
        split_text("x" * 100_000, val_fraction=1.5)
    with pytest.raises(ValueError, match="at least"):
        split_text("x" * 500, block=100)


def test_tokenizer_round_trips_and_rejects_unknown_characters_by_name():
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab_size == len(set("hello world"))
    ids = tok.encode("hello")
    assert ids.dtype == torch.long and tok.decode(ids) == "hello"
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("hez")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 8\)"):
        tok.decode([99])


def test_tokenizer_with_unknown_maps_unseen_characters_to_the_unknown_id():
    tok = CharTokenizer.from_text("abc", unknown=True)
    assert tok.chars[0] == UNKNOWN
    assert tok.encode("azb").tolist() == [1, 0, 2]
    assert tok.decode(tok.encode("azb")) == "a" + UNKNOWN + "b"


def test_user_text_file_loads_utf8_and_rejects_bad_files(tmp_path):
    good = tmp_path / "poems.txt"
    good.write_text("Shall I compare thee\r\n" * 100, encoding="utf-8")
    assert "\r" not in load_text_file(good)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(("caf\xe9 " * 400).encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_text_file(bad)
    with pytest.raises(ValueError, match="at least 1000"):
        load_text_file(_short(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_text_file(tmp_path / "missing.txt")


def _short(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("too short", encoding="utf-8")
    return path


def test_random_batch_targets_are_inputs_shifted_by_one():
    ids = torch.arange(100)
    x, y = random_batch(ids, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10)
    assert torch.equal(y, x + 1)


@pytest.mark.parametrize("fraction", [0.7, 0.55, 0.3, 0.15])
def test_split_rejects_a_fraction_that_is_not_one_over_an_integer(fraction):
    with pytest.raises(ValueError, match=r"1/k for an integer k >= 2"):
        split_text("x" * 100, fraction, 10)


def test_split_accepts_one_over_k_and_rejects_bool_block():
    train, val = split_text("x" * 100, 0.5, 10)
    assert len(train) == len(val) == 50
    train, val = split_text("x" * 90, 1 / 3, 10)
    assert len(val) == 30
    with pytest.raises(ValueError, match="block"):
        split_text("x" * 100_000, block=True)
    with pytest.raises(TypeError, match="text must be a str"):
        split_text(list("x" * 100_000))


def test_load_code_rejects_a_single_name_given_as_a_string():
    with pytest.raises(TypeError, match="tuple or list of file names"):
        load_code("random.py")


def test_decode_rejects_bools_floats_and_two_dimensional_tensors():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(TypeError, match="not bools"):
        tok.decode([True])
    with pytest.raises(TypeError, match="not bools or floats"):
        tok.decode([1.0])
    with pytest.raises(ValueError, match="1-D tensor"):
        tok.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        tok.decode(torch.zeros(3))
    with pytest.raises(TypeError, match="sequence of ints"):
        tok.decode("abc")


@pytest.mark.parametrize(
    "batch_size, block_size, error",
    [(-1, 5, ValueError), (2, -3, ValueError), (2, 0, ValueError), (True, 5, TypeError)],
)
def test_random_batch_requires_positive_int_sizes(batch_size, block_size, error):
    with pytest.raises(error, match=r"must be an int >= 1"):
        random_batch(torch.arange(100), batch_size, block_size, torch.Generator())


def test_random_batch_rejects_float_ids_and_a_missing_generator():
    with pytest.raises(TypeError, match="integer tensor"):
        random_batch(torch.arange(100.0), 2, 5, torch.Generator())
    with pytest.raises(TypeError, match="CPU torch.Generator"):
        random_batch(torch.arange(100), 2, 5, None)


def test_check_count_accepts_numpy_integers_and_returns_a_plain_int():
    for value in (3, np.int64(3), np.int32(3), np.uint8(3)):
        out = check_count(value, "n")
        assert out == 3 and type(out) is int
    for bad in (True, np.bool_(True), 3.0, np.float64(3.0), "3", None):
        with pytest.raises(TypeError, match="n must be an int >= 1"):
            check_count(bad, "n")
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        check_count(np.int64(0), "n")


def test_split_accepts_numpy_fractions_and_blocks():
    text = "abcdefghij" * 100
    expected = split_text(text, 0.1, 10)
    assert split_text(text, np.float32(0.1), np.int64(10)) == expected
    assert split_text(text, np.float64(0.1), 10) == expected
    assert split_text(text, np.float32(0.25), 10) == split_text(text, 0.25, 10)
    with pytest.raises(ValueError, match=r"1/k for an integer k >= 2"):
        split_text(text, np.float32(0.3), 10)
    with pytest.raises(TypeError, match="val_fraction"):
        split_text(text, np.bool_(True), 10)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_text(text, float("nan"), 10)


@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.int32, torch.int64])
def test_decode_accepts_every_integer_dtype_and_scalar_ids(dtype):
    tok = CharTokenizer.from_text("abc")
    assert tok.decode(torch.tensor([2, 0, 1], dtype=dtype)) == "cab"
    assert tok.decode([torch.tensor(2, dtype=dtype), torch.tensor(0, dtype=dtype)]) == "ca"
    assert tok.decode([np.int64(1), np.uint8(2), 0]) == "bca"
    with pytest.raises(TypeError, match="integer tensor"):
        tok.decode(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="not bools or floats"):
        tok.decode([torch.tensor(1.0)])
    with pytest.raises(TypeError, match="not bools or floats"):
        tok.decode([np.bool_(True)])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tok.decode(torch.tensor([3], dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32, torch.int64])
def test_random_batch_accepts_integer_ids_and_numpy_sizes(dtype):
    ids = torch.arange(100) % 50
    x, y = random_batch(ids, 4, 8, torch.Generator().manual_seed(3))
    xd, yd = random_batch(
        ids.to(dtype), np.int64(4), np.int64(8), torch.Generator().manual_seed(3)
    )
    assert xd.dtype == dtype and torch.equal(xd.long(), x) and torch.equal(yd.long(), y)


def test_check_ids_message_names_every_accepted_dtype():
    with pytest.raises(TypeError, match=r"integer tensor of token ids \(int64 or int32\)"):
        check_ids([1, 2])
    with pytest.raises(TypeError, match=r"\(int64 or int32\), got torch.uint8"):
        check_ids(torch.zeros(2, dtype=torch.uint8))
