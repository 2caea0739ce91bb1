"""Layering is checked by a tool: import-linter's contracts in `.importlinter` run in `make test`.

The contracts: a domain imports no I/O, framework, runtime or other layer of its service; services never import
each other (they meet on the stream); the shared packages (runtime, contract) import no service; a service's use
cases import no concrete adapter (bootstrap wires them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(config: Path, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = f"{extra_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run(
        [str(LINT_IMPORTS), str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT / ".importlinter", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def fake_service(root: Path, domain_source: str) -> None:
    package = root / "fakeservices"
    (package / "dispatcher" / "domain").mkdir(parents=True)
    for folder in (package, package / "dispatcher"):
        (folder / "__init__.py").write_text("")
    (package / "dispatcher" / "domain" / "__init__.py").write_text(domain_source)


CONTRACT = """[importlinter]
root_package = fakeservices
include_external_packages = True

[importlinter:contract:domain-is-pure]
name = a domain imports no I/O
type = forbidden
source_modules =
    fakeservices.dispatcher.domain
forbidden_modules =
    nats
"""


def test_a_forbidden_import_fails_the_check(tmp_path: Path) -> None:
    config = tmp_path / ".importlinter"
    config.write_text(CONTRACT)
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    fake_service(clean, "import dataclasses\n")
    fake_service(dirty, "import nats\n")
    assert lint_imports(config, clean, clean).returncode == 0
    broken = lint_imports(config, dirty, dirty)
    assert broken.returncode != 0
    assert "fakeservices.dispatcher.domain -> nats" in broken.stdout.replace("\n", " ")
