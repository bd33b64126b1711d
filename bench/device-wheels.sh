#!/usr/bin/env bash
# Collect the wheels bench/device.py needs on a bare GPU machine into a git-ignored folder, then
# print the device tool's `run` call that uses them.
#
# The device machines have Python 3.12 with torch, numpy and safetensors, and no registry: every
# other package bench/device.py imports travels as a wheel (at most 64 MiB in all, with the tree).
# Versions are the ones installed in .venv, so the device runs what the test suite tested.
# DeepSpeed ships only an sdist: it is built here into a pure-Python wheel (no compiled ops; the
# trainer hands it torch's AdamW, so none are needed).
#
#   bench/device-wheels.sh            # -> .whl/
#   bench/device-wheels.sh some/dir   # -> some/dir (must be git-ignored to travel as `carry`)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
python=${PYTHON:-.venv/bin/python}
limit_mib=60

# What bench/device.py imports beyond the device's own packages, and what those need.
packages=(soma-models soma-arrgen soma-sdk base58 pydantic pydantic-core annotated-types
          typing-inspection typing-extensions hjson)

version_of() { "$python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }

rm -rf "$dest"
mkdir -p "$dest"
grep -qxF "/$dest/" .git/info/exclude 2>/dev/null || echo "/$dest/" >> .git/info/exclude

platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
specs=()
for name in "${packages[@]}"; do specs+=("$name==$(version_of "$name")"); done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest" "${specs[@]}"

# Pure Python: no ops are prebuilt, and torch comes from the build environment (.venv), not a
# freshly downloaded one.
DS_BUILD_OPS=0 "$python" -m pip wheel -q --no-deps --no-build-isolation -w "$dest" \
    "deepspeed==$(version_of deepspeed)"

size_mib=$(du -sm "$dest" | cut -f1)
ls -1 "$dest"
echo "total: ${size_mib} MiB in $dest"
if [ "$size_mib" -gt "$limit_mib" ]; then
    echo "error: $dest holds ${size_mib} MiB, over the ${limit_mib} MiB budget; drop a package or an old file" >&2
    exit 1
fi

cat <<EOF

Run on the device (carry: ["$dest"], timeout_s 480):
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $dest/*.whl && export PYTHONPATH=/tmp/site:\$PWD PYTHONUNBUFFERED=1 && python3 bench/device.py --budget-s 420
EOF
