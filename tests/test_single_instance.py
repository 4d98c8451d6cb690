"""One window per data folder: a second launch raises the first and exits (issue 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from app.ui.single_instance import SingleInstance, bring_to_front, instance_name


@pytest.fixture
def first(hearth_home: Path) -> Iterator[SingleInstance]:
    instance = SingleInstance.for_data_folder(hearth_home)
    yield instance
    instance.close()


def test_second_instance_raises_the_first(qtbot: object, first: SingleInstance,
                                          hearth_home: Path, tmp_path: Path) -> None:
    assert first.start()
    second = SingleInstance.for_data_folder(hearth_home)
    with qtbot.waitSignal(first.activated, timeout=5000):  # type: ignore[attr-defined]
        assert not second.start()
    assert second.delivered
    other = SingleInstance.for_data_folder(tmp_path / "another-home")  # another data folder
    assert other.start()
    other.close()
    first.close()
    third = SingleInstance.for_data_folder(hearth_home)  # the first window closed
    assert third.start()
    third.close()


def test_socket_left_by_a_crashed_window_does_not_block_start(
        qtbot: object, first: SingleInstance, hearth_home: Path) -> None:
    name = instance_name(hearth_home)
    crashed = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from PySide6.QtCore import QCoreApplication\n"
         "from PySide6.QtNetwork import QLocalServer\n"
         "app = QCoreApplication([])\n"
         "server = QLocalServer()\n"
         f"assert server.listen({name!r}), server.errorString()\n"
         "print('listening', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert crashed.stdout is not None and crashed.stdout.readline().strip() == "listening"
    finally:
        crashed.kill()  # SIGKILL: its socket file stays behind
        crashed.wait()
    assert first.start()
    second = SingleInstance.for_data_folder(hearth_home)
    with qtbot.waitSignal(first.activated, timeout=5000):  # type: ignore[attr-defined]
        assert not second.start()
    assert second.delivered


def test_second_real_launch_exits_and_brings_the_window_forward(
        qtbot: object, first: SingleInstance, hearth_home: Path) -> None:
    window = QWidget()
    qtbot.addWidget(window)  # type: ignore[attr-defined]
    window.showMinimized()
    assert first.start()
    first.activated.connect(lambda: bring_to_front(window))
    env = {**os.environ, "HEARTH_HOME": str(hearth_home), "QT_QPA_PLATFORM": "offscreen"}
    launch = subprocess.Popen([sys.executable, "-m", "app"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with qtbot.waitSignal(first.activated, timeout=30000):  # type: ignore[attr-defined]
        pass
    _out, err = launch.communicate(timeout=30)
    assert launch.returncode == 0, err
    assert not (hearth_home / "hearth.db").exists()  # it never opened the data
    assert window.isVisible() and not window.isMinimized()
