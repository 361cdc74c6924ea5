//! The scan job message: raw image bytes plus who named it, where it came from and its trace.

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, ShortString},
};

use crate::{Collection, ImageHash};

/// How the gateway got the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upload,
    Url,
}

impl Source {
    /// The header spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Url => "url",
        }
    }
}

/// A job as published on `toWorker` (the body travels separately as the payload).
#[derive(Debug, Clone, PartialEq)]
pub struct JobMeta {
    pub hash: ImageHash,
    /// The collection the image belongs to (header `collection`; a message without one, from
    /// before collections, belongs to `default`).
    pub collection: Collection,
    /// The collection's epoch when the job was queued (header `epoch`): a worker refuses the job
    /// when the collection was deleted since. `None` for `default`, which is never deleted.
    pub epoch: Option<String>,
    /// Filename or URL the image was scanned under.
    pub name: String,
    pub source: Source,
    /// Sniffed MIME type.
    pub content_type: String,
    /// W3C trace context (`traceparent`, `tracestate`) of the publishing span.
    pub trace_headers: Vec<(String, String)>,
}

/// A delivery whose properties do not form a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed job message: {0}")]
pub struct MalformedJob(pub String);

impl JobMeta {
    /// Persistent properties with `message_id` = hash and the contract's headers.
    pub fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        let mut put = |k: &str, v: &str| {
            headers.insert(k.into(), AMQPValue::LongString(v.into()));
        };
        put("name", &self.name);
        put("source", self.source.as_str());
        put("collection", self.collection.as_str());
        if let Some(epoch) = &self.epoch {
            put("epoch", epoch);
        }
        for (k, v) in &self.trace_headers {
            put(k, v);
        }
        BasicProperties::default()
            .with_message_id(ShortString::from(self.hash.to_string()))
            .with_content_type(ShortString::from(self.content_type.clone()))
            .with_delivery_mode(2)
            .with_headers(headers)
    }

    /// Reads a job back from delivery properties.
    pub fn from_properties(props: &BasicProperties) -> Result<Self, MalformedJob> {
        let hash = props
            .message_id()
            .as_ref()
            .ok_or_else(|| MalformedJob("no message_id".into()))?
            .as_str()
            .parse::<ImageHash>()
            .map_err(|e| MalformedJob(e.to_string()))?;
        let headers = props.headers().clone().unwrap_or_default();
        let text = |k: &str| header_text(&headers, k);
        let source = match text("source").as_deref() {
            Some("url") => Source::Url,
            _ => Source::Upload,
        };
        let trace_headers = ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|k| text(k).map(|v| (k.to_owned(), v)))
            .collect();
        let collection = match text("collection") {
            None => Collection::default(),
            Some(name) => name
                .parse()
                .map_err(|e: crate::InvalidCollection| MalformedJob(e.to_string()))?,
        };
        Ok(Self {
            hash,
            collection,
            epoch: text("epoch"),
            name: text("name").unwrap_or_default(),
            source,
            content_type: props
                .content_type()
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            trace_headers,
        })
    }
}

/// A header's value as text, whichever AMQP string type carried it.
pub fn header_text(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip() {
        let meta = JobMeta {
            hash: ImageHash::of(b"img"),
            collection: "team-b".parse().expect("collection"),
            epoch: Some("00ab".into()),
            name: "a b.jpg".into(),
            source: Source::Url,
            content_type: "image/png".into(),
            trace_headers: vec![(
                "traceparent".into(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            )],
        };
        let props = meta.properties();
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(JobMeta::from_properties(&props), Ok(meta));
    }

    #[test]
    fn a_message_from_before_collections_belongs_to_default() {
        let meta = JobMeta {
            hash: ImageHash::of(b"img"),
            collection: Collection::default(),
            epoch: None,
            name: "a.jpg".into(),
            source: Source::Upload,
            content_type: "image/jpeg".into(),
            trace_headers: vec![],
        };
        let mut props = meta.properties();
        if let Some(headers) = props.headers().clone() {
            let mut headers = headers.inner().clone();
            headers.remove("collection");
            props = props.with_headers(FieldTable::from(headers));
        }
        assert_eq!(JobMeta::from_properties(&props), Ok(meta));
    }

    #[test]
    fn missing_message_id_is_malformed() {
        assert!(JobMeta::from_properties(&BasicProperties::default()).is_err());
    }
}
