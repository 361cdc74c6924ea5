//! Which descriptor setting (detector and crop) a store's faces were made with. Descriptors of
//! two settings are not comparable, so a store holds one kind only: the first worker records
//! its setting under `alignment` (`dlib`, `faceapi` for face-api's SSD, as recorded before the
//! detector could be chosen; `centerface/dlib` and the like otherwise), and every later worker
//! must use the same one.

use deadpool_redis::redis::{self, Value};

use super::{Store, StoreError};

/// The crop a store holds when nothing says otherwise: faces logged before crops were
/// recorded were made with face-api's, the default of those versions.
const LEGACY_ALIGNMENT: &str = "faceapi";

impl Store {
    /// The setting this store's faces are made with: the recorded one, else the one its oldest
    /// `facelog` entry was made with, else (an empty store) `wanted`, which is then recorded.
    /// Two workers starting at once on an empty store agree on whichever recorded first.
    pub async fn store_alignment(&self, wanted: &str) -> Result<String, StoreError> {
        self.timed("redis.store_alignment", async {
            let mut conn = self.conn().await?;
            let key = self.keys().alignment();
            let recorded: Option<String> =
                redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
            if let Some(recorded) = recorded {
                return Ok(recorded);
            }
            let oldest: Vec<(String, Vec<(String, Value)>)> = redis::cmd("XRANGE")
                .arg(self.keys().facelog())
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await?;
            let inferred = match oldest.first() {
                None => None,
                Some((_, fields)) => Some(match field(fields, "a") {
                    Some(a) => a,
                    // Logged before entries carried their crop: the image's model id ends
                    // with it.
                    None => {
                        let model: Option<String> =
                            match field(fields, "h").and_then(|h| h.parse().ok()) {
                                Some(hash) => {
                                    redis::cmd("HGET")
                                        .arg(self.keys().image(hash))
                                        .arg("model")
                                        .query_async(&mut conn)
                                        .await?
                                }
                                None => None,
                            };
                        model
                            .and_then(|m| m.rsplit('/').next().map(str::to_owned))
                            .unwrap_or_else(|| LEGACY_ALIGNMENT.to_owned())
                    }
                }),
            };
            let _: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(inferred.as_deref().unwrap_or(wanted))
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            let recorded: Option<String> =
                redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
            recorded.ok_or_else(|| StoreError::Corrupt(format!("{key} vanished after SET")))
        })
        .await
    }
}

/// A string field of a stream entry.
fn field(fields: &[(String, Value)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        })
}
