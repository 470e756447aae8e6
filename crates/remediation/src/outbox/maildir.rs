//! The outbox folders as Maildirs: durable staging (tmp, fsync, rename, fsync the folder)
//! and `apply-state.json`, the record `release` checks every message against.
//!
//! Every folder is checked with `safefs::private_dir` before anything is written into it
//! (created 0700 by us, or ours and private; never chmodded), and a message is created with
//! `O_EXCL | O_NOFOLLOW`: the messages carry live reset links, and a pre-made outbox of
//! another user with a planted link would otherwise receive them.

use crate::error::{Error, Result};
use leakaudit_scanner::safefs::{self, private_dir};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs;
use std::path::{Path, PathBuf};

/// The outbox folders.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub root: PathBuf,
}

/// One staged message as recorded in `apply-state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedMessage {
    pub file: String,
    pub sha256: String,
    pub account: String,
    pub to: String,
}

impl StagedMessage {
    /// The entry of message `file` (its `bytes`) for `account`, addressed to `to`.
    pub fn of(file: String, bytes: &[u8], account: &str, to: String) -> StagedMessage {
        StagedMessage {
            file,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            account: account.to_string(),
            to,
        }
    }
}

/// `DIR/apply-state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyState {
    pub plan: String,
    /// Apply took every action to an end: done, or failed (`failed`).
    pub complete: bool,
    pub messages: Vec<StagedMessage>,
    /// Accounts (and notice ids) whose actions failed: not notified; release and send go on
    /// for the rest and say so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

pub(super) fn make_maildir(dir: &Path) -> Result<()> {
    private_dir(dir)?;
    for sub in ["tmp", "new", "cur"] {
        private_dir(&dir.join(sub))?;
    }
    Ok(())
}

impl Outbox {
    pub fn new(root: &Path) -> Outbox {
        Outbox {
            root: root.to_path_buf(),
        }
    }
    pub fn staged(&self) -> PathBuf {
        self.root.join("staged")
    }
    pub fn released(&self) -> PathBuf {
        self.root.join("released")
    }
    pub fn state_path(&self) -> PathBuf {
        self.root.join("apply-state.json")
    }

    /// Deterministic Maildir name of the message for (plan, account).
    pub fn file_name(plan_hash: &str, account: &str) -> String {
        let plan = plan_hash.trim_start_matches("sha256:");
        let acct = hex::encode(sha2::Sha256::digest(account.as_bytes()));
        format!(
            "{}.{}.leakaudit",
            plan.get(..12).unwrap_or(plan),
            &acct[..16]
        )
    }

    /// The file name of a notify-only notice (`notice_id` is `notify-only:<n>`): hashed apart
    /// from account ids, so no account id can name the same file.
    pub fn notice_file_name(plan_hash: &str, notice_id: &str) -> String {
        Self::file_name(plan_hash, &format!("notice\0{notice_id}"))
    }

    /// Checks (or creates) the outbox and its `staged` Maildir as private folders of ours.
    /// `apply` calls it before it resets anything, so an unsafe outbox stops the run early.
    pub fn prepare(&self) -> Result<()> {
        private_dir(&self.root)?;
        make_maildir(&self.staged())
    }

    /// Writes a message durably into `staged/new` (tmp, fsync, rename, fsync the folder),
    /// replacing an earlier one of the same name.
    pub fn stage(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        self.prepare()?;
        let staged = self.staged();
        let tmp = staged.join("tmp").join(name);
        let dst = staged.join("new").join(name);
        {
            use std::io::Write;
            // A leftover of a killed run (or anything else under the name) is unlinked, never
            // opened: unlinking a link removes the link, not what it points to.
            match fs::remove_file(&tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&tmp, e)),
            }
            let mut f = safefs::create_secret(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
        }
        fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        sync_dir(&staged.join("new"))?;
        Ok(dst)
    }

    /// Whether the message for `name` exists (staged or released).
    /// The bytes of message `name`, staged or else released; `None` when it is in neither.
    pub fn read_message(&self, name: &str) -> Result<Option<Vec<u8>>> {
        for dir in [self.staged(), self.released()] {
            let path = dir.join("new").join(name);
            match fs::read(&path) {
                Ok(b) => return Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(None)
    }

    pub fn has_message(&self, name: &str) -> bool {
        self.staged().join("new").join(name).exists()
            || self.released().join("new").join(name).exists()
    }

    pub fn write_state(&self, state: &ApplyState) -> Result<()> {
        private_dir(&self.root)?;
        let p = self.state_path();
        leakaudit_scanner::io::write_atomic(&p, |w| {
            serde_json::to_writer_pretty(&mut *w, state)?;
            w.write_all(b"\n")
        })
        .map_err(|e| Error::io(&p, e))
    }

    /// Another plan whose messages this outbox holds (its `apply-state.json`, or a message
    /// name with another plan's prefix), if any: release and send check one plan's messages
    /// and refuse any other file, so each plan needs an outbox of its own.
    pub fn other_plan(&self, plan_hash: &str) -> Result<Option<String>> {
        if let Some(state) = self.read_state()? {
            if state.plan != plan_hash {
                return Ok(Some(state.plan));
            }
        }
        let mine = Self::file_name(plan_hash, "");
        let prefix = mine.split('.').next().unwrap_or_default();
        for dir in [self.staged(), self.released()] {
            let new = dir.join("new");
            let rd = match fs::read_dir(&new) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&new, e)),
            };
            for e in rd {
                let e = e.map_err(|e| Error::io(&new, e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(other) = name.strip_suffix(".leakaudit") {
                    let other = other.split('.').next().unwrap_or_default();
                    if other != prefix {
                        return Ok(Some(format!("{other}… (message {name})")));
                    }
                }
            }
        }
        Ok(None)
    }

    pub fn read_state(&self) -> Result<Option<ApplyState>> {
        let p = self.state_path();
        if !p.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Parse {
                path: p,
                line: Some(e.line() as u64),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_replaces_the_message_of_the_same_account() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let name = Outbox::file_name("sha256:0123456789abcdef", "acc-1");
        assert_eq!(name, Outbox::file_name("sha256:0123456789abcdef", "acc-1"));
        assert_ne!(name, Outbox::file_name("sha256:0123456789abcdef", "acc-2"));
        assert!(!outbox.has_message(&name));
        outbox.stage(&name, b"first").unwrap();
        let path = outbox.stage(&name, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert!(outbox.has_message(&name));
        let new = fs::read_dir(outbox.staged().join("new")).unwrap().count();
        let tmp = fs::read_dir(outbox.staged().join("tmp")).unwrap().count();
        assert_eq!((new, tmp), (1, 0));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn planted_link_in_staged_tmp_is_not_written_through_regression() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(&dir.path().join("outbox"));
        outbox.prepare().unwrap();
        let name = Outbox::file_name("sha256:0123456789abcdef", "acc-1");
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, outbox.staged().join("tmp").join(&name)).unwrap();
        let path = outbox.stage(&name, b"token").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
    }

    #[test]
    fn symlinked_or_shared_outbox_folders_are_refused_and_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let root = dir.path().join("outbox");
        fs::create_dir_all(root.join("staged")).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(root.join("staged"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("staged/new")).unwrap();
        let outbox = Outbox::new(&root);
        let err = outbox.stage("m", b"token").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = Outbox::new(&shared)
            .stage("m", b"token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("others can write"), "{err}");
        let mode = fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777);
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
    }

    #[test]
    fn state_roundtrips_and_bad_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        assert_eq!(outbox.read_state().unwrap(), None);
        let state = ApplyState {
            plan: "sha256:ab".into(),
            complete: true,
            messages: vec![StagedMessage {
                file: "f".into(),
                sha256: "00".into(),
                account: "acc-1".into(),
                to: "anna@gmail.com".into(),
            }],
            failed: Vec::new(),
        };
        outbox.write_state(&state).unwrap();
        assert_eq!(outbox.read_state().unwrap(), Some(state));
        fs::write(outbox.state_path(), "{\n\"plan\": 3").unwrap();
        match outbox.read_state() {
            Err(Error::Parse { path, line, .. }) => {
                assert_eq!(path, outbox.state_path());
                assert_eq!(line, Some(2));
            }
            other => panic!("{other:?}"),
        }
    }
}
