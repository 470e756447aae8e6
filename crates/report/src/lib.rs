//! leakaudit-report: campaigns, the incident report (HTML, JSON summary, breach record).
