"""Call audio: recognise the accepted formats, check a recording decodes whole, and decode it
to what Whisper hears (16 kHz mono float32, one array per channel).

The format is decided from the file's first bytes, not from its name or a Content-Type a
phone system may get wrong: that is what tells "a kind we do not take" (415) from "one we
take but that is broken" (422). Decoding is PyAV (FFmpeg's libraries, shipped in its wheel),
so no system ffmpeg is needed. Everything here blocks; run it in an executor or a worker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from service.errors import Unprocessable, UnsupportedFormat

SAMPLE_RATE = 16_000

# format -> the Content-Type the original is served with
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
}
ACCEPTED = "WAV (PCM 16-bit, 8 kHz µ-law or A-law), MP3, OGG (Opus or Vorbis), FLAC and M4A (AAC)"
# A recording that decodes to less than this share of the length its header promises is
# truncated (a copy that stopped half-way), not merely rounded.
_WHOLE = 0.98


@dataclass(frozen=True)
class AudioInfo:
    """What a recording is: container format, codec, channels, rate and length."""

    format: str
    codec: str
    channels: int
    sample_rate: int
    duration: float

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def sniff(data: bytes) -> str:
    """The accepted format `data` is in, from its first bytes.

    Raises Unprocessable for an empty file and UnsupportedFormat for anything else.
    """
    if not data:
        raise Unprocessable("the audio file is empty", "audio")
    head = data[:16]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    raise UnsupportedFormat(f"this is not an accepted audio format; send {ACCEPTED}", "audio")


def probe(data: bytes) -> AudioInfo:
    """Check that a recording is in an accepted format and decodes whole, and describe it.

    Raises UnsupportedFormat or Unprocessable with a message a person can act on.
    """
    fmt = sniff(data)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise Unprocessable("the file has no audio stream", "audio")
            stream = container.streams.audio[0]
            rate = stream.sample_rate or stream.codec_context.sample_rate
            samples = sum(frame.samples for frame in container.decode(stream))
            promised = container.duration / 1_000_000 if container.duration else None
            codec = stream.codec_context.name
            channels = stream.codec_context.channels
    except av.error.FFmpegError as exc:
        raise Unprocessable(f"the {fmt} audio could not be decoded: {exc.strerror or exc}", "audio") from None
    if not rate or samples == 0:
        raise Unprocessable(f"the {fmt} file contains no audio samples", "audio")
    duration = samples / rate
    if fmt == "wav" and promised and duration < promised * _WHOLE:
        raise Unprocessable(
            f"the wav file is truncated: its header promises {promised:.1f} s, it holds {duration:.1f} s",
            "audio",
        )
    return AudioInfo(fmt, codec, channels, rate, duration)


def decode(source: Path | bytes, split_channels: bool) -> list[np.ndarray]:
    """The recording as 16 kHz float32 samples: one array per channel (first two) when
    `split_channels` and the file has two or more, otherwise one downmixed array."""
    opened = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), mode="r")
    with opened as container:
        stream = container.streams.audio[0]
        stereo = split_channels and stream.codec_context.channels >= 2
        resampler = av.AudioResampler(format="fltp", layout="stereo" if stereo else "mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        for frame in container.decode(stream):
            chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    planes = 2 if stereo else 1
    if not chunks:
        return [np.zeros(0, dtype=np.float32) for _ in range(planes)]
    joined = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return [np.ascontiguousarray(joined[i]) for i in range(planes)]
