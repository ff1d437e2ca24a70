#!/usr/bin/env bash
# The Debian packages the tests need beside the Python ones: Chromium for the browser tests (Playwright drives
# it; it never downloads a browser of its own) and FFmpeg's shared libraries for torchcodec, which transformers'
# video-classification pipeline and released Space apps decode with (the release tests). Only what is missing.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "some tests need ${missing[*]}: install your distribution's packages of that name" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
