"""Settings from the environment (prefix CDS_), with defaults that run out of the box."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", env_file=None)

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # feedback store: a SQLite file by default, PostgreSQL when a postgresql:// URL is given
    database_url: str = f"sqlite:///{Path.cwd() / 'cds-feedback.sqlite3'}"
    max_body_bytes: int = 20 * 1024 * 1024
    log_level: str = "info"
    # Browser-based CDS clients (such as the CDS Hooks sandbox) need CORS; '*' or a list
    cors_origins: list[str] = ["*"]
    # trusted CDS clients (JSON or TOML, see README "Security and trust"); none: dev mode
    trust_file: str | None = None
    # answer every hook call, even for a chart with no current thigh, leg or back complaint
    # (demos); by default the service is quiet unless the patient presents or a red flag fires
    always_answer: bool = False
    # the card view at /view: always in development mode, in trust mode only when enabled
    view_enabled: bool = False
    # where EHRs reach the service (for SMART app links on cards); the request URL if unset
    public_url: str | None = None
    # the OAuth client id the EHR registered the SMART app (/smart/launch.html) under
    smart_client_id: str = "thigh-pain-wells"


def get_settings() -> Settings:
    return Settings()
