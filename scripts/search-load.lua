-- wrk script: cycles through buyer questions (one per line in the file named
-- by KEFU_QUERIES, already URL-encoded) as /v1/search requests.
local queries = {}
local counter = 0

function init(args)
  local path = os.getenv("KEFU_QUERIES") or "queries.txt"
  for line in io.lines(path) do
    if #line > 0 then queries[#queries + 1] = line end
  end
end

function request()
  counter = counter + 1
  local q = queries[(counter % #queries) + 1]
  return wrk.format("GET", "/v1/search?source=widget&audience=public&q=" .. q)
end
