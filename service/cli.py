"""The `claims-validator` command line: serve, web, check, ingest, rules, topics, docs, schemas.

Exit codes are `service.exitcodes.ExitCode`, the same in every command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.exitcodes import ExitCode

__all__ = ["main"]



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claims-validator",
        description="Validate professional medical claims (CMS-1500 / 837P) from Apache Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("serve", help="consume claim.submitted events and publish verdicts")

    web = commands.add_parser(
        "web", help="serve the HTTP API and the what-if page alone, without Kafka"
    )
    web.add_argument("--host", metavar="HOST", help="address to listen on (CLAIMS_HTTP__HOST)")
    web.add_argument("--port", type=int, metavar="PORT", help="port (CLAIMS_HTTP__PORT)")

    check = commands.add_parser(
        "check", help="judge claim.submitted events from JSON Lines files (or stdin), offline"
    )
    check.add_argument("files", nargs="*", metavar="FILE", help="JSON Lines files; '-' is stdin")
    check.add_argument(
        "--rules", type=Path, metavar="DIR", help="rule table directory (default: shipped table)"
    )
    check.add_argument(
        "--history",
        metavar="DSN",
        help="PostgreSQL claim history for the cross-claim rules (else CLAIMS_HISTORY__DSN when"
        " CLAIMS_HISTORY__ENABLED; without one they are skipped)",
    )

    db = commands.add_parser("db", help="the claim-history database: migrate or purge")
    db.add_argument("action", choices=("migrate", "purge"))
    db.add_argument("--dsn", metavar="DSN", help="PostgreSQL DSN (else CLAIMS_HISTORY__DSN)")

    ingest = commands.add_parser(
        "ingest", help="turn X12 837P files into claim.submitted events (JSON Lines or --publish)"
    )
    ingest.add_argument("files", nargs="+", metavar="FILE", help="X12 005010X222A1 files")
    ingest.add_argument(
        "--publish", action="store_true", help="publish to the input topic instead of stdout"
    )
    ingest.add_argument(
        "--payer-map", type=Path, metavar="CSV", help="x12_payer_id,payer_id rows (2010BB NM109)"
    )

    rules = commands.add_parser("rules", help="rule table maintenance")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rules_commands.add_parser(
        "import", help="rebuild the CMS-derived tables from official files", add_help=False
    )
    rules_commands.add_parser(
        "import-mue", help="load an official CMS practitioner MUE file", add_help=False
    )
    rules_commands.add_parser(
        "import-icd10cm", help="load ICD-10-CM editions from wheels carrying the CMS/CDC files",
        add_help=False,
    )
    rules_commands.add_parser("show", help="print the table version, digest and provenance")

    topics = commands.add_parser("topics", help="topic maintenance")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = topics_commands.add_parser(
        "create", help="create the input, verdict and dead-letter topics the settings name"
    )
    create.add_argument("--partitions", type=int, default=3, metavar="N")
    create.add_argument("--replication-factor", type=int, default=1, metavar="N")

    docs = commands.add_parser(
        "docs", help="print the generated README sections (rules, settings), or --write them"
    )
    docs.add_argument("--write", type=Path, metavar="README", help="update this file in place")

    schemas = commands.add_parser(
        "schemas", help="write the event JSON Schemas and the AsyncAPI document"
    )
    schemas.add_argument("--out", type=Path, default=Path("schemas"), metavar="DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    # `rules import ...` forwards its own options to the importer's parser.
    # The new table's catalogue must cover every rule the engine can emit.
    if args_list[:2] == ["rules", "import"]:
        from service.engine import RULE_IDS
        from service.ruletable.importers.rebuild import main_import

        return main_import(args_list[2:], rule_ids=RULE_IDS)
    if args_list[:2] == ["rules", "import-icd10cm"]:
        from service.engine import RULE_IDS
        from service.ruletable.importers.icd10cm import main_import_icd10cm

        return main_import_icd10cm(args_list[2:], rule_ids=RULE_IDS)
    if args_list[:2] == ["rules", "import-mue"]:
        from service.engine import RULE_IDS
        from service.ruletable.importers.mue import main_import_mue

        return main_import_mue(args_list[2:], rule_ids=RULE_IDS)

    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)

    from service.ruletable.files import RuleTableError

    try:
        return _dispatch(args)
    except RuleTableError as exc:
        print(f"claims-validator: rule table error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from service.serving import run
        from service.settings import ConfigError, load_settings

        try:
            settings = load_settings()
        except ConfigError as exc:
            print(f"claims-validator: configuration error: {exc}", file=sys.stderr)
            return ExitCode.CONFIG
        return run(settings)
    if args.command == "web":
        return _web(args)
    if args.command == "check":
        from service.tables import default_table, load_table

        table = load_table(args.rules) if args.rules else default_table()
        return _check(args, table)
    if args.command == "db":
        from service.historydb.command import main_db
        from service.settings import ConfigError, load_settings
        from service.tables import default_table

        try:
            settings = load_settings()
        except ConfigError as exc:
            print(f"claims-validator: configuration error: {exc}", file=sys.stderr)
            return ExitCode.CONFIG
        return main_db(args.action, args.dsn, settings.history, default_table())
    if args.command == "ingest":
        from service.intake.ingest import main_ingest

        return main_ingest(args.files, args.payer_map, args.publish)
    if args.command == "topics":  # "create"
        import asyncio

        from service.settings import ConfigError, load_settings
        from service.topics import create_topics, service_topics

        try:
            settings = load_settings()
        except ConfigError as exc:
            print(f"claims-validator: configuration error: {exc}", file=sys.stderr)
            return ExitCode.CONFIG
        created = asyncio.run(
            create_topics(
                settings.kafka,
                service_topics(settings.topics),
                partitions=args.partitions,
                replication_factor=args.replication_factor,
            )
        )
        print(f"created: {', '.join(created) if created else 'none (all exist)'}")
        return ExitCode.OK
    if args.command == "docs":
        from service.docs import SECTIONS, render_section, update_readme
        from service.tables import default_table

        if args.write is None:
            print("\n\n".join(render_section(name, default_table()) for name in SECTIONS))
        elif update_readme(args.write, default_table()):
            print(f"updated {args.write}")
        return ExitCode.OK
    if args.command == "rules":  # "show"
        from service.tables import default_table

        table = default_table()
        print(f"version: {table.version}\ndigest:  {table.digest}")
        policies = table.policies.provenance if table.policies else ()
        for p in (*table.provenance, *policies):
            print(f"  {p.table}: {p.source_file} ({p.release}), {p.rows} rows,"
                  f" sha256 {p.source_sha256}")
        return ExitCode.OK
    if args.command == "schemas":
        for path in _write_schemas(args.out):
            print(path)
        return ExitCode.OK
    return ExitCode.USAGE


def _write_schemas(out: Path) -> list[Path]:
    """The event JSON Schemas and the AsyncAPI document of the app built from the settings'
    defaults (never the environment, so the committed files are reproducible)."""
    from service.app import create_app
    from service.asyncapi import documented_settings, render_asyncapi
    from service.event_schemas import render_schemas, write_texts
    from service.tables import default_table
    from service.web.document import render_openapi

    settings = documented_settings()
    app = create_app(settings, table=default_table())
    return write_texts(
        out, {**render_schemas(), **render_asyncapi(app, settings), **render_openapi()}
    )


def _web(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from service.settings import ConfigError, HttpSettings, load_settings
    from service.web.standalone import run_web

    try:
        settings = load_settings()
        given = {"host": args.host, "port": args.port}
        http = HttpSettings.model_validate(
            {**settings.http.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        )
    except ConfigError as exc:
        print(f"claims-validator: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except ValidationError as exc:
        fields = ", ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        print(f"claims-validator web: {fields}", file=sys.stderr)
        return ExitCode.USAGE
    return run_web(settings.model_copy(update={"http": http}))


def _check(args: argparse.Namespace, table: object) -> int:
    """`check`, with the claim history when `--history` or the settings name one."""
    from service.check import check_files
    from service.engine import HISTORY_RULE_IDS
    from service.historydb.command import HistoryCommandError, check_histories, history_settings
    from service.ruletable.compiled import RuleTable
    from service.settings import ConfigError, load_settings

    assert isinstance(table, RuleTable)
    try:
        base = load_settings().history
    except ConfigError as exc:
        print(f"claims-validator: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    if not args.history and not base.enabled:
        note = {
            "note": "no-claim-history",
            "detail": "no claim history (--history DSN or CLAIMS_HISTORY__*): "
            f"{', '.join(sorted(HISTORY_RULE_IDS))} are not judged",
        }
        print(json.dumps(note), file=sys.stderr, flush=True)
        return check_files(args.files, table)
    try:
        settings = history_settings(base, args.history)
        with check_histories(settings, table) as histories:
            return check_files(args.files, table, histories)
    except HistoryCommandError as exc:
        print(f"claims-validator check: {exc}", file=sys.stderr)
        return exc.code
