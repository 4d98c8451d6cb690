"""Start the desktop app: one QApplication, one AppContext, one MainWindow."""

from __future__ import annotations

import logging
import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.engine.paths import data_paths
from app.ui.app_context import AppContext
from app.ui.main_window import MainWindow
from app.ui.plain_text import escaped_rich
from app.ui.single_instance import SingleInstance, bring_to_front

log = logging.getLogger(__name__)


def run_gui(argv: list[str] | None = None) -> int:
    """Show the main window and run the event loop; returns the exit code."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Hearth")
    app.setDesktopFileName("hearth")
    # Before the data is opened: a second window on the same folder raises the first instead.
    instance = SingleInstance.for_data_folder(data_paths().root, app)
    if not instance.start():
        if instance.delivered:
            return 0
        QMessageBox.information(None, "Hearth is already running",
                                "Hearth is already open on this data folder, but its window did "
                                "not answer. Close it (or wait for it to start), then try again.")
        return 1
    app.aboutToQuit.connect(instance.close)
    try:
        context = AppContext()
    except Exception as exc:  # a damaged or newer database, an unwritable data folder
        log.exception("Hearth could not start")
        QMessageBox.critical(None, "Hearth cannot start",
                             escaped_rich(f"Hearth could not open its data:\n{exc}"))
        return 1
    window = MainWindow(context)
    window.show()
    instance.activated.connect(lambda: bring_to_front(window))
    # Ctrl+C in the terminal closes the window the normal way (state saved, engine stopped).
    # Python only runs signal handlers between bytecodes, so a timer lets it in now and then.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wakeup = QTimer(window)
    wakeup.timeout.connect(lambda: None)
    wakeup.start(250)
    return app.exec()
