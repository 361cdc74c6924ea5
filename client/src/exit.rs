//! Exit codes scripts rely on: 0 all ok, 1 some items failed, 2 usage or connection error
//! (clap answers usage errors with 2 itself).

use std::process::ExitCode;

/// How a command ended, worst first when combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Every item succeeded.
    #[default]
    Ok,
    /// At least one item failed; the others were done.
    SomeFailed,
    /// The command could not do its job at all (gateway/broker unreachable, bad arguments).
    Fatal,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Self::Ok => 0,
            Self::SomeFailed => 1,
            Self::Fatal => 2,
        })
    }

    /// One request's result: refused → [`Self::SomeFailed`] (said on stderr); the gateway out
    /// of reach or refusing the key → an error (exit 2).
    pub fn of_request(result: Result<(), crate::http::ApiError>) -> anyhow::Result<Self> {
        match result {
            Ok(()) => Ok(Self::Ok),
            Err(e) if !e.is_connection() => {
                eprintln!("facematch: {e}");
                Ok(Self::SomeFailed)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The worse of two outcomes.
    pub fn and(self, other: Self) -> Self {
        self.max(other)
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn worst_wins() {
        assert_eq!(Outcome::Ok.and(Outcome::SomeFailed), Outcome::SomeFailed);
        assert_eq!(Outcome::Fatal.and(Outcome::SomeFailed), Outcome::Fatal);
        assert_eq!(Outcome::Ok.and(Outcome::Ok), Outcome::Ok);
    }
}
