-- Mail to unwatched recipients is accepted at DATA: no header or body
-- is sent to the filter.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
conn = start("UNW1", "<olaf@example.com>")
assert(mt.rcptto(conn, "<someone@example.org>") == nil)
assert(mt.rcptto(conn, "<other@example.net>") == nil)
assert(mt.data(conn) == nil)
expect(mt.getreply(conn) == SMFIR_ACCEPT, "unwatched mail accepted at DATA")
mt.disconnect(conn)
