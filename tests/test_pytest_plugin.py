"""Hearth's pytest plugin leaves other projects' Qt platform alone; its Qt fixtures go offscreen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_NO_DISPLAY = ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")


def _env_without_display() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _NO_DISPLAY}


def test_loading_the_plugin_does_not_choose_a_qt_platform() -> None:
    """Every project with Hearth installed loads the plugin (entry point `pytest11`)."""
    probe = "import os, app.testing.plugin; print(os.environ.get('QT_QPA_PLATFORM'))"
    result = subprocess.run([sys.executable, "-c", probe], env=_env_without_display(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_a_project_using_the_offscreen_fixture_gets_qt_without_a_display(tmp_path: Path) -> None:
    """A project of Hearth's users, run with no display and no platform chosen: pytest-qt's
    QApplication starts offscreen when the test asks for `hearth_offscreen_qt` before `qtbot`,
    and a test that does not ask sees no platform chosen for it."""
    (tmp_path / "test_theirs.py").write_text(
        "import os\n"
        "def test_platform_untouched():\n"
        "    assert 'QT_QPA_PLATFORM' not in os.environ\n"
        "def test_window(hearth_offscreen_qt, qtbot):\n"
        "    from PySide6.QtWidgets import QApplication, QLabel\n"
        "    label = QLabel('hi')\n"
        "    qtbot.addWidget(label)\n"
        "    label.show()\n"
        "    assert QApplication.platformName() == 'offscreen'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_theirs.py"],
        cwd=tmp_path, env=_env_without_display(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
