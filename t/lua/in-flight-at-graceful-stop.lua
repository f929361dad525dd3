-- A message past DATA when the daemon is asked to stop gracefully
-- (t/protocol.sh sends SIGQUIT during the pause) is finished: accepted
-- with its case header.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
mt.set_timeout(30)
conn = start("QUIT1", "<olaf@example.com>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
assert(mt.header(conn, "From", "Olaf <olaf@example.com>") == nil)
assert(mt.header(conn, "Subject", "[IANA #246800] sent as we drain") == nil)
assert(mt.header(conn, "Message-ID", "<quit-1@example.com>") == nil)
local f = assert(io.open(os.getenv("READY_FILE"), "w"))
f:close()
mt.sleep(3)
send_message(conn, {}, "Hello.\r\n")
expect(mt.getreply(conn) == SMFIR_ACCEPT, "accepted while draining")
expect(mt.eom_check(conn, MT_HDRADD, "X-Escalator-Case"), "case header")
mt.disconnect(conn)
