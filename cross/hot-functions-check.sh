#!/usr/bin/env bash
# How many names of cross/hot-functions.txt a release binary has:
#
#   cross/hot-functions-check.sh [--strict] BINARY
#
# Prints "hot-function list N of M names in this binary". A listed function the binary no longer
# has (renamed, rewritten, or its hash changed: a new version of its crate, citygate's own
# included, gives every one of its symbols a new hash) lands anywhere in the code and keeps its
# own 64 KiB window resident: 50 stale names of 2433 cost 3.5 MiB once. --strict exits 1 when
# fewer than 99 % are there, with what to do; packaging/build-deb.sh uses it for the release
# build, so that a package is not made with a stale list by accident
# (CITYGATE_STALE_HOT_FUNCTIONS_OK=1 lets it through).
set -euo pipefail
cd "$(dirname "$0")/.."
strict=0
[ "${1:-}" != --strict ] || { strict=1; shift; }
bin="${1:?usage: cross/hot-functions-check.sh [--strict] BINARY}"
list=cross/hot-functions.txt
listed=$(grep -c . "$list")
found=$(nm "$bin" 2>/dev/null | awk '{print $NF}' | sort -u | comm -12 - <(sort -u "$list") | wc -l)
echo "hot-function list $found of $listed names in this binary ($list)"
if [ "$strict" -eq 1 ] && [ $((found * 100)) -lt $((listed * 99)) ] \
  && [ -z "${CITYGATE_STALE_HOT_FUNCTIONS_OK:-}" ]; then
  echo "the list is stale: make it again with benches/hot-functions.sh (about 6 min), or set" \
    "CITYGATE_STALE_HOT_FUNCTIONS_OK=1 to build with it anyway (the daemon then takes more memory)" >&2
  exit 1
fi
