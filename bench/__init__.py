"""Benchmarks of the MedVoice pipeline (``make bench``: ``python -m bench.run``)."""
