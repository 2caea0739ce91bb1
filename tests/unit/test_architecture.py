"""House rules that keep the shape: pure domains, nothing running at import."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import services

SERVICES = Path(services.__file__).parent
FORBIDDEN_IMPORTS = {
    "fastapi",
    "starlette",
    "faststream",
    "nats",
    "twilio",
    "psycopg",
    "psycopg2",
    "sqlite3",
    "sqlalchemy",
    "httpx",
    "requests",
    "aiohttp",
    "uvicorn",
    "geopy",
    "os",
    "subprocess",
    "socket",
    "time",
}
ALLOWED_EVENTSOURCING = {"eventsourcing.domain"}
WALL_CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
DOMAIN_MODULES = sorted(SERVICES.glob("*/domain/*.py"))


def test_there_are_domain_modules_to_check() -> None:
    assert {p.parent.parent.name for p in DOMAIN_MODULES} >= {
        "intake_gateway",
        "dispatcher",
        "notifier",
        "projections",
    }


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


# shared modules a domain may use: the event models, the GSM-7 alphabet (pure arithmetic), and the triage rules
# (pure; shared by intake and the re-assessment on scene)
PURE_SHARED = ("services.contract.events", "services.contract.gsm7", "services.contract.triage")


@pytest.mark.parametrize("path", DOMAIN_MODULES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_domain_imports_only_pure_things(path: Path) -> None:
    for name in imported_modules(ast.parse(path.read_text())):
        root = name.split(".")[0]
        assert root not in FORBIDDEN_IMPORTS, f"{path} imports {name}"
        if root == "eventsourcing":
            assert name in ALLOWED_EVENTSOURCING, f"{path} imports {name}"
        if root == "services":
            assert name.startswith(PURE_SHARED + (f"services.{path.parent.parent.name}.domain",)), (
                f"{path} imports {name}"
            )


@pytest.mark.parametrize("path", DOMAIN_MODULES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_domain_never_reads_the_wall_clock(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in WALL_CLOCK_CALLS, f"{path}:{node.lineno} calls .{node.func.attr}()"


def test_the_architecture_check_catches_a_violation(tmp_path: Path) -> None:
    bad = ast.parse("import nats\nfrom datetime import datetime\nx = datetime.now()\n")
    assert "nats" in imported_modules(bad)
    calls = [n.func.attr for n in ast.walk(bad) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "now" in calls


def all_service_modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.walk_packages([str(SERVICES)], prefix="services.") if not m.name.endswith("__main__")
    )


def test_importing_any_module_starts_nothing() -> None:
    """No broker, web app, store or client is built at import: wiring happens in bootstrap.build()."""
    from eventsourcing.application import Application
    from fastapi import FastAPI
    from faststream.nats import NatsBroker

    modules = all_service_modules()
    assert len(modules) > 20
    for name in modules:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            assert not isinstance(value, FastAPI | NatsBroker | Application), f"{name}.{attr} is built at import"
