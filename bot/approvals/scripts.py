"""The Lua scripts behind every change to the store: one script per transition, and each one moves the
request hash *and* its bookkeeping (the ``pending`` and ``in-doubt`` sorted sets, the pending-by guard,
the audit stream) together.

Redis runs a script atomically but does not roll it back when a command inside it fails. So every
script first reads and checks everything (including that each key it will write holds the right type,
or none), and only then writes, with commands that can no longer fail. A script touches only the keys
it is given in KEYS; they all carry the store's hash tag.
"""

from __future__ import annotations

# Shared helpers, prepended to each script.
#   refuse(key, type): an error reply if ``key`` exists with another type, else nil.
#   fields(key): the hash as a Lua table.
#   audit(...): append one audit entry (the same fields as AuditLog reads back).
_HELPERS = """
local function refuse(key, want)
  if not key then return nil end
  local got = redis.call('TYPE', key)['ok']
  if got ~= 'none' and got ~= want then
    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. got .. ', not a ' .. want)
  end
  return nil
end
local function fields(key)
  local flat, t = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function audit(stream, maxlen, event, time, r, actor, outcome, detail, reason)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event, 'time', time,
    'request_id', r.id, 'kind', r.kind, 'subject', r.subject, 'workspace', r.workspace,
    'requester', r.requester, 'actor', actor, 'outcome', outcome, 'detail', detail, 'reason', reason)
end
"""

# Create a pending request, unless its (kind, subject) guard names a live pending request.
# KEYS: request hash, pending zset, guard, audit stream, [hash of the request the guard names].
# ARGV: id, nonce, expected guard value ('' = none), now_us, now_iso, expires_at_us, keep_ms (ttl +
# retention), audit maxlen, field/value pairs...
# Reply: {'created'} (also for a retry of the call that created it) | {'id_taken'} |
#        {'moved', guard value} (the guard changed since the caller read it) | {'duplicate', HGETALL}.
_CREATE_LUA = (
    _HELPERS
    + """
local req, pending, guard, stream, holder_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, nonce, expected = ARGV[1], ARGV[2], ARGV[3]
local now_us, now_iso, expires_us = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local keep_ms, maxlen = tonumber(ARGV[7]), tonumber(ARGV[8])
local err = refuse(req, 'hash') or refuse(pending, 'zset') or refuse(guard, 'string')
  or refuse(stream, 'stream') or refuse(holder_key, 'hash')
if err then return err end
if redis.call('EXISTS', req) == 1 then
  if redis.call('HGET', req, '_nonce') == nonce then return {'created'} end
  return {'id_taken'}
end
local holder = redis.call('GET', guard) or ''
if holder ~= expected then return {'moved', holder} end
if holder ~= '' and holder_key then
  local state = redis.call('HGET', holder_key, 'state')
  local until_us = tonumber(redis.call('HGET', holder_key, 'expires_at_us') or '0')
  if state == 'pending' and now_us < until_us then
    return {'duplicate', redis.call('HGETALL', holder_key)}
  end
end
-- The guard is free or names a request that is no longer live: this request takes it. A replaced
-- holder that is pending but past its expiry stays in the pending set until the sweep expires it.
redis.call('HSET', req, '_nonce', nonce, '_guard', guard)
for i = 9, #ARGV - 1, 2 do redis.call('HSET', req, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', req, keep_ms)
redis.call('ZADD', pending, expires_us, id)
redis.call('SET', guard, id, 'PX', keep_ms)
local r = fields(req)
audit(stream, maxlen, 'created', now_iso, r, r.requester, '', '', r.reason)
return {'created'}
"""
)

# Move a request out of pending: a decision, or the expiry (by a click after the TTL or the sweep).
# KEYS: request hash, pending zset, in-doubt zset, audit stream, [guard named by the hash's _guard].
# ARGV: id, mode (approved|denied|cancelled|sweep), actor, now_us, now_iso, retention_ms, nonce, maxlen.
# Reply: {status, HGETALL} with status one of
#   missing  - no such request (an index entry left by a hash that outlived its keep time is dropped)
#   moved    - KEYS[5] is not the guard the hash names (the caller read it wrong): nothing done
#   won      - this call moved pending -> decision (or is a retry of the call that did)
#   expired  - this call moved pending -> expired (or is a retry of the call that did)
#   already  - the request had already left pending
#   not_due  - sweep only: still pending, not yet due
_TRANSITION_LUA = (
    _HELPERS
    + """
local req, pending, in_doubt, stream, guard = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, mode, actor, now_us, now_iso = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local retention_ms, nonce, maxlen = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local err = refuse(req, 'hash') or refuse(pending, 'zset') or refuse(in_doubt, 'zset')
  or refuse(stream, 'stream') or refuse(guard, 'string')
if err then return err end
if redis.call('EXISTS', req) == 0 then
  redis.call('ZREM', pending, id)
  redis.call('ZREM', in_doubt, id)
  return {'missing', {}}
end
if redis.call('HGET', req, '_guard') ~= (guard or false) then return {'moved', {}} end
local state = redis.call('HGET', req, 'state')
if state ~= 'pending' then
  if redis.call('HGET', req, '_decision_nonce') == nonce then
    if state == 'expired' then return {'expired', redis.call('HGETALL', req)} end
    return {'won', redis.call('HGETALL', req)}
  end
  return {'already', redis.call('HGETALL', req)}
end
local expired = now_us >= tonumber(redis.call('HGET', req, 'expires_at_us'))
if not expired and mode == 'sweep' then return {'not_due', redis.call('HGETALL', req)} end
if expired then
  redis.call('HSET', req, 'state', 'expired', 'decided_at', now_iso, '_decision_nonce', nonce)
  redis.call('PEXPIRE', req, retention_ms)
else
  redis.call('HSET', req, 'state', mode, 'decided_by', actor, 'decided_at', now_iso,
    '_decision_nonce', nonce)
  if mode == 'approved' then
    redis.call('PERSIST', req)
    redis.call('ZADD', in_doubt, now_us, id)
  else
    redis.call('PEXPIRE', req, retention_ms)
  end
end
redis.call('ZREM', pending, id)
if guard and redis.call('GET', guard) == id then redis.call('DEL', guard) end
local r = fields(req)
audit(stream, maxlen, r.state, now_iso, r, r.decided_by or '', '', '', '')
if expired then return {'expired', redis.call('HGETALL', req)} end
return {'won', redis.call('HGETALL', req)}
"""
)

# Record the outcome of an approved request, first write wins; it leaves the in-doubt set.
# KEYS: request hash, in-doubt zset, audit stream. ARGV: id, outcome, detail, now_iso, retention_ms,
# maxlen. Reply: {status, HGETALL}, status: missing | recorded | already | bad_state.
_OUTCOME_LUA = (
    _HELPERS
    + """
local req, in_doubt, stream = KEYS[1], KEYS[2], KEYS[3]
local id, outcome, detail, now_iso = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local retention_ms, maxlen = tonumber(ARGV[5]), tonumber(ARGV[6])
local err = refuse(req, 'hash') or refuse(in_doubt, 'zset') or refuse(stream, 'stream')
if err then return err end
if redis.call('EXISTS', req) == 0 then return {'missing', {}} end
if redis.call('HGET', req, 'state') ~= 'approved' then return {'bad_state', redis.call('HGETALL', req)} end
local current = redis.call('HGET', req, 'outcome')
if current and current ~= '' then return {'already', redis.call('HGETALL', req)} end
redis.call('HSET', req, 'outcome', outcome, 'outcome_detail', detail, 'outcome_at', now_iso)
redis.call('PEXPIRE', req, retention_ms)
redis.call('ZREM', in_doubt, id)
local r = fields(req)
audit(stream, maxlen, 'outcome', now_iso, r, r.decided_by or '', outcome, detail, '')
return {'recorded', redis.call('HGETALL', req)}
"""
)

# Set the admin message coordinates of an existing request (no bookkeeping). KEYS: request hash.
# ARGV: channel, ts.
_ATTACH_LUA = (
    _HELPERS
    + """
local req = KEYS[1]
local err = refuse(req, 'hash')
if err then return err end
if redis.call('EXISTS', req) == 0 then return {'missing', {}} end
redis.call('HSET', req, 'admin_channel', ARGV[1], 'admin_ts', ARGV[2])
return {'ok', redis.call('HGETALL', req)}
"""
)
