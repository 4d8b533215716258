"""The resampler is fed decoded frames joined into blocks of about a second, each block
of one kind (sample format, channel layout, rate), the samples unchanged and in order."""

import av
import numpy as np
import numpy.typing as npt

from processors.audio import merged_blocks


def frame(values: npt.NDArray[np.float32], rate: int, layout: str = "stereo") -> av.AudioFrame:
    planes = np.stack([values, -values]) if layout == "stereo" else values[np.newaxis, :]
    out = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
    out.sample_rate = rate
    return out


def run(rate: int, start: int, count: int, size: int = 1024) -> list[av.AudioFrame]:
    """``count`` frames of ``size`` samples numbered from ``start`` (each sample its index)."""
    return [
        frame(np.arange(start + i * size, start + (i + 1) * size, dtype=np.float32), rate)
        for i in range(count)
    ]


def test_frames_join_into_blocks_of_about_a_second_with_every_sample_in_order() -> None:
    frames = run(22_050, 0, 50)  # 51,200 samples: 2.3 s
    blocks = list(merged_blocks(frames, block_s=1.0))
    assert [b.samples for b in blocks] == [22 * 1024, 22 * 1024, 6 * 1024]
    joined = np.concatenate([b.to_ndarray() for b in blocks], axis=1)
    assert np.array_equal(joined, np.concatenate([f.to_ndarray() for f in frames], axis=1))
    assert all(
        (b.format.name, b.layout.name, b.sample_rate) == ("fltp", "stereo", 22_050) for b in blocks
    )


def test_a_change_of_rate_or_layout_ends_the_block() -> None:
    mono = frame(np.ones(1024, np.float32), 22_050, layout="mono")
    frames = [*run(22_050, 0, 3), *run(44_100, 0, 2), mono]
    blocks = list(merged_blocks(frames, block_s=1.0))
    kinds = [(b.layout.name, b.sample_rate, b.samples) for b in blocks]
    assert kinds == [("stereo", 22_050, 3072), ("stereo", 44_100, 2048), ("mono", 22_050, 1024)]


def test_a_block_of_many_channels_at_a_high_rate_stops_at_its_byte_bound() -> None:
    """8 channels of float at 96 kHz are 3 MB a second: a block is joined by copying."""
    frames = []
    for _ in range(200):  # 204,800 samples: 2.1 s
        out = av.AudioFrame.from_ndarray(
            np.ones((1, 8 * 1024), np.float32), format="flt", layout="7.1"
        )
        out.sample_rate = 96_000
        frames.append(out)
    blocks = list(merged_blocks(frames, block_s=1.0, block_bytes=1 << 20))
    assert sum(b.samples for b in blocks) == 200 * 1024
    assert all(b.samples * 8 * 4 <= (1 << 20) for b in blocks)
    assert len(blocks) == 7  # 32 frames (1 MiB) each, then the rest


def test_a_frame_pyav_cannot_copy_goes_on_alone_between_blocks() -> None:
    """PyAV counts 9 planes in an 8-channel planar frame and cannot copy its samples out."""
    odd = av.AudioFrame(format="fltp", layout="7.1", samples=1024)
    odd.sample_rate = 22_050
    frames = [*run(22_050, 0, 2), odd, *run(22_050, 2048, 2)]
    blocks = list(merged_blocks(frames, block_s=1.0))
    assert [b.samples for b in blocks] == [2048, 1024, 2048]
    assert blocks[1] is odd
