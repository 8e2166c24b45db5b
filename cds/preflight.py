"""Check what `cds serve` was given before anything claims to be ready.

Each check turns a misconfiguration into a ConfigError whose message is one line naming the
setting and the problem (the trust file's syntax error with its line, a database that cannot
be opened, an issuer without keys), instead of a traceback from inside a worker.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from cds.config import ConfigError, Settings, env_name, redact_url

if TYPE_CHECKING:
    from cds.auth import TrustConfig


def _trust_problem(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied)"
    if isinstance(exc, UnicodeDecodeError):
        return "is not UTF-8 text"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"TOML syntax error: {exc}"
    if isinstance(exc, json.JSONDecodeError):
        return f"JSON syntax error: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "file"
            parts.append(f"{where}: {err['msg']}")
        return "; ".join(parts)
    return f"{exc.__class__.__name__}: {exc}"


def _http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _issuer_problems(trust: TrustConfig) -> list[str]:
    problems = []
    if trust.public_url is not None and not _http_url(trust.public_url):
        problems.append(f"public_url {trust.public_url!r} is not an http(s) URL")
    for n, issuer in enumerate(trust.issuers):
        name = f"issuers[{n}] ({issuer.iss})"
        if not issuer.jwks_url and not issuer.jwks_file:
            problems.append(f"{name}: give jwks_url or jwks_file")
        if issuer.jwks_url and not _http_url(issuer.jwks_url):
            problems.append(f"{name}: jwks_url {issuer.jwks_url!r} is not an http(s) URL")
        problems += [f"{name}: fhir_servers entry {url!r} is not an http(s) URL"
                     for url in issuer.fhir_servers if not _http_url(url)]
        if issuer.jwks_file:
            problem = _jwks_file_problem(Path(issuer.jwks_file))
            if problem:
                problems.append(f"{name}: jwks_file {issuer.jwks_file}: {problem}")
    return problems


def _jwks_file_problem(path: Path) -> str | None:
    import jwt

    try:
        data: Any = json.loads(path.read_text())
        keys = jwt.PyJWKSet.from_dict(data).keys
    except OSError as exc:
        return exc.strerror or str(exc)
    except json.JSONDecodeError as exc:
        return f"JSON syntax error: {exc.msg} (line {exc.lineno})"
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
        return f"not a usable JWKS: {exc}"
    if not any(key.key_id for key in keys):
        return "no key has a kid"
    return None


def check_trust_file(path: str | None, label: str = "CDS_TRUST_FILE") -> None:
    """The trust file parses, follows the schema, and every issuer has usable keys."""
    if not path:
        return
    where = f"{label}={path}"
    from cds.auth import load_trust  # JWT and crypto libraries: only when there is a file

    try:
        trust = load_trust(path)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: {_trust_problem(exc)}") from None
    if trust.development:
        raise ConfigError(f"{where}: lists no issuers (leave the setting out for development "
                          "mode)")
    problems = _issuer_problems(trust)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


def check_database(url: str, label: str = "CDS_DATABASE_URL") -> None:
    """The feedback store opens (and answers `ping()` where the store has one)."""
    where = f"{label}={redact_url(url)}"
    if url.startswith("sqlite:"):
        folder = Path(url.split(":///", 1)[-1]).expanduser().parent
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{where}: {folder} is not a folder")
    from cds.feedback import open_store  # the store module pulls in the wire models

    try:
        store: Any = open_store(url)
        if hasattr(store, "ping"):
            store.ping()
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{where}: PostgreSQL needs the postgres extra "
                          f"(pip install 'thigh-pain-cds[postgres]'): {exc}") from None
    except Exception as exc:
        detail = " ".join(str(exc).split()) or exc.__class__.__name__
        raise ConfigError(f"{where}: cannot open the feedback store: "
                          f"{redact_url(detail)}") from None
    close = getattr(store, "close", None)
    if callable(close):
        close()


def check_cards(path: str | None, label: str = "CDS_CARDS_DIR") -> None:
    """Another copy of the clinical content loads and passes its own cross-checks."""
    if not path:
        return  # the copy shipped in the package is checked by the test suite
    from cds.content import load_content

    try:
        load_content(Path(path))
    except Exception as exc:
        first = " ".join(str(exc).split())[:300] or exc.__class__.__name__
        raise ConfigError(f"{label}={path}: the clinical content does not load: "
                          f"{first}") from None


def preflight(settings: Settings, label: Callable[[str], str] = env_name) -> None:
    """Everything a worker would need, checked once, before the port is opened.

    `label` names a setting the way the person gave it (see config.setting_label)."""
    check_cards(settings.cards_dir, label("cards_dir"))
    check_trust_file(settings.trust_file, label("trust_file"))
    check_database(settings.database_url, label("database_url"))
