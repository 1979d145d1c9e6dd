"""Real media bytes, built with the standard library: PNG images and audio in every TTS format.

Speech files carry the text they were made from (`SIMTEXT:<base64>` in a metadata field), so the
simulator's own speech-to-text can give it back: relay round-trip tests (speech → transcription) work.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import zlib
from functools import lru_cache

MAX_SIDE = 2048
SPEECH_SAMPLE_RATE = 24_000  # what OpenAI's wav/pcm use
_MARKER = re.compile(rb"SIMTEXT:([A-Za-z0-9_=-]+);")


# --- images ---------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@lru_cache(maxsize=64)
def png(seed: str, width: int, height: int) -> bytes:
    """A width×height RGB PNG whose colours and stripes follow from `seed` (same seed, same bytes)."""
    width = min(max(width, 1), MAX_SIDE)
    height = min(max(height, 1), MAX_SIDE)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    first, second = digest[0:3], digest[3:6]
    stripe = 8 + digest[6] % 56
    cells = [first if (x // stripe) % 2 == 0 else second for x in range(width)]
    row_a = b"\x00" + b"".join(cells)
    row_b = b"\x00" + b"".join(second if cell is first else first for cell in cells)
    raw = b"".join(row_a if (y // stripe) % 2 == 0 else row_b for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 6))
        + _png_chunk(b"IEND", b"")
    )


# --- speech --------------------------------------------------------------------------------------------


def speech_seconds(text: str, speed: float) -> float:
    """About 15 characters a second at speed 1, between half a second and two minutes."""
    return min(max(len(text) / 15.0 / max(speed, 0.25), 0.5), 120.0)


def _marker(text: str) -> bytes:
    return b"SIMTEXT:" + base64.urlsafe_b64encode(text.encode("utf-8")) + b";"


def spoken_text(audio: bytes) -> str | None:
    """The text a simulator-made speech file was generated from, if it is one."""
    match = _MARKER.search(audio)
    if match is None:
        return None
    try:
        return base64.urlsafe_b64decode(match.group(1)).decode("utf-8")
    except ValueError:
        return None


def _syncsafe(size: int) -> bytes:
    return bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])


def _id3(text: str) -> bytes:
    """An ID3v2.4 tag holding the marker in a TXXX frame (MP3 and ADTS files commonly start with one)."""
    payload = b"\x03sim\x00" + _marker(text)
    frame = b"TXXX" + _syncsafe(len(payload)) + b"\x00\x00" + payload
    return b"ID3\x04\x00\x00" + _syncsafe(len(frame)) + frame


def mp3(text: str, speed: float = 1.0) -> bytes:
    """MPEG-1 Layer III, 32 kbit/s, 44.1 kHz mono: silent frames (zero side info) after an ID3 tag."""
    frames = max(1, round(speech_seconds(text, speed) * 44_100 / 1152))
    frame = b"\xff\xfb\x50\xc4" + bytes(104 - 4)  # 144 × 32000 / 44100 = 104 bytes, no padding
    return _id3(text) + frame * frames


def _pcm_samples(text: str, speed: float) -> bytes:
    return bytes(2 * round(speech_seconds(text, speed) * SPEECH_SAMPLE_RATE))


def wav(text: str, speed: float = 1.0) -> bytes:
    """RIFF/WAVE, 16-bit PCM mono 24 kHz silence, with the marker in a LIST/INFO comment."""
    samples = _pcm_samples(text, speed)
    fmt = struct.pack("<HHIIHH", 1, 1, SPEECH_SAMPLE_RATE, SPEECH_SAMPLE_RATE * 2, 2, 16)
    comment = _marker(text) + b"\x00"
    if len(comment) % 2:
        comment += b"\x00"
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(comment)) + comment
    chunks = (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"LIST" + struct.pack("<I", len(info)) + info
        + b"data" + struct.pack("<I", len(samples)) + samples
    )  # fmt: skip
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def pcm(text: str, speed: float = 1.0) -> bytes:
    """Raw 16-bit little-endian mono 24 kHz samples (no header, so no marker: see AssetStore.transcripts)."""
    return _pcm_samples(text, speed)


def _vorbis_comment(text: str) -> bytes:
    vendor = b"1min-relay simulator"
    comment = b"COMMENT=" + _marker(text)
    return (
        struct.pack("<I", len(vendor))
        + vendor
        + struct.pack("<I", 1)
        + struct.pack("<I", len(comment))
        + comment
    )


def flac(text: str, speed: float = 1.0) -> bytes:
    """`fLaC` + STREAMINFO (24 kHz mono 16-bit, sample count) + VORBIS_COMMENT; no audio frames."""
    samples = round(speech_seconds(text, speed) * SPEECH_SAMPLE_RATE)
    packed = (
        (SPEECH_SAMPLE_RATE << 44) | (0 << 41) | (15 << 36) | samples
    )  # rate, channels-1, bits-1, samples
    streaminfo = struct.pack(">HH", 4096, 4096) + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    comment = _vorbis_comment(text)
    return (
        b"fLaC"
        + bytes([0x00]) + len(streaminfo).to_bytes(3, "big") + streaminfo
        + bytes([0x84]) + len(comment).to_bytes(3, "big") + comment
    )  # fmt: skip


def _ogg_crc_table() -> list[int]:
    table = []
    for index in range(256):
        value = index << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else value << 1
        table.append(value & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_page(packet: bytes, sequence: int, header_type: int, granule: int) -> bytes:
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    head = b"OggS\x00" + bytes([header_type]) + struct.pack("<qIII", granule, 0x51AD5EED, sequence, 0)
    page = bytearray(head + bytes([len(lacing)]) + lacing + packet)
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) ^ byte) & 0xFF]
    page[22:26] = struct.pack("<I", crc)
    return bytes(page)


def opus(text: str, speed: float = 1.0) -> bytes:
    """Ogg Opus identification and comment pages (RFC 7845), the comment holding the marker."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48_000, 0, 0)
    tags = b"OpusTags" + _vorbis_comment(text)
    granule = round(speech_seconds(text, speed) * 48_000)
    return _ogg_page(head, 0, 0x02, 0) + _ogg_page(tags, 1, 0x00, 0) + _ogg_page(b"", 2, 0x04, granule)


def aac(text: str, speed: float = 1.0) -> bytes:
    """An ID3 tag then ADTS frames (AAC-LC, 24 kHz mono), one per 1024 samples, with empty payloads."""
    frames = max(1, round(speech_seconds(text, speed) * SPEECH_SAMPLE_RATE / 1024))
    length = 7 + 2
    header = bytes(
        [
            0xFF,
            0xF1,
            (1 << 6) | (6 << 2),
            (1 << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,
            0xFC,
        ]
    )
    return _id3(text) + (header + b"\x00\x00") * frames


SPEECH_FORMATS = {
    "mp3": (mp3, "audio/mpeg"),
    "wav": (wav, "audio/wav"),
    "flac": (flac, "audio/flac"),
    "opus": (opus, "audio/ogg"),
    "aac": (aac, "audio/aac"),
    "pcm": (pcm, "audio/L16"),
}
