//! Path parameters with a shape: documented by their pattern in the spec, parsed by hand. A
//! `pattern` validator would do the same check with a regular expression that poem-openapi
//! compiles again on every request (and the page fetches a thumbnail per face).
//!
//! - [`HashParam`]: `{hash}`, 32 lowercase hex characters, parsed by [`ImageHash`]'s parser.
//! - [`FaceFileParam`]: `{file}` of a thumbnail, a face number and `.jpg`.

use std::borrow::Cow;

use facematch_core::ImageHash;
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromParameter, ParseResult, Type},
};

/// Implements poem-openapi's `Type` for a path parameter documented as a string with `pattern`
/// (and an exact length, when given).
macro_rules! string_param {
    ($ty:ty, $name:literal, $pattern:literal $(, length = $len:literal)?) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;

            type RawValueType = Self;

            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let mut schema = MetaSchema::new("string");
                schema.pattern = Some($pattern.into());
                $(
                    schema.min_length = Some($len);
                    schema.max_length = Some($len);
                )?
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }
    };
}

/// `{hash}`: an image's XXH3-128 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParam(pub ImageHash);

string_param!(
    HashParam,
    "string_image_hash",
    "^[0-9a-f]{32}$",
    length = 32
);

impl ParseFromParameter for HashParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        // Lowercase, as the spec says (the hash parser also takes uppercase).
        if value.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ParseError::custom(format!(
                "{value:?} is not 32 lowercase hex characters"
            )));
        }
        value
            .parse::<ImageHash>()
            .map(Self)
            .map_err(ParseError::custom)
    }
}

/// `{file}`: a face's number (0 to 9999, no leading zero) followed by `.jpg`, such as `0.jpg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceFileParam(pub u32);

string_param!(
    FaceFileParam,
    "string_face_file",
    "^(0|[1-9][0-9]{0,3})\\.jpg$"
);

impl ParseFromParameter for FaceFileParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let number = value.strip_suffix(".jpg").filter(|n| {
            (1..=4).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == &"0" || !n.starts_with('0'))
        });
        number
            .and_then(|n| n.parse().ok())
            .map(Self)
            .ok_or_else(|| {
                ParseError::custom("a face is named by its number and .jpg, such as 0.jpg")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_face_file_and_refuses_anything_else() {
        for (good, n) in [("0.jpg", 0), ("7.jpg", 7), ("9999.jpg", 9999)] {
            assert_eq!(
                FaceFileParam::parse_from_parameter(good).ok(),
                Some(FaceFileParam(n))
            );
        }
        for bad in [
            "",
            "0",
            "01.jpg",
            "10000.jpg",
            "-1.jpg",
            "1.png",
            "x.jpg",
            "1.jpg.jpg",
        ] {
            assert!(FaceFileParam::parse_from_parameter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_a_hash_and_refuses_anything_else() {
        let hash = ImageHash::of(b"x");
        assert_eq!(
            HashParam::parse_from_parameter(&hash.to_string()).ok(),
            Some(HashParam(hash))
        );
        for bad in [
            "",
            "0123",
            &"A".repeat(32),
            &"g".repeat(32),
            &"0".repeat(33),
        ] {
            assert!(HashParam::parse_from_parameter(bad).is_err(), "{bad:?}");
        }
    }
}
