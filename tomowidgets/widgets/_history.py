"""Undo/redo state of mask edits: plain data, no widgets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MaskEdit", "MaskHistory"]


@dataclass(frozen=True)
class MaskEdit:
    """One committed change of a tile's mask.

    Parameters
    ----------
    key : tuple
        Identifies the tile independently of its index: ``(centre, source)``.
    before, after : ndarray of bool, shape (tile, tile)
        The mask before and after the edit (read-only copies).
    before_painted : bool, default True
        False when `before` was the placeholder of a tile nobody had painted (an undo restores
        that state).
    """

    key: tuple
    before: np.ndarray
    after: np.ndarray
    before_painted: bool = True


class MaskHistory:
    """Undo and redo stacks of :class:`MaskEdit` (a new edit clears the redo stack).

    Parameters
    ----------
    limit : int, default 200
        Most edits kept for undo (the oldest are dropped first).

    Examples
    --------
    >>> h = MaskHistory()
    >>> h.record(("c", None), np.zeros((2, 2), bool), np.ones((2, 2), bool))
    >>> bool(h.undo().before.any()), h.can_undo, bool(h.redo().after.all())
    (False, False, True)
    """

    def __init__(self, limit: int = 200) -> None:
        self.limit = int(limit)
        self._undo: list[MaskEdit] = []
        self._redo: list[MaskEdit] = []

    @property
    def can_undo(self) -> bool:
        """Whether an edit can be undone."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether an undone edit can be redone."""
        return bool(self._redo)

    def record(self, key: tuple, before: np.ndarray, after: np.ndarray, *,
               before_painted: bool = True) -> None:
        """Remember that the mask of tile `key` went from `before` to `after`."""
        edit = MaskEdit(key, _frozen_copy(before), _frozen_copy(after), bool(before_painted))
        self._undo = [*self._undo[-(self.limit - 1):], edit] if self.limit > 1 else [edit]
        self._redo = []

    def undo(self) -> MaskEdit | None:
        """The edit to revert (apply its ``before``), moved to the redo stack; None if none."""
        if not self._undo:
            return None
        edit = self._undo.pop()
        self._redo.append(edit)
        return edit

    def redo(self) -> MaskEdit | None:
        """The edit to apply again (its ``after``), moved back to the undo stack; None if none."""
        if not self._redo:
            return None
        edit = self._redo.pop()
        self._undo.append(edit)
        return edit

    def cancel(self, edit: MaskEdit, *, undone: bool) -> None:
        """Put `edit` back where it was after applying it failed (`undone`: it came from undo)."""
        source, target = (self._redo, self._undo) if undone else (self._undo, self._redo)
        if source and source[-1] is edit:
            target.append(source.pop())


def _frozen_copy(mask: np.ndarray) -> np.ndarray:
    out = np.array(mask, bool)
    out.flags.writeable = False
    return out
