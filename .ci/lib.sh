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
