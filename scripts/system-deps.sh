#!/usr/bin/env bash
# System packages the report tests need: Debian's chromium (renders report.html headless) and
# fonts-noto-cjk (Chinese text in charts and in the browser). Idempotent: exits 0 at once when
# both are present; installs only what is missing; when not root it says so and skips.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# grep without -q: -q exits at the first match, fc-list gets SIGPIPE and pipefail fails the test
if ! { command -v fc-list >/dev/null 2>&1 && fc-list : family 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null; }; then
    missing+=(fonts-noto-cjk)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: not root, skipping install of: ${missing[*]}" >&2
    exit 0
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" fontconfig >/dev/null
fc-cache -f >/dev/null 2>&1 || true
