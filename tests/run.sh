#!/usr/bin/env bash
# The project's test command.
#
#   bash tests/run.sh [PYTEST_ARGS...]        pytest in the project's venv (args passed through)
#   bash tests/run.sh --all [PYTEST_ARGS...]  every tox env in tox.ini (py39..py313, lint, type);
#                                             the default whenever CI is set
#
# On a fresh machine it installs the system packages (Dovecot, GNU Mailutils) when run as root,
# creates the venv (.venv, or $MAILWIRE_VENV) with python3 (or $MAILWIRE_PYTHON) and installs
# mailwire into it editable with its test extra. Exits non-zero on any failure, including "no
# tests ran" (pytest 5).
# $MAILWIRE_TOX_PARALLEL: tox -p value in --all mode (default "all": the suites mostly wait on
# sockets and timeouts, so all envs at once beat -p 2 on two cores; 0 runs them one by one).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf 'tests/run.sh [%ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { say "error: $*"; exit 1; }

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

all=0
args=()
for arg in "$@"; do
    if [ "$arg" = --all ]; then all=1; else args+=("$arg"); fi
done
case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
    "" | 0 | false | no | off) ;;
    *) all=1 ;;
esac

# --- system packages ----------------------------------------------------------------------------
servers_missing=()
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
    servers_missing+=(Dovecot)
fi
if [ ! -x /usr/sbin/imap4d ] || [ ! -x /usr/sbin/pop3d ]; then
    servers_missing+=("GNU Mailutils")
fi
if [ ${#servers_missing[@]} -gt 0 ]; then
    what=$(printf '%s and ' "${servers_missing[@]}")
    what=${what% and }
    if [ "$(id -u)" -ne 0 ]; then
        say "warning: $what not installed and this is not root; as root run .ci/install-system-deps.sh (their tests skip, and fail under CI)"
    elif [ -f .ci/install-system-deps.sh ]; then
        say "$what missing: running .ci/install-system-deps.sh"
        bash .ci/install-system-deps.sh </dev/null
    else
        say "warning: $what missing and .ci/install-system-deps.sh does not exist yet"
    fi
fi

# --- venv ---------------------------------------------------------------------------------------
venv=${MAILWIRE_VENV:-$root/.venv}
python=${MAILWIRE_PYTHON:-python3}
if ! "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
        die "$venv exists and is not a venv; remove it or set MAILWIRE_VENV"
    fi
    command -v "$python" >/dev/null 2>&1 || die "no $python to create the venv with"
    say "creating venv $venv with $("$python" -V 2>&1)"
    "$python" -m venv --clear "$venv"
fi
vpy=$venv/bin/python
"$vpy" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "$venv has $("$vpy" -V 2>&1); mailwire needs Python 3.9 or newer"

extra=()
[ "$all" = 1 ] && extra=("tox>=4")
say "installing mailwire[test]${extra[*]+ ${extra[*]}} into $venv"
"$vpy" -m pip install -q -e ".[test]" ${extra[@]+"${extra[@]}"}

# --- run ----------------------------------------------------------------------------------------
if [ "$all" = 1 ]; then
    missing=()
    for minor in 9 10 11 12 13; do
        "python3.$minor" -c '' >/dev/null 2>&1 || missing+=("python3.$minor")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        die "not on PATH: ${missing[*]}; with pyenv: pyenv global $(pyenv version-name 2>/dev/null || echo 3.11.x) plus the 3.9-3.13 versions from 'pyenv versions --bare' (.ci/run does this)"
    fi
    parallel=${MAILWIRE_TOX_PARALLEL:-all}
    if [ "$parallel" = 0 ]; then
        tox=("$vpy" -m tox run)
    else
        tox=("$vpy" -m tox run-parallel -p "$parallel" --parallel-no-spinner)
    fi
    say "${tox[*]} -- ${args[*]-}"
    "${tox[@]}" -- ${args[@]+"${args[@]}"}
    exit
fi

say "python -m pytest ${args[*]-}"
rc=0
"$vpy" -m pytest ${args[@]+"${args[@]}"} || rc=$?
[ "$rc" = 5 ] && say "pytest ran no test (exit code 5): that is a failure"
exit "$rc"
