"""Audio containers: what a file of each extension starts with, and opening it safely.

Left to itself, FFmpeg guesses a file's format from its bytes and follows what it finds:
a concat script or an HLS playlist makes it open other files or URLs. Here a recording is
opened only with the demuxer of its declared extension, from a Python file object (PyAV's
own I/O, no protocol at all), and nested opens are refused (no protocol is allowed). The
API checks direct uploads with these functions; the worker checks every recording with
them too, since a presigned upload never passes the API.
"""

from typing import IO

import av
from av.container import InputContainer

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

DEMUXERS: dict[AudioExtension, str] = {
    AudioExtension.M4A: "mov,mp4,m4a,3gp,3g2,mj2",
    AudioExtension.MP3: "mp3",
    AudioExtension.WAV: "wav",
    AudioExtension.OGG: "ogg",
    AudioExtension.OPUS: "ogg",
    AudioExtension.WEBM: "matroska,webm",
    AudioExtension.FLAC: "flac",
    AudioExtension.AAC: "aac",  # ADTS
}
"""The one FFmpeg demuxer each extension is opened with (its full FFmpeg name)."""

NO_NESTED_INPUT: dict[str, str] = {"protocol_whitelist": ""}
"""Container options: an empty protocol whitelist, so a demuxer cannot open another input
(file, http, ...). The recording itself is read through PyAV's I/O, which is no protocol."""

# Fail at import (so at start-up) when this FFmpeg build lacks a demuxer relied on above
# (ContainerFormat raises ValueError for a name FFmpeg does not know at all).
for _name in sorted(set(DEMUXERS.values())):
    if not av.ContainerFormat(_name).is_input:
        raise RuntimeError(f"This FFmpeg build has no {_name!r} demuxer.")


def looks_like(extension: AudioExtension, head: bytes) -> bool:
    """Whether ``head`` (the file's first bytes) fits the container ``extension`` names."""
    if extension is AudioExtension.WAV and head[8:12] != b"WAVE":
        return False
    return any(head[at : at + len(sig)] == sig for at, sig in _MAGIC[extension])


def open_audio(body: IO[bytes], extension: AudioExtension) -> InputContainer:
    """Open ``body`` as the container ``extension`` names, and as nothing else.

    Raises:
        av.FFmpegError: the bytes are not that container (or a nested open was tried).
    """
    demuxer = DEMUXERS[extension]
    options = {**NO_NESTED_INPUT, "format_whitelist": demuxer}
    return av.open(body, mode="r", format=demuxer, container_options=options)


def probe_duration_s(body: IO[bytes], extension: AudioExtension) -> float | None:
    """The recording's duration from its container header, or None when it does not say.

    Reads headers only (no decoding), with the declared container's demuxer; rewinds
    ``body`` afterwards.
    """
    try:
        with open_audio(body, extension) as container:
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
