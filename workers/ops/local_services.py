"""Set-up of this machine's RabbitMQ and PostgreSQL: start what is installed but stopped.

`warren doctor --fix` (what `make run`, `make test` and CI run) proposes these steps for the
services that do not answer, and only for URLs that name this machine.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "MANAGEMENT_HINT",
    "POSTGRES_HINT",
    "RABBITMQ_HINT",
    "RABBITMQ_PLUGINS",
    "Cluster",
    "Machine",
    "Needs",
    "Step",
    "as_root",
    "is_local",
    "parse_clusters",
    "propose",
    "run_step",
]

RABBITMQ_PLUGINS = (
    "rabbitmq_management",
    "rabbitmq_prometheus",
    "rabbitmq_shovel",
    "rabbitmq_shovel_management",
)
# What a person does by hand when a service does not answer.
RABBITMQ_HINT = (
    "start RabbitMQ: `rabbitmq-server -detached` or `sudo systemctl start rabbitmq-server`"
)
MANAGEMENT_HINT = (
    f"enable the plugins: `rabbitmq-plugins enable {' '.join(RABBITMQ_PLUGINS)}` "
    "(RabbitMQ itself must be running)"
)
POSTGRES_HINT = (
    "start PostgreSQL: `pg_ctlcluster <version> main start` (Debian; `ls /etc/postgresql` "
    "shows the version) or `sudo systemctl start postgresql`; "
    "or point WARREN_TEST_PG_DSN at a server you have"
)

DEFAULT_PG_PORT = 5432
# A user's PATH often lacks the sbin folders where Debian installs the RabbitMQ commands.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)
_COMMANDS = (
    "rabbitmq-server",
    "rabbitmq-plugins",
    "pg_ctlcluster",
    "pg_lsclusters",
    "service",
    "sudo",
)
STEP_TIMEOUT_S = 120.0


def is_local(url: str) -> bool:
    """Whether the URL names this machine (loopback or a Unix socket), where we may start it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        # libpq style: `postgresql:///db?host=/run/postgresql`; no host at all is the local socket.
        host = parse_qs(parts.query).get("host", [""])[0]
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Cluster:
    """One PostgreSQL cluster of this machine, as `pg_lsclusters` lists it."""

    version: str
    name: str
    port: int
    online: bool


def parse_clusters(listing: str) -> tuple[Cluster, ...]:
    """The clusters in the output of `pg_lsclusters --no-header`."""
    clusters = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2].isdigit():
            online = fields[3].startswith("online")
            clusters.append(Cluster(fields[0], fields[1], int(fields[2]), online))
    return tuple(clusters)


@dataclass(frozen=True, slots=True)
class Machine:
    """What this machine offers to start services: its commands and whether we are root."""

    root: bool
    interactive: bool
    commands: dict[str, str] = field(default_factory=dict)
    clusters: tuple[Cluster, ...] = ()
    postgres_service: bool = False

    @classmethod
    def discover(cls) -> Machine:
        """This machine, as found now."""
        commands = {
            name: path for name in _COMMANDS if (path := shutil.which(name, path=_SEARCH_PATH))
        }
        clusters: tuple[Cluster, ...] = ()
        if "pg_lsclusters" in commands:
            listing = subprocess.run(
                [commands["pg_lsclusters"], "--no-header"],
                capture_output=True,
                text=True,
                check=False,
                timeout=STEP_TIMEOUT_S,
            )
            clusters = parse_clusters(listing.stdout)
        service = os.path.exists("/etc/init.d/postgresql")
        return cls(os.geteuid() == 0, sys.stdin.isatty(), commands, clusters, service)


def as_root(argv: Sequence[str], machine: Machine) -> tuple[str, ...]:
    """The command as root: as is for root, through sudo when there is one, else as is."""
    if machine.root or "sudo" not in machine.commands:
        return tuple(argv)
    # Without a terminal nobody can type a password: fail at once rather than hang.
    sudo = (machine.commands["sudo"],) if machine.interactive else (machine.commands["sudo"], "-n")
    return (*sudo, *argv)


@dataclass(frozen=True, slots=True)
class Step:
    """One set-up step: a command to run, or the problem that prevents it."""

    why: str
    argv: tuple[str, ...] = ()
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Needs:
    """Which services do not answer, and where they are."""

    broker_url: str
    management_url: str
    pg_dsn: str
    broker_down: bool = False
    plugins_off: bool = False
    postgres_down: bool = False

    @classmethod
    def of(cls, hints: Collection[str | None], broker: str, management: str, pg: str) -> Needs:
        """What the hints of the failed checks say: which services do not answer at all."""
        # A wrong password has another hint: it is not ours to fix.
        return cls(
            broker,
            management,
            pg,
            broker_down=RABBITMQ_HINT in hints,
            plugins_off=MANAGEMENT_HINT in hints,
            postgres_down=POSTGRES_HINT in hints,
        )


def _rabbitmq_steps(needs: Needs, machine: Machine) -> list[Step]:
    if not is_local(needs.broker_url):
        return []
    if needs.broker_down:
        if "rabbitmq-server" not in machine.commands:
            problem = (
                "RabbitMQ is not installed here: install it (Debian: `sudo apt-get install "
                "rabbitmq-server`) or point WARREN_BROKER_URL at a broker you have"
            )
            return [Step("start RabbitMQ", problem=problem)]
        argv = as_root([machine.commands["rabbitmq-server"], "-detached"], machine)
        return [Step("start RabbitMQ", argv)]
    # Plugins are enabled on a running node: this waits until the broker answers.
    if needs.plugins_off and is_local(needs.management_url):
        if "rabbitmq-plugins" not in machine.commands:
            problem = "rabbitmq-plugins is not on this machine: install RabbitMQ's own tools"
            return [Step("enable the RabbitMQ plugins", problem=problem)]
        command = [machine.commands["rabbitmq-plugins"], "enable", *RABBITMQ_PLUGINS]
        return [Step("enable the RabbitMQ plugins", as_root(command, machine))]
    return []


def _pg_port(dsn: str) -> int:
    return urlsplit(dsn).port or DEFAULT_PG_PORT


def _postgres_steps(needs: Needs, machine: Machine) -> list[Step]:
    if not (needs.postgres_down and is_local(needs.pg_dsn)):
        return []
    port = _pg_port(needs.pg_dsn)
    if "pg_ctlcluster" in machine.commands and machine.clusters:
        return _cluster_steps(port, machine)
    if "service" in machine.commands and machine.postgres_service:
        argv = as_root([machine.commands["service"], "postgresql", "start"], machine)
        return [Step("start PostgreSQL", argv)]
    problem = (
        "PostgreSQL is not installed here: install it (Debian: `sudo apt-get install postgresql`) "
        "or point WARREN_TEST_PG_DSN at a server you have"
    )
    return [Step("start PostgreSQL", problem=problem)]


def _cluster_steps(port: int, machine: Machine) -> list[Step]:
    on_port = [c for c in machine.clusters if c.port == port]
    if not on_port:
        problem = f"no PostgreSQL cluster here listens on port {port} (see `pg_lsclusters`)"
        return [Step("start PostgreSQL", problem=problem)]
    ctl = machine.commands["pg_ctlcluster"]
    return [
        Step(
            f"start PostgreSQL {c.version}/{c.name}",
            as_root([ctl, c.version, c.name, "start"], machine),
        )
        for c in on_port
        if not c.online
    ]


def propose(needs: Needs, machine: Machine) -> list[Step]:
    """The set-up steps for the local services that do not answer; none for a remote one."""
    return _rabbitmq_steps(needs, machine) + _postgres_steps(needs, machine)


def run_step(step: Step) -> str | None:
    """Run one step, its output shown; the problem when it could not, else None."""
    if step.problem is not None:
        return f"cannot {step.why}: {step.problem}"
    try:
        # Its output goes to stderr, so that `warren doctor --json` still prints only JSON.
        done = subprocess.run(step.argv, stdout=sys.stderr, check=False, timeout=STEP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot {step.why}: {exc}; run it yourself: {' '.join(step.argv)}"
    if done.returncode != 0:
        return f"cannot {step.why} (exit {done.returncode}); run it yourself: {' '.join(step.argv)}"
    return None
