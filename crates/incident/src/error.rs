use std::path::PathBuf;

/// Why an incident run stopped. Every error names the file or store it concerns.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The account store, the import, the plan, the apply or the affected-user list.
    #[error(transparent)]
    Remediation(#[from] leakaudit_remediation::Error),
    #[error(transparent)]
    Report(#[from] leakaudit_report::ReportError),
    #[error(transparent)]
    History(#[from] leakaudit_policy::triage::HistoryError),
    /// The output folder (or the staging folder inside it) is not a private folder of ours.
    #[error(transparent)]
    Folder(#[from] leakaudit_scanner::safefs::UnsafePath),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No message was read: nothing was audited (the reason says what was found instead).
    #[error("{0}")]
    NothingRead(String),
    #[error("the account store lock was poisoned")]
    Poisoned,
}
