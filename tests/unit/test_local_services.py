"""`warren doctor --fix` starts only local services, with the command each one needs."""

from __future__ import annotations

import pytest

from workers.ops.local_services import (
    MANAGEMENT_HINT,
    POSTGRES_HINT,
    RABBITMQ_HINT,
    RABBITMQ_PLUGINS,
    Cluster,
    Machine,
    Needs,
    as_root,
    is_local,
    parse_clusters,
    propose,
)

LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_MANAGEMENT = "http://127.0.0.1:15672"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
COMMANDS = {
    "rabbitmq-server": "/usr/sbin/rabbitmq-server",
    "rabbitmq-plugins": "/usr/sbin/rabbitmq-plugins",
    "pg_ctlcluster": "/usr/bin/pg_ctlcluster",
    "sudo": "/usr/bin/sudo",
}
ROOT = Machine(root=True, interactive=False, commands=COMMANDS)


def needs(**down: bool) -> Needs:
    return Needs(LOCAL_AMQP, LOCAL_MANAGEMENT, LOCAL_PG, **down)


@pytest.mark.parametrize(
    "url",
    [
        LOCAL_AMQP,
        "amqp://guest:guest@localhost/",
        "amqps://u:p@[::1]:5671/warren",
        "amqp://127.0.1.1/",
        "http://localhost:15672",
        LOCAL_PG,
        "postgresql:///postgres",
        "postgresql://postgres@/postgres?host=/var/run/postgresql",
    ],
)
def test_loopback_addresses_and_unix_sockets_are_local(url: str) -> None:
    assert is_local(url)


@pytest.mark.parametrize(
    "url",
    [
        "amqp://warren:secret@rabbitmq:5672/warren",
        "amqp://10.0.0.5/",
        "http://broker.example.com:15672",
        "postgresql://warren@postgres:5432/warren_orders",
        "postgresql://u@/db?host=db.example.com",
    ],
)
def test_other_hosts_are_remote(url: str) -> None:
    assert not is_local(url)


def test_root_runs_the_command_as_is() -> None:
    assert as_root(["rabbitmq-server", "-detached"], ROOT) == ("rabbitmq-server", "-detached")


def test_another_user_goes_through_sudo_which_never_prompts_without_a_terminal() -> None:
    batch = Machine(root=False, interactive=False, commands=COMMANDS)
    person = Machine(root=False, interactive=True, commands=COMMANDS)

    assert as_root(["service", "x", "start"], batch) == (
        "/usr/bin/sudo",
        "-n",
        "service",
        "x",
        "start",
    )
    assert as_root(["service", "x", "start"], person) == ("/usr/bin/sudo", "service", "x", "start")


def test_a_stopped_local_broker_is_started_detached() -> None:
    steps = propose(needs(broker_down=True, plugins_off=True), ROOT)

    assert [step.argv for step in steps] == [("/usr/sbin/rabbitmq-server", "-detached")]


def test_the_plugins_are_enabled_all_together_once_the_broker_answers() -> None:
    (step,) = propose(needs(plugins_off=True), ROOT)

    assert step.argv == ("/usr/sbin/rabbitmq-plugins", "enable", *RABBITMQ_PLUGINS)
    assert "rabbitmq_management" in step.argv


def test_remote_services_are_never_started() -> None:
    remote = Needs(
        "amqp://warren:secret@rabbitmq:5672/warren",
        "http://rabbitmq:15672",
        "postgresql://postgres@db.example.com/postgres",
        broker_down=True,
        plugins_off=True,
        postgres_down=True,
    )

    assert propose(remote, ROOT) == []


def test_the_stopped_cluster_on_the_dsn_port_is_started() -> None:
    clusters = (Cluster("15", "main", 5432, online=False), Cluster("16", "main", 5433, False))
    machine = Machine(root=True, interactive=False, commands=COMMANDS, clusters=clusters)

    (step,) = propose(needs(postgres_down=True), machine)

    assert step.argv == ("/usr/bin/pg_ctlcluster", "15", "main", "start")


def test_without_pg_ctlcluster_the_service_script_starts_postgresql() -> None:
    commands = {"service": "/usr/sbin/service"}
    machine = Machine(root=True, interactive=False, commands=commands, postgres_service=True)

    (step,) = propose(needs(postgres_down=True), machine)

    assert step.argv == ("/usr/sbin/service", "postgresql", "start")


def test_what_is_not_installed_is_named_with_how_to_get_it() -> None:
    bare = Machine(root=True, interactive=False)

    problems = [step.problem or "" for step in propose(needs(broker_down=True), bare)]
    problems += [step.problem or "" for step in propose(needs(postgres_down=True), bare)]

    assert "apt-get install rabbitmq-server" in problems[0]
    assert "apt-get install postgresql" in problems[1]


def test_only_a_service_that_does_not_answer_counts_as_down() -> None:
    down = Needs.of({RABBITMQ_HINT, POSTGRES_HINT}, LOCAL_AMQP, LOCAL_MANAGEMENT, LOCAL_PG)
    wrong_password = Needs.of({"check WARREN_TEST_PG_DSN"}, LOCAL_AMQP, LOCAL_MANAGEMENT, LOCAL_PG)

    assert (down.broker_down, down.plugins_off, down.postgres_down) == (True, False, True)
    assert Needs.of({MANAGEMENT_HINT}, LOCAL_AMQP, LOCAL_MANAGEMENT, LOCAL_PG).plugins_off
    assert propose(wrong_password, ROOT) == []


def test_pg_lsclusters_output_is_read() -> None:
    listing = (
        "15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/pg-15.log\n"
        "16  test    5433 down   postgres /var/lib/postgresql/16/test /var/log/pg-16.log\n"
    )

    assert parse_clusters(listing) == (
        Cluster("15", "main", 5432, online=True),
        Cluster("16", "test", 5433, online=False),
    )
