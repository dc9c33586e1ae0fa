"""Content-creation pacing per installation (GitHub: about 80 a minute, 500 an hour), shared across processes.

GitHub's "Rate limits for the REST API" (secondary rate limits): no more than 80 content-generating
requests per minute and 500 per hour. A job's gateway reserves its writes here before publishing (see
`GitHubGateway.paced`); when the window is full the job gets the wait back and reschedules itself (`RetryLater`)
instead of sleeping in a worker. The same store keeps each installation's request budget and the progress of
an installation's fan-out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from bot.queue.storage import KEY_PREFIX, SqliteDb, now

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS pace (installation INTEGER NOT NULL, ts REAL NOT NULL, weight INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS pace_installation_ts ON pace (installation, ts)",
    "CREATE TABLE IF NOT EXISTS request_budget (installation INTEGER PRIMARY KEY, remaining INTEGER NOT NULL, "
    "reset REAL NOT NULL)",
    # Keyed per fan-out (its delivery id): a later fan-out of the same installation counts from zero.
    "DROP TABLE IF EXISTS install_progress",
    "CREATE TABLE IF NOT EXISTS fanout_progress (installation INTEGER NOT NULL, key TEXT NOT NULL, "
    "done INTEGER NOT NULL, total INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY (installation, key))",
)
PROGRESS_TTL = 7 * 24 * 3600.0  # a fan-out's count is kept this long after its last repository


@dataclass(frozen=True)
class PaceLimits:
    """Per-installation limits; `request_floor` requests of the hourly budget stay unused for interactive work."""

    per_minute: int = 80
    per_hour: int = 500
    request_floor: int = 200


def wait_for(entries: Iterable[tuple[float, int]], cost: int, limits: PaceLimits, at: float) -> float:
    """Seconds until `cost` more writes fit both windows, given (timestamp, weight) entries of the last hour."""
    ordered = sorted(entries)
    wait = 0.0
    for window, limit in ((60.0, limits.per_minute), (3600.0, limits.per_hour)):
        cost_here = min(cost, limit)
        inside = [(ts, w) for ts, w in ordered if ts > at - window]
        used = sum(w for _, w in inside)
        for ts, weight in inside:
            if used + cost_here <= limit:
                break
            used -= weight
            # +1 ms: at exactly ts + window the entry still counts (the window is half-open).
            wait = max(wait, ts + window - at + 0.001)
    return max(0.0, wait)


class SqlitePacer:
    """Sliding windows in the queue's SQLite file."""

    def __init__(self, db: SqliteDb, limits: PaceLimits | None = None) -> None:
        self.db = db
        self.limits = limits or PaceLimits()
        db.ensure("pacing", SQLITE_DDL)

    def reserve(self, installation_id: int, cost: int = 1) -> float:
        """Check and insert in one transaction so two processes cannot both take the last slot."""
        at = now()
        with self.db.tx() as cur:
            cur.execute("DELETE FROM pace WHERE installation = ? AND ts <= ?", (installation_id, at - 3600))
            cur.execute("SELECT ts, weight FROM pace WHERE installation = ?", (installation_id,))
            wait = wait_for(cur.fetchall(), cost, self.limits, at)
            if wait == 0.0:
                cur.execute("INSERT INTO pace (installation, ts, weight) VALUES (?, ?, ?)", (installation_id, at, cost))
            return wait

    def observe(self, installation_id: int, remaining: int, reset: float) -> None:
        """Upsert the latest budget."""
        with self.db.tx() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO request_budget (installation, remaining, reset) VALUES (?, ?, ?)",
                (installation_id, remaining, reset),
            )

    def budget_wait(self, installation_id: int, interactive: bool = False) -> float:
        """Wait until reset when the budget is under the floor (interactive: when it is spent)."""
        rows = self.db.query("SELECT remaining, reset FROM request_budget WHERE installation = ?", (installation_id,))
        if not rows:
            return 0.0
        remaining, reset = rows[0]
        return _budget_wait(int(remaining), float(reset), self.limits, interactive)

    def progress(self, installation_id: int, key: str, total: int) -> int:
        """Count one more repository done for the fan-out `key` (its delivery id); return how many are done."""
        at = now()
        with self.db.tx() as cur:
            cur.execute("DELETE FROM fanout_progress WHERE updated < ?", (at - PROGRESS_TTL,))
            cur.execute(
                "INSERT INTO fanout_progress (installation, key, done, total, updated) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT(installation, key) DO UPDATE SET done = done + 1, total = excluded.total, "
                "updated = excluded.updated RETURNING done",
                (installation_id, key, total, at),
            )
            return int(cur.fetchone()[0])


def _budget_wait(remaining: int, reset: float, limits: PaceLimits, interactive: bool = False) -> float:
    at = now()
    floor = 1 if interactive else limits.request_floor  # interactive work may spend the floor, not past zero
    if remaining >= floor or reset <= at:
        return 0.0
    return reset - at + 1.0


_RESERVE_LUA = """
local key, at, cost = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local windows = {{60, tonumber(ARGV[3])}, {3600, tonumber(ARGV[4])}}
redis.call('ZREMRANGEBYSCORE', key, '-inf', at - 3600)
local items = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local wait = 0
for _, pair in ipairs(windows) do
  local window, limit = pair[1], pair[2]
  local need = math.min(cost, limit)
  local inside, used = {}, 0
  for i = 1, #items, 2 do
    local ts = tonumber(items[i + 1])
    if ts > at - window then
      local weight = tonumber(string.match(items[i], '|(%d+)$'))
      table.insert(inside, {ts, weight})
      used = used + weight
    end
  end
  for _, entry in ipairs(inside) do
    if used + need <= limit then break end
    used = used - entry[2]
    wait = math.max(wait, entry[1] + window - at + 0.001)
  end
end
if wait <= 0 then
  redis.call('ZADD', key, at, ARGV[5] .. '|' .. ARGV[2])
  redis.call('EXPIRE', key, 3700)
  return '0'
end
return tostring(wait)
"""


class RedisPacer:
    """Sliding windows in one sorted set per installation."""

    def __init__(self, client: redis.Redis, limits: PaceLimits | None = None, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.limits = limits or PaceLimits()
        self._reserve = client.register_script(_RESERVE_LUA)

    def reserve(self, installation_id: int, cost: int = 1) -> float:
        """Decide and insert in one Lua script (atomic on the server, so processes share the windows)."""
        key = f"{self.prefix}pace:{installation_id}"
        args: list[float | int | str] = [now(), cost, self.limits.per_minute, self.limits.per_hour, uuid.uuid4().hex]
        return max(0.0, float(self._reserve(keys=[key], args=args)))

    def observe(self, installation_id: int, remaining: int, reset: float) -> None:
        """Store the latest budget until its reset."""
        key = f"{self.prefix}budget:{installation_id}"
        self.client.set(key, f"{remaining} {reset}", ex=max(1, int(reset - now()) + 5))

    def budget_wait(self, installation_id: int, interactive: bool = False) -> float:
        """Wait until reset when the budget is under the floor (interactive: when it is spent)."""
        value = self.client.get(f"{self.prefix}budget:{installation_id}")
        if value is None:
            return 0.0
        remaining, reset = (value.decode() if isinstance(value, bytes) else str(value)).split()
        return _budget_wait(int(remaining), float(reset), self.limits, interactive)

    def progress(self, installation_id: int, key: str, total: int) -> int:
        """Count one more repository done for the fan-out `key` (its delivery id); the hash expires by itself."""
        name = f"{self.prefix}progress:{installation_id}:{key}"
        pipe = self.client.pipeline(transaction=True)
        pipe.hincrby(name, "done", 1)
        pipe.hset(name, "total", total)
        pipe.expire(name, int(PROGRESS_TTL))
        return int(pipe.execute()[0])
