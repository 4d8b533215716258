"""Recognising audio containers by their first bytes, before an upload is accepted."""

from typing import IO

import av

from schemas.ids import AudioExtension

HEAD_BYTES = 64  # enough for every signature below

# What a file of each extension may start with. m4a/mp4: an ISO-BMFF "ftyp" box at 4;
# mp3: an ID3 tag or an MPEG audio frame sync; aac: ADTS sync (or ADIF); webm: EBML.
_MAGIC: dict[AudioExtension, tuple[tuple[int, bytes], ...]] = {
    AudioExtension.M4A: ((4, b"ftyp"),),
    AudioExtension.MP3: (
        (0, b"ID3"),
        (0, b"\xff\xfb"),
        (0, b"\xff\xf3"),
        (0, b"\xff\xf2"),
        (0, b"\xff\xe3"),
    ),
    AudioExtension.WAV: ((0, b"RIFF"),),
    AudioExtension.OGG: ((0, b"OggS"),),
    AudioExtension.OPUS: ((0, b"OggS"),),
    AudioExtension.WEBM: ((0, b"\x1a\x45\xdf\xa3"),),
    AudioExtension.FLAC: ((0, b"fLaC"),),
    AudioExtension.AAC: ((0, b"\xff\xf1"), (0, b"\xff\xf9"), (0, b"ADIF"), (0, b"ID3")),
}


def looks_like(extension: AudioExtension, head: bytes) -> bool:
    """Whether ``head`` (the file's first bytes) fits the container ``extension`` names."""
    if extension is AudioExtension.WAV and head[8:12] != b"WAVE":
        return False
    return any(head[at : at + len(sig)] == sig for at, sig in _MAGIC[extension])


def probe_duration_s(body: IO[bytes]) -> float | None:
    """The recording's duration from its container header, or None when it does not say.

    Reads headers only (no decoding); rewinds ``body`` afterwards.
    """
    try:
        with av.open(body, mode="r") as container:
            if container.duration is not None:
                return float(container.duration) / av.time_base
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration is not None and stream.time_base:
                return float(stream.duration * stream.time_base)
            return None
    except (av.FFmpegError, ValueError):
        return None
    finally:
        body.seek(0)
