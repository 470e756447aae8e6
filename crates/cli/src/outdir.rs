//! Output folders that will hold addresses and live reset links. We create them ourselves
//! (0700); an existing one is used only when it is a real folder (not a symlink) that we own
//! and that nobody else can write, and it is never chmodded: changing the mode of a shared
//! folder (a 1777 /tmp, say) would break it for everyone else.

use anyhow::{bail, Context};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

/// Makes sure `dir` is a private folder of ours: creates it (and its parents) when missing.
pub fn private_dir(dir: &Path, flag: &str) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => check_existing(dir, flag, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            // Created by us, but re-check: another process may have raced us to the name.
            let meta = std::fs::symlink_metadata(dir)?;
            check_existing(dir, flag, &meta)
        }
        Err(e) => Err(e).with_context(|| format!("{flag} {}", dir.display())),
    }
}

fn check_existing(dir: &Path, flag: &str, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    let shown = crate::term::clean(&dir.display().to_string()).into_owned();
    if meta.file_type().is_symlink() {
        bail!("{flag} {shown}: is a symbolic link; give the real folder (secrets are never written through a link)");
    }
    if !meta.is_dir() {
        bail!("{flag} {shown}: exists and is not a folder");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "{flag} {shown}: owned by uid {}, not by us (uid {me}); use a folder of your own",
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{flag} {shown}: others can write into it (mode {:o}); use a private folder (it is created 0700 when missing)",
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::private_dir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_0700_and_accepts_it_again() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/out");
        private_dir(&d, "--out").unwrap();
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        private_dir(&d, "--out").unwrap();
    }

    #[test]
    fn shared_folder_is_refused_and_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("shared");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = private_dir(&d, "--out").unwrap_err().to_string();
        assert!(err.contains("others can write"), "{err}");
        // Never chmodded: the sticky bit and the mode are as they were.
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
    }

    #[test]
    fn symlinked_out_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = private_dir(&link, "--out").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
