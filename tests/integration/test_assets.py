"""Front-end assets: built from npm by frontend/build.mjs, served locally, shipped in the wheel.

Nothing third-party is committed: the lock file pins the versions, the build copies them into the
package, and the wheel carries them so an installation needs no Node.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import require, require_binary

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
VENDOR = REPO / "src" / "vpsbridge" / "web" / "static" / "vendor"
EXPECTED = {
    "htmx": ("htmx.org", ["htmx.min.js"]),
    "novnc": ("@novnc/novnc", ["core/rfb.js", "vendor/pako"]),
    "uplot": ("uplot", ["uPlot.iife.min.js", "uPlot.min.css"]),
    "swagger-ui": ("swagger-ui-dist", ["swagger-ui-bundle.js", "swagger-ui.css"]),
}


def _locked_versions() -> dict[str, str]:
    lock = json.loads((FRONTEND / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2
    return {
        path.removeprefix("node_modules/"): meta["version"]
        for path, meta in lock["packages"].items()
        if path.startswith("node_modules/")
    }


def _require_node_modules() -> None:
    require_binary("node")
    require((FRONTEND / "node_modules").is_dir(), "frontend/node_modules is missing (./dev runs npm ci)")


def test_lock_file_pins_every_dependency() -> None:
    declared = json.loads((FRONTEND / "package.json").read_text())["dependencies"]
    locked = _locked_versions()
    assert set(declared) == {pkg for pkg, _files in EXPECTED.values()}
    for pkg in declared:
        assert pkg in locked, f"{pkg} is not in package-lock.json"


def test_build_copies_declared_files_and_writes_manifest(tmp_path: Path) -> None:
    _require_node_modules()
    out = tmp_path / "vendor"
    result = subprocess.run(
        ["node", str(FRONTEND / "build.mjs")],
        env={**os.environ, "VPSBRIDGE_VENDOR_DIR": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    locked = _locked_versions()
    assert set(manifest["libraries"]) == set(EXPECTED)
    for lib, (pkg, files) in EXPECTED.items():
        entry = manifest["libraries"][lib]
        assert entry["package"] == pkg
        assert entry["version"] == locked[pkg], f"{lib} built from a version the lock file does not pin"
        for name in files:
            assert (out / lib / name).exists(), f"{lib}/{name} missing"
        for name in entry["files"]:
            assert (out / lib / name).exists()


def test_build_fails_clearly_without_node_modules(tmp_path: Path) -> None:
    require_binary("node")
    copy = tmp_path / "frontend"
    copy.mkdir()
    (copy / "build.mjs").write_text((FRONTEND / "build.mjs").read_text())
    result = subprocess.run(
        ["node", str(copy / "build.mjs")],
        env={**os.environ, "VPSBRIDGE_VENDOR_DIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "npm ci" in result.stderr
    assert not (tmp_path / "out").exists()


def test_package_serves_the_built_swagger_ui() -> None:
    require((VENDOR / "manifest.json").is_file(), "front-end assets are not built (./dev builds them)")
    from vpsbridge.config import load_settings
    from vpsbridge.web.app import create_app

    app = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:"), migrate=False)
    client = TestClient(app)  # no lifespan needed: /docs and /static do not touch the database
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "/static/vendor/swagger-ui/swagger-ui.css" in page.text
    assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)[^\"']*\.(js|css)", page.text)
    for path in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "htmx/htmx.min.js"):
        response = client.get(f"/static/vendor/{path}")
        assert response.status_code == 200, path
        assert len(response.content) > 1000


def test_no_third_party_code_is_committed() -> None:
    require((REPO / ".git").exists(), "not a git checkout")
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    offenders = [f for f in files if "node_modules/" in f or f.startswith("src/vpsbridge/web/static/vendor/")]
    assert offenders == []


def test_wheel_ships_the_assets(tmp_path: Path) -> None:
    require((VENDOR / "manifest.json").is_file(), "front-end assets are not built (./dev builds them)")
    hatchling = Path(sys.executable).with_name("hatchling")
    require(hatchling.exists(), "hatchling is not installed (test extra)")
    result = subprocess.run(
        [str(hatchling), "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("vpsbridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = "vpsbridge/web/static/vendor/"
    for lib, (_pkg, files) in EXPECTED.items():
        for name in files:
            assert any(n.startswith(f"{prefix}{lib}/{name}") for n in names), f"{lib}/{name} not in wheel"
    assert f"{prefix}manifest.json" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[vpsbridge.demo]" in text
    assert "foundation = vpsbridge.services.demo:foundation" in text


@pytest.mark.parametrize("name", ["Dockerfile"])
def test_dockerfile_builds_assets_in_a_node_stage_and_downloads_no_browser(name: str) -> None:
    text = (REPO / "deploy" / name).read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2, "expected a multi-stage build"
    node_stages = [alias for image, alias in stages if image.startswith("node:")]
    assert node_stages, "no node stage"
    assert "npm ci" in text
    assert "build.mjs" in text
    assert re.search(rf"COPY --from={node_stages[0]}\s", text), "python stage does not take the built assets"
    lowered = text.lower()
    assert "playwright install" not in lowered
    assert "chromium" not in lowered
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, flags=re.MULTILINE), "must run as a non-root user"
    assert "vpsbridge" in text.split("CMD")[-1]
