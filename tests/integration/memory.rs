//! Memory (issue 9): one message with 20,000 visible addresses through the binary. The
//! 1,000,000-address runs and their peak RSS are in bench/affected.sh (no timed tests here).

use crate::util::{fixture, leakaudit};

/// 20,000 consumer addresses in Cc, two colleagues of one business in To.
fn big_message(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let mut m = String::with_capacity(n * 24 + 512);
    m.push_str("From: shop@shop.example\r\nTo: ann@acme.example, ben@acme.example\r\n");
    m.push_str("Date: Fri, 01 Nov 2019 09:00:00 +0000\r\nMessage-ID: <big@shop.example>\r\n");
    m.push_str("Subject: Important: changes to your account\r\nCc: ");
    for i in 0..n {
        if i > 0 {
            m.push_str(",\r\n ");
        }
        m.push_str(&format!("user{i}@gmail.com"));
    }
    m.push_str("\r\n\r\nHello.\r\n");
    let p = dir.join("big.eml");
    std::fs::write(&p, m).unwrap();
    p
}

/// Every address listed once, each with audience `n`: the n consumer parties and the
/// business, minus its own party.
fn check_audiences(csv: &str, n: usize) {
    let mut rows = 0;
    for line in csv.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        assert_eq!(cols[3], n.to_string(), "audience of {}", cols[0]);
        rows += 1;
    }
    assert_eq!(rows, n + 2);
    assert!(csv.contains("\nuser19999@gmail.com,"));
    assert!(csv.contains("\nann@acme.example,"));
}

#[test]
fn regression_audience_of_a_20000_address_message_affected() {
    let d = tempfile::tempdir().unwrap();
    let eml = big_message(d.path(), 20_000);
    let out = d.path().join("affected.csv");
    let o = leakaudit()
        .args(["affected", "--quiet", "--format", "csv", "-o"])
        .arg(&out)
        .arg(&eml)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check_audiences(&std::fs::read_to_string(&out).unwrap(), 20_000);
}

#[test]
fn regression_audience_of_a_20000_address_message_incident() {
    let d = tempfile::tempdir().unwrap();
    let eml = big_message(d.path(), 20_000);
    let out = d.path().join("incident");
    let o = leakaudit()
        .args(["incident", "--quiet", "--accounts"])
        .arg(fixture("demo/accounts.csv"))
        .arg("--out")
        .arg(&out)
        .arg(&eml)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check_audiences(
        &std::fs::read_to_string(out.join("affected.csv")).unwrap(),
        20_000,
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["headline"]["addresses_exposed"], 20_002);
    assert_eq!(summary["headline"]["address_exposures"], 20_002);
}
