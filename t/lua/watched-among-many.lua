-- One watched recipient among unwatched ones, even after them, still
-- gets the message processed and tagged with its case.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
conn = start("MANY1", "<olaf@example.com>")
assert(mt.rcptto(conn, "<someone@example.org>") == nil)
assert(mt.rcptto(conn, "<Escalation@Example.org>") == nil)
assert(mt.data(conn) == nil)
expect(mt.getreply(conn) == SMFIR_CONTINUE, "watched mail continues at DATA")
send_message(conn, {
	{"From", "Olaf Peters <olaf@example.com>"},
	{"To", "escalation@example.org, someone@example.org"},
	{"Subject", "Transfer of example.com [IANA #123456]"},
	{"Message-ID", "<many-1@example.com>"},
}, "Please investigate.\r\n")
expect(mt.getreply(conn) == SMFIR_ACCEPT, "accepted at end of message")
expect(mt.eom_check(conn, MT_HDRADD, "X-Escalator-Case"),
    "X-Escalator-Case added")
case = mt.getheader(conn, "X-Escalator-Case", 0)
-- The MTA agreed to pass header values with their leading space, so
-- the value we add must bring its own: "X-Escalator-Case: ESC-...".
expect(case and case:match("^ ESC%-%d%d%d%d%-%d%d%d%d%d%d$"),
    "case id after one space in header: '" .. tostring(case) .. "'")
mt.disconnect(conn)
