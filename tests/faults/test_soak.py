"""A soak: minutes of steady traffic through one service process, its memory sampled from /proc.

The bound on growth: after a warm-up (first batches, allocator arenas, the engine's caches of
codes seen) the resident set may still wander by a few pages as the allocator reuses and returns
memory, while a leak of one small object per claim (64 bytes) over the RATE * (SOAK_S -
WARM_UP_S - WINDOW_S) claims between the two windows would add about 12 MiB.
RSS_GROWTH_LIMIT_MIB sits between the two.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

from tests.faults.conftest import FaultBroker, FaultReport
from tests.faults.probes import http_port, rss_kib
from tests.faults.streams import SteadyProducer, read_outcome, wait_committed
from tests.integration.conftest import ServiceProcess, Topics

pytestmark = [pytest.mark.faults]

SHUTDOWN_BOUND_S = 10  # CLAIMS_SHUTDOWN_TIMEOUT_S of ServiceProcess
RATE = 2_000
"""Claims per second, steady."""
SOAK_S = 150
WARM_UP_S = 30
WINDOW_S = 20
"""RSS is compared as the median of the first WINDOW_S after the warm-up against the median of
the last WINDOW_S: single samples jump with each batch's garbage."""
RSS_GROWTH_LIMIT_MIB = 8


@pytest.mark.timeout(SOAK_S + 180)
async def test_soak_at_a_steady_rate_keeps_up_loses_nothing_and_memory_stays_bounded(
    fault_broker: FaultBroker,
    fault_topics: Topics,
    services: list[ServiceProcess],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    bootstrap = fault_broker.bootstrap
    service = ServiceProcess(bootstrap, fault_topics, tmp_path / "service.log")
    services.append(service)
    await http_port(service)  # started and serving
    samples: list[tuple[float, int]] = []
    feed = SteadyProducer(bootstrap, fault_topics.submitted, "SOAK", rate=RATE)
    started = time.monotonic()
    async with feed.running():
        while (elapsed := time.monotonic() - started) < SOAK_S:
            assert service.proc.poll() is None, f"the service exited {service.proc.returncode}"
            samples.append((elapsed, rss_kib(service.proc.pid)))
            await asyncio.sleep(1.0)
    fed_s = time.monotonic() - started
    ids = feed.claim_ids

    await wait_committed(bootstrap, fault_topics, 60)
    outcome = await read_outcome(bootstrap, fault_topics, ids)
    early = [kib for at, kib in samples if WARM_UP_S <= at < WARM_UP_S + WINDOW_S]
    late = [kib for at, kib in samples if at >= SOAK_S - WINDOW_S]
    growth_mib = (statistics.median(late) - statistics.median(early)) / 1024
    fault_report.record(
        f"soak {SOAK_S} s at {RATE} claims/s",
        **outcome.figures(),
        rate=round(len(ids) / fed_s),
        rss_after_warm_up_mib=round(statistics.median(early) / 1024, 1),
        rss_at_end_mib=round(statistics.median(late) / 1024, 1),
        rss_peak_mib=round(max(kib for _, kib in samples) / 1024, 1),
        rss_growth_mib=round(growth_mib, 1),
        duration_s=round(time.monotonic() - started, 1),
    )
    assert len(ids) > 0.9 * RATE * SOAK_S, "the feed did not keep its rate"
    outcome.assert_delivered()
    assert len(ids) == outcome.verdicts_out
    assert growth_mib < RSS_GROWTH_LIMIT_MIB, f"RSS grew {growth_mib:.1f} MiB after the warm-up"
    service.terminate()
    assert 0 == service.wait(SHUTDOWN_BOUND_S + 5)
