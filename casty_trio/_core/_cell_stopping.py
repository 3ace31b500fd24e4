"""How a cell stops: its children first, then its ``post_stop`` hooks, then the bookkeeping.

Functions of a :class:`~casty_trio._core._cell.Cell`, kept apart like those of
:mod:`._cell_supervision` because they are one concept: the end of an actor's life. They run
once per actor (or per restart, for the children), never on the per-message path. The cell's
``_terminate`` marks it terminated and hands over to :func:`terminated`, which empties the
mailbox into dead letters, drops the cell's watches, tells its watchers, its parent and the
event stream, and escalates a failure the actor stopped on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._control import _Control
from ._events import ActorStopped

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["run_post_stop", "stop_children", "stop_sequence", "terminated"]


async def stop_children(cell: Cell) -> None:
    children = cell._children
    if not children:
        return
    for child in tuple(children.values()):
        child.request_stop()
    if children:
        cell._children_gone = trio.Event()
        await cell._children_gone.wait()
        cell._children_gone = None


async def stop_sequence(cell: Cell) -> None:
    cell.request_stop()
    await stop_children(cell)
    await run_post_stop(cell)


async def run_post_stop(cell: Cell) -> None:
    if cell._timers is not None:
        cell._timers.cancel_all()
    hooks, cell._hooks = cell._hooks, ()  # at most once, even if cancelled midway
    for hook in hooks:
        if hook.post_stop is not None:
            try:
                await hook.post_stop(cell.ctx)
            except Exception as exc:
                cell.log.error("post_stop hook of %s raised", cell.path, exc_info=exc)


def terminated(cell: Cell) -> None:
    """The rest of ``Cell._terminate``, once the cell is marked terminated."""
    system = cell.system
    mailbox, cell._mailbox = cell._mailbox, ()
    for message in mailbox:
        if type(message) is _Control:
            if message.kind in (_Control.PIPE_FAILED, _Control.CHILD_FAILED):
                cell.log.error(
                    "actor %s stopped before handling a failure",
                    cell.path,
                    exc_info=message.payload,
                )
        else:
            system._dead_letter(message, cell.ref)
    if cell._watching:
        for ref in cell._watching:
            ref._target.remove_watcher(cell._on_watched_terminated)
        cell._watching = None
    for child in tuple(cell._children.values()) if cell._children else ():
        child._terminate()  # only after a forced cancel: children that never had a task
    parent = cell.parent
    siblings = parent._children if parent is not None else None
    if siblings is not None and siblings.get(cell.name) is cell:
        del siblings[cell.name]
        if not siblings and parent is not None and parent._children_gone is not None:
            parent._children_gone.set()
    system._unregister(cell)
    watchers, cell._watchers = cell._watchers, None
    for watcher in watchers or ():
        watcher(cell.ref)
    stream = system.event_stream
    if stream.has_subscribers():
        stream.unsubscribe_all(cell.ref)
        stream.publish(ActorStopped(cell.ref))
    if cell._terminated_event is not None:
        cell._terminated_event.set()
    escalation = cell._escalation
    if escalation is not None:
        if parent is not None:
            parent.post_control(_Control.CHILD_FAILED, escalation)
        else:
            system._root_failed(escalation)
