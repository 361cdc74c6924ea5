//! What workers read and write: the collection's `facelog`, a job's faces, its matches and its final
//! state. Every write is idempotent, so a redelivered job ends exactly as one delivery would.

use std::{fmt, str::FromStr, sync::LazyLock};

use deadpool_redis::redis::{self, Script, Value};

use super::{ALIVE_FN, FaceRecord, Store, StoreError, now_ms};
use crate::ImageHash;

/// Length of a face descriptor.
pub const DESCRIPTOR_LEN: usize = 128;

/// Appends a job's faces to `facelog` once, each entry with the descriptor setting it was made
/// with, and stores their thumbnails. KEYS: image, faces, facelog, epoch, thumbs. ARGV: hash,
/// faces JSON, width, height, model, now, alignment, epoch guard, the face count n, then one
/// 512-byte descriptor per face, then n thumbnails or none. Returns `{'gone'}` when the
/// job's collection was deleted or its image erased since it was queued, `{'done'}` when the job already finished,
/// else `{'ids', 'id1,id2,…'}` — the ids of the first (and only) append, whichever delivery
/// made it.
static APPEND_FACES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ALIVE_FN}{}",
        r#"
if not alive(KEYS[4], ARGV[8]) then return {'gone'} end
local state = redis.call('HGET', KEYS[1], 'state')
-- No record: the image was erased after its job was queued (gateways make it first).
if not state then return {'gone'} end
if state == 'done' then return {'done'} end
local logged = redis.call('HGET', KEYS[1], 'log_ids')
if logged then return {'ids', logged} end
local n = tonumber(ARGV[9])
local ids = {}
for i = 1, n do
  ids[i] = redis.call('XADD', KEYS[3], '*', 'h', ARGV[1], 'i', tostring(i - 1), 'd', ARGV[9 + i],
    'a', ARGV[7])
end
if #ARGV == 9 + 2 * n then
  for i = 1, n do
    redis.call('HSET', KEYS[5], tostring(i - 1), ARGV[9 + n + i])
  end
end
local joined = table.concat(ids, ',')
redis.call('HSET', KEYS[1], 'log_ids', joined, 'faces', n, 'width', ARGV[3],
  'height', ARGV[4], 'model', ARGV[5], 'updated_at', ARGV[6])
redis.call('SET', KEYS[2], ARGV[2])
return {'ids', joined}
"#
    ))
});

/// Writes matches both ways (keeping the smallest distance), marks the job done and announces
/// it, unless its collection is gone or its image erased; a pair whose other image was erased
/// meanwhile is skipped. KEYS: image, matches:{hash}, epoch, then (matches:{other},
/// image:{other}) per pair. ARGV: hash, now, epoch guard, settled channel and message, then
/// (other hash, distance) per pair. Returns 0 when gone.
static FINISH_JOB: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ALIVE_FN}{}",
        r#"
if not alive(KEYS[3], ARGV[3]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 6, #ARGV, 2 do
  local pair = (i - 6) / 2
  local other_matches, other_image = KEYS[4 + 2 * pair], KEYS[5 + 2 * pair]
  if redis.call('EXISTS', other_image) == 1 then
    redis.call('ZADD', KEYS[2], 'LT', ARGV[i + 1], ARGV[i])
    redis.call('ZADD', other_matches, 'LT', ARGV[i + 1], ARGV[1])
  end
end
redis.call('HSET', KEYS[1], 'state', 'done', 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'error')
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#
    ))
});

/// Marks a job failed with its reason and announces it, unless it is already done, its image
/// erased or its collection gone.
/// KEYS: image, epoch. ARGV: reason, now, epoch guard, settled channel and message.
static FAIL_JOB: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ALIVE_FN}{}",
        r#"
if not alive(KEYS[2], ARGV[3]) then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'done' then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'updated_at', ARGV[2])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
"#
    ))
});

/// A `facelog` stream id (`<ms>-<seq>`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    pub ms: u64,
    pub seq: u64,
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for LogId {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::Corrupt(format!("stream id {s:?}"));
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// One face in the global log.
#[derive(Debug, Clone, PartialEq)]
pub struct FacelogEntry {
    pub id: LogId,
    pub hash: ImageHash,
    pub descriptor: [f32; DESCRIPTOR_LEN],
}

/// A page of `facelog`: its faces, the faces erased since (by log id), and the newest entry
/// read of either kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FacelogPage {
    pub faces: Vec<FacelogEntry>,
    /// Log ids of faces erased (`DELETE /images/{hash}`), to be dropped from an index.
    pub erased: Vec<LogId>,
    pub last: Option<LogId>,
    /// Entries read, of either kind.
    pub entries: usize,
}

/// What appending a job's faces found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The job finished before (a redelivery): nothing to do but ack.
    AlreadyDone,
    /// The faces' log ids, in face order (empty for an image without faces).
    Ids(Vec<LogId>),
    /// The job's collection was deleted (or re-created) since it was queued: nothing written.
    Gone,
}

/// A finished job's size and model, stored with its faces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeta {
    pub width: u32,
    pub height: u32,
    pub model: String,
    /// The descriptor setting (`centerface/dlib`, or `dlib` for the SSD), stored with each
    /// `facelog` entry.
    pub alignment: String,
}

fn descriptor_bytes(d: &[f32]) -> Vec<u8> {
    d.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn descriptor_from(bytes: &[u8]) -> Option<[f32; DESCRIPTOR_LEN]> {
    if bytes.len() != DESCRIPTOR_LEN * 4 {
        return None;
    }
    let mut out = [0f32; DESCRIPTOR_LEN];
    for (v, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *v = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Some(out)
}

/// One face entry of `facelog`.
fn face_entry(id: LogId, fields: &[(String, Value)]) -> Result<FacelogEntry, StoreError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                Value::BulkString(b) => Some(b.as_slice()),
                _ => None,
            })
    };
    let corrupt = || StoreError::Corrupt(format!("facelog entry {id}"));
    let hash = field("h")
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(corrupt)?;
    let descriptor = field("d").and_then(descriptor_from).ok_or_else(corrupt)?;
    Ok(FacelogEntry {
        id,
        hash,
        descriptor,
    })
}

impl Store {
    /// Stores a job's faces and appends them to `facelog`, once per image whatever the number
    /// of deliveries; `thumbnails` (one JPEG per face, in order) are stored with them unless
    /// empty.
    pub async fn append_faces(
        &self,
        hash: ImageHash,
        faces: &[FaceRecord],
        thumbnails: &[Vec<u8>],
        meta: &ImageMeta,
    ) -> Result<Appended, StoreError> {
        if !thumbnails.is_empty() && thumbnails.len() != faces.len() {
            return Err(StoreError::Corrupt(format!(
                "{} thumbnails for {} faces of {hash}",
                thumbnails.len(),
                faces.len()
            )));
        }
        let json = serde_json::to_string(faces)
            .map_err(|e| StoreError::Corrupt(format!("faces of {hash}: {e}")))?;
        self.timed("redis.append_faces", async {
            let mut conn = self.conn().await?;
            let mut call = APPEND_FACES.key(self.keys().image(hash));
            call.key(self.keys().faces(hash))
                .key(self.keys().facelog())
                .key(self.keys().epoch())
                .key(self.keys().thumbnails(hash))
                .arg(hash.to_string())
                .arg(&json)
                .arg(meta.width)
                .arg(meta.height)
                .arg(&meta.model)
                .arg(now_ms())
                .arg(&meta.alignment)
                .arg(self.guard().arg())
                .arg(faces.len());
            for face in faces {
                call.arg(descriptor_bytes(&face.descriptor));
            }
            for thumbnail in thumbnails {
                call.arg(thumbnail.as_slice());
            }
            let reply: Vec<String> = call.invoke_async(&mut conn).await?;
            match reply.as_slice() {
                [done] if done == "done" => Ok(Appended::AlreadyDone),
                [gone] if gone == "gone" => Ok(Appended::Gone),
                [tag, ids] if tag == "ids" => Ok(Appended::Ids(
                    ids.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::parse)
                        .collect::<Result<_, _>>()?,
                )),
                other => Err(StoreError::Corrupt(format!("append reply {other:?}"))),
            }
        })
        .await
    }

    /// Up to `count` `facelog` entries with `after < id ≤ until` (open ends when `None`): faces,
    /// and erasure entries (field `x`: the log ids of an erased image's faces).
    pub async fn read_facelog(
        &self,
        after: Option<LogId>,
        until: Option<LogId>,
        count: usize,
    ) -> Result<FacelogPage, StoreError> {
        self.timed("redis.read_facelog", async {
            let mut conn = self.conn().await?;
            let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
            let end = until.map_or_else(|| "+".to_owned(), |id| id.to_string());
            let reply: Vec<(String, Vec<(String, Value)>)> = redis::cmd("XRANGE")
                .arg(self.keys().facelog())
                .arg(start)
                .arg(end)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await?;
            let mut page = FacelogPage {
                entries: reply.len(),
                ..FacelogPage::default()
            };
            for (id, fields) in reply {
                let id: LogId = id.parse()?;
                page.last = Some(id);
                if let Some((_, Value::BulkString(erased))) = fields.iter().find(|(k, _)| k == "x")
                {
                    let text = std::str::from_utf8(erased)
                        .map_err(|_| StoreError::Corrupt(format!("facelog erasure {id}")))?;
                    for one in text.split(',').filter(|s| !s.is_empty()) {
                        page.erased.push(one.parse()?);
                    }
                    continue;
                }
                page.faces.push(face_entry(id, &fields)?);
            }
            Ok(page)
        })
        .await
    }

    /// Writes a job's matches both ways (smallest distance kept) and marks it `done`; false
    /// when its collection is gone (nothing written).
    pub async fn finish_job(
        &self,
        hash: ImageHash,
        matches: &[(ImageHash, f64)],
    ) -> Result<bool, StoreError> {
        self.timed("redis.finish_job", async {
            let mut conn = self.conn().await?;
            let mut call = FINISH_JOB.key(self.keys().image(hash));
            call.key(self.keys().matches(hash))
                .key(self.keys().epoch())
                .arg(hash.to_string())
                .arg(now_ms())
                .arg(self.guard().arg());
            self.settled_args(&mut call, hash);
            for (other, distance) in matches {
                call.key(self.keys().matches(*other))
                    .key(self.keys().image(*other))
                    .arg(other.to_string())
                    .arg(*distance);
            }
            let alive: i64 = call.invoke_async(&mut conn).await?;
            Ok(alive == 1)
        })
        .await
    }

    /// Marks a job permanently failed with a reason (unless it is done).
    pub async fn fail_job(&self, hash: ImageHash, reason: &str) -> Result<(), StoreError> {
        self.timed("redis.fail_job", async {
            let mut conn = self.conn().await?;
            let mut call = FAIL_JOB.key(self.keys().image(hash));
            call.key(self.keys().epoch())
                .arg(reason)
                .arg(now_ms())
                .arg(self.guard().arg());
            let _: i64 = self
                .settled_args(&mut call, hash)
                .invoke_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_order_like_redis() {
        let a: LogId = "1700000000000-5".parse().expect("id");
        let b: LogId = "1700000000000-12".parse().expect("id");
        let c: LogId = "1700000000001-0".parse().expect("id");
        assert!(a < b && b < c);
        assert_eq!(a.to_string(), "1700000000000-5");
        assert!("17-".parse::<LogId>().is_err());
    }

    #[test]
    fn descriptor_bytes_round_trip() {
        let d: Vec<f32> = (0..128).map(|i| i as f32 * 0.01 - 0.5).collect();
        assert_eq!(
            descriptor_from(&descriptor_bytes(&d)).map(|a| a.to_vec()),
            Some(d)
        );
        assert_eq!(descriptor_from(&[0; 10]), None);
    }
}
