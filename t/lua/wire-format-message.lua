-- Message 14 as an MTA sends it: a subject folded with LF and TAB, a
-- 1,500-byte header, a body longer than one 65,535-byte chunk. It is
-- read like the file: the tag [ESC-42] names no case here, so a case
-- is opened (and, the sender being staff, not acknowledged).
-- miltertest itself overflows a buffer on header values over about
-- 1 KB, so the long header is cut to 1,000 bytes here; the full one
-- goes through Postfix in t/e2e-postfix.sh and through the parser in
-- t/check_messages.c.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local f = assert(io.open(os.getenv("MESSAGES") ..
    "/14-milter-wire-format.eml", "rb"))
local text = f:read("*a")
f:close()
local head, body = text:match("^(.-)\r\n\r\n(.*)$")
local headers = {}
for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
	if line:match("^[ \t]") then
		headers[#headers][2] = headers[#headers][2] .. "\n" .. line
	else
		local name, value = line:match("^([^:]+):[ \t]?(.*)$")
		headers[#headers + 1] = {name, value}
	end
end
for _, h in ipairs(headers) do
	h[2] = h[2]:sub(1, 1000)
end
conn = start("WIRE1", "<ana.lindqvist@example.org>")
assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
assert(mt.data(conn) == nil)
send_message(conn, headers, body)
expect(mt.getreply(conn) == SMFIR_ACCEPT, "accepted")
expect(mt.eom_check(conn, MT_HDRADD, "X-Escalator-Case"), "case header")
mt.disconnect(conn)
