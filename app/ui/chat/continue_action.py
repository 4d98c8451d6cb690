"""The chat page's Continue action: enabled only while the last reply can be resumed (it
stopped on its length limit or the user stopped it) and no reply is running."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from app.services.chat_session import can_continue
from app.ui.chat.controller import ChatController
from app.ui.chat.message_model import MessageListModel


class ContinueAction(QAction):
    def __init__(self, controller: ChatController, messages: MessageListModel,
                 parent: QObject | None = None) -> None:
        super().__init__("Continue", parent)
        self.setToolTip("Go on with the last reply where it stopped, in the same message")
        self._controller = controller
        self._messages = messages
        self.triggered.connect(controller.continue_reply)
        controller.busyChanged.connect(self.refresh)
        for signal in (messages.modelReset, messages.rowsInserted, messages.rowsRemoved,
                       messages.dataChanged):
            signal.connect(self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        self.setEnabled(not self._controller.busy
                        and can_continue(self._messages.last_record()))
