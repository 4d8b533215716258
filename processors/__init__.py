"""The Faust worker: consumes AudioSubmitted, transcribes, emits TranscriptReady and status."""
