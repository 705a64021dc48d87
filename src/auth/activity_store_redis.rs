//! `RedisActivityStore`: the activity trail's two tables in Redis, shared
//! by every instance (SPEC §7). Account events are a list, newest first,
//! trimmed to `ACCOUNT_EVENTS_KEPT`; failure rows are three hashes (count,
//! first and last time, by row) and a sorted set of when each row was last
//! counted, trimmed to `FAILURE_ROWS_KEPT` by one Lua call. Recording
//! stays in memory until `flush` (as in the file back end); a failed flush
//! keeps what it could not write for the next one.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::activity::{AccountEvent, FailureRow, ACCOUNT_EVENTS_KEPT, FAILURE_ROWS_KEPT};
use super::activity_records::count_failure_in;
use super::activity_store::ActivityStore;
use crate::store::redis::{unavailable, undecodable, Redis};
use crate::store::StoreError;

/// Counts the rows in ARGV (from ARGV[2], four values each: row, count,
/// first time, last time; oldest first) and keeps the newest ARGV[1].
static COUNT_FAILURES: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        for i = 2, #ARGV, 4 do
          local row = ARGV[i]
          redis.call('HINCRBY', KEYS[1], row, ARGV[i + 1])
          redis.call('HSETNX', KEYS[2], row, ARGV[i + 2])
          redis.call('HSET', KEYS[3], row, ARGV[i + 3])
          redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[5]), row)
        end
        local extra = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[1])
        if extra > 0 then
          for _, row in ipairs(redis.call('ZRANGE', KEYS[4], 0, extra - 1)) do
            redis.call('HDEL', KEYS[1], row)
            redis.call('HDEL', KEYS[2], row)
            redis.call('HDEL', KEYS[3], row)
          end
          redis.call('ZREMRANGEBYRANK', KEYS[4], 0, extra - 1)
        end
        return 1
        ",
    )
});

/// The newest ARGV[1] rows, four values each (row, count, first, last).
static READ_FAILURES: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local out = {}
        for _, row in ipairs(redis.call('ZREVRANGE', KEYS[4], 0, tonumber(ARGV[1]) - 1)) do
          table.insert(out, row)
          table.insert(out, redis.call('HGET', KEYS[1], row))
          table.insert(out, redis.call('HGET', KEYS[2], row))
          table.insert(out, redis.call('HGET', KEYS[3], row))
        end
        return out
        ",
    )
});

/// What was recorded and not written yet.
#[derive(Debug, Default)]
struct Pending {
    /// Newest first.
    account: VecDeque<AccountEvent>,
    /// Most recently counted first; `count` is the count not written yet.
    failures: VecDeque<FailureRow>,
}

#[derive(Debug)]
pub struct RedisActivityStore {
    redis: Redis,
    account: String,
    /// count, first, last, seen, sequence.
    failure_keys: [String; 5],
    pending: Mutex<Pending>,
}

type RowId = (String, IpAddr, DateTime<Utc>);

fn row_id(row: &FailureRow) -> RowId {
    (row.code.clone(), row.client, row.hour)
}

fn same_row(a: &FailureRow, b: &FailureRow) -> bool {
    a.code == b.code && a.client == b.client && a.hour == b.hour
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(undecodable("cannot serialise the activity trail"))
}

fn parse<T: serde::de::DeserializeOwned>(text: Option<&str>) -> Result<T, StoreError> {
    let text = text.unwrap_or("null");
    serde_json::from_str(text).map_err(undecodable("the activity trail in Redis is not valid"))
}

impl RedisActivityStore {
    pub fn new(redis: Redis) -> Self {
        let key = |name: &str| redis.key(&format!("activity:{name}"));
        Self {
            account: key("account"),
            failure_keys: [
                key("failures:count"),
                key("failures:first"),
                key("failures:last"),
                key("failures:seen"),
                key("failures:sequence"),
            ],
            redis,
            pending: Mutex::new(Pending::default()),
        }
    }

    async fn stored_rows(&self) -> Result<Vec<FailureRow>, StoreError> {
        let values: Vec<Option<String>> = READ_FAILURES
            .key(&self.failure_keys[..])
            .arg(FAILURE_ROWS_KEPT)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read the failure rows from Redis"))?;
        values
            .chunks(4)
            .map(|row| {
                let (code, client, hour): RowId = parse(row[0].as_deref())?;
                Ok(FailureRow {
                    code,
                    client,
                    hour,
                    count: row[1].as_deref().unwrap_or("0").parse().unwrap_or(0),
                    first_at: parse(row[2].as_deref())?,
                    last_at: parse(row[3].as_deref())?,
                })
            })
            .collect()
    }

    async fn write_failures(&self, rows: &VecDeque<FailureRow>) -> Result<(), StoreError> {
        let mut script = COUNT_FAILURES.prepare_invoke();
        script.key(&self.failure_keys[..]).arg(FAILURE_ROWS_KEPT);
        for row in rows.iter().rev() {
            script
                .arg(json(&row_id(row))?)
                .arg(row.count)
                .arg(json(&row.first_at)?)
                .arg(json(&row.last_at)?);
        }
        let _: u8 = script
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot write the failure rows to Redis"))?;
        Ok(())
    }

    async fn write_account(&self, events: &VecDeque<AccountEvent>) -> Result<(), StoreError> {
        let oldest_first = events
            .iter()
            .rev()
            .map(json)
            .collect::<Result<Vec<_>, _>>()?;
        redis::pipe()
            .atomic()
            .cmd("LPUSH")
            .arg(&self.account)
            .arg(oldest_first)
            .ignore()
            .cmd("LTRIM")
            .arg(&self.account)
            .arg(0)
            .arg(ACCOUNT_EVENTS_KEPT - 1)
            .ignore()
            .query_async::<()>(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot write the account events to Redis"))
    }

    /// Puts back what a failed flush did not write, behind what was
    /// recorded meanwhile.
    fn keep(&self, account: VecDeque<AccountEvent>, failures: VecDeque<FailureRow>) {
        let mut pending = self.pending.lock();
        pending.account.extend(account);
        pending.account.truncate(ACCOUNT_EVENTS_KEPT);
        for old in failures {
            match pending.failures.iter_mut().find(|new| same_row(new, &old)) {
                Some(new) => {
                    new.count += old.count;
                    new.first_at = old.first_at;
                }
                None => pending.failures.push_back(old),
            }
        }
        pending.failures.truncate(FAILURE_ROWS_KEPT);
    }
}

#[async_trait]
impl ActivityStore for RedisActivityStore {
    fn push_account(&self, event: AccountEvent) {
        let mut pending = self.pending.lock();
        pending.account.push_front(event);
        pending.account.truncate(ACCOUNT_EVENTS_KEPT);
    }

    fn count_failure(&self, code: &str, client: IpAddr, hour: DateTime<Utc>, at: DateTime<Utc>) {
        let mut pending = self.pending.lock();
        count_failure_in(&mut pending.failures, code, client, hour, at);
    }

    async fn account_events(&self) -> Result<Vec<AccountEvent>, StoreError> {
        let stored: Vec<String> = redis::cmd("LRANGE")
            .arg(&self.account)
            .arg(0)
            .arg(ACCOUNT_EVENTS_KEPT - 1)
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read the account events from Redis"))?;
        let mut events: Vec<AccountEvent> = self.pending.lock().account.iter().cloned().collect();
        for text in stored {
            events.push(parse(Some(&text))?);
        }
        events.truncate(ACCOUNT_EVENTS_KEPT);
        Ok(events)
    }

    async fn failure_rows(&self) -> Result<Vec<FailureRow>, StoreError> {
        let mut stored = self.stored_rows().await?;
        let mut rows: Vec<FailureRow> = self.pending.lock().failures.iter().cloned().collect();
        for row in &mut rows {
            if let Some(index) = stored.iter().position(|old| same_row(old, row)) {
                let old = stored.remove(index);
                row.count += old.count;
                row.first_at = old.first_at;
            }
        }
        rows.extend(stored);
        rows.truncate(FAILURE_ROWS_KEPT);
        Ok(rows)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (account, failures) = {
            let mut pending = self.pending.lock();
            (
                std::mem::take(&mut pending.account),
                std::mem::take(&mut pending.failures),
            )
        };
        if account.is_empty() && failures.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.redis.writable() {
            self.keep(account, failures);
            return Err(err);
        }
        if !failures.is_empty() {
            if let Err(err) = self.write_failures(&failures).await {
                self.keep(account, failures);
                return Err(err);
            }
        }
        if !account.is_empty() {
            if let Err(err) = self.write_account(&account).await {
                self.keep(account, VecDeque::new());
                return Err(err);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::conformance;
    use crate::store::redis::test_server;

    #[tokio::test]
    async fn the_redis_activity_store_passes_the_conformance_suite() {
        let redis = test_server::connect("activity").await;
        conformance::activity::check(
            test_server::opener(&redis, |redis| {
                Arc::new(RedisActivityStore::new(redis)) as Arc<dyn ActivityStore>
            }),
            test_server::write_faults(&redis),
        )
        .await;
    }
}
