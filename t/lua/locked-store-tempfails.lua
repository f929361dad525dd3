-- While another process holds the database write lock past the busy
-- timeout, the message is tempfailed, so the MTA keeps it and retries.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
mt.set_timeout(30)
conn = start("LOCK1", "<olaf@example.com>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
send_message(conn, {
	{"From", "Olaf <olaf@example.com>"},
	{"Subject", "[IANA #654321] while locked"},
	{"Message-ID", "<locked-1@example.com>"},
}, "Hello.\r\n")
reply = mt.getreply(conn)
expect(reply == SMFIR_TEMPFAIL or reply == SMFIR_REPLYCODE,
    "tempfail while locked")
mt.disconnect(conn)
