"""Command line: `cds serve` runs the HTTP service, `cds replay` shows what an EHR would get."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Posterior thigh pain CDS Hooks service.")
console = Console(stderr=False)
errors = Console(stderr=True)


LAST_VISIT = "last-visit"


def _parse_as_of(value: str | None) -> datetime | None:
    if value is None or value in {"now", LAST_VISIT}:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("use an ISO date such as 2026-11-24 or 2026-11-24T09:30") from exc
    return moment if moment.tzinfo else moment.replace(hour=moment.hour or 12, tzinfo=UTC)


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2: how every misconfiguration is reported."""
    sys.stderr.write(f"cds: error: {message}\n")
    raise typer.Exit(2)


@app.command()
def serve(
    # plain strings: the settings check them, so that a bad value is one line naming it
    host: Annotated[str | None, typer.Option(metavar="HOST",
                                             help="interface to listen on [CDS_HOST]")] = None,
    port: Annotated[str | None, typer.Option(metavar="PORT", help="TCP port [CDS_PORT]")] = None,
    workers: Annotated[str | None, typer.Option(
        metavar="N", help="worker processes [CDS_WORKERS]")] = None,
    log_level: Annotated[str | None, typer.Option(
        metavar="LEVEL", help="debug, info, warning, error [CDS_LOG_LEVEL]")] = None,
    log_format: Annotated[str | None, typer.Option(
        metavar="FORMAT", help="text or json [CDS_LOG_FORMAT]")] = None,
    trust_file: Annotated[str | None, typer.Option(
        metavar="FILE",
        help="trusted CDS clients (TOML/JSON); without it: development mode, no auth "
             "[CDS_TRUST_FILE]")] = None,
) -> None:
    """Run the CDS Hooks service (discovery at /cds-services)."""
    from cds.config import ConfigError, env_name, load_settings, setting_label
    from cds.preflight import preflight
    from cds.server import bind, run

    overrides = {"host": host, "port": port, "workers": workers, "log_level": log_level,
                 "log_format": log_format, "trust_file": trust_file}
    try:
        settings = load_settings(overrides)

        def label(field: str) -> str:
            return setting_label(field, overrides)

        preflight(settings, label)
        sock = bind(settings.host, settings.port, label)
    except ConfigError as exc:
        _fail(str(exc))
    # every worker reads its settings from the environment: hand the options on
    for name, value in overrides.items():
        if value is not None:
            os.environ[env_name(name)] = str(getattr(settings, name))
    run(settings, sock)


@app.command()
def replay(
    paths: Annotated[list[str], typer.Argument(help="bundle or hook-request JSON files, "
                                                    "folders, or - for stdin")],
    url: Annotated[str | None, typer.Option(help="base URL of a running service, e.g. "
                                                 "http://127.0.0.1:8080")] = None,
    service: Annotated[str, typer.Option(help="service id")] = "thigh-pain",
    as_of: Annotated[str | None, typer.Option("--as-of", help="evaluate as if today were this "
                                              "date (in process only); 'now' by default; "
                                              "'last-visit': each bundle as of its latest "
                                              "Encounter")] = None,
    fetch: Annotated[bool, typer.Option(help="serve the bundle as a FHIR server and let the "
                                             "service fetch, instead of prefetch")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of "
                                          "{input, ok, error, response}, one per input")] = False,
    jwt_key: Annotated[Path | None, typer.Option(help="PEM private key (EC P-384 or RSA) to "
                                                     "sign client JWTs with --url")] = None,
    jwt_issuer: Annotated[str | None, typer.Option(help="iss of the client JWT")] = None,
    jwt_kid: Annotated[str | None, typer.Option(help="kid of the signing key")] = None,
    strict: Annotated[bool, typer.Option(help="also validate every resource fully with "
                                              "fhir.resources; exit 1 if any is invalid")] = False,
) -> None:
    """Replay FHIR bundles or hook requests and print the cards."""
    from cds.replay import ReplayOptions, replay_paths  # the whole engine: lazily

    if url and as_of:
        errors.print("[red]error:[/red] --as-of works in process only: a running service "
                     "always evaluates as of its own clock")
        raise typer.Exit(2)
    options = ReplayOptions(url=url, service_id=service, as_of=_parse_as_of(as_of),
                            as_of_last_visit=as_of == LAST_VISIT, fetch=fetch, as_json=as_json,
                            jwt_key=jwt_key, jwt_issuer=jwt_issuer, jwt_kid=jwt_kid,
                            strict=strict)
    _exit_with(lambda: replay_paths(paths, options, console, errors))


def _exit_with(run: Callable[[], int]) -> NoReturn:
    """Exit with what `run` returns; 2 with one line when there was nothing to replay."""
    from cds.replay import ReplayError

    try:
        code = run()
    except ReplayError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


@app.command("report")
def words_report(
    paths: Annotated[list[str], typer.Argument(help="bundles, hook requests or folders")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="evaluate as if today were "
                                              "this date, or 'last-visit'")] = None,
) -> None:
    """How much the service says: cards and characters per chart, charts with no cards."""
    from cds.replay import ReplayOptions
    from cds.report import report

    options = ReplayOptions(as_of=_parse_as_of(as_of), as_of_last_visit=as_of == LAST_VISIT)
    _exit_with(lambda: report(paths, options, console))


@app.command("feedback")
def feedback_report(
    database_url: Annotated[str | None, typer.Option(help="feedback store URL")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Acceptance and override rates per card type."""
    from rich.table import Table

    from cds.config import ConfigError, load_settings, redact_url
    from cds.store import StoreUnavailable, open_store

    try:
        url = database_url or load_settings().database_url
    except ConfigError as exc:
        _fail(str(exc))
    file = url.split(":///", 1)[1] if url.startswith("sqlite:///") else None
    if file and not Path(file).is_file():  # never create an empty store just to report on it
        _fail(f"{redact_url(url)}: no feedback database there (run from the folder "
              "`cds serve` ran in, or give --database-url / CDS_DATABASE_URL)")
    try:
        rows: list[dict[str, Any]] = open_store(url, create=False).report()
    except (StoreUnavailable, ValueError) as exc:  # unreachable, no such database, bad URL
        _fail(f"{redact_url(url)}: {exc}")
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(title="Feedback by card type")
    for col in ("card type", "feedback", "accepted", "overridden", "acceptance"):
        table.add_column(col)
    for r in rows:
        total = int(r["accepted"]) + int(r["overridden"])
        rate = f"{100 * int(r['accepted']) / total:.0f}%" if total else "-"
        table.add_row(str(r["card_type"]), str(total), str(r["accepted"]),
                      str(r["overridden"]), rate)
    console.print(table)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

