#!/bin/sh
# SPDX-License-Identifier: MIT
# W8 peers: runs bench/peers/run_peers.py in a virtual environment holding torch, transformers,
# onnxruntime, onnx and ctranslate2 (requirements.txt). Arguments go to run_peers.py (--help).
#
# The environment: $XFMR_PEERS_VENV if set, else /work/venv-ref when it exists, else
# ${XDG_CACHE_HOME:-~/.cache}/xfmr/peers-venv (created with `python3 -m venv`). Missing packages
# are installed from PyPI with pip. PyPI's Linux torch wheel is the CUDA build (several GB); for
# the CPU-only wheel set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${XFMR_PEERS_VENV:-}
if [ -z "$venv" ]; then
  if [ -x /work/venv-ref/bin/python ]; then
    venv=/work/venv-ref
  else
    venv=${XDG_CACHE_HOME:-$HOME/.cache}/xfmr/peers-venv
  fi
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "run_peers.sh: creating the virtual environment $venv" >&2
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, transformers, numpy, onnx, onnxscript, onnxruntime, ctranslate2' 2>/dev/null; then
  echo "run_peers.sh: installing bench/peers/requirements.txt into $venv" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$here/requirements.txt"
fi
exec "$venv/bin/python" "$here/run_peers.py" "$@"
