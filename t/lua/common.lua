-- common.lua: shared steps of the protocol scripts. Each script is run
-- by t/protocol.sh with ESCALATOR_SOCKET set to a running escalatord.
socket = os.getenv("ESCALATOR_SOCKET")

function start(queue_id, sender, auth_user)
	local conn = mt.connect(socket, 20, 0.25)
	assert(conn, "cannot connect to " .. socket)
	assert(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate")
	if auth_user then
		mt.macro(conn, SMFIC_MAIL, "i", queue_id,
		    "{auth_authen}", auth_user)
	else
		mt.macro(conn, SMFIC_MAIL, "i", queue_id)
	end
	assert(mt.mailfrom(conn, sender) == nil, "MAIL FROM")
	return conn
end

-- Headers as a table of {name, value}; body as one string, sent in
-- chunks of at most 65535 bytes as an MTA does.
function send_message(conn, headers, body)
	for _, h in ipairs(headers) do
		assert(mt.header(conn, h[1], h[2]) == nil, "header " .. h[1])
	end
	local i = 1
	while i <= #body do
		assert(mt.bodystring(conn, body:sub(i, i + 65534)) == nil)
		i = i + 65535
	end
	assert(mt.eom(conn) == nil, "end of message")
end

function expect(cond, what)
	if not cond then
		error("FAILED: " .. what)
	end
end
