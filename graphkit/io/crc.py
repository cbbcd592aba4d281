"""Masked CRC32C as TensorFlow writes it (tsl/lib/hash/crc32c.h)."""

from __future__ import annotations

import google_crc32c

_MASK_DELTA = 0xA282EAD8
_CHUNK = 8 << 20


def crc32c(data: bytes | memoryview, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, extending ``crc``; large buffers in bounded chunks."""
    if isinstance(data, bytes):
        return google_crc32c.extend(crc, data)
    view = memoryview(data).cast("B")
    for start in range(0, len(view), _CHUNK):
        crc = google_crc32c.extend(crc, bytes(view[start:start + _CHUNK]))
    return crc


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
