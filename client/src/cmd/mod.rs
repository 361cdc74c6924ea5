//! One module per subcommand.

pub mod collections;
pub mod forget;
pub mod keys;
pub mod logs;
pub mod matches;
pub mod scan;
pub mod status;
