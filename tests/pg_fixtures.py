"""Throwaway PostgreSQL for the tests: never the server already on 5432.

* ``postgres_server``: one brand-new cluster (``tests/pg_server.py``) on a
  free loopback port, started once per session and removed at its end. A test
  may ``stop()`` and ``start()`` it (same port, same data).
* ``postgres_schema_url``: the server's URL with ``?schema=t_<hex>``, a new
  empty schema for each test, dropped after it.

Tests that use them are marked ``postgres`` whether they say so or not. If no
server can start, they fail under CI (``$CI`` set) and skip elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.pg_server import PgServer, PgServerError, start_postgres

FIXTURES = {"postgres_server", "postgres_schema_url", "postgres_store_factory"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    # not tmp_path_factory: as root its directories are 0700 and the server
    # runs as the postgres user, which could not reach them
    directory = Path(tempfile.mkdtemp(prefix="jobtrack-pg-"))
    try:
        server = start_postgres(directory)
    except (PgServerError, OSError, subprocess.SubprocessError) as error:
        message = f"no throwaway PostgreSQL server: {error}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_schema_url(postgres_server: PgServer) -> Iterator[str]:
    """The server's URL for a new empty schema of this test's own."""
    postgres_server.start()  # an earlier test may have stopped it
    name = f"t_{uuid.uuid4().hex}"
    with postgres_server.connect() as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield f"{postgres_server.url}?schema={name}"
    postgres_server.start()  # this test may have stopped it
    with postgres_server.connect() as admin:
        # a connection left in a transaction would hold the drop forever: say so instead
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def postgres_store_factory(postgres_schema_url: str) -> Iterator[Callable[[], Any]]:
    """Makes PostgresStores on this test's own schema (each with its own pool), closed after."""
    from jobtrack.stores.sql.postgres import PostgresStore

    made: list[PostgresStore] = []

    def make() -> PostgresStore:
        made.append(PostgresStore(postgres_schema_url))
        return made[-1]

    yield make
    for store in made:
        store.close()
