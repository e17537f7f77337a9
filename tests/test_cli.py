"""The jobtrack console script, run for real in subprocesses."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobtrack import (
    AsyncJobTracker,
    JobExpired,
    JobNotFound,
    JobTracker,
    MemoryStore,
    StoreUnavailable,
)
from jobtrack.arguments import encode_cursor
from jobtrack.asgi import status_app
from jobtrack.cli import DEMO_STOPPED, main
from jobtrack.cli.serve import Sweeping, sweep
from jobtrack.clock import format_timestamp, to_ms
from jobtrack.stores import display_url
from jobtrack.stores.registry import SCHEMES
from tests.asgi_driver import call
from tests.test_contract import PlainStore

SCRIPT = str(Path(sys.executable).parent / "jobtrack")
TIMEOUT = 60


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment whose default store lives in tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in ("JOBTRACK_STORE", "REDIS_URL")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/jobs"


def run(*args: str, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [SCRIPT, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_help_and_python_m(env: dict[str, str]) -> None:
    out = run("--help", env=env, check=True).stdout
    for command in ("demo", "serve", "status", "list", "watch", "abort", "purge"):
        assert command in out
    via_module = subprocess.run(
        [sys.executable, "-m", "jobtrack", "--version"], capture_output=True, text=True, check=True
    )
    assert via_module.stdout.startswith("jobtrack ")


def test_demo_runs_to_completion(env: dict[str, str]) -> None:
    result = run(
        "demo", "--port", "0", "--items", "30", "--workers", "3", "--failure-rate", "0.3",
        "--item-seconds", "0", "--seed", "7", "--exit-when-done", env=env, check=True,
    )  # fmt: skip
    assert re.search(
        r"curl -s http://127\.0\.0\.1:\d+/namespaces/demo/upload-jobs/job-[0-9a-f]{32}",
        result.stdout,
    )
    page = r"open http://127\.0\.0\.1:\d+/ui/#ns=demo&job=job-[0-9a-f]{32}"
    assert re.search(page, result.stdout)
    final = json.loads(result.stdout[result.stdout.index("{") :])
    assert final["status"] == "completed"
    assert final["successful"] + final["failed"] == final["processed"] == 30
    done = f"jobtrack demo: job {final['job_id']} completed: {final['successful']} successful"
    assert done in result.stdout  # said when it happened, before the final document
    assert final["failed"] > 0 and final["last_error"].startswith("item ")
    # the demo's job is in the default store, where the other commands find it
    listed = run("list", "demo", "--json", env=env, check=True)
    assert json.loads(listed.stdout)["jobs"][0]["job_id"] == final["job_id"]


def _started(proc: subprocess.Popen[str], marker: str) -> list[str]:
    """Read the process's stdout up to the first line containing *marker*."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed; got {lines!r}")


@pytest.fixture
def popen() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _spawn(procs: list[Any], *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [SCRIPT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    procs.append(proc)
    return proc


def test_demo_on_a_memory_store_prints_no_watch_line(env: dict[str, str]) -> None:
    result = run(
        "demo", "--port", "0", "--items", "2", "--item-seconds", "0", "--store", "memory://",
        "--exit-when-done", env=env, check=True,
    )  # fmt: skip
    assert "curl -s" in result.stdout
    assert " watch " not in result.stdout  # no other process could see a memory store's job


def test_demo_serves_while_it_runs(env: dict[str, str], popen: list[Any]) -> None:
    proc = _spawn(popen, "demo", "--port", "0", "--items", "40", "--item-seconds", "0.05", env=env)
    url = re.search(r"curl -s (\S+)", "".join(_started(proc, "Ctrl-C"))).group(1)  # type: ignore[union-attr]
    doc = httpx.get(url, timeout=10).json()
    assert doc["namespace_name"] == "demo" and doc["total"] == 40
    assert doc["status"] in ("running", "completed")
    proc.send_signal(signal.SIGINT)  # without --exit-when-done it serves until stopped
    assert proc.wait(timeout=TIMEOUT) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_cleanly_on_ctrl_c(
    env: dict[str, str], popen: list[Any], sig: signal.Signals
) -> None:
    proc = _spawn(popen, "demo", "--port", "0", "--items", "100000", "--item-seconds", "1", env=env)
    banner = "".join(_started(proc, "Ctrl-C"))
    job_id = re.search(r"job (job-[0-9a-f]{32})", banner).group(1)  # type: ignore[union-attr]
    proc.send_signal(sig)
    assert proc.wait(timeout=TIMEOUT) == 0
    assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    assert f"job {job_id} aborted" in proc.stdout.read()  # type: ignore[union-attr]
    # the job does not stay "running" forever: the demo aborted what was left
    job = JobTracker(default_store_url(env)).get("demo", job_id)
    assert job.is_finished and job.last_error == DEMO_STOPPED
    assert job.failed == 100_000 - job.successful


def default_store_url(env: dict[str, str]) -> str:
    return f"file://{env['XDG_STATE_HOME']}/jobtrack/jobs"


def test_demo_prints_commands_that_work_from_anywhere(env: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [SCRIPT, "demo", "--port", "0", "--items", "3", "--item-seconds", "0",
         "--store", "file:jobs2", "--exit-when-done"],
        env=env, cwd=work, capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    assert f"store: file://{work}/jobs2" in result.stdout
    watch = next(line for line in result.stdout.splitlines() if " watch demo " in line)
    assert watch.endswith(f" --store file://{work}/jobs2")
    # the printed command, run from another directory, finds the job
    again = subprocess.run(
        shlex.split(watch), env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert again.returncode in (0, 1), again.stderr
    assert "completed" in again.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_over_http_and_stops_on_signal(
    env: dict[str, str], store_url: str, popen: list[Any], sig: signal.Signals
) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 4)
    proc = _spawn(popen, "serve", "--store", store_url, "--port", "0", env=env)
    base = re.search(r"(http://\S+)", _started(proc, "jobtrack serve")[-1]).group(1)  # type: ignore[union-attr]
    response = httpx.get(f"{base}/namespaces/ns/upload-jobs/{job.job_id}", timeout=10)
    assert response.status_code == 200 and response.json() == job.to_dict()
    assert httpx.get(f"{base}/namespaces/ns/upload-jobs/nope", timeout=10).status_code == 404
    proc.send_signal(sig)
    assert proc.wait(timeout=TIMEOUT) == 0
    logged = proc.stderr.read()  # type: ignore[union-attr]
    assert "Traceback" not in logged
    assert "GET /namespaces" not in logged  # no access log unless asked for


def test_serve_access_log_on_request(env: dict[str, str], store_url: str, popen: list[Any]) -> None:
    proc = _spawn(popen, "serve", "--store", store_url, "--port", "0", "--access-log", env=env)
    base = re.search(r"(http://\S+)", _started(proc, "jobtrack serve")[-1]).group(1)  # type: ignore[union-attr]
    assert httpx.get(f"{base}/namespaces/ns/upload-jobs/nope", timeout=10).status_code == 404
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT) == 0
    logged = proc.stdout.read() + proc.stderr.read()  # type: ignore[union-attr]
    assert '"GET /namespaces/ns/upload-jobs/nope HTTP/1.1" 404' in logged


@pytest.mark.parametrize(("failed", "exit_status"), [(0, 0), (1, 1)])
def test_watch_until_another_process_completes_the_job(
    env: dict[str, str], store_url: str, popen: list[Any], failed: int, exit_status: int
) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 5)
    proc = _spawn(
        popen, "watch", "ns", job.job_id, "--store", store_url, "--interval", "0.05", env=env
    )
    tracker.record("ns", job.job_id, processed=2, successful=2)
    completer = subprocess.run(
        [SCRIPT, "abort", "ns", job.job_id, "--store", store_url, "--error", "gave up"]
        if failed
        else [sys.executable, "-c", _COMPLETE, store_url, job.job_id],
        env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    assert completer.returncode == 0
    assert proc.wait(timeout=TIMEOUT) == exit_status
    out = proc.stdout.read()  # type: ignore[union-attr]
    assert "completed" in out and job.job_id in out


def test_watch_rate_counts_only_what_is_done_while_watching(
    env: dict[str, str], store_url: str, popen: list[Any]
) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 200_000)
    tracker.record("ns", job.job_id, processed=199_990, successful=199_990)
    proc = _spawn(
        popen, "watch", "ns", job.job_id, "--store", store_url, "--interval", "0.05", env=env
    )
    assert proc.stderr is not None
    first = proc.stderr.read(200)  # the bar is drawn: the watch has read the job
    tracker.record("ns", job.job_id, processed=10, successful=10)
    assert proc.wait(timeout=TIMEOUT) == 0
    bar = first + proc.stderr.read()
    rates = [float(rate) for rate in re.findall(r"([\d.]+)item/s", bar)]
    # 199,990 items were done before the watch began: not 199,990 items in no time
    assert rates and max(rates) < 10_000, bar


def test_watch_follows_a_total_raised_by_extend(
    env: dict[str, str], store_url: str, popen: list[Any]
) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 2)
    proc = _spawn(
        popen, "watch", "ns", job.job_id, "--store", store_url, "--interval", "0.05", env=env
    )
    assert proc.stderr is not None
    first = proc.stderr.read(100)  # the bar is drawn, with the total of 2
    tracker.extend("ns", job.job_id, 3)
    tracker.record("ns", job.job_id, processed=5, successful=5)
    assert proc.wait(timeout=TIMEOUT) == 0
    bar = first + proc.stderr.read()
    assert "/2 " in first and "5/5 " in bar, bar


_COMPLETE = (
    "import sys; from jobtrack import JobTracker; "
    "JobTracker(sys.argv[1]).record('ns', sys.argv[2], processed=3, successful=3)"
)


def test_watch_unknown_job(env: dict[str, str], store_url: str) -> None:
    JobTracker(store_url).close()  # the store exists; the job does not
    result = run("watch", "ns", "nope", "--store", store_url, env=env)
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "jobtrack: Upload job 'nope' not found in namespace 'ns'. "
        f"(store: {display_url(store_url)})"
    )


def test_printed_commands_name_a_store_from_the_environment(
    env: dict[str, str], store_url: str, tmp_path: Path
) -> None:
    tracker = JobTracker(store_url)
    for i in range(3):
        tracker.start("ns", 1, job_id=f"j{i}")
    out = run("list", "ns", "--limit", "2", env={**env, "JOBTRACK_STORE": store_url}).stdout
    more = next(line for line in out.splitlines() if line.startswith("more: "))
    assert f" --store {store_url} " in more  # the other terminal may not have JOBTRACK_STORE
    again = subprocess.run(
        shlex.split(more[len("more: ") :]), env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=TIMEOUT, check=True,
    ).stdout  # fmt: skip
    assert again.startswith("j0 ")


def test_status_list_abort(env: dict[str, str], store_url: str) -> None:
    env = {**env, "JOBTRACK_STORE": store_url}  # the store from the environment
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 3)
    tracker.record("ns", job.job_id, processed=1, failed=1, error="bad pdf")
    as_json = json.loads(run("status", "ns", job.job_id, "--json", env=env, check=True).stdout)
    assert as_json == tracker.get("ns", job.job_id).to_dict()
    text = run("status", "ns", job.job_id, env=env, check=True).stdout
    assert "running" in text and "last error bad pdf" in text
    assert "expires" not in text  # running: no expiry yet
    # the smoothed rate of items done, and when the job should be done at it (SPEC 8)
    assert re.search(r"\n  rate       [\d.e+-]+ items/s, done at about \S+Z\n", text), text
    aborted = run("abort", "ns", job.job_id, "--error", "operator gave up", env=env, check=True)
    assert "completed" in aborted.stdout
    expires_at = tracker.get("ns", job.job_id).expires_at
    assert expires_at is not None
    assert f"\n  expires    {format_timestamp(expires_at)}\n" in aborted.stdout
    assert tracker.get("ns", job.job_id).last_error == "operator gave up"
    again = run("abort", "ns", job.job_id, "--error", "x", env=env)
    assert again.returncode == 4 and "already completed" in again.stderr
    for i in range(3):
        tracker.start("ns", 1, job_id=f"more{i}")
    listed = run("list", "ns", "--limit", "2", env=env, check=True).stdout
    assert f" list ns --store {store_url} --limit 2 --cursor " in listed
    assert "no jobs in namespace empty" in run("list", "empty", env=env, check=True).stdout


def test_list_prints_the_command_for_the_next_page(
    env: dict[str, str], store_url: str, tmp_path: Path
) -> None:
    tracker = JobTracker(store_url)
    ids = [tracker.start("ns", 1, job_id=f"j{i}").job_id for i in range(5)]

    def check(more: str) -> None:
        command = shlex.split(more)
        assert command[command.index("--store") + 1] == store_url
        assert command[command.index("--limit") + 1] == "2"

    command = [SCRIPT, "list", "ns", "--store", store_url, "--limit", "2"]
    seen = _follow_pages(command, env, tmp_path, check)
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def _follow_pages(
    command: list[str], env: dict[str, str], cwd: Path, check: Callable[[str], None]
) -> list[str]:
    """Run ``jobtrack list`` and each printed next-page command (*check* each); the ids seen."""
    seen: list[str] = []
    for _ in range(10):
        out = subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=True
        ).stdout
        seen += [line.split()[0] for line in out.splitlines() if line.startswith("j")]
        more = [line[len("more: ") :] for line in out.splitlines() if line.startswith("more: ")]
        if not more:
            return seen
        check(more[0])
        command = shlex.split(more[0])
    raise AssertionError("more than 10 pages")


def test_list_aligns_its_columns_and_says_when_a_cursor_is_past_the_end(
    env: dict[str, str], store_url: str
) -> None:
    tracker = JobTracker(store_url)
    tracker.start("ns", 12_000, job_id="a-much-longer-job-id")
    short = tracker.start("ns", 3, job_id="b")
    tracker.record("ns", "b", processed=1, failed=1)
    lines = run("list", "ns", "--store", store_url, env=env, check=True).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["b", "a-much-longer-job-id"]
    assert len({line.index("running") for line in lines}) == 1  # one column each
    assert len({line.index("failed") for line in lines}) == 1
    assert len({line.index("started") for line in lines}) == 1
    assert "  1/3  failed 1  started" in lines[0]
    last = encode_cursor((to_ms(short.started_at), "b"))
    first_page = run("list", "ns", "--store", store_url, "--cursor", last, env=env, check=True)
    assert first_page.stdout.split()[0] == "a-much-longer-job-id"
    oldest = tracker.get("ns", "a-much-longer-job-id")
    past = encode_cursor((to_ms(oldest.started_at), oldest.job_id))
    end = run("list", "ns", "--store", store_url, "--cursor", past, env=env, check=True)
    assert end.stdout == "no more jobs in namespace ns\n"
    running = run("list", "ns", "--store", store_url, "--status", "running", "--cursor", past,
                  env=env, check=True)  # fmt: skip
    assert running.stdout == "no more running jobs in namespace ns\n"


def test_the_next_page_command_works_before_1970_and_for_a_namespace_like_an_option(
    env: dict[str, str], store_url: str, tmp_path: Path
) -> None:
    in_1969 = JobTracker(store_url, clock=lambda: datetime.datetime(1969, 6, 1, tzinfo=UTC))
    ids = [in_1969.start("-ns", 1, job_id=f"j{i}").job_id for i in range(3)]

    def check(more: str) -> None:
        assert " --cursor=-" in more and more.endswith(" -- -ns")

    command = [SCRIPT, "list", "--store", store_url, "--limit", "1", "--", "-ns"]
    assert _follow_pages(command, env, tmp_path, check) == ids[::-1]


@pytest.mark.parametrize("command", ["status", "list", "watch", "abort", "purge"])
def test_a_mistyped_store_path_is_an_error_and_creates_nothing(
    env: dict[str, str], tmp_path: Path, command: str
) -> None:
    typo = tmp_path / "jbos"
    args = {
        "status": ["status", "ns", "j"],
        "list": ["list", "ns"],
        "watch": ["watch", "ns", "j"],
        "abort": ["abort", "ns", "j", "--error", "x"],
        "purge": ["purge"],
    }[command]
    for store in ([f"--store=file://{typo}"], []):
        extra = {} if store else {"JOBTRACK_STORE": f"file://{typo}"}
        result = run(*args, *store, env={**env, **extra})
        assert result.returncode == 4
        assert f"no file store at '{typo}'" in result.stderr
        assert not typo.exists()


def test_watch_of_a_finished_job_prints_it_at_once(env: dict[str, str], store_url: str) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 2)
    tracker.record("ns", job.job_id, processed=2, successful=2)
    result = run("watch", "ns", job.job_id, "--store", store_url, env=env)
    assert result.returncode == 0
    assert "completed" in result.stdout
    assert result.stderr == ""  # no progress bar with a rate made up from nothing


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["status", "ns", "nope"], 3, "not found"),
        (["status", "ns", "x", "--store", "ftp://x"], 4, "unknown store URL"),
        (
            ["status", "ns", "x", "--store", "redis://127.0.0.1:1/0?timeout=1"],
            4,
            "Redis call failed",
        ),
        (["status", "a/b", "x"], 4, "invalid namespace"),
        (["abort", "ns", "x", "--error", ""], 4, "non-empty"),
        (["list", "ns", "--limit", "0"], 2, "--limit: must be an integer from 1 to 1000"),
        (["list", "ns", "--limit", "x"], 2, "--limit: must be an integer from 1 to 1000"),
        (["watch", "ns", "x", "--interval", "0"], 4, "interval"),
        (["serve", "--port", "1", "--host", "127.0.0.1"], 4, "cannot listen"),
        (["serve", "--port", "70000"], 2, "--port: must be a port number from 0 to 65535"),
        (["demo", "--port", "-1"], 2, "--port: must be a port number from 0 to 65535"),
        (["watch", "ns", "x", "--interval", "nan"], 4, "--interval must be a number of seconds"),
        (["watch", "ns", "x", "--interval", "inf"], 4, "--interval must be a number of seconds"),
        (
            ["status", "ns", "x", "--store", "redis+cluster://127.0.0.1:1?timeout=1"],
            4,
            "Redis Cluster 'redis+cluster://127.0.0.1:1?timeout=1' cannot be reached",
        ),
        (["demo", "--items", "0"], 4, "--items"),
        (
            ["status", "ns", "x", "--store", "redis://127.0.0.1:1/0?timeout=inf"],
            4,
            "bad option timeout='inf'",
        ),
        (
            ["status", "ns", "x", "--store", "redis://127.0.0.1:1/0?timeout=nan"],
            4,
            "bad option timeout='nan'",
        ),
        (["status", "ns", "x", "--store", "redis://h:1/0?color=red"], 4, "unknown option"),
        (["status", "ns", "x", "--store", "jobs8"], 4, "for a directory, say file:jobs8"),
        (["status", "ns", "x", "--store", ""], 4, "--store needs a store URL"),
        (["serve", "--max-store-calls", "0"], 4, "--max-store-calls must be >= 1"),
        (
            ["list", "ns", "--status", "stalled"],
            4,
            "needs a tracker with stall_after (jobtrack: --stall-after SECONDS)",
        ),
        (["list", "ns", "--status", "failure"], 2, "argument --status: invalid choice"),
        (["abort", "ns", "x", "--error", "e", "--retain", "-1"], 2, "--retain: must be a number"),
        (["reap", "ns", "--stall-after", "1", "--retain", "soon"], 2, "or none, got 'soon'"),
        (["abort", "ns", "x", "--error", "e", "--retain", "inf"], 2, "--retain: must be a number"),
        (["status", "ns", "x", "--retain", "1"], 2, "unrecognized arguments: --retain"),
        (["list", "ns", "--retain", "1"], 2, "unrecognized arguments: --retain"),
        (["purge", "--remember-expired", "nan"], 2, "--remember-expired: must be a number"),
        (["purge", "--remember-expired", "none"], 2, "--remember-expired: must be a number"),
        (["serve", "--purge-every", "-1"], 2, "--purge-every: must be a number of seconds >= 0"),
        (["serve", "--purge-every", "inf"], 2, "--purge-every: must be a number of seconds >= 0"),
        (["serve", "--stall-after", "0"], 2, "--stall-after: must be a number of seconds > 0"),
        (["status", "ns", "x", "--store", "file:///nope?bogus=1"], 4, "'file:///nope?bogus=1'"),
    ],
)
def test_errors_are_one_line(
    env: dict[str, str], busy_port: int, args: list[str], status: int, message: str
) -> None:
    if args[:3] == ["serve", "--port", "1"]:  # root may bind port 1: take a port in use instead
        args = ["serve", "--port", str(busy_port), "--host", "127.0.0.1"]
    result = run(*args, env=env)
    assert result.returncode == status
    assert message in result.stderr
    if status == 2:  # argparse: its usage, then one line naming the problem
        assert message in result.stderr.strip().splitlines()[-1]
    else:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_missing_extra_is_named(env: dict[str, str], command: str) -> None:
    code = "import sys; sys.modules['uvicorn'] = None; from jobtrack.cli import run; run()"
    result = subprocess.run(
        [sys.executable, "-c", code, command, "--port", "0", "--store", "memory://"],
        env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 4
    assert result.stderr.strip() == (
        f"jobtrack: error: 'jobtrack {command}' needs uvicorn, which is not installed: "
        "pip install 'jobtrack[server]'"
    )


HOSTILE = "\x1b]0;pwned\x07\x1b[2J\r\njob x in namespace y: completed\x9b31m"


def test_stored_text_cannot_drive_the_terminal(env: dict[str, str], store_url: str) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 2)
    tracker.record("ns", job.job_id, processed=1, failed=1, error=HOSTILE)
    for args in (["status", "ns", job.job_id], ["abort", "ns", job.job_id, "--error", HOSTILE]):
        result = run(*args, "--store", store_url, env=env)
        assert result.returncode == 0, result.stderr
        assert not any(c in result.stdout for c in "\x1b\x07\r\x9b")
        errors = [line for line in result.stdout.splitlines() if "last error" in line]
        assert len(errors) == 1 and "\\x1b]0;pwned" in errors[0]
        assert not any(line.startswith("job x") for line in result.stdout.splitlines())
    as_json = run("status", "ns", job.job_id, "--json", "--store", store_url, env=env)
    assert "\x1b" not in as_json.stdout  # JSON escapes it
    assert json.loads(as_json.stdout)["last_error"] == HOSTILE


def test_list_marks_stalled_jobs_and_reap_aborts_them(env: dict[str, str], store_url: str) -> None:
    hours_ago = JobTracker(
        store_url,
        clock=lambda: datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2),
    )
    hours_ago.start("ns", 5, job_id="old")
    JobTracker(store_url).start("ns", 5, job_id="new")
    listed = run("list", "ns", "--store", store_url, "--stall-after", "600", env=env, check=True)
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert lines["old"].endswith("updated 2h ago  STALLED")
    assert "updated 0s ago" in lines["new"] and "STALLED" not in lines["new"]
    plain = run("list", "ns", "--store", store_url, env=env, check=True)
    assert "STALLED" not in plain.stdout  # no --stall-after: nothing is stalled
    reaped = run("reap", "ns", "--store", store_url, "--stall-after", "600", env=env, check=True)
    assert reaped.stdout.splitlines()[-1] == "1 stalled job(s) reaped in namespace ns"
    assert reaped.stdout.startswith("reaped old: stalled: no update since ")
    tracker = JobTracker(store_url)
    assert tracker.get("ns", "old").is_finished and not tracker.get("ns", "new").is_finished
    for bad in ("0", "-5", "nan", "inf", "soon", "1e-7", "1e14"):
        result = run("reap", "ns", "--store", store_url, "--stall-after", bad, env=env)
        assert result.returncode == 2 and "seconds > 0" in result.stderr
    assert run("reap", "ns", "--store", store_url, env=env).returncode == 2  # required


def test_failures_for_people_and_for_a_retry_script(env: dict[str, str], store_url: str) -> None:
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 2000)
    for i in range(1500):  # more than one page of failed items
        tracker.record("ns", job.job_id, item=f"s3://b/{i}.pdf", failed=1, error=f"bad {i % 3}")
    tracker.record("ns", job.job_id, item="s3://b/7.pdf", successful=1)  # a retry that worked
    tracker.record("ns", job.job_id, item="esc", failed=1, error=HOSTILE + "\x9b2J\u2028\u202e")
    result = run("failures", "ns", job.job_id, "--store", store_url, "--json", env=env)
    assert result.returncode == 1  # there are failed items
    assert result.stdout.isascii()  # JSON escapes everything a terminal could act on
    doc = json.loads(result.stdout)
    assert (doc["job_id"], doc["namespace_name"], doc["failed"]) == (job.job_id, "ns", 1500)
    items = [entry["item"] for entry in doc["items"]]
    assert items == [f"s3://b/{i}.pdf" for i in range(1500) if i != 7] + ["esc"]
    assert doc["items"][0] == tracker.failed_items("ns", job.job_id).items[0].to_dict()
    assert [(g["message"], g["count"]) for g in doc["errors"]][:3] == [
        ("bad 0", 500), ("bad 1", 500), ("bad 2", 500),
    ]  # fmt: skip
    text = run("failures", "ns", job.job_id, "--store", store_url, env=env)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[0] == f"job {job.job_id} in namespace ns: 1500 failed"
    assert "       500  bad 0" in lines
    assert "  s3://b/0.pdf  bad 0" in lines and "  s3://b/7.pdf  bad 1" not in lines
    assert not any(c in text.stdout for c in "\x1b\x07\r\x9b")
    clean = tracker.start("ns", 1)
    result = run("failures", "ns", clean.job_id, "--store", store_url, "--json", env=env)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "job_id": clean.job_id, "namespace_name": "ns", "failed": 0, "errors": [], "items": [],
    }  # fmt: skip
    missing = run("failures", "ns", "nope", "--store", store_url, env=env)
    assert missing.returncode == 3 and "not found" in missing.stderr


@pytest.mark.redis
def test_serve_says_when_redis_would_evict_jobs(
    env: dict[str, str], popen: list[Any], redis_server: Any
) -> None:
    import redis

    from tests.redis_fixtures import redis_url

    raw = redis.Redis(redis_server.host, redis_server.port)
    raw.config_set("maxmemory-policy", "volatile-lru")
    try:
        proc = _spawn(popen, "serve", "--store", redis_url(redis_server), "--port", "0", env=env)
        _started(proc, "jobtrack serve")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        raw.config_set("maxmemory-policy", "noeviction")
        raw.close()
    logged = proc.stderr.read()  # type: ignore[union-attr]
    assert "jobtrack serve: warning: Redis at" in logged
    assert "maxmemory-policy 'volatile-lru'" in logged and "Traceback" not in logged


UTC = datetime.timezone.utc


def tracker_at(url: str, days_ago: float) -> JobTracker:
    """A tracker over *url* whose clock runs *days_ago* days behind the real one."""
    behind = datetime.timedelta(days=days_ago)
    return JobTracker(url, clock=lambda: datetime.datetime.now(UTC) - behind)


def test_list_by_status_and_the_next_page_repeats_it(
    env: dict[str, str], store_url: str, tmp_path: Path
) -> None:
    hours_ago = tracker_at(store_url, 2 / 24)
    for i in range(3):
        hours_ago.start("ns", 5, job_id=f"stale{i}")
    tracker = JobTracker(store_url)
    for i in range(2):
        tracker.start("ns", 1, job_id=f"fresh{i}")
        tracker.start("ns", 0, job_id=f"done{i}")  # total 0: completed at once
    listed = run("list", "ns", "--store", store_url, "--status", "completed", env=env, check=True)
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()) == ["done0", "done1"]
    as_json = run("list", "ns", "--store", store_url, "--status", "running", "--json", env=env)
    running = [job["job_id"] for job in json.loads(as_json.stdout)["jobs"]]
    assert sorted(running) == ["fresh0", "fresh1", "stale0", "stale1", "stale2"]
    empty = run("list", "other", "--store", store_url, "--status", "running", env=env, check=True)
    assert empty.stdout == "no running jobs in namespace other\n"
    # the printed command for the next page keeps --status (and --stall-after, which it needs)
    seen: list[str] = []
    command = [SCRIPT, "list", "ns", "--store", store_url, "--limit", "2", "--status", "stalled",
               "--stall-after", "600"]  # fmt: skip
    for _ in range(4):
        out = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
            check=True,
        ).stdout  # fmt: skip
        lines = out.splitlines()
        seen += [line.split()[0] for line in lines if not line.startswith("more: ")]
        assert all(line.endswith("STALLED") for line in lines if not line.startswith("more: "))
        more = [line for line in lines if line.startswith("more: ")]
        if not more:
            break
        command = shlex.split(more[0][len("more: ") :])
        assert command[command.index("--status") + 1] == "stalled"
        assert command[command.index("--stall-after") + 1] == "600"
    assert sorted(seen) == ["stale0", "stale1", "stale2"] and len(seen) == 3


def test_status_of_an_expired_job(env: dict[str, str], store_url: str) -> None:
    week_ago = tracker_at(store_url, 8)
    job = week_ago.start("ns", 1, job_id="old")
    finished = week_ago.record("ns", "old", processed=1, successful=1).finished_at
    assert finished is not None
    tracker_at(store_url, 40).start("ns", 0, job_id="ancient")
    expired_at = format_timestamp(finished + datetime.timedelta(days=7))
    for command in (["status"], ["status", "--json"], ["watch"], ["failures"]):
        result = run(*command, "ns", job.job_id, "--store", store_url, env=env)
        assert result.returncode == 3, command
        assert result.stdout == ""
        assert result.stderr == (
            f"jobtrack: Upload job 'old' in namespace 'ns' expired at {expired_at}. "
            f"(store: {display_url(store_url)})\n"
        )
    # remember_expired has passed: unknown, as a job that never was
    ancient = run("status", "ns", "ancient", "--store", store_url, env=env)
    assert ancient.returncode == 3
    assert ancient.stderr == (
        f"jobtrack: Upload job 'ancient' not found in namespace 'ns'. "
        f"(store: {display_url(store_url)})\n"
    )
    short = run("status", "ns", "old", "--store", store_url, "--remember-expired", "86400", env=env)
    assert short.returncode == 3 and "not found" in short.stderr
    longer = run("status", "ns", "ancient", "--store", store_url, "--remember-expired",
                 str(40 * 86400), env=env)  # fmt: skip
    assert longer.returncode == 3 and "expired at" in longer.stderr
    listed = run("list", "ns", "--store", store_url, env=env, check=True)
    assert listed.stdout == "no jobs in namespace ns\n"  # expired jobs are never listed


def test_list_says_when_a_page_passed_over_expired_jobs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a store without status indexes (third-party style): the tracker filters
    # expired jobs out, and a page that passed over ~1,000 of them ends short
    plain = PlainStore()
    monkeypatch.setattr(plain, "close", lambda: None)  # shared by the two commands
    monkeypatch.setitem(SCHEMES, "plain-test", lambda url: plain)
    tracker_at("plain-test://", 9).start("ns", 1, job_id="live")  # older than all the others
    week_ago = tracker_at("plain-test://", 8)
    for i in range(1_500):
        week_ago.start("ns", 0, job_id=f"expired{i}")
    assert main(["list", "ns", "--store", "plain-test://", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "no jobs on this page" and lines[1].startswith("more: ")
    more = shlex.split(lines[1])
    cursor = more[more.index("--cursor") + 1]
    assert main(["list", "ns", "--store", "plain-test://", "--limit", "1", "--cursor", cursor]) == 0
    assert capsys.readouterr().out.split()[0] == "live"


def test_retain_is_given_to_the_jobs_a_command_completes(
    env: dict[str, str], store_url: str
) -> None:
    tracker = JobTracker(store_url)
    for job in ("a", "b", "c"):
        tracker.start("ns", 2, job_id=job)
    run("abort", "ns", "a", "--error", "x", "--store", store_url, "--retain", "none", env=env,
        check=True)  # fmt: skip
    run("abort", "ns", "b", "--error", "x", "--store", store_url, "--retain", "3600", env=env,
        check=True)  # fmt: skip
    run("abort", "ns", "c", "--error", "x", "--store", store_url, env=env, check=True)
    a, b, c = (tracker.get("ns", job) for job in ("a", "b", "c"))
    assert a.expires_at is None  # kept forever
    assert b.finished_at is not None and b.expires_at == b.finished_at + datetime.timedelta(hours=1)
    assert c.finished_at is not None and c.expires_at == c.finished_at + datetime.timedelta(days=7)


def test_purge(env: dict[str, str], store_url: str) -> None:
    tracker_at(store_url, 40).start("ns", 0, job_id="ancient")  # expired 33 days ago
    tracker_at(store_url, 8).start("ns", 0, job_id="expired")  # expired a day ago
    JobTracker(store_url).start("ns", 0, job_id="done")
    JobTracker(store_url).start("ns", 1, job_id="running")
    as_then = tracker_at(store_url, 40)  # reads every job as it was 40 days ago
    first = run("purge", "--store", store_url, env=env, check=True)
    assert first.stdout == "purged 1 expired job(s)\n" and first.stderr == ""
    with pytest.raises(JobNotFound):
        as_then.get("ns", "ancient")
    assert as_then.get("ns", "expired").is_finished  # still remembered as expired
    again = run("purge", "--store", store_url, env=env, check=True)
    assert again.stdout == "purged 0 expired job(s)\n"
    short = run("purge", "--store", store_url, "--remember-expired", "0", env=env, check=True)
    assert short.stdout == "purged 1 expired job(s)\n"
    with pytest.raises(JobNotFound):
        as_then.get("ns", "expired")
    now = JobTracker(store_url)
    assert now.get("ns", "done").is_finished and not now.get("ns", "running").is_finished
    memory = run("purge", "--store", "memory://", env=env, check=True)
    assert memory.stdout == "purged 0 expired job(s)\n"


def test_serve_lists_answers_410_and_purges(
    env: dict[str, str], store_url: str, popen: list[Any]
) -> None:
    tracker_at(store_url, 40).start("ns", 0, job_id="ancient")  # to be purged
    tracker_at(store_url, 8).start("ns", 0, job_id="expired")  # 410, not purged yet
    hours_ago = tracker_at(store_url, 2 / 24)
    hours_ago.start("ns", 3, job_id="stalled")
    JobTracker(store_url).start("ns", 3, job_id="running")
    proc = _spawn(popen, "serve", "--store", store_url, "--port", "0", "--purge-every", "0.05",
                  "--stall-after", "600", env=env)  # fmt: skip
    base = re.search(r"(http://\S+)", _started(proc, "jobtrack serve")[-1]).group(1)  # type: ignore[union-attr]
    as_then = tracker_at(store_url, 40)
    deadline = time.monotonic() + TIMEOUT
    while True:  # poll for the sweep's work, with a deadline
        try:
            as_then.get("ns", "ancient")
        except JobNotFound:
            break
        assert time.monotonic() < deadline, "the job was never purged"
        time.sleep(0.02)
    with httpx.Client(base_url=base, timeout=10) as client:
        listed = client.get("/namespaces/ns/upload-jobs")
        assert listed.status_code == 200
        assert [job["job_id"] for job in listed.json()["jobs"]] == ["running", "stalled"]
        stalled = client.get("/namespaces/ns/upload-jobs", params={"status": "stalled"})
        assert stalled.json() == {
            "jobs": [JobTracker(store_url).get("ns", "stalled").to_dict()],
            "next_cursor": None,
        }
        gone = client.get("/namespaces/ns/upload-jobs/expired")
        assert gone.status_code == 410 and "expired at" in gone.json()["message"]
        assert client.get("/namespaces/ns/upload-jobs/ancient").status_code == 404
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT) == 0
    logged = proc.stderr.read()  # type: ignore[union-attr]
    assert "purged 1 expired job(s)" in logged and "Traceback" not in logged
    with pytest.raises(JobExpired):  # the sweep reclaims only what is past remember_expired
        JobTracker(store_url).get("ns", "expired")


def test_serve_without_purging(env: dict[str, str], store_url: str, popen: list[Any]) -> None:
    tracker_at(store_url, 40).start("ns", 0, job_id="ancient")
    proc = _spawn(popen, "serve", "--store", store_url, "--port", "0", "--purge-every", "0",
                  "--log-level", "debug", env=env)  # fmt: skip
    base = re.search(r"(http://\S+)", _started(proc, "jobtrack serve")[-1]).group(1)  # type: ignore[union-attr]
    assert httpx.get(f"{base}/namespaces/ns/upload-jobs/ancient", timeout=10).status_code == 404
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT) == 0
    assert "purged" not in proc.stderr.read()  # type: ignore[union-attr]
    assert tracker_at(store_url, 40).get("ns", "ancient").is_finished  # still on disk


class Ticks:
    """The sweep's ``wait``, run by the test: each wait ends when the test says so."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.go: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.go.get()


@pytest.fixture
def sweep_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for throttle in logging.getLogger("jobtrack.serve").filters:
        throttle.reset()  # type: ignore[union-attr]
    caplog.set_level(logging.INFO, "jobtrack.serve")
    return caplog


class TestSweep:
    """The periodic purge of ``jobtrack serve``, in process, with the test's own clock."""

    def test_purges_at_once_then_every_interval(self, sweep_log: pytest.LogCaptureFixture) -> None:
        now = [datetime.datetime(2026, 1, 1, tzinfo=UTC)]
        tracker = JobTracker(MemoryStore(), clock=lambda: now[0])
        tracker.start("ns", 0, job_id="a")  # expires 7 days later, unknown 30 days after that
        atracker = AsyncJobTracker.from_tracker(tracker)

        async def main() -> list[int]:
            ticks, purged = Ticks(), asyncio.Queue[int]()

            async def purge() -> int:
                removed = await atracker.purge()
                purged.put_nowait(removed)
                return removed

            task = asyncio.create_task(sweep(purge, 600, ticks))
            counts = [await purged.get()]  # the first purge: at once
            now[0] += datetime.timedelta(days=36)
            ticks.go.put_nowait(None)
            counts.append(await purged.get())
            with pytest.raises(JobExpired):  # expired, still remembered
                tracker.get("ns", "a")
            now[0] += datetime.timedelta(days=1)
            ticks.go.put_nowait(None)
            counts.append(await purged.get())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ticks.asked[:2] == [600, 600]  # waited the interval between purges
            return counts

        assert asyncio.run(main()) == [0, 0, 1]
        with pytest.raises(JobNotFound) as gone:
            tracker.get("ns", "a")
        assert not isinstance(gone.value, JobExpired)
        assert [r.getMessage() for r in sweep_log.records] == ["purged 1 expired job(s)"]

    def test_failures_are_logged_and_the_sweep_goes_on(
        self, sweep_log: pytest.LogCaptureFixture
    ) -> None:
        outcomes: list[Any] = [
            StoreUnavailable("Redis call failed: ConnectionError"),
            StoreUnavailable("Redis call failed: again"),  # within the minute: held back
            RuntimeError("a bug"),
            3,
        ]

        async def main() -> None:
            ticks, calls = Ticks(), asyncio.Queue[int]()

            async def purge() -> int:
                calls.put_nowait(0)
                outcome = outcomes.pop(0)
                if isinstance(outcome, Exception):
                    raise outcome
                return int(outcome)

            task = asyncio.create_task(sweep(purge, 1.5, ticks))
            for _ in range(3):
                await calls.get()
                ticks.go.put_nowait(None)
            await calls.get()  # the fourth purge
            while len(ticks.asked) < 4:  # it is done (and logged) once the sweep waits again
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ticks.asked == [1.5] * 4 and not outcomes

        asyncio.run(main())
        records = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in sweep_log.records]
        assert records == [
            ("WARNING", "periodic purge failed: Redis call failed: ConnectionError", False),
            ("ERROR", "periodic purge failed unexpectedly", True),  # a bug keeps its traceback
            ("INFO", "purged 3 expired job(s)", False),
        ]

    def test_cancelled_mid_purge_lets_it_finish(self) -> None:
        async def main() -> list[str]:
            events: list[str] = []
            entered, release = asyncio.Event(), asyncio.Event()

            async def purge() -> int:
                entered.set()
                await release.wait()
                events.append("purge done")
                return 0

            task = asyncio.create_task(sweep(purge, 600, Ticks()))
            await entered.wait()
            task.cancel()
            for _ in range(20):  # let the loop run: the task must still wait for the purge
                await asyncio.sleep(0)
            assert not task.done()
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            events.append("sweep stopped")
            return events

        assert asyncio.run(main()) == ["purge done", "sweep stopped"]

    def test_sweeping_runs_with_the_lifespan(self) -> None:
        closed: list[str] = []

        class Spy(MemoryStore):
            def close(self) -> None:
                closed.append("store closed")

        tracker = JobTracker(Spy())
        tracker.start("ns", 1, job_id="j")
        inner = status_app(tracker)

        async def main() -> tuple[list[str], list[str]]:
            purges: asyncio.Queue[None] = asyncio.Queue()
            sent: list[str] = []

            async def purge() -> int:
                purges.put_nowait(None)
                return 0

            app = Sweeping(inner, purge, 600, Ticks())
            messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

            async def receive() -> Any:
                if messages[0]["type"] == "lifespan.shutdown":
                    await purges.get()  # shut down once the sweep has purged
                    assert app.task is not None and not app.task.done()
                return messages.pop(0)

            async def send(message: Any) -> None:
                sent.append(message["type"])
                if message["type"] == "lifespan.shutdown.complete":
                    assert app.task is None  # stopped before the store closed
                    closed.append("shutdown complete")

            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
            return sent, closed

        sent, events = asyncio.run(main())
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert events == ["store closed", "shutdown complete"]
        http = call(Sweeping(inner, None, 600), "GET", "/namespaces/ns/upload-jobs/j")  # type: ignore[arg-type]
        assert http.status == 200 and json.loads(http.body)["job_id"] == "j"


def test_status_and_watch_say_when_a_job_is_stalled(env: dict[str, str], store_url: str) -> None:
    hour_ago = tracker_at(store_url, 1 / 24)
    job = hour_ago.start("ns", 2)
    stalled = run("status", "ns", job.job_id, "--store", store_url, "--stall-after", "60", env=env)
    assert stalled.returncode == 0 and "running (STALLED" in stalled.stdout
    fresh = run("status", "ns", job.job_id, "--store", store_url, env=env)
    assert "STALLED" not in fresh.stdout  # without --stall-after nothing is stalled
    watch = subprocess.Popen(
        [SCRIPT, "watch", "ns", job.job_id, "--store", store_url, "--stall-after", "60"],
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stderr is not None
    seen = ""
    while "STALLED" not in seen:  # the bar says so (tqdm redraws with \r)
        chunk = watch.stderr.read(1)
        assert chunk, "watch ended before it said STALLED"
        seen += chunk
    JobTracker(store_url).record("ns", job.job_id, successful=2)  # then the job completes
    out, _ = watch.communicate(timeout=TIMEOUT)
    assert watch.returncode == 0 and "completed" in out


def test_purge_help_and_an_aborted_job_say_what_they_mean(
    env: dict[str, str], store_url: str
) -> None:
    purge = run("purge", "--help", env=env, check=True).stdout
    assert "forgotten" in purge and "--remember-expired" in purge and "--retain" not in purge
    tracker = JobTracker(store_url)
    job = tracker.start("ns", 5)
    tracker.record("ns", job.job_id, successful=2)
    tracker.abort("ns", job.job_id, "worker gave up")
    shown = run("status", "ns", job.job_id, "--store", store_url, env=env, check=True).stdout
    assert f"{job.job_id} in namespace ns: completed with 3 failed item(s)" in shown
    assert "last error worker gave up" in shown


def test_namespaces_text_and_json(env: dict[str, str], store_url: str, tmp_path: Path) -> None:
    tracker = JobTracker(store_url)
    for ns in ("b", "a", "c"):
        tracker.start(ns, 1, job_id="j")
    tracker.record("a", "j", successful=1)
    env = {**env, "JOBTRACK_STORE": store_url}
    doc = json.loads(run("namespaces", "--json", "--limit", "2", env=env, check=True).stdout)
    assert doc == {
        "namespaces": [
            {"name": "a", "running": 0, "stalled": None, "completed": 1},
            {"name": "b", "running": 1, "stalled": None, "completed": 0},
        ],
        "next_cursor": "b",
    }
    out = run("namespaces", "--limit", "2", "--stall-after", "60", env=env, check=True).stdout
    assert out.splitlines()[0] == "a  running 0 (0 stalled)  completed 1"
    more = next(line for line in out.splitlines() if line.startswith("more: "))
    again = subprocess.run(
        shlex.split(more[len("more: ") :]), env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=TIMEOUT, check=True,
    ).stdout  # fmt: skip
    assert again == "c  running 1 (0 stalled)  completed 0\n"
    bad = run("namespaces", "--cursor", "a/b", env=env)
    assert bad.returncode != 0 and "malformed cursor" in bad.stderr
