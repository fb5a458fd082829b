#!/bin/sh
# Run in the Dockerfile's builder stage: what PyInstaller needs besides Python itself.
#  - objdump and objcopy (binutils): PyInstaller reads and writes ELF files with them.
#  - Python's shared library: the official python images have it; Debian's python3 is linked
#    statically, its libpython3.X.so comes in the libpython3.X package.
# Installs only what is missing, from the image's own Debian sources.
set -eu
need=""
command -v objdump >/dev/null 2>&1 || need="binutils"
if ! python3 - <<'PY'
import os, sys, sysconfig
name = sysconfig.get_config_var("INSTSONAME") or ""
dirs = [sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LIBPL") or ""]
sys.exit(0 if name and any(os.path.exists(os.path.join(d, name)) for d in dirs) else 1)
PY
then
  need="$need libpython$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
fi
[ -n "$need" ] || exit 0
echo "prepare-builder: installing $need"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
rm -rf /var/lib/apt/lists/*
