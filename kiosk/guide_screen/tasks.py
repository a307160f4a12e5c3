"""Tasks from campaigns and journeys on the guide screen (issue 20): "王女士 该回购面霜了：送小样".

A strip under the header lists the store's open tasks, newest first, each with a 完成 button that
takes it off this screen and says so (``completed``: the feed tells the cloud, which takes it off the
store's other screens through ``done``). A task leaves by itself when it expires (``GuideTask.expires_at``); the
strip hides when there is none, so the cards keep the whole screen. Its own module and styles, so
the card screen needs only ``attach`` to show it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from kiosk.guide_screen import theme
from protocol.messages import GuideTask

MAX_SHOWN = 3
_PRUNE_MS = 30_000
_STYLE = f"""
#taskStrip {{ background: #1B2438; border-bottom: 2px solid {theme.ACCENT}; }}
#taskHeading {{ font-size: 20px; font-weight: bold; color: {theme.ACCENT}; }}
#taskText {{ font-size: 24px; font-weight: bold; color: {theme.TEXT}; }}
#taskSource {{ font-size: 17px; color: {theme.MUTED}; }}
#taskDone {{
    font-size: 20px; font-weight: bold; min-height: 44px; min-width: 96px; border-radius: 10px;
    background: {theme.SURFACE_RAISED}; color: {theme.TEXT}; border: 2px solid #3A4A6B;
}}
"""


class TaskStrip(QFrame):
    #: a guide tapped 完成 on this screen: the task's id
    completed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("taskStrip")
        self.setStyleSheet(_STYLE)
        self.tasks: dict[str, GuideTask] = {}
        self._rows = QVBoxLayout(self)
        self._rows.setContentsMargins(28, 8, 28, 8)
        self._rows.setSpacing(6)
        self._prune = QTimer(self)
        self._prune.timeout.connect(self._render)
        self._prune.start(_PRUNE_MS)
        self._render()

    def show_task(self, task: GuideTask) -> None:
        """Slot for the feed: add a task (a repeat of the same task id replaces it)."""
        self.tasks[task.task_id] = task
        self._render()

    def done(self, task_id: str) -> None:
        """Take a task off (done here or on another screen of the store)."""
        self.tasks.pop(task_id, None)
        self._render()

    def _complete(self, task_id: str) -> None:
        self.done(task_id)
        self.completed.emit(task_id)

    def shown(self) -> list[GuideTask]:
        now = datetime.now(UTC)
        live = [t for t in self.tasks.values() if t.expires_at > now]
        return sorted(live, key=lambda t: t.ts, reverse=True)[:MAX_SHOWN]

    def _render(self) -> None:
        self.tasks = {k: t for k, t in self.tasks.items() if t.expires_at > datetime.now(UTC)}
        while self._rows.count():
            item = self._rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        shown = self.shown()
        self.setVisible(bool(shown))
        if not shown:
            return
        heading = QLabel(f"待办任务 · {len(self.tasks)}")
        heading.setObjectName("taskHeading")
        self._rows.addWidget(heading)
        for task in shown:
            self._rows.addWidget(self._row(task))

    def _row(self, task: GuideTask) -> QWidget:
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        text = QLabel(task.text)
        text.setObjectName("taskText")
        text.setWordWrap(True)
        source = QLabel(task.title)
        source.setObjectName("taskSource")
        button = QPushButton("完成")
        button.setObjectName("taskDone")
        button.clicked.connect(lambda: self._complete(task.task_id))
        line.addWidget(text, 1)
        line.addWidget(source)
        line.addWidget(button)
        return row


def attach(screen: QWidget) -> TaskStrip:
    """Put the strip under the screen's header and offline banner (the first two rows of its layout)."""
    strip = TaskStrip(screen)
    layout = screen.layout()
    assert isinstance(layout, QVBoxLayout)
    layout.insertWidget(2, strip)
    return strip
