"""What FFmpeg is allowed to read: the declared container only, and nothing beside it.

Real FFmpeg through PyAV; recordings synthesised with espeak-ng. A concat script names a
WAV file next to it (in the working directory, where FFmpeg resolves a relative name):
guessing the format would decode that file instead of the upload.
"""

import io
from pathlib import Path

import av
import numpy as np
import pytest

from medvoice_common.audio_format import DEMUXERS, NO_NESTED_INPUT, open_audio
from processors.audio import decode
from processors.errors import ErrorCode, TaskError
from processors.pipeline import admit
from schemas.ids import AudioExtension
from tests.fixtures.audio import speak_wav, spoken_clip

SENTENCE = "Please schedule a chest x ray for tomorrow morning."
LONG = (
    "The patient is a sixty two year old man with a history of hypertension "
    "who presents with shortness of breath on exertion for two weeks."
)
MAX_AUDIO_S = 3600.0
CONCAT = b"ffconcat version 1.0\nfile local.wav\n"
HLS = (
    b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
    b"#EXTINF:10.0,\nlocal.wav\n#EXTINF:10.0,\nhttp://127.0.0.1:9/seg.ts\n#EXT-X-ENDLIST\n"
)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``local.wav``: speech a guessing FFmpeg would find and decode."""
    directory = tmp_path_factory.mktemp("ffmpeg-input")
    speak_wav("This file must never be read.", directory / "local.wav")
    return directory


@pytest.fixture
def in_work(work: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(work)
    return work


def png_image() -> bytes:
    """A real PNG image (one 16x16 frame encoded by FFmpeg)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="image2pipe") as dst:
        stream = dst.add_stream("png", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    return out.getvalue()


NOT_AUDIO = {ErrorCode.AUDIO_UNDECODABLE, ErrorCode.AUDIO_EMPTY}


def refused(data: bytes, ext: AudioExtension) -> ErrorCode:
    """The code the pre-decode check refuses ``data`` with; the decoder alone refuses it too.

    The decoder is the second line: given only the declared container's demuxer, it finds
    no audio in what is not that container (``audio_undecodable``, or ``audio_empty`` from
    a demuxer that resyncs past everything).
    """
    with pytest.raises(TaskError) as checked:
        admit(data, ext, MAX_AUDIO_S)
    with pytest.raises(TaskError) as decoded:
        decode(data, ext)
    assert not checked.value.transient and not decoded.value.transient
    assert decoded.value.code in NOT_AUDIO, decoded.value.code
    return checked.value.code


@pytest.mark.parametrize("ext", list(AudioExtension))
def test_a_concat_script_never_reads_the_file_it_names(in_work: Path, ext: AudioExtension) -> None:
    # Checked first: the file the script names really is decodable from here.
    assert decode((in_work / "local.wav").read_bytes(), AudioExtension.WAV).duration_s > 1.0
    assert refused(CONCAT, ext) is ErrorCode.AUDIO_WRONG_FORMAT


@pytest.mark.parametrize("ext", list(AudioExtension))
def test_an_hls_playlist_is_refused(in_work: Path, ext: AudioExtension) -> None:
    assert refused(HLS, ext) is ErrorCode.AUDIO_WRONG_FORMAT


@pytest.mark.parametrize("ext", [AudioExtension.WAV, AudioExtension.M4A, AudioExtension.MP3])
def test_an_image_named_as_audio_is_refused(ext: AudioExtension) -> None:
    assert refused(png_image(), ext) is ErrorCode.AUDIO_WRONG_FORMAT


# Rule: bytes of another supported container than the one declared are refused, as the API
# refuses them on a direct upload. Ogg and Opus are one container (Ogg), so either
# extension takes either codec; ``test_ogg_and_opus_are_one_container`` shows it.
MISMATCHES = [
    ("mp3", AudioExtension.M4A),
    ("m4a", AudioExtension.MP3),
    ("wav", AudioExtension.FLAC),
    ("flac", AudioExtension.WAV),
    ("ogg", AudioExtension.WEBM),
    ("webm", AudioExtension.OGG),
    ("aac", AudioExtension.MP3),
    ("m4a", AudioExtension.AAC),
]


@pytest.mark.parametrize(("actual", "declared"), MISMATCHES)
def test_another_container_than_declared_is_refused(
    work: Path, actual: str, declared: AudioExtension
) -> None:
    data = spoken_clip(SENTENCE, actual, work)
    assert refused(data, declared) is ErrorCode.AUDIO_WRONG_FORMAT


def test_mp3_with_an_id3_tag_declared_aac_is_not_decoded(work: Path) -> None:
    # The one pair whose first bytes fit both (an ID3 tag may open an ADTS stream too):
    # the ADTS demuxer alone reads it, and finds no AAC in it.
    data = spoken_clip(SENTENCE, "mp3", work)
    assert data.startswith(b"ID3")
    admit(data, AudioExtension.AAC, MAX_AUDIO_S)
    with pytest.raises(TaskError) as info:
        decode(data, AudioExtension.AAC)
    assert info.value.code is ErrorCode.AUDIO_UNDECODABLE


@pytest.mark.parametrize("ext", list(AudioExtension))
def test_each_extension_is_read_by_its_own_demuxer(work: Path, ext: AudioExtension) -> None:
    data = spoken_clip(SENTENCE, ext.value, work)
    admit(data, ext, MAX_AUDIO_S)
    with open_audio(io.BytesIO(data), ext) as container:
        assert container.format.name == DEMUXERS[ext]
    assert 2.0 < decode(data, ext).duration_s < 6.0


def test_ogg_and_opus_are_one_container(work: Path) -> None:
    data = spoken_clip(SENTENCE, "ogg", work)  # Opus in Ogg
    for ext in (AudioExtension.OGG, AudioExtension.OPUS):
        admit(data, ext, MAX_AUDIO_S)
        assert decode(data, ext).duration_s > 2.0


def test_the_open_options_forbid_nested_inputs(in_work: Path) -> None:
    # Without the options, a demuxer that opens other inputs reads the local file...
    with av.open(io.BytesIO(CONCAT), mode="r", format="concat") as container:
        assert sum(f.samples for f in container.decode(audio=0)) > 0
    # ...with them, it cannot open anything.
    with pytest.raises(av.FFmpegError):
        av.open(io.BytesIO(CONCAT), mode="r", format="concat", container_options=NO_NESTED_INPUT)


def test_a_header_over_the_duration_limit_is_refused_before_decoding(work: Path) -> None:
    # An MP3 whose Xing header counts ~9 s of frames, cut after its first fifth: the API's
    # check (the header's duration) refuses it, while decoding alone finds only ~2 s.
    full = spoken_clip(LONG, "mp3", work)
    cut = full[: len(full) // 5]
    assert decode(cut, AudioExtension.MP3).duration_s < 4.0
    with pytest.raises(TaskError) as info:
        admit(cut, AudioExtension.MP3, 5.0)
    assert info.value.code is ErrorCode.AUDIO_TOO_LONG and not info.value.transient
    admit(full, AudioExtension.MP3, 30.0)  # within the limit: admitted
