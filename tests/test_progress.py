"""Progress bars: throttled, and switched off by OCRSR_PROGRESS=0."""

from ocrsr_lib.progress import progress_bar, progress_enabled


def test_progress_bars_are_throttled_and_can_be_switched_off(monkeypatch):
    monkeypatch.delenv("OCRSR_PROGRESS", raising=False)
    assert progress_enabled()
    bar = progress_bar(total=3)
    assert bar.mininterval == 1.0
    bar.close()
    for value in ("0", "off", "False"):
        monkeypatch.setenv("OCRSR_PROGRESS", value)
        assert not progress_enabled()
        bar = progress_bar(total=3)
        assert bar.disable
        bar.close()
