//! The facematch gateway: accepts images (uploads or URLs), hashes them, records their names
//! in Redis, queues them for the workers with publisher confirms, and answers matches.

mod app;
pub mod auth;
pub mod body;
pub mod config;
pub mod connections;
mod enqueue;
pub mod error;
pub mod extract;
pub mod failure;
pub mod fetch;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod route;
pub mod routes;
pub mod server;
pub mod sniff;
pub mod ssrf;
pub mod state;
pub mod sweeper;
mod ui;
pub mod waiters;

pub use app::{app, app_with, metrics_app};
pub use state::AppState;
