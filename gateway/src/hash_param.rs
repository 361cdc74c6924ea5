//! An image hash as a path parameter: documented as 32 lowercase hex characters (the pattern
//! is in the spec) and parsed by [`ImageHash`]'s own parser. A `pattern` validator would do the
//! same check with a regular expression that poem-openapi compiles again on every request.

use std::borrow::Cow;

use facematch_core::ImageHash;
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromParameter, ParseResult, Type},
};

/// `{hash}`: an image's XXH3-128 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParam(pub ImageHash);

impl Type for HashParam {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_image_hash".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.pattern = Some("^[0-9a-f]{32}$".into());
        schema.min_length = Some(32);
        schema.max_length = Some(32);
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

#[cfg(test)]
mod tests {
    use super::*;

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
