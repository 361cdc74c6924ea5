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

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss UTC` (days → civil date, H. Hinnant's method).
pub fn utc(millis: u64) -> String {
    let secs = millis / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(1_796_433_845_000), "2026-12-05 01:24:05 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
    }
}
