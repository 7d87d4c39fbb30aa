#!/usr/bin/env bash
# scripts/ensure-package.sh COMMAND PACKAGE: install Debian's PACKAGE with apt-get when
# COMMAND is missing and we run as root; otherwise say what to install and exit 1.
set -euo pipefail
command=$1 package=$2
export PATH="$PATH:/usr/sbin:/usr/local/sbin"  # Debian's nginx and pgbouncer, for any user
if command -v "$command" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-package: installing Debian's $package for $command" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2
  command -v "$command" >/dev/null 2>&1 && exit 0
fi
echo "ensure-package: $command is missing: install it (Debian/Ubuntu: sudo apt-get install $package)" >&2
exit 1
