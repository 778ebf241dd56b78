from companion import bench


def test_every_page_with_code_is_found_for_timing():
    paths = bench.notebook_paths()
    names = {p.relative_to(bench.ROOT).as_posix() for p in paths}
    assert {"book/intro.md", "book/orientation/measuring.md"} <= names
    assert all("{code-cell}" in p.read_text() for p in paths)


def test_targets_flag_a_notebook_over_its_budget_and_failed_section_targets():
    results = {
        "notebooks": {"seconds": {"a.md": 12.0, "b.md": 200.0}, "total_seconds": 212.0},
        "digits_eval": {"targets": {"accuracy >= 0.97": True}},
        "other": {"targets": {"speed-up >= 30": False}},
    }
    checks = bench.check_targets(results)
    assert checks["notebook a.md <= 180 s"] is True
    assert checks["notebook b.md <= 180 s"] is False
    assert checks["digits_eval: accuracy >= 0.97"] is True
    assert checks["other: speed-up >= 30"] is False
