//! One module per subcommand.

pub mod logs;
pub mod matches;
pub mod scan;
pub mod status;
