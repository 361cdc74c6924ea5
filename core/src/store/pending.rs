//! Sweeping claims that never got queued. A gateway claims an image (`pending`) before it
//! publishes its job and marks it `queued` once the broker confirms; when that answer is lost
//! (Redis or the broker failed mid-request, the client got a 503), the record would stay
//! `pending` until someone uploads the same bytes again. The sweep settles every claim older
//! than a bound: a record nothing names (no filename, no URL: the client was never told it
//! exists) is removed; a named one is marked `failed` as dead-lettered, which a re-upload queues
//! again. A job that was queued after all still ends `done` when a worker gets to it.

use std::{sync::LazyLock, time::Duration};

use deadpool_redis::redis::Script;

use super::{ImageState, Store, StoreError, now_ms};
use crate::ImageHash;

/// Claims looked at per sweep of one collection (the rest wait for the next sweep).
const SWEEP_BATCH: usize = 500;

/// KEYS: pending. ARGV: cutoff (ms), collection scope, dead-letter prefix, now, batch, settled
/// channel, collection name (each settled image is announced as `{collection} {hash}`, as
/// [`super::settled_message`] spells it). Returns the hashes it settled.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
local settled = {}
for _, hash in ipairs(due) do
  redis.call('ZREM', KEYS[1], hash)
  local image = ARGV[2] .. 'image:' .. hash
  if redis.call('HGET', image, 'state') == 'pending' then
    local named = redis.call('SCARD', ARGV[2] .. 'files:' .. hash)
      + redis.call('SCARD', ARGV[2] .. 'urls:' .. hash)
    if named == 0 then
      redis.call('DEL', image)
    else
      redis.call('HSET', image, 'state', 'failed', 'updated_at', ARGV[4], 'error',
        ARGV[3] .. ' its job was never confirmed by the broker; upload it again to queue it')
    end
    redis.call('PUBLISH', ARGV[6], ARGV[7] .. ' ' .. hash)
    table.insert(settled, hash)
  end
end
return settled
"#,
    )
});

impl Store {
    /// Settles this collection's claims `pending` for longer than `older_than` (see the module
    /// docs); returns the images settled (the script announces each to long-polls).
    pub async fn sweep_pending(&self, older_than: Duration) -> Result<Vec<ImageHash>, StoreError> {
        let cutoff =
            now_ms().saturating_sub(u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX));
        let settled: Vec<String> = self
            .timed("redis.sweep_pending", async {
                let mut conn = self.conn().await?;
                Ok(SWEEP
                    .key(self.keys().pending())
                    .arg(cutoff)
                    .arg(self.keys().scope())
                    .arg(ImageState::DEAD_LETTERED)
                    .arg(now_ms())
                    .arg(SWEEP_BATCH)
                    .arg(self.keys().settled_channel())
                    .arg(self.collection().as_str())
                    .invoke_async(&mut conn)
                    .await?)
            })
            .await?;
        settled
            .iter()
            .map(|raw| {
                raw.parse()
                    .map_err(|_| StoreError::Corrupt(format!("pending hash {raw:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Keys;

    #[test]
    fn the_scripts_find_the_pending_set_and_the_hash_in_an_image_key() {
        let keys = Keys::new("p:").for_collection(&"team".parse().expect("name"));
        let hash = crate::ImageHash::of(b"x");
        let image = keys.image(hash);
        // What PENDING_FN does in Lua: drop `image:` and the 32 hex characters.
        assert_eq!(
            format!("{}pending", &image[..image.len() - 38]),
            keys.pending()
        );
        assert_eq!(&image[image.len() - 32..], hash.to_string());
        assert_eq!(
            keys.file_names(hash),
            format!("{}files:{hash}", keys.scope())
        );
        assert_eq!(keys.urls(hash), format!("{}urls:{hash}", keys.scope()));
    }
}
