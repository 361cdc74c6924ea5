//! `ImageHash`: the identity of an image, XXH3-128 of its exact bytes.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

/// XXH3-128 of an image's bytes, written as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageHash(u128);

/// A string that is not 32 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 32 hexadecimal characters, got {0:?}")]
pub struct ParseHashError(String);

impl ImageHash {
    /// Hashes the exact bytes of an image.
    pub fn of(bytes: &[u8]) -> Self {
        Self(xxh3_128(bytes))
    }

    /// The raw 128-bit value.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageHash({self})")
    }
}

impl FromStr for ImageHash {
    type Err = ParseHashError;

    /// Accepts exactly 32 hex digits (either case; displayed lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseHashError(s.chars().take(64).collect()));
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParseHashError(s.to_owned()))
    }
}

impl Serialize for ImageHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_same_hash_and_32_lowercase_hex() {
        let a = ImageHash::of(b"hello");
        assert_eq!(a, ImageHash::of(b"hello"));
        assert_ne!(a, ImageHash::of(b"hello!"));
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_malformed() {
        let a = ImageHash::of(b"x");
        assert_eq!(a.to_string().parse::<ImageHash>(), Ok(a));
        assert_eq!(a.to_string().to_uppercase().parse::<ImageHash>(), Ok(a));
        for bad in [
            "",
            "abc",
            &"g".repeat(32),
            &"0".repeat(33),
            "+0000000000000000000000000000000",
        ] {
            assert!(bad.parse::<ImageHash>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn known_vector() {
        // XXH3-128 of the empty input, from the reference implementation's test vectors.
        assert_eq!(
            ImageHash::of(b"").to_string(),
            "99aa06d3014798d86001c324468d497f"
        );
    }
}
