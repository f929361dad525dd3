# shellcheck shell=bash
# t/lib/postfix.sh: a private Postfix instance, and escalatord beside it,
# for the end-to-end tests and tools/quickstart. Source it; run as root.
#
# The instance lives in one directory DIR:
#   DIR/etc/       main.cf, master.cf, the mailbox map (written here)
#   DIR/queue/     queue_directory;  DIR/data/  data_directory
#   DIR/mail/      mbox files, DIR/mail/DOMAIN/USER, owned by nobody
#   DIR/maillog    the instance's log (maillog_file, via postlogd)
# It listens on 127.0.0.1 only: SMTP_PORT passes mail through the milter,
# SUBMIT_PORT (no milter) takes escalatord's own outgoing mail. It
# delivers only to local mbox files for example.org, example.com and
# example.net (pipe(8) to dd(1)); every other destination is refused at
# RCPT, and the error transport stands in for relay, default and local,
# so nothing can leave the machine. The system Postfix is never touched.
#
# Functions: pf_start, pf_stop, pf_mailbox, pf_wait_queue_empty, pf_log,
# pf_free_port, pf_send, pf_mbox_count, pf_mbox_summary, pf_mbox_text;
# for escalatord (user escalator, files under DIR/escalator/):
# esc_ensure_user, esc_state_dir, esc_write_conf, esc_conf, esc_start,
# esc_stop, esc_sql, esc_ctl.

PF_DOMAINS="example.org example.com example.net"
PF_MAIL_USER=nobody
ESC_USER=escalator

# Print an error on stderr.
pf_err() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# Print a TCP port on 127.0.0.1 that nothing listens on, below Linux's
# ephemeral range; arguments are ports to avoid as well. Reads the
# socket table, probes nothing.
pf_free_port() {
	local port used tries=0
	used=$(ss -Hltn 2>/dev/null | awk '{ n = split($4, a, ":");
		print a[n] }')
	while [ "$tries" -lt 200 ]; do
		port=$((20000 + RANDOM % 12000))
		tries=$((tries + 1))
		if ! printf '%s\n' "$used" "$@" | grep -qx "$port"; then
			echo "$port"
			return 0
		fi
	done
	pf_err "no free port found"
	return 1
}

# Write DIR/etc/main.cf. MILTER is empty for no milter.
pf_write_main_cf() {
	local dir=$1 milter=$2
	cat >"$dir/etc/main.cf" <<EOF
# Private test instance written by t/lib/postfix.sh; loopback only.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = mail.escalator.test
mydomain = escalator.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

# Nothing leaves the machine: no relayhost, no smtp(8) in master.cf, and
# every transport but our mbox one is the error transport.
relayhost =
mydestination =
default_transport = error:outbound mail is disabled in this instance
relay_transport = error:relaying is disabled in this instance
local_transport = error:local delivery is disabled in this instance
smtpd_relay_restrictions = reject_unauth_destination
alias_maps =
alias_database =

# Local mbox delivery: DIR/mail/DOMAIN/USER, appended by dd(1) run by
# pipe(8) as $PF_MAIL_USER, one recipient and one delivery at a time.
# (virtual(8) would need a map line per address: it refuses regexp
# substitution in virtual_mailbox_maps.) The map only validates.
virtual_mailbox_domains = $PF_DOMAINS
virtual_mailbox_maps = regexp:$dir/etc/mailboxes.regexp
virtual_transport = mbox
mbox_destination_recipient_limit = 1
message_size_limit = 52428800

# The milter, on the first listener only (master.cf clears it on the
# second); mail is deferred when the milter cannot be reached.
smtpd_milters = $milter
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6

smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP escalator test instance
biff = no
append_dot_mydomain = no
readme_directory = no
delay_warning_time = 0
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
EOF
}

# Write DIR/etc/master.cf: two loopback listeners, the services local
# delivery needs, postlogd for maillog_file; no chroot anywhere.
pf_write_master_cf() {
	local dir=$1 smtp=$2 submit=$3
	cat >"$dir/etc/master.cf" <<EOF
# Private test instance written by t/lib/postfix.sh; chroot is off.
# service       type  private unpriv chroot wakeup maxproc command
127.0.0.1:$smtp inet  n       -      n      -      -       smtpd
127.0.0.1:$submit inet n      -      n      -      -       smtpd
  -o syslog_name=postfix/submit
  -o smtpd_milters=
pickup          unix  n       -      n      60     1       pickup
cleanup         unix  n       -      n      -      0       cleanup
qmgr            unix  n       -      n      300    1       qmgr
rewrite         unix  -       -      n      -      -       trivial-rewrite
bounce          unix  -       -      n      -      0       bounce
defer           unix  -       -      n      -      0       bounce
trace           unix  -       -      n      -      0       bounce
verify          unix  -       -      n      -      1       verify
flush           unix  n       -      n      1000?  0       flush
proxymap        unix  -       -      n      -      -       proxymap
showq           unix  n       -      n      -      -       showq
error           unix  -       -      n      -      -       error
retry           unix  -       -      n      -      -       error
discard         unix  -       -      n      -      -       discard
mbox            unix  -       n      n      -      1       pipe
  flags=DORFB>hu user=$PF_MAIL_USER
  argv=/bin/dd of=$dir/mail/\${domain}/\${user} oflag=append
  conv=notrunc status=none
anvil           unix  -       -      n      -      1       anvil
scache          unix  -       -      n      -      1       scache
postlog         unix-dgram n  -      n      -      1       postlogd
EOF
}

# Write the map of valid recipients: any USER@DOMAIN of our domains
# whose local part cannot climb out of its directory.
pf_write_maps() {
	local dir=$1
	cat >"$dir/etc/mailboxes.regexp" <<'EOF'
/^[a-z0-9_-][a-z0-9._-]*@example\.(org|com|net)$/	ok
EOF
}

# Create the directories; mail/ and its domains belong to the mail user.
pf_make_dirs() {
	local dir=$1 d
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/mail"
	chmod 0755 "$dir" "$dir/etc" "$dir/queue"
	chown postfix:root "$dir/data"
	chmod 0700 "$dir/data"
	for d in $PF_DOMAINS; do
		mkdir -p "$dir/mail/$d"
	done
	chown -R "$PF_MAIL_USER:" "$dir/mail"
	chmod 0755 "$dir/mail"
}

# Fail unless postfix and the mail user can reach into DIR: a closed
# parent folder (a private home, say) would stop them.
pf_check_reach() {
	local dir=$1
	runuser -u postfix -- test -x "$dir/queue" &&
		runuser -u "$PF_MAIL_USER" -- test -w "$dir/mail" && return 0
	pf_err "$dir is out of reach of users postfix and $PF_MAIL_USER;" \
		"open its parent folders or use one under /tmp"
	return 1
}

# Wait up to 15 s until something listens on 127.0.0.1:PORT.
pf_wait_listen() {
	local port=$1
	for _ in $(seq 1 150); do
		if ss -Hltn "sport = :$port" | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	pf_err "nothing listens on 127.0.0.1:$port"
	return 1
}

# pf_start DIR SMTP_PORT SUBMIT_PORT MILTER_SOCKET: write the config and
# start the instance. MILTER_SOCKET is unix:PATH, inet:HOST:PORT, a bare
# path, or empty (or -) for no milter.
pf_start() {
	local dir=$1 smtp=$2 submit=$3 milter=${4:-}

	case $milter in
	-) milter= ;;
	/*) milter=unix:$milter ;;
	esac
	pf_make_dirs "$dir"
	pf_check_reach "$dir" || return 1
	pf_write_main_cf "$dir" "$milter"
	pf_write_master_cf "$dir" "$smtp" "$submit"
	pf_write_maps "$dir"

	# Create the queue directories, then refuse a config that fails.
	# Postfix reports to stderr only on a terminal: show its log.
	postfix -c "$dir/etc" check || {
		pf_err "postfix -c $dir/etc check failed:"
		tail -n 20 "$dir/maillog" >&2 2>/dev/null || true
		return 1
	}
	postfix -c "$dir/etc" start || {
		pf_err "postfix -c $dir/etc start failed:"
		tail -n 20 "$dir/maillog" >&2 2>/dev/null || true
		return 1
	}
	pf_wait_listen "$smtp" && pf_wait_listen "$submit"
}

# pf_stop DIR: stop the instance and wait for its master to exit.
pf_stop() {
	local dir=$1 pidfile pid
	pidfile=$dir/queue/pid/master.pid
	[ -f "$dir/etc/main.cf" ] || return 0
	pid=$(tr -dc '0-9' 2>/dev/null <"$pidfile" || true)
	postfix -c "$dir/etc" stop 2>/dev/null || true
	[ -n "$pid" ] || return 0

	# The master was ours; if it lingers, end that one process.
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	pf_err "postfix master $pid did not stop; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# pf_mailbox DIR ADDRESS: print the path of ADDRESS's mbox file.
pf_mailbox() {
	local dir=$1 addr
	addr=$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')
	printf '%s/mail/%s/%s\n' "$dir" "${addr#*@}" "${addr%@*}"
}

# pf_log DIR: print the path of the instance's log file.
pf_log() {
	printf '%s/maillog\n' "$1"
}

# Count the messages waiting in DIR's queue.
pf_queue_count() {
	local q=$1/queue
	find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" \
		"$q/hold" -type f 2>/dev/null | wc -l
}

# pf_wait_queue_empty DIR TIMEOUT: wait until the queue is empty; fail
# with the queue listing after TIMEOUT seconds.
pf_wait_queue_empty() {
	local dir=$1 timeout=${2:-30} end
	end=$((SECONDS + timeout))
	while [ "$(pf_queue_count "$dir")" -gt 0 ]; do
		if [ "$SECONDS" -ge "$end" ]; then
			pf_err "queue of $dir not empty after ${timeout}s"
			postqueue -c "$dir/etc" -p >&2 || true
			return 1
		fi
		sleep 0.2
	done
}

# pf_send PORT FILE FROM TO... : send FILE as is by SMTP to 127.0.0.1.
# Prints swaks's transcript only when the server did not accept it.
pf_send() {
	local port=$1 file=$2 from=$3 out
	shift 3
	out=$(swaks --server 127.0.0.1 --port "$port" --helo localhost \
		--from "$from" --to "$(IFS=,; echo "$*")" \
		--data "@$file" --timeout 60 2>&1) || {
		printf '%s\n' "$out" >&2
		return 1
	}
}

# The mbox reader: split FILE into messages (pipe(8) quoted body lines
# that start with "From "), unfold headers, decode encoded words and
# quoted-printable or base64 bodies, and print per MODE:
#   count    the number of messages
#   summary  Message-ID TAB X-Escalator-Case values (comma) TAB Subject
#   text     each message's From, Subject, In-Reply-To and decoded text
# shellcheck disable=SC2016
PF_MBOX_PL='
use strict; use warnings;
use Encode qw(decode encode); use MIME::Base64; use MIME::QuotedPrint;
my ($mode, $file) = @ARGV;
open(my $fh, "<", $file) or do { print "0\n" if $mode eq "count"; exit };
my $all = do { local $/; <$fh> };
my @msgs = grep { length } split /^From [^\n]*\n/m, $all;
sub headers { my ($h) = @_; $h =~ s/\r?\n[ \t]+/ /g;
	my @l = split /\r?\n/, $h; return @l; }
sub field { my ($name, @l) = @_;
	return map { /^\Q$name\E:\s*(.*?)\s*$/i ? ($1) : () } @l; }
sub body_text { my ($head, $body) = @_; my @h = headers($head);
	my ($ct) = field("Content-Type", @h); $ct //= "text/plain";
	my ($te) = field("Content-Transfer-Encoding", @h); $te //= "";
	if ($ct =~ /^multipart\/.*boundary="?([^";]+)"?/is) {
		my $b = $1; my $out = "";
		for my $p (split /^--\Q$b\E(?:--)?[ \t]*\r?\n?/m, $body) {
			my ($ph, $pb) = split /\r?\n\r?\n/, $p, 2;
			next unless defined $pb && $ph =~ /\S/;
			$out .= body_text($ph, $pb) . "\n"; }
		return $out; }
	return decode_qp($body) if $te =~ /quoted-printable/i;
	return decode_base64($body) if $te =~ /base64/i;
	return $body; }
if ($mode eq "count") { print scalar(@msgs), "\n"; exit; }
for my $m (@msgs) {
	my ($head, $body) = split /\r?\n\r?\n/, $m, 2; $body //= "";
	my @h = headers($head);
	my ($id) = field("Message-ID", @h); $id //= "";
	my ($subj) = field("Subject", @h); $subj //= "";
	$subj = eval { encode("UTF-8", decode("MIME-Header", $subj)) }
		// $subj;
	if ($mode eq "summary") {
		print join("\t", $id, join(",", field("X-Escalator-Case", @h)),
			$subj), "\n";
	} else {
		my ($from) = field("From", @h); my ($irt) = field("In-Reply-To", @h);
		print "From: ", $from // "", "\nSubject: $subj\n",
			"In-Reply-To: ", $irt // "", "\n\n",
			body_text($head, $body), "\n\f\n"; } }
'

# pf_mbox_count FILE: print how many messages the mbox FILE holds (0 for
# none). pf_mbox_summary FILE, pf_mbox_text FILE: see PF_MBOX_PL.
pf_mbox_count() {
	perl -e "$PF_MBOX_PL" count "$1"
}
pf_mbox_summary() {
	perl -e "$PF_MBOX_PL" summary "$1"
}
pf_mbox_text() {
	perl -e "$PF_MBOX_PL" text "$1"
}

# Create the escalator system user when it is missing.
esc_ensure_user() {
	getent passwd "$ESC_USER" >/dev/null && return 0
	useradd --system --user-group --no-create-home \
		--home-dir /nonexistent --shell /usr/sbin/nologin "$ESC_USER"
}

# esc_state_dir PATH [GROUP] [MODE]: a directory the escalator user owns
# and writes (database, pid file, socket).
esc_state_dir() {
	local path=$1 group=${2:-$ESC_USER} mode=${3:-0750}
	mkdir -p "$path"
	chown "$ESC_USER:$group" "$path"
	chmod "$mode" "$path"
}

# esc_write_conf DIR SUBMIT_PORT RULES TEMPLATES: lay out DIR/escalator
# (the rules file's folder and the templates copied, so the dropped
# user can read them wherever the source tree is, a
# state dir, a run dir the postfix group may enter) and write its
# escalator.conf; print the path of the socket.
esc_write_conf() {
	local dir=$1 submit=$2 rules=$3 templates=$4 e
	e=$dir/escalator
	mkdir -p "$e/conf"
	chmod 0755 "$e" "$e/conf"
	cp -r "$(dirname "$rules")" "$e/conf/rules"
	mkdir -p "$e/conf/templates"
	find "$templates" -maxdepth 1 -type f ! -name '*.[cho]' \
		-exec cp {} "$e/conf/templates/" \;
	chmod -R a+rX "$e/conf"
	esc_state_dir "$e/state"
	esc_state_dir "$e/run" postfix 0750
	cat >"$e/conf/escalator.conf" <<EOF
# Written by t/lib/postfix.sh for a private test instance.
socket: unix:$e/run/escalatord.sock
socket_mode: "0660"
socket_group: postfix
user: $ESC_USER
pidfile: $e/run/escalatord.pid
database: $e/state/escalator.db
rules: $e/conf/rules/$(basename "$rules")
templates: $e/conf/templates
send: smtp:127.0.0.1:$submit
on_error: tempfail
log_level: debug
EOF
	printf '%s/run/escalatord.sock\n' "$e"
}

# esc_conf DIR: print the path of escalator.conf written for DIR.
esc_conf() {
	printf '%s/escalator/conf/escalator.conf\n' "$1"
}

# esc_start DIR ESCALATORD: check the config, start the daemon in the
# foreground with its log in DIR/escalator/escalatord.log, remember its
# pid in ESC_PID, and wait up to 20 s for its socket. ESC_DETACH=1 puts
# it in a session of its own, to outlive the calling script.
esc_start() {
	local dir=$1 bin=$2 conf sock out
	conf=$(esc_conf "$dir")
	sock=$dir/escalator/run/escalatord.sock
	out=$("$bin" -c "$conf" -n 2>&1) || {
		pf_err "escalatord -n rejects $conf:"
		printf '%s\n' "$out" >&2
		return 1
	}
	printf '%s\n' "$out" | sed 's/^/# /'
	if [ "${ESC_DETACH:-0}" = 1 ]; then
		setsid "$bin" -c "$conf" -f </dev/null \
			>"$dir/escalator/escalatord.log" 2>&1 &
	else
		"$bin" -c "$conf" -f </dev/null \
			>"$dir/escalator/escalatord.log" 2>&1 &
	fi
	ESC_PID=$!
	echo "$ESC_PID" >"$dir/escalator/escalatord.fg.pid"
	for _ in $(seq 1 200); do
		[ -S "$sock" ] && return 0
		if ! kill -0 "$ESC_PID" 2>/dev/null; then
			pf_err "escalatord exited; its log:"
			cat "$dir/escalator/escalatord.log" >&2
			return 1
		fi
		sleep 0.1
	done
	pf_err "escalatord made no socket $sock in 20s"
	return 1
}

# esc_stop DIR: stop the escalatord that esc_start started for DIR.
esc_stop() {
	local dir=$1 pid
	pid=$(cat "$dir/escalator/escalatord.fg.pid" 2>/dev/null || true)
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		pf_err "escalatord $pid did not stop; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/escalator/escalatord.fg.pid"
}

# esc_sql DIR SQL: run a query on the store as the escalator user, so
# no file of the database ever becomes root's.
esc_sql() {
	runuser -u "$ESC_USER" -- sqlite3 -batch -noheader \
		"$1/escalator/state/escalator.db" "$2"
}

# esc_ctl DIR ESCALATORCTL ARGS...: run escalatorctl as escalator, from
# a copy in DIR, since the build tree may be out of that user's reach.
esc_ctl() {
	local dir=$1 bin=$2 copy
	shift 2
	copy=$dir/escalator/bin/escalatorctl
	if [ ! -x "$copy" ] || [ "$bin" -nt "$copy" ]; then
		install -D -m 0755 "$bin" "$copy"
	fi
	runuser -u "$ESC_USER" -- "$copy" -c "$(esc_conf "$dir")" "$@"
}
