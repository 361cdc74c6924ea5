//! facematch worker library: face detection, landmarks and 128-d descriptors with candle.
//!
//! - [`decode::decode_image`]: untrusted bytes → upright RGB8, with limits.
//! - [`device::select_device`]: `auto`, `cpu`, `cuda` or `cuda:N`.
//! - [`pipeline::FacePipeline`]: the batched detect → landmarks → align → describe pipeline.
//! - [`models`]: the three networks; [`kernels`]: the NHWC tensor ops they are built from
//!   (direct CPU kernels, candle fallbacks on other devices); [`weights`]: pinned, verified
//!   weight files.
//! - [`index`]: every stored face on the worker's device, searched a batch at a time; it knows
//!   nothing of Redis (the service's matcher feeds it the face log).
//! - [`memory`]: allocator settings that keep CPU inference off the page-fault path.
//!
//! The model side knows nothing of AMQP or Redis.

pub mod decode;
pub mod device;
pub mod error;
pub mod index;
pub mod kernels;
pub mod memory;
pub mod models;
pub mod pipeline;
pub mod service;
pub mod weights;

pub use decode::{DecodeError, decode_image};
pub use device::{DeviceError, select_device};
pub use error::ModelError;
pub use pipeline::{Alignment, Face, FacePipeline, PipelineOptions, StageTimings};
