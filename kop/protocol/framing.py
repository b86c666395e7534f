"""Length-prefixed framing: a 4-byte big-endian size, then that many bytes.

The size is checked before a single byte of the frame is buffered, so a hostile or broken peer
can never make kop allocate more than ``max_frame_size`` bytes per connection. Bytes may arrive in
any chunking; frames come out whole and in order.

Frames are handed out without copying where possible (this is the Produce hot path, where frames
carry the record batches): a frame that lies wholly inside one received ``bytes`` chunk is a
read-only ``memoryview`` of that chunk; a frame spread over several chunks is copied once, into a
buffer of exactly its announced size, and handed out as a view of it. Chunks of a mutable type
(bytearray, memoryview) are copied first, since their owner may reuse them.
"""

from __future__ import annotations

from .errors import ProtocolViolation

_SIZE_LEN = 4


class FrameDecoder:
    __slots__ = ("max_frame_size", "_prefix", "_frame", "_filled")

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._prefix = bytearray()  # a size prefix split across chunks
        self._frame: bytearray | None = None  # the frame being collected across chunks
        self._filled = 0

    @property
    def buffered(self) -> int:
        return len(self._prefix) + self._filled

    def _size(self, size: int) -> int:
        if size < 0:
            raise ProtocolViolation(f"negative frame size {size}")
        if size > self.max_frame_size:
            raise ProtocolViolation(f"frame of {size} bytes exceeds the limit of {self.max_frame_size}")
        if size < 8:  # api_key, api_version and correlation_id at least
            raise ProtocolViolation(f"frame of {size} bytes is too short to hold a request header")
        return size

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """Add received bytes; return every frame now complete (without its size prefix)."""
        view = memoryview(data if type(data) is bytes else bytes(data)).cast("B")
        frames: list[memoryview] = []
        pos, end = 0, len(view)
        while pos < end:
            frame = self._frame
            if frame is not None:  # finishing a frame begun in an earlier chunk
                take = min(len(frame) - self._filled, end - pos)
                frame[self._filled:self._filled + take] = view[pos:pos + take]
                self._filled += take
                pos += take
                if self._filled == len(frame):
                    frames.append(memoryview(frame).toreadonly())
                    self._frame, self._filled = None, 0
                continue
            if self._prefix or end - pos < _SIZE_LEN:
                take = min(_SIZE_LEN - len(self._prefix), end - pos)
                self._prefix += view[pos:pos + take]
                pos += take
                if len(self._prefix) < _SIZE_LEN:
                    break
                size = self._size(int.from_bytes(self._prefix, "big", signed=True))
                self._prefix = bytearray()
            else:
                size = self._size(int.from_bytes(view[pos:pos + _SIZE_LEN], "big", signed=True))
                pos += _SIZE_LEN
            if end - pos >= size:
                frames.append(view[pos:pos + size])
                pos += size
            else:
                self._frame, self._filled = bytearray(size), 0
        return frames
