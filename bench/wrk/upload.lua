-- POSTs a body of WRK_BODY_BYTES bytes (default 10 MiB) on every request; see report.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
local size = tonumber(os.getenv("WRK_BODY_BYTES") or "10485760")
wrk.method = "POST"
wrk.body = string.rep("u", size)
wrk.headers["Content-Type"] = "application/octet-stream"
