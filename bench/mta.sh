# shellcheck shell=bash
# bench/mta.sh: the MTA scenario of bench/run (--mta), sourced by it.
#
# Two private Postfix instances from t/lib/postfix.sh, on loopback ports
# under $work, one with escalatord attached and one with the null
# milter; smtp-source sends the same number of 10 KB messages to each in
# turn, round after round, over 8 sessions. Delivery is deferred
# (defer_transports = mbox) and the queues emptied between runs, so what
# is timed is the SMTP intake that the milter slows, not mbox writing.
# Needs root, as the end-to-end test does; skipped otherwise.

MTA_MSGS=${MTA_MSGS:-400}

# mta_start NAME MILTER_SOCKET: a Postfix in $work/NAME; sets MTA_PORT.
mta_start() {
	local dir=$work/$1 smtp submit
	smtp=$(pf_free_port)
	submit=$(pf_free_port "$smtp")
	pf_start "$dir" "$smtp" "$submit" "$2" >/dev/null
	postconf -c "$dir/etc" -e 'defer_transports = mbox' \
		'smtpd_client_connection_rate_limit = 0' \
		'smtpd_client_message_rate_limit = 0'
	postfix -c "$dir/etc" reload 2>/dev/null
	MTA_PORT=$smtp
}

# mta_null_milter [-d]: the null milter (again), in a folder Postfix's
# user may enter; sets NULL_SOCK.
mta_null_milter() {
	local d=$work/pf-null/milter
	[ -z "${NULL_PID:-}" ] || stop_pid "$NULL_PID"
	rm -f "$d/null.sock"
	mkdir -p "$d"
	chmod 0755 "$d"
	start_null "pf-null/milter/null" "$@"
	NULL_PID=$PID
	chmod 0666 "$d/null.sock"
	NULL_SOCK=unix:$d/null.sock
}

# mta_send PORT TO: time smtp-source; print messages per second.
mta_send() {
	local start end
	start=$(date +%s.%N)
	smtp-source -s 8 -m "$MTA_MSGS" -l 10240 -M bench.example.com \
		-f complainant@example.com -S 'Complaint about delegation' \
		-t "$2" "127.0.0.1:$1" >/dev/null 2>&1 || echo "smtp-source" \
		"failed on port $1" >&2
	end=$(date +%s.%N)
	awk -v n="$MTA_MSGS" -v s="$start" -v e="$end" \
		'BEGIN { printf "%.1f\n", n / (e - s) }'
}

# mta_round LABEL TO TARGET: rounds against both instances.
mta_compare() {
	local label=$1 to=$2 target=$3 r
	rate_base=()
	rate_esc=()
	for r in $(seq 1 "$rounds"); do
		postsuper -c "$work/pf-null/etc" -d ALL >/dev/null 2>&1 || true
		postsuper -c "$work/pf-esc/etc" -d ALL >/dev/null 2>&1 || true
		rate_base+=("$(mta_send "$PORT_NULL" "$to")")
		rate_esc+=("$(mta_send "$PORT_ESC" "$to")")
	done
	printf '  %s through Postfix, 8 sessions, %d rounds of %d messages:\n' \
		"$label" "$rounds" "$MTA_MSGS"
	read -r m lo hi <<<"$(stats "${rate_base[@]}")"
	printf '    %-10s msg/s median %8.1f (min %8.1f, max %8.1f)\n' \
		"null" "$m" "$lo" "$hi"
	read -r m lo hi <<<"$(stats "${rate_esc[@]}")"
	printf '    %-10s msg/s median %8.1f (min %8.1f, max %8.1f)\n' \
		"escalatord" "$m" "$lo" "$hi"
	check_ratio esc base "$target" "MTA $label"
}

scenario_mta() {
	local tool sock
	say "MTA: a private Postfix with escalatord vs with the null milter"
	for tool in postfix postconf postsuper smtp-source runuser ss; do
		command -v "$tool" >/dev/null || { echo "  skipped: no $tool"
			return 0; }
	done
	[ "$(id -u)" -eq 0 ] || { echo "  skipped: needs root"; return 0; }
	# shellcheck source=t/lib/postfix.sh
	. "$src/t/lib/postfix.sh"
	esc_ensure_user
	sock=$(esc_write_conf "$work/pf-esc" "$(pf_free_port)" "$RULES" \
		"$src/templates")
	sed -i 's/^log_level: .*/log_level: info/' "$(esc_conf "$work/pf-esc")"
	esc_start "$work/pf-esc" "$ESCALATORD" >/dev/null
	pids+=("$ESC_PID")
	mta_start pf-esc "unix:$sock"
	PORT_ESC=$MTA_PORT
	# As in scenario 1, the baseline for unwatched mail accepts at DATA.
	mta_null_milter -d
	mta_start pf-null "$NULL_SOCK"
	PORT_NULL=$MTA_PORT
	mta_compare "unwatched" colleague@example.org 0.9
	mta_null_milter
	mta_compare "new complaints" escalation@example.org 0.8
	echo "  cases opened through Postfix: $(esc_sql "$work/pf-esc" \
		'SELECT count(*) FROM cases')"
}
