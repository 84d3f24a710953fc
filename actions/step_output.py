"""A step's output as lines: the last few kept for its result, new ones queued for reports."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress

from actions.masking import Masker

log = logging.getLogger(__name__)
OutputCallback = Callable[[tuple[str, ...]], Awaitable[None]]

MAX_LINE_CHARS = 2000  # longer lines are cut: a tail is for people, not for data
MAX_REPORT_LINES = 50  # at most this many lines per StepOutput; older unreported ones are dropped
_MAX_PARTIAL_BYTES = MAX_LINE_CHARS * 4 + 1  # enough bytes for MAX_LINE_CHARS characters
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class LineCollector:
    """Splits a byte stream into lines, keeping only the last few and those not yet reported."""

    def __init__(self, tail_lines: int) -> None:
        """Keep the last `tail_lines` lines (unmasked: masking happens when text leaves)."""
        self.tail: deque[str] = deque(maxlen=max(tail_lines, 0))
        self.unreported: deque[str] = deque(maxlen=MAX_REPORT_LINES)
        self.count = 0
        self._keep = max(tail_lines, MAX_REPORT_LINES)
        self._partial = b""

    def feed(self, data: bytes) -> None:
        """Add a chunk of output; only the lines that could still be shown are decoded."""
        *complete, rest = data.split(b"\n")
        if complete:
            complete[0] = self._partial + complete[0]
            self._partial = b""
            self.count += len(complete)
            for raw in complete[-self._keep :]:
                self._add(raw)
        room = _MAX_PARTIAL_BYTES - len(self._partial)  # a huge line: only its start is kept
        if room > 0:
            self._partial += rest[:room]

    def finish(self) -> None:
        """Count the last line when the output did not end with a newline."""
        if self._partial:
            self.count += 1
            self._add(self._partial)
            self._partial = b""

    def take_unreported(self) -> list[str]:
        """The lines added since the previous call (the newest MAX_REPORT_LINES at most)."""
        new = list(self.unreported)
        self.unreported.clear()
        return new

    def _add(self, raw: bytes) -> None:
        # A progress bar redraws with \r: what a terminal would finally show is the last part.
        text = _ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\r")).rsplit("\r", 1)[-1]
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " … (line cut)"
        self.tail.append(text)
        self.unreported.append(text)


async def open_pipe_reader(fd: int) -> tuple[asyncio.ReadTransport, asyncio.StreamReader]:
    """Read the pipe `fd` through asyncio; closing the transport closes the pipe."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return transport, reader


async def pump_lines(reader: asyncio.StreamReader, lines: LineCollector) -> None:
    """Feed everything the reader yields into `lines`, until end of file."""
    while chunk := await reader.read(65536):
        lines.feed(chunk)


async def report_lines(
    lines: LineCollector,
    masker: Masker,
    on_output: OutputCallback,
    done: asyncio.Event,
    interval: float,
) -> None:
    """Hand new output to `on_output` once per interval until `done`; its errors are logged."""
    stream = masker.stream()  # a private key printed across two batches is still masked
    while True:
        with suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), interval)
        if done.is_set():
            return
        new = lines.take_unreported()
        if new:
            try:
                await on_output(tuple(stream(new)))
            except Exception:
                log.exception("reporting step output failed; the step goes on")
