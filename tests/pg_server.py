"""Throwaway PostgreSQL servers of our own: never the one already on 5432.

``start_postgres(directory)`` makes a brand-new cluster in *directory* with
``initdb`` and runs ``postgres`` on a free 127.0.0.1 port, its unix socket
inside *directory* too. The binaries are Debian's (the newest
``/usr/lib/postgresql/<version>/bin``), or those of ``$JOBTRACK_PG_BIN``, or
the ``initdb`` on ``PATH``. PostgreSQL refuses to run as root, so as root the
cluster belongs to, and the server runs as, the ``postgres`` system user.

The tests use it through ``tests/pg_fixtures.py``; the benchmarks import it
from here::

    with start_postgres(Path(tempfile.mkdtemp())) as server:
        psycopg.connect(server.url)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psycopg

BIN_ENV = "JOBTRACK_PG_BIN"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
DEVELOPER_PORT = 5432
START_TIMEOUT = 30.0
SETTINGS_FILE = "jobtrack.conf"

StopMode = Literal["smart", "fast", "immediate"]


class PgServerError(RuntimeError):
    """The throwaway server could not be made, started or stopped (the log is in the message)."""


def find_bin_dir() -> Path:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``."""
    override = os.environ.get(BIN_ENV)
    if override:
        path = Path(override)
        if not (path / "initdb").is_file():
            raise PgServerError(f"${BIN_ENV}={override}: no initdb there")
        return path
    versions = []
    for initdb in DEBIAN_ROOT.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        key = tuple(int(part) for part in re.findall(r"\d+", version))
        versions.append((key, initdb.parent))
    if versions:
        return max(versions)[1]
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PgServerError(
        f"no PostgreSQL binaries: no {DEBIAN_ROOT}/<version>/bin/initdb, no initdb on PATH"
        f" and no ${BIN_ENV} (Debian: apt-get install postgresql)"
    )


def free_port() -> int:
    """A loopback port nobody listens on now (never PostgreSQL's standard one)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port != DEVELOPER_PORT:
            return port
    raise PgServerError("no free loopback port")


def _clean_env() -> dict[str, str]:
    """Our environment without libpq's PG* settings, in a locale every machine has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@dataclass
class PgServer:
    """One throwaway cluster: its directory, its port, its server process.

    ``stop()`` and ``start()`` may be called any number of times: the data
    directory and the port stay, so a URL handed out earlier works again
    after ``start()``. ``destroy()`` stops it for good and removes the
    directory. Use it as a context manager to destroy it on exit.
    """

    directory: Path
    bin_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    database: str = "postgres"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self, last: int = 60) -> str:
        """The last *last* lines of the server's log."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-last:])

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """An autocommit connection for setting up and looking around."""
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5, **kwargs)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server (if it is not running) and wait until it takes connections."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=_clean_env(),
                start_new_session=True,  # as pg_ctl does: a Ctrl-C is for pytest, not for it
                **_as_owner(),
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            process = self._process
            assert process is not None
            if process.poll() is not None:
                self._process = None
                raise PgServerError(
                    f"postgres exited with {process.returncode} while starting:\n{self.log()}"
                )
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
            except psycopg.Error as error:
                last = error
            else:
                if row == (str(self.data_dir),):
                    return
                self.stop()  # another server took the port before ours could
                raise PgServerError(f"port {self.port} already in use by another server")
            if time.monotonic() > deadline:
                self.stop()
                raise PgServerError(
                    f"postgres took no connection within {timeout:.0f} s ({last}):\n{self.log()}"
                )
            time.sleep(pause)  # polling an external server, not a fixed wait
            pause = min(pause * 2, 0.1)

    def stop(self, mode: StopMode = "immediate", timeout: float = 60.0) -> None:
        """Stop the server; ``immediate`` is a crash as far as clients can tell."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            result = subprocess.run(
                # -W: pg_ctl signals and returns; waiting on our own child is quicker than
                # pg_ctl's 100 ms polling (the postmaster exits after all its backends)
                [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-W"],
                capture_output=True,
                env=_clean_env(),
                cwd=self.directory,
                timeout=timeout,
                check=False,
                **_as_owner(),
            )
            if result.returncode != 0 and process.poll() is None:
                _kill(process)  # pg_ctl could not do it: do not leave it behind
                output = result.stderr.decode(errors="replace")
                raise PgServerError(f"pg_ctl stop failed, killed postgres: {output}\n{self.log()}")
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            message = f"postgres did not stop ({mode}) within {timeout:.0f} s: killed it"
            raise PgServerError(message) from None

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.destroy()


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=30)


def _owner() -> pwd.struct_passwd | None:
    """The user that PostgreSQL runs as: ourselves, but ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PgServerError(
            "running as root, and PostgreSQL refuses to run as root: no 'postgres' user to run it"
        ) from None


def _as_owner() -> dict[str, Any]:
    """``subprocess`` arguments that run the command as the cluster's owner."""
    owner = _owner()
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _give_to_owner(path: Path) -> None:
    owner = _owner()
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _run(command: list[str], directory: Path) -> None:
    result = subprocess.run(
        command,
        capture_output=True,
        env=_clean_env(),
        cwd=directory,
        timeout=120,
        check=False,
        **_as_owner(),
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        hint = ""
        if _owner() is not None:
            hint = f"\n(as root this runs as 'postgres', which must be able to reach {directory})"
        raise PgServerError(f"{' '.join(command)} failed:\n{output}{hint}")


def _write_settings(server: PgServer) -> None:
    settings = {
        "port": str(server.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{server.socket_dir}'",
        "max_connections": "200",
        "fsync": "off",
        "full_page_writes": "off",
    }
    path = server.data_dir / SETTINGS_FILE
    path.write_text("".join(f"{name} = {value}\n" for name, value in settings.items()))
    _give_to_owner(path)


def start_postgres(directory: Path, timeout: float = START_TIMEOUT) -> PgServer:
    """A new cluster in *directory* (empty; the server's from now on), running.

    Call ``destroy()`` on the result (or use it in a ``with``) to stop the
    server and remove *directory*; if the server cannot start, *directory*
    is removed and ``PgServerError`` (with the server's log) is raised.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise PgServerError(f"{directory} is not empty")
    server = None
    try:
        bin_dir = find_bin_dir()
        _give_to_owner(directory)
        server = PgServer(directory=directory, bin_dir=bin_dir, port=free_port())
        server.socket_dir.mkdir(mode=0o700)
        _give_to_owner(server.socket_dir)
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata", str(server.data_dir),
                "--username", server.user,
                "--auth", "trust",
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-sync",
                "--no-instructions",
            ],
            directory,
        )  # fmt: skip
        with (server.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude '{SETTINGS_FILE}'\n")
        for attempt in range(3):
            _write_settings(server)
            try:
                server.start(timeout)
                return server
            except PgServerError as error:
                taken = "could not bind" in str(error) or "already in use" in str(error)
                if not taken or attempt == 2:
                    raise
                server.port = free_port()  # someone took the port in between: another one
        raise AssertionError("unreachable")
    except BaseException:
        with contextlib.suppress(Exception):
            if server is not None:
                server.destroy()
        shutil.rmtree(directory, ignore_errors=True)
        raise
