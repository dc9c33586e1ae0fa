"""The refusal counters of `bot.app.refusals` in the queue's store: SQLite or Redis, shared by every worker."""

from __future__ import annotations

import redis

from bot.app import refusals as rules
from bot.app.refusals import Answer, RefusalLimits, counted, decide, keys
from bot.queue.storage import KEY_PREFIX, SqliteDb, in_store, now

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS refusal_counts (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS refusal_counts_expires ON refusal_counts (expires)",
)


class SqliteRefusals:
    """Counters in the queue's SQLite file; one transaction decides and counts."""

    def __init__(self, db: SqliteDb, limits: RefusalLimits | None = None) -> None:
        self.db = db
        self.limits = limits or rules.LIMITS
        db.ensure("refusals", SQLITE_DDL)

    def take(self, installation_id: int, repo: str, user: str, *, budget_low: bool) -> Answer:
        """Decide how to answer one refusal and count it."""
        at, window = now(), self.limits.window
        bucket = int(at // window)
        names = keys(installation_id, repo, user, bucket)
        with self.db.tx() as cur:
            cur.execute("DELETE FROM refusal_counts WHERE expires < ?", (at,))
            cur.execute(f"SELECT key, count FROM refusal_counts WHERE key IN ({','.join('?' * len(names))})", names)
            found = {str(k): int(c) for k, c in cur.fetchall()}
            answer = decide([found.get(k, 0) for k in names], self.limits, budget_low)
            for key in names[counted(answer)]:
                cur.execute(
                    "INSERT INTO refusal_counts (key, count, expires) VALUES (?, 1, ?) "
                    "ON CONFLICT(key) DO UPDATE SET count = count + 1",
                    (key, (bucket + 1) * window),
                )
        return answer


# `decide` in Lua, so deciding and counting are one atomic step on the server.
_TAKE_LUA = """
local c = {}
for i = 1, 5 do c[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
local low, ttl = ARGV[6] == '1', tonumber(ARGV[7])
local first, last, answer = 0, -1, 'none'
if not low and c[1] < tonumber(ARGV[1]) and c[2] < tonumber(ARGV[2]) and c[3] < tonumber(ARGV[3]) then
  first, last, answer = 1, 3, 'comment'
elseif c[4] < tonumber(ARGV[4]) and c[5] < tonumber(ARGV[5]) then
  first, last, answer = 4, 5, 'reaction'
end
for i = first, last do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ttl)
end
return answer
"""


class RedisRefusals:
    """One counter key per window; Redis expires them when the window ends."""

    def __init__(self, client: redis.Redis, limits: RefusalLimits | None = None, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.limits = limits or rules.LIMITS
        self.prefix = prefix
        self._take = client.register_script(_TAKE_LUA)

    def take(self, installation_id: int, repo: str, user: str, *, budget_low: bool) -> Answer:
        """Decide how to answer one refusal and count it (one Lua script)."""
        at, limits = now(), self.limits
        bucket = int(at // limits.window)
        names = [self.prefix + k for k in keys(installation_id, repo, user, bucket)]
        ttl = max(1, int((bucket + 1) * limits.window - at) + 1)
        args = [
            limits.per_user,
            limits.per_repo,
            limits.per_installation,
            limits.reactions_per_repo,
            limits.reactions_per_installation,
            "1" if budget_low else "0",
            ttl,
        ]
        answer = self._take(keys=names, args=args)
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        return "comment" if text == "comment" else "reaction" if text == "reaction" else "none"


def limiter_in(store: object) -> SqliteRefusals | RedisRefusals | None:
    """The limiter kept in a queue store (a pacer's SQLite file or Redis); None without one."""
    return in_store(store, SqliteRefusals, lambda client, prefix: RedisRefusals(client, prefix=prefix))
