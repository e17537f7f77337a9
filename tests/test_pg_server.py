"""The throwaway PostgreSQL server that the tests start themselves."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from tests.pg_server import DEVELOPER_PORT, PgServer, PgServerError, find_bin_dir, start_postgres

pytestmark = pytest.mark.postgres


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


def test_answers_on_its_own_port_only(postgres_server: PgServer) -> None:
    assert postgres_server.port != DEVELOPER_PORT
    assert postgres_server.url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                [
                    [
                        "data_directory",
                        "listen_addresses",
                        "fsync",
                        "full_page_writes",
                        "synchronous_commit",
                        "max_connections",
                        "server_encoding",
                    ]
                ],
            ).fetchall()
        )
    assert settings == {
        "data_directory": str(postgres_server.data_dir),
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "on",
        "max_connections": "200",
        "server_encoding": "UTF8",
    }


def test_unix_socket_is_in_its_own_directory(postgres_server: PgServer) -> None:
    with psycopg.connect(
        host=str(postgres_server.socket_dir), port=postgres_server.port, user="postgres"
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


seen: list[str] = []


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_has_a_new_empty_schema(
    turn: int, postgres_schema_url: str, postgres_server: PgServer
) -> None:
    name = schema_of(postgres_schema_url)
    assert re.fullmatch(r"t_[0-9a-f]{32}", name)
    assert postgres_schema_url == f"{postgres_server.url}?schema={name}"
    with postgres_server.connect() as conn:
        schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
        tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s",
            [name],
        ).fetchone()
        conn.execute(f'CREATE TABLE "{name}".left_behind (x int)')  # the drop is CASCADE
    assert name in schemas
    assert tables == (0,)
    assert not any(s.startswith("t_") for s in schemas - {name}), "an earlier schema is left"
    assert name not in seen
    seen.append(name)
    if turn == 2:
        assert len(seen) == 2


def test_stop_and_start_keep_port_and_data(
    postgres_server: PgServer, postgres_schema_url: str
) -> None:
    name = schema_of(postgres_schema_url)
    port = postgres_server.port
    with postgres_server.connect() as conn:
        conn.execute(f'CREATE TABLE "{name}".kept (x int)')
        conn.execute(f'INSERT INTO "{name}".kept VALUES (42)')
    held = postgres_server.connect()
    postgres_server.stop()
    assert not postgres_server.running
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_server.url, connect_timeout=2)
    postgres_server.stop()  # stopping a stopped server is fine
    postgres_server.start()
    postgres_server.start()  # and starting a running one
    assert postgres_server.running
    assert postgres_server.port == port
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute(f'SELECT x FROM "{name}".kept').fetchall() == [(42,)]


def test_stopped_server_is_started_again_for_the_next_test(postgres_server: PgServer) -> None:
    assert postgres_server.running
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_start_postgres_on_its_own(postgres_server: PgServer) -> None:
    directory = Path(tempfile.mkdtemp(prefix="jobtrack-pg-"))
    with start_postgres(directory) as other:
        assert other.port not in {DEVELOPER_PORT, postgres_server.port}
        with other.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not other.running
    assert not directory.exists()


def test_bad_bin_dir_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_server: PgServer
) -> None:
    assert find_bin_dir() == postgres_server.bin_dir
    monkeypatch.setenv("JOBTRACK_PG_BIN", str(tmp_path))
    with pytest.raises(PgServerError, match="no initdb there"):
        find_bin_dir()
