//! The HTTP resources, one `#[OpenApi]` struct each.

pub mod admin;
pub mod faces;
pub mod health;
pub mod images;
pub mod matches;
pub mod scan;
