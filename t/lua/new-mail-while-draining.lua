-- While the daemon drains for a graceful stop, a new watched message is
-- tempfailed at DATA, so the MTA keeps it for later.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
conn = start("QUIT2", "<ines@example.net>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
local reply = mt.getreply(conn)
expect(reply == SMFIR_TEMPFAIL or reply == SMFIR_REPLYCODE,
    "tempfail at DATA while draining")
mt.disconnect(conn)
