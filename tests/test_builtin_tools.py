"""Hearth's built-in tools through the ToolBox: calculator, date and time, chat search, reading
files from granted folders, and remembered permissions."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from app.models.store import Store
from app.services.tools import BuiltinTools, GrantedFolders, Tool, ToolBox, ToolPermissions


@pytest.fixture
def box(hearth_store: Store) -> ToolBox:
    return ToolBox([BuiltinTools(hearth_store)])


def _call(box: ToolBox, name: str, **arguments: object) -> tuple[str, bool]:
    result = box.run(name, json.dumps(arguments))
    return result.text, result.is_error


def test_the_four_built_ins_are_offered_as_openai_functions(box: ToolBox) -> None:
    names = [t["function"]["name"] for t in box.openai_tools()]
    assert names == ["calculator", "current_datetime", "search_chats", "read_file"]
    assert all(tool.source == "builtin" and tool.destructive_hint is False for tool in box.tools)


@pytest.mark.parametrize(
    ("expression", "answer"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("2 ** 10", "1024"),
        ("-2 ** 2", "-4"),
        ("7 // 2", "3"),
        ("7 % 3", "1"),
        ("1 / 4", "0.25"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(2 * pi, 3)", "6.283"),
        ("log(8, 2)", "3"),
        ("factorial(10)", "3628800"),
        ("max(3, 9, 4) - min(3, 9, 4)", "6"),
        ("12 × 3 ÷ 4", "9"),
        ("2**-1", "0.5"),
    ],
)
def test_calculator_answers(box: ToolBox, expression: str, answer: str) -> None:
    assert _call(box, "calculator", expression=expression) == (f"{expression} = {answer}", False)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("9**9**9", "too large"),
        ("10**400", "too large"),
        ("(2**500)**3", "too large"),
        ("1e308 * 10", "too large"),
        ("1e999", "not a finite number"),
        ("factorial(100000)", "factorial needs a number from 0 to 170"),
        ("round(1, -10**9)", "round's second argument"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "cannot compute"),
        ("(-8) ** 0.5", "not a real number"),
        ("2 ^ 3", "write 2**3"),
        ("__import__('os').system('echo hi')", "unknown function"),
        ("().__class__.__bases__[0].__subclasses__()", "unknown function"),
        ("(1).__class__", "not allowed"),
        ("open('/etc/passwd')", "unknown function"),
        ("x + 1", "unknown name 'x'"),
        ("lambda: 1", "not allowed"),
        ("[1] * 10**9", "not allowed"),
        ("'a' * 10**9", "not a number"),
        ("True + True", "not a number"),
        ("1 if 1 else 2", "not allowed"),
        ("1 +", "not a valid arithmetic expression"),
        ("(" * 300 + "1" + ")" * 300, "not a valid arithmetic expression"),
        ("-" * 900 + "1", "too complex"),
        ("1+" * 400 + "1", "too complex"),
        ("9" * 5000, "longer than 1000 characters"),
        ("9" * 1_000_000, "arguments are longer than"),
        ("", "empty"),
    ],
)
def test_calculator_refuses_hostile_input_quickly(
    box: ToolBox, expression: str, reason: str
) -> None:
    started = time.monotonic()
    text, is_error = _call(box, "calculator", expression=expression)
    assert time.monotonic() - started < 0.5
    assert is_error and reason in text, text


def test_current_datetime_is_local_with_a_time_zone(box: ToolBox) -> None:
    text, is_error = _call(box, "current_datetime")
    now = datetime.now().astimezone()
    assert not is_error
    assert now.strftime("%A") in text and str(now.year) in text
    assert f"UTC{now:%z}" in text


def test_search_chats_finds_messages_with_chat_title(box: ToolBox, hearth_store: Store) -> None:
    birds = hearth_store.create_chat("Birds of Norway")
    hearth_store.add_message(birds.id, "user", "When do the swallows return in spring?")
    hearth_store.add_message(birds.id, "assistant", "Swallows come back in late April.")
    other = hearth_store.create_chat("Recipes")
    hearth_store.add_message(other.id, "user", "A bread recipe please")
    text, is_error = _call(box, "search_chats", query="swallows")
    assert not is_error
    assert text.startswith("2 matching messages")
    assert 'chat "Birds of Norway"' in text and "late April" in text and "Recipes" not in text
    one, _ = _call(box, "search_chats", query="swallows", limit=1)
    assert one.startswith("1 matching messages")
    none, is_error = _call(box, "search_chats", query="penguins")
    assert not is_error and "No messages" in none
    hostile, is_error = _call(box, "search_chats", query='" OR * NEAR(')
    assert not is_error  # FTS syntax is plain text to the search
    bad, is_error = _call(box, "search_chats", query="x", limit=10_000)
    assert is_error and "limit" in bad


@pytest.fixture
def shared(tmp_path: Path, hearth_store: Store) -> Path:
    """A granted folder with a few files, next to a secret outside it."""
    folder = tmp_path / "shared"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "todo.txt").write_text("buy milk\nfix the bike\n", encoding="utf-8")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "big.log").write_text("line\n" * 100_000, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("password=hunter2", encoding="utf-8")
    os.symlink(tmp_path / "secret.txt", folder / "innocent.txt")
    os.symlink(tmp_path, folder / "escape")
    os.symlink(folder / "notes" / "todo.txt", folder / "todo-link.txt")
    os.mkfifo(folder / "pipe")
    GrantedFolders(hearth_store).grant(folder)
    return folder


def test_read_file_reads_text_inside_granted_folders(box: ToolBox, shared: Path) -> None:
    assert _call(box, "read_file", path="notes/todo.txt") == ("buy milk\nfix the bike\n", False)
    absolute, is_error = _call(box, "read_file", path=str(shared / "notes" / "todo.txt"))
    assert not is_error and absolute.startswith("buy milk")
    linked, is_error = _call(box, "read_file", path="todo-link.txt")  # a link that stays inside
    assert not is_error and linked.startswith("buy milk")
    listing, is_error = _call(box, "read_file", path=".")
    assert not is_error and "notes/" in listing and "photo.png" in listing
    big, is_error = _call(box, "read_file", path="big.log")
    assert not is_error and "[output truncated" in big
    assert len(big.encode()) < box.max_output_bytes + 200


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../secret.txt", "outside the folders"),
        ("notes/../../secret.txt", "outside the folders"),
        ("innocent.txt", "outside the folders"),  # a symlink pointing out
        ("escape/secret.txt", "outside the folders"),  # a linked folder pointing out
        ("/etc/passwd", "outside the folders"),
        ("/nonexistent/file", "outside the folders"),
        ("~/.ssh/id_rsa", "outside the folders"),
        ("photo.png", "binary file"),
        ("latin1.txt", "not UTF-8 text"),
        ("missing.txt", "no such file"),
        ("pipe", "not a regular file"),
        ("bad\x00name", "not valid"),
    ],
)
def test_read_file_refuses_what_it_must(box: ToolBox, shared: Path, path: str, reason: str) -> None:
    text, is_error = _call(box, "read_file", path=path)
    assert is_error and reason in text, text
    assert "hunter2" not in text


def test_read_file_without_granted_folders_says_how_to_grant(box: ToolBox) -> None:
    text, is_error = _call(box, "read_file", path="/etc/hostname")
    assert is_error and "no folders are shared" in text


def test_granted_folders_are_a_setting(hearth_store: Store, tmp_path: Path) -> None:
    folders = GrantedFolders(hearth_store)
    folders.grant(tmp_path)
    folders.grant(tmp_path)  # once is enough
    assert GrantedFolders(hearth_store).list() == [tmp_path.resolve()]
    with pytest.raises(ValueError, match="not a folder"):
        folders.grant(tmp_path / "nope")
    assert folders.revoke(tmp_path) and folders.list() == []


def test_always_allow_is_remembered_per_source_and_tool(
    hearth_home: Path, hearth_store: Store
) -> None:
    delete = Tool("delete_all", "", {"type": "object"}, "files-server")
    same_name_elsewhere = Tool("delete_all", "", {"type": "object"}, "other-server")
    permissions = ToolPermissions(hearth_store)
    assert not permissions.is_always_allowed(delete)
    permissions.always_allow(delete)
    permissions.always_allow(delete)
    reopened = Store.open(hearth_home / "hearth.db")  # remembered across a restart
    try:
        again = ToolPermissions(reopened)
        assert again.is_always_allowed(delete)
        assert not again.is_always_allowed(same_name_elsewhere)
        assert again.always_allowed() == [("files-server", "delete_all")]
        assert again.revoke(delete) and not again.revoke(delete)
        assert not ToolPermissions(hearth_store).is_always_allowed(delete)
    finally:
        reopened.close()
