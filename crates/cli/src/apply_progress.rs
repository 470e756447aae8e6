//! The progress bar of `remediate apply` and `incident --apply`: accounts committed, reset
//! tokens hashed and webhook requests, from the library's [`ApplyEvent`]s. Hidden with
//! `--quiet` and when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakaudit_remediation::ApplyEvent;
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Default)]
pub struct ApplyProgress {
    bar: Option<ProgressBar>,
    to_hash: usize,
    hashed: usize,
    requests: u64,
    retries: u64,
}

impl ApplyProgress {
    pub fn new(quiet: bool) -> ApplyProgress {
        if quiet || !std::io::stderr().is_terminal() {
            return ApplyProgress::default();
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>8} [{elapsed_precise}] {bar:30} {pos}/{len} accounts ({per_sec}) {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix("apply");
        bar.enable_steady_tick(Duration::from_millis(200));
        ApplyProgress {
            bar: Some(bar),
            ..ApplyProgress::default()
        }
    }

    pub fn event(&mut self, ev: &ApplyEvent<'_>) {
        let Some(bar) = &self.bar else { return };
        match ev {
            ApplyEvent::Started {
                accounts, to_hash, ..
            } => {
                bar.set_length(*accounts as u64);
                self.to_hash = *to_hash;
            }
            ApplyEvent::Hashed { n } => self.hashed = *n,
            ApplyEvent::Committed { n, .. } => bar.set_position(*n as u64),
            ApplyEvent::Webhook(a) => {
                self.requests += 1;
                if a.retry_in.is_some() {
                    self.retries += 1;
                }
            }
            ApplyEvent::Staged { .. } | ApplyEvent::Logged { .. } => return,
        }
        let mut msg = format!("tokens hashed {}/{}", self.hashed, self.to_hash);
        if self.requests > 0 {
            msg.push_str(&format!(
                ", webhook {} request(s), {} retried",
                self.requests, self.retries
            ));
        }
        bar.set_message(msg);
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
