//! The Lua scripts of `RedisJobStore`: each change of a job's state is one
//! script, so instances sharing the queue see it happen at once or not at
//! all. Keys, in the order `Keys::all` passes them (every script gets all):
//!
//! 1 body, 2 summary, 3 status, 4 attempts, 5 started, 6 completed,
//! 7 result, 8 error, 9 owner: hashes by job id (the job as submitted, its
//! listing form, then the fields that change);
//! 10 all (sorted set of every job by creation time), 11 queue (pending
//! jobs as `owner NUL seq NUL id`, ordered by bytes, all scores 0),
//! 12 member (hash: job id → its queue member), 13 owners (sorted set of
//! owners with pending jobs, by bytes), 14 last owner (string), 15 leases
//! (sorted set: job id → lease end, Redis server time in ms), 16 holder
//! (hash: job id → worker), 17 unfinished (hash: owner → jobs pending or
//! processing), 18 finished (sorted set: job id → completion time in ms),
//! 19 sequence (counter).
//!
//! Times of leases come from the Redis server's clock (`TIME`), so
//! instances whose clocks differ still agree on when a lease ends.

use std::sync::LazyLock;

/// Helpers every script starts with.
const COMMON: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function owner_has_pending(owner)
  local first = redis.call('ZRANGEBYLEX', KEYS[11], '[' .. owner .. '\0', '(' .. owner .. '\1', 'LIMIT', 0, 1)
  return #first > 0
end
local function enqueue(id)
  local owner = redis.call('HGET', KEYS[9], id)
  redis.call('ZADD', KEYS[11], 0, redis.call('HGET', KEYS[12], id))
  redis.call('ZADD', KEYS[13], 0, owner)
end
local function dequeue(id)
  local owner = redis.call('HGET', KEYS[9], id)
  redis.call('ZREM', KEYS[11], redis.call('HGET', KEYS[12], id))
  if not owner_has_pending(owner) then redis.call('ZREM', KEYS[13], owner) end
end
local function finished(id, status, completed_json, completed_ms, error_text)
  redis.call('HSET', KEYS[3], id, status)
  redis.call('HSET', KEYS[6], id, completed_json)
  if error_text then redis.call('HSET', KEYS[8], id, error_text) end
  redis.call('ZADD', KEYS[18], completed_ms, id)
  redis.call('HINCRBY', KEYS[17], redis.call('HGET', KEYS[9], id), -1)
end
";

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{COMMON}\n{body}"))
}

/// ARGV: id, owner, status, limit (0: none), created ms, then the field
/// values body, summary, attempts, started, completed, result, error
/// ('' when absent), completed ms. Returns 0 when the owner is at its
/// limit, 1 when stored.
pub static SUBMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local id, owner, status, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
        local unfinished = status == 'pending' or status == 'processing'
        if limit > 0 and unfinished then
          if tonumber(redis.call('HGET', KEYS[17], owner) or '0') >= limit then return 0 end
        end
        local fields = {ARGV[6], ARGV[7], status, ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], owner}
        for i = 1, 9 do
          if fields[i] ~= '' then redis.call('HSET', KEYS[i], id, fields[i]) end
        end
        redis.call('ZADD', KEYS[10], ARGV[5], id)
        local seq = redis.call('INCR', KEYS[19])
        redis.call('HSET', KEYS[12], id, owner .. '\0' .. string.format('%020d', seq) .. '\0' .. id)
        if unfinished then redis.call('HINCRBY', KEYS[17], owner, 1) end
        if status == 'pending' then enqueue(id) end
        if status == 'processing' then redis.call('ZADD', KEYS[15], 0, id) end
        if ARGV[13] ~= '' then redis.call('ZADD', KEYS[18], ARGV[13], id) end
        return 1
        ",
    )
});

/// ARGV: worker, started (JSON), lease ms. Takes the oldest pending job of
/// the owner after the last one served (by bytes, wrapping round), leases
/// it and returns its id; nil when nothing is pending.
pub static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local last = redis.call('GET', KEYS[14])
        local owner
        if last then
          owner = redis.call('ZRANGEBYLEX', KEYS[13], '(' .. last, '+', 'LIMIT', 0, 1)[1]
        end
        if not owner then owner = redis.call('ZRANGEBYLEX', KEYS[13], '-', '+', 'LIMIT', 0, 1)[1] end
        if not owner then return false end
        local member = redis.call('ZRANGEBYLEX', KEYS[11], '[' .. owner .. '\0', '(' .. owner .. '\1', 'LIMIT', 0, 1)[1]
        if not member then
          redis.call('ZREM', KEYS[13], owner)
          return false
        end
        local id = string.sub(member, string.len(owner) + 23)
        dequeue(id)
        redis.call('SET', KEYS[14], owner)
        redis.call('HSET', KEYS[3], id, 'processing')
        redis.call('HINCRBY', KEYS[4], id, 1)
        redis.call('HSET', KEYS[5], id, ARGV[2])
        redis.call('ZADD', KEYS[15], now_ms() + tonumber(ARGV[3]), id)
        redis.call('HSET', KEYS[16], id, ARGV[1])
        return id
        ",
    )
});

/// ARGV: id, worker, lease ms. 1 when the worker still held the lease and
/// it was extended, 0 otherwise.
pub static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        if redis.call('HGET', KEYS[16], ARGV[1]) ~= ARGV[2] then return 0 end
        redis.call('ZADD', KEYS[15], 'XX', now_ms() + tonumber(ARGV[3]), ARGV[1])
        return 1
        ",
    )
});

/// ARGV: id, worker, status, completed (JSON), completed ms, result ('' if
/// none), error ('' if none). Returns the job's start time (JSON, '' if
/// none) when the worker still held it, nil (nothing recorded) otherwise.
pub static FINISH: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local id = ARGV[1]
        if redis.call('HGET', KEYS[16], id) ~= ARGV[2] then return false end
        redis.call('HDEL', KEYS[16], id)
        redis.call('ZREM', KEYS[15], id)
        if ARGV[6] ~= '' then redis.call('HSET', KEYS[7], id, ARGV[6]) end
        finished(id, ARGV[3], ARGV[4], ARGV[5], ARGV[7] ~= '' and ARGV[7] or nil)
        return redis.call('HGET', KEYS[5], id) or ''
        ",
    )
});

/// ARGV: id, completed (JSON), completed ms, error. 0: no such job; 1: not
/// pending (nothing changed); 2: cancelled.
pub static CANCEL: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local id = ARGV[1]
        local status = redis.call('HGET', KEYS[3], id)
        if not status then return 0 end
        if status ~= 'pending' then return 1 end
        dequeue(id)
        finished(id, 'failed', ARGV[2], ARGV[3], ARGV[4])
        return 2
        ",
    )
});

/// ARGV: max attempts, the given-up error, completed (JSON), completed ms.
/// Puts back every processing job whose lease ended; returns how many.
pub static RECLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local reclaimed = 0
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[15], '-inf', now_ms())) do
          redis.call('ZREM', KEYS[15], id)
          redis.call('HDEL', KEYS[16], id)
          if redis.call('HGET', KEYS[3], id) == 'processing' then
            reclaimed = reclaimed + 1
            if tonumber(redis.call('HGET', KEYS[4], id) or '0') >= tonumber(ARGV[1]) then
              finished(id, 'failed', ARGV[3], ARGV[4], ARGV[2])
            else
              redis.call('HSET', KEYS[3], id, 'pending')
              redis.call('HDEL', KEYS[5], id)
              enqueue(id)
            end
          end
        end
        return reclaimed
        ",
    )
});

/// ARGV: cutoff ms. Deletes every job finished before it; returns how many.
pub static PRUNE: LazyLock<redis::Script> = LazyLock::new(|| {
    script(
        r"
        local old = redis.call('ZRANGEBYSCORE', KEYS[18], '-inf', '(' .. ARGV[1])
        for _, id in ipairs(old) do
          for i = 1, 9 do redis.call('HDEL', KEYS[i], id) end
          redis.call('HDEL', KEYS[12], id)
          redis.call('ZREM', KEYS[10], id)
          redis.call('ZREM', KEYS[18], id)
        end
        return #old
        ",
    )
});
