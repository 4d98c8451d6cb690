"""Links in untrusted text open only on click, only http(s), after the full address was shown."""

from __future__ import annotations

import pytest
from chat_page_support import anchor_point
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QTextCursor
from PySide6.QtWidgets import QMessageBox

from app.ui.bridge import EngineBridge
from app.ui.chat.page import ChatPage
from app.ui.discover.details import ModelDetails, RepoDetails
from app.ui.link_policy import check_link


@pytest.mark.parametrize("address", [
    "https://example.com/docs", "http://example.com", "HTTPS://Example.com/a?b=c#d",
])
def test_web_addresses_may_open(address):
    assert check_link(address).allowed


@pytest.mark.parametrize("address", [
    "file:///etc/passwd", "/etc/hostname", "\\\\host\\share\\x", "//host/share",
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "ftp://example.com/x",
    "mailto:a@example.com", "smb://host/share", "https:\\\\evil.example\\x", "http://",
    "docs/readme.md", "https://example.com/\x1b]52;c;x\x07", "https://example.com/" + "a" * 3000,
    "qrc:/icons/app.png", "vscode://file/etc/passwd",
])
def test_everything_else_is_refused(address):
    check = check_link(address)
    assert not check.allowed and check.reason


def test_the_address_shown_is_the_one_that_opens_with_nothing_hidden():
    lookalike = check_link("https://exаmple.com/login")  # Cyrillic "а"
    assert lookalike.allowed and "xn--" in lookalike.shown
    reversed_ = check_link("https://example.com/\u202egpj.exe")
    assert reversed_.allowed and "\u202e" not in reversed_.shown and "%E2%80%AE" in reversed_.shown


@pytest.fixture
def browser(monkeypatch):
    """The user's browser and answers to the link dialogs: (asked, warned, opened, answer)."""
    asked: list[str] = []
    warned: list[str] = []
    opened: list[str] = []
    answer = [QMessageBox.StandardButton.Open]

    def question(_parent, _title, text, *_args):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *_a: warned.append(text))
    monkeypatch.setattr(QDesktopServices, "openUrl",
                        lambda url: opened.append(url.toString()) or True)
    return asked, warned, opened, answer


def test_a_link_in_a_reply_opens_only_after_the_user_confirms(qtbot, hearth_store, qapp,
                                                              browser):
    asked, warned, opened, answer = browser
    chat = hearth_store.create_chat("Links")
    hearth_store.add_message(chat.id, "assistant",
                             "See [the docs](https://example.com/docs) or [this](javascript:x())")
    bridge = EngineBridge()
    try:
        page = ChatPage(hearth_store, bridge)
        qtbot.addWidget(page)
        page.resize(900, 600)
        page.show()
        qtbot.waitExposed(page)
        page.open_chat(chat.id)
        viewport = page.view.viewport()
        docs = anchor_point(page, 0, "https://example.com/docs")
        assert opened == [] and asked == []  # shown, not opened

        answer[0] = QMessageBox.StandardButton.Cancel
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=docs)
        assert len(asked) == 1 and "https://example.com/docs" in asked[0] and opened == []

        answer[0] = QMessageBox.StandardButton.Open
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=docs)
        assert opened == ["https://example.com/docs"]

        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton,
                         pos=anchor_point(page, 0, "javascript:x()"))
        assert len(warned) == 1 and "javascript:x()" in warned[0]
        assert opened == ["https://example.com/docs"] and len(asked) == 2
    finally:
        bridge.shutdown()


def test_a_link_in_a_model_card_goes_through_the_same_policy(qtbot, browser):
    asked, warned, opened, _answer = browser
    details = ModelDetails()
    qtbot.addWidget(details)
    details.resize(700, 700)
    details.show()
    qtbot.waitExposed(details)
    card = "# Card\n\n[weights](https://huggingface.co/x) and [local](file:///etc/passwd)\n"
    details.show_details(RepoDetails("evil/card", [], card=card))

    def click(text: str) -> None:
        cursor = details.card.document().find(text)
        cursor.setPosition(cursor.selectionStart() + 1, QTextCursor.MoveMode.MoveAnchor)
        point = details.card.cursorRect(cursor).center()
        qtbot.mouseClick(details.card.viewport(), Qt.MouseButton.LeftButton, pos=point)

    click("local")
    assert opened == [] and len(warned) == 1 and "file:///etc/passwd" in warned[0]
    click("weights")
    assert len(asked) == 1 and opened == ["https://huggingface.co/x"]
    assert details.card.source() == QUrl()  # the browser itself never navigated
    assert "weights" in details.card.toPlainText()
