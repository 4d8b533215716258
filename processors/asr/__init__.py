"""Speech recognition backends behind one small protocol."""

from processors.asr.base import AsrBackend, AsrOptions, Transcript

__all__ = ["AsrBackend", "AsrOptions", "Transcript"]
