//! What the gateway reads and writes: filenames, URL identity, job claims, status and matches.
//!
//! Filenames and URLs are kept apart (`file:`/`files:` and `url:`/`urls:`, see [`Keys`]): a
//! filename is a label that follows its latest upload, a URL is bound to one hash forever, and
//! neither can be read as or overwrite the other.
//!
//! A claim whose publish never got confirmed (a 503) is swept after a while
//! ([`Store::sweep_pending`]). Lost jobs are re-queued on re-upload: [`Store::claim_image`] tells the
//! caller to publish again when the image is `pending` (a publish that was never confirmed),
//! `queued` for longer than the re-queue bound (its message may have been dropped), or
//! `failed` with an error starting with [`ImageState::DEAD_LETTERED`] (the broker gave up on it, not the
//! decoder). Processing is idempotent, so a duplicate message costs one redundant decode.
//!
//! [`Keys`]: super::Keys

use std::{
    collections::{BTreeSet, HashMap},
    sync::LazyLock,
    time::Duration,
};

use deadpool_redis::redis::{self, AsyncCommands, Script};

use super::{FaceRecord, ImageState, ImageStatus, MatchDetail, Store, StoreError, now_ms};
use crate::ImageHash;

/// Lua `claim(image key, now, re-queue bound (ms), dead-letter prefix)`: creates
/// `image:{hash}` as `pending` unless it exists, or decides that an existing image's job must
/// be published again. Returns `new`, `requeue:<state it had>`, or the state it has.
const CLAIM_FN: &str = r#"
local function claim(key, now_s, requeue_ms, dead_prefix)
  local state = redis.call('HGET', key, 'state')
  local now = tonumber(now_s)
  if not state then
    redis.call('HSET', key, 'state', 'pending', 'created_at', now_s, 'updated_at', now_s)
    redis.call('ZADD', pending_of(key), now_s, hash_of(key))
    return 'new'
  end
  if state == 'pending' then
    redis.call('ZADD', pending_of(key), now_s, hash_of(key))
    return 'requeue:pending'
  end
  if state == 'queued' then
    local since = tonumber(redis.call('HGET', key, 'queued_at')
      or redis.call('HGET', key, 'updated_at') or '0') or 0
    if now - since >= tonumber(requeue_ms) then
      -- A lease: concurrent re-uploads within the bound do not all publish again.
      redis.call('HSET', key, 'queued_at', now_s)
      return 'requeue:queued'
    end
    return state
  end
  if state == 'failed' then
    local err = redis.call('HGET', key, 'error') or ''
    if string.sub(err, 1, string.len(dead_prefix)) == dead_prefix then
      redis.call('HSET', key, 'state', 'pending', 'updated_at', now_s)
      redis.call('HDEL', key, 'error')
      redis.call('ZADD', pending_of(key), now_s, hash_of(key))
      return 'requeue:failed'
    end
  end
  return state
end
"#;

/// Lua `confirm(image key, now)`: moves `pending` to `queued` and starts the re-queue clock;
/// `done` and `failed` are left alone (a worker may have finished before the confirm arrived).
const CONFIRM_FN: &str = r#"
local function confirm(key, now)
  redis.call('ZREM', pending_of(key), hash_of(key))
  local state = redis.call('HGET', key, 'state')
  if state == 'pending' then
    redis.call('HSET', key, 'state', 'queued', 'updated_at', now)
    state = 'queued'
  end
  if state == 'queued' then
    redis.call('HSET', key, 'queued_at', now)
  end
end
"#;

/// Lua `pending_of(image key)` and `hash_of(image key)`: the collection's `pending` set and the
/// image's hash, from `{scope}image:{hash}` (see [`super::Keys::pending`]).
const PENDING_FN: &str = r#"
local function pending_of(image_key)
  return string.sub(image_key, 1, #image_key - 38) .. 'pending'
end
local function hash_of(image_key)
  return string.sub(image_key, -32)
end
"#;

/// Lua `record_file(file key, files-of-hash key, name, hash, key prefix)`: points a filename
/// at its latest hash and moves it between the `files:` sets.
const RECORD_FILE_FN: &str = r#"
local function record_file(file_key, files_key, name, hash, prefix)
  local old = redis.call('GET', file_key)
  redis.call('SET', file_key, hash)
  if old and old ~= hash then
    redis.call('SREM', prefix .. 'files:' .. old, name)
  end
  redis.call('SADD', files_key, name)
end
"#;

/// A script made of Lua functions and a body calling them. Built once: a [`Script`] hashes
/// its text, and every call after the first sends only that hash (`EVALSHA`).
fn script(functions: &[&str], body: &str) -> Script {
    Script::new(&format!("{}\n{body}", functions.concat()))
}

/// KEYS: image. ARGV: now, re-queue bound (ms), dead-letter prefix.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[PENDING_FN, CLAIM_FN],
        "return claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3])",
    )
});

/// An upload's claim, and when there is nothing to publish, its filename recorded in the same
/// round trip. KEYS: image, file, files-of-hash. ARGV: now, re-queue bound (ms), dead-letter
/// prefix, name, hash, key prefix.
static CLAIM_FILE: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[PENDING_FN, CLAIM_FN, RECORD_FILE_FN],
        r#"local r = claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if r ~= 'new' and string.sub(r, 1, 8) ~= 'requeue:' then
  record_file(KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[6])
end
return r"#,
    )
});

/// KEYS: image. ARGV: now.
static CONFIRM: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[PENDING_FN, CONFIRM_FN],
        "confirm(KEYS[1], ARGV[1]) return 1",
    )
});

/// A confirmed upload marked queued and its filename recorded in one round trip.
/// KEYS: image, file, files-of-hash. ARGV: now, name, hash, key prefix.
static CONFIRM_FILE: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[PENDING_FN, CONFIRM_FN, RECORD_FILE_FN],
        "confirm(KEYS[1], ARGV[1]) record_file(KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4]) return 1",
    )
});

/// Deletes a claim whose publish failed, only if it is still `pending`. KEYS: image.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[PENDING_FN],
        r#"
if redis.call('HGET', KEYS[1], 'state') == 'pending' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', pending_of(KEYS[1]), hash_of(KEYS[1]))
end
return 1
"#,
    )
});

/// KEYS: file key, files-of-new-hash key; ARGV: name, hash, key prefix.
static RECORD_FILE: LazyLock<Script> = LazyLock::new(|| {
    script(
        &[RECORD_FILE_FN],
        "record_file(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]) return 1",
    )
});

/// Binds a URL to a hash forever (first writer wins); returns the bound hash.
/// KEYS: url key, urls-of-hash key; ARGV: url, hash.
static RECORD_URL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local bound = redis.call('GET', KEYS[1])
if bound then return bound end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return ARGV[2]
"#,
    )
});

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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A claim script's answer.
fn parse_claim(answer: &str) -> Result<Claim, StoreError> {
    let state = |s: &str| {
        ImageState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("image state {s:?}")))
    };
    match answer {
        "new" => Ok(Claim::New),
        other => match other.strip_prefix("requeue:") {
            Some(had) => state(had).map(Claim::Requeue),
            None => state(other).map(Claim::Existing),
        },
    }
}

fn parse_hash(raw: &str) -> Result<ImageHash, StoreError> {
    raw.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// Filenames and URLs of one image as one sorted list without repeats.
/// Names listed per matched image; `name_count` says how many it has.
pub const NAMES_PER_MATCH: usize = 100;

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
            let answer: String = CLAIM
                .key(self.keys().image(hash))
                .arg(now_ms())
                .arg(millis(requeue_after))
                .arg(ImageState::DEAD_LETTERED)
                .invoke_async(&mut conn)
                .await?;
            parse_claim(&answer)
        })
        .await
    }

    /// [`Store::claim_image`] for an upload named `name`: when the claim says there is nothing
    /// to publish ([`Claim::Existing`]), the filename is recorded in the same round trip (as
    /// [`Store::record_file_name`] would), so a known image costs one.
    pub async fn claim_upload(
        &self,
        hash: ImageHash,
        requeue_after: Duration,
        name: &str,
    ) -> Result<Claim, StoreError> {
        self.timed("redis.claim_upload", async {
            let mut conn = self.conn().await?;
            let mut claim = CLAIM_FILE.prepare_invoke();
            claim
                .key(self.keys().image(hash))
                .arg(now_ms())
                .arg(millis(requeue_after))
                .arg(ImageState::DEAD_LETTERED);
            let answer: String = self
                .file_name_args(&mut claim, name, hash)
                .invoke_async(&mut conn)
                .await?;
            parse_claim(&answer)
        })
        .await
    }

    /// Marks a claimed image `queued` once the broker confirmed its job (and restarts the
    /// re-queue clock of one already `queued`).
    pub async fn confirm_queued(&self, hash: ImageHash) -> Result<(), StoreError> {
        self.run_script("redis.confirm_queued", &CONFIRM, hash)
            .await
    }

    /// [`Store::confirm_queued`] and [`Store::record_file_name`] in one round trip: a confirmed
    /// upload is queued and its filename points at it.
    pub async fn confirm_upload(&self, hash: ImageHash, name: &str) -> Result<(), StoreError> {
        self.timed("redis.confirm_upload", async {
            let mut conn = self.conn().await?;
            let mut confirm = CONFIRM_FILE.prepare_invoke();
            confirm.key(self.keys().image(hash)).arg(now_ms());
            let _: i64 = self
                .file_name_args(&mut confirm, name, hash)
                .invoke_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Undoes a claim whose publish failed, so a later request can try again.
    pub async fn release_claim(&self, hash: ImageHash) -> Result<(), StoreError> {
        self.run_script("redis.release_claim", &RELEASE, hash).await
    }

    /// Adds a filename's keys (`file:` and the hash's `files:`) and arguments (name, hash, the
    /// collection's key scope) after a script call's own, as `record_file` takes them.
    fn file_name_args<'c, 's>(
        &self,
        call: &'c mut redis::ScriptInvocation<'s>,
        name: &str,
        hash: ImageHash,
    ) -> &'c mut redis::ScriptInvocation<'s> {
        call.key(self.keys().file_name(name))
            .key(self.keys().file_names(hash))
            .arg(name)
            .arg(hash.to_string())
            .arg(self.keys().scope())
    }

    async fn run_script(
        &self,
        span: &'static str,
        script: &Script,
        hash: ImageHash,
    ) -> Result<(), StoreError> {
        self.timed(span, async {
            let mut conn = self.conn().await?;
            let _: i64 = script
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
            let _: i64 = self
                .file_name_args(&mut RECORD_FILE.prepare_invoke(), name, hash)
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
            let bound: String = RECORD_URL
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
    /// At most `limit` names of matched images, sorted: those of the closest images first
    /// (a name shared by two images counts once).
    pub async fn matched_names(
        &self,
        hash: ImageHash,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let details = self.match_details(hash, 0, limit).await?;
        let mut names = BTreeSet::new();
        for name in details.into_iter().flat_map(|d| d.names) {
            if names.len() == limit {
                break;
            }
            names.insert(name);
        }
        Ok(names.into_iter().collect())
    }

    /// Up to `limit` matched images from the `offset`-th on, closest first, each with its best
    /// distance and (the first [`NAMES_PER_MATCH`] of) its names.
    pub async fn match_details(
        &self,
        hash: ImageHash,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MatchDetail>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.timed("redis.match_details", async {
            let mut conn = self.conn().await?;
            let last = (offset + limit - 1) as isize;
            let matched: Vec<(String, f64)> = conn
                .zrange_withscores(self.keys().matches(hash), offset as isize, last)
                .await?;
            let mut pipe = redis::pipe();
            let mut hashes = Vec::with_capacity(matched.len());
            for (other, distance) in matched {
                let other = parse_hash(&other)?;
                for set in [self.keys().file_names(other), self.keys().urls(other)] {
                    pipe.cmd("SORT")
                        .arg(&set)
                        .arg("ALPHA")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(NAMES_PER_MATCH)
                        .scard(&set);
                }
                hashes.push((other, distance as f32));
            }
            // Read as a flat list (files, count, urls, count, …).
            let replies: Vec<redis::Value> = if hashes.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            let mut replies = replies.into_iter();
            let mut next_set = || -> Result<(Vec<String>, u64), StoreError> {
                let (Some(names), Some(count)) = (replies.next(), replies.next()) else {
                    return Err(StoreError::Corrupt("short match names reply".into()));
                };
                let parse = |e: redis::ParsingError| StoreError::from(redis::RedisError::from(e));
                Ok((
                    redis::from_redis_value(names).map_err(parse)?,
                    redis::from_redis_value(count).map_err(parse)?,
                ))
            };
            let mut details = Vec::with_capacity(hashes.len());
            for (hash, distance) in hashes {
                let (files, file_count) = next_set()?;
                let (urls, url_count) = next_set()?;
                let mut names = merged(files, urls);
                names.truncate(NAMES_PER_MATCH);
                details.push(MatchDetail {
                    hash,
                    distance,
                    names,
                    name_count: file_count + url_count,
                });
            }
            Ok(details)
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
