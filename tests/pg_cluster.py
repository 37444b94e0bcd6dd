"""A throwaway PostgreSQL cluster for tests: `initdb` in a temporary folder, a free port on 127.0.0.1, its unix
socket in that folder, stopped and removed at the end.

PostgreSQL refuses to run as root, and CI (and this machine) run the tests as root: then the cluster belongs to a
system user `codextest`, created when missing, and its commands run through `runuser`. Debian installs the
binaries under /usr/lib/postgresql/<version>/bin (not on PATH); both places are looked at.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

TEST_USER = "codextest"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
                       check=True)
    return ["runuser", "-u", TEST_USER, "--", *command]


class PgCluster:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            # fail, not skip: the scale-out tests are part of the suite (README; .ci/run installs postgresql)
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
        self.root = Path(tempfile.mkdtemp(prefix="codex-trio-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            _as_owner(["true"])  # creates the user
            shutil.chown(self.root, TEST_USER)
        os.chmod(self.root, 0o700)
        subprocess.run(_as_owner([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                  "--no-sync", "--no-instructions"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        # fsync off: `stop` kills the server, not the machine, so what it wrote survives in the OS cache. But the
        # WAL of an acknowledged commit must be written before the acknowledgement (synchronous_commit on, the
        # default): with it off, an immediate stop loses the last ~600 ms of acknowledged commits, and the outage
        # tests would count those as records the gateway lost.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=on -c full_page_writes=off -c max_connections=200")
        subprocess.run(_as_owner([self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                                  "-w", "-t", "60", "start"]), check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        """An outage as a crash: the server is killed (`-m immediate`), nothing is shut down cleanly."""
        subprocess.run(_as_owner([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def new_database(self) -> str:
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
