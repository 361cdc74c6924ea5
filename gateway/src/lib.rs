//! The facematch gateway: accepts images (uploads or URLs), hashes them, records their names
//! in Redis, queues them for the workers with publisher confirms, and answers matches.

mod app;
pub mod auth;
pub mod body;
pub mod config;
mod enqueue;
pub mod error;
mod extract;
pub mod fetch;
pub mod limits;
pub mod metrics;
pub mod route;
pub mod routes;
pub mod server;
pub mod sniff;
pub mod ssrf;
pub mod state;
mod ui;

pub use app::{app, app_with, metrics_app};
pub use state::AppState;
