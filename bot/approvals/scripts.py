"""The Lua scripts behind every atomic transition of a request.

Every script touches exactly one key (KEYS[1]) so it runs in one Cluster slot.
"""

# Create the request hash unless the id is taken. ARGV: nonce, ttl+retention ms, field/value pairs...
_CREATE_LUA = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  if redis.call('HGET', key, '_nonce') == ARGV[1] then return 1 end
  return 0
end
redis.call('HSET', key, '_nonce', ARGV[1])
for i = 3, #ARGV - 1, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', key, tonumber(ARGV[2]))
return 1
"""

# Move a request out of pending. ARGV: mode (approved|denied|cancelled|sweep), actor, now_us, now_iso,
# retention_ms, nonce. Reply: {status, HGETALL} with status one of
#   missing  - no such request
#   won      - this call moved pending -> decision (or is a retry of the call that did)
#   expired  - this call moved pending -> expired (or is a retry of the call that did)
#   already  - the request had already left pending
#   not_due  - sweep only: still pending, not yet due
_TRANSITION_LUA = """
local key = KEYS[1]
local mode, actor, now_us, now_iso = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local retention_ms, nonce = tonumber(ARGV[5]), ARGV[6]
if redis.call('EXISTS', key) == 0 then return {'missing', {}} end
local state = redis.call('HGET', key, 'state')
if state ~= 'pending' then
  if redis.call('HGET', key, '_decision_nonce') == nonce then
    if state == 'expired' then return {'expired', redis.call('HGETALL', key)} end
    return {'won', redis.call('HGETALL', key)}
  end
  return {'already', redis.call('HGETALL', key)}
end
if now_us >= tonumber(redis.call('HGET', key, 'expires_at_us')) then
  redis.call('HSET', key, 'state', 'expired', 'decided_at', now_iso, '_decision_nonce', nonce)
  redis.call('PEXPIRE', key, retention_ms)
  return {'expired', redis.call('HGETALL', key)}
end
if mode == 'sweep' then return {'not_due', redis.call('HGETALL', key)} end
redis.call('HSET', key, 'state', mode, 'decided_by', actor, 'decided_at', now_iso, '_decision_nonce', nonce)
if mode == 'approved' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, retention_ms)
end
return {'won', redis.call('HGETALL', key)}
"""

# Record the outcome of an approved request, first write wins. ARGV: outcome, detail, now_iso,
# retention_ms. Reply: {status, HGETALL}, status: missing | recorded | already | bad_state.
_OUTCOME_LUA = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'missing', {}} end
if redis.call('HGET', key, 'state') ~= 'approved' then return {'bad_state', redis.call('HGETALL', key)} end
local current = redis.call('HGET', key, 'outcome')
if current and current ~= '' then return {'already', redis.call('HGETALL', key)} end
redis.call('HSET', key, 'outcome', ARGV[1], 'outcome_detail', ARGV[2], 'outcome_at', ARGV[3])
redis.call('PEXPIRE', key, tonumber(ARGV[4]))
return {'recorded', redis.call('HGETALL', key)}
"""

# Set the admin message coordinates of an existing request. ARGV: channel, ts.
_ATTACH_LUA = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'missing', {}} end
redis.call('HSET', key, 'admin_channel', ARGV[1], 'admin_ts', ARGV[2])
return {'ok', redis.call('HGETALL', key)}
"""

# Point the pending-by key at a new id iff it still holds the expected (stale) id. ARGV: old, new, px.
_INDEX_CAS_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
  return 1
end
return 0
"""

# Delete the pending-by key iff it still points at this id. ARGV: id.
_INDEX_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
