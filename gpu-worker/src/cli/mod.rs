//! Subcommands of the `gpu-worker` binary.

pub mod convert_weights;
pub mod embed;
pub mod serve;
