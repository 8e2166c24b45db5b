"""Settings from the environment (prefix CDS_), with defaults that run out of the box.

Every value is checked when it is read, so that a misconfiguration is reported as one line
naming the setting (`load_settings`), never as a traceback from deep inside a worker.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

ENV_PREFIX = "CDS_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A misconfiguration, phrased for the person who set it: one line, naming the setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None)

    host: str = Field(default="127.0.0.1", min_length=1, description="interface to listen on")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port")
    workers: int = Field(default=1, ge=1, le=256, description="worker processes on this machine")
    # feedback store: a SQLite file by default, PostgreSQL when a postgresql:// URL is given
    database_url: str = Field(
        default=f"sqlite:///{Path.cwd() / 'cds-feedback.sqlite3'}",
        description="feedback store: sqlite:///path or postgresql://user:password@host/db")
    issued_retention_days: int = Field(default=90, ge=1, description="days issued-card rows "
                                       "are kept (unless feedback refers to them)")
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1,
                                description="largest request body accepted (bytes)")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="debug, info, warning, error or critical")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text, or json: one JSON object per line")
    # Browser-based CDS clients (such as the CDS Hooks sandbox) need CORS; '*' or a list
    cors_origins: list[str] = Field(default=["*"], description="CORS origins, a JSON list")
    # trusted CDS clients (JSON or TOML, see README "Security and trust"); none: dev mode
    trust_file: str | None = Field(default=None, description="trusted CDS clients (TOML or JSON)")
    # answer every hook call, even for a chart with no current thigh, leg or back complaint
    # (demos); by default the service is quiet unless the patient presents or a red flag fires
    always_answer: bool = Field(default=False, description="answer every hook call, even "
                                "without a thigh, leg or back complaint (demos)")
    # the card view at /view: always in development mode, in trust mode only when enabled
    view_enabled: bool = Field(default=False, description="serve the card view at /view in "
                               "trust mode too (always on in development mode)")
    # where EHRs reach the service (for SMART app links on cards); the request URL if unset
    public_url: str | None = Field(default=None, description="where EHRs reach the service "
                                   "(SMART app links on cards); the request URL if unset")
    # the OAuth client id the EHR registered the SMART app (/smart/launch.html) under
    smart_client_id: str = Field(default="thigh-pain-wells", description="OAuth client id "
                                 "of the Wells SMART app (/smart/launch.html)")
    docs: bool = Field(default=True, description="serve /docs, /redoc and /openapi.json")
    cards_dir: str | None = Field(default=None, description="another copy of the clinical content")
    examples_dir: str | None = Field(default=None, description="the scenarios the card view "
                                     "lists (a folder with bundles/)")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("use sqlite:///path/to/file.sqlite3 or "
                             "postgresql://user:password@host:5432/database")
        if value.startswith("sqlite://") and value.removeprefix("sqlite:///").strip() == "":
            raise ValueError("sqlite:/// needs a file path")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname
                                  or parts.path not in ("", "/")):
                raise ValueError(f"{origin!r} is not an origin: use \"*\" or scheme://host"
                                 "[:port], such as https://sandbox.cds-hooks.org")
        return [origin.rstrip("/") for origin in value]

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("use the http(s) URL EHRs reach the service at, such as "
                                 "https://cds.hospital.example/thigh")
        return value

    @field_validator("cards_dir")
    @classmethod
    def _cards_exist(cls, value: str | None) -> str | None:
        if value and not (Path(value) / "concepts.toml").is_file():
            raise ValueError("no concepts.toml there: not a copy of cards/")
        return value


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def setting_label(field: str, overrides: Mapping[str, Any] | None = None) -> str:
    """How the person set it: `--port` when given on the command line, else CDS_PORT."""
    if overrides and overrides.get(field) is not None:
        return f"--{field.replace('_', '-')}"
    return env_name(field)


def known_variables() -> set[str]:
    """Every environment variable the service reads."""
    return {env_name(name) for name in Settings.model_fields}


def redact_url(url: str) -> str:
    """A database URL fit for a log or an error message: the password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


def _shown(field: str, value: Any) -> str:
    text = redact_url(value) if field == "database_url" and isinstance(value, str) else value
    return json.dumps(text) if isinstance(text, str) else str(text)


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    known = known_variables()
    problems = []
    for name in sorted(n for n in environ if n.upper().startswith(ENV_PREFIX)):
        if name.upper() not in known:
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name} is not a setting{hint}")
    return problems


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment and command-line overrides, or ConfigError (one line).

    `overrides` are values given as command-line options (`--port`), named as such."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    problems = _unknown_variables(os.environ if environ is None else environ)
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = setting_label(field, overrides)
            message = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}={_shown(field, err.get('input'))}: {message}")
        raise ConfigError("; ".join(lines)) from None
    except SettingsError as exc:  # a value pydantic-settings could not decode (JSON lists)
        field = next((f for f in Settings.model_fields if f'"{f}"' in str(exc)), "?")
        raise ConfigError(f"{env_name(field)}: not valid JSON (use a JSON list such as "
                          f'["https://ehr.example"])') from None


def get_settings() -> Settings:
    return Settings()
