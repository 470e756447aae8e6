//! The audit log: append-only JSON Lines, one entry per action outcome, hash-chained.
//!
//! Each entry: `seq` (1, 2, ...), `time` (RFC 3339), `plan` (the plan hash), `action`,
//! `action_id`, `account`, `result` (`done`, `failed`, `done-logged-on-resume`), optional
//! `detail`, and `prev`: for the first entry the plan's content hash (the anchor), for every
//! later one `sha256:` + hex SHA-256 of the previous line's bytes (without its newline).
//! Every append is fsynced. The store keeps the last `(seq, hash)` so that a cut tail is
//! detected too (`verify --db`). Tokens and addresses are never written here.

use crate::error::{Error, Result};
use crate::store::{AccountStore, AuditHead};
use leakaudit_scanner::safefs;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    pub plan: String,
    pub action: String,
    pub action_id: String,
    pub account: String,
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub prev: String,
}

/// `sha256:<hex>` of a line.
pub fn line_hash(line: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(line)))
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub plan: Option<String>,
    pub head: Option<AuditHead>,
    /// Entries by `(action_id, result)`.
    pub done_actions: Vec<String>,
}

/// Verifies the chain of `path`. With `expected_head` (from the store), a removed or altered
/// tail is detected as well. Errors name the first bad line.
pub fn verify(path: &Path, expected_head: Option<&AuditHead>) -> Result<Verified> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    verify_bytes(path, &data, expected_head)
}

/// Verifies `logs` (one per plan) against everything `store` recorded: each log's chain and
/// its plan's recorded head, a log of a plan the store never applied is refused, and every
/// plan the store holds a head for must be in one of the logs (an emptied or omitted log
/// would otherwise pass). The error names the log and line where the problem shows.
pub fn verify_with_store(logs: &[PathBuf], store: &dyn AccountStore) -> Result<Vec<Verified>> {
    let heads: std::collections::BTreeMap<String, AuditHead> =
        store.audit_heads()?.into_iter().collect();
    let applied: std::collections::BTreeSet<String> = store.plans()?.into_iter().collect();
    let mut seen: std::collections::BTreeMap<String, &Path> = Default::default();
    let mut out = Vec::with_capacity(logs.len());
    for path in logs {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // The plan is read from the first line; the chain check below confirms it.
        let plan = data
            .split(|b| *b == b'\n')
            .next()
            .and_then(|l| serde_json::from_slice::<Entry>(l).ok())
            .map(|e| e.plan);
        if let Some(plan) = &plan {
            if !heads.contains_key(plan) && !applied.contains(plan) {
                return Err(broken(
                    path,
                    1,
                    format!("log is for plan {plan}, which this store has never applied"),
                ));
            }
            if let Some(other) = seen.insert(plan.clone(), path) {
                return Err(broken(
                    path,
                    1,
                    format!(
                        "plan {plan} is also in {}: one log per plan",
                        other.display()
                    ),
                ));
            }
        }
        let v = verify_bytes(path, &data, plan.as_ref().and_then(|p| heads.get(p)))?;
        out.push(v);
    }
    // Outcomes are logged right after their commit; a plan with outcomes but no head lost
    // its log entries (or the process died in between and apply has not resumed yet).
    for plan in applied.iter().filter(|p| !heads.contains_key(*p)) {
        let outcomes = store
            .action_states(plan)?
            .iter()
            .filter(|a| a.state != crate::store::ActionState::Planned)
            .count();
        if outcomes > 0 {
            let path = logs
                .first()
                .map_or_else(|| PathBuf::from("<no log>"), Clone::clone);
            return Err(broken(
                &path,
                1,
                format!(
                    "the store recorded {outcomes} outcome(s) of plan {plan} but no log entry for them (run `remediate apply` again to log them)"
                ),
            ));
        }
    }
    if let Some((plan, head)) = heads.iter().find(|(p, _)| !seen.contains_key(*p)) {
        let (path, line) = logs
            .iter()
            .zip(&out)
            .next_back()
            .map_or((PathBuf::from("<no log>"), 1), |(p, v)| {
                (p.clone(), v.entries + 1)
            });
        return Err(broken(
            &path,
            line,
            format!(
                "the store recorded {} entries of plan {plan}, which are not in the given log(s)",
                head.seq
            ),
        ));
    }
    Ok(out)
}

fn log_open_error(path: &Path, e: std::io::Error) -> Error {
    if safefs::is_symlink_error(&e) {
        return Error::Unsafe(safefs::UnsafePath::Symlink {
            path: path.to_path_buf(),
        });
    }
    Error::io(path, e)
}

fn broken(path: &Path, line: u64, reason: impl Into<String>) -> Error {
    Error::AuditLog {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

fn verify_bytes(path: &Path, data: &[u8], expected_head: Option<&AuditHead>) -> Result<Verified> {
    let mut out = Verified {
        entries: 0,
        plan: None,
        head: None,
        done_actions: Vec::new(),
    };
    if data.is_empty() {
        if let Some(h) = expected_head {
            return Err(broken(
                path,
                1,
                format!("log is empty but the store recorded {} entries", h.seq),
            ));
        }
        return Ok(out);
    }
    if !data.ends_with(b"\n") {
        let n = data.split(|b| *b == b'\n').count() as u64;
        return Err(broken(
            path,
            n,
            "truncated line (no newline at the end of the log)",
        ));
    }
    let mut prev_hash: Option<String> = None;
    for (i, line) in data[..data.len() - 1].split(|b| *b == b'\n').enumerate() {
        let no = i as u64 + 1;
        let e: Entry = serde_json::from_slice(line).map_err(|err| {
            broken(
                path,
                no,
                format!("not an audit entry (altered or truncated): {err}"),
            )
        })?;
        if e.seq != no {
            return Err(broken(
                path,
                no,
                if e.seq > no {
                    format!(
                        "seq {} where {no} was expected: line(s) removed before this one",
                        e.seq
                    )
                } else {
                    format!(
                        "seq {} where {no} was expected: lines reordered or duplicated",
                        e.seq
                    )
                },
            ));
        }
        match (&out.plan, &prev_hash) {
            (None, _) => {
                if e.prev != e.plan {
                    return Err(broken(
                        path,
                        no,
                        "first entry is not anchored to its plan hash",
                    ));
                }
                out.plan = Some(e.plan.clone());
            }
            (Some(plan), Some(ph)) => {
                if e.plan != *plan {
                    return Err(broken(path, no, "entry belongs to a different plan"));
                }
                if e.prev != *ph {
                    return Err(broken(
                        path,
                        no,
                        format!("prev hash does not match line {}: that line was altered, or lines were removed or reordered", no - 1),
                    ));
                }
            }
            (Some(_), None) => unreachable!("prev_hash is set after the first line"),
        }
        if e.result.starts_with("done") {
            out.done_actions.push(e.action_id.clone());
        }
        prev_hash = Some(line_hash(line));
        out.entries = no;
    }
    out.head = prev_hash.map(|hash| AuditHead {
        seq: out.entries,
        hash,
    });
    if let Some(exp) = expected_head {
        match &out.head {
            Some(h) if h.seq < exp.seq => {
                return Err(broken(
                    path,
                    h.seq + 1,
                    format!(
                    "log ends at entry {} but the store recorded {} entries: the tail was removed",
                    h.seq, exp.seq
                ),
                ))
            }
            Some(h) if h.seq == exp.seq && h.hash != exp.hash => {
                return Err(broken(
                    path,
                    h.seq,
                    "last entry differs from the one the store recorded: it was altered",
                ))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// An open log, positioned for appends.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    plan: String,
    head: Option<AuditHead>,
}

impl AuditLog {
    /// Opens (verifying what is there) or creates the log for `plan`. A log of another plan,
    /// or one that does not verify, is an error: never append to a broken chain.
    ///
    /// One crash artifact is repaired: a partial last line (the process died inside an
    /// append) is cut off, but only when everything before it verifies, including against the
    /// store's head, so the cut line was never acknowledged; a `log-repair` entry records it.
    pub fn open(path: &Path, plan: &str, expected_head: Option<&AuditHead>) -> Result<AuditLog> {
        // The log names accounts and actions: its folder must be private, and the log itself
        // is never a link (a planted one would send the entries elsewhere).
        safefs::private_parent(path)?;
        let existing = match safefs::open_nofollow(path, OpenOptions::new().read(true)) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(log_open_error(path, e)),
        };
        let created = existing.is_none();
        let data = match existing {
            Some(mut f) => {
                let mut d = Vec::new();
                f.read_to_end(&mut d).map_err(|e| Error::io(path, e))?;
                d
            }
            None => Vec::new(),
        };
        let mut repaired = None;
        let verified = if !data.is_empty() && !data.ends_with(b"\n") {
            let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let v = verify_bytes(path, &data[..keep], expected_head)?;
            let f = safefs::open_nofollow(path, OpenOptions::new().write(true))
                .map_err(|e| log_open_error(path, e))?;
            f.set_len(keep as u64)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io(path, e))?;
            repaired = Some(data.len() - keep);
            v
        } else {
            verify_bytes(path, &data, expected_head)?
        };
        if let Some(p) = &verified.plan {
            if p != plan {
                return Err(broken(
                    path,
                    1,
                    format!("log belongs to plan {p}, not {plan}: use one log per plan"),
                ));
            }
        }
        let file = if created {
            safefs::create_secret(path)
        } else {
            safefs::open_nofollow(path, OpenOptions::new().append(true))
        }
        .map_err(|e| log_open_error(path, e))?;
        if verified.head.is_none() {
            // A new file: make its directory entry durable too.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        let mut log = AuditLog {
            path: path.to_path_buf(),
            file,
            plan: plan.to_string(),
            head: verified.head,
        };
        if let Some(bytes) = repaired {
            log.append(
                "log-repair",
                "",
                "",
                "repaired",
                Some(format!(
                    "dropped a partial last line of {bytes} bytes left by an interrupted append"
                )),
            )?;
        }
        Ok(log)
    }

    pub fn head(&self) -> Option<&AuditHead> {
        self.head.as_ref()
    }

    /// Action ids already logged as done (read again from the verified file).
    pub fn done_actions(&self) -> Result<Vec<String>> {
        Ok(verify(&self.path, None)?.done_actions)
    }

    /// Appends one entry and fsyncs; returns the new head.
    pub fn append(
        &mut self,
        action: &str,
        action_id: &str,
        account: &str,
        result: &str,
        detail: Option<String>,
    ) -> Result<AuditHead> {
        let seq = self.head.as_ref().map_or(1, |h| h.seq + 1);
        let prev = self
            .head
            .as_ref()
            .map_or_else(|| self.plan.clone(), |h| h.hash.clone());
        let e = Entry {
            seq,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            plan: self.plan.clone(),
            action: action.into(),
            action_id: action_id.into(),
            account: account.into(),
            result: result.into(),
            detail,
            prev,
        };
        let line = serde_json::to_vec(&e).expect("entries serialise");
        let mut buf = line.clone();
        buf.push(b'\n');
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .map_err(|err| Error::io(&self.path, err))?;
        let head = AuditHead {
            seq,
            hash: line_hash(&line),
        };
        self.head = Some(head.clone());
        Ok(head)
    }
}

/// Reads entries without verifying (for status displays); bad lines are skipped.
pub fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(std::io::BufReader::new(f)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> (PathBuf, AuditHead) {
        let p = dir.join("audit.jsonl");
        let mut log = AuditLog::open(&p, "sha256:plan", None).unwrap();
        let mut head = None;
        for i in 0..5 {
            head = Some(
                log.append(
                    "notify",
                    &format!("notify:a{i}"),
                    &format!("a{i}"),
                    "done",
                    None,
                )
                .unwrap(),
            );
        }
        (p, head.unwrap())
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write(p: &Path, lines: &[String]) {
        std::fs::write(p, lines.join("\n") + "\n").unwrap();
    }

    fn err_line(r: Result<Verified>) -> u64 {
        match r {
            Err(Error::AuditLog { line, .. }) => line,
            other => panic!("expected a broken log, got {other:?}"),
        }
    }

    #[test]
    fn symlinked_log_or_shared_log_folder_is_refused_regression() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "").unwrap();
        let link = d.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = AuditLog::open(&link, "sha256:plan", None).err().unwrap();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"");

        let shared = d.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = AuditLog::open(&shared.join("audit.jsonl"), "sha256:plan", None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("others can write"), "{err}");
        assert!(!shared.join("audit.jsonl").exists());
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777);

        let fresh = d.path().join("logs/audit.jsonl");
        AuditLog::open(&fresh, "sha256:plan", None).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn intact_log_verifies_and_reopens() {
        let d = tempfile::tempdir().unwrap();
        let (p, head) = sample(d.path());
        let v = verify(&p, Some(&head)).unwrap();
        assert_eq!(v.entries, 5);
        assert_eq!(v.done_actions.len(), 5);
        let mut log = AuditLog::open(&p, "sha256:plan", Some(&head)).unwrap();
        log.append("notify", "notify:a5", "a5", "done", None)
            .unwrap();
        assert_eq!(verify(&p, None).unwrap().entries, 6);
        assert!(AuditLog::open(&p, "sha256:other", None).is_err());
    }

    #[test]
    fn tampering_is_located() {
        let d = tempfile::tempdir().unwrap();
        let (p, head) = sample(d.path());
        let orig = lines(&p);

        let mut l = orig.clone();
        l[1] = l[1].replace("\"done\"", "\"failed\"");
        write(&p, &l);
        assert_eq!(
            err_line(verify(&p, None)),
            3,
            "altered line 2 breaks line 3"
        );

        let mut l = orig.clone();
        l.remove(2);
        write(&p, &l);
        assert_eq!(err_line(verify(&p, None)), 3, "removed line");

        let mut l = orig.clone();
        l.swap(1, 2);
        write(&p, &l);
        assert_eq!(err_line(verify(&p, None)), 2, "reordered");

        let mut l = orig.clone();
        l.pop();
        write(&p, &l);
        assert!(
            verify(&p, None).is_ok(),
            "a cut tail needs the store's head"
        );
        assert_eq!(err_line(verify(&p, Some(&head))), 5);

        let mut l = orig.clone();
        l[4] = l[4].replace("\"a4\"", "\"a9\"");
        write(&p, &l);
        assert_eq!(err_line(verify(&p, Some(&head))), 5, "altered last line");

        let mut text = orig.join("\n") + "\n";
        text.truncate(text.len() - 10);
        std::fs::write(&p, &text).unwrap();
        assert_eq!(err_line(verify(&p, None)), 5, "truncated last line");

        // Opening for append repairs a partial last line only if the store never
        // acknowledged it...
        assert!(AuditLog::open(&p, "sha256:plan", Some(&head)).is_err());
        let h4 = {
            let four = orig[..4].join("\n") + "\n";
            std::fs::write(&p, &four).unwrap();
            verify(&p, None).unwrap().head.unwrap()
        };
        std::fs::write(&p, &text).unwrap();
        let log = AuditLog::open(&p, "sha256:plan", Some(&h4)).unwrap();
        assert_eq!(log.head().unwrap().seq, 5, "4 kept + the repair entry");
        let v = verify(&p, None).unwrap();
        assert_eq!(v.entries, 5);
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .contains("\"log-repair\""));
    }

    #[test]
    fn verify_log_passed_emptied_or_forged_log_regression() {
        use crate::store::{AccountStore, SqliteStore};
        let d = tempfile::tempdir().unwrap();
        let (p, head) = sample(d.path());
        let mut store = SqliteStore::open(&d.path().join("a.db")).unwrap();
        let logs = [p.clone()];
        // A store that applied nothing: the log's plan is unknown to it.
        match verify_with_store(&logs, &store) {
            Err(Error::AuditLog {
                line: 1, reason, ..
            }) => {
                assert!(reason.contains("never applied"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        store.set_audit_head("sha256:plan", &head).unwrap();
        assert_eq!(verify_with_store(&logs, &store).unwrap()[0].entries, 5);
        // Emptied: the store's head for the plan is in no log.
        let original = std::fs::read(&p).unwrap();
        std::fs::write(&p, "").unwrap();
        match verify_with_store(&logs, &store) {
            Err(Error::AuditLog { reason, .. }) => {
                assert!(
                    reason.contains("5 entries of plan sha256:plan, which are not in"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        // A one-line log of a made-up plan.
        let forged = d.path().join("forged.jsonl");
        AuditLog::open(&forged, "sha256:made-up", None)
            .unwrap()
            .append("notify", "notify:a0", "a0", "done", None)
            .unwrap();
        assert!(verify_with_store(std::slice::from_ref(&forged), &store).is_err());
        // A second plan applied to the store must be in a log too, and one log per plan.
        std::fs::write(&p, original).unwrap();
        store
            .set_audit_head(
                "sha256:made-up",
                &AuditHead {
                    seq: 1,
                    hash: verify(&forged, None).unwrap().head.unwrap().hash,
                },
            )
            .unwrap();
        assert!(verify_with_store(std::slice::from_ref(&p), &store).is_err());
        assert!(verify_with_store(&[p.clone(), p.clone()], &store).is_err());
        // Outcomes of a plan with no recorded head (its entries never logged) fail too.
        store
            .ensure_planned(
                "sha256:z",
                &[("notify:a".into(), "a".into(), "notify".into())],
                1,
            )
            .unwrap();
        assert_eq!(
            verify_with_store(&[p.clone(), forged.clone()], &store)
                .unwrap()
                .len(),
            2
        );
        store
            .mark_failed("sha256:z", &["notify:a".into()], "x", 2)
            .unwrap();
        match verify_with_store(&[p, forged], &store) {
            Err(Error::AuditLog { reason, .. }) => {
                assert!(reason.contains("1 outcome(s) of plan sha256:z"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
