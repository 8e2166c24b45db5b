"""`cds replay`: run bundles or hook requests through the service and show the cards.

In process by default (the same pipeline as the HTTP service), or against a running service
with `--url`. A folder is replayed file by file with a progress bar and a summary table.
The exit code is non-zero when any input is invalid or the service answers with an error.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from pydantic import ValidationError
from rich import box
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from cds.bundle import (
    BundleError,
    hook_request_from_bundle,
    last_encounter_start,
    resources_of,
)
from cds.fhir_server import serve_resources
from cds.hooks import HookRequest, HookResponse
from cds.prefetch import PreconditionFailed, prefetch_keys
from cds.service import SERVICES, CallStats, ThighPainService, UnknownService, WrongHook

STYLE = {"critical": "bold red", "warning": "yellow", "info": "blue"}


class ReplayError(Exception):
    """Nothing could be replayed (no input files, unreadable stdin)."""


@dataclass
class ReplayOptions:
    url: str | None = None
    service_id: str = "thigh-pain"
    as_of: datetime | None = None
    as_of_last_visit: bool = False  # each bundle as of its latest Encounter's start
    fetch: bool = False
    as_json: bool = False
    timeout: float = 30.0
    jwt_key: Path | None = None  # PEM private key to sign CDS Hooks client JWTs with --url
    jwt_issuer: str | None = None
    jwt_kid: str | None = None
    strict: bool = False  # also validate every resource fully with fhir.resources


@dataclass
class Outcome:
    name: str
    ok: bool
    response: dict[str, Any] | None = None
    error: str | None = None
    millis: float = 0.0
    stats: CallStats | None = None  # in process only
    not_sent: str = ""  # what of a bundle an EHR would not send for our prefetch
    invalid: list[str] = field(default_factory=list)  # --strict: resources fhir.resources refuses

    def count(self, indicator: str) -> int:
        cards = (self.response or {}).get("cards", [])
        return sum(1 for c in cards if c.get("indicator") == indicator)


def collect_inputs(paths: list[str]) -> list[tuple[str, Any]]:
    """(name, source) pairs; source is a Path or the text read from stdin."""
    out: list[tuple[str, Any]] = []
    for raw in paths:
        if raw == "-":
            out.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            out += [(str(p), p) for p in sorted(path.rglob("*.json"))]
        elif path.exists():
            out.append((str(path), path))
        else:
            raise ReplayError(f"no such file or folder: {raw}")
    if not out:
        raise ReplayError("no JSON files to replay")
    return out


def _load(source: Any) -> Any:
    text = source if isinstance(source, str) else source.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"not valid JSON: {exc}") from exc


class Replayer:
    def __init__(self, options: ReplayOptions) -> None:
        self.options = options
        self.service = ThighPainService() if options.url is None else None
        self.http = requests.Session()
        self.last_stats: CallStats | None = None
        self.last_not_sent = ""
        self._as_of = options.as_of

    def _content(self) -> Any:
        from cds.content import default_content

        return self.service.content if self.service else default_content()

    def one(self, name: str, source: Any) -> Outcome:
        started = time.perf_counter()
        self.last_stats, self.last_not_sent = None, ""
        self._as_of = self.options.as_of
        invalid: list[str] = []
        try:
            document = _load(source)
            if self.options.strict and isinstance(document, dict):
                invalid = _strict(document)
            if isinstance(document, dict) and document.get("resourceType") == "Bundle":
                response = self._replay_bundle(document)
            elif isinstance(document, dict) and "hookInstance" in document:
                response = self._call(document)
            else:
                raise BundleError("neither a FHIR Bundle nor a CDS Hooks request")
        except (BundleError, ValidationError, WrongHook, UnknownService,
                PreconditionFailed) as exc:
            return Outcome(name, False, error=_short(exc),
                           millis=(time.perf_counter() - started) * 1000)
        except requests.RequestException as exc:
            return Outcome(name, False, error=f"service unreachable: {exc}",
                           millis=(time.perf_counter() - started) * 1000)
        except _ServiceError as exc:
            return Outcome(name, False, error=str(exc),
                           millis=(time.perf_counter() - started) * 1000)
        return Outcome(name, True, response, millis=(time.perf_counter() - started) * 1000,
                       stats=self.last_stats, not_sent=self.last_not_sent, invalid=invalid)

    def _replay_bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        hook = SERVICES.get(self.options.service_id, "patient-view")
        asked = {spec.kind for spec in prefetch_keys(self._content())}
        left = Counter(str(r.get("resourceType")) for r in resources_of(bundle)
                       if r.get("resourceType") not in asked)
        self.last_not_sent = ", ".join(f"{kind} {n}" for kind, n in left.most_common())
        if self.options.as_of_last_visit:
            self._as_of = last_encounter_start(bundle) or self.options.as_of
        if not self.options.fetch:
            return self._call(hook_request_from_bundle(bundle, self._content(), hook=hook))
        with serve_resources(resources_of(bundle), page_size=50) as base:
            request = hook_request_from_bundle(bundle, self._content(), fhir_server=base,
                                               hook=hook)
            return self._call(request)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.options.url:
            url = f"{self.options.url.rstrip('/')}/cds-services/{self.options.service_id}"
            reply = self.http.post(url, json=request, timeout=self.options.timeout,
                                   headers=self._auth(url))
            if reply.status_code != 200:
                raise _ServiceError(f"service answered HTTP {reply.status_code}: "
                                    f"{reply.text[:300]}")
            body = reply.json()
            HookResponse.model_validate(body)
            return body
        assert self.service is not None
        parsed = HookRequest.model_validate(request)
        response, self.last_stats = self.service.call(self.options.service_id, parsed,
                                                      as_of=self._as_of)
        return response.wire()


    def _auth(self, audience: str) -> dict[str, str]:
        """A fresh CDS Hooks client JWT for this endpoint, when a signing key is configured."""
        opts = self.options
        if opts.jwt_key is None:
            return {}
        if not opts.jwt_issuer or not opts.jwt_kid:
            raise ReplayError("--jwt-key needs --jwt-issuer and --jwt-kid")
        import uuid

        import jwt
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(opts.jwt_key.read_bytes(), password=None)
        alg = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
        now = int(time.time())
        token = jwt.encode(
            {"iss": opts.jwt_issuer, "aud": audience, "iat": now, "exp": now + 300,
             "jti": str(uuid.uuid4())},
            key, algorithm=alg, headers={"kid": opts.jwt_kid, "typ": "JWT"})  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}


def _strict(document: dict[str, Any]) -> list[str]:
    from cds.fhir.strict import invalid_resources  # loads fhir.resources: only when asked

    try:
        return invalid_resources(document)
    except ValueError as exc:
        return [str(exc)]


class _ServiceError(Exception):
    pass


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()
        if not errs:
            return "invalid hook request"
        where = ".".join(str(p) for p in errs[0]["loc"])
        return f"invalid hook request: {where}: {errs[0]['msg']} ({len(errs)} problem(s))"
    return str(exc)


# ---------------------------------------------------------------- rendering


def render_card(card: dict[str, Any]) -> Panel:
    """A card the way an EHR shows it: the whole summary first (it can be 140 characters and
    is the one line a clinician reads), then the detail, suggestions and links."""
    indicator = card.get("indicator", "info")
    style = STYLE.get(indicator, "")
    parts: list[Any] = [Text(card["summary"], style=f"bold {style}"), Text(""),
                        Markdown(card.get("detail", ""))]
    for s in card.get("suggestions", []):
        star = " (recommended)" if s.get("isRecommended") else ""
        parts.append(Text(f"➜ {s['label']}{star}", style="green"))
    for link in card.get("links", []):
        parts.append(Text(f"🔗 {link['label']}: {link['url']}", style="dim"))
    source = card.get("source", {}).get("label", "")
    return Panel(Group(*parts), title=Text(indicator.upper(), style=style), title_align="left",
                 subtitle=f"source: {source}", subtitle_align="right", border_style=style)


def render_outcome(outcome: Outcome, console: Console, errors: Console) -> None:
    console.rule(f"[bold]{Path(outcome.name).name}")
    if not outcome.ok:
        errors.print(f"[red]✘ {outcome.name}: {outcome.error}[/red]", soft_wrap=True)
        return
    cards = (outcome.response or {}).get("cards", [])
    if not cards:
        console.print("[dim]no cards[/dim]")
    for card in cards:
        console.print(render_card(card))
    if outcome.stats is not None:
        s = outcome.stats
        console.print(f"[dim]read {s.resources} resources, used {s.used} facts, "
                      f"skipped {s.skipped} invalid or unrelated-patient resources, "
                      f"{s.millis:.0f} ms[/dim]")
        for note in s.skipped_notes[:10]:
            console.print(f"[dim]  skipped: {note}[/dim]")
    if outcome.not_sent:
        console.print(f"[dim]not requested by the service's prefetch: {outcome.not_sent}[/dim]")
    for line in outcome.invalid:
        errors.print(f"[yellow]invalid FHIR (strict): {line}[/yellow]", soft_wrap=True)


def summary_table(outcomes: list[Outcome]) -> Table:
    """One row per input, narrow enough for 80 columns; errors are printed in full apart."""
    table = Table(title="Replay summary", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    table.add_column("input", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("result", no_wrap=True, min_width=6)
    for col in ("crit", "warn", "info", "read", "used", "skip", "ms"):
        table.add_column(col, justify="right", no_wrap=True, min_width=4)
    for o in outcomes:
        s = o.stats
        table.add_row(Path(o.name).name, "[green]ok[/green]" if o.ok else "[red]error[/red]",
                      str(o.count("critical")), str(o.count("warning")), str(o.count("info")),
                      str(s.resources) if s else "-", str(s.used) if s else "-",
                      str(s.skipped) if s else "-", f"{o.millis:.0f}")
    ok = [o for o in outcomes if o.ok]
    times = sorted(o.millis for o in outcomes)
    if times:
        p50 = times[len(times) // 2]
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        table.caption = (f"{len(ok)} of {len(outcomes)} replayed; per input p50 {p50:.0f} ms, "
                         f"p95 {p95:.0f} ms")
    return table


def replay_paths(paths: list[str], options: ReplayOptions, console: Console,
                 errors: Console | None = None) -> int:
    """Replay every input; cards go to `console`, failures to `errors` (stderr).

    With --json the output always has one shape, whether one input or many, good or bad:
    a list of {"input", "ok", "error", "response"} (response: the CDS Hooks response), with
    "invalid" (resources fhir.resources refuses) under --strict; invalid resources make the
    exit code 1 under --strict."""
    errors = errors or Console(stderr=True)
    inputs = collect_inputs(paths)
    replayer = Replayer(options)
    outcomes: list[Outcome] = []
    if len(inputs) == 1:
        outcomes.append(replayer.one(*inputs[0]))
    else:
        with Progress(console=errors, transient=True, disable=options.as_json) as progress:
            task = progress.add_task("replaying", total=len(inputs))
            for name, source in inputs:
                outcomes.append(replayer.one(name, source))
                progress.advance(task)
    if options.as_json:
        data = [{"input": o.name, "ok": o.ok, "error": o.error, "response": o.response,
                 **({"invalid": o.invalid} if options.strict else {})}
                for o in outcomes]
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        for o in outcomes:
            if not o.ok:
                errors.print(f"[red]✘ {o.name}: {o.error}[/red]", soft_wrap=True)
    else:
        for outcome in outcomes:
            render_outcome(outcome, console, errors)
        if len(outcomes) > 1:
            console.print(summary_table(outcomes))
    return 0 if all(o.ok and not o.invalid for o in outcomes) else 1
