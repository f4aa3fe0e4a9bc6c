"""Every dashboard type-checked against Grafana's own published types (npm @grafana/schema)
with `tsc --strict`, and every unit against Grafana's own list (npm @grafana/data): the dashboard as a `Dashboard`, each panel with its plugin's `Options`
and `FieldConfig` (tests/chart/node/dashboard-types.ts), so wrong enum values, wrong field
types and unknown keys are compile errors. A negative control injects each kind of error.

Findings in today's dashboards are listed, exactly, in dashboard-type-findings.txt (see its
comment): a new finding fails, and so does a listed one that is gone."""

from __future__ import annotations

import copy
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, dashboard_files, run

NODE = ROOT / "tests" / "chart" / "node"
FINDINGS = ROOT / "tests" / "chart" / "dashboard-type-findings.txt"
TYPED = {"timeseries", "stat", "table", "heatmap", "state-timeline"}
ERROR = re.compile(r"^(?P<file>[^()\s]+)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<msg>.*)$")


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row's


def sources(name: str, dashboard: dict) -> dict[str, tuple[str, str]]:
    """TypeScript file -> (its text, what it checks)."""
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower())
    out = {
        f"{stem}__dashboard.ts": (
            'import type { DashboardJson } from "../dashboard-types";\n'
            f"export const dashboard: DashboardJson = {json.dumps(dashboard, indent=1)};\n",
            f"{name}: dashboard",
        )
    }
    for i, panel in enumerate(panels(dashboard)):
        kind = panel.get("type")
        if kind == "row":
            continue
        assert kind in TYPED, f"{name}: panel type {kind!r} has no types here: add it to dashboard-types.ts"
        out[f"{stem}__panel{i:02d}.ts"] = (
            'import type { Panels } from "../dashboard-types";\n'
            f"export const panel: Panels[{json.dumps(kind)}] = {json.dumps(panel, indent=1)};\n",
            f"{name}: panel {panel.get('title', i)!r} ({kind})",
        )
    return out


def typecheck(dashboards: dict[str, dict]) -> list[str]:
    """`tsc --strict` over the dashboards; one finding per error: '<what>: TSnnnn <message>'."""
    if not (NODE / "node_modules" / "@grafana" / "schema").is_dir():
        pytest.fail("tests/chart/node has no node_modules: run the tests with `make test-chart` (npm ci)")
    work = NODE / f".generated-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        what = {}
        for name, dashboard in dashboards.items():
            for file, (text, label) in sources(name, dashboard).items():
                (work / file).write_text(text)
                what[file] = label
        (work / "tsconfig.json").write_text(json.dumps({"extends": "../tsconfig.json", "include": ["*.ts"]}))
        result = run(str(NODE / "node_modules" / ".bin" / "tsc"), "-p", str(work / "tsconfig.json"), "--pretty", "false")
        findings = []
        for line in result.stdout.splitlines():
            m = ERROR.match(line)
            if m:
                label = what.get(Path(m["file"]).name, m["file"])
                # The start of the message: enough to tell findings apart, short of the
                # long type texts that follow.
                findings.append(f"{label}: {m['code']} {m['msg'][:140]}")
        if result.returncode != 0:
            assert findings, result.stdout + result.stderr
        return sorted(set(findings))
    finally:
        shutil.rmtree(work)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def allowed() -> set[str]:
    return {
        line for line in FINDINGS.read_text().splitlines() if line.strip() and not line.startswith("#")
    }


def test_dashboards_match_grafana_types() -> None:
    found = set(typecheck({f.name: load(f) for f in dashboard_files()}))
    listed = {line for line in allowed() if ": unit " not in line}
    new, gone = found - listed, listed - found
    assert not new, "new type errors in grafana/dashboards:\n" + "\n".join(sorted(new))
    assert not gone, f"fixed, remove from {FINDINGS.name}:\n" + "\n".join(sorted(gone))


def first_panel(kind: str) -> tuple[str, dict]:
    for f in dashboard_files():
        for panel in panels(load(f)):
            if panel.get("type") == kind:
                return f.name, copy.deepcopy(panel)
    raise AssertionError(f"no {kind} panel")


def test_tsc_reports_injected_errors() -> None:
    """Negative control: a wrong enum, a wrong type, an unknown key, a bad custom option,
    each reported on the panel it is in."""
    _, panel = first_panel("timeseries")
    bad_enum = copy.deepcopy(panel)
    bad_enum.setdefault("options", {}).setdefault("legend", {})["displayMode"] = "sideways"
    bad_type = copy.deepcopy(panel)
    bad_type["gridPos"] = {"h": "8", "w": 12, "x": 0, "y": 0}
    unknown = copy.deepcopy(panel)
    unknown.setdefault("options", {})["legendd"] = {}
    custom = copy.deepcopy(panel)
    custom.setdefault("fieldConfig", {"defaults": {}, "overrides": []})["defaults"]["custom"] = {"drawStyle": "zigzag"}
    for title, bad in (("enum", bad_enum), ("type", bad_type), ("unknown", unknown), ("custom", custom)):
        bad["title"] = title
    dashboard = {"title": "negative control", "panels": [bad_enum, bad_type, unknown, custom], "schemaVersion": 41}
    findings = typecheck({"bad.json": dashboard})
    for needle in ("sideways", "string", "legendd", "zigzag"):
        hits = [f for f in findings if f.startswith("bad.json: panel") and needle in f]
        assert hits, f"{needle}: {findings}"
    for title in ("enum", "type", "unknown", "custom"):
        assert [f for f in findings if f.startswith(f"bad.json: panel '{title}'")], (title, findings)


def units(dashboard: dict) -> set[str]:
    """Every unit a dashboard sets: field defaults and overrides."""
    out = set()
    for panel in panels(dashboard):
        field_config = panel.get("fieldConfig", {})
        if field_config.get("defaults", {}).get("unit"):
            out.add(field_config["defaults"]["unit"])
        for override in field_config.get("overrides", []):
            for prop in override.get("properties", []):
                if prop.get("id") == "unit" and prop.get("value"):
                    out.add(prop["value"])
    return out


def unknown_units(candidates: set[str]) -> list[str]:
    """The units Grafana's own list (@grafana/data's value formats) does not have."""
    result = run("node", str(NODE / "units.cjs"), *sorted(candidates))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_dashboard_units_are_grafanas() -> None:
    found = set()
    for f in dashboard_files():
        used = units(load(f))
        found |= {f"{f.name}: unit {u}" for u in (unknown_units(used) if used else [])}
    listed = {line for line in allowed() if ": unit " in line}
    new, gone = found - listed, listed - found
    assert not new, "units Grafana does not know:\n" + "\n".join(sorted(new))
    assert not gone, f"fixed, remove from {FINDINGS.name}:\n" + "\n".join(sorted(gone))
    assert any(units(load(f)) for f in dashboard_files()), "no units found: the check would pass on nothing"


def test_unknown_units_are_reported() -> None:
    """Negative control: made-up units and a misspelt one are reported, real ones are not."""
    assert unknown_units({"s", "reqps", "percentunit", "bytes", "suffix: jobs", "requests/s", "secs", "reqsp"}) == [
        "reqsp",
        "requests/s",
        "secs",
    ]
