# shellcheck shell=bash
# Helpers shared by .ci/run and the .ci/gate-* scripts (sourced, not run).
#
# CI_WORK is the scratch directory of one CI run; .ci/run sets it. Run alone, a gate script
# makes its own. Venvs and trees made there are reused by later gates of the same run through
# a marker file written only when they were made completely.

# shellcheck disable=SC2034  # ROOT and the rest are used by the scripts that source this
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${CI_WORK:-}" ]; then
    CI_WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastbus-ci.XXXXXX")
    echo "CI_WORK=$CI_WORK (kept)"
fi
export CI_WORK
# shellcheck disable=SC2034
SUPPORTED_PYTHONS="3.9 3.10 3.11 3.12 3.13"
# shellcheck disable=SC2034
PIP_QUIET=(--quiet --disable-pip-version-check)

say() { echo "::: $*"; }
die() { echo "!!! $*" >&2; exit 1; }

# The interpreter for a minor version ("3.12"): the newest pyenv build of it, else python3.12
# on PATH. Fails when there is none: every supported version must be tested.
python_for() {
    local minor=$1 candidate found=""
    local -a builds=()
    for candidate in "${PYENV_ROOT:-/root/.pyenv}"/versions/"$minor".*/bin/python; do
        # 3.1 must not match 3.13, nor 3.13 a free-threaded 3.13.0t
        if [[ $candidate =~ /versions/${minor//./\\.}\.[0-9]+/bin/python$ ]]; then
            builds+=("$candidate")
        fi
    done
    if [ ${#builds[@]} -gt 0 ]; then
        found=$(printf '%s\n' "${builds[@]}" | sort -V | tail -n 1)
    else
        found=$(command -v "python$minor" || true)
    fi
    [ -n "$found" ] || die "no Python $minor found (pyenv versions or python$minor on PATH)"
    echo "$found"
}

# The minor version CI treats as the main one (docs, CherryPy's suite, builds, lint).
main_minor() {
    "${PYTHON:-python3}" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# fresh_venv PYTHON DIR: a new virtualenv with a current pip.
fresh_venv() {
    rm -rf "$2"
    "$1" -m venv "$2"
    "$2/bin/python" -m pip install "${PIP_QUIET[@]}" --upgrade pip
}

# sdist_tree: the unpacked sdist that the build gate made (the source the sanitizer and
# no-compiler gates copy: exactly the files fastbus ships).
sdist_tree() {
    [ -f "$CI_WORK/dist/.complete" ] || die "the build gate did not produce an sdist"
    echo "$CI_WORK/dist/sdist-src"
}

# copy_tree SRC DEST: a fresh copy of a source tree.
copy_tree() {
    rm -rf "$2"
    mkdir -p "$2"
    cp -a "$1/." "$2/"
}

# quietly LOG CMD...: run CMD with its output in LOG; on failure show the end of LOG.
quietly() {
    local log=$1 rc=0
    shift
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "!!! failed ($rc): $* ; the end of $log:" >&2
        tail -n 80 "$log" >&2
    fi
    return "$rc"
}

# require_redis_server: the bridge tests start their own redis-server on a free loopback port,
# and FASTBUS_REQUIRE_REDIS=1 (exported here) turns their "no redis-server" skip into a failure,
# so that CI cannot pass without running them. Installs Debian's redis-server when it is
# missing (CI runs as root), without leaving its system service running: that server would
# hold port 6379 and a process nobody stops, and the tests must never depend on it.
require_redis_server() {
    export FASTBUS_REQUIRE_REDIS=1
    if command -v redis-server >/dev/null; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "redis-server is missing and only root can install it: apt-get install -y redis-server"
    command -v apt-get >/dev/null || die "redis-server is missing and there is no apt-get to install it"
    say "installing redis-server (apt-get), its service kept stopped"
    # policy-rc.d answering 101 forbids the package's scripts to start the service (Docker's
    # images ship one; elsewhere ours stands in for the install, then goes).
    local policy=/usr/sbin/policy-rc.d ours="" rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
    fi
    local log=$CI_WORK/apt-redis.log
    {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server; }
    } >"$log" 2>&1 || rc=$?
    [ -z "$ours" ] || rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log" >&2
        die "apt-get install redis-server failed ($rc); the log is $log"
    fi
    # Should a service have started anyway (systemd ignores policy-rc.d), stop it and keep it
    # from starting at boot.
    if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
        systemctl stop redis-server || true
        systemctl disable --quiet redis-server 2>/dev/null || true
    fi
    local pidfile=/run/redis/redis-server.pid pid
    if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ]; then
        service redis-server stop >/dev/null 2>&1 || kill "$pid" || true
    fi
    command -v redis-server >/dev/null || die "apt-get installed redis-server, yet it is not on PATH"
    say "redis-server: $(redis-server --version)"
}
