"""Kafka benchmark of the real service: throughput, pass-through ratio, latency, memory.

One run, against the broker in BENCH_BOOTSTRAP (else CLAIMS_TEST_BOOTSTRAP, else the local
broker of scripts/kafka-local.sh on 127.0.0.1:19092):

1. creates fresh 3-partition topics and loads N realistic 3-line claims (a share flagged);
2. runs the real service (`python -m service serve`, subprocesses, so their RSS is in /proc;
   `--instances N` of them in one consumer group) over them and measures claims/s from the
   verdict record timestamps (set by the service's producer), then checks every claim got a
   verdict. With one instance that is first -> last verdict. With more, the first instance
   starts alone and the others join at its next heartbeat (3 s), so the rate is taken from the
   moment the group is seen Stable with every member assigned (the group's steady rate); use
   enough --claims that most outputs come after that (the run fails if under a third do):
   the pass-through does ~75,000 records/s alone, so --instances 2 wants --claims 1000000;
3. runs a pass-through consumer over the same records, as many instances: the same FastStream
   batch subscriber, ack policy and `BatchPublisher`/producer (the same record batching),
   republishing each record unchanged without validating; prints service / pass-through;
4. runs the service on a fresh topic fed at a steady 1,000 claims/s for ~20 s and reports
   p50/p99 from each input record's timestamp to its verdict's arrival at a consumer;
5. reports the largest instance's peak RSS (VmHWM) over both service runs.

The services answer /metrics and /health on a free port (CLAIMS_HTTP__PORT=0), as deployed.
`--set NAME=VALUE` passes a setting (CLAIMS_ is prepended) to the service AND the pass-through,
e.g. `--set CONSUMER__BATCH_SIZE=5000`, so the comparison stays fair.

With `--history`, the same run also measures the service with its claim history on
(CLAIMS_HISTORY__*, a fresh database on BENCH_HISTORY_DSN, else CLAIMS_TEST_DSN, else a
durable embedded server of scripts/postgres_local.py of its own: port 15442, data under
.cache/postgres-bench, fsync on; the tests' server runs with fsync off): throughput over the
same loaded records (a new group), latency at the same steady rate, and the database's share
of the batch time (the history round trips' seconds over the batches' seconds, from the
service's /metrics). The claims' members repeat (`--claims-per-member`, default 3: every
claims/3-th claim is the same member's, all on one date of service), so histories are not
empty.

Usage: python scripts/bench_kafka.py [--claims 200000] [--repeat 3] [--latency-seconds 20]
                                     [--instances 1] [--set NAME=VALUE ...] [--history]
                                     [--claims-per-member 3]
Prints a table per run (and of medians with --repeat) and one JSON document at the end.
Internal: `python scripts/bench_kafka.py passthrough` is the pass-through consumer process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kafka_env import (  # the scripts folder is not a package
    BENCH_POSTGRES,
    MEMBERS,
    PARTITIONS,
    REPO,
    bootstrap,
    create_topics,
    delete_topics,
    durability,
    free_port,
    history_dsn,
    history_overrides,
    load,
    metric_sums,
    service_env,
)
from bench_kafka_measure import latency, throughput

SCRIPT = Path(__file__).resolve()

# ------------------------------------------------------------------ one run ----


async def one_run(
    claims: int,
    latency_s: float,
    workdir: Path,
    instances: int,
    overrides: dict[str, str],
    history: bool = False,
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    base = f"bench-{run}"
    topics = {
        "submitted": f"{base}.submitted",
        "accepted": f"{base}.accepted",
        "flagged": f"{base}.flagged",
        "dead_letter": f"{base}.dead-letter",
    }
    passthrough_out = f"{base}.passthrough"
    lat_topics = {k: v.replace(base, f"{base}-lat") for k, v in topics.items()}
    hist_lat_topics = {k: v.replace(base, f"{base}-hlat") for k, v in topics.items()}
    hist_outputs = [f"{base}-h.accepted", f"{base}-h.flagged", f"{base}-h.dead-letter"]
    all_topics = [*topics.values(), passthrough_out, *lat_topics.values()]
    if history:
        all_topics += [*hist_lat_topics.values(), *hist_outputs]
    extra: dict[str, Any] = {}
    await create_topics(all_topics)
    try:
        load_s = await load(topics["submitted"], claims, run)
        print(f"[{run}] loaded {claims} claims in {load_s:.1f} s", file=sys.stderr)

        outputs = [topics["accepted"], topics["flagged"], topics["dead_letter"]]
        svc_rate, svc_rss, verdicts, svc_out = await throughput(
            [sys.executable, "-m", "service", "serve"],
            service_env(topics, f"{base}-service", overrides),
            outputs,
            claims,
            workdir / f"{run}-service",
            instances,
        )
        print(
            f"[{run}] service x{instances}: {svc_rate:,.0f} claims/s "
            f"({svc_out - verdicts} duplicate verdicts)",
            file=sys.stderr,
        )

        pt_env = service_env(topics, f"{base}-passthrough", overrides)
        pt_env["BENCH_PASSTHROUGH_TOPIC"] = passthrough_out
        pt_rate, _, _, _ = await throughput(
            [sys.executable, str(SCRIPT), "passthrough"],
            pt_env,
            [passthrough_out],
            claims,
            workdir / f"{run}-passthrough",
            instances,
        )
        print(f"[{run}] pass-through x{instances}: {pt_rate:,.0f} records/s", file=sys.stderr)

        p50, p99, lat_rss, lat_claims = await latency(
            lat_topics,
            service_env(lat_topics, f"{base}-lat-service", overrides),
            rate=1_000,
            seconds=latency_s,
            log_stem=workdir / f"{run}-latency",
            run=run,
            instances=instances,
        )
        print(f"[{run}] latency p50 {p50:.1f} ms, p99 {p99:.1f} ms", file=sys.stderr)
        if history:
            extra = await history_run(
                run, base, topics, hist_outputs, hist_lat_topics, claims, latency_s, workdir,
                instances, overrides,
            )
            extra["history_to_off_ratio"] = round(
                extra["history_claims_per_s"] / svc_rate, 3
            )
    finally:
        await delete_topics(all_topics)
    return {
        "run": run,
        "instances": instances,
        "settings": overrides,
        "claims": claims,
        "verdicts": verdicts,
        "duplicate_verdicts": svc_out - verdicts,
        "service_claims_per_s": round(svc_rate),
        "passthrough_records_per_s": round(pt_rate),
        "ratio": round(svc_rate / pt_rate, 3),
        "latency_rate_per_s": 1_000,
        "latency_claims": lat_claims,
        "latency_p50_ms": round(p50, 1),
        "latency_p99_ms": round(p99, 1),
        "service_peak_rss_mb": round(max(svc_rss, lat_rss), 1),
        **extra,
    }


async def history_run(
    run: str,
    base: str,
    topics: dict[str, str],
    outputs: list[str],
    lat_topics: dict[str, str],
    claims: int,
    latency_s: float,
    workdir: Path,
    instances: int,
    overrides: dict[str, str],
) -> dict[str, Any]:
    """The service with its history on, over the same loaded claims (a new group)."""
    port = free_port()
    env = service_env(
        {**topics, "accepted": outputs[0], "flagged": outputs[1], "dead_letter": outputs[2]},
        f"{base}-history",
        {**overrides, **history_overrides(await history_dsn(), port)},
    )
    sums: dict[str, float] = {}

    async def scrape() -> None:
        sums.update(await metric_sums(
            port, ["claims_validator_history_seconds", "claims_validator_batch_duration_seconds"]
        ))

    rate, rss, _, _ = await throughput(
        [sys.executable, "-m", "service", "serve"], env, outputs, claims,
        workdir / f"{run}-history", 1 if instances == 1 else instances,
        before_stop=scrape if instances == 1 else None,
    )
    share = (
        sums["claims_validator_history_seconds"] / sums["claims_validator_batch_duration_seconds"]
        if sums else float("nan")
    )
    print(f"[{run}] history on: {rate:,.0f} claims/s, database share {share:.1%}",
          file=sys.stderr)
    lat_env = service_env(
        lat_topics, f"{base}-hlat-service",
        {**overrides, **history_overrides(await history_dsn(), free_port())},
    )
    p50, p99, lat_rss, _ = await latency(
        lat_topics, lat_env, rate=1_000, seconds=latency_s,
        log_stem=workdir / f"{run}-history-latency", run=run, instances=instances,
    )
    print(f"[{run}] history on: latency p50 {p50:.1f} ms, p99 {p99:.1f} ms", file=sys.stderr)
    return {
        "history_claims_per_s": round(rate),
        "history_db_share": round(share, 3),
        "history_latency_p50_ms": round(p50, 1),
        "history_latency_p99_ms": round(p99, 1),
        "history_peak_rss_mb": round(max(rss, lat_rss), 1),
    }


ROWS = (
    ("service_claims_per_s", "service claims/s (verdict timestamps)", ">= 20,000"),
    ("passthrough_records_per_s", "pass-through records/s", ""),
    ("ratio", "service / pass-through", ">= 0.80"),
    ("latency_p50_ms", "p50 ms at 1,000 claims/s", ""),
    ("latency_p99_ms", "p99 ms at 1,000 claims/s", "<= 100"),
    ("service_peak_rss_mb", "service peak RSS MB (largest instance)", "<= 250"),
)


def table(title: str, result: dict[str, Any]) -> str:
    lines = [title, f"  {'measure':<40} {'value':>12}  target"]
    for key, label, target in ROWS:
        value = result[key]
        shown = f"{value:,.3f}" if key == "ratio" else f"{value:,}"
        lines.append(f"  {label:<40} {shown:>12}  {target}")
    return "\n".join(lines)


HISTORY_ROWS = (
    ("history_claims_per_s", "history on: claims/s", ""),
    ("history_to_off_ratio", "history on / history off", ">= 0.50"),
    ("history_db_share", "database share of the batch time", ""),
    ("history_latency_p50_ms", "history on: p50 ms at 1,000 claims/s", ""),
    ("history_latency_p99_ms", "history on: p99 ms at 1,000 claims/s", "<= 100"),
    ("history_peak_rss_mb", "history on: peak RSS MB", "<= 250"),
)


def table_history(result: dict[str, Any], database: str) -> str:
    lines = [f"  with the claim history on (PostgreSQL, {database}):"]
    if "fsync=off" in database:
        lines.append("  NOT DURABLE (fsync off): these history figures do not count for targets")
    for key, label, target in HISTORY_ROWS:
        lines.append(f"  {label:<40} {result[key]:>12,}  {target}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="service (and pass-through) processes in one consumer group; the topics have "
        f"{PARTITIONS} partitions",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting for the service AND the pass-through, e.g. "
        "CONSUMER__BATCH_SIZE=2000 (CLAIMS_ is prepended); repeatable",
    )
    parser.add_argument(
        "--claims-per-member",
        type=int,
        default=3,
        help="claims of each member in a run (their history grows with it)",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="also run the service with its claim history on (PostgreSQL), beside it off",
    )
    args = parser.parse_args()
    if not 1 <= args.instances <= PARTITIONS:
        parser.error(f"--instances must be 1..{PARTITIONS}")
    overrides: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
        overrides[name if name.startswith("CLAIMS_") else f"CLAIMS_{name}"] = value
    MEMBERS[0] = max(1, args.claims // max(1, args.claims_per_member))
    if args.history and not os.environ.get("BENCH_HISTORY_DSN"):
        os.environ["BENCH_HISTORY_DSN"] = os.environ.get("CLAIMS_TEST_DSN") or subprocess.run(
            [sys.executable, str(REPO / "scripts" / "postgres_local.py"), "start"],
            capture_output=True, text=True, check=True, env={**os.environ, **BENCH_POSTGRES},
        ).stdout.strip().splitlines()[-1]
    database = asyncio.run(durability(os.environ["BENCH_HISTORY_DSN"])) if args.history else ""
    workdir = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    print(f"broker {bootstrap()}, logs in {workdir}", file=sys.stderr)
    results = [
        asyncio.run(
            one_run(
                args.claims, args.latency_seconds, workdir, args.instances, overrides,
                args.history,
            )
        )
        for _ in range(args.repeat)
    ]
    for r in results:
        print(table(f"run {r['run']} ({r['claims']:,} claims, {r['instances']} instance(s))", r))
        if args.history:
            print(table_history(r, database))
    summary: dict[str, Any] = {
        "broker": bootstrap(),
        "claims_per_member": args.claims_per_member,
        "instances": args.instances,
        "settings": overrides,
        **({"history_database": database} if args.history else {}),
        "runs": results,
    }
    if len(results) > 1:
        rows = ROWS + HISTORY_ROWS if args.history else ROWS
        medians = {key: statistics.median(r[key] for r in results) for key, _, _ in rows}
        summary["median"] = medians
        print(table(f"median of {len(results)} runs", medians))
        if args.history:
            print(table_history(medians, database))
    print(json.dumps(summary, indent=2))
    return 0


# ------------------------------------------------------------------ pass-through ----


def passthrough() -> int:
    """The pass-through consumer: the service's own app (subscriber, ack policy, publisher,
    producer) with a judge that copies each record to the output topic unjudged."""
    from datetime import datetime

    from service.app import create_app
    from service.limits import Limits
    from service.logs import configure_logging
    from service.routing import InputRecord, Outcome, OutRecord, Source, Topics
    from service.ruletable.compiled import RuleTable
    from service.serving import serve, tune_gc
    from service.settings import HttpSettings, load_settings

    out_topic = os.environ.pop("BENCH_PASSTHROUGH_TOPIC")
    settings = load_settings().model_copy(update={"http": HttpSettings(enabled=False)})
    configure_logging(settings)

    def copy(
        record: InputRecord,
        table: RuleTable,
        topics: Topics,
        *,
        now: datetime,
        limits: Limits,
        **judged_elsewhere: object,
    ) -> Outcome:
        return Outcome(
            "copied",
            OutRecord(out_topic, record.key, record.value, tuple(record.headers)),
            Source(record.topic, record.partition, record.offset),
            None,
            None,
            (),
            None,
            None,
            None,
            0.0,
        )

    app = create_app(settings, judge=copy)
    tune_gc(settings.consumer.batch_size)  # as the service does
    return asyncio.run(serve(app, settings))


if __name__ == "__main__":
    if sys.argv[1:2] == ["passthrough"]:
        raise SystemExit(passthrough())
    raise SystemExit(main())
