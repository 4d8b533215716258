"""The worker reads the recording its event's ids name, never a key the event merely states."""

import uuid

import pytest

from processors.errors import ErrorCode, TaskError
from processors.pipeline import recording_key
from schemas.events import AudioSubmitted
from schemas.ids import AudioExtension


def event(object_key: str) -> AudioSubmitted:
    return AudioSubmitted(
        task_id=uuid.uuid4(),
        user_id="dr_a",
        file_id="f1",
        file_extension=AudioExtension.MP3,
        object_key=object_key,
    )


def test_the_key_is_rebuilt_from_the_ids() -> None:
    assert recording_key(event("audio/dr_a/f1.mp3")) == "audio/dr_a/f1.mp3"


@pytest.mark.parametrize(
    "object_key",
    [
        "audio/dr_b/f1.mp3",  # another user's recording
        "audio/dr_a/f2.mp3",  # another recording of the same user
        "audio/dr_a/f1.m4a",  # another extension than declared
        "audio/dr_a/../dr_b/f1.mp3",
        "transcripts/dr_b/0b1c.json",
        "",
    ],
)
def test_a_key_that_disagrees_with_the_ids_fails_the_task(object_key: str) -> None:
    with pytest.raises(TaskError) as info:
        recording_key(event(object_key))
    assert info.value.code is ErrorCode.OBJECT_KEY_MISMATCH and not info.value.transient
    assert object_key not in info.value.message or not object_key
