"""Refresh the Data Docs assets the plugin serves (``make vendor-datadocs``).

Installs the npm packages pinned by ``plugins/mlops_pack/ui/static/datadocs/package-lock.json`` into a
temporary folder (``npm ci``, no install scripts) and copies the files ``mlops_pack.ui.datadocs``
names next to the lock, with each package's licence; the GX logo comes from the installed great_expectations package.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

from mlops_pack.ui.datadocs import STATIC, vendored


def main() -> None:
    gx = Path(importlib.util.find_spec("great_expectations").origin).parent / "render" / "view" / "static"
    with tempfile.TemporaryDirectory() as work:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(STATIC / name, Path(work) / name)
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--legacy-peer-deps"],
                       cwd=work, check=True)
        for path in vendored():
            source = (gx / path.removeprefix("great_expectations/") if path.startswith("great_expectations/")
                      else Path(work) / "node_modules" / path)
            (STATIC / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, STATIC / path)
            print(f"{path} ({(STATIC / path).stat().st_size} bytes)")
        packages = {p.split("/")[0] if not p.startswith("@") else "/".join(p.split("/")[:2])
                    for p in vendored() if not p.startswith("great_expectations/")}
        for package in sorted(packages):  # each package's licence travels with its files
            for licence in (Path(work) / "node_modules" / package).glob("LICEN[CS]E*"):
                shutil.copyfile(licence, STATIC / package / licence.name)


if __name__ == "__main__":
    main()
