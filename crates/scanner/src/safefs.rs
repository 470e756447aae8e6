//! Folders and files that hold addresses or live reset links (`incident --out`, the outbox,
//! the audit log). Every writer checks its folder with [`private_dir`]: a missing folder is
//! created by us (0700); an existing one is used only when it is a real folder (not a
//! symlink) that we own and that nobody else can write. It is never chmodded: changing the
//! mode of a shared folder (a 1777 /tmp, say) would break it for everyone else. Secret files
//! are opened with `O_NOFOLLOW` ([`create_secret`], [`open_nofollow`]) so a link planted
//! under the name is refused instead of written through.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a folder (or a file in it) may not hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum UnsafePath {
    #[error("{}: is a symbolic link; give the real folder or file (secrets are never written through a link)", path.display())]
    Symlink { path: PathBuf },
    #[error("{}: exists and is not a {expected}", path.display())]
    WrongType {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{}: owned by uid {owner}, not by us (uid {me}); use a folder of your own", path.display())]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{}: others can write into it (mode {mode:o}); use a private folder (it is created 0700 when missing)", path.display())]
    Writable { path: PathBuf, mode: u32 },
    #[error("{}: the folder above it can be written by anyone (mode {mode:o}, no sticky bit), so it could be swapped", path.display())]
    WritableAncestor { path: PathBuf, mode: u32 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl UnsafePath {
    fn io(path: &Path, source: io::Error) -> UnsafePath {
        UnsafePath::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes sure `dir` is a private folder of ours: created 0700 (with its missing parents,
/// also 0700) when missing; otherwise a real folder owned by us that group and others cannot
/// write, below no world-writable non-sticky folder. Never changes a mode.
pub fn private_dir(dir: &Path) -> Result<(), UnsafePath> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => check_dir(dir, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| UnsafePath::io(parent, e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Someone raced us to the name: what is there now is checked below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(UnsafePath::io(dir, e)),
            }
            let meta = fs::symlink_metadata(dir).map_err(|e| UnsafePath::io(dir, e))?;
            check_dir(dir, &meta)?;
        }
        Err(e) => return Err(UnsafePath::io(dir, e)),
    }
    check_ancestors(dir)
}

/// The folder of `file` as a [`private_dir`] (`.` for a bare file name).
pub fn private_parent(file: &Path) -> Result<(), UnsafePath> {
    match file.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => private_dir(p),
        None => private_dir(Path::new(".")),
    }
}

fn check_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), UnsafePath> {
    let path = dir.to_path_buf();
    if meta.file_type().is_symlink() {
        return Err(UnsafePath::Symlink { path });
    }
    if !meta.is_dir() {
        return Err(UnsafePath::WrongType {
            path,
            expected: "folder",
        });
    }
    let me = euid();
    if meta.uid() != me {
        return Err(UnsafePath::ForeignOwner {
            path,
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(UnsafePath::Writable {
            path,
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// A world-writable folder above ours lets anyone rename our folder away and put a link in
/// its place; the sticky bit (/tmp) forbids renaming entries of others, so that is fine.
fn check_ancestors(dir: &Path) -> Result<(), UnsafePath> {
    let real = fs::canonicalize(dir).map_err(|e| UnsafePath::io(dir, e))?;
    for anc in real.ancestors().skip(1) {
        let meta = fs::metadata(anc).map_err(|e| UnsafePath::io(anc, e))?;
        let mode = meta.mode();
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(UnsafePath::WritableAncestor {
                path: dir.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

/// Creates `path` for a secret: it must not exist (`O_EXCL`), is never a link
/// (`O_NOFOLLOW`), mode 0600.
pub fn create_secret(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens an existing file without following a link at its name (`ELOOP` when it is one),
/// and only when it is a regular file (not a fifo or a device).
pub fn open_nofollow(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    let f = opts.custom_flags(libc::O_NOFOLLOW).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// Whether `e` is what `O_NOFOLLOW` gives for a link.
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_0700_and_accepts_it_again() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/out");
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        private_dir(&d).unwrap();
    }

    #[test]
    fn shared_folder_is_refused_and_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("shared");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = private_dir(&d).unwrap_err();
        assert!(
            matches!(err, UnsafePath::Writable { mode: 0o1777, .. }),
            "{err}"
        );
        assert_eq!(mode(&d), 0o1777, "never chmodded, sticky bit kept");
    }

    #[test]
    fn symlinked_folder_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            private_dir(&link).unwrap_err(),
            UnsafePath::Symlink { .. }
        ));
    }

    #[test]
    fn folder_under_a_world_writable_non_sticky_folder_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let open = t.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&open.join("mine")).unwrap_err();
        assert!(matches!(err, UnsafePath::WritableAncestor { .. }), "{err}");
        // With the sticky bit nobody can swap our folder: accepted.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&open.join("mine")).unwrap();
    }

    #[test]
    fn secret_files_are_never_written_through_a_link() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        fs::write(&target, "untouched").unwrap();
        let link = t.path().join("secret");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_secret(&link).is_err());
        let e = open_nofollow(&link, OpenOptions::new().append(true)).unwrap_err();
        assert!(is_symlink_error(&e), "{e}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
        let fresh = t.path().join("fresh");
        create_secret(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
        assert!(create_secret(&fresh).is_err(), "O_EXCL");
    }
}
