-- An X-Escalator-Case header written by the sender is removed, so the
-- mailbox sees only the one escalatord adds.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
conn = start("FORGE1", "<mallory@example.net>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
send_message(conn, {
	{"From", "Mallory <mallory@example.net>"},
	{"X-Escalator-Case", "ESC-2026-999999"},
	{"Subject", "Ticket 2024-0099"},
	{"x-escalator-case", "ESC-2026-999998"},
	{"Message-ID", "<forge-1@example.net>"},
}, "Hello.\r\n")
expect(mt.getreply(conn) == SMFIR_ACCEPT, "accepted")
expect(mt.eom_check(conn, MT_HDRDELETE, "X-Escalator-Case"),
    "forged headers removed")
expect(mt.eom_check(conn, MT_HDRADD, "X-Escalator-Case"), "ours added")
mt.disconnect(conn)
