#!/usr/bin/env bash
# Install the system packages the integration tests need, on Debian/Ubuntu, as root:
# Dovecot's IMAP and POP3 servers (the tests run a private instance of their own, see
# tests/support/dovecot.py), GNU Mailutils' imap4d and pop3d (run per connection by the tests,
# see tests/support/mailutils.py) and the openssl command (for the test certificates).
#
# Idempotent: does nothing when everything is already there. The packages must not leave the
# system Dovecot running on 143/110: a policy-rc.d stops them from starting it (and Mailutils'
# daemons, whose units only start under systemd anyway), and a system master that shows up
# anyway is stopped by its PID. Quiet on success; on failure it prints apt's output and exits
# non-zero.
set -euo pipefail

say() { printf 'install-system-deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

needed=(/usr/sbin/dovecot /usr/lib/dovecot/imap /usr/lib/dovecot/pop3 /usr/sbin/imap4d /usr/sbin/pop3d)
missing=0
for path in "${needed[@]}"; do
    [ -x "$path" ] || missing=1
done
command -v openssl >/dev/null 2>&1 || missing=1
[ "$missing" -eq 1 ] || exit 0

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install dovecot-imapd, dovecot-pop3d, mailutils-imap4d, mailutils-pop3d and openssl by hand"

# The system Dovecot keeps its master PID here (base_dir /run/dovecot).
system_pid_file=/run/dovecot/master.pid

# PID of a running system Dovecot master, or nothing.
system_master_pid() {
    local pid
    [ -r "$system_pid_file" ] || return 0
    pid=$(tr -dc '0-9' <"$system_pid_file")
    [ -n "$pid" ] || return 0
    # only a live (non-zombie) process whose name is dovecot
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dovecot ] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
        echo "$pid"
    fi
}

running_before=$(system_master_pid)

policy=/usr/sbin/policy-rc.d
created_policy=0
log=$(mktemp /tmp/install-system-deps.XXXXXX)
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
    rm -f "$log"
}
trap cleanup EXIT

if [ ! -e "$policy" ]; then
    # 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke start no service
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
fi

apt_quiet() {
    if ! DEBIAN_FRONTEND=noninteractive "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "failed: $*"
    fi
}
apt_quiet apt-get -qq -o Dpkg::Use-Pty=0 update
apt_quiet apt-get -qq -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold install -y --no-install-recommends \
    dovecot-imapd dovecot-pop3d mailutils-imap4d mailutils-pop3d openssl

for path in "${needed[@]}"; do
    [ -x "$path" ] || die "$path is still missing after installing the packages"
done
command -v openssl >/dev/null 2>&1 || die "openssl is still missing after installing it"

# If the packages started the system Dovecot after all, stop it by its PID.
pid=$(system_master_pid)
if [ -n "$pid" ] && [ "$pid" != "$running_before" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        [ -n "$(system_master_pid)" ] || break
        sleep 0.1
    done
    if [ -n "$(system_master_pid)" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    [ -z "$(system_master_pid)" ] || die "could not stop the system Dovecot (PID $pid)"
    say "stopped the system Dovecot the packages had started (PID $pid)"
elif [ -n "$pid" ]; then
    say "note: a system Dovecot (PID $pid) was already running before; left alone"
fi
exit 0
