"""The import layers of .importlinter leave no module of portal/ out, and are enforced."""
import configparser
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import portal

ROOT = Path(__file__).resolve().parent.parent


def _layers() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    text = config["importlinter:contract:layers"]["layers"]
    return [name for line in text.splitlines() for name in re.split(r"[|:]", line)
            if name.strip()]


def test_every_module_of_portal_has_a_layer():
    modules = {f"portal.{info.name}" for info in pkgutil.iter_modules(portal.__path__)}
    layered = {name.strip() for name in _layers()}
    assert modules - {"portal.__init__"} == layered, (
        "add new modules to a layer of .importlinter: "
        f"missing {sorted(modules - layered)}, unknown {sorted(layered - modules)}")


def test_an_upward_import_breaks_the_layers(tmp_path):
    """A copy of portal/ in which the domain imports a blueprint fails lint-imports."""
    copy = tmp_path / "portal"
    subprocess.run(["cp", "-r", str(ROOT / "portal"), str(copy)], check=True)
    licensing = copy / "licensing" / "seats.py"
    licensing.write_text("import portal.admin.auth  # an upward import\n" + licensing.read_text())
    (tmp_path / ".importlinter").write_text((ROOT / ".importlinter").read_text())
    lint = Path(sys.executable).with_name("lint-imports")
    broken = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert broken.returncode != 0
    assert "portal.licensing is not allowed to import portal.admin" in broken.stdout
    kept = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert kept.returncode == 0, kept.stdout[-2000:]
