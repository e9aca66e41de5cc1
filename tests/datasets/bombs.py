"""Tiny hostile archives for the archive tests, built in memory in well under a second: a few KB
that unpack (or would) to GBs. Nothing here writes more than the archive itself."""
from __future__ import annotations

import bz2
import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from functools import lru_cache

GiB = 1 << 30


@lru_cache(maxsize=None)
def _bzip2_block() -> tuple[str, int, int]:
    """One full bzip2 block of zeros at level 9, as a string of bits: (bits, its CRC, bytes it unpacks to).
    Every full block of a stream of zeros is the same, so a stream of N of them is N copies."""
    data = bz2.compress(bytes(48 << 20), 9)  # one full block (~45.9 MB of zeros after bzip2's run-length stage)
    bits = bin(int.from_bytes(data[4:], "big"))[2:].zfill(8 * (len(data) - 4))
    magic = bin(0x314159265359)[2:].zfill(48)
    first, second = bits.find(magic), bits.find(magic, 48)
    block = bits[first:second]
    crc = int(block[48:80], 2)
    size = len(bz2.decompress(_bzip2_stream(block, crc, 1)))
    return block, crc, size


def _bzip2_stream(block: str, crc: int, n: int) -> bytes:
    combined = 0
    for _ in range(n):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ crc
    bits = block * n + bin(0x177245385090)[2:].zfill(48) + bin(combined)[2:].zfill(32)
    bits += "0" * (-len(bits) % 8)
    return b"BZh9" + int(bits, 2).to_bytes(len(bits) // 8, "big")


def bzip2_zeros(at_least: int) -> tuple[bytes, int]:
    """A bzip2 stream of zeros unpacking to ``at_least`` bytes or a little more: (stream, unpacked size)."""
    block, crc, size = _bzip2_block()
    n = -(-at_least // size)
    return _bzip2_stream(block, crc, n), n * size


def deflate_zeros(at_least: int) -> tuple[bytes, int]:
    """A raw deflate stream of zeros unpacking to ``at_least`` bytes or a little more (identical segments
    after full flushes, so it costs nothing to make): (stream, unpacked size)."""
    piece = 8 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = c.compress(bytes(piece)) + c.flush(zlib.Z_FULL_FLUSH)
    n = -(-at_least // piece)
    return segment * n + c.compress(b"") + c.flush(zlib.Z_FINISH), n * piece


def zip_with_raw(members: list[tuple[str, bytes]], raw_name: str, raw: bytes, method: int, declared: int,
                 crc: int = 0) -> bytes:
    """A zip of the plain ``members`` and one member ``raw_name`` whose stored bytes are ``raw``, already
    compressed with ``method``, declaring ``declared`` bytes unpacked (sizes under 4 GiB: no zip64)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
        z.writestr(raw_name, raw)
        info = z.getinfo(raw_name)
    body = bytearray(buf.getvalue())
    local = info.header_offset
    struct.pack_into("<H", body, local + 8, method)
    struct.pack_into("<I", body, local + 14, crc)
    struct.pack_into("<I", body, local + 22, declared)
    central = body.rindex(b"PK\x01\x02")  # the last entry of the central directory is the raw member's
    assert body[central + 46: central + 46 + len(raw_name)] == raw_name.encode()
    struct.pack_into("<H", body, central + 10, method)
    struct.pack_into("<I", body, central + 16, crc)
    struct.pack_into("<I", body, central + 24, declared)
    return bytes(body)


def sparse_tar_gz(members: list[tuple[str, bytes]], sparse_name: str, declared: int) -> bytes:
    """A .tar.gz of the plain ``members`` and a GNU sparse member declaring ``declared`` bytes, all holes but
    its last byte: a few hundred bytes in all."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        end = t.offset
    tar = buf.getvalue()[:end]  # without the end-of-archive blocks
    info = tarfile.TarInfo(sparse_name)
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 1  # one byte of data stored
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[386:398] = tarfile.itn(declared - 1, 12, tarfile.GNU_FORMAT)  # sparse map: 1 byte at the end
    header[398:410] = tarfile.itn(1, 12, tarfile.GNU_FORMAT)
    header[482] = 0  # no extended sparse header
    header[483:495] = tarfile.itn(declared, 12, tarfile.GNU_FORMAT)  # the real size
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header[:512])
    tar += bytes(header) + b"x" + bytes(511) + bytes(1024)
    return gzip.compress(tar)
