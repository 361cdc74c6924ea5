//! The facematch wire contract.
