"""Length-prefixed framing: a 4-byte big-endian size, then that many bytes.

The size is checked before a single byte of the frame is buffered, so a hostile or broken peer
can never make kop allocate more than ``max_frame_size`` bytes per connection. Bytes may arrive in
any chunking; frames come out whole and in order.
"""

from __future__ import annotations

from .errors import ProtocolViolation

_SIZE_LEN = 4


class FrameDecoder:
    __slots__ = ("max_frame_size", "_buf", "_need")

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._need = -1  # size of the frame being collected, -1 while reading the size prefix

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return every frame now complete (without its size prefix)."""
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        pos = 0
        while True:
            if self._need < 0:
                if len(buf) - pos < _SIZE_LEN:
                    break
                size = int.from_bytes(buf[pos:pos + _SIZE_LEN], "big", signed=True)
                if size < 0:
                    raise ProtocolViolation(f"negative frame size {size}")
                if size > self.max_frame_size:
                    raise ProtocolViolation(f"frame of {size} bytes exceeds the limit of {self.max_frame_size}")
                if size < 8:  # api_key, api_version and correlation_id at least
                    raise ProtocolViolation(f"frame of {size} bytes is too short to hold a request header")
                self._need = size
                pos += _SIZE_LEN
            if len(buf) - pos < self._need:
                break
            frames.append(bytes(buf[pos:pos + self._need]))
            pos += self._need
            self._need = -1
        if pos:
            del buf[:pos]
        return frames
