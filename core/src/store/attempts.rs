//! The workers' own poison-message budget: how many times processing of an image started
//! without reaching `done` (the worker crashed, or inference failed, while it ran). Kept as the
//! `attempts` field of `image:{hash}`, so a return caused by a lost connection, or a prefetched
//! message that never started, costs nothing — unlike the broker's delivery count.
//!
//! Also the marking of dead-lettered jobs: a job in `facematch.dead` is `failed` with an
//! `error` starting with [`DEAD_LETTERED`], which tells the gateway a re-upload may queue it
//! again.

use std::sync::LazyLock;

use deadpool_redis::redis::{self, Script};

use super::{ALIVE_FN, ImageState, Store, StoreError, now_ms};
use crate::ImageHash;

/// Prefix of the `error` of every job that ended in the dead-letter queue (the gateway
/// re-queues such an image when it is uploaded again).
pub const DEAD_LETTERED: &str = ImageState::DEAD_LETTERED;

/// Counts one more attempt unless the image is done or its collection gone. KEYS: image,
/// epoch. ARGV: epoch guard. Returns -2 when gone, -1 when done, else the attempts so far, this
/// one included.
static BEGIN_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ALIVE_FN}{}",
        r#"
if not alive(KEYS[2], ARGV[1]) then return -2 end
local state = redis.call('HGET', KEYS[1], 'state')
-- No record: the image was erased after its job was queued (gateways make it first).
if not state then return -2 end
if state == 'done' then return -1 end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
"#
    ))
});

/// What counting an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// Counted: the attempts so far, this one included.
    Started(u32),
    /// The image is done already (a redelivery).
    AlreadyDone,
    /// The job's collection was deleted (or re-created), or its image erased, since it was
    /// queued.
    Gone,
}

/// Takes back one counted attempt (never below zero) of each image not done. KEYS: images.
static FORGIVE_ATTEMPTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'state') ~= 'done' then
    local n = tonumber(redis.call('HGET', key, 'attempts') or '0')
    if n > 0 then redis.call('HINCRBY', key, 'attempts', -1) end
  end
end
return 0
"#,
    )
});

/// Marks a job failed as dead-lettered, clears its attempts (so a re-queued job starts afresh)
/// and announces it, unless it is done or failed already or its collection is gone. KEYS:
/// image, epoch. ARGV: error, now, epoch guard, settled channel and message. Returns 1 when it
/// changed the state.
static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{ALIVE_FN}{}", DEAD_LETTER_BODY)));

const DEAD_LETTER_BODY: &str = r#"
if not alive(KEYS[2], ARGV[3]) then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'attempts')
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#;

impl Store {
    /// The attempts each image has had so far (0 when none or unknown).
    pub async fn attempts(&self, hashes: &[ImageHash]) -> Result<Vec<u32>, StoreError> {
        let images: Vec<(&Store, ImageHash)> = hashes.iter().map(|h| (self, *h)).collect();
        self.attempts_of(&images).await
    }

    /// [`Store::attempts`] of images of any collections (each given with its collection's
    /// store), in one round trip.
    pub async fn attempts_of(
        &self,
        images: &[(&Store, ImageHash)],
    ) -> Result<Vec<u32>, StoreError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        self.timed("redis.attempts", async {
            let mut conn = self.conn().await?;
            let mut pipe = redis::pipe();
            for (store, h) in images {
                pipe.hget(store.keys().image(*h), "attempts");
            }
            let counts: Vec<Option<u32>> = pipe.query_async(&mut conn).await?;
            Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
        })
        .await
    }

    /// Counts the start of processing an image.
    pub async fn begin_attempt(&self, hash: ImageHash) -> Result<Begun, StoreError> {
        self.timed("redis.begin_attempt", async {
            let mut conn = self.conn().await?;
            let n: i64 = BEGIN_ATTEMPT
                .key(self.keys().image(hash))
                .key(self.keys().epoch())
                .arg(self.guard().arg())
                .invoke_async(&mut conn)
                .await?;
            Ok(match n {
                -2 => Begun::Gone,
                -1 => Begun::AlreadyDone,
                n => Begun::Started(
                    u32::try_from(n)
                        .map_err(|_| StoreError::Corrupt(format!("attempts of {hash}: {n}")))?,
                ),
            })
        })
        .await
    }

    /// Takes back the attempt counted by [`Store::begin_attempt`] for images whose run failed
    /// through no fault of theirs (the worker's face index, not the image), so a failure of
    /// the worker never uses up a job's poison budget.
    pub async fn forgive_attempts(&self, hashes: &[ImageHash]) -> Result<(), StoreError> {
        if hashes.is_empty() {
            return Ok(());
        }
        self.timed("redis.forgive_attempts", async {
            let mut conn = self.conn().await?;
            let mut call = FORGIVE_ATTEMPTS.prepare_invoke();
            for hash in hashes {
                call.key(self.keys().image(*hash));
            }
            let _: i64 = call.invoke_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Marks a job `failed` with `error = "dead-lettered: {reason}"` unless it is done or
    /// failed already (the first reason stands). Returns whether the state changed.
    pub async fn mark_dead_lettered(
        &self,
        hash: ImageHash,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.timed("redis.mark_dead_lettered", async {
            let mut conn = self.conn().await?;
            let mut call = DEAD_LETTER.key(self.keys().image(hash));
            call.key(self.keys().epoch())
                .arg(format!("{DEAD_LETTERED} {reason}"))
                .arg(now_ms())
                .arg(self.guard().arg());
            let changed: i64 = self
                .settled_args(&mut call, hash)
                .invoke_async(&mut conn)
                .await?;
            Ok(changed == 1)
        })
        .await
    }
}
