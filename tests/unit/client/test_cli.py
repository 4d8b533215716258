"""The ``medvoice`` commands against the scripted API: outputs, file naming, exit codes."""

from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from medvoice_client.cli import app
from tests.fixtures.tokens import hs256, new_secret
from tests.unit.client.scripted_api import SRT, USER, ScriptedApi, serve

runner = CliRunner()


@pytest.fixture
def token() -> str:
    return hs256(new_secret(), USER)


def recording(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + bytes(1000))
    return path


def test_several_files_are_written_under_unique_names(tmp_path: Path, token: str) -> None:
    files = [recording(tmp_path / "a" / "visit.wav"), recording(tmp_path / "b" / "visit.wav")]
    api = ScriptedApi(events_path="absent", poll_statuses=["completed"])
    out = tmp_path / "out"
    with serve(api) as url:
        env = {"MV_API_URL": url, "MV_TOKEN": token}
        result = runner.invoke(
            app, ["transcribe", *map(str, files), "-f", "srt", "-o", str(out)], env=env
        )
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["visit-2.srt", "visit.srt"]
    assert (out / "visit.srt").read_text() == SRT
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(line[1], line[3]) for line in lines] == [("completed", str(f)) for f in files]
    assert "Hello there" not in result.stderr  # no transcript text in the status lines


def test_wait_with_one_file_writes_the_transcript_to_stdout(tmp_path: Path, token: str) -> None:
    api = ScriptedApi(streams=[[("event", "e1", "processing"), ("event", "e2", "completed")]])
    with serve(api) as url:
        result = runner.invoke(
            app,
            ["transcribe", str(recording(tmp_path / "v.wav")), "--wait", "--format", "srt"],
            env={"MV_API_URL": url, "MV_TOKEN": token},
        )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == SRT


def test_without_wait_the_task_ids_are_printed(tmp_path: Path, token: str) -> None:
    api = ScriptedApi()
    with serve(api) as url:
        result = runner.invoke(
            app,
            ["transcribe", str(recording(tmp_path / "v.m4a")), "--url", url, "--token", token],
        )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\t")[:3] == [str(api.task_id), "queued", "-"]
    assert api.polls == 0


def test_a_failed_task_exits_1_with_its_code(tmp_path: Path, token: str) -> None:
    api = ScriptedApi(streams=[[("event", "e1", "processing"), ("event", "e2", "failed")]])
    with serve(api) as url:
        env = {"MV_API_URL": url, "MV_TOKEN": token}
        result = runner.invoke(
            app, ["transcribe", str(recording(tmp_path / "v.wav")), "-o", str(tmp_path)], env=env
        )
        status = runner.invoke(app, ["status", str(api.task_id)], env=env)
    assert result.exit_code == 1
    assert result.stdout.split("\t")[1] == "failed"
    assert "audio_undecodable" in result.stderr
    assert status.exit_code == 1
    assert status.stdout.split("\t")[:2] == [str(api.task_id), "failed"]


@pytest.mark.parametrize("out", [True, False])
def test_a_completed_task_whose_transcript_is_gone_exits_1(
    tmp_path: Path, token: str, out: bool
) -> None:
    api = ScriptedApi(streams=[[("event", "e1", "completed")]], transcript_gone=True)
    where = ["--out", str(tmp_path / "out")] if out else ["--wait"]
    with serve(api) as url:
        result = runner.invoke(
            app,
            ["transcribe", str(recording(tmp_path / "v.wav")), *where],
            env={"MV_API_URL": url, "MV_TOKEN": token},
        )
    assert result.exit_code == 1
    assert "no longer stored" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["transcribe", "{a}", "{b}", "--wait"],  # several files to stdout
        ["transcribe", "{x}"],  # a suffix that names no format
        ["transcribe", "{a}", "--format", "docx"],
        ["status", "not-a-uuid"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, token: str, args: list[str]) -> None:
    paths = {
        "a": recording(tmp_path / "a.wav"),
        "b": recording(tmp_path / "b.wav"),
        "x": recording(tmp_path / "notes.xyz"),
    }
    argv = [arg.format(**{k: str(v) for k, v in paths.items()}) for arg in args]
    env = {"MV_API_URL": "http://127.0.0.1:9", "MV_TOKEN": token}  # never contacted
    result = runner.invoke(app, argv, env=env)
    assert result.exit_code == 2, result.output


def test_tasks_lists_and_says_when_the_api_has_no_list(token: str) -> None:
    listing, bare = ScriptedApi(list_route=True), ScriptedApi()
    with serve(listing) as url:
        listed = runner.invoke(
            app, ["tasks", "--limit", "5"], env={"MV_API_URL": url, "MV_TOKEN": token}
        )
    with serve(bare) as url:
        missing = runner.invoke(app, ["tasks"], env={"MV_API_URL": url, "MV_TOKEN": token})
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.split("\t")[:2] == [str(listing.task_id), "queued"]
    assert "--cursor next-page" in listed.stderr
    assert missing.exit_code == 1
    assert "no task list" in missing.stderr


def test_token_is_signed_with_the_apis_secret(tmp_path: Path) -> None:
    secret = new_secret()
    result = runner.invoke(
        app, ["token", "--sub", USER, "--admin"], env={"MEDVOICE_AUTH__HS256_SECRET": secret}
    )
    assert result.exit_code == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == USER
    assert "medvoice:admin" in claims["scope"].split()
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    from_file = runner.invoke(
        app,
        ["token", "--sub", USER, "--secret-file", str(secret_file)],
        env={"MEDVOICE_AUTH__HS256_SECRET": ""},
    )
    assert jwt.decode(from_file.stdout.strip(), secret, algorithms=["HS256"])["sub"] == USER
    none = runner.invoke(app, ["token", "--sub", USER], env={"MEDVOICE_AUTH__HS256_SECRET": ""})
    assert none.exit_code == 2
    bad_sub = runner.invoke(
        app, ["token", "--sub", "a/b"], env={"MEDVOICE_AUTH__HS256_SECRET": secret}
    )
    assert bad_sub.exit_code == 2
