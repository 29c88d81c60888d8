"""LZW as Go's ``compress/lzw`` does it with LSB bit order and 8-bit literals.

memberlist compresses every TCP stream and any UDP packet that shrinks (acks usually do), so
we must read Go's output and write what Go reads. Python's stdlib has no LZW; this is our own
codec following the format: clear code 256, end code 257, codes of 9 to 12 bits packed
least-significant-bit first, the first code of a stream is a clear code (Go >= 1.17), and the
writer emits a clear code when the table would reach 4095 entries.
"""

from __future__ import annotations

_LIT_WIDTH = 8
_CLEAR = 1 << _LIT_WIDTH  # 256
_EOF = _CLEAR + 1  # 257
_MAX_WIDTH = 12
_MAX_CODE = (1 << _MAX_WIDTH) - 1  # 4095

# memberlist HEAD refuses to inflate more than this; so do we (a decompression bomb guard).
MAX_DECOMPRESSED = 40 * 1024 * 1024


class LZWError(ValueError):
    """The input is not a valid Go LZW stream."""


def compress(data: bytes) -> bytes:
    """Compress ``data`` into a stream Go's ``lzw.NewReader(r, lzw.LSB, 8)`` accepts."""
    out = bytearray()
    bits = 0
    nbits = 0
    width = _LIT_WIDTH + 1
    hi = _EOF
    overflow = 1 << width
    table: dict[int, int] = {}

    def emit(code: int) -> None:
        nonlocal bits, nbits
        bits |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8

    def inc_hi() -> bool:
        """Advance the next implied code; on exhaustion send a clear and reset (True)."""
        nonlocal hi, width, overflow
        hi += 1
        if hi == overflow:
            width += 1
            overflow <<= 1
        if hi == _MAX_CODE:
            emit(_CLEAR)
            width = _LIT_WIDTH + 1
            hi = _EOF
            overflow = 1 << width
            table.clear()
            return True
        return False

    emit(_CLEAR)
    if data:
        code = data[0]
        for x in data[1:]:
            key = (code << 8) | x
            hit = table.get(key)
            if hit is not None:
                code = hit
                continue
            emit(code)
            code = x
            if inc_hi():
                continue
            table[key] = hi
        emit(code)
        inc_hi()
    emit(_EOF)
    if nbits > 0:
        out.append(bits & 0xFF)
    return bytes(out)


def decompress(data: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    """Inflate a Go LSB/8 LZW stream; raise LZWError on malformed input or past ``limit``."""
    out = bytearray()
    # Cache of each code's expansion avoids walking prefix chains byte by byte.
    strings: dict[int, bytes] = {}
    width = _LIT_WIDTH + 1
    hi = _EOF
    overflow = 1 << width
    last = -1
    bits = 0
    nbits = 0
    pos = 0
    n = len(data)
    while True:
        while nbits < width:
            if pos >= n:
                raise LZWError("unexpected end of LZW stream")
            bits |= data[pos] << nbits
            pos += 1
            nbits += 8
        code = bits & ((1 << width) - 1)
        bits >>= width
        nbits -= width
        if code < _CLEAR:
            chunk = bytes((code,))
            if last >= 0:
                strings[hi] = strings_of(last, strings) + chunk
        elif code == _CLEAR:
            width = _LIT_WIDTH + 1
            hi = _EOF
            overflow = 1 << width
            last = -1
            strings.clear()
            continue
        elif code == _EOF:
            return bytes(out)
        elif code <= hi:
            if code == hi:
                if last < 0:
                    raise LZWError("invalid LZW code")
                prev = strings_of(last, strings)
                chunk = prev + prev[:1]
            else:
                chunk = strings_of(code, strings)
            if last >= 0:
                strings[hi] = strings_of(last, strings) + chunk[:1]
        else:
            raise LZWError("invalid LZW code")
        out += chunk
        if len(out) > limit:
            raise LZWError(f"decompressed size exceeds {limit} bytes")
        last = code
        hi += 1
        if hi >= overflow:
            if width == _MAX_WIDTH:
                last = -1
                hi -= 1
            else:
                width += 1
                overflow = 1 << width


def strings_of(code: int, strings: dict[int, bytes]) -> bytes:
    if code < _CLEAR:
        return bytes((code,))
    try:
        return strings[code]
    except KeyError:
        raise LZWError("invalid LZW code") from None
