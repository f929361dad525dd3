-- A message in flight when the daemon is told to stop (t/protocol.sh
-- sends SIGTERM during the pause): libmilter drops the session, so the
-- MTA gets no answer and applies its milter_default_action (tempfail:
-- it keeps the message and sends it again later). Nothing of it may be
-- stored; protocol.sh checks that.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
mt.set_timeout(5)
conn = start("STOP1", "<olaf@example.com>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
assert(mt.header(conn, "From", "Olaf <olaf@example.com>") == nil)
assert(mt.header(conn, "Subject", "[IANA #135790] sent as we stop") == nil)
assert(mt.header(conn, "Message-ID", "<stop-1@example.com>") == nil)
-- Tell the test script we are mid-message, then wait for its signal.
local f = assert(io.open(os.getenv("READY_FILE"), "w"))
f:close()
mt.sleep(2)
local ok = pcall(send_message, conn, {}, "Hello.\r\n")
expect(not ok or mt.getreply(conn) ~= SMFIR_ACCEPT,
    "no accept from a stopped filter")
