-- A staff command counts only with a proof of its sender: the same
-- CLOSE from desk@ is refused without SMTP AUTH and taken with the
-- desk's login in {auth_authen}. t/protocol.sh reads the states.
dofile(os.getenv("LUA_DIR") .. "/common.lua")

local function open_case(n)
	local conn = start("AUTHOPEN" .. n, "<nina@example.net>")
	assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
	assert(mt.data(conn) == nil)
	send_message(conn, {
		{"From", "Nina <nina@example.net>"},
		{"Subject", "[IANA #86420" .. n .. "] stuck"},
		{"Message-ID", "<auth-open-" .. n .. "@example.net>"},
	}, "Please.\r\n")
	expect(mt.getreply(conn) == SMFIR_ACCEPT, "complaint accepted")
	-- The header is added with its leading space (HDR_LEADSPC).
	local case_id = mt.getheader(conn, "X-Escalator-Case", 0):gsub("^%s+", "")
	mt.disconnect(conn)
	return case_id
end

local function close(case_id, n, login)
	local conn = start("AUTHCLOSE" .. n, "<desk@example.org>", login)
	assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
	assert(mt.data(conn) == nil)
	send_message(conn, {
		{"From", "Desk <desk@example.org>"},
		{"Subject", "Re: [" .. case_id .. "] CLOSE: done"},
		{"Message-ID", "<auth-close-" .. n .. "@example.org>"},
	}, "Done.\r\n")
	expect(mt.getreply(conn) == SMFIR_ACCEPT, "command accepted")
	mt.disconnect(conn)
end

close(open_case(1), 1, nil)
close(open_case(2), 2, "ana")
