//! Release: re-check every staged message through the [`OutboxGate`] and against
//! `apply-state.json`, then move them all to `released/new`, or none.

use super::check::OutboxGate;
use super::maildir::{make_maildir, sync_dir, Outbox};
use crate::error::{Error, Result};
use sha2::Digest;
use std::fs;
use std::path::PathBuf;

/// One message the release gate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: PathBuf,
    pub reasons: Vec<String>,
}

/// What `release` did or would not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released { count: usize, dir: PathBuf },
    Refused(Vec<Refusal>),
}

/// Checks every staged message and, only if all pass, moves them to `released/new`.
/// Refuses when the apply is incomplete, when a message was added, removed or changed since
/// apply wrote it, or when any message fails the `gate` (built from the configured policy
/// engine, the same one `apply` checked the messages with).
pub fn release(outbox: &Outbox, gate: &OutboxGate<'_>) -> Result<ReleaseOutcome> {
    let mut refusals = Vec::new();
    let state = outbox.read_state()?;
    let new_dir = outbox.staged().join("new");
    let mut files: Vec<PathBuf> = match fs::read_dir(&new_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&new_dir, e)),
    };
    files.sort();
    let Some(state) = state.filter(|s| s.complete) else {
        refusals.push(Refusal {
            path: outbox.state_path(),
            reasons: vec![
                "the plan is not completely applied: run `remediate apply` to the end first".into(),
            ],
        });
        return Ok(ReleaseOutcome::Refused(refusals));
    };
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let bytes = fs::read(f).map_err(|e| Error::io(f, e))?;
        let mut reasons = Vec::new();
        let rec = state.messages.iter().find(|m| m.file == name);
        match rec {
            None => reasons.push("not written by apply (unknown file)".to_string()),
            Some(m) => {
                let h = hex::encode(sha2::Sha256::digest(&bytes));
                if h != m.sha256 {
                    reasons.push("changed since apply wrote it".to_string());
                }
            }
        }
        reasons.extend(gate.check(&bytes, rec.map(|m| m.to.as_str())));
        if !reasons.is_empty() {
            refusals.push(Refusal {
                path: f.clone(),
                reasons,
            });
        }
    }
    for m in &state.messages {
        let staged = new_dir.join(&m.file);
        let released = outbox.released().join("new").join(&m.file);
        if !staged.exists() && !released.exists() {
            refusals.push(Refusal {
                path: staged,
                reasons: vec![format!("message for account {} is missing", m.account)],
            });
        }
    }
    if !refusals.is_empty() {
        return Ok(ReleaseOutcome::Refused(refusals));
    }
    let rel = outbox.released();
    make_maildir(&rel)?;
    for f in &files {
        let dst = rel
            .join("new")
            .join(f.file_name().expect("listed files have names"));
        fs::rename(f, &dst).map_err(|e| Error::io(&dst, e))?;
    }
    sync_dir(&rel.join("new"))?;
    sync_dir(&new_dir)?;
    Ok(ReleaseOutcome::Released {
        count: files.len(),
        dir: rel.join("new"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::check::tests::configured;
    use crate::outbox::compose::tests::notice;
    use crate::outbox::{build_message, ApplyState, Sender, StagedMessage};
    use leakaudit_policy::{Engine, RulePack};
    use leakaudit_scanner::Org;

    const TO: &str = "anna@gmail.com";

    fn builtin() -> Engine {
        Engine::new(
            RulePack::builtin(),
            Org::with_defaults(),
            &Default::default(),
        )
    }

    fn notification() -> String {
        let sender = Sender::new("Security <security@shop.example>").unwrap();
        let raw = build_message(
            &notice(TO, "en", true),
            &sender,
            "m@shop.example",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        String::from_utf8(raw).unwrap()
    }

    /// An outbox holding `raw` as the one message of a completely applied plan, recorded in
    /// apply-state.json with its own hash: only the gate stands between it and release.
    fn outbox_with(raw: &[u8]) -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let name = Outbox::file_name("sha256:00aa", "acc-1");
        outbox.stage(&name, raw).unwrap();
        outbox
            .write_state(&ApplyState {
                plan: "sha256:00aa".into(),
                complete: true,
                messages: vec![StagedMessage {
                    file: name,
                    sha256: hex::encode(sha2::Sha256::digest(raw)),
                    account: "acc-1".into(),
                    to: TO.into(),
                }],
            })
            .unwrap();
        (dir, outbox)
    }

    fn refused(outcome: ReleaseOutcome) -> Vec<String> {
        match outcome {
            ReleaseOutcome::Refused(list) => list.into_iter().flat_map(|r| r.reasons).collect(),
            other => panic!("released: {other:?}"),
        }
    }

    #[test]
    fn untouched_notification_is_released() {
        let engine = builtin();
        let (_dir, outbox) = outbox_with(notification().as_bytes());
        match release(&outbox, &OutboxGate::new(&engine)).unwrap() {
            ReleaseOutcome::Released { count, dir } => {
                assert_eq!(count, 1);
                assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fs::read_dir(outbox.staged().join("new")).unwrap().count(),
            0
        );
    }

    #[test]
    fn second_external_recipient_refused_by_the_configured_engine() {
        let engine = builtin();
        let doctored = notification().replace(
            "To: <anna@gmail.com>",
            "To: <anna@gmail.com>, <bob@yahoo.com>",
        );
        let (_dir, outbox) = outbox_with(doctored.as_bytes());
        let why = refused(release(&outbox, &OutboxGate::new(&engine)).unwrap());
        for rule in ["recipient-exposure", "password-reset-link"] {
            assert!(
                why.iter()
                    .any(|w| w.starts_with(&format!("policy rule {rule} fires"))),
                "{rule}: {why:?}"
            );
        }
        assert_eq!(
            fs::read_dir(outbox.released().join("new"))
                .ok()
                .map(|d| d.count()),
            None
        );
    }

    #[test]
    fn pasted_secret_refused_by_the_configured_engine() {
        let engine = builtin();
        let doctored = plain_body(&format!(
            "{}\naws_access_key_id = AKIA0000EXAMPLE00000\n",
            crate::outbox::compose::tests::link()
        ));
        let (_dir, outbox) = outbox_with(&doctored);
        let why = refused(release(&outbox, &OutboxGate::new(&engine)).unwrap());
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule aws-access-key fires")),
            "{why:?}"
        );
    }

    /// The notification's header with a plain-text body instead of the base64 one.
    fn plain_body(body: &str) -> Vec<u8> {
        let text = notification();
        let (head, _) = text.split_once("\n\n").unwrap();
        let head = head.replace(
            "Content-Transfer-Encoding: base64",
            "Content-Transfer-Encoding: 8bit",
        );
        format!("{head}\n\n{body}").into_bytes()
    }

    #[test]
    fn user_rule_refuses_what_the_builtin_pack_lets_through() {
        let doctored = plain_body("Your case number is TICKET-004711.\n");
        let builtin = builtin();
        let (_dir, outbox) = outbox_with(&doctored);
        assert!(matches!(
            release(&outbox, &OutboxGate::new(&builtin)).unwrap(),
            ReleaseOutcome::Released { count: 1, .. }
        ));
        let user = configured(
            r#"
[[rule]]
id = "internal-ticket"
kind = "content-regex"
severity = "medium"
summary = "An internal ticket reference"
description = "What: TICKET- and six digits."
hint = "Keep ticket numbers internal."
keywords = ["TICKET-"]
regex = 'TICKET-[0-9]{6}'
"#,
        );
        let (_dir, outbox) = outbox_with(&doctored);
        let why = refused(release(&outbox, &OutboxGate::new(&user)).unwrap());
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule internal-ticket fires")),
            "{why:?}"
        );
    }

    #[test]
    fn incomplete_apply_and_unknown_or_changed_files_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let raw = notification();
        let (_dir, outbox) = outbox_with(raw.as_bytes());
        let name = Outbox::file_name("sha256:00aa", "acc-1");
        outbox.stage("stray.leakaudit", raw.as_bytes()).unwrap();
        outbox
            .stage(&name, raw.replace("Sat, 28 Nov", "Sun, 29 Nov").as_bytes())
            .unwrap();
        let why = refused(release(&outbox, &gate).unwrap());
        assert!(
            why.iter()
                .any(|w| w == "not written by apply (unknown file)"),
            "{why:?}"
        );
        assert!(
            why.iter().any(|w| w == "changed since apply wrote it"),
            "{why:?}"
        );
        let mut state = outbox.read_state().unwrap().unwrap();
        state.complete = false;
        outbox.write_state(&state).unwrap();
        let why = refused(release(&outbox, &gate).unwrap());
        assert!(
            why[0].starts_with("the plan is not completely applied"),
            "{why:?}"
        );
    }
}
