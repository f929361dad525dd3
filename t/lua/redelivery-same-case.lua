-- The same message delivered twice is tagged with the same case and
-- opens nothing new.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local cases = {}
for i = 1, 2 do
	conn = start("DUP" .. i, "<ines@example.net>")
	assert(mt.rcptto(conn, "<escalation@example.org>") == nil)
	assert(mt.data(conn) == nil)
	send_message(conn, {
		{"From", "Ines <ines@example.net>"},
		{"Subject", "Ticket 2024-0042 still open"},
		{"Message-ID", "<dup-1@example.net>"},
	}, "Hello.\r\n")
	expect(mt.getreply(conn) == SMFIR_ACCEPT, "accepted")
	cases[i] = mt.getheader(conn, "X-Escalator-Case", 0)
	mt.disconnect(conn)
end
expect(cases[1] ~= nil and cases[1] == cases[2],
    "same case twice: " .. tostring(cases[1]) .. " " .. tostring(cases[2]))
