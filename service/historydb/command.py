"""The command-line side of the claim history: `claims-validator db migrate|purge` and the
history of `claims-validator check --history DSN`.

Both read the history settings (`CLAIMS_HISTORY__*`: the HMAC key, TLS); a DSN on the command
line wins over `CLAIMS_HISTORY__DSN`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pydantic import SecretStr, ValidationError

from service.check import Histories
from service.decode import Decoded, Readable
from service.exitcodes import ExitCode
from service.history_settings import HistorySettings
from service.historydb.store import HistoryStore, MemberKeys, StoredClaim
from service.models.history import History
from service.ruletable.compiled import RuleTable, longest_window_days

__all__ = ["HistoryCommandError", "check_histories", "history_settings", "main_db"]


class HistoryCommandError(Exception):
    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def history_settings(base: HistorySettings, dsn: str | None) -> HistorySettings:
    """`base` switched on, with `dsn` when given; raises naming the missing setting."""
    fields = base.model_dump()
    fields.update(enabled=True)
    if dsn:
        fields["dsn"] = SecretStr(dsn)
    try:
        return HistorySettings.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise HistoryCommandError(
            f"CLAIMS_HISTORY__*: {problem} (the DSN may be given with --history)", ExitCode.CONFIG
        ) from None


@contextmanager
def check_histories(settings: HistorySettings, table: RuleTable) -> Iterator[Histories]:
    """A `service.check.Histories` over the database, open for the `with` block."""
    assert settings.hmac_key is not None
    keys = MemberKeys(settings.hmac_key.get_secret_value())
    store = HistoryStore(settings, longest_window_days(table.frequency))
    with asyncio.Runner() as runner:
        try:
            runner.run(store.open())
        except Exception as exc:
            raise HistoryCommandError(
                f"the history database is unavailable ({type(exc).__name__})",
                ExitCode.HISTORY_UNAVAILABLE,
            ) from None

        def histories(decoded: Sequence[Decoded]) -> list[History | None]:
            readable = [d.event for d in decoded if isinstance(d, Readable)]
            try:
                recorded = iter(
                    runner.run(store.record([StoredClaim.of(e, keys) for e in readable]))
                )
            except Exception as exc:
                raise HistoryCommandError(
                    f"the history database failed ({type(exc).__name__})",
                    ExitCode.HISTORY_UNAVAILABLE,
                ) from None
            return [next(recorded).history if isinstance(d, Readable) else None for d in decoded]

        try:
            yield histories
        finally:
            runner.run(store.close())


def main_db(action: str, dsn: str | None, base: HistorySettings, table: RuleTable) -> int:
    """`db migrate`: apply the shipped migrations; `db purge`: delete rows past the windows."""
    try:
        settings = history_settings(base, dsn)
    except HistoryCommandError as exc:
        print(f"claims-validator db: {exc}", file=sys.stderr)
        return exc.code
    store = HistoryStore(settings, longest_window_days(table.frequency))

    async def run() -> str:
        await store.open()  # applies the migrations
        try:
            if action == "purge":
                deleted = await store.purge(settings.purge_margin_days)
                return f"purged {deleted} rows"
            return "schema up to date"
        finally:
            await store.close()

    try:
        print(asyncio.run(run()))
    except Exception as exc:
        print(
            f"claims-validator db: the history database is unavailable ({type(exc).__name__})",
            file=sys.stderr,
        )
        return ExitCode.HISTORY_UNAVAILABLE
    return ExitCode.OK
