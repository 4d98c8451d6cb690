"""Selecting and copying text in the transcript: part of a message with the mouse or keys,
a whole message without (or with) its reasoning, and a code block's Copy button."""

from __future__ import annotations

from chat_page_support import seed_chat
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from app.ui.chat.page import ChatPage
from app.ui.chat.text_selection import BODY

REPLY = "Hello **bold** world and more words here."  # shown as "Hello bold world and more …"


def point_at(page: ChatPage, row: int, position: int, part: str = BODY) -> QPoint:
    """The viewport point in the middle of the character at ``position`` of that row's text."""
    view, delegate = page.view, page.view.delegate
    index = page.messages.index(row, 0)
    document = delegate.document_for(index) if part == BODY else delegate.thinking_for(index)
    origin = delegate.document_at(view.visualRect(index), index, part)
    block = document.findBlock(position)
    line = block.layout().lineForTextPosition(position - block.position())
    top = document.documentLayout().blockBoundingRect(block).top() + line.y()
    x = line.cursorToX(position - block.position())[0]
    return origin + QPoint(int(x) + 1, int(top + line.height() / 2))


def drag(qtbot, page: ChatPage, start: QPoint, end: QPoint) -> None:
    viewport = page.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)


def copy_keys(qtbot, page: ChatPage) -> str:
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(page.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    return QGuiApplication.clipboard().text()


def test_drag_selects_part_of_a_message_shown_highlighted_and_copied_as_text(
        qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Select", ("user", "hi"), ("assistant", REPLY))
    page = make_page()
    shown = page.view.delegate.document_for(page.messages.index(1, 0)).toPlainText()
    start, end = shown.index("bold"), shown.index(" and")
    probe = point_at(page, 1, start + 2)
    highlight = page.view.palette().color(QPalette.ColorRole.Highlight)
    before = page.view.viewport().grab().toImage()

    drag(qtbot, page, point_at(page, 1, start), point_at(page, 1, end))
    assert copy_keys(qtbot, page) == "bold world"
    # The selection is painted in the highlight colour where it was not before.
    after = page.view.viewport().grab().toImage()
    colours = [QColor(after.pixel(probe.x() + dx, probe.y())) for dx in range(-3, 4)]
    assert any(c == highlight for c in colours)
    assert not any(QColor(before.pixel(probe.x() + dx, probe.y())) == highlight
                   for dx in range(-3, 4))

    # Shift+Right after it takes one more character, Shift+click moves the end.
    qtbot.keyClick(page.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert copy_keys(qtbot, page) == "bold world "
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ShiftModifier, point_at(page, 1, shown.index(" more")))
    assert copy_keys(qtbot, page) == "bold world and"


def test_drag_past_the_message_stays_in_it(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Past", ("user", "First question"), ("assistant", REPLY))
    page = make_page()
    below = page.view.visualRect(page.messages.index(1, 0)).bottom() - 2
    drag(qtbot, page, point_at(page, 0, len("First ")), QPoint(40, below))
    assert copy_keys(qtbot, page) == "question"


def test_double_click_selects_a_word_and_ctrl_a_the_message(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Words", ("user", "hi"), ("assistant", REPLY))
    page = make_page()
    shown = page.view.delegate.document_for(page.messages.index(1, 0)).toPlainText()
    word = point_at(page, 1, shown.index("world") + 2)
    qtbot.mouseDClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=word)
    assert copy_keys(qtbot, page) == "world"

    qtbot.keyClick(page.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert copy_keys(qtbot, page).startswith("Hello bold world and more words here.")


def test_copy_a_whole_message_without_or_with_its_reasoning(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Think", ("user", "2+2?"),
              ("assistant", "<think>secret plan: add them</think>The answer is **4**."))
    page = make_page()
    view = page.view
    menu = view.context_menu_at(view.visualRect(page.messages.index(1, 0)).center())
    assert [a.text() for a in menu.actions()][:2] == ["Copy", "Copy with reasoning"]
    view.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == "The answer is **4**."
    view.copy_reasoning_action.trigger()
    assert QGuiApplication.clipboard().text() == (
        "<think>secret plan: add them</think>The answer is **4**.")


def test_a_code_block_shows_its_language_and_its_copy_button_copies_the_code(
        qtbot, make_page, hearth_store):
    code = "def add(a, b):\n    return a + b"
    seed_chat(hearth_store, "Code", ("user", "code?"),
              ("assistant", f"Two blocks:\n\n```python\n{code}\n```\n\n```\nplain text\n```\n"))
    page = make_page()
    view = page.view
    index = page.messages.index(1, 0)
    shown = view.delegate.document_for(index).toPlainText()
    assert "python" in shown and "```" not in shown
    buttons = view.delegate.code_buttons(view.visualRect(index), index)
    assert [b.language for b in buttons] == ["python", ""]

    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=buttons[0].rect.center())
    assert QGuiApplication.clipboard().text() == code
    buttons = view.delegate.code_buttons(view.visualRect(index), index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=buttons[1].rect.center())
    assert QGuiApplication.clipboard().text() == "plain text"


def test_dragging_below_the_transcript_scrolls_and_keeps_selecting(qtbot, make_page,
                                                                   hearth_store):
    long_reply = "\n\n".join(f"line {i}" for i in range(120))
    seed_chat(hearth_store, "Long", ("user", "many lines"), ("assistant", long_reply))
    page = make_page()
    bar = page.view.verticalScrollBar()
    bar.setValue(0)
    viewport = page.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=point_at(page, 1, 0))
    below = QPoint(60, viewport.height() + 40)
    for _ in range(10):
        qtbot.mouseMove(viewport, below)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=below)
    assert bar.value() > 0  # the view followed the drag down
    copied = copy_keys(qtbot, page).splitlines()
    assert copied[0] == "line 0" and len([line for line in copied if line]) > 20
