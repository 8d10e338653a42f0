"""Following the container engine's event stream through engine restarts.

The node agent and the service gateways both react to containers dying behind their back.
The stream ends when dockerd restarts; then they resubscribe with a back-off (0.5 s doubling
to 10 s) and, because events were missed meanwhile, look at everything again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from reconciler.clock import Clock
from reconciler.runtime.base import ContainerRuntime, EventStream, RuntimeEvent
from reconciler.runtime.errors import ContainerRuntimeError, RuntimeUnavailableError

__all__ = ["follow_engine_events"]

log = logging.getLogger(__name__)


async def follow_engine_events(
    runtime: ContainerRuntime,
    clock: Clock,
    stream: EventStream,
    on_event: Callable[[RuntimeEvent], None],
    on_resubscribed: Callable[[], None],
    who: str,
) -> None:
    """Call `on_event` for every event, forever; `on_resubscribed` after each gap."""
    delay = 0.5
    while True:
        try:
            async for event in stream:
                on_event(event)
                delay = 0.5
        except RuntimeUnavailableError as exc:
            log.warning("%s: container engine unavailable (%s); resubscribing", who, exc)
        with contextlib.suppress(Exception):
            await stream.aclose()
        while True:
            await clock.sleep(delay)
            delay = min(delay * 2, 10.0)
            try:
                stream = await runtime.events()
                break
            except ContainerRuntimeError as exc:
                log.info("%s: container engine still unavailable: %s", who, exc)
        on_resubscribed()
