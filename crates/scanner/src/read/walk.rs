//! Walking the inputs: files, folders of files (recursively), Maildirs and standard input.
//!
//! Order is deterministic: entries are sorted by file name at every level. Symbolic links
//! are followed, and a link that leads back to one of its own ancestors (a loop) is reported
//! as a warning and not entered. In a Maildir (a folder holding `cur/` and `new/`), files in
//! `cur/` and `new/` are messages, `tmp/` (deliveries in progress) is skipped, and the other
//! files at its top (index and uid lists of the mail server) are not messages and are skipped.

use crate::model::{Location, Problem, ProblemKind, ProblemLevel};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use walkdir::WalkDir;

/// One thing to read.
#[derive(Debug)]
pub enum Item {
    File {
        path: PathBuf,
        /// The path as shown in locations.
        display: Arc<str>,
        /// Size on disk.
        size: u64,
        /// The file sits in a Maildir's `cur/` or `new/`.
        maildir: bool,
    },
    Stdin,
    Problem(Problem),
}

/// Is `dir` a Maildir (has `cur/` and `new/` subfolders)?
pub fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// Where a file stands with respect to Maildirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Ordinary,
    MaildirMessage,
    /// In `tmp/` or at a Maildir's top: not a message.
    MaildirSkip,
}

/// Classifies by the folder the file is in; the last answer is cached because a sorted walk
/// visits the files of one folder one after another.
#[derive(Default)]
struct Classifier {
    last: Option<(PathBuf, Place)>,
}

impl Classifier {
    fn place(&mut self, file: &Path) -> Place {
        let Some(parent) = file.parent() else {
            return Place::Ordinary;
        };
        if let Some((p, place)) = &self.last {
            if p == parent {
                return *place;
            }
        }
        let place = classify_dir(parent);
        self.last = Some((parent.to_path_buf(), place));
        place
    }
}

fn classify_dir(parent: &Path) -> Place {
    if is_maildir(parent) {
        return Place::MaildirSkip;
    }
    let name = parent.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(grand) = parent.parent() {
        if matches!(name, "cur" | "new" | "tmp") && is_maildir(grand) {
            return if name == "tmp" {
                Place::MaildirSkip
            } else {
                Place::MaildirMessage
            };
        }
    }
    Place::Ordinary
}

fn display(p: &Path) -> Arc<str> {
    Arc::from(p.to_string_lossy().as_ref())
}

fn unreadable(path: &Path, level: ProblemLevel, reason: String) -> Item {
    Item::Problem(Problem {
        location: Location::file(display(path)),
        level,
        kind: ProblemKind::Unreadable,
        reason,
        detail_code: None,
    })
}

/// The files of one input, lazily, in a deterministic order. `force_maildir` labels every
/// file as a Maildir message (`--format maildir`).
pub fn walk(input: &str, force_maildir: bool) -> Box<dyn Iterator<Item = Item> + Send> {
    if input == "-" {
        return Box::new(std::iter::once(Item::Stdin));
    }
    let root = PathBuf::from(input);
    let meta = match std::fs::metadata(&root) {
        Ok(m) => m,
        Err(e) => {
            return Box::new(std::iter::once(unreadable(
                &root,
                ProblemLevel::Error,
                format!("cannot open: {e}"),
            )))
        }
    };
    if meta.is_file() {
        let mut c = Classifier::default();
        let maildir = force_maildir || c.place(&root) == Place::MaildirMessage;
        return Box::new(std::iter::once(Item::File {
            display: display(&root),
            path: root,
            size: meta.len(),
            maildir,
        }));
    }
    if !meta.is_dir() {
        return Box::new(std::iter::once(unreadable(
            &root,
            ProblemLevel::Error,
            "not a regular file or folder".into(),
        )));
    }
    let mut classifier = Classifier::default();
    let it = WalkDir::new(&root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_map(move |entry| match entry {
            Ok(e) => {
                let ft = e.file_type();
                if ft.is_dir() {
                    return None;
                }
                if !ft.is_file() {
                    // Sockets, fifos, devices: reading a fifo could block forever.
                    return Some(unreadable(
                        e.path(),
                        ProblemLevel::Warning,
                        "not a regular file; skipped".into(),
                    ));
                }
                let place = classifier.place(e.path());
                if place == Place::MaildirSkip && !force_maildir {
                    return None;
                }
                if place == Place::MaildirSkip
                    && e.path().parent().and_then(|p| p.file_name()) == Some("tmp".as_ref())
                {
                    return None;
                }
                let size = match e.metadata() {
                    Ok(m) => m.len(),
                    Err(err) => {
                        return Some(unreadable(
                            e.path(),
                            ProblemLevel::Error,
                            format!("cannot stat: {err}"),
                        ))
                    }
                };
                Some(Item::File {
                    display: display(e.path()),
                    path: e.into_path(),
                    size,
                    maildir: force_maildir || place == Place::MaildirMessage,
                })
            }
            Err(err) => {
                let path = err.path().map(Path::to_path_buf).unwrap_or_default();
                if let Some(anc) = err.loop_ancestor() {
                    return Some(unreadable(
                        &path,
                        ProblemLevel::Warning,
                        format!("symbolic link loop back to {}; not followed", anc.display()),
                    ));
                }
                let reason = match err.io_error() {
                    Some(io) => format!("cannot read: {io}"),
                    None => format!("cannot read: {err}"),
                };
                Some(unreadable(&path, ProblemLevel::Error, reason))
            }
        });
    Box::new(it)
}

/// Total size on disk of the inputs, for a progress bar; `None` when one is standard input.
pub fn size_hint(inputs: &[String]) -> Option<u64> {
    let mut total = 0u64;
    for input in inputs {
        for item in walk(input, false) {
            match item {
                Item::File { size, .. } => total += size,
                Item::Stdin => return None,
                Item::Problem(_) => {}
            }
        }
    }
    Some(total)
}
