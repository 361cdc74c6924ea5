//! What the CLI's tests add to the workspace test kit (`facematch-testkit`, which holds the
//! harness itself): the `facematch` binary, run against a system's gateway on a real port.
#![allow(dead_code, unused_imports)]

use std::{
    path::{Path, PathBuf},
    process::Output,
};

pub use facematch_testkit::{AMQP_URL, Options, System, paths::demo_path};

/// A system whose gateway is served on a real port (the CLI talks HTTP to it). It installs
/// no tracing: the `logs` tests install their own subscriber, which forwards to the broker.
pub async fn served(tag: &str) -> System {
    let options = Options {
        init_tracing: false,
        ..Options::default()
    };
    let mut system = System::with(&format!("cli-{tag}"), options).await;
    system.serve().await;
    system
}

/// [`served`] with API keys required; also returns the bootstrap admin key.
pub async fn served_secured(tag: &str) -> (System, String) {
    let (mut system, admin) = System::secured(&format!("cli-{tag}")).await;
    system.serve().await;
    (system, admin)
}

/// `facematch ARGS…` against `system`'s gateway; waits for it to exit.
pub async fn cli(system: &System, args: &[&str]) -> Run {
    let output = facematch()
        .env("FACEMATCH_GATEWAY", system.base_url())
        .args(args)
        .output()
        .await
        .expect("run facematch");
    Run::from(output)
}

/// The `facematch` binary, without the caller's `FACEMATCH_*` settings.
pub fn facematch() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_facematch"));
    for var in [
        "FACEMATCH_GATEWAY",
        "FACEMATCH_API_KEY",
        "FACEMATCH_AMQP_URL",
        "FACEMATCH_AMQP_PREFIX",
        "FACEMATCH_READY_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// A finished `facematch` run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout as one JSON value per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{self:?}")))
            .collect()
    }
}

/// Copies a file into `dir` under `name`.
pub fn copy_as(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).expect("copy");
    to
}
