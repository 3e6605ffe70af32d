#!/usr/bin/env python3
"""Check kas project files offline, with kas's own code and schema.

For every file given (default: yocto/kas/*.yml):
  1. validate it against the JSON schema that ships in the installed kas package
     (kas/schema-kas.json), printing every error with its path in the file;
  2. load it the way `kas` does (kas.includehandler.ConfigFile.load: schema again,
     plus the header version range this kas accepts);
  3. resolve its local includes and merge them with kas's IncludeHandler, then check
     the merged project: it names a machine, a distro and a target, every repo other
     than this one has a url and a branch/tag/commit, and every layer of this
     repository exists and has conf/layer.conf.
Nothing is fetched: repos are never checked out, so machine and layer names in other
repositories are not checked here (only a real `kas build` does that).

Run with the Python of the venv that scripts/check-yocto.sh sets up (it has kas).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from jsonschema.validators import validator_for

from kas import __version__ as kas_version
from kas.configschema import CONFIGSCHEMA, __schema_definition__
from kas.context import create_global_context
from kas.includehandler import ConfigFile, IncludeHandler
from kas.kasusererror import KasUserError

ROOT = Path(__file__).resolve().parent.parent


def schema_errors(path: Path) -> list[str]:
    with path.open("rb") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            return [f"not valid YAML: {e}"]
    validator = validator_for(CONFIGSCHEMA)(CONFIGSCHEMA)
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"{where}: {err.message}")
    return out


def project_errors(path: Path, repo_root: Path) -> list[str]:
    """Merge the file with its includes as kas does and check the whole project."""
    handler = IncludeHandler([str(path)], use_lock=False)
    config, missing = handler.get_config(repos={})
    out = [f"include from repo {r!r} cannot be resolved without fetching it" for r in missing]
    is_top = "machine" in config or path.name != "common.yml"
    if is_top:
        for key in ("machine", "distro", "target"):
            if not config.get(key):
                out.append(f"no {key!r} after merging the includes")
    for name, repo in (config.get("repos") or {}).items():
        repo = repo or {}
        if repo.get("url") is None and repo.get("path") is None:
            # This repository: its layers must exist here.
            for layer in (repo.get("layers") or {"."}):
                layer_dir = repo_root / layer
                if not (layer_dir / "conf" / "layer.conf").is_file():
                    out.append(f"repos/{name}: layer {layer!r} has no conf/layer.conf under {repo_root}")
        elif repo.get("url") and not any(repo.get(k) for k in ("branch", "tag", "commit")):
            out.append(f"repos/{name}: url without branch, tag or commit (the build would not be repeatable)")
    return out


def main(argv: list[str]) -> int:
    # kas reports through logging; show its errors and warnings.
    logging.basicConfig(level=logging.WARNING, format="kas: %(levelname)s: %(message)s")
    # The include handler runs git through kas's global context (to find the
    # repository root); give it one whose work dir is a throw-away directory, so
    # nothing can be written into the checkout.
    work_dir = tempfile.mkdtemp(prefix="yocto-kas-check.")
    os.environ["KAS_WORK_DIR"] = work_dir
    os.environ.pop("KAS_BUILD_DIR", None)
    create_global_context(argparse.Namespace(no_color=True))
    files = [Path(a) for a in argv] or sorted((ROOT / "yocto" / "kas").glob("*.yml"))
    if not files:
        print("yocto-kas-check: no kas files found", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        path = path.resolve()
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        problems = schema_errors(path)
        if not problems:
            try:
                ConfigFile.load(str(path), is_main_file=True)
                problems += project_errors(path, ROOT)
            except KasUserError as e:
                problems.append(str(e))
        if problems:
            failed += 1
            print(f"yocto-kas-check: {shown}: INVALID", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
    shutil.rmtree(work_dir, ignore_errors=True)
    print(f"yocto-kas-check: {len(files) - failed}/{len(files)} kas files valid against kas {kas_version}'s "
          f"schema ({Path(__schema_definition__).name}) and resolve")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
