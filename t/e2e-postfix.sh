#!/bin/bash
# t/e2e-postfix.sh: escalatord on a private Postfix instance, end to end.
#
# Starts Postfix (t/lib/postfix.sh) and escalatord in a temporary folder
# under /tmp, sends five messages by SMTP to 127.0.0.1 and reads the
# delivered mailboxes and the store:
#   a  a complaint citing two tickets
#   b  a complaint citing none
#   c  a again, byte for byte (same Message-ID): a redelivery
#   d  mail to an unwatched address
#   e  a complaint to an unwatched and a watched address at once
# Prints "ok N - ..." lines. Exit 0 pass, 1 fail, 77 skip (not root, or
# postfix, swaks or sqlite3 missing). KEEP=1 keeps the folder.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(dirname "$here")}
top_builddir=${top_builddir:-$top_srcdir}
# shellcheck source=t/lib/postfix.sh
. "$top_srcdir/t/lib/postfix.sh"

ESCALATORD=$top_builddir/milter/escalatord
ESCALATORCTL=$top_builddir/ctl/escalatorctl
RULES=$top_srcdir/t/rules/test-rules.yaml
TEMPLATES=$top_srcdir/templates
DESK=escalation@example.org

tests=0
failed=0
dir=

# Skip (exit 77) with a reason.
skip() {
	echo "1..0 # SKIP $*"
	exit 77
}

# ok CONDITION-STATUS DESCRIPTION: print one TAP-like result line.
ok() {
	local status=$1
	shift
	tests=$((tests + 1))
	if [ "$status" -eq 0 ]; then
		echo "ok $tests - $*"
	else
		echo "not ok $tests - $*"
		failed=$((failed + 1))
	fi
}

# is GOT WANT DESCRIPTION: equality check that says what it got.
is() {
	local got=$1 want=$2
	shift 2
	if [ "$got" = "$want" ]; then
		ok 0 "$*"
	else
		ok 1 "$*"
		echo "#   got '$got', want '$want'"
	fi
}

# Print a file as TAP comments, to explain a failure.
diag_file() {
	[ -f "$1" ] || return 0
	echo "# --- $2 ($1)"
	tail -n "${3:-40}" "$1" | sed 's/^/#   /'
}

# Stop what we started and remove the folder unless KEEP=1.
cleanup() {
	local rc=$?
	[ -n "$dir" ] || exit "$rc"
	if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
		diag_file "$dir/escalator/escalatord.log" escalatord 60
		diag_file "$(pf_log "$dir")" "postfix log" 60
	fi
	esc_stop "$dir" || true
	pf_stop "$dir" || true
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept $dir"
	else
		rm -rf "$dir"
	fi
	exit "$rc"
}

# Skip unless this machine can run the test at all.
check_able() {
	local tool
	[ "$(id -u)" -eq 0 ] || skip "needs root for a private Postfix"
	for tool in postfix swaks sqlite3 perl runuser ss useradd; do
		command -v "$tool" >/dev/null || skip "$tool is missing"
	done
	[ -x "$ESCALATORD" ] || skip "no $ESCALATORD (not built)"
	[ -f "$RULES" ] || skip "no $RULES"
}

# Write the test messages into $dir/msgs.
write_messages() {
	local m=$dir/msgs
	mkdir -p "$m"
	cat >"$m/a.eml" <<'EOF'
From: Alice Example <alice@example.com>
To: Escalation Desk <escalation@example.org>
Subject: Complaint: root zone change request stalled
Date: Mon, 02 Mar 2026 09:15:00 +0000
Message-ID: <e2e-complaint-a.1@mail.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Dear escalation desk,

I am writing to complain about two requests that have gone wrong.

Our name server change was filed as [IANA #123456] three weeks ago and
has not moved since. The related contact update, Ticket 2024-0042, was
closed without anyone telling us what happened.

Please look into both.

Regards,
Alice Example
Registry operations, .example
EOF
	cat >"$m/b.eml" <<'EOF'
From: Bob Sample <bob@example.net>
To: escalation@example.org
Subject: Complaint about slow responses
Date: Mon, 02 Mar 2026 10:40:00 +0000
Message-ID: <e2e-complaint-b.1@mail.example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello,

I have written to your staff several times over the past month about
our delegation and have had no useful answer. I would like this
handled as a formal complaint.

Bob Sample
EOF
	cat >"$m/d.eml" <<'EOF'
From: Dave Other <dave@example.com>
To: someone@example.org
Subject: Lunch on Thursday?
Date: Mon, 02 Mar 2026 11:00:00 +0000
Message-ID: <e2e-unwatched-d.1@mail.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Are we still on for Thursday? Nothing to do with any complaint.
Dave
EOF
	cat >"$m/e.eml" <<'EOF'
From: Carol Writer <carol@example.com>
To: Someone Else <someone-else@example.net>
Cc: escalation@example.org
Subject: Complaint: RZM ticket 123 rejected twice
Date: Mon, 02 Mar 2026 12:30:00 +0000
Message-ID: <e2e-complaint-e.1@mail.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello both,

Our change, RZM ticket 123, has been rejected twice for reasons that
contradict each other. I am copying the escalation desk so that this
is handled as a complaint.

Carol Writer
EOF
}

# Print the case id the desk's copy of Message-ID carries ('' if none).
desk_case_of() {
	pf_mbox_summary "$(pf_mailbox "$dir" "$DESK")" |
		awk -F '\t' -v id="$1" '$1 == id { print $2; exit }'
}

# Wait until the outbox has rows and none is still queued, then until
# Postfix has delivered; give up after TIMEOUT seconds.
wait_outbox() {
	local timeout=$1 end rows queued
	end=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$end" ]; do
		rows=$(esc_sql "$dir" "SELECT count(*) FROM outbox;" ||
			echo 0)
		queued=$(esc_sql "$dir" \
			"SELECT count(*) FROM outbox WHERE state = 'queued';" ||
			echo 1)
		if [ "$rows" -ge 3 ] && [ "$queued" -eq 0 ]; then
			break
		fi
		sleep 0.5
	done
	pf_wait_queue_empty "$dir" 30 || true
}

# Start Postfix and escalatord; the first check needs no milter.
start_all() {
	local smtp submit sock probe
	smtp=$(pf_free_port)
	submit=$(pf_free_port "$smtp")
	SMTP_PORT=$smtp
	esc_ensure_user
	sock=$(esc_write_conf "$dir" "$submit" "$RULES" "$TEMPLATES")
	pf_start "$dir" "$smtp" "$submit" "unix:$sock"

	# Postfix alone: the milter-less port delivers to an mbox.
	probe=$dir/msgs/probe.eml
	printf 'From: probe@example.net\nTo: probe@example.net\n%s\n\n%s\n' \
		'Subject: probe' 'postfix alone' >"$probe"
	pf_send "$submit" "$probe" probe@example.net probe@example.net &&
		pf_wait_queue_empty "$dir" 20
	is "$(pf_mbox_count "$(pf_mailbox "$dir" probe@example.net)")" 1 \
		"postfix delivers to an mbox without the milter"

	# A clock the test can move (see escalatord(8), ENVIRONMENT).
	date +%s >"$dir/escalator/clock"
	chmod 0644 "$dir/escalator/clock"
	export ESCALATOR_CLOCK_FILE=$dir/escalator/clock
	esc_start "$dir" "$ESCALATORD"
	ok $? "escalatord starts and makes its socket"
}

# Send a-e through the milter port.
send_all() {
	local m=$dir/msgs
	pf_send "$SMTP_PORT" "$m/a.eml" alice@example.com "$DESK"
	ok $? "a: complaint with two tickets accepted"
	pf_send "$SMTP_PORT" "$m/b.eml" bob@example.net "$DESK"
	ok $? "b: complaint without tickets accepted"
	pf_send "$SMTP_PORT" "$m/a.eml" alice@example.com "$DESK"
	ok $? "c: redelivery of a accepted"
	pf_send "$SMTP_PORT" "$m/d.eml" dave@example.com someone@example.org
	ok $? "d: unwatched mail accepted"
	pf_send "$SMTP_PORT" "$m/e.eml" carol@example.com \
		someone-else@example.net "$DESK"
	ok $? "e: unwatched plus watched recipient accepted"
}

# The desk's mailbox: every message, each with its case header.
check_desk() {
	local box summary ca cb ce cc
	box=$(pf_mailbox "$dir" "$DESK")
	summary=$(pf_mbox_summary "$box")
	is "$(pf_mbox_count "$box")" 4 "$DESK got a, b, c and e"
	is "$(grep -c '<e2e-complaint-a.1@' <<<"$summary" || true)" 2 \
		"$DESK got a and its redelivery c"
	is "$(awk -F '\t' '$2 == ""' <<<"$summary" | wc -l)" 0 \
		"every message to $DESK carries X-Escalator-Case"
	is "$(grep -c '^X-Escalator-Case: ESC-' "$box")" 4 \
		"the case header is written 'X-Escalator-Case: ESC-...'"

	ca=$(desk_case_of '<e2e-complaint-a.1@mail.example.com>')
	cb=$(desk_case_of '<e2e-complaint-b.1@mail.example.net>')
	ce=$(desk_case_of '<e2e-complaint-e.1@mail.example.com>')
	cc=$(awk -F '\t' '$1 ~ /e2e-complaint-a/ { c = $2 } END { print c }' \
		<<<"$summary")
	CASE_A=$ca CASE_B=$cb CASE_E=$ce
	[[ $ca =~ ^ESC-[0-9]{4}-[0-9]{6}$ ]]
	ok $? "a's case id looks like ESC-YYYY-NNNNNN ($ca)"
	is "$cc" "$ca" "c carries a's case"
	is "$(printf '%s\n' "$ca" "$cb" "$ce" | sort -u | grep -c .)" 3 \
		"a, b and e have three distinct cases"
}

# The store: three cases, all outgoing mail sent.
check_store() {
	local listed
	is "$(esc_sql "$dir" 'SELECT count(*) FROM cases;')" 3 \
		"the store holds three cases"
	listed=$(esc_ctl "$dir" "$ESCALATORCTL" cases 2>&1 || true)
	is "$(grep -cE '^ESC-[0-9]{4}-[0-9]{6}' <<<"$listed" || true)" 3 \
		"escalatorctl cases lists three cases"
	[ "$(esc_sql "$dir" 'SELECT count(*) FROM outbox;')" -ge 3 ]
	ok $? "the outbox holds at least three mails"
	is "$(esc_sql "$dir" \
		"SELECT count(*) FROM outbox WHERE state <> 'sent';")" 0 \
		"every outbox row is sent"
}

# ack_check ADDRESS CASE DESCRIPTION PATTERN...: ADDRESS got exactly one
# mail, from the desk, naming CASE and matching each extended PATTERN
# (case-blind, on the decoded mail with its white space run together).
ack_check() {
	local addr=$1 case_id=$2 what=$3 box text flat pat
	shift 3
	box=$(pf_mailbox "$dir" "$addr")
	is "$(pf_mbox_count "$box")" 1 "$what: exactly one acknowledgement"
	text=$(pf_mbox_text "$box")
	flat=$(tr -s '[:space:]' ' ' <<<"$text")
	grep -q "^From: .*$DESK" <<<"$text"
	ok $? "$what: the acknowledgement is from $DESK"
	[ -n "$case_id" ] && grep -qF "$case_id" <<<"$text"
	ok $? "$what: the acknowledgement names case $case_id"
	for pat in "$@"; do
		grep -qiE -- "$pat" <<<"$flat"
		ok $? "$what: the acknowledgement matches /$pat/"
	done
}

# The complainants' and the unwatched mailboxes.
check_mailboxes() {
	local box
	ack_check alice@example.com "$CASE_A" a '123456' '2024-0042' \
		'In-Reply-To: <e2e-complaint-a\.1@mail\.example\.com>'
	ack_check bob@example.net "$CASE_B" b \
		'ticket (numbers?|ids?|references?)'
	ack_check carol@example.com "$CASE_E" e
	is "$(pf_mbox_count "$(pf_mailbox "$dir" dave@example.com)")" 0 \
		"d: no acknowledgement for unwatched mail"

	box=$(pf_mailbox "$dir" someone@example.org)
	is "$(pf_mbox_count "$box")" 1 "d: someone@example.org got it"
	is "$(pf_mbox_summary "$box" | cut -f2)" "" \
		"d: delivered without X-Escalator-Case"
	box=$(pf_mailbox "$dir" someone-else@example.net)
	is "$(pf_mbox_summary "$box" | cut -f2)" "$CASE_E" \
		"e: the unwatched recipient's copy carries e's case"
}

# The hard message 14 through the real MTA: a subject folded with TAB,
# a 1,500-byte header line and a ticket across the 65,535-byte body
# chunk edge. Its tag [ESC-42] names no case here, so it opens one (its
# staff sender gets no acknowledgement); the case must show what the
# same file gives escalatorctl: subject and ticket.
check_wire_message() {
	local msg=$top_srcdir/t/messages/14-milter-wire-format.eml case_id
	pf_send "$SMTP_PORT" "$msg" ana.lindqvist@example.org "$DESK"
	ok $? "14: the wire-format message is accepted"
	pf_wait_queue_empty "$dir" 30 || true
	case_id=$(desk_case_of '<wire-test-1@mua.example.org>')
	[[ $case_id =~ ^ESC-[0-9]{4}-[0-9]{6}$ ]]
	ok $? "14: delivered to $DESK with its case header ($case_id)"
	is "$(esc_sql "$dir" "SELECT subject FROM cases WHERE id = \
		'$case_id';")" "[ESC-42] ESCALATE" \
		"14: the folded subject is read whole"
	is "$(esc_sql "$dir" "SELECT group_concat(ticket) FROM case_tickets \
		WHERE case_id = '$case_id';")" "2024-0042" \
		"14: the ticket across the chunk edge is found"
	is "$(pf_mbox_count "$(pf_mailbox "$dir" \
		ana.lindqvist@example.org)")" 0 \
		"14: no acknowledgement to a staff sender"
}

# A complaint with neither Message-ID nor Date, sent twice: Postfix
# writes both headers anew at each delivery, so only the digest can
# tell the copies apart; one case, one acknowledgement.
check_no_message_id() {
	local m=$dir/msgs/f.eml box cases
	printf '%s\r\n' "From: Fay <fay@example.net>" \
		"To: escalation@example.org" "Subject: no id, [IANA #424242]" \
		"" "Sent by a script that writes no Message-ID." >"$m"
	pf_send "$SMTP_PORT" "$m" fay@example.net "$DESK"
	ok $? "f: complaint without Message-ID accepted"
	pf_send "$SMTP_PORT" "$m" fay@example.net "$DESK"
	ok $? "f: its second copy accepted"
	pf_wait_queue_empty "$dir" 30 || true
	cases=$(esc_sql "$dir" "SELECT count(*) FROM case_tickets \
		WHERE ticket = '424242';")
	is "$cases" 1 "f: the two copies make one case"
	sleep 2
	pf_wait_queue_empty "$dir" 30 || true
	box=$(pf_mailbox "$dir" fay@example.net)
	is "$(pf_mbox_count "$box")" 1 "f: exactly one acknowledgement"
}

# Wait until escalatord has sent everything it queued and Postfix has
# delivered it.
settle() {
	local end=$((SECONDS + 30)) queued
	while [ "$SECONDS" -lt "$end" ]; do
		queued=$(esc_sql "$dir" "SELECT count(*) FROM outbox WHERE \
			state = 'queued';" || echo 1)
		[ "$queued" -eq 0 ] && break
		sleep 0.3
	done
	pf_wait_queue_empty "$dir" 30 || true
}

# Move escalatord's clock (ESCALATOR_CLOCK_FILE) to unix time T and wake
# its timer thread with a reload.
clock_to() {
	echo "$1" >"$dir/escalator/clock"
	kill -USR1 "$ESC_PID"
	sleep 1
	settle
}

# The complaint procedure through the MTA on a moved clock: a missed
# deadline escalates to the liaison the text names, with the notices;
# the liaison answers by mail with a command, the complainant gets it.
check_walk() {
	local m=$dir/msgs/w.eml case_id box subject out
	local wed=1796806800	# Wednesday 2026-12-09 10:00 in Zurich
	# (Earlier cases' deadlines fire too as the clock moves: look for
	# this case's mail by its id.)
	clock_to "$wed"
	printf '%s\r\n' "From: Wanda <wanda@example.net>" \
		"To: escalation@example.org" \
		"Subject: port numbers stuck [IANA #5550001]" \
		"Message-ID: <walk-1@example.net>" "" "Please help." >"$m"
	pf_send "$SMTP_PORT" "$m" wanda@example.net "$DESK"
	ok $? "walk: complaint accepted"
	settle
	case_id=$(esc_sql "$dir" "SELECT case_id FROM case_tickets \
		WHERE ticket = '5550001';")
	is "$(esc_sql "$dir" "SELECT state FROM cases WHERE \
		id = '$case_id';")" open "walk: $case_id is open"
	is "$(pf_mbox_text "$(pf_mailbox "$dir" desk@example.org)" |
		grep -c "^Subject: \[$case_id\] New complaint")" 1 \
		"walk: the desk is told of the new complaint"

	# Friday 11:00: the two business days have passed.
	clock_to $((wed + 2 * 86400 + 3600))
	is "$(mail_for pp-liaison@example.org "$case_id" \
		"Complaint escalated")" 1 \
		"walk: escalated to the protocol parameters liaison"
	is "$(mail_for csc-chair@example.org "$case_id" "For information")" 1 \
		"walk: the CSC is notified"
	is "$(pf_mbox_count "$(pf_mailbox "$dir" wanda@example.net)")" 2 \
		"walk: the complainant has the ack and the escalation notice"

	# The daemon dies; the next deadline (Tuesday 11:00) passes while
	# it is down; started again, it fires the timer it missed, once.
	kill -9 "$ESC_PID"
	wait "$ESC_PID" 2>/dev/null
	rm -f "$dir/escalator/run/escalatord.sock"
	echo $((wed + 6 * 86400 + 7200)) >"$dir/escalator/clock"
	esc_start "$dir" "$ESCALATORD" >/dev/null
	ok $? "walk: escalatord restarted after kill -9"
	settle
	is "$(mail_for programme-manager@example.org "$case_id" \
		"Complaint escalated")" 1 \
		"walk: the deadline missed while down escalates, once"
	# Thursday 13:00 and the Monday after: the ombudsman, then the end
	# of the chain.
	clock_to $((wed + 8 * 86400 + 3 * 3600))
	is "$(mail_for ombudsman@example.org "$case_id" \
		"Complaint escalated")" 1 "walk: up to the ombudsman"
	is "$(mail_for csc-chair@example.org "$case_id" "For information")" 3 \
		"walk: the CSC is told at every step"
	clock_to $((wed + 12 * 86400 + 4 * 3600))
	is "$(mail_for programme-manager@example.org "$case_id" \
		"Complaint overdue")" 1 \
		"walk: overdue at the end of the chain"
	is "$(state_of "$case_id")" escalated \
		"walk: still escalated, waiting for a response"

	# Forged: the liaison's From without the proof our MX adds.
	subject="Re: AW: [$case_id] RESPOND: the ports are assigned"
	printf '%s\r\n' "From: Liaison <pp-liaison@example.org>" \
		"To: escalation@example.org" "Subject: $subject" \
		"Message-ID: <walk-2@example.org>" "" "Done today." \
		"" "-- " "Liaison" >"$m"
	pf_send "$SMTP_PORT" "$m" pp-liaison@example.org "$DESK"
	settle
	is "$(state_of "$case_id")" escalated \
		"walk: a forged staff command does nothing"
	is "$(esc_sql "$dir" "SELECT count(*) FROM events WHERE case_id = \
		'$case_id' AND kind = 'refused';")" 1 \
		"walk: ... and is logged on the case"

	printf '%s\r\n' "Authentication-Results: mx.example.org; \
dkim=pass header.d=example.org" "From: Liaison <pp-liaison@example.org>" \
		"To: escalation@example.org" "Subject: $subject" \
		"Message-ID: <walk-3@example.org>" "" "Done today." \
		"" "-- " "Liaison" >"$m"
	pf_send "$SMTP_PORT" "$m" pp-liaison@example.org "$DESK"
	settle
	is "$(esc_sql "$dir" "SELECT state FROM cases WHERE \
		id = '$case_id';")" responded "walk: the command moved the case"
	box=$(pf_mailbox "$dir" wanda@example.net)
	is "$(mail_for wanda@example.net "$case_id" "Response to")" 1 \
		"walk: the complainant got the response"
	pf_mbox_text "$box" | grep -q "the ports are assigned"
	ok $? "walk: the response carries the liaison's words"
	# Ten business days without a word from the complainant: closed.
	clock_to $((wed + 30 * 86400))
	is "$(state_of "$case_id")" closed "walk: closed when nobody objects"
	is "$(mail_for wanda@example.net "$case_id" "Your complaint is")" 1 \
		"walk: the complainant is told it is closed"
	is "$(pf_mbox_count "$box")" 6 \
		"walk: ack, 3 escalation notices, response and close: no more"
	# Captured first: grep -q would close the pipe early (SIGPIPE).
	out=$(esc_ctl "$dir" "$ESCALATORCTL" graph complaint)
	grep -q '^digraph' <<<"$out"
	ok $? "walk: escalatorctl graph draws the procedure"
	out=$(esc_ctl "$dir" "$ESCALATORCTL" report)
	grep -q '^complaint' <<<"$out"
	ok $? "walk: escalatorctl report counts complaints"
	out=$(esc_ctl "$dir" "$ESCALATORCTL" render complaint-ack name=Tess)
	grep -q '^Dear Tess,' <<<"$out"
	ok $? "walk: escalatorctl render previews a template"
}

# cmd FROM CASE WORDS [BODY]: FROM replies on CASE with WORDS after the
# tag, as staff and complainants do; then everything settles.
WALK_N=0
cmd() {
	local from=$1 case_id=$2 words=$3 body=${4:-Thanks.} m
	WALK_N=$((WALK_N + 1))
	m=$dir/msgs/cmd-$WALK_N.eml
	# Staff mail carries the DKIM pass our MX's own filter would add.
	case $from in
	*@example.org) printf '%s\r\n' "Authentication-Results: \
mx.example.org; dkim=pass header.d=example.org" >"$m" ;;
	*) : >"$m" ;;
	esac
	printf '%s\r\n' "From: <$from>" "To: $DESK" \
		"Subject: Re: [$case_id] $words" \
		"Message-ID: <cmd-$WALK_N@walk.example>" "" "$body" >>"$m"
	pf_send "$SMTP_PORT" "$m" "$from" "$DESK" >/dev/null 2>&1
	settle
}

state_of() {
	esc_sql "$dir" "SELECT state FROM cases WHERE id = '$1';"
}

# mail_for ADDRESS CASE SUBJECT-START: how many mails ADDRESS holds for
# CASE whose subject starts so (waiting up to 5 s for the first).
mail_for() {
	local n end=$((SECONDS + 5))
	while :; do
		n=$(pf_mbox_text "$(pf_mailbox "$dir" "$1")" |
			grep -c "^Subject: \[$2\] $3" || true)
		[ "$n" -gt 0 ] || [ "$SECONDS" -ge "$end" ] && break
		sleep 0.2
	done
	echo "$n"
}

# open_by FROM TO SUBJECT TICKET-OR-KEY: send a first message; print the
# case it opened (found by its Message-ID).
open_by() {
	local from=$1 to=$2 subject=$3 id=$4 m=$dir/msgs/$4.eml
	printf '%s\r\n' "From: <$from>" "To: $to" "Subject: $subject" \
		"Message-ID: <$id@walk.example>" "" "Please act." >"$m"
	pf_send "$SMTP_PORT" "$m" "$from" "$to" >/dev/null 2>&1
	settle
	esc_sql "$dir" "SELECT case_id FROM messages \
		WHERE key = '$id@walk.example';"
}

# An emergency whose first roster member never answers, taken by the
# second and walked to its close with the maintainer's heads-up; then
# one found not to be an emergency.
check_emergency_walks() {
	local t0=$((1796806800 + 7 * 86400)) e1 e2 owner=oncall-2@example.org
	clock_to "$t0"
	e1=$(open_by agent@example.net root-mgmt@example.org \
		"NS change for .example" emg-1)
	[[ $e1 =~ ^EMG- ]]
	ok $? "emergency: opened as $e1"
	is "$(mail_for oncall-1@example.org "$e1" "EMERGENCY page")" 1 \
		"emergency: the first on the roster is paged"
	clock_to $((t0 + 16 * 60))
	is "$(mail_for oncall-2@example.org "$e1" "EMERGENCY page")" 1 \
		"emergency: unanswered, the page moves to the second"
	cmd "$owner" "$e1" ACCEPT
	is "$(state_of "$e1")" accepted "emergency: the second accepts"
	is "$(mail_for agent@example.net "$e1" "Emergency taken")" 1 \
		"emergency: the reporter is told who owns it"
	cmd "$owner" "$e1" ZONE-TEAM-INFORMED
	is "$(mail_for root-zone-team@example.org "$e1" "Emergency")" 1 \
		"emergency: the root zone team is informed"
	cmd "$owner" "$e1" "MANAGER-CONTACTED: manager@example.net"
	cmd "$owner" "$e1" CONFIRMED
	cmd "$owner" "$e1" VALIDATED
	cmd "$owner" "$e1" HEADS-UP
	is "$(mail_for rzm-heads-up@example.net "$e1" "Heads-up")" 1 \
		"emergency: the root zone maintainer gets the heads-up"
	cmd "$owner" "$e1" IMPLEMENTED
	cmd "$owner" "$e1" CLOSE
	is "$(state_of "$e1")" closed "emergency: closed by its owner"

	e2=$(open_by agent@example.net root-mgmt@example.org \
		"Urgent glue change" emg-2)
	cmd oncall-1@example.org "$e2" ACCEPT
	cmd oncall-3@example.org "$e2" ZONE-TEAM-INFORMED
	is "$(state_of "$e2")" accepted \
		"emergency: only the owner moves it on"
	is "$(mail_for oncall-3@example.org "$e2" "Command refused")" 1 \
		"emergency: the refused staff member is told why"
	cmd oncall-1@example.org "$e2" ZONE-TEAM-INFORMED
	cmd oncall-1@example.org "$e2" "MANAGER-CONTACTED: mgr2@example.net"
	cmd oncall-1@example.org "$e2" "NOT-CONFIRMED: routine change"
	is "$(state_of "$e2")" not-an-emergency \
		"emergency: found not to be one"
	is "$(mail_for mgr2@example.net "$e2" "Your emergency request")" 1 \
		"emergency: the TLD manager is told the other options"
}

# A complainant who goes to the ombudsman; one who takes the case to
# the CSC, which declares a problem that is then answered and closed.
check_complaint_walks() {
	local c1 c2 p
	c1=$(open_by olga@example.net "$DESK" "[IANA #7770001] wrong" ombu)
	cmd olga@example.net "$c1" "OMBUDSMAN: nobody answers"
	is "$(state_of "$c1")" with-ombudsman \
		"ombudsman: the complainant takes the case there"
	is "$(mail_for ombudsman@example.org "$c1" "Complaint referred")" 1 \
		"ombudsman: the ombudsman has it"
	cmd ombudsman@example.org "$c1" "RESPOND: settled with the team"
	cmd desk@example.org "$c1" "CLOSE: settled"
	is "$(state_of "$c1")" closed "ombudsman: answered and closed"

	c2=$(open_by pia@example.net "$DESK" "[IANA #7770002] again" csc)
	cmd pia@example.net "$c2" CSC
	is "$(mail_for csc-chair@example.org "$c2" "Complaint taken")" 1 \
		"phase 2: the CSC is asked to decide"
	cmd csc-chair@example.org "$c2" MEDIATE
	cmd csc-chair@example.org "$c2" "MEDIATOR: mediator@example.net"
	is "$(mail_for mediator@example.net "$c2" "You are asked")" 1 \
		"phase 2: the mediator is assigned"
	cmd csc-chair@example.org "$c2" "PROBLEM: a pattern of delays"
	is "$(state_of "$c2")" problem-declared "phase 2: a problem declared"
	p=$(esc_sql "$dir" "SELECT id FROM cases WHERE linked_case = '$c2';")
	[[ $p =~ ^PRB- ]]
	ok $? "problem: $p opened, linked to $c2"
	is "$(mail_for programme-manager@example.org "$p" "Problem")" 1 \
		"problem: the programme manager is told"
	cmd programme-manager@example.org "$p" "RESPOND: remedy plan"
	cmd csc-chair@example.org "$p" ADEQUATE
	is "$(state_of "$p")" closed "problem: response adequate, closed"
}

# An admin changes a command word and a template, checks, reloads, and
# the daemon acts on the new rules; bad rules keep the old ones.
check_reload() {
	local conf rules c out
	conf=$(esc_conf "$dir")
	rules=$dir/escalator/conf/rules/$(basename "$RULES")
	sed -i 's/RESPOND/ANSWER/g' "$rules"
	sed -i '1s/Response to your complaint/Our answer/' \
		"$dir/escalator/conf/templates/complaint-response.txt"
	out=$("$ESCALATORCTL" -c "$conf" check 2>&1)
	ok $? "reload: escalatorctl check accepts the edit"
	kill -USR1 "$ESC_PID"
	sleep 1
	c=$(open_by quinn@example.net "$DESK" "[IANA #7770003] x" reload-1)
	cmd desk@example.org "$c" "ANSWER: done differently"
	is "$(state_of "$c")" responded "reload: the new command word acts"
	is "$(mail_for quinn@example.net "$c" "Our answer")" 1 \
		"reload: the edited template is sent"

	echo "transitions: [" >>"$rules"
	"$ESCALATORCTL" -c "$conf" check >/dev/null 2>&1
	is $? 78 "reload: check refuses broken rules (EX_CONFIG)"
	kill -USR1 "$ESC_PID"
	sleep 1
	grep -q "reload: rules .* not loaded, the old rules stay" \
		"$dir/escalator/escalatord.log"
	ok $? "reload: broken rules are logged and not loaded"
	cmd desk@example.org "$c" "CLOSE: done"
	is "$(state_of "$c")" closed "reload: the old rules still act"
	# The admin mends the file.
	sed -i '$d' "$rules"
	"$ESCALATORCTL" -c "$conf" check >/dev/null 2>&1
	ok $? "reload: mended rules pass check again"
	kill -USR1 "$ESC_PID"
	sleep 1
}

# kill -9 under load: 8 clients send complaints while escalatord is
# killed and started again. Every message Postfix accepted (the milter
# said yes, after its commit) has its case with all its parts; every
# acknowledgement queued is delivered, twice at most and then with the
# same Message-ID (a crash between handing it over and marking it sent).
check_kill_under_load() {
	local i j accepted=$dir/msgs/accepted lost=0 half dup=0 box ids
	local senders=()
	: >"$accepted"
	for i in 1 2 3 4 5 6 7 8; do
		(
		for j in $(seq 1 25); do
			m=$dir/msgs/k-$i-$j.eml
			printf '%s\r\n' "From: <k$i-$j@example.net>" \
				"To: $DESK" "Subject: load [IANA #9$i$(printf %04d "$j")]" \
				"Message-ID: <k-$i-$j@load.example>" "" "x" >"$m"
			pf_send "$SMTP_PORT" "$m" "k$i-$j@example.net" \
				"$DESK" >/dev/null 2>&1 &&
				echo "k-$i-$j@load.example" >>"$accepted"
		done
		) &
		senders+=($!)
	done
	sleep 1.5
	kill -9 "$ESC_PID"
	wait "$ESC_PID" 2>/dev/null
	rm -f "$dir/escalator/run/escalatord.sock"
	sleep 0.5
	esc_start "$dir" "$ESCALATORD" >/dev/null
	ok $? "kill: escalatord restarted under load"
	wait "${senders[@]}"
	settle
	# A mail the killed daemon had claimed is sent again once its claim
	# runs out (send timeout + 60 s, README): let that time pass.
	clock_to $(($(cat "$dir/escalator/clock") + 300))
	# (The restarted daemon's log is new: it holds only what came after.)
	is "$(grep -c 'opened: .*@load.example>' \
		"$dir/escalator/escalatord.log" | awk '{print ($1 > 0)}')" 1 \
		"kill: messages were taken after the restart too" \
		"($(wc -l <"$accepted") of 200 accepted in all)"
	while read -r id; do
		[ -n "$(esc_sql "$dir" "SELECT case_id FROM messages \
			WHERE key = '$id';")" ] || lost=$((lost + 1))
	done <"$accepted"
	is "$lost" 0 "kill: every accepted message has its case"
	half=$(esc_sql "$dir" "SELECT count(*) FROM cases c WHERE \
		c.id IN (SELECT case_id FROM messages WHERE key LIKE \
		'%@load.example') AND (c.state = 'new' OR NOT EXISTS \
		(SELECT 1 FROM case_tickets t WHERE t.case_id = c.id) OR \
		NOT EXISTS (SELECT 1 FROM events e WHERE e.case_id = c.id \
		AND e.kind = 'opened') OR NOT EXISTS (SELECT 1 FROM outbox o \
		WHERE o.case_id = c.id AND o.kind = 'complaint-ack'));")
	is "$half" 0 "kill: no case is half-written"
	is "$(esc_sql "$dir" "SELECT count(*) FROM outbox WHERE state != \
		'sent' AND case_id IN (SELECT case_id FROM messages WHERE \
		key LIKE '%@load.example');")" 0 \
		"kill: every queued mail of those cases was sent"
	while read -r id; do
		# <k-I-J@load.example> came from kI-J@example.net.
		box=${id%@load.example}
		box=$(pf_mailbox "$dir" "k${box#k-}@example.net")
		ids=$(pf_mbox_summary "$box" | cut -f1 | sort -u | wc -l)
		if [ "$(pf_mbox_count "$box")" -lt 1 ] || [ "$ids" -ne 1 ]; then
			dup=$((dup + 1))
		fi
	done <"$accepted"
	is "$dup" 0 "kill: each complainant got its acknowledgement, \
any second copy with the same Message-ID"
}

main() {
	check_able
	dir=$(mktemp -d /tmp/escalator-e2e.XXXXXX)
	chmod 0755 "$dir"
	trap cleanup EXIT
	trap 'exit 1' INT TERM HUP
	write_messages

	# Each step reports its own result; a step that cannot go on ends
	# the test there.
	set +e
	start_all
	[ "$failed" -eq 0 ] || { echo "1..$tests"; exit 1; }
	send_all
	wait_outbox 60
	check_desk
	check_store
	check_mailboxes
	check_wire_message
	check_no_message_id
	check_walk
	check_emergency_walks
	check_complaint_walks
	check_reload
	check_kill_under_load
	set -e

	echo "1..$tests"
	[ "$failed" -eq 0 ] || exit 1
}

main "$@"
