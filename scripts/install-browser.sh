#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and chromedriver, which the status page's
# browser test (tests/status.rs) drives over WebDriver. Idempotent; needs root (or sudo).
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "chromium and chromedriver already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
echo "installed: $(chromium --version 2>/dev/null || true)"
