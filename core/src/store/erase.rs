//! Forgetting an image (`DELETE /images/{hash}`): in one script on its collection's shard, its
//! record, faces, face thumbnails, filenames, URLs and matches are removed, every other image's match entry
//! pointing at it too, and its faces are deleted from `facelog`. One erasure entry is appended
//! to `facelog` in their place (field `x`: the erased faces' log ids, no hash), so every
//! worker drops those rows from its index when it next catches up; a worker that loads the log
//! afresh never sees the faces at all.
//!
//! A job of the image still queued, running or redelivered finds no record and writes nothing
//! (every worker write checks inside its script); uploading the same bytes again makes a new
//! record and a new scan.

use std::sync::LazyLock;

use deadpool_redis::redis::Script;

use super::{Store, StoreError};
use crate::ImageHash;

/// What erasing an image removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// Filenames that pointed at the image.
    pub names: u64,
    /// URLs bound to it (they may be scanned afresh).
    pub urls: u64,
    /// Images it was matched with (each loses its entry for it).
    pub matches: u64,
    /// Faces removed from `facelog`.
    pub faces: u64,
}

/// KEYS: image, faces, files, urls, matches, facelog, thumbs. ARGV: hash, the collection's key
/// scope, settled channel and message (the erasure wakes long-polls on the image).
/// Returns `{0}` for an unknown image, else `{1, names, urls, matches, faces}`.
static ERASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local hash, scope = ARGV[1], ARGV[2]
local names = redis.call('SMEMBERS', KEYS[3])
for _, name in ipairs(names) do
  local key = scope .. 'file:' .. name
  if redis.call('GET', key) == hash then redis.call('DEL', key) end
end
local urls = redis.call('SMEMBERS', KEYS[4])
for _, url in ipairs(urls) do
  local key = scope .. 'url:' .. url
  if redis.call('GET', key) == hash then redis.call('DEL', key) end
end
local others = redis.call('ZRANGE', KEYS[5], 0, -1)
for _, other in ipairs(others) do
  redis.call('ZREM', scope .. 'matches:' .. other, hash)
end
local logged = redis.call('HGET', KEYS[1], 'log_ids') or ''
local faces = 0
for id in string.gmatch(logged, '[^,]+') do
  faces = faces + redis.call('XDEL', KEYS[6], id)
end
if logged ~= '' then
  redis.call('XADD', KEYS[6], '*', 'x', logged)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {1, #names, #urls, #others, faces}
"#,
    )
});

impl Store {
    /// Erases an image from this store's collection; `None` when it has no such image.
    pub async fn erase_image(&self, hash: ImageHash) -> Result<Option<Erased>, StoreError> {
        self.timed("redis.erase_image", async {
            let mut conn = self.conn().await?;
            let keys = self.keys();
            let mut call = ERASE.key(keys.image(hash));
            call.key(keys.faces(hash))
                .key(keys.file_names(hash))
                .key(keys.urls(hash))
                .key(keys.matches(hash))
                .key(keys.facelog())
                .key(keys.thumbnails(hash))
                .arg(hash.to_string())
                .arg(keys.scope());
            let reply: Vec<u64> = self
                .settled_args(&mut call, hash)
                .invoke_async(&mut conn)
                .await?;
            match reply.as_slice() {
                [0] => Ok(None),
                [1, names, urls, matches, faces] => Ok(Some(Erased {
                    names: *names,
                    urls: *urls,
                    matches: *matches,
                    faces: *faces,
                })),
                other => Err(StoreError::Corrupt(format!("erase reply {other:?}"))),
            }
        })
        .await
    }
}
