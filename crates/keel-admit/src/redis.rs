//! The several-node backend: counters in Redis, checked and incremented by one Lua script
//! per reservation (sent as EVALSHA). Redis runs a script alone, so every applicable
//! counter is compared and increased in one step: two nodes can never both take the last
//! unit of a limit. The window ids come from the Redis server's clock (`TIME`), so nodes
//! with skewed clocks still count into the same window.
//!
//! Keys: `<prefix>:<scope>:<name>:<limit>:<window id>`, each with a TTL past its window's
//! end (none for `total` budgets), so a reservation lost with its node (never settled) is
//! forgotten when its window is. Soft alerts: `<prefix>:alert:<counter key>`, `SET NX`.
//! The script touches keys it derives (the window id is appended inside), so it suits one
//! Redis server or a primary with replicas, not Redis Cluster.

use crate::counter::{Counter, Held, Outcome};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::time::Duration;

/// KEYS: counter bases (prefixed). ARGV: per counter window code, limit (-1: none), amount,
/// TTL seconds (0: none). Returns `{1, 0, now, wid1, total1, ...}` or `{0, index, now}`.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1])
local function month(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y * 12 + m - 1
end
local function wid(code)
  if code == 'm' then return math.floor(now / 60) end
  if code == 'd' then return math.floor(now / 86400) end
  if code == 'M' then return month(math.floor(now / 86400)) end
  return 0
end
local keys, wids = {}, {}
for i = 1, #KEYS do
  local a = (i - 1) * 4
  wids[i] = wid(ARGV[a + 1])
  keys[i] = KEYS[i] .. ':' .. string.format('%d', wids[i])
  local limit = tonumber(ARGV[a + 2])
  if limit >= 0 then
    local cur = tonumber(redis.call('GET', keys[i]) or '0')
    if cur + tonumber(ARGV[a + 3]) > limit then
      return {0, i - 1, now}
    end
  end
end
local out = {1, 0, now}
for i = 1, #KEYS do
  local a = (i - 1) * 4
  local v = redis.call('INCRBY', keys[i], ARGV[a + 3])
  local ttl = tonumber(ARGV[a + 4])
  if ttl > 0 then redis.call('EXPIRE', keys[i], ttl) end
  out[#out + 1] = wids[i]
  out[#out + 1] = v
end
return out
";

/// KEYS: full counter keys. ARGV: deltas. A counter whose window expired is left alone.
const SETTLE: &str = r"
for i = 1, #KEYS do
  if ARGV[i] ~= '0' and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], ARGV[i])
  end
end
return 1
";

#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
    reserve: std::sync::Arc<Script>,
    settle: std::sync::Arc<Script>,
}

impl Redis {
    /// Connects (and reconnects on its own later). Fails if Redis is unreachable now.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            reserve: std::sync::Arc::new(Script::new(RESERVE)),
            settle: std::sync::Arc::new(Script::new(SETTLE)),
        })
    }

    /// The full key of a held counter.
    pub fn key(&self, base: &str, window_id: i64) -> String {
        format!("{}:{base}:{window_id}", self.prefix)
    }

    pub async fn reserve(&self, counters: &[Counter]) -> Result<Outcome, redis::RedisError> {
        let mut inv = self.reserve.prepare_invoke();
        for c in counters {
            inv.key(format!("{}:{}", self.prefix, c.base));
            inv.arg(c.window.code())
                .arg(c.limit.unwrap_or(-1))
                .arg(c.amount)
                .arg(c.window.ttl_secs());
        }
        let mut conn = self.conn.clone();
        let out: Vec<i64> = inv.invoke_async(&mut conn).await?;
        let bad = || {
            redis::RedisError::from((
                redis::ErrorKind::Client,
                "unexpected reply from the admission script",
            ))
        };
        let (&status, rest) = out.split_first().ok_or_else(bad)?;
        let (&index, rest) = rest.split_first().ok_or_else(bad)?;
        let (&now, rest) = rest.split_first().ok_or_else(bad)?;
        if status == 0 {
            let index = usize::try_from(index).map_err(|_| bad())?;
            return Ok(Outcome::Rejected { index, now });
        }
        if rest.len() != counters.len() * 2 {
            return Err(bad());
        }
        let held = counters
            .iter()
            .zip(rest.chunks_exact(2))
            .map(|(c, p)| Held {
                base: c.base.clone(),
                window_id: p[0],
                amount: c.amount,
                metric: c.metric,
            })
            .collect();
        let values = rest.chunks_exact(2).map(|p| p[1]).collect();
        Ok(Outcome::Reserved { held, values })
    }

    pub async fn settle(&self, deltas: &[(Held, i64)]) -> Result<(), redis::RedisError> {
        let mut inv = self.settle.prepare_invoke();
        for (h, delta) in deltas {
            inv.key(self.key(&h.base, h.window_id));
            inv.arg(*delta);
        }
        let mut conn = self.conn.clone();
        let _: i64 = inv.invoke_async(&mut conn).await?;
        Ok(())
    }

    /// True the first time any node asks for this counter and window (`SET NX`).
    pub async fn mark_alert(
        &self,
        base: &str,
        window_id: i64,
        ttl: i64,
    ) -> Result<bool, redis::RedisError> {
        let key = format!("{}:alert:{base}:{window_id}", self.prefix);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(1).arg("NX");
        if ttl > 0 {
            cmd.arg("EX").arg(ttl);
        }
        let set: Option<String> = cmd.query_async(&mut conn).await?;
        Ok(set.is_some())
    }

    /// The total of a counter (tests, diagnostics); 0 when absent.
    pub async fn value(&self, base: &str, window_id: i64) -> Result<i64, redis::RedisError> {
        let mut conn = self.conn.clone();
        let v: Option<i64> = conn.get(self.key(base, window_id)).await?;
        Ok(v.unwrap_or(0))
    }
}
