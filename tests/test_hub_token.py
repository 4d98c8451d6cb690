"""Where Hearth finds the Hugging Face token: its own first, then the user's Hugging Face login."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine import hub_token


@pytest.fixture
def hf_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_TOKEN_PATH pointing at a temp file, as `hf auth login` writes it; no keyring, no env."""
    from huggingface_hub import constants

    path = tmp_path / "hf-home" / "token"
    monkeypatch.setattr(hub_token, "_keyring", lambda: None)
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
