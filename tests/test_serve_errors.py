"""Every misconfiguration of `cds serve` is one line naming the setting, exit code 2, and
nothing claims readiness first.

One case of each kind runs as a real `cds serve` process (all started together; each exits
within a second or two); the variants of the same code path run in process (CliRunner)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cds.cli import app as cli
from tests.net import free_port

CDS = str(Path(sys.executable).with_name("cds"))
Case = tuple[list[str], dict[str, str], list[str]]  # args, environment, words in the line


def trust_files(tmp: Path) -> dict[str, Path]:
    files = {
        "toml-syntax": '[[issuers]]\niss = "https://ehr.example\n',
        "json-syntax": '{"issuers": [{"iss": "https://ehr.example",}]}',
        "unknown-key": '[[issuers]]\niss = "https://ehr.example"\njwks = "https://x"\n',
        "no-keys": 'public_url = "https://cds.example"\n[[issuers]]\niss = "https://ehr.example"\n',
        "jwks-gone": f'public_url = "https://cds.example"\n[[issuers]]\niss = "https://ehr.example"\n'
                     f'jwks_file = "{tmp}/gone"\n',
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp / (name + (".json" if "json" in name else ".toml"))
        paths[name].write_text(text)
    return paths


def subprocess_cases(tmp: Path, busy_port: int) -> dict[str, Case]:
    trust = trust_files(tmp)
    return {
        "port-not-a-number": ([], {"CDS_PORT": "eighty"}, ["CDS_PORT", "integer"]),
        "port-out-of-range": (["--port", "70000"], {}, ["--port", "65535"]),
        "host-not-here": (["--host", "203.0.113.7"], {}, ["--host", "not an address of"]),
        "workers-zero": ([], {"CDS_WORKERS": "0"}, ["CDS_WORKERS", "greater than or equal"]),
        "log-level": ([], {"CDS_LOG_LEVEL": "loud"}, ["CDS_LOG_LEVEL", "'debug'"]),
        "cors-not-json": ([], {"CDS_CORS_ORIGINS": "https://a"}, ["CDS_CORS_ORIGINS", "JSON"]),
        "typo-in-a-name": ([], {"CDS_PROT": "9000"}, ["CDS_PROT", "did you mean CDS_PORT"]),
        "trust-toml-syntax": ([], {"CDS_TRUST_FILE": str(trust["toml-syntax"])},
                              ["CDS_TRUST_FILE", "TOML", "line 2"]),
        "trust-issuer-without-keys": ([], {"CDS_TRUST_FILE": str(trust["no-keys"])},
                                      ["CDS_TRUST_FILE", "jwks_url or jwks_file"]),
        "database-unreachable": (
            [], {"CDS_DATABASE_URL": f"postgresql://cds:s3cret@127.0.0.1:{free_port()}/cds"},
            ["CDS_DATABASE_URL", "cds:***@", "cannot open"]),
        "port-in-use": (["--port", str(busy_port)], {}, ["--port", "address already in use"]),
    }


def in_process_cases(tmp: Path) -> dict[str, Case]:
    trust = trust_files(tmp)
    (tmp / "a-file").write_text("")
    (tmp / "cards").mkdir()
    (tmp / "cards" / "concepts.toml").write_text("[systems]\nsnomed = 'http://snomed.info/sct'\n")
    return {
        "cards-incomplete": ([], {"CDS_CARDS_DIR": str(tmp / "cards")},
                             ["CDS_CARDS_DIR", "does not load"]),
        "log-level-option": (["--log-level", "chatty"], {}, ["--log-level", "'warning'"]),
        "log-format": ([], {"CDS_LOG_FORMAT": "xml"}, ["CDS_LOG_FORMAT", "'json'"]),
        "body-limit": ([], {"CDS_MAX_BODY_BYTES": "lots"}, ["CDS_MAX_BODY_BYTES", "integer"]),
        "docs-not-bool": ([], {"CDS_DOCS": "perhaps"}, ["CDS_DOCS", "boolean"]),
        "cors-not-an-origin": ([], {"CDS_CORS_ORIGINS": '["ehr.example"]'},
                               ["CDS_CORS_ORIGINS", "'ehr.example' is not an origin"]),
        "public-url": ([], {"CDS_PUBLIC_URL": "cds.hospital.example"},
                       ["CDS_PUBLIC_URL", "http(s) URL"]),
        "cards-dir": ([], {"CDS_CARDS_DIR": "/nonexistent"}, ["CDS_CARDS_DIR", "concepts"]),
        "database-scheme": ([], {"CDS_DATABASE_URL": "mysql://db/cds"},
                            ["CDS_DATABASE_URL", "postgresql://"]),
        "database-folder-is-a-file": (
            [], {"CDS_DATABASE_URL": f"sqlite:///{tmp}/a-file/feedback.sqlite3"},
            ["CDS_DATABASE_URL", "not a folder"]),
        "trust-file-missing": (["--trust-file", f"{tmp}/none.toml"], {},
                               ["--trust-file", "no such file"]),
        "trust-json-syntax": ([], {"CDS_TRUST_FILE": str(trust["json-syntax"])},
                              ["CDS_TRUST_FILE", "JSON", "line 1"]),
        "trust-unknown-key": ([], {"CDS_TRUST_FILE": str(trust["unknown-key"])},
                              ["CDS_TRUST_FILE", "issuers.0.jwks", "not permitted"]),
        "trust-jwks-file-missing": ([], {"CDS_TRUST_FILE": str(trust["jwks-gone"])},
                                    ["CDS_TRUST_FILE", "gone", "No such file"]),
    }


SUBPROCESS_NAMES = [
    "port-not-a-number", "port-out-of-range", "host-not-here", "workers-zero", "log-level",
    "cors-not-json", "typo-in-a-name", "trust-toml-syntax", "trust-issuer-without-keys",
    "database-unreachable", "port-in-use"]
IN_PROCESS_NAMES = [
    "log-level-option", "log-format", "body-limit", "docs-not-bool", "cors-not-an-origin",
    "public-url", "cards-dir",
    "cards-incomplete",
    "database-scheme", "database-folder-is-a-file", "trust-file-missing", "trust-json-syntax",
    "trust-unknown-key", "trust-jwks-file-missing"]


def base_environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    return env | {"CDS_DATABASE_URL": f"sqlite:///{tmp}/feedback.sqlite3",
                  "CDS_PORT": str(free_port())}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, str,
                                                                                  list[str]]]]:
    tmp = tmp_path_factory.mktemp("serve-errors")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cases = subprocess_cases(tmp, busy.getsockname()[1])
        procs = {name: subprocess.Popen([CDS, "serve", *args], cwd=tmp, text=True,
                                        env=base_environment(tmp) | env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for name, (args, env, _) in cases.items()}
        results = {}
        for name, proc in procs.items():
            try:
                output, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
            results[name] = (proc.returncode, output, cases[name][2])
    yield results


def check_one_line(code: int, output: str, words: list[str]) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {output}"
    assert len(lines) == 1, output
    assert "startup complete" not in output and "Uvicorn running" not in output
    for word in words:
        assert word in lines[0], lines[0]
    assert "s3cret" not in output


@pytest.mark.parametrize("case", SUBPROCESS_NAMES)
def test_cds_serve_process_reports_misconfiguration_in_one_line(outcomes, case: str) -> None:
    check_one_line(*outcomes[case])


@pytest.mark.parametrize("case", IN_PROCESS_NAMES)
def test_cds_serve_reports_misconfiguration_in_one_line(tmp_path: Path, monkeypatch,
                                                        case: str) -> None:
    args, env, words = in_process_cases(tmp_path)[case]
    for name in [n for n in os.environ if n.startswith("CDS_")]:
        monkeypatch.delenv(name)
    for name, value in (base_environment(tmp_path) | env).items():
        if name.startswith("CDS_"):
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", *args])
    check_one_line(result.exit_code, result.output, words)


def test_feedback_report_on_a_missing_database_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "cds-feedback.sqlite3"
    result = CliRunner().invoke(cli, ["feedback", "--database-url", f"sqlite:///{missing}"])
    check_one_line(result.exit_code, result.output, ["no feedback database there"])
    assert not missing.exists() and not missing.parent.exists()
