#!lua name=yquant

-- Server functions: each runs atomically inside Valkey, so a crash between two steps
-- (dedupe and append, record and append, state change and event) cannot happen.

local function xadd(stream, maxlen, msg_type, data)
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'type', msg_type, 'data', data)
end

-- yq_ingest KEYS: dedupe_key, stream  ARGV: ttl_s, maxlen, type, data [, signal_id]
-- Returns the new entry id, or 0 when the dedupe key already existed (a resend); with a
-- signal_id, the key holds it and a resend returns {0, the first signal's id}.
-- A script's error does not undo its earlier writes: when the append fails (wrong type,
-- bad argument) the dedupe key is released (expires at once, with the same SET right) and
-- the error returned, so the caller's retry is not mistaken for a resend.
-- Bounded, since internet-facing callers reach it: a message of at most 16 KiB, a signal id
-- of at most 128 bytes, a TTL of at most 90 days.
local INGEST_MAX_DATA = 16384
local INGEST_MAX_ID = 128
local INGEST_MAX_TTL = 7776000
local function yq_ingest(keys, args)
  local ttl = tonumber(args[1])
  if not ttl or ttl < 1 or ttl > INGEST_MAX_TTL then
    return redis.error_reply('ERR yq_ingest: ttl out of range')
  end
  if #args[4] > INGEST_MAX_DATA then
    return redis.error_reply('ERR yq_ingest: message too large')
  end
  local value = args[5] or '1'
  if #value > INGEST_MAX_ID then
    return redis.error_reply('ERR yq_ingest: signal id too long')
  end
  local ok = redis.call('SET', keys[1], value, 'NX', 'EX', ttl)
  if not ok then
    if args[5] then
      return {0, redis.call('GET', keys[1]) or ''}
    end
    return 0
  end
  local entry = redis.pcall('XADD', keys[2], 'MAXLEN', '~', args[2], '*', 'type', args[3], 'data', args[4])
  if type(entry) == 'table' and entry.err then
    redis.call('SET', keys[1], '0', 'PX', 1)
  end
  return entry
end

-- The account's unsettled orders as the risk checks read them, one field per order (its record
-- as JSON) in yq:orders:unsettled:<account>: every change of an order copies its record there in
-- the same step, so one HGETALL replaces a look-up per order. The key is named from the record's
-- account, which callers changing an order by its id do not know (Valkey standalone allows a
-- key not passed in KEYS; the ACL still applies). The account sync drops orders it settled.
-- ``record`` is the whole record after the change, as the function holds it: the copy costs no
-- second read of the hash just written.
local function mirror(record, coid)
  if record['account'] then
    redis.call('HSET', 'yq:orders:unsettled:' .. record['account'], coid, cjson.encode(record))
  end
end

-- yq_order_create KEYS: order, history, index, open, stream
-- ARGV: client_order_id, score_ms, maxlen, type, data, history_entry, field, value, ...
-- Records the order and appends its command once; 0 when it already exists.
local function order_create(k, a, first)
  if redis.call('EXISTS', k[1]) == 1 then
    return 0
  end
  local fields = {}
  local record = {}
  for i = first + 6, #a, 2 do
    fields[#fields + 1] = a[i]
    fields[#fields + 1] = a[i + 1]
    record[a[i]] = a[i + 1]
  end
  redis.call('HSET', k[1], unpack(fields))
  redis.call('RPUSH', k[2], a[first + 5])
  redis.call('ZADD', k[3], a[first + 1], a[first])
  redis.call('SADD', k[4], a[first])
  mirror(record, a[first])
  return xadd(k[5], a[first + 2], a[first + 3], a[first + 4])
end

local function yq_order_create(keys, args)
  return order_create(keys, args, 1)
end

-- yq_order_place: the throttles, then the order with its decision, in one step.
-- KEYS: duplicate_guard, rate_window, signal_record, signals_index, decisions_stream, reservations,
--       order, history, index, open, orders_stream
-- ARGV: signal_id, window_ms ('0': no window), rate_limit ('0': none), rate_member, now_s,
--       window_start_s, rate_ttl_s, record_ttl_s, index_score, decisions_maxlen,
--       then three decisions, for '' (accepted), 'duplicate' and 'rate', each as
--       n_fields, field, value, ..., event_type, event_data,
--       then the reservation: n_forget, client_order_id, ..., reservation_field ('' none), value, ttl_s,
--       then yq_order_create's ARGV (client_order_id, score_ms, ...).
-- The duplicate window is claimed (SET NX PX; the same signal redelivered holds it already and
-- goes) and the rate slot taken; a refusal gives the slot back. Only when both pass are the
-- reservation and the order written. The decision that applies is recorded either way.
-- Returns {verdict ('' accepted, 'duplicate', 'rate'), yq_order_create's reply or 0}.
local function yq_order_place(keys, args)
  local verdict = ''
  local window_ms = tonumber(args[2])
  if window_ms and window_ms > 0 then
    local claimed = redis.call('SET', keys[1], args[1], 'NX', 'PX', window_ms)
    if not claimed and redis.call('GET', keys[1]) ~= args[1] then
      verdict = 'duplicate'
    end
  end
  local limit = tonumber(args[3])
  if verdict == '' and limit and limit > 0 then
    redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', args[6])
    redis.call('ZADD', keys[2], args[5], args[4])
    local taken = redis.call('ZCARD', keys[2])
    redis.call('EXPIRE', keys[2], args[7])
    if taken > limit then
      redis.call('ZREM', keys[2], args[4])
      verdict = 'rate'
    end
  end
  local at = 11
  local chosen = nil
  for _, name in ipairs({'', 'duplicate', 'rate'}) do
    local n = tonumber(args[at])
    if name == verdict then
      chosen = at
    end
    at = at + 1 + n + 2
  end
  local n = tonumber(args[chosen])
  local fields = {}
  for i = chosen + 1, chosen + n do
    fields[#fields + 1] = args[i]
  end
  redis.call('HSET', keys[3], unpack(fields))
  redis.call('EXPIRE', keys[3], args[8])
  redis.call('ZADD', keys[4], 'NX', args[9], args[1])
  xadd(keys[5], args[10], args[chosen + n + 1], args[chosen + n + 2])
  local n_forget = tonumber(args[at])
  local reservation = at + 1 + n_forget
  if verdict ~= '' then
    return {verdict, 0}
  end
  if n_forget > 0 then
    local forget = {}
    for i = at + 1, at + n_forget do
      forget[#forget + 1] = args[i]
    end
    redis.call('HDEL', keys[6], unpack(forget))
  end
  if args[reservation] ~= '' then
    redis.call('HSET', keys[6], args[reservation], args[reservation + 1])
    redis.call('EXPIRE', keys[6], args[reservation + 2])
  end
  local order_keys = {keys[7], keys[8], keys[9], keys[10], keys[11]}
  return {'', order_create(order_keys, args, reservation + 3)}
end

-- yq_order_update KEYS: order, history, open, stream [, lease]
-- ARGV: allowed_states (csv, '*' = any), cond_field, cond_value, new_state, maxlen,
--       event_type, event_data, history_entry, flags ('1' in it: final, removes from the open
--       set; 'r' in it: the reply carries the record), client_order_id, then, with the lease key
--       only: lease_step ('take': SET NX PX, 'drop': DEL), holder, ttl_ms; then field, value, ...
-- Returns {1, previous_state, lease, cancel_reason} when applied (with 'r': and a fifth element,
-- the record after the change as field, value, ...: the caller needs no read of it), {0, current_state, lease,
-- cancel_reason} when the state or the condition did not match, {-1, '', lease, ''} when the
-- order does not exist; lease is 1 when 'take' took it (0 when another holds it), DEL's count for
-- 'drop', 0 without a lease key; cancel_reason is the record's after the change ('' if none: a
-- cancel asked for while the order was being sent, which its acceptance must act on). The
-- lease step is taken whatever the state: it is the caller's, as a command beside the change
-- would be. The record is read once: its state, the condition's field and the unsettled copy all
-- come from that one HGETALL.
local function yq_order_update(keys, args)
  local first_field = 11
  local lease = 0
  if keys[5] then
    first_field = 14
    if args[11] == 'take' then
      if redis.call('SET', keys[5], args[12], 'NX', 'PX', args[13]) then
        lease = 1
      end
    elseif args[11] == 'drop' then
      lease = redis.call('DEL', keys[5])
    end
  end
  local flat = redis.call('HGETALL', keys[1])
  local record = {}
  for i = 1, #flat, 2 do
    record[flat[i]] = flat[i + 1]
  end
  local current = record['state']
  if not current then
    return {-1, '', lease, ''}
  end
  if args[1] ~= '*' then
    local allowed = false
    for state in string.gmatch(args[1], '([^,]+)') do
      if state == current then
        allowed = true
      end
    end
    if not allowed then
      return {0, current, lease, record['cancel_reason'] or ''}
    end
  end
  if args[2] ~= '' then
    local value = record[args[2]] or ''
    if value ~= args[3] then
      return {0, current, lease, record['cancel_reason'] or ''}
    end
  end
  local fields = {}
  for i = first_field, #args do
    fields[#fields + 1] = args[i]
  end
  if args[4] ~= '' then
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = args[4]
  end
  if #fields > 0 then
    redis.call('HSET', keys[1], unpack(fields))
    for i = 1, #fields, 2 do
      record[fields[i]] = fields[i + 1]
    end
    mirror(record, args[10])
  end
  if args[8] ~= '' then
    redis.call('RPUSH', keys[2], args[8])
  end
  if string.find(args[9], '1', 1, true) then
    redis.call('SREM', keys[3], args[10])
  end
  if args[6] ~= '' then
    xadd(keys[4], args[5], args[6], args[7])
  end
  if string.find(args[9], 'r', 1, true) then
    local after = {}
    for name, value in pairs(record) do
      after[#after + 1] = name
      after[#after + 1] = value
    end
    return {1, current, lease, record['cancel_reason'] or '', after}
  end
  return {1, current, lease, record['cancel_reason'] or ''}
end

redis.register_function('yq_ingest', yq_ingest)
redis.register_function('yq_order_create', yq_order_create)
redis.register_function('yq_order_place', yq_order_place)
redis.register_function('yq_order_update', yq_order_update)
