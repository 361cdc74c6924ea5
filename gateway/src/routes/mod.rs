//! The HTTP resources, one `#[OpenApi]` struct each.

pub mod health;
pub mod images;
pub mod matches;
pub mod scan;
