#!/usr/bin/env bash
# Installs the Debian packages the test suite needs and the Python lock cannot provide:
#   postgresql      the deployment test's throwaway instance database (initdb, pg_ctl)
#   docker-compose  validates docker/compose.yaml (`docker-compose config`; no engine needed)
# Only what is missing is installed, nothing already installed is upgraded; as root, or through
# sudo when there is one.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if ((${#missing[@]} == 0)); then
    exit 0
fi

as_root=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "ci-system-deps: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
    as_root=(sudo --non-interactive)
fi

echo "==> installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >/dev/null
"${as_root[@]}" apt-get install -y -qq --no-upgrade --no-install-recommends "${missing[@]}" >/dev/null
