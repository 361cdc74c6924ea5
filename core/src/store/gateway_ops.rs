//! What the gateway reads and writes: names, URL identity, job claims, status and matches.

use std::collections::{BTreeSet, HashMap};

use deadpool_redis::redis::{self, AsyncCommands, Script};

use super::{FaceRecord, ImageState, ImageStatus, MatchDetail, Store, StoreError, now_ms};
use crate::ImageHash;

/// Creates `image:{hash}` as `pending` unless it exists; returns the state it had (or "new").
const CLAIM: &str = r#"
local state = redis.call('HGET', KEYS[1], 'state')
if state then return state end
redis.call('HSET', KEYS[1], 'state', 'pending', 'created_at', ARGV[1], 'updated_at', ARGV[1])
return 'new'
"#;

/// Moves `pending` to `queued`; any other state is left alone (a worker may already be done).
const CONFIRM: &str = r#"
if redis.call('HGET', KEYS[1], 'state') == 'pending' then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[1])
end
return 1
"#;

/// Deletes a claim whose publish failed, only if it is still `pending`.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'state') == 'pending' then
  redis.call('DEL', KEYS[1])
end
return 1
"#;

/// Points a filename at its latest hash and moves it between the `names:` sets.
/// KEYS: name key, names-of-new-hash key; ARGV: name, hash, key prefix.
const RECORD_NAME: &str = r#"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
if old and old ~= ARGV[2] then
  redis.call('SREM', ARGV[3] .. 'names:' .. old, ARGV[1])
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"#;

/// Binds a URL to a hash forever (first writer wins); returns the bound hash.
const RECORD_URL: &str = r#"
local bound = redis.call('GET', KEYS[1])
if bound then return bound end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return ARGV[2]
"#;

/// The result of claiming an image for queueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller created the record and must publish the job.
    New,
    /// Already known in this state.
    Existing(ImageState),
}

impl Store {
    /// The hash a filename or URL points at, if any.
    pub async fn hash_of_name(&self, name: &str) -> Result<Option<ImageHash>, StoreError> {
        self.timed("redis.hash_of_name", async {
            let mut conn = self.conn().await?;
            let raw: Option<String> = conn.get(self.keys().name(name)).await?;
            raw.map(|s| s.parse().map_err(|e| StoreError::Corrupt(format!("{e}"))))
                .transpose()
        })
        .await
    }

    /// Claims an image for queueing: only one gateway publishes a new hash.
    pub async fn claim_image(&self, hash: ImageHash) -> Result<Claim, StoreError> {
        self.timed("redis.claim_image", async {
            let mut conn = self.conn().await?;
            let state: String = Script::new(CLAIM)
                .key(self.keys().image(hash))
                .arg(now_ms())
                .invoke_async(&mut conn)
                .await?;
            if state == "new" {
                return Ok(Claim::New);
            }
            ImageState::parse(&state)
                .map(Claim::Existing)
                .ok_or_else(|| StoreError::Corrupt(format!("image state {state:?}")))
        })
        .await
    }

    /// Marks a claimed image `queued` once the broker confirmed its job.
    pub async fn confirm_queued(&self, hash: ImageHash) -> Result<(), StoreError> {
        self.run_script(CONFIRM, hash).await
    }

    /// Undoes a claim whose publish failed, so a later request can try again.
    pub async fn release_claim(&self, hash: ImageHash) -> Result<(), StoreError> {
        self.run_script(RELEASE, hash).await
    }

    async fn run_script(&self, script: &str, hash: ImageHash) -> Result<(), StoreError> {
        self.timed("redis.image_script", async {
            let mut conn = self.conn().await?;
            let _: i64 = Script::new(script)
                .key(self.keys().image(hash))
                .arg(now_ms())
                .invoke_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Records a filename for an image: the name now points at this hash.
    pub async fn record_name(&self, name: &str, hash: ImageHash) -> Result<(), StoreError> {
        self.timed("redis.record_name", async {
            let mut conn = self.conn().await?;
            let _: i64 = Script::new(RECORD_NAME)
                .key(self.keys().name(name))
                .key(self.keys().names(hash))
                .arg(name)
                .arg(hash.to_string())
                .arg(self.keys().prefix())
                .invoke_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Binds a URL to a hash unless it is bound already; returns the hash it is bound to.
    pub async fn record_url(&self, url: &str, hash: ImageHash) -> Result<ImageHash, StoreError> {
        self.timed("redis.record_url", async {
            let mut conn = self.conn().await?;
            let bound: String = Script::new(RECORD_URL)
                .key(self.keys().name(url))
                .key(self.keys().names(hash))
                .arg(url)
                .arg(hash.to_string())
                .invoke_async(&mut conn)
                .await?;
            bound
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))
        })
        .await
    }

    /// Every name of every other image sharing a face with `hash`, sorted, without repeats.
    pub async fn matched_names(&self, hash: ImageHash) -> Result<Vec<String>, StoreError> {
        let details = self.match_details(hash).await?;
        let names: BTreeSet<String> = details.into_iter().flat_map(|d| d.names).collect();
        Ok(names.into_iter().collect())
    }

    /// Each matched image with its best distance and names, closest first.
    pub async fn match_details(&self, hash: ImageHash) -> Result<Vec<MatchDetail>, StoreError> {
        self.timed("redis.match_details", async {
            let mut conn = self.conn().await?;
            let matched: Vec<(String, f64)> = conn
                .zrange_withscores(self.keys().matches(hash), 0, -1)
                .await?;
            let mut pipe = redis::pipe();
            let mut hashes = Vec::with_capacity(matched.len());
            for (other, distance) in matched {
                let other: ImageHash = other
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("{e}")))?;
                pipe.smembers(self.keys().names(other));
                hashes.push((other, distance as f32));
            }
            let names: Vec<Vec<String>> = if hashes.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            Ok(hashes
                .into_iter()
                .zip(names)
                .map(|((hash, distance), mut names)| {
                    names.sort();
                    MatchDetail {
                        hash,
                        distance,
                        names,
                    }
                })
                .collect())
        })
        .await
    }

    /// The status document of one image; `None` when the hash is unknown.
    pub async fn image_status(&self, hash: ImageHash) -> Result<Option<ImageStatus>, StoreError> {
        self.timed("redis.image_status", async {
            let mut conn = self.conn().await?;
            let (fields, mut names, faces): (HashMap<String, String>, Vec<String>, Option<String>) =
                redis::pipe()
                    .hgetall(self.keys().image(hash))
                    .smembers(self.keys().names(hash))
                    .get(self.keys().faces(hash))
                    .query_async(&mut conn)
                    .await?;
            let Some(state) = fields.get("state") else {
                return Ok(None);
            };
            let state = ImageState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("image state {state:?}")))?;
            names.sort();
            let mut faces: Vec<FaceRecord> = match faces {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("faces of {hash}: {e}")))?,
                None => Vec::new(),
            };
            for face in &mut faces {
                face.descriptor.clear();
            }
            let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u32>().ok());
            let time = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
            Ok(Some(ImageStatus {
                hash,
                state,
                names,
                width: num("width"),
                height: num("height"),
                face_count: num("faces"),
                faces,
                model: fields.get("model").cloned(),
                error: fields.get("error").cloned(),
                created_at: time("created_at"),
                updated_at: time("updated_at"),
            }))
        })
        .await
    }
}
