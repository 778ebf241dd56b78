import io

import pytest

from companion.progress import tqdm


def test_summary_mode_writes_only_the_final_state_once(monkeypatch):
    monkeypatch.setenv("COMPANION_PROGRESS", "summary")
    out = io.StringIO()
    for _ in tqdm(range(50), desc="loop", file=out, mininterval=0):
        pass
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loop: 100%") and "50/50" in lines[0]


def test_live_mode_redraws_as_tqdm_does(monkeypatch):
    monkeypatch.setenv("COMPANION_PROGRESS", "live")
    out = io.StringIO()
    for _ in tqdm(range(5), desc="loop", file=out, mininterval=0, miniters=1):
        pass
    assert out.getvalue().count("\r") > 2


def test_off_mode_and_disable_print_nothing(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv("COMPANION_PROGRESS", "off")
    list(tqdm(range(5), file=out))
    monkeypatch.setenv("COMPANION_PROGRESS", "summary")
    list(tqdm(range(5), file=out, disable=True))
    assert out.getvalue() == ""


def test_unknown_mode_names_the_accepted_ones(monkeypatch):
    monkeypatch.setenv("COMPANION_PROGRESS", "quiet")
    with pytest.raises(ValueError, match="accepted: 'live', 'summary', 'off'"):
        tqdm(range(3))
