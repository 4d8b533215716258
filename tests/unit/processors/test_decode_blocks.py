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
