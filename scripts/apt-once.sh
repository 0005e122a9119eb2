#!/usr/bin/env bash
# apt-once.sh WHO PACKAGE: installs Debian's PACKAGE with apt-get (as root, or through sudo),
# for the setup script WHO (named in the messages). The callers check first whether the
# machine has it already.
set -euo pipefail
who=$1 package=$2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "$who: need root or sudo to apt-get install $package" >&2; exit 1; }
  sudo="sudo"
fi
echo "$who: installing Debian's $package (once)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
