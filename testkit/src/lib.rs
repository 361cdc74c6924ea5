//! The one test harness of the facematch workspace (a dev-only crate, never shipped).
//!
//! - [`System`]: an isolated system over the real RabbitMQ and Redis, under its own key and
//!   AMQP prefixes: the real gateway in process (driven without a socket, or served on one),
//!   in-process workers or the worker binary, and the broker and store inspected around them.
//! - [`keys`]: systems that ask for API keys, and requests sent with one.
//! - [`images`]: tiny distinct PNGs and images without faces; with the `worker` feature, crops
//!   of the demo photos' faces too.
//! - `golden` (feature `worker`): the comparisons against face-api's and dlib's golden
//!   outputs, shared by the golden tests and the `gpu-check` binary.
//! - [`browser`]: a headless Chromium over WebDriver, for the web page's tests.
//! - [`process`]: a process's resident memory, read from `/proc`.
//! - [`paths`]: where the weights and demo images are (the golden files: `golden::paths`).
//!
//! Every test that uses it talks to the real services and runs the real models on the CPU
//! (or on `FACEMATCH_TEST_DEVICE`). The model side (workers, face crops, golden comparisons)
//! is the `worker` feature, so the gateway's and the store's tests build no model code.

pub mod broker;
pub mod browser;
#[cfg(feature = "worker")]
mod faces;
/// The golden comparisons (their own crate, `facematch-golden`, which `gpu-check` uses too).
#[cfg(feature = "worker")]
pub use facematch_golden as golden;
pub mod images;
pub mod keys;
pub mod paths;
pub mod process;
pub mod system;
#[cfg(feature = "worker")]
pub mod worker;

pub use facematch_core::testing::{TEST_AMQP_URL as AMQP_URL, TEST_REDIS_URL as REDIS_URL};
pub use system::{MatchTable, Options, System, assert_same_matches, init_tracing, unique, within};
#[cfg(feature = "worker")]
pub use worker::{Process, Worker, wait_for_jobs, worker_metrics};
