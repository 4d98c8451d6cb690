"""Light or dark: the window follows the system's colour scheme, live, unless the user chose
one (a setting: System, Light, Dark).

Qt 6.8+ asks the platform for the chosen scheme (QStyleHints.setColorScheme); where the
platform cannot give it (no platform theme, an X11 desktop without a portal, offscreen) a
palette of our own is set instead. Everything painted from the palette follows; the chat
transcript re-renders its Markdown and code colours when its palette turns (MessageView).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMenu, QToolButton, QWidget

from app.models.store import Store

THEME_KEY = "ui.theme"
CHOICES = {"system": "System", "light": "Light", "dark": "Dark"}
_SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}

_DARK = {  # a calm dark palette, used only where the platform cannot give one
    QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1e1e", QPalette.ColorRole.AlternateBase: "#2b2b2b",
    QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#353535",
    QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.Highlight: "#3d6fb4",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#79b0ff",
    QPalette.ColorRole.PlaceholderText: "#9a9a9a", QPalette.ColorRole.ToolTipBase: "#353535",
    QPalette.ColorRole.ToolTipText: "#e6e6e6", QPalette.ColorRole.Mid: "#555555",
    QPalette.ColorRole.Light: "#4a4a4a", QPalette.ColorRole.Dark: "#1a1a1a",
    QPalette.ColorRole.BrightText: "#ff6b6b",
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in _DARK.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return palette


def _platform_palette() -> QPalette:
    """A palette that sets no colour, so the app's resolves to the platform's own again.
    (QPalette() alone shares the app palette's data, which Qt takes as no change.)"""
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))  # detaches it
    palette.setResolveMask(0)
    return palette


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


class ThemeController(QObject):
    changed = Signal(bool)  # True: dark

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._own_palette = False  # the app's palette is ours, not the platform's
        saved = store.get_setting(THEME_KEY)
        self._choice = saved if saved in CHOICES else "system"
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_system_changed)
        self.apply()

    @property
    def choice(self) -> str:
        return self._choice

    def set_choice(self, choice: str) -> None:
        """"system", "light" or "dark": applied now and kept for the next start."""
        if choice not in CHOICES:
            raise ValueError(f"unknown theme {choice!r}")
        self._choice = choice
        self._store.set_setting(THEME_KEY, choice)
        self.apply()

    def apply(self, system: Qt.ColorScheme | None = None) -> None:
        """Apply the choice; ``system``: the scheme the system just turned to."""
        hints = QGuiApplication.styleHints()
        if self._choice == "system":
            hints.unsetColorScheme()
            wanted = system if system is not None else hints.colorScheme()
        else:
            wanted = _SCHEMES[self._choice]
            hints.setColorScheme(wanted)
        if self._own_palette:
            QApplication.setPalette(_platform_palette())
            self._own_palette = False
        if wanted != Qt.ColorScheme.Unknown and (
                is_dark(QApplication.palette()) != (wanted == Qt.ColorScheme.Dark)):
            # The platform could not give that scheme: a palette of our own does.
            dark = wanted == Qt.ColorScheme.Dark
            QApplication.setPalette(dark_palette() if dark
                                    else QApplication.style().standardPalette())
            self._own_palette = True
        # A style sheet's palette(...) colours are resolved when it is applied: set again, they
        # take the new palette's (hints and notes would keep the old scheme's grey otherwise).
        for widget in QApplication.allWidgets():
            if widget.styleSheet():
                widget.setStyleSheet(widget.styleSheet())
        self.changed.emit(is_dark(QApplication.palette()))

    def _on_system_changed(self, scheme: Qt.ColorScheme) -> None:
        if self._choice == "system":
            self.apply(scheme)


def theme_button(controller: ThemeController, parent: QWidget | None = None) -> QToolButton:
    """"Theme: System ▾" for the status bar, a menu of the three choices."""
    button = QToolButton(parent)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    button.setAutoRaise(True)
    button.setToolTip("Light or dark: follow the system, or choose one")
    menu = QMenu(button)
    group = QActionGroup(menu)
    for key, label in CHOICES.items():
        action = QAction(label, menu, checkable=True, checked=key == controller.choice)
        action.setData(key)
        group.addAction(action)
        menu.addAction(action)
    group.triggered.connect(lambda action: controller.set_choice(action.data()))
    button.setMenu(menu)

    def show(_dark: bool = False) -> None:
        button.setText(f"Theme: {CHOICES[controller.choice]}")
        for action in group.actions():
            action.setChecked(action.data() == controller.choice)

    controller.changed.connect(show)
    show()
    return button
