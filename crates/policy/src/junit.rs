//! JUnit XML: one test case per audited message; a message with findings at or above the
//! gate's severity fails (one `<failure>` listing them), lower findings go to `system-out`.
//! CI systems (GitLab, Jenkins, Azure) show each rendered mail as a test.

use crate::finding::Severity;
use crate::report::MessageReport;
use std::fmt::Write;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

pub fn render(reports: &[MessageReport], fail_on: Severity) -> String {
    let tests = reports.len();
    let failures = reports
        .iter()
        .filter(|r| r.findings.iter().any(|f| f.severity >= fail_on))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"leakaudit\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"leakaudit check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">"
    );
    for r in reports {
        // The location alone: CI history follows a test by its name, which must not change
        // with the outcome or with a re-rendered Message-ID.
        let name = r.location.to_string();
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            esc(&r.location.path),
            esc(&name)
        );
        let failing: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.severity >= fail_on)
            .collect();
        let other: Vec<_> = r.findings.iter().filter(|f| f.severity < fail_on).collect();
        if failing.is_empty() && other.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if !failing.is_empty() {
            let rules: Vec<&str> = failing.iter().map(|f| f.rule_id.as_str()).collect();
            let mut body = String::new();
            for f in &failing {
                let _ = writeln!(
                    body,
                    "[{}] {}: {}\nevidence: {}\nfix: {}\nfingerprint: {}\n",
                    f.severity, f.rule_id, f.message, f.evidence, f.hint, f.fingerprint
                );
            }
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                esc(&rules.join(",")),
                esc(&format!(
                    "{} finding(s) at or above {fail_on}: {}",
                    failing.len(),
                    failing[0].message
                )),
                esc(&body)
            );
        }
        if !other.is_empty() {
            let mut body = String::new();
            for f in &other {
                let _ = writeln!(
                    body,
                    "[{}] {}: {} ({})",
                    f.severity, f.rule_id, f.message, f.evidence
                );
            }
            let _ = writeln!(out, "      <system-out>{}</system-out>", esc(&body));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
