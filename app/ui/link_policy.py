"""The one way Hearth opens a link found in untrusted text: on click, web addresses only,
after the user has seen the full address and said yes."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from app.ui.plain_text import escaped_rich

MAX_URL_CHARS = 2048  # longer addresses cannot be shown whole, so they are not opened
ALLOWED_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class LinkCheck:
    """Whether an address may be opened; ``shown`` is the exact address that would open."""

    allowed: bool
    shown: str
    reason: str = ""


def check_link(address: str) -> LinkCheck:
    """Only absolute http(s) URLs with a host: never file:, UNC paths (\\\\host\\share),
    relative paths, javascript:, data: or any other scheme."""
    raw = address.strip()
    shown = raw if len(raw) <= 200 else raw[:199] + "…"
    if len(raw) > MAX_URL_CHARS:
        return LinkCheck(False, shown, "the address is too long to show")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in raw) or "\\" in raw:
        return LinkCheck(False, shown, "the address holds control characters or backslashes")
    url = QUrl(raw, QUrl.ParsingMode.StrictMode)
    if not url.isValid() or url.scheme().lower() not in ALLOWED_SCHEMES or not url.host():
        return LinkCheck(False, shown, "Hearth opens only web (http and https) links")
    # Fully encoded: the host as punycode and every non-ASCII or invisible character escaped,
    # so a look-alike address or a right-to-left override cannot pass for another.
    encoded = url.toString(QUrl.ComponentFormattingOption.FullyEncoded)
    return LinkCheck(True, encoded)


def open_link(address: str, parent: QWidget | None = None) -> bool:
    """Ask, then open ``address`` in the browser; True when it was opened."""
    check = check_link(address)
    if not check.allowed:
        message = f"This link was not opened: {check.reason}.\n\n{check.shown}"
        QMessageBox.warning(parent, "Link not opened", escaped_rich(message))
        return False
    answer = QMessageBox.question(
        parent, "Open link?",
        escaped_rich(f"Open this address in your web browser?\n\n{check.shown}"),
        QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    if answer != QMessageBox.StandardButton.Open:
        return False
    return QDesktopServices.openUrl(QUrl(check.shown, QUrl.ParsingMode.StrictMode))
