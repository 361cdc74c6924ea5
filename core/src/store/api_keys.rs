//! API key records: found by the SHA-256 of the key (`{_}:apikey:{digest}`), listed and
//! revoked by id (`{_}:apikeys`). The key itself is never stored.

use std::{collections::HashMap, sync::LazyLock};

use deadpool_redis::redis::{self, Script};

use super::{Store, StoreError, now_ms};
use crate::{Collection, api_key::Scopes};

/// What the store holds of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub collection: Collection,
    pub scopes: Scopes,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds of the last request it authorised (updated at most every few
    /// seconds per gateway).
    pub last_used_at: Option<u64>,
}

/// Creates a key's record and its id entry. KEYS: apikey:{digest}, apikeys. ARGV: id, digest,
/// collection, scopes, created_at. Returns 0 when the digest or the id is taken.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'collection', ARGV[3], 'scopes', ARGV[4],
  'created_at', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// Notes a key's use, unless it was revoked meanwhile (never recreates the record).
/// KEYS: apikey:{digest}. ARGV: now.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
end
return 1
"#,
    )
});

/// Removes a key by id. KEYS: apikeys. ARGV: id, the apikey key prefix. Returns the removed
/// record's fields, or an empty list when there is no such id.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then return {} end
local record_key = ARGV[2] .. digest
local record = redis.call('HGETALL', record_key)
redis.call('DEL', record_key)
redis.call('HDEL', KEYS[1], ARGV[1])
return record
"#,
    )
});

impl ApiKeyRecord {
    /// A new key's record, made now (not stored yet).
    pub fn new(id: String, collection: Collection, scopes: Scopes) -> Self {
        Self {
            id,
            collection,
            scopes,
            created_at: now_ms(),
            last_used_at: None,
        }
    }
}

fn record_from(fields: HashMap<String, String>) -> Result<Option<ApiKeyRecord>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("api key record: {what}"));
    let get = |name: &str| fields.get(name).ok_or_else(|| corrupt(name));
    Ok(Some(ApiKeyRecord {
        id: get("id")?.clone(),
        collection: get("collection")?
            .parse()
            .map_err(|_| corrupt("collection"))?,
        scopes: get("scopes")?.parse().map_err(|_| corrupt("scopes"))?,
        created_at: get("created_at")?
            .parse()
            .map_err(|_| corrupt("created_at"))?,
        last_used_at: fields.get("last_used_at").and_then(|v| v.parse().ok()),
    }))
}

impl Store {
    /// Stores a new key's record under the digest of the key. Returns false when the id or
    /// digest is already taken (never, for random ones).
    pub async fn create_api_key(
        &self,
        record: &ApiKeyRecord,
        digest: &str,
    ) -> Result<bool, StoreError> {
        self.timed("redis.create_api_key", async {
            let mut conn = self.conn().await?;
            let created: i64 = CREATE
                .key(self.keys().api_key(digest))
                .key(self.keys().api_key_ids())
                .arg(&record.id)
                .arg(digest)
                .arg(record.collection.as_str())
                .arg(record.scopes.to_string())
                .arg(record.created_at)
                .invoke_async(&mut conn)
                .await?;
            Ok(created == 1)
        })
        .await
    }

    /// The record of the key with this digest, if the key exists and is not revoked.
    pub async fn find_api_key(&self, digest: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.timed("redis.find_api_key", async {
            let mut conn = self.conn().await?;
            let fields: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(self.keys().api_key(digest))
                .query_async(&mut conn)
                .await?;
            record_from(fields)
        })
        .await
    }

    /// Records that the key with this digest was used now.
    pub async fn touch_api_key(&self, digest: &str) -> Result<(), StoreError> {
        self.timed("redis.touch_api_key", async {
            let mut conn = self.conn().await?;
            let _: i64 = TOUCH
                .key(self.keys().api_key(digest))
                .arg(now_ms())
                .invoke_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Every key, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.timed("redis.list_api_keys", async {
            let mut conn = self.conn().await?;
            let ids: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(self.keys().api_key_ids())
                .query_async(&mut conn)
                .await?;
            let mut pipe = redis::pipe();
            for digest in ids.values() {
                pipe.hgetall(self.keys().api_key(digest));
            }
            let found: Vec<HashMap<String, String>> = if ids.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            let mut records = Vec::with_capacity(found.len());
            for fields in found {
                // A key revoked between the two reads is simply gone.
                if let Some(record) = record_from(fields)? {
                    records.push(record);
                }
            }
            records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(records)
        })
        .await
    }

    /// Removes the key with this id; its record, or `None` when there is no such key.
    pub async fn revoke_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.timed("redis.revoke_api_key", async {
            let mut conn = self.conn().await?;
            let flat: Vec<String> = REVOKE
                .key(self.keys().api_key_ids())
                .arg(id)
                .arg(self.keys().api_key(""))
                .invoke_async(&mut conn)
                .await?;
            let fields: HashMap<String, String> = flat
                .chunks_exact(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect();
            record_from(fields)
        })
        .await
    }
}
