//! Progress bars on stderr (only when it is a terminal).
//!
//! A bar is drawn only when stderr is a terminal and `--quiet` is not given, so logs and CI
//! output never fill with control sequences. Lines printed while a bar is shown go through
//! [`Progress::println`] so they do not tear the bar.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A byte-and-message progress bar for a scan stage (a no-op when hidden).
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for scanning `inputs`: sized from the files on disk, nothing at all when quiet
    /// (so a quiet run does not even stat the inputs).
    pub fn for_inputs(stage: &str, inputs: &[String], quiet: bool) -> Progress {
        let total = if quiet {
            None
        } else {
            leakaudit_scanner::scan::input_size_hint(inputs)
        };
        Progress::bytes(stage, total, quiet)
    }

    /// A bar for reading `total` bytes (unknown: a spinner), labelled `stage`.
    pub fn bytes(stage: &str, total: Option<u64>, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total.is_some() {
            "{prefix:>8} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}"
        } else {
            "{prefix:>8} [{elapsed_precise}] {spinner} {bytes} ({bytes_per_sec}) {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    /// Updates the position; `messages` is shown as a count and a rate.
    pub fn update(&self, bytes: u64, messages: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{messages} messages ({:.0}/s)",
                messages as f64 / secs
            ));
        }
    }

    /// Prints a line on stderr without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{}", crate::term::clean_lines(line))),
            None => eprintln!("{}", crate::term::clean_lines(line)),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
