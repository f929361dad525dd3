#!/usr/bin/env bash
# protocol.sh: drives a real escalatord over its milter socket with
# miltertest(8), one Lua script per behaviour (t/lua/). Also checks a
# reload with broken rules and a clean stop. Skips (77) without
# miltertest or sqlite3.
set -euo pipefail

src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=${top_builddir:-$src}
daemon=$build/milter/escalatord

for tool in miltertest sqlite3; do
	command -v "$tool" >/dev/null || { echo "skip: no $tool"; exit 77; }
done

work=$(mktemp -d /tmp/escalator-protocol.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# A private configuration: socket, store and rules in the work dir, and a
# fake sendmail that only records what it is given.
cp "$src/t/rules/test-rules.yaml" "$work/rules.yaml"
cat > "$work/sendmail" <<'SH'
#!/bin/sh
cat >> "$(dirname "$0")/sent.mbox"
SH
chmod +x "$work/sendmail"
cat > "$work/escalator.conf" <<CONF
socket: unix:$work/milter.sock
socket_group: ""
user: ""
pidfile: $work/escalatord.pid
database: $work/db/escalator.db
rules: $work/rules.yaml
templates: $src/templates
send: $work/sendmail
log_level: debug
CONF

start_daemon() {
	"$daemon" -c "$work/escalator.conf" -f 2>> "$work/log" &
	pid=$!
	for _ in $(seq 50); do [ -S "$work/milter.sock" ] && break
		sleep 0.1; done
}

start_daemon

n=0 failed=0
check() {	# check DESCRIPTION COMMAND...
	local what=$1; shift
	n=$((n + 1))
	if "$@" > "$work/out.$n" 2>&1; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"; sed 's/^/#   /' "$work/out.$n"
		failed=$((failed + 1))
	fi
}
script() {
	EXPECT=${EXPECT:-} READY_FILE=${READY_FILE:-} \
	    ESCALATOR_SOCKET="unix:$work/milter.sock" \
	    LUA_DIR="$src/t/lua" \
	    MESSAGES="$src/t/messages" miltertest -s "$src/t/lua/$1.lua"
}
log_has() { grep -q -- "$1" "$work/log"; }

# Another process holds the write lock, past the 5 s busy timeout, until
# release_lock: sqlite3 reads its commands from a fifo.
hold_lock() {
	rm -f "$work/lock.fifo"
	mkfifo "$work/lock.fifo"
	sqlite3 "$work/db/escalator.db" < "$work/lock.fifo" >/dev/null 2>&1 &
	locker=$!
	exec 3> "$work/lock.fifo"
	printf '.timeout 10000\nBEGIN IMMEDIATE;\n' >&3
	for _ in $(seq 200); do
		sqlite3 "$work/db/escalator.db" "BEGIN IMMEDIATE; ROLLBACK;" \
		    >/dev/null 2>&1 || break
		sleep 0.05
	done
}
release_lock() {
	printf 'COMMIT;\n' >&3
	exec 3>&-
	wait "$locker"
}

check "unwatched mail is accepted at DATA" script unwatched-accepted-at-data
check "one watched recipient among many is processed" \
    script watched-among-many
check "a redelivered message keeps its case" script redelivery-same-case
check "a message in milter wire format is read like the file" \
    script wire-format-message
check "a forged case header from the sender is removed" \
    script forged-case-header-removed
check "each decision is logged with the queue id" log_has "MANY1: case=ESC-"
check "the redelivery is logged as a duplicate" log_has "DUP2: case=ESC-.* duplicate"

state_of_opened_by() {	# state_of_opened_by MESSAGE-ID
	sqlite3 "$work/db/escalator.db" "SELECT state FROM cases WHERE id = \
	    (SELECT case_id FROM messages WHERE key = '$1')"
}
check "staff commands: the script runs" script smtp-auth-command
check "a staff command without proof is refused" \
    test "$(state_of_opened_by auth-open-1@example.net)" = open
check "the refusal is logged with its reason" \
    log_has "AUTHCLOSE1: case=ESC-.* refused: .*does not prove its sender"
check "the same command with the desk's SMTP AUTH login is taken" \
    test "$(state_of_opened_by auth-open-2@example.net)" = closed

hold_lock
check "a locked store tempfails the message" script locked-store
check "the tempfail is logged with the queue id" \
    log_has "LOCK1: case=none error: .*requeued (tempfail)"
release_lock
check "after the lock the MTA's retry is processed" \
    script watched-among-many

# A reload with broken rules keeps the old ones.
echo "procedures: [" >> "$work/rules.yaml"
kill -USR1 "$pid"
sleep 0.5
check "a reload with broken rules is refused and logged" \
    log_has "reload: rules .* not loaded, the old rules stay in force"
check "mail is still processed after the refused reload" \
    script redelivery-same-case

# SIGTERM while a message waits for the MTA: libmilter drops the
# session (the MTA tempfails the message and retries it); nothing of it
# is stored, and the daemon stops at once.
rm -f "$work/ready"
READY_FILE="$work/ready" script in-flight-at-stop > "$work/inflight.out" 2>&1 &
client=$!
for _ in $(seq 100); do [ -e "$work/ready" ] && break; sleep 0.05; done
kill -TERM "$pid"
inflight=0
wait "$client" || inflight=$?
check "a message in flight at SIGTERM is not accepted" \
    bash -c "[ $inflight = 0 ] || { cat '$work/inflight.out'; false; }"
stopped=0
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || { stopped=1; break; }
	sleep 0.1; done
check "nothing of it is stored" test "$(sqlite3 "$work/db/escalator.db" \
    "SELECT count(*) FROM case_tickets WHERE ticket = '135790'")" = 0
check "SIGTERM stops the daemon within 5 s" test "$stopped" = 1
status=0
wait "$pid" 2>/dev/null || status=$?
pid=
# Under ASan a leak or memory error also makes the exit status non-zero.
check "the daemon exits with status 0" test "$status" = 0
check "no sanitizer report in the daemon's log" \
    bash -c "! grep -E 'Sanitizer|runtime error' '$work/log'"

check "the pid file is removed on stop" test ! -e "$work/escalatord.pid"

# With on_error: accept, the same fault lets the mail through, uncased.
echo "on_error: accept" >> "$work/escalator.conf"
cp "$src/t/rules/test-rules.yaml" "$work/rules.yaml"
start_daemon
hold_lock
EXPECT=accept check "with on_error: accept a locked store accepts" \
    script locked-store
check "the accept is logged with the queue id" \
    log_has "LOCK2: case=none error: .*accepted without a case"
release_lock

# SIGQUIT, the graceful stop: the message past DATA finishes, new mail
# is tempfailed at DATA, then the daemon stops.
rm -f "$work/ready"
READY_FILE="$work/ready" script in-flight-at-graceful-stop \
    > "$work/graceful.out" 2>&1 &
client=$!
for _ in $(seq 100); do [ -e "$work/ready" ] && break; sleep 0.05; done
kill -QUIT "$pid"
sleep 0.5
check "while draining, new watched mail is tempfailed at DATA" \
    script new-mail-while-draining
graceful=0
wait "$client" || graceful=$?
check "a message in flight at SIGQUIT is finished" \
    bash -c "[ $graceful = 0 ] || { cat '$work/graceful.out'; false; }"
check "it is logged with its case" log_has "QUIT1: case=ESC-.* opened"
stopped=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { stopped=1; break; }
	sleep 0.1; done
check "then the daemon stops" test "$stopped" = 1
status=0
wait "$pid" 2>/dev/null || status=$?
pid=
check "and exits with status 0" test "$status" = 0

# SIGTERM with a backlog in the outbox and a slow MTA (30 s of sends):
# the outbox ends its pass after the mail in hand and gives the rest
# back, queued. libmilter itself may take up to about 5 s to notice
# the signal, hence 10 s.
cat > "$work/sendmail" <<'SH'
#!/bin/sh
cat >> "$(dirname "$0")/slow.mbox"
sleep 0.3
SH
sqlite3 "$work/db/escalator.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL
    SELECT i + 1 FROM n WHERE i < 100) INSERT INTO outbox (case_id, kind,
    sender, recipient, subject, body, message_id, auto_submitted, created,
    next_attempt) SELECT NULL, 'ack', 'escalation@example.org',
    'backlog' || i || '@example.com', 'Backlog', 'Text', 'backlog.' || i ||
    '@example.org', 'auto-replied', 0, 0 FROM n"
start_daemon
for _ in $(seq 100); do grep -q 'to=<backlog' "$work/log" && break
	sleep 0.05; done
kill -TERM "$pid"
stopped=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { stopped=1; break; }
	sleep 0.1; done
check "SIGTERM with 100 mails waiting for a slow MTA stops within 10 s" \
    test "$stopped" = 1
wait "$pid" 2>/dev/null || true
pid=
check "the mail not sent is still queued, none lost" test "$(sqlite3 \
    "$work/db/escalator.db" "SELECT count(*) FROM outbox WHERE
    recipient LIKE 'backlog%' AND (state = 'sent' OR (state = 'queued'
    AND attempts = 0))")" = 100

echo "# $((n - failed)) of $n protocol checks passed"
[ "$failed" = 0 ]
