//! Issue 10 hardening through the binary: inputs that were misread (MH annotations, quoted
//! local parts), CSV outputs a spreadsheet would run, accounts CSVs that must be refused.

use crate::util::{fixture, json_lines, leakaudit, stderr};

fn readers(rel: &str) -> String {
    fixture("readers").join(rel).to_string_lossy().into_owned()
}

#[test]
fn mh_annotated_files_before_the_from_line_are_read_as_mail() {
    let dir = readers("mh-annotated");
    let o = leakaudit().args(["scan", &dir]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("not-mail"), "{err}");
    assert!(err.contains("messages read: 2 (mbox 2)"), "{err}");
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 2, "{recs:?}");
    for r in &recs {
        assert_eq!(r["format"], "mbox");
        let path = r["location"]["path"].as_str().unwrap();
        let data = std::fs::read(path).unwrap();
        let off = r["location"]["offset"].as_u64().unwrap() as usize;
        assert!(
            data[off..].starts_with(b"From shop@shop.example "),
            "{path}"
        );
        assert_eq!(r["exposed"].as_array().unwrap().len(), 2, "{r}");
    }
    assert_eq!(recs[0]["message_id"], "mh-forwarded@shop.example");
    assert_eq!(recs[1]["message_id"], "mh-replied@shop.example");
    assert_eq!(recs[1]["subject"], "Your order (replied)");
}
