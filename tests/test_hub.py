"""Search, file listing and model cards through the real huggingface_hub client, on a fake Hub."""

from __future__ import annotations

import os
import stat
from itertools import pairwise
from pathlib import Path

import pytest
from fake_hub import FakeHub, Faults

from app.engine.hub import hf_token as hub_token
from app.engine.hub.api import (
    HubError,
    list_gguf_files,
    model_card,
    quant_label,
    remote_model_info,
    search_models,
)


def test_search_gguf_only_sorted_with_tags(fake_hub: FakeHub) -> None:
    found = search_models("tiny", sort="downloads")
    assert [m.repo_id for m in found] == ["tinyorg/Tiny-1B-GGUF",
                                          "otherorg/Tiny-Uncensored-7B-GGUF"]
    first, second = found
    assert (first.author, first.downloads, first.likes) == ("tinyorg", 500, 3)
    assert first.licence == "apache-2.0" and "vision" in first.notable_tags
    assert first.parameters == 1_000_000_000
    assert first.last_modified is not None and first.last_modified.year == 2025
    assert "uncensored" in second.notable_tags and second.parameters == 7_000_000_000
    assert [m.repo_id for m in search_models("tiny", sort="likes")][0] == second.repo_id
    assert [m.repo_id for m in search_models("", sort="lastModified", limit=1)] == [
        second.repo_id]
    query = next(s for s in fake_hub.requests if s.path == "/api/models")
    assert query.method == "GET"


def test_files_grouped_with_quant_labels_and_sha(fake_hub: FakeHub,
                                                 tiny_gguf_bytes: dict[str, bytes]) -> None:
    import hashlib

    files = list_gguf_files("tinyorg/Tiny-1B-GGUF")
    labels = [f.label for f in files]
    assert labels[-1] == "vision projector (mmproj)"
    assert set(labels[:-1]) == {"Q4_K_M", "Q8_0", "F16"}
    q8 = next(f for f in files if f.quant == "Q8_0")
    assert q8.size == len(tiny_gguf_bytes["big"])
    assert q8.sha256 == hashlib.sha256(tiny_gguf_bytes["big"]).hexdigest()
    split = list_gguf_files("otherorg/Tiny-Uncensored-7B-GGUF")
    iq4 = next(f for f in split if f.quant == "IQ4_XS")
    assert len(split) == 2 and len(iq4.parts) == 2
    assert iq4.size == len(tiny_gguf_bytes["small"])


@pytest.mark.parametrize(("name", "label"), [
    ("model-Q4_K_M.gguf", "Q4_K_M"), ("m.Q2_K.gguf", "Q2_K"), ("x-IQ3_XXS.gguf", "IQ3_XXS"),
    ("x-bf16.gguf", "BF16"), ("x-f16-00001-of-00003.gguf", "F16"), ("x-q8_0.gguf", "Q8_0"),
    ("plain.gguf", None),
])
def test_quant_label(name: str, label: str | None) -> None:
    assert quant_label(name) == label


def test_model_card(fake_hub: FakeHub) -> None:
    assert model_card("tinyorg/Tiny-1B-GGUF").startswith("# Tiny 1B")


def test_errors_are_clear(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HubError, match="not found") as info:
        list_gguf_files("nobody/missing")
    assert info.value.kind == "not_found"
    fake_hub.faults["README.md"] = Faults(status=500)
    with pytest.raises(HubError, match="server error"):
        model_card("tinyorg/Tiny-1B-GGUF")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="offline"):
        search_models("tiny")


def test_token_file_is_private_and_not_in_errors(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from app.engine import secret_store

    monkeypatch.setattr(secret_store, "usable_keyring", lambda: None)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):  # no Hugging Face login either
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-login"))
    assert hub_token.set_token("hf_secret123", tmp_path) == "file"
    path = tmp_path / "hf_token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert hub_token.get_token(tmp_path) == "hf_secret123"
    hub_token.clear_token(tmp_path)
    assert hub_token.get_token(tmp_path) is None


def test_remote_model_info_reads_the_header_by_range(fake_hub: FakeHub,
                                                     tiny_gguf_bytes: dict[str, bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine.gguf.info import read_header_bytes
    from app.engine.hub import api as hub

    big = tiny_gguf_bytes["big"]
    monkeypatch.setattr(hub, "HEADER_FIRST_BYTES", 256)  # force a few doublings
    info, shape = remote_model_info("tinyorg/Tiny-1B-GGUF", "Tiny-1B-Q8_0.gguf", len(big))
    expected, expected_shape = read_header_bytes(big, len(big), "Tiny-1B-Q8_0.gguf")
    assert (info.architecture, info.block_count) == ("llama", 2)
    assert info == expected and shape == expected_shape
    ranges = fake_hub.ranges("Tiny-1B-Q8_0.gguf")
    assert ranges[:3] == ["bytes=0-255", "bytes=256-511", "bytes=512-1023"]
    spans = [tuple(int(x) for x in r.removeprefix("bytes=").split("-")) for r in ranges]
    # Each doubling asks only for the continuation: no byte is served twice.
    assert all(start == prev_end + 1 for (_, prev_end), (start, _) in pairwise(spans))
    served = sum(end - start + 1 for start, end in spans)
    assert spans[0][0] == 0 and served == spans[-1][1] + 1
    assert spans[-1][1] < len(big) - 1  # never the whole file


def test_remote_model_info_errors(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.faults["Tiny-1B-F16.gguf"] = Faults(status=404)
    with pytest.raises(HubError) as caught:
        remote_model_info("tinyorg/Tiny-1B-GGUF", "Tiny-1B-F16.gguf", 1000)
    assert caught.value.kind == "not_found"
    fake_hub.add_file("tinyorg/Tiny-1B-GGUF", "notes.gguf", b"hello, not a model" * 10)
    with pytest.raises(HubError, match="not a readable GGUF"):
        remote_model_info("tinyorg/Tiny-1B-GGUF", "notes.gguf", 180)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError) as caught:
        remote_model_info("tinyorg/Tiny-1B-GGUF", "Tiny-1B-Q8_0.gguf", 1000)
    assert caught.value.kind == "offline"
