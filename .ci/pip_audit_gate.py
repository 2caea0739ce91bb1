"""Audit the installed environment with pip-audit (PyPI's vulnerability data) and decide what CI does.

- a known vulnerability in any installed package (not on the ignore list below): exit 1, CI fails;
- the vulnerability service could not be asked (network error, or it knew none of our packages, as when only a
  mirror of PyPI is reachable): a loud warning, exit 0. An audit that could not run is reported, not hidden, but
  it does not block a release that nothing is known to be wrong with; the next run with the service reachable
  audits again.

Usage: python .ci/pip_audit_gate.py  (pip-audit must be installed in the same environment; `make audit` does it).
"""

from __future__ import annotations

import json
import subprocess
import sys

# Vulnerabilities accepted for now, each with why. pip-audit's --ignore-vuln takes these ids (PYSEC-/GHSA-/CVE-).
IGNORED: dict[str, str] = {}


def main() -> int:
    command = [sys.executable, "-m", "pip_audit", "-s", "pypi", "-f", "json", "--progress-spinner", "off"]
    command += [arg for vuln in IGNORED for arg in ("--ignore-vuln", vuln)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        return warn("pip-audit did not finish within 15 minutes")
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return warn(f"pip-audit failed before reporting (exit {run.returncode}): {last}")
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
            print(f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in: {fixes})")
    if vulnerable:
        print(f"pip-audit: {len(vulnerable)} vulnerable package(s); upgrade them, or add the id to IGNORED with why")
        return 1
    ours = {"crisis-dispatch"}  # the project itself is not on PyPI
    unaudited = [d for d in skipped if d["name"] not in ours]
    if dependencies and not audited:
        return warn(
            f"the vulnerability service answered for none of the {len(unaudited)} installed packages "
            f"(e.g. {unaudited[0]['skip_reason'] if unaudited else 'none'}); nothing was audited"
        )
    if unaudited:
        names = ", ".join(d["name"] for d in unaudited)
        print(f"pip-audit: warning: {len(unaudited)} package(s) could not be audited: {names}")
    print(f"pip-audit: {len(audited)} package(s) audited, no known vulnerabilities")
    return 0


def warn(reason: str) -> int:
    banner = "!" * 100
    print(
        f"{banner}\nWARNING: pip-audit could not check for vulnerabilities: {reason}.\n"
        f"CI continues (see .ci/pip_audit_gate.py); run `make audit` where PyPI's JSON API is reachable.\n{banner}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
