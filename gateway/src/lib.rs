//! facematch HTTP gateway.
