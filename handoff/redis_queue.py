"""`RedisQueue`: the handoff queue on Redis, shared by every gateway process.

Each operation that reads and then writes runs as one Lua script, so Redis executes it
atomically: of twenty simultaneous claims, from any number of processes, one wins.
All state lives in Redis under `prefix + "handoff:"`, so it survives a gateway restart:

    handoff:queue              ZSET  conversation id -> announced_at (SLA scans by score)
    handoff:entry:<conv>       HASH  priority, enqueued_at, announced_at, reasons (JSON), ...
    handoff:assigned           HASH  conversation id -> staff id
    handoff:load:<staff>       SET   conversations assigned to the staff member
    handoff:presence:<staff>   HASH  state, capacity, last_seen; expires (PEXPIRE) after the TTL
    handoff:staff              SET   every staff id that ever set a presence
    handoff:last_assigned      HASH  staff id -> time of the last assignment (longest idle)
    handoff:handle_times       LIST  the last N handle times, newest first

Scripts build some key names from the prefix, so this targets one Redis server (or a
primary with replicas), not Redis Cluster. Timestamps come from the calling process's
clock; gateway hosts are expected to keep their clocks in sync (NTP).
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from handoff.queue import (
    ClaimResult,
    HandoffQueue,
    PresenceState,
    QueueEntry,
    StaffPresence,
    check_presence_args,
    claim_result,
    encode_reasons,
)

# 1-based place of ARGV conv in serving order, counted in the server (no snapshot transfer).
_POSITION_FUNCTION = """
local function position(queue, base, conv)
  if not redis.call('ZSCORE', queue, conv) then return false end
  local mine = redis.call('HMGET', base .. 'entry:' .. conv, 'priority', 'enqueued_at')
  local priority, enqueued = tonumber(mine[1]), tonumber(mine[2])
  local ahead = 0
  for _, other in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    if other ~= conv then
      local o = redis.call('HMGET', base .. 'entry:' .. other, 'priority', 'enqueued_at')
      local p, t = tonumber(o[1]), tonumber(o[2])
      if p > priority or (p == priority and (t < enqueued or (t == enqueued and other < conv))) then
        ahead = ahead + 1
      end
    end
  end
  return ahead + 1
end
"""

_POSITION = _POSITION_FUNCTION + "return position(KEYS[1], ARGV[1], ARGV[2])"

# KEYS: queue, entry, assigned; ARGV: conv, priority, enqueued_at, reasons, value, label,
# base, announced_at. Returns the position.
_ENQUEUE = (
    _POSITION_FUNCTION
    + """
local queue, entry, assigned = KEYS[1], KEYS[2], KEYS[3]
local conv, base = ARGV[1], ARGV[7]
local holder = redis.call('HGET', assigned, conv)
if holder then
  redis.call('HDEL', assigned, conv)
  redis.call('SREM', base .. 'load:' .. holder, conv)
end
if redis.call('ZSCORE', queue, conv) then
  if tonumber(ARGV[2]) > tonumber(redis.call('HGET', entry, 'priority')) then
    redis.call('HSET', entry, 'priority', ARGV[2])
  end
  redis.call('HSET', entry, 'reasons', ARGV[4], 'customer_value', ARGV[5],
             'customer_label', ARGV[6])
else
  redis.call('HSET', entry, 'priority', ARGV[2], 'enqueued_at', ARGV[3],
             'announced_at', ARGV[8], 'reasons', ARGV[4], 'customer_value', ARGV[5],
             'customer_label', ARGV[6])
  redis.call('ZADD', queue, ARGV[8], conv)
end
return position(queue, base, conv)
"""
)

_SNAPSHOT = """
local out = {}
for _, conv in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = conv
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'entry:' .. conv)
end
return out
"""

_REMOVE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return removed
"""

_OVERDUE = """
local out = {}
for _, conv in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local entry = ARGV[3] .. 'entry:' .. conv
  redis.call('HINCRBY', entry, 'priority', 1)
  redis.call('HSET', entry, 'announced_at', ARGV[2])
  redis.call('ZADD', KEYS[1], ARGV[2], conv)
  out[#out + 1] = conv
  out[#out + 1] = redis.call('HGETALL', entry)
end
return out
"""

# KEYS: queue, entry, assigned, presence, load, last_assigned; ARGV: conv, staff, now
_CLAIM = """
local conv, staff = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', KEYS[1], conv) then
  local holder = redis.call('HGET', KEYS[3], conv)
  if holder then return {'already_assigned', holder} end
  return {'not_queued', ''}
end
local state = redis.call('HGET', KEYS[4], 'state')
if state ~= 'online' then return {'staff_not_online', state or 'offline'} end
local capacity = tonumber(redis.call('HGET', KEYS[4], 'capacity') or '0')
local load = redis.call('SCARD', KEYS[5])
if load >= capacity then return {'at_capacity', load .. '/' .. capacity} end
redis.call('ZREM', KEYS[1], conv)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[3], conv, staff)
redis.call('SADD', KEYS[5], conv)
redis.call('HSET', KEYS[6], staff, ARGV[3])
return {'claimed', staff}
"""

# KEYS: queue, entry, assigned, staff set, last_assigned; ARGV: conv, now, base
_AUTO_ASSIGN = """
local conv, base = ARGV[1], ARGV[3]
if not redis.call('ZSCORE', KEYS[1], conv) then return false end
local best, best_load, best_idle = nil, 0, 0
for _, staff in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local presence = redis.call('HMGET', base .. 'presence:' .. staff, 'state', 'capacity')
  if presence[1] == 'online' then
    local load = redis.call('SCARD', base .. 'load:' .. staff)
    if load < tonumber(presence[2] or '0') then
      local idle = tonumber(redis.call('HGET', KEYS[5], staff) or '0')
      if best == nil or load < best_load
         or (load == best_load and (idle < best_idle or (idle == best_idle and staff < best))) then
        best, best_load, best_idle = staff, load, idle
      end
    end
  end
end
if best == nil then return false end
redis.call('ZREM', KEYS[1], conv)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[3], conv, best)
redis.call('SADD', base .. 'load:' .. best, conv)
redis.call('HSET', KEYS[5], best, ARGV[2])
return best
"""

# KEYS: assigned; ARGV: conv, staff ('' = whoever holds it), base
_RELEASE = """
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if not holder or (ARGV[2] ~= '' and holder ~= ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', ARGV[3] .. 'load:' .. holder, ARGV[1])
return 1
"""

# KEYS: assigned, presence(to), load(from), load(to), last_assigned; ARGV: conv, from, to, now
_TRANSFER = """
local conv, from, to = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('HGET', KEYS[1], conv)
if holder ~= from then return {'not_assigned', holder or ''} end
if from == to then return {'same_staff', to} end
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'online' then return {'staff_not_online', state or 'offline'} end
local capacity = tonumber(redis.call('HGET', KEYS[2], 'capacity') or '0')
local load = redis.call('SCARD', KEYS[4])
if load >= capacity then return {'at_capacity', load .. '/' .. capacity} end
redis.call('HSET', KEYS[1], conv, to)
redis.call('SREM', KEYS[3], conv)
redis.call('SADD', KEYS[4], conv)
redis.call('HSET', KEYS[5], to, ARGV[4])
return {'transferred', to}
"""

# KEYS: presence; ARGV: now, ttl_ms
_HEARTBEAT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


def _entry_from_hash(conversation_id: str, fields: list[str] | dict[str, str]) -> QueueEntry:
    data = fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True))
    return QueueEntry(
        conversation_id=conversation_id,
        priority=int(data["priority"]),
        enqueued_at=float(data["enqueued_at"]),
        reasons=list(json.loads(data.get("reasons") or "[]")),
        customer_value=float(data.get("customer_value") or 0.0),
        customer_label=data.get("customer_label", ""),
        announced_at=float(data["announced_at"]),
    )


def _entries_from_pairs(flat: list[Any]) -> list[QueueEntry]:
    entries = [
        _entry_from_hash(conversation_id, fields)
        for conversation_id, fields in zip(flat[::2], flat[1::2], strict=True)
        if fields  # claimed between ZRANGE and HGETALL cannot happen in Lua, but be safe
    ]
    return sorted(entries, key=QueueEntry.sort_key)


class RedisQueue(HandoffQueue):
    def __init__(self, client: Redis, prefix: str = "tandem:", **options: Any) -> None:
        super().__init__(**options)
        self.client = client
        self.base = f"{prefix}handoff:"
        self._owns_client = False
        scripts = {
            "enqueue": _ENQUEUE, "position": _POSITION, "snapshot": _SNAPSHOT, "remove": _REMOVE,
            "overdue": _OVERDUE, "claim": _CLAIM, "auto_assign": _AUTO_ASSIGN,
            "release": _RELEASE, "transfer": _TRANSFER, "heartbeat": _HEARTBEAT,
        }  # fmt: skip
        # register_script reloads a script by itself after a Redis restart (NOSCRIPT).
        self._scripts = {name: client.register_script(lua) for name, lua in scripts.items()}

    @classmethod
    def from_url(cls, url: str, prefix: str = "tandem:", **options: Any) -> RedisQueue:
        queue = cls(Redis.from_url(url, decode_responses=True), prefix, **options)
        queue._owns_client = True
        return queue

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    # ---------------------------------------------------------------- keys

    @property
    def _queue_key(self) -> str:
        return self.base + "queue"

    @property
    def _assigned_key(self) -> str:
        return self.base + "assigned"

    @property
    def _staff_key(self) -> str:
        return self.base + "staff"

    @property
    def _last_assigned_key(self) -> str:
        return self.base + "last_assigned"

    @property
    def _handle_times_key(self) -> str:
        return self.base + "handle_times"

    def _entry_key(self, conversation_id: str) -> str:
        return f"{self.base}entry:{conversation_id}"

    def _presence_key(self, staff_id: str) -> str:
        return f"{self.base}presence:{staff_id}"

    def _load_key(self, staff_id: str) -> str:
        return f"{self.base}load:{staff_id}"

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    # ---------------------------------------------------------------- the queue

    async def enqueue(self, entry: QueueEntry) -> int:
        position = await self._scripts["enqueue"](
            keys=[self._queue_key, self._entry_key(entry.conversation_id), self._assigned_key],
            args=[
                entry.conversation_id,
                int(entry.priority),
                repr(float(entry.enqueued_at)),
                encode_reasons(entry.reasons),
                repr(float(entry.customer_value)),
                entry.customer_label,
                self.base,
                repr(float(entry.announced_at or entry.enqueued_at)),
            ],
        )
        return int(position)

    async def position(self, conversation_id: str) -> int | None:
        position = await self._scripts["position"](
            keys=[self._queue_key], args=[self.base, conversation_id]
        )
        return int(position) if position else None

    async def remove(self, conversation_id: str) -> bool:
        removed = await self._scripts["remove"](
            keys=[self._queue_key, self._entry_key(conversation_id)], args=[conversation_id]
        )
        return bool(removed)

    async def entries(self) -> list[QueueEntry]:
        flat = await self._scripts["snapshot"](keys=[self._queue_key], args=[self.base])
        return _entries_from_pairs(self._decode(flat))

    def _decode(self, value: Any) -> Any:
        # Script replies ignore decode_responses in some client setups; normalise.
        if isinstance(value, list):
            return [self._decode(item) for item in value]
        return self._text(value) if isinstance(value, bytes) else value

    async def record_handle_time(self, seconds: float) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(self._handle_times_key, repr(float(seconds)))
            pipe.ltrim(self._handle_times_key, 0, self.handle_time_history - 1)
            await pipe.execute()

    async def handle_times(self) -> list[float]:
        values = await self.client.lrange(self._handle_times_key, 0, self.handle_time_history - 1)
        return [float(self._text(v)) for v in values]

    async def overdue(self, now: float, sla_seconds: float) -> list[QueueEntry]:
        flat = await self._scripts["overdue"](
            keys=[self._queue_key],
            args=[repr(float(now - sla_seconds)), repr(float(now)), self.base],
        )
        return _entries_from_pairs(self._decode(flat))

    # ---------------------------------------------------------------- presence

    async def set_presence(self, staff_id: str, state: PresenceState, capacity: int) -> None:
        check_presence_args(state, capacity)
        key = self._presence_key(staff_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._staff_key, staff_id)
            if state == "offline":
                pipe.delete(key)
            else:
                pipe.delete(key)
                fields = {
                    "state": state,
                    "capacity": int(capacity),
                    "last_seen": repr(self.clock()),
                }
                pipe.hset(key, mapping=fields)
                pipe.pexpire(key, self._ttl_ms)
            await pipe.execute()

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.presence_ttl_seconds * 1000))

    async def heartbeat(self, staff_id: str) -> bool:
        alive = await self._scripts["heartbeat"](
            keys=[self._presence_key(staff_id)], args=[repr(self.clock()), self._ttl_ms]
        )
        return bool(alive)

    async def _presences(self, staff_ids: list[str]) -> list[StaffPresence]:
        async with self.client.pipeline(transaction=False) as pipe:
            for staff_id in staff_ids:
                pipe.hgetall(self._presence_key(staff_id))
                pipe.scard(self._load_key(staff_id))
                pipe.hget(self._last_assigned_key, staff_id)
            replies = await pipe.execute()
        result = []
        for index, staff_id in enumerate(staff_ids):
            live, load, last_assigned = replies[3 * index : 3 * index + 3]
            live = {self._text(k): self._text(v) for k, v in (live or {}).items()}
            result.append(
                StaffPresence(
                    staff_id=staff_id,
                    state=live.get("state", "offline"),  # type: ignore[arg-type]
                    capacity=int(live.get("capacity", 0)),
                    last_seen=float(live["last_seen"]) if "last_seen" in live else None,
                    load=int(load),
                    last_assigned_at=float(self._text(last_assigned)) if last_assigned else 0.0,
                )
            )
        return result

    async def presence(self, staff_id: str) -> StaffPresence:
        return (await self._presences([staff_id]))[0]

    async def online_staff(self) -> list[StaffPresence]:
        staff_ids = sorted(self._text(s) for s in await self.client.smembers(self._staff_key))
        return [s for s in await self._presences(staff_ids) if s.state == "online"]

    # ---------------------------------------------------------------- assignment

    async def claim(self, conversation_id: str, staff_id: str) -> ClaimResult:
        code, detail = self._decode(
            await self._scripts["claim"](
                keys=[
                    self._queue_key,
                    self._entry_key(conversation_id),
                    self._assigned_key,
                    self._presence_key(staff_id),
                    self._load_key(staff_id),
                    self._last_assigned_key,
                ],
                args=[conversation_id, staff_id, repr(self.clock())],
            )
        )
        return claim_result(code, conversation_id, staff_id, detail)

    async def auto_assign(self, conversation_id: str) -> str | None:
        chosen = await self._scripts["auto_assign"](
            keys=[
                self._queue_key,
                self._entry_key(conversation_id),
                self._assigned_key,
                self._staff_key,
                self._last_assigned_key,
            ],
            args=[conversation_id, repr(self.clock()), self.base],
        )
        return self._text(chosen) if chosen else None

    async def release(self, conversation_id: str, staff_id: str | None = None) -> bool:
        released = await self._scripts["release"](
            keys=[self._assigned_key], args=[conversation_id, staff_id or "", self.base]
        )
        return bool(released)

    async def transfer(self, conversation_id: str, from_staff: str, to_staff: str) -> ClaimResult:
        code, detail = self._decode(
            await self._scripts["transfer"](
                keys=[
                    self._assigned_key,
                    self._presence_key(to_staff),
                    self._load_key(from_staff),
                    self._load_key(to_staff),
                    self._last_assigned_key,
                ],
                args=[conversation_id, from_staff, to_staff, repr(self.clock())],
            )
        )
        # "not_assigned" concerns the sender; everything else the target.
        staff_id = from_staff if code == "not_assigned" else to_staff
        return claim_result(code, conversation_id, staff_id, detail)

    async def load(self, staff_id: str) -> int:
        return int(await self.client.scard(self._load_key(staff_id)))

    async def assigned_to(self, conversation_id: str) -> str | None:
        holder = await self.client.hget(self._assigned_key, conversation_id)
        return self._text(holder) if holder is not None else None
