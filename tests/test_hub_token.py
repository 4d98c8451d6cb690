"""Where Hearth keeps the Hugging Face token (the OS keyring, else a 0600 file), and where it
finds one: its own first, then the user's Hugging Face login."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import PasswordDeleteError

from app.cli import main
from app.engine.hub import hf_token as hub_token


class MemoryKeyring(KeyringBackend):
    """A working keyring backend kept in memory, as the OS keyring would be on a desktop."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """keyring's fail backend: what headless Linux (CI, a server) gets."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def desktop_keyring(hearth_home: Path) -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def hf_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keyring: None) -> Path:
    """HF_TOKEN_PATH pointing at a temp file, as `hf auth login` writes it; no keyring, no env."""
    from huggingface_hub import constants

    path = tmp_path / "hf-home" / "token"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", str(path))
    # huggingface_hub reads HF_TOKEN_PATH once, at import; point the value it uses there too.
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(path))
    return path


def test_a_saved_hugging_face_login_is_used(hf_login: Path, tmp_path: Path) -> None:
    root = tmp_path / "hearth"
    assert hub_token.get_token(root) is None
    hf_login.parent.mkdir(parents=True)
    hf_login.write_text("hf_fromlogin\n")
    assert hub_token.get_token(root) == "hf_fromlogin"


def test_hearths_own_token_comes_first_then_hf_token(hf_login: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "hearth"
    hf_login.parent.mkdir(parents=True)
    hf_login.write_text("hf_fromlogin")
    monkeypatch.setenv("HF_TOKEN", "hf_fromenv")
    assert hub_token.get_token(root) == "hf_fromenv"  # as huggingface_hub ranks them
    hub_token.set_token("hf_hearth", root)
    assert hub_token.get_token(root) == "hf_hearth"
    hub_token.clear_token(root)
    monkeypatch.delenv("HF_TOKEN")
    assert hub_token.get_token(root) == "hf_fromlogin"


def test_the_token_goes_to_a_working_keyring_not_a_file(desktop_keyring: MemoryKeyring,
                                                        tmp_path: Path) -> None:
    root = tmp_path / "hearth"
    assert hub_token.set_token("  hf_inkeyring\n", root) == "keyring"
    assert desktop_keyring.secrets == {("hearth", "huggingface-token"): "hf_inkeyring"}
    assert not (root / "hf_token").exists()
    assert hub_token.get_token(root) == "hf_inkeyring"
    hub_token.clear_token(root)
    assert desktop_keyring.secrets == {}
    assert hub_token.get_token(root) is None


def test_without_a_keyring_the_token_is_a_file_only_the_user_reads(no_keyring: None,
                                                                  hf_login: Path,
                                                                  tmp_path: Path) -> None:
    root = tmp_path / "hearth"
    assert hub_token.set_token("hf_infile", root) == "file"
    assert (root / "hf_token").read_text() == "hf_infile"
    assert (root / "hf_token").stat().st_mode & 0o777 == 0o600
    assert hub_token.get_token(root) == "hf_infile"


def test_a_file_token_leaves_the_disk_once_a_keyring_works(hearth_home: Path,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "hearth"
    assert hub_token.set_token("hf_old", root) == "file"  # hearth_home: the fail backend
    ring = MemoryKeyring()
    keyring.set_keyring(ring)  # hearth_home restores the backend afterwards
    assert hub_token.set_token("hf_new", root) == "keyring"
    assert not (root / "hf_token").exists()
    assert hub_token.get_token(root) == "hf_new"


def _cli(args: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(args) == 0
    return capsys.readouterr().out


def test_hearth_token_set_uses_the_system_keyring(desktop_keyring: MemoryKeyring,
                                                  hearth_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert "system keyring" in _cli(["token", "set"], "hf_cli\n", monkeypatch, capsys)
    assert desktop_keyring.secrets[("hearth", "huggingface-token")] == "hf_cli"
    assert not (hearth_home / "hf_token").exists()
    assert _cli(["token", "status"], "", monkeypatch, capsys) == "Token: set\n"
    assert _cli(["token", "clear"], "", monkeypatch, capsys) == "Token removed.\n"
    assert _cli(["token", "status"], "", monkeypatch, capsys) == "Token: not set\n"


def test_hearth_token_clear_says_when_a_hugging_face_login_still_applies(
        hearth_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _cli(["token", "set"], "hf_hearth\n", monkeypatch, capsys)
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    out = _cli(["token", "clear"], "", monkeypatch, capsys)
    assert out.startswith("Token removed.\n") and "HF_TOKEN environment variable" in out
    monkeypatch.delenv("HF_TOKEN")
    (hearth_home / "hf-token").write_text("hf_login")  # where hearth_home points `hf auth login`
    out = _cli(["token", "clear"], "", monkeypatch, capsys)
    assert "`hf auth login` token" in out and "hf auth logout" in out
    assert str(hearth_home / "hf-token") in out
