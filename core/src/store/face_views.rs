//! What the web page reads beyond an image's status: a face's thumbnail, and, for each matched
//! image, which of its faces matched which face of the asked image.
//!
//! Matches are stored per image pair (the best distance); the face pairs behind them are
//! computed on read from the stored descriptors, with the same Euclidean rule the workers use.

use deadpool_redis::redis::{self, AsyncCommands};

use super::{FaceRecord, Store, StoreError};
use crate::ImageHash;

/// Two faces, one of each image, and the distance between their descriptors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FacePair {
    /// The face's number in the asked image (its place in `faces`).
    pub face: u32,
    /// The face's number in the matched image.
    pub other_face: u32,
    pub distance: f32,
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The pairs of faces of `ours` and `theirs` within `threshold`, closest first; when none is
/// (a worker set with another threshold), the closest pair alone, so that a stored match is
/// never shown without its evidence. Faces without a descriptor pair with nothing.
pub fn face_pairs(ours: &[FaceRecord], theirs: &[FaceRecord], threshold: f32) -> Vec<FacePair> {
    let mut pairs: Vec<FacePair> = Vec::new();
    for (i, a) in ours.iter().enumerate() {
        for (j, b) in theirs.iter().enumerate() {
            if a.descriptor.is_empty() || a.descriptor.len() != b.descriptor.len() {
                continue;
            }
            pairs.push(FacePair {
                face: i as u32,
                other_face: j as u32,
                distance: distance(&a.descriptor, &b.descriptor),
            });
        }
    }
    pairs.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let within = pairs.iter().filter(|p| p.distance <= threshold).count();
    pairs.truncate(within.max(1));
    pairs
}

impl Store {
    /// The stored JPEG of face `n` of an image; `None` when there is none (no such image or
    /// face, or thumbnails are off).
    pub async fn face_thumbnail(
        &self,
        hash: ImageHash,
        n: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.timed("redis.face_thumbnail", async {
            let mut conn = self.conn().await?;
            Ok(conn.hget(self.keys().thumbnails(hash), n).await?)
        })
        .await
    }

    /// For each of `others`, the face pairs of `hash` and that image within `threshold`
    /// ([`face_pairs`]); empty for an image whose faces are gone.
    pub async fn face_pairs(
        &self,
        hash: ImageHash,
        others: &[ImageHash],
        threshold: f32,
    ) -> Result<Vec<Vec<FacePair>>, StoreError> {
        if others.is_empty() {
            return Ok(Vec::new());
        }
        self.timed("redis.face_pairs", async {
            let mut conn = self.conn().await?;
            let keys: Vec<String> = std::iter::once(hash)
                .chain(others.iter().copied())
                .map(|h| self.keys().faces(h))
                .collect();
            let stored: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
            let parse =
                |h: ImageHash, json: Option<String>| -> Result<Vec<FaceRecord>, StoreError> {
                    json.map_or(Ok(Vec::new()), |json| {
                        serde_json::from_str(&json)
                            .map_err(|e| StoreError::Corrupt(format!("faces of {h}: {e}")))
                    })
                };
            let mut stored = stored.into_iter();
            let ours = parse(hash, stored.next().flatten())?;
            others
                .iter()
                .zip(stored)
                .map(|(other, json)| Ok(face_pairs(&ours, &parse(*other, json)?, threshold)))
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FaceBox;

    fn face(descriptor: Vec<f32>) -> FaceRecord {
        FaceRecord {
            score: 0.9,
            bbox: FaceBox {
                x: 0.0,
                y: 0.0,
                width: 1.0,
                height: 1.0,
            },
            landmarks: Vec::new(),
            descriptor,
        }
    }

    #[test]
    fn pairs_within_the_threshold_come_closest_first() {
        let ours = [face(vec![0.0, 0.0]), face(vec![5.0, 5.0])];
        let theirs = [
            face(vec![0.3, 0.4]),
            face(vec![0.0, 0.1]),
            face(vec![5.0, 5.2]),
        ];
        let pairs = face_pairs(&ours, &theirs, 0.6);
        let found: Vec<(u32, u32)> = pairs.iter().map(|p| (p.face, p.other_face)).collect();
        assert_eq!(found, [(0, 1), (1, 2), (0, 0)]);
        assert!((pairs[2].distance - 0.5).abs() < 1e-6);
    }

    #[test]
    fn with_no_pair_within_the_threshold_the_closest_alone_is_kept() {
        let ours = [face(vec![0.0, 0.0]), face(Vec::new())];
        let theirs = [face(vec![3.0, 4.0]), face(vec![1.0, 0.0])];
        let pairs = face_pairs(&ours, &theirs, 0.6);
        assert_eq!(
            pairs,
            [FacePair {
                face: 0,
                other_face: 1,
                distance: 1.0
            }]
        );
        assert!(face_pairs(&ours, &[], 0.6).is_empty());
    }
}
