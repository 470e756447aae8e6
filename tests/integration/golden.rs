//! `incident`'s outputs on the demo, pinned byte for byte (the repository path, the run's own
//! time and the store's random id normalised): moving the audit into the library (issue 30)
//! and later refactors must not change a byte of what a responder reads.

use crate::util::{fixture, leakaudit, normalise};
use sha2::Digest;

#[test]
fn incident_outputs_on_the_demo_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = leakaudit()
        .arg("incident")
        .arg(fixture("demo/outbound.mbox"))
        .arg("--accounts")
        .arg(fixture("demo/accounts.csv"))
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--detected-at", "2019-11-04T08:30:00Z"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();

    // The bytes as written, only the lines naming this run's time, folder and store replaced.
    let mut replaced = 0;
    let summary: String = read("summary.json")
        .lines()
        .map(|l| {
            for key in ["generated_at", "accounts_store"] {
                if l.starts_with(&format!("  \"{key}\": ")) {
                    replaced += 1;
                    return format!("  \"{key}\": \"[{key}]\",\n");
                }
            }
            // The plan's hash binds the store's random id: pinned below, recomputed.
            if l.starts_with("    \"hash\": \"sha256:") {
                replaced += 1;
                return "    \"hash\": \"[plan hash]\",\n".to_string();
            }
            format!("{l}\n")
        })
        .collect();
    assert_eq!(replaced, 3, "{summary}");
    insta::assert_snapshot!("golden_summary_json", normalise(&summary));
    insta::assert_snapshot!("golden_campaigns_csv", normalise(&read("campaigns.csv")));

    // The list's header names the store's random id; its 799 rows are pinned by hash.
    let affected = read("affected.csv");
    let (header, rows) = affected.split_once('\n').unwrap();
    assert!(
        header.starts_with("# leakaudit-affected/1 store_id="),
        "{header}"
    );
    let plan: leakaudit_remediation::Plan = serde_json::from_str(&read("plan.json")).unwrap();
    // The plan's content hash binds the store id: recomputed for a fixed one, it pins every
    // action and notice.
    let plan_hash = leakaudit_remediation::plan::content_hash(
        "[STORE]",
        plan.incident.as_deref(),
        &plan.actions,
        &plan.notices,
    );
    let pinned = format!(
        "affected.csv rows: {} sha256:{}\nplan actions and notices: {plan_hash}\nplan totals: {:?}\n",
        rows.lines().count(),
        hex(rows.as_bytes()),
        plan.totals
    );
    insta::assert_snapshot!("golden_affected_and_plan", pinned);
}

fn hex(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}
