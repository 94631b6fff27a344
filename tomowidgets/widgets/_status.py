"""The status line every widget shows: what just happened, and every error, never swallowed."""

from __future__ import annotations

import functools
import html
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import ipywidgets as widgets

__all__ = ["StatusLine"]

F = TypeVar("F", bound=Callable[..., Any])

_ERROR = "color: #b00020"
_INFO = "color: #333"


class StatusLine(widgets.HTML):
    """An ``ipywidgets.HTML`` line showing the last message or error of a widget.

    Errors raised inside widget callbacks (mouse, keyboard, sliders, buttons) would otherwise go to
    the browser console or the kernel log, where nobody looks. :meth:`guard` wraps a callback so
    that its exception is shown here instead, with the traceback folded under it, and kept in
    :attr:`last_error`.

    Examples
    --------
    >>> status = StatusLine()
    >>> status.guard(lambda: 1 / 0)()
    >>> type(status.last_error).__name__
    'ZeroDivisionError'
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_error: BaseException | None = None
        self.message = ""

    def info(self, message: str) -> None:
        """Show `message` (plain text) and clear the error state."""
        self.last_error = None
        self.message = message
        self.value = f'<span style="{_INFO}">{html.escape(message)}</span>'

    def error(self, error: BaseException | str) -> None:
        """Show `error` (an exception, with its traceback folded, or a message) in red."""
        if isinstance(error, BaseException):
            self.last_error = error
            self.message = f"{type(error).__name__}: {error}"
            trace = "".join(traceback.format_exception(error))
            details = (f'<details><summary>traceback</summary><pre style="font-size: 85%">'
                       f"{html.escape(trace)}</pre></details>")
        else:
            self.last_error = None
            self.message = str(error)
            details = ""
        self.value = f'<span style="{_ERROR}">⚠ {html.escape(self.message)}</span>{details}'

    def guard(self, fn: F) -> F:
        """Wrap callback `fn` so that an exception it raises is shown here; the wrapper then returns None."""
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # shown in the widget: the browser has no other place for it
                self.error(err)
                return None
        return guarded  # type: ignore[return-value]
