//! `facematch-core`: the wire contract the gateway and the workers share — the image hash, the
//! job message, AMQP topology and publishing, W3C trace propagation, the Redis key schema with
//! typed operations, shared configuration and telemetry set-up.

pub mod amqp;
pub mod api_key;
mod collection;
pub mod config;
mod hash;
pub mod image_frames;
pub mod image_limits;
pub mod metrics;
pub mod store;
pub mod telemetry;

pub use collection::{Collection, InvalidCollection};
pub use hash::{ImageHash, ParseHashError};
#[cfg(feature = "test-support")]
pub mod raw_http;
#[cfg(feature = "test-support")]
pub mod testing;
