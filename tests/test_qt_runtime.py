"""The Qt binding Hearth installs must not corrupt Python objects when signals carry bools.

PySide6 6.12.0 drops a reference to True/False per bool signal emitted under Python 3.11; the
window emits such signals on every reply (busy, enabled states), so the app would crash.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    flag = Signal(bool)


def test_bool_signals_keep_reference_counts(qapp):
    emitter, seen = _Emitter(), []
    emitter.flag.connect(seen.append)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        emitter.flag.emit(True)
        emitter.flag.emit(False)
    seen.clear()
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before
