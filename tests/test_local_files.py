"""Issue 12 finding 10: var/ databases and logs were world-readable. Everything Tandem
writes there is owner-only now: directories 0700, files 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from tandem.db import make_engine
from tandem.local_files import load_or_create_secret, private_dir, private_file
from tandem.run import Service, write_credentials, write_endpoints


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual default, which made them world-readable
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'tandem.db'}")
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('a transcript')"))
        assert mode(tmp_path / "new") == 0o700
        for name in ("tandem.db", "tandem.db-wal", "tandem.db-shm"):
            assert mode(tmp_path / "new" / name) == 0o600, name
        engine.dispose()
        # A database left world-readable by an older version is tightened at the next start.
        (tmp_path / "new" / "tandem.db").chmod(0o644)
        make_engine(f"sqlite:///{tmp_path / 'new' / 'tandem.db'}").dispose()
        assert mode(tmp_path / "new" / "tandem.db") == 0o600
    finally:
        os.umask(old_umask)


def test_logs_endpoints_and_credentials_are_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        state = tmp_path / "var"
        state.mkdir(mode=0o755)
        private_dir(state)
        assert mode(state) == 0o700
        log = state / "logs" / "actions.log"
        service = Service("probe", ["true"], "http://127.0.0.1:9", bool, {}, log)
        service.start()
        assert service.process is not None and service.process.wait(timeout=10) == 0
        assert mode(log) == 0o600 and mode(log.parent) == 0o700
        endpoints = write_endpoints(
            state / "endpoints.yml", "http://127.0.0.1:5055", "tok", state / "t.db", None
        )
        assert mode(endpoints) == 0o600
        assert "Bearer tok" in endpoints.read_text()
        credentials = write_credentials(state / "credentials.yml", rest_channel=False)
        assert mode(credentials) == 0o600
        assert "rest" not in credentials.read_text()
        assert "rest:" in write_credentials(state / "c2.yml", rest_channel=True).read_text()
    finally:
        os.umask(old_umask)


def test_a_folder_chosen_for_the_database_is_not_changed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_file(shared / "tandem.db", tighten_dir=False)
    assert mode(shared) == 0o755 and mode(shared / "tandem.db") == 0o600


def test_secret_file_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "token"
    first = load_or_create_secret(path)
    assert load_or_create_secret(path) == first
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
