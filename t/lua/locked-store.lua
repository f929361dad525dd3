-- While another process holds the database write lock past the busy
-- timeout, the message gets the on_error policy: TEMPFAIL by default,
-- so the MTA keeps it and retries; ACCEPT (uncased) when EXPECT=accept.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
mt.set_timeout(30)
local want_accept = os.getenv("EXPECT") == "accept"
conn = start(want_accept and "LOCK2" or "LOCK1", "<olaf@example.com>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
send_message(conn, {
	{"From", "Olaf <olaf@example.com>"},
	{"Subject", "[IANA #654321] while locked"},
	{"Message-ID", want_accept and "<locked-2@example.com>" or
	    "<locked-1@example.com>"},
}, "Hello.\r\n")
reply = mt.getreply(conn)
if want_accept then
	expect(reply == SMFIR_ACCEPT, "accepted while locked")
	expect(not mt.eom_check(conn, MT_HDRADD, "X-Escalator-Case"),
	    "no case header without a case")
else
	expect(reply == SMFIR_TEMPFAIL or reply == SMFIR_REPLYCODE,
	    "tempfail while locked")
end
mt.disconnect(conn)
