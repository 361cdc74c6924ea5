//! Side-by-side load tools for facematch and the peer (the seed's Python design, `perf/peer`).
//!
//! `upload-load` drives `POST /scan/image/{name}` of either system; the modules here are what
//! its pieces share: request bodies, a lean HTTP/1.1 client, latency statistics and process
//! sampling.

pub mod admin;
pub mod bodies;
pub mod http;
pub mod images;
pub mod plot;
pub mod procs;
pub mod report;
pub mod stats;
