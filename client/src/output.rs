//! Where a command's output goes: results to stdout, problems to stderr, and a progress bar on
//! stderr that is hidden when stderr is not a terminal or output is JSON. Lines are printed
//! with the bar suspended so they never mix with it.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Prints results and problems around an optional progress bar.
#[derive(Debug)]
pub struct Printer {
    bar: ProgressBar,
}

impl Printer {
    /// A printer for `total` items; the bar shows only on a terminal and without `--json`.
    pub fn new(total: u64, json: bool) -> Self {
        let bar = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        };
        Self { bar }
    }

    /// A result line on stdout.
    pub fn out(&self, line: &str) {
        self.bar.suspend(|| {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (`| head`) must not abort the other uploads.
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        });
    }

    /// A problem on stderr.
    pub fn err(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// One more item finished.
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
