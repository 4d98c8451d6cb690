"""Quantize and measurement workers start isolated: a user's folder cannot take over a job."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine.gguf.quant_types import quant_type
from app.engine.quantize.quantize import predict_sizes
from app.engine.quantize.worker_process import WORKER_MODULE, worker_command

_HOSTILE = "from pathlib import Path\nPath({marker!r}).write_text('hostile code ran')\n"


@pytest.fixture
def hostile_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The current folder (also on PYTHONPATH) holds an `app` package that leaves a marker."""
    folder = tmp_path / "project"
    marker = tmp_path / "marker.txt"
    code = _HOSTILE.format(marker=str(marker))
    for package in ("app", "app/engine", "app/engine/quantize"):
        (folder / package).mkdir(parents=True)
        (folder / package / "__init__.py").write_text(code)
    (folder / "app/engine/quantize/quantize_worker.py").write_text(code)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder, marker


def test_the_hostile_package_would_run_in_a_plain_child(hostile_folder: tuple[Path, Path]) -> None:
    """The set-up is a real threat: `python -m` as workers used to start runs it."""
    _folder, marker = hostile_folder
    subprocess.run([sys.executable, "-m", WORKER_MODULE], input="{}", text=True,
                   capture_output=True, timeout=60)
    assert marker.read_text() == "hostile code ran"


def test_a_worker_ignores_an_app_package_in_the_current_folder(
        hostile_folder: tuple[Path, Path], tiny_model: Path) -> None:
    folder, marker = hostile_folder
    # A model named relative to the user's folder still reaches the child, which runs elsewhere.
    shutil.copy(tiny_model, folder / "model.gguf")
    sizes = predict_sizes(Path("model.gguf"), [quant_type("Q8_0")])
    assert not marker.exists()
    # The dry run really ran in Hearth's worker: F32 to Q8_0 is about a quarter of the size.
    size = sizes["Q8_0"]
    assert size is not None and 0.2 < size / tiny_model.stat().st_size < 0.5


def test_an_isolated_child_finds_hearths_own_package(hostile_folder: tuple[Path, Path]) -> None:
    """With -I neither the current folder nor PYTHONPATH is searched; Hearth installed editable
    (`make run`, `make test`) is still found, through the finder pip put in site-packages."""
    _folder, marker = hostile_folder
    probe = "import app.engine.gguf.info as m; print(m.__file__)"
    result = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == (
        Path(__file__).resolve().parents[1] / "app/engine/gguf/info.py")
    assert not marker.exists()
    assert worker_command()[1] == "-I"
