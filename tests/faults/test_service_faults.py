"""Faults of the service process itself: kill -9 mid-stream, SIGTERM under load, a rebalance
storm. Each test streams claims through real service processes on the fault broker and checks
the delivery promise on the output topics: every claim judged, one verdict event_id per claim
(redeliveries allowed and counted), the group's committed offsets at the end offsets.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.conftest import FaultBroker, FaultReport
from tests.faults.streams import (
    SteadyProducer,
    claim_records,
    output_records,
    produce_fast,
    read_outcome,
    wait_committed,
    wait_outputs,
)
from tests.integration.conftest import ServiceProcess, Topics

pytestmark = [pytest.mark.faults]

SHUTDOWN_BOUND_S = 10  # CLAIMS_SHUTDOWN_TIMEOUT_S of ServiceProcess


def _start(
    bootstrap: str, topics: Topics, services: list[ServiceProcess], log: Path
) -> ServiceProcess:
    service = ServiceProcess(bootstrap, topics, log)
    services.append(service)
    return service


@pytest.mark.timeout(300)
async def test_kill_9_five_times_during_a_200k_stream_loses_nothing(
    fault_broker: FaultBroker,
    fault_topics: Topics,
    services: list[ServiceProcess],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    """SIGKILL at five points of a 200,000-claim stream, a new process each time: every claim
    gets a verdict, a redelivered claim keeps its verdict event_id, and at least one crash
    landed between publish and commit (a claim was published twice)."""
    total, kills = 200_000, 5
    bootstrap = fault_broker.bootstrap
    records = claim_records("K", 0, total)
    ids = {key.decode() for key, _ in records}
    await produce_fast(bootstrap, fault_topics.submitted, records)
    del records

    started = time.monotonic()
    service = _start(bootstrap, fault_topics, services, tmp_path / "run-0.log")
    recover_s = []
    for k in range(1, kills + 1):
        await wait_outputs(bootstrap, fault_topics, above=total * k // (kills + 1), timeout_s=90)
        service.kill()
        assert -9 == service.wait(10)
        at_kill = await output_records(bootstrap, fault_topics)
        service = _start(bootstrap, fault_topics, services, tmp_path / f"run-{k}.log")
        recover_s.append(await wait_outputs(bootstrap, fault_topics, above=at_kill, timeout_s=60))

    await wait_committed(bootstrap, fault_topics, 180)
    outcome = await read_outcome(bootstrap, fault_topics, ids)
    fault_report.record(
        "service kill -9 (x5, 200k claims)",
        **outcome.figures(),
        faults=kills,
        recover_s=[round(s, 2) for s in recover_s],
        duration_s=round(time.monotonic() - started, 1),
    )
    outcome.assert_delivered()
    assert total == outcome.verdicts_out
    assert outcome.redelivered_claims > 0, "no crash landed between publish and commit"
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)


@pytest.mark.timeout(240)
async def test_sigterm_under_load_exits_0_within_the_bound_and_loses_nothing(
    fault_broker: FaultBroker,
    fault_topics: Topics,
    services: list[ServiceProcess],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    """SIGTERM three times while a backlog is being judged and claims keep arriving: each
    process drains its batch, commits it and exits 0 within the shutdown bound; a clean stop
    leaves no duplicate, and the last process judges everything."""
    bootstrap = fault_broker.bootstrap
    backlog = claim_records("B", 0, 120_000)
    ids = {key.decode() for key, _ in backlog}
    await produce_fast(bootstrap, fault_topics.submitted, backlog)
    del backlog

    started = time.monotonic()
    stops: list[float] = []
    recover_s = []
    feed = SteadyProducer(bootstrap, fault_topics.submitted, "S", rate=2_000)
    async with feed.running():
        service = _start(bootstrap, fault_topics, services, tmp_path / "run-0.log")
        for k in range(1, 4):
            before = await output_records(bootstrap, fault_topics)
            await wait_outputs(bootstrap, fault_topics, above=before + 15_000, timeout_s=90)
            signalled = time.monotonic()
            service.terminate()
            code = service.wait(SHUTDOWN_BOUND_S + 5)
            stops.append(time.monotonic() - signalled)
            assert 0 == code, f"stop {k} exited {code}"
            assert stops[-1] < SHUTDOWN_BOUND_S
            at_stop = await output_records(bootstrap, fault_topics)
            service = _start(bootstrap, fault_topics, services, tmp_path / f"run-{k}.log")
            recover_s.append(
                await wait_outputs(bootstrap, fault_topics, above=at_stop, timeout_s=60)
            )
    ids |= feed.claim_ids

    await wait_committed(bootstrap, fault_topics, 120)
    outcome = await read_outcome(bootstrap, fault_topics, ids)
    fault_report.record(
        "service SIGTERM under load (x3)",
        **outcome.figures(),
        faults=3,
        recover_s=[round(s, 2) for s in recover_s],
        stop_s=[round(s, 2) for s in stops],
        duration_s=round(time.monotonic() - started, 1),
    )
    outcome.assert_delivered()
    assert len(ids) == outcome.verdicts_out
    assert 0 == outcome.duplicated, "a clean stop committed everything it published"
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)


@pytest.mark.timeout(240)
async def test_rebalance_storm_a_third_member_joining_and_leaving_loses_nothing(
    fault_broker: FaultBroker,
    fault_topics: Topics,
    services: list[ServiceProcess],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    """Two members share the stream; a third joins and leaves (SIGTERM) five times, each
    join and leave a rebalance of the group while claims arrive. Nothing is lost."""
    bootstrap = fault_broker.bootstrap
    cycles = 5
    started = time.monotonic()
    feed = SteadyProducer(bootstrap, fault_topics.submitted, "R", rate=4_000)
    async with feed.running():
        a = _start(bootstrap, fault_topics, services, tmp_path / "a.log")
        b = _start(bootstrap, fault_topics, services, tmp_path / "b.log")
        await a.wait_assigned()
        await b.wait_assigned()
        for k in range(cycles):
            c = _start(bootstrap, fault_topics, services, tmp_path / f"c-{k}.log")
            await c.wait_assigned()
            before = await output_records(bootstrap, fault_topics)
            await wait_outputs(bootstrap, fault_topics, above=before + 2_000, timeout_s=60)
            c.terminate()
            assert 0 == c.wait(SHUTDOWN_BOUND_S + 5)
    ids = feed.claim_ids

    await wait_committed(bootstrap, fault_topics, 120)
    outcome = await read_outcome(bootstrap, fault_topics, ids)
    fault_report.record(
        "rebalance storm (2 members, a 3rd joins/leaves x5)",
        **outcome.figures(),
        faults=cycles * 2,
        duration_s=round(time.monotonic() - started, 1),
    )
    outcome.assert_delivered()
    assert len(ids) == outcome.verdicts_out
    for member in (a, b):
        assert member.proc.poll() is None, "a member died in the storm"
        member.terminate()
        assert 0 == member.wait(SHUTDOWN_BOUND_S + 5)
