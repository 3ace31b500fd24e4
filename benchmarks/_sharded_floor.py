"""The floor of ``cross_node_sharded``'s tell: the least a sharded receiver can do in CPython and
Trio under the actor model casty_trio keeps (one task per entity, an ``async`` handler call per
message), between the same two processes, over casty_trio's own WebSocket transport (its
``Connection``, which reads binary frames without wsproto's general machinery: cheaper per
frame than trio-websocket, so the floor is the lower for it).

Nothing of casty_trio runs here. The sender encodes each tell on its own, as a tell must
(``delivery_prefix(id, shard) + encode(message)``, the bytes casty_trio's deliveries carry), and
sends 100 per frame, the paced producer's frames. The receiver decodes a frame in one call as
``list[tuple[str, int, Tick]]``, appends each message to its entity's deque and notes the entity
as owed, and wakes the owed entities once every ``_HAND_OVER`` frames (about what casty_trio's
region achieves under this load); each entity is a Trio task that handles its queue with one
``await handler(message)`` per message. There is no supervision, mailbox bound, dead letter,
passivation tick, ordering guard against the region or handoff check: only what the model
itself costs. An empty frame asks for the total count once every entity has drained.

It is reported next to the raw baseline (``floor_ratio``) so that a run shows how far the goal
is from what the model allows on that machine, not only from the raw one-way exchange.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
import trio
from _common import gc_paused, now
from _remote import LOCAL, Tick

from casty_trio import entity_shard
from casty_trio.remote import Connection, ConnectionClosed, WebSocketTransport
from casty_trio.serialization._wire import array_head
from casty_trio.sharding._wire import delivery_prefix

__all__ = ["floor_once", "floor_transport", "serve_floor"]

PER_FRAME = 100
_HAND_OVER = 300  # frames between wake-ups of the owed entities (30,000 messages)


class _Entity:
    __slots__ = ("count", "owed", "queue", "task")

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.owed = False
        self.task: trio.lowlevel.Task | None = None  # set while parked
        self.count = 0


class _Receiver:
    """The entities of one connection and the count of those woken and not parked again."""

    def __init__(self) -> None:
        self.entities: dict[str, _Entity] = {}
        self.owed: list[_Entity] = []
        self.running = 0
        self.idle: trio.Event | None = None

    async def entity(self, entity: _Entity) -> None:
        async def handler(message: Any) -> None:
            if type(message) is Tick:
                entity.count += 1

        while True:
            queue = entity.queue
            while queue:
                await handler(queue.popleft())
            entity.task = trio.lowlevel.current_task()
            self.parked()
            await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.SUCCEEDED)

    def parked(self) -> None:
        if self.running:
            self.running -= 1
            if not self.running and self.idle is not None:
                self.idle.set()

    def wake_owed(self) -> None:
        for entity in self.owed:
            entity.owed = False
            task = entity.task
            if task is not None:  # else woken already, and not run yet
                entity.task = None
                self.running += 1
                trio.lowlevel.reschedule(task)
        self.owed.clear()

    async def drained(self) -> int:
        """Wake every owed entity, wait until all are parked, and count what they handled."""
        self.wake_owed()
        if self.running:
            self.idle = trio.Event()
            await self.idle.wait()
            self.idle = None
        return sum(e.count for e in self.entities.values())


def floor_transport() -> WebSocketTransport:
    """The transport both sides of the floor use (loopback, defaults otherwise)."""
    return WebSocketTransport(LOCAL, 0)


async def _handle(conn: Connection) -> None:
    decode = msgspec.msgpack.Decoder(list[tuple[str, int, Tick]]).decode
    encode = msgspec.msgpack.Encoder().encode
    receiver = _Receiver()
    entities = receiver.entities
    frames = 0
    async with trio.open_nursery() as nursery:
        try:
            while True:
                batch = decode(await conn.receive())
                if not batch:
                    await conn.send(encode(await receiver.drained()))
                    continue
                owed = receiver.owed
                for eid, _shard, message in batch:
                    entity = entities.get(eid)
                    if entity is None:
                        entity = entities[eid] = _Entity()
                        receiver.running += 1  # counts as woken until it first parks
                        nursery.start_soon(receiver.entity, entity)
                    entity.queue.append(message)
                    if not entity.owed:
                        entity.owed = True
                        owed.append(entity)
                frames += 1
                if frames % _HAND_OVER == 0:
                    receiver.wake_owed()
        except ConnectionClosed:
            nursery.cancel_scope.cancel()


async def serve_floor(
    stop: trio.Event, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Process B's floor receiver until ``stop`` is set."""
    async with trio.open_nursery() as nursery:
        address = await nursery.start(floor_transport().serve, _handle)
        task_status.started(address.port)
        await stop.wait()
        nursery.cancel_scope.cancel()


async def floor_once(conn: Connection, ids: list[str], num_shards: int, n: int) -> dict[str, float]:
    """``n`` tells round-robin over ``ids``, then wait for the count; msgs/s from first send."""
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(int).decode
    prefixes = {eid: delivery_prefix(eid, entity_shard(eid, num_shards)) for eid in ids}
    before = decode(await _total(conn, encode))
    tells = [(ids[i % len(ids)], Tick(i)) for i in range(n)]
    buffer: list[bytes] = []
    with gc_paused():
        start = now()
        for first in range(0, n, PER_FRAME):
            for eid, message in tells[first : first + PER_FRAME]:
                buffer.append(prefixes[eid] + encode(message))
            frame = array_head(len(buffer)) + b"".join(buffer)
            buffer.clear()
            await conn.send(frame)
        total = decode(await _total(conn, encode))
        end = now()
    assert total - before == n, f"the floor's entities counted {total - before} of {n}"
    return {"elapsed_s": end - start, "msgs_per_s": n / (end - start)}


async def _total(conn: Connection, encode: Any) -> bytes:
    await conn.send(encode([]))
    return await conn.receive()
