"""Light and dark: the window follows the system's scheme live, a setting overrides it, and the
transcript's Markdown and code colours follow."""

from __future__ import annotations

import pytest
from chat_page_support import seed_chat
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app.engine.gguf.info import read_model_info
from app.ui.theme import THEME_KEY, ThemeController, is_dark

CODE = "Code:\n\n```python\nprint('hi')\n```"
LIGHT_BUILTIN = "color:#008000"  # Pygments' default style colours `print` green
DARK_TEXT = "color:#f8f8f2"  # monokai's text colour


@pytest.fixture
def theme(hearth_store):
    controller = ThemeController(hearth_store)
    yield controller
    controller.set_choice("system")  # the test's palette must not outlive it
    assert not is_dark(QApplication.palette())
    QApplication.processEvents()  # widgets take the palette from a posted event


def code_html(page) -> str:
    return page.view.delegate.document_for(page.messages.index(1, 0)).toHtml()


def test_the_setting_switches_the_window_and_recolours_the_code(qtbot, make_page,
                                                                hearth_store, theme):
    seed_chat(hearth_store, "Code", ("user", "code?"), ("assistant", CODE))
    page = make_page()
    qtbot.waitUntil(lambda: LIGHT_BUILTIN in code_html(page), timeout=3_000)
    assert not is_dark(page.view.palette())

    theme.set_choice("dark")
    qtbot.waitUntil(lambda: is_dark(page.view.palette()) and is_dark(page.palette()))
    qtbot.waitUntil(lambda: DARK_TEXT in code_html(page), timeout=3_000)
    assert LIGHT_BUILTIN not in code_html(page)
    assert hearth_store.get_setting(THEME_KEY) == "dark"
    assert ThemeController(hearth_store).choice == "dark"  # kept for the next start

    theme.set_choice("light")
    qtbot.waitUntil(lambda: not is_dark(page.view.palette()))
    qtbot.waitUntil(lambda: LIGHT_BUILTIN in code_html(page), timeout=3_000)
    assert DARK_TEXT not in code_html(page)


def test_following_the_system_scheme_live(qtbot, make_page, hearth_store, theme):
    seed_chat(hearth_store, "Code", ("user", "code?"), ("assistant", CODE))
    page = make_page()
    hints = QGuiApplication.styleHints()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # the desktop turned dark
    qtbot.waitUntil(lambda: is_dark(page.view.palette()))
    qtbot.waitUntil(lambda: DARK_TEXT in code_html(page), timeout=3_000)

    theme.set_choice("light")  # the user's choice wins over the system's
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    qtbot.waitUntil(lambda: not is_dark(page.view.palette()))
    qtbot.wait(50)
    assert not is_dark(page.view.palette())


def test_the_window_offers_the_setting(qtbot, make_main_window, hearth_store, tiny_model):
    hearth_store.add_model_file(read_model_info(tiny_model), "import")  # no starter needed
    window = make_main_window(starter=False)
    button = window.theme_button
    assert button.isVisible() and button.text() == "Theme: System"
    choices = [action.text() for action in button.menu().actions()]
    assert choices == ["System", "Light", "Dark"]
    dark = button.menu().actions()[2]
    dark.trigger()
    assert window.theme.choice == "dark" and button.text() == "Theme: Dark"
    qtbot.waitUntil(lambda: is_dark(window.chat_page.view.palette()))
    button.menu().actions()[0].trigger()
    qtbot.waitUntil(lambda: not is_dark(window.chat_page.view.palette()))


def test_muted_notes_stay_readable_after_a_switch(qtbot, make_page, theme):
    # The Documents hint is muted through its style sheet's palette(placeholder-text): after a
    # switch to dark it must take the dark palette's light grey, not keep the light one's.
    page = make_page()
    hint = page.documents_panel.empty_hint
    qtbot.waitUntil(hint.isVisible)
    theme.set_choice("dark")
    qtbot.waitUntil(lambda: is_dark(page.palette()))
    qtbot.waitUntil(lambda: hint.palette().color(hint.foregroundRole()).lightness() > 128)
