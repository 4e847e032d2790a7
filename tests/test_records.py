"""Recorded benchmark tables are read, not copied; the committed H200 file parses."""

import pytest

from ocrsr_lib.records import RESULTS, recorded_machine, recorded_rates


def test_a_recorded_table_gives_its_rows_in_order(tmp_path):
    path = tmp_path / "gpu.md"
    path.write_text(
        "# GPU, 2026-01-01: one test card\n\nprose | not a row\n\n"
        "| measurement | images/s |\n| --- | ---: |\n| training, batch 32 | 1,234.5 |\n"
        "| reading | 7 |\n| variant | last step | more |\n"
        "## Another table\n| other | 3 |\n"
    )
    assert recorded_rates(path) == {"training, batch 32": 1234.5, "reading": 7.0, "other": 3.0}
    assert recorded_rates(path, "Another") == {"other": 3.0}
    with pytest.raises(ValueError, match="under a heading with 'Missing'"):
        recorded_rates(path, "Missing")
    assert recorded_machine(path) == "GPU, 2026-01-01: one test card"


def test_a_file_without_rows_or_machine_is_refused(tmp_path):
    path = tmp_path / "empty.md"
    path.write_text("nothing here\n")
    with pytest.raises(ValueError, match="no benchmark rows"):
        recorded_rates(path)
    with pytest.raises(ValueError, match="which machine"):
        recorded_machine(path)


def test_the_committed_h200_recording_has_the_paper_size_rows():
    rates = recorded_rates(RESULTS / "2026-11-26-h200.md", "run_benchmarks.py")
    assert rates["SR training (text-focus, paper guide), STN+EDSR paper, batch 32"] > 0
    assert rates["CDistNet training, paper, batch 32"] > 0
    assert "H200" in recorded_machine(RESULTS / "2026-11-26-h200.md")
