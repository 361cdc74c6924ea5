//! What the gateway reads and writes: filenames, URL identity, job claims, status and matches.
//!
//! Filenames and URLs are kept apart (`file:`/`files:` and `url:`/`urls:`, see [`Keys`]): a
//! filename is a label that follows its latest upload, a URL is bound to one hash forever, and
//! neither can be read as or overwrite the other.
//!
//! Lost jobs are re-queued on re-upload (not by a sweeper): [`Store::claim_image`] tells the
//! caller to publish again when the image is `pending` (a publish that was never confirmed),
//! `queued` for longer than the re-queue bound (its message may have been dropped), or
//! `failed` with an error starting with [`ImageState::DEAD_LETTERED`] (the broker gave up on it, not the
//! decoder). Processing is idempotent, so a duplicate message costs one redundant decode.
//!
//! [`Keys`]: super::Keys

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use deadpool_redis::redis::{self, AsyncCommands, Script};

use super::{FaceRecord, ImageState, ImageStatus, MatchDetail, Store, StoreError, now_ms};
use crate::ImageHash;

/// Creates `image:{hash}` as `pending` unless it exists, or decides that an existing image's
/// job must be published again. KEYS: image. ARGV: now, re-queue bound (ms), dead-letter
/// prefix. Returns `new`, `requeue:<state it had>`, or the state it has.
const CLAIM: &str = r#"
local state = redis.call('HGET', KEYS[1], 'state')
local now = tonumber(ARGV[1])
if not state then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'created_at', ARGV[1], 'updated_at', ARGV[1])
  return 'new'
end
if state == 'pending' then return 'requeue:pending' end
if state == 'queued' then
  local since = tonumber(redis.call('HGET', KEYS[1], 'queued_at')
    or redis.call('HGET', KEYS[1], 'updated_at') or '0') or 0
  if now - since >= tonumber(ARGV[2]) then
    -- A lease: concurrent re-uploads within the bound do not all publish again.
    redis.call('HSET', KEYS[1], 'queued_at', ARGV[1])
    return 'requeue:queued'
  end
  return state
end
if state == 'failed' then
  local err = redis.call('HGET', KEYS[1], 'error') or ''
  if string.sub(err, 1, string.len(ARGV[3])) == ARGV[3] then
    redis.call('HSET', KEYS[1], 'state', 'pending', 'updated_at', ARGV[1])
    redis.call('HDEL', KEYS[1], 'error')
    return 'requeue:failed'
  end
end
return state
"#;

/// Moves `pending` to `queued` and starts the re-queue clock; `done` and `failed` are left
/// alone (a worker may have finished before the confirm arrived).
const CONFIRM: &str = r#"
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'pending' then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[1])
  state = 'queued'
end
if state == 'queued' then
  redis.call('HSET', KEYS[1], 'queued_at', ARGV[1])
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

/// Points a filename at its latest hash and moves it between the `files:` sets.
/// KEYS: file key, files-of-new-hash key; ARGV: name, hash, key prefix.
const RECORD_FILE: &str = r#"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
if old and old ~= ARGV[2] then
  redis.call('SREM', ARGV[3] .. 'files:' .. old, ARGV[1])
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"#;

/// Binds a URL to a hash forever (first writer wins); returns the bound hash.
/// KEYS: url key, urls-of-hash key; ARGV: url, hash.
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
    /// This caller created the record (`pending`) and must publish the job.
    New,
    /// Known, but its message may be gone: publish again. Carries the state it had
    /// (`pending`, `queued` past the bound, or dead-lettered `failed`, now `pending`).
    Requeue(ImageState),
    /// Known and in hand (`queued` within the bound, `done`, or failed for good).
    Existing(ImageState),
}

impl Claim {
    /// Whether the caller must publish the job.
    pub fn must_publish(self) -> bool {
        !matches!(self, Self::Existing(_))
    }
}

fn parse_hash(raw: &str) -> Result<ImageHash, StoreError> {
    raw.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// Filenames and URLs of one image as one sorted list without repeats.
fn merged(files: Vec<String>, urls: Vec<String>) -> Vec<String> {
    let all: BTreeSet<String> = files.into_iter().chain(urls).collect();
    all.into_iter().collect()
}

impl Store {
    /// The hash a scanned URL is bound to, if any.
    pub async fn hash_of_url(&self, url: &str) -> Result<Option<ImageHash>, StoreError> {
        self.get_hash("redis.hash_of_url", self.keys().url(url))
            .await
    }

    /// The hash a filename points at (its latest upload), if any.
    pub async fn hash_of_file(&self, name: &str) -> Result<Option<ImageHash>, StoreError> {
        self.get_hash("redis.hash_of_file", self.keys().file_name(name))
            .await
    }

    async fn get_hash(
        &self,
        span: &'static str,
        key: String,
    ) -> Result<Option<ImageHash>, StoreError> {
        self.timed(span, async {
            let mut conn = self.conn().await?;
            let raw: Option<String> = conn.get(key).await?;
            raw.as_deref().map(parse_hash).transpose()
        })
        .await
    }

    /// Claims an image for queueing: only one gateway publishes a new hash, and an image whose
    /// message may be gone is published again (see the module docs). `requeue_after` is how
    /// long an image may stay `queued` before a re-upload publishes it again.
    pub async fn claim_image(
        &self,
        hash: ImageHash,
        requeue_after: Duration,
    ) -> Result<Claim, StoreError> {
        self.timed("redis.claim_image", async {
            let mut conn = self.conn().await?;
            let answer: String = Script::new(CLAIM)
                .key(self.keys().image(hash))
                .arg(now_ms())
                .arg(u64::try_from(requeue_after.as_millis()).unwrap_or(u64::MAX))
                .arg(ImageState::DEAD_LETTERED)
                .invoke_async(&mut conn)
                .await?;
            let state = |s: &str| {
                ImageState::parse(s)
                    .ok_or_else(|| StoreError::Corrupt(format!("image state {s:?}")))
            };
            match answer.as_str() {
                "new" => Ok(Claim::New),
                other => match other.strip_prefix("requeue:") {
                    Some(had) => state(had).map(Claim::Requeue),
                    None => state(other).map(Claim::Existing),
                },
            }
        })
        .await
    }

    /// Marks a claimed image `queued` once the broker confirmed its job (and restarts the
    /// re-queue clock of one already `queued`).
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

    /// Records a filename for an image: the filename now points at this hash. URLs are not
    /// touched, whatever the filename's spelling.
    pub async fn record_file_name(&self, name: &str, hash: ImageHash) -> Result<(), StoreError> {
        self.timed("redis.record_file_name", async {
            let mut conn = self.conn().await?;
            let _: i64 = Script::new(RECORD_FILE)
                .key(self.keys().file_name(name))
                .key(self.keys().file_names(hash))
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
                .key(self.keys().url(url))
                .key(self.keys().urls(hash))
                .arg(url)
                .arg(hash.to_string())
                .invoke_async(&mut conn)
                .await?;
            parse_hash(&bound)
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
                let other = parse_hash(&other)?;
                pipe.smembers(self.keys().file_names(other))
                    .smembers(self.keys().urls(other));
                hashes.push((other, distance as f32));
            }
            // Read as a flat list (files, urls, files, urls, …): a tuple target would be
            // ambiguous when a set happens to hold exactly two members.
            let sets: Vec<Vec<String>> = if hashes.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            let mut sets = sets.into_iter();
            let names = std::iter::from_fn(|| Some((sets.next()?, sets.next()?)));
            Ok(hashes
                .into_iter()
                .zip(names)
                .map(|((hash, distance), (files, urls))| MatchDetail {
                    hash,
                    distance,
                    names: merged(files, urls),
                })
                .collect())
        })
        .await
    }

    /// The status document of one image; `None` when the hash is unknown.
    pub async fn image_status(&self, hash: ImageHash) -> Result<Option<ImageStatus>, StoreError> {
        self.timed("redis.image_status", async {
            let mut conn = self.conn().await?;
            type Row = (
                HashMap<String, String>,
                Vec<String>,
                Vec<String>,
                Option<String>,
            );
            let (fields, files, urls, faces): Row = redis::pipe()
                .hgetall(self.keys().image(hash))
                .smembers(self.keys().file_names(hash))
                .smembers(self.keys().urls(hash))
                .get(self.keys().faces(hash))
                .query_async(&mut conn)
                .await?;
            let Some(state) = fields.get("state") else {
                return Ok(None);
            };
            let state = ImageState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("image state {state:?}")))?;
            let names = merged(files, urls);
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
