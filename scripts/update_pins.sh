#!/usr/bin/env bash
# Move the tested pins: install the newest releases pyproject.toml allows into a fresh venv, run the
# whole suite there, and only if it is green rewrite constraints.txt with what was installed.
#
#   bash scripts/update_pins.sh            # upgrade everything the ranges allow
#   bash scripts/update_pins.sh -k quick   # extra pytest arguments are passed on (e.g. a subset to try)
#
# torch is not upgraded here: CPU machines take the local CPU build (TORCH_SPEC, default torch==2.13.0);
# move it by setting TORCH_SPEC and running this script. A failing suite leaves constraints.txt alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
venv="$(mktemp -d)/pins-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "$TORCH_SPEC"
"$venv/bin/python" -m pip install -q --upgrade -e ".[train,metrics,eval,dev]"
"$venv/bin/python" -m pip install -q --upgrade --no-deps lpips  # its metadata asks for torchvision; rlkit does not
PATH="$venv/bin:$PATH" bash scripts/install_wordnet.sh
"$venv/bin/python" -m ruff check .
if ! "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"; then
  echo "the suite failed on the upgraded stack; constraints.txt is unchanged (venv kept at $venv)" >&2
  exit 1
fi
{
  echo "# Tested pins: the exact versions the whole suite passed with (written by scripts/update_pins.sh"
  echo "# on $(date -u +%Y-%m-%d), Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'))."
  echo "# Install with: pip install -c constraints.txt -e \".[train,metrics,eval,dev]\". pyproject.toml keeps ranges."
  # local build labels (+cpu) dropped so a CUDA build of the same release satisfies the pin too
  "$venv/bin/python" -m pip freeze --exclude-editable | sed -E 's/\+[0-9A-Za-z.]+$//' | grep -v '^#'
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt rewritten ($(grep -vc '^#' constraints.txt) pins); review with: git diff constraints.txt"
