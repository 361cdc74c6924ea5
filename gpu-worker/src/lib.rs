//! facematch worker.
