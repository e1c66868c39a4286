"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's binaries, an unprivileged user.

``PostgresCluster.start(folder)`` runs ``initdb`` and ``pg_ctl start`` from
``/usr/lib/postgresql/<version>/bin`` (the newest installed; ``MLFLOW_PLATEAU_PG_BIN`` overrides)
with its data directory and unix socket under ``folder``, listening on 127.0.0.1 at a free port,
``trust`` authentication for the superuser ``postgres``. PostgreSQL refuses to run as root, and CI
runs as root: there the server runs as the system user ``nobody`` (``runuser``), which owns the data
directory. ``stop()`` shuts it down (``pg_ctl stop -m immediate``) and removes nothing else; the
caller owns ``folder``.

``database(name, template=...)`` creates a database (optionally a copy of a template, which is how
the tests give each test a fresh MLflow schema in milliseconds) and returns its SQLAlchemy URI
``postgresql://postgres@127.0.0.1:<port>/<name>``, the form MLflow's tracking store takes.

``fsync`` is a choice of the caller: the tests turn it off (their data is thrown away); the
benchmarks keep PostgreSQL's defaults, so commits cost what they cost on a real server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"


def postgres_bin() -> Path | None:
    """The folder holding ``initdb``/``pg_ctl``/``psql``, or None when PostgreSQL is not installed."""
    override = os.environ.get("MLFLOW_PLATEAU_PG_BIN")
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name
                   .isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running cluster: ``port`` on 127.0.0.1, data and socket under ``folder``."""

    bin: Path
    folder: Path
    port: int
    as_user: str | None  # the system user the server runs as, when we are root

    @classmethod
    def start(cls, folder: Path, *, fsync: bool = False) -> PostgresCluster:
        pg_bin = postgres_bin()
        if pg_bin is None:
            raise FileNotFoundError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        if as_user is not None:
            import pwd

            entry = pwd.getpwnam(as_user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            # Every folder above must be traversable by that user (pytest's are 0700 root).
            os.chmod(folder, 0o700)
        cluster = cls(pg_bin, folder, _free_port(), as_user)
        cluster._run(["initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C", "--no-sync"])
        options = (f"-p {cluster.port} -k {cluster.folder} -c listen_addresses=127.0.0.1 "
                   f"-c max_connections=200 -c fsync={'on' if fsync else 'off'}")
        if not fsync:
            options += " -c synchronous_commit=off -c full_page_writes=off"
        cluster._run(["pg_ctl", "-D", str(cluster.data), "-o", options,
                      "-l", str(cluster.folder / "server.log"), "-w", "-t", "60", "start"])
        return cluster

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _run(self, argv: list[str]) -> str:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder,
                              check=False)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}\n{tail}")
        return done.stdout

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql`` (autocommit: CREATE DATABASE needs it)."""
        return self._run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", statement])

    def database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` when given) and return its URI."""
        clause = f" TEMPLATE {template}" if template else ""
        for attempt in range(20):
            try:
                self.sql(f"CREATE DATABASE {name}{clause}")
                break
            except RuntimeError as exc:
                # A template being copied by another session, or still connected: retry briefly.
                if "being accessed by other users" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.25)
        return self.uri(name)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])


def migrated_template(cluster: PostgresCluster, name: str = "mlflow_template") -> str:
    """A database holding MLflow's migrated schema, created in a child process so that no
    connection stays open on it (a template must be idle to be copied); returns its name."""
    import sys

    uri = cluster.database(name)
    code = ("import sys, tempfile\n"
            "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
            "SqlAlchemyStore(sys.argv[1], tempfile.mkdtemp())\n")
    done = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"MLflow schema migration on PostgreSQL failed:\n{done.stderr[-3000:]}")
    return name
