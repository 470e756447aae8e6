//! Reader tests on the fixtures under `fixtures/readers/` (see its README) and on archives
//! made at run time (compressed copies, symlink loops, large mboxes).

use crate::model::{Format, HeaderWarningKind, Location, Problem, ProblemKind, ProblemLevel};
use crate::scan::{Event, ScanOptions, ScanStats, Scanner};
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/readers")
        .join(rel)
}

fn fixture_str(rel: &str) -> String {
    fixture(rel).to_string_lossy().into_owned()
}

/// What the tests look at for each message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    location: Location,
    format: Format,
    message_id: Option<String>,
    subject: Option<String>,
    unquoted: Vec<u8>,
}

#[derive(Debug, Default)]
struct Run {
    messages: Vec<Seen>,
    problems: Vec<Problem>,
    /// Messages and problems in emission order (for order checks).
    order: Vec<String>,
    stats: ScanStats,
}

fn scan_with(inputs: &[String], opts: ScanOptions) -> Run {
    let scanner = Scanner::new(opts);
    let mut run = Run::default();
    let stats = scanner.scan(
        inputs,
        |m| Seen {
            location: m.location.clone(),
            format: m.format,
            message_id: m.envelope.message_id.clone(),
            subject: m.envelope.subject.clone(),
            unquoted: m.unquoted().into_owned(),
        },
        |ev| match ev {
            Event::Message { location, item, .. } => {
                assert_eq!(location, item.location);
                run.order.push(format!("M {location:?}"));
                run.messages.push(item);
            }
            Event::Problem(p) => {
                run.order.push(format!("P {:?} {:?}", p.kind, p.location));
                run.problems.push(p);
            }
            Event::Progress { .. } => {}
        },
    );
    run.stats = stats;
    run
}

fn scan(inputs: &[String]) -> Run {
    scan_with(inputs, ScanOptions::default())
}

/// Options that force the streaming path with tiny blocks (every block boundary case).
fn streaming(block: usize) -> ScanOptions {
    ScanOptions {
        block_bytes: block,
        small_file_bytes: 0,
        ..ScanOptions::default()
    }
}

fn ids(run: &Run) -> Vec<String> {
    run.messages
        .iter()
        .map(|m| m.message_id.clone().unwrap_or_default())
        .collect()
}

/// Offsets of the `From ` separator lines, found independently of the reader.
fn separator_offsets(data: &[u8]) -> Vec<u64> {
    let mut v = vec![];
    for (i, _) in data.iter().enumerate() {
        let at_line = i == 0 || data[i - 1] == b'\n';
        let blank_before =
            i == 0 || data[..i].ends_with(b"\n\n") || data[..i].ends_with(b"\r\n\r\n");
        if at_line && blank_before && data[i..].starts_with(b"From ") {
            let line_end = data[i..].iter().position(|&c| c == b'\n').unwrap();
            let line = String::from_utf8_lossy(&data[i..i + line_end]);
            if line.contains(':') && line.split_whitespace().last().unwrap().len() == 4 {
                v.push(i as u64);
            }
        }
    }
    v
}

/// Compares message lists, reporting the first difference briefly (bodies are long).
fn same_messages(a: &Run, b: &Run, what: &str) {
    for (x, y) in a.messages.iter().zip(&b.messages) {
        assert_eq!(x.location, y.location, "{what}");
        assert!(x == y, "{what}: message at {:?} differs", x.location);
    }
    assert_eq!(a.messages.len(), b.messages.len(), "{what}");
}

#[test]
fn mboxo_splits_only_at_separators_and_keeps_offsets() {
    let path = fixture_str("mboxo.mbox");
    let run = scan(std::slice::from_ref(&path));
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    assert_eq!(
        ids(&run),
        ["m1@shop.example", "m2@shop.example", "m3@shop.example"]
    );
    let data = std::fs::read(&path).unwrap();
    let offsets: Vec<u64> = run
        .messages
        .iter()
        .map(|m| m.location.offset.unwrap())
        .collect();
    assert_eq!(offsets, separator_offsets(&data));
    let idx: Vec<u64> = run
        .messages
        .iter()
        .map(|m| m.location.index.unwrap())
        .collect();
    assert_eq!(idx, [1, 2, 3]);
    // The body line starting "From the desk" after a blank line stayed in message 1, and
    // its `>From ` line is unquoted for content inspection.
    let body = String::from_utf8_lossy(&run.messages[0].unquoted).into_owned();
    assert!(body.contains("\nFrom the desk of the manager"), "{body}");
    assert!(
        body.contains("\nFrom shop@shop.example Mon Jan  8"),
        "{body}"
    );
    assert!(!body.contains(">From"), "{body}");
    assert!(
        body.starts_with("From: Shop"),
        "separator line is not part of the message"
    );
    assert!(
        body.ends_with("writer.\n"),
        "separator blank line removed: {body:?}"
    );
    assert_eq!(run.stats.by_format.get(&Format::Mbox), Some(&3));
    assert_eq!(run.stats.files, 1);
    assert_eq!(run.stats.bytes, data.len() as u64);
}

#[test]
fn mboxrd_unquotes_one_level() {
    let run = scan(&[fixture_str("mboxrd.mbox")]);
    assert_eq!(ids(&run), ["rd1@corp.example", "rd2@corp.example"]);
    let body = String::from_utf8_lossy(&run.messages[0].unquoted).into_owned();
    assert!(body.contains("\nFrom the archive: one level.\n"), "{body}");
    assert!(body.contains("\n>From a@b.example Thu Feb  1"), "{body}");
    assert!(body.contains("\n>Fromage is not"), "{body}");
}

#[test]
fn crlf_mbox() {
    let path = fixture_str("crlf.mbox");
    let data = std::fs::read(&path).unwrap();
    assert!(
        data.windows(2).any(|w| w == b"\r\n"),
        "fixture lost its CRLF line ends"
    );
    let run = scan(std::slice::from_ref(&path));
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    assert_eq!(ids(&run), ["crlf1@corp.example", "crlf2@corp.example"]);
    assert_eq!(run.messages[1].subject.as_deref(), Some("crlf two"));
    let offsets: Vec<u64> = run
        .messages
        .iter()
        .map(|m| m.location.offset.unwrap())
        .collect();
    assert_eq!(offsets, separator_offsets(&data));
    assert!(run.messages[0].unquoted.ends_with(b"not a separator\r\n"));
}

#[test]
fn truncated_last_message_is_reported_and_still_read() {
    let path = fixture_str("truncated.mbox");
    for opts in [ScanOptions::default(), streaming(4096)] {
        let run = scan_with(std::slice::from_ref(&path), opts);
        assert_eq!(run.messages.len(), 2);
        assert_eq!(run.problems.len(), 1, "{:?}", run.problems);
        let p = &run.problems[0];
        assert_eq!(p.kind, ProblemKind::Truncated);
        assert_eq!(p.level, ProblemLevel::Error);
        assert_eq!(p.location.index, Some(2));
        assert_eq!(p.location.offset, run.messages[1].location.offset);
        assert!(run.stats.had_errors());
        assert_eq!(run.stats.truncated, 1);
    }
}

#[test]
fn malformed_message_is_reported_with_location_and_the_rest_read() {
    let path = fixture_str("malformed.mbox");
    let data = std::fs::read(&path).unwrap();
    let run = scan(std::slice::from_ref(&path));
    assert_eq!(ids(&run), ["mf1@corp.example", "mf3@corp.example"]);
    assert_eq!(run.problems.len(), 1);
    let p = &run.problems[0];
    assert_eq!(p.kind, ProblemKind::Malformed);
    assert_eq!(p.level, ProblemLevel::Error);
    assert_eq!(p.location.index, Some(2));
    assert_eq!(
        Some(p.location.offset.unwrap()),
        separator_offsets(&data).get(1).copied()
    );
    assert!(!p.reason.is_empty());
    assert_eq!(run.stats.malformed, 1);
    assert_eq!(run.messages[1].location.index, Some(3));
}

#[test]
fn header_warnings_become_warning_problems_with_their_code_after_the_message() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/headers/no-domain.eml")
        .to_string_lossy()
        .into_owned();
    let run = scan(std::slice::from_ref(&path));
    assert_eq!(run.messages.len(), 1);
    let p = &run.problems[0];
    assert_eq!(
        (p.kind, p.level, p.detail_code),
        (
            ProblemKind::HeaderWarning,
            ProblemLevel::Warning,
            Some(HeaderWarningKind::AddressWithoutDomain)
        )
    );
    assert_eq!(p.reason, "address without domain in To: john");
    assert!(run.order[0].starts_with("M "), "{:?}", run.order);
    assert_eq!(run.stats.warnings, run.problems.len() as u64);
    assert_eq!(run.stats.errors, 0);
    // Other problems have no detail code.
    let run = scan(&[fixture_str("malformed.mbox")]);
    assert_eq!(run.problems[0].detail_code, None);
}

#[test]
fn maildir_reads_cur_and_new_and_skips_tmp() {
    let run = scan(&[fixture_str("maildir")]);
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    assert_eq!(ids(&run), ["md1@corp.example", "md2@corp.example"]);
    assert!(run.messages.iter().all(|m| m.format == Format::Maildir));
    assert!(run.messages[0].location.path.contains("/cur/"));
    assert!(run.messages[1].location.path.contains("/new/"));
    assert!(run.messages.iter().all(|m| m.location.offset.is_none()));
    assert_eq!(run.stats.files, 2);
    // A single Maildir file given directly is labelled Maildir too.
    let one = scan(&[fixture_str("maildir/new/1704800000.M2P2.host")]);
    assert_eq!(one.messages[0].format, Format::Maildir);
}

#[test]
fn export_folders_detect_by_content_in_path_order() {
    let run = scan(&[fixture_str("exports")]);
    let names: Vec<String> = run
        .order
        .iter()
        .map(|o| o.rsplit("readers/exports/").next().unwrap().to_string())
        .collect();
    let expected_files = [
        "2024 Q1/deep er/noext",
        "2024 Q1/message.msg.txt",
        "2024 Q1/one-message.txt",
        "a.eml",
        "misc/empty.eml",
        "misc/junk.bin",
        "misc/notes.txt",
    ];
    assert_eq!(names.len(), expected_files.len(), "{:?}", run.order);
    for (n, f) in names.iter().zip(expected_files) {
        assert!(n.starts_with(f), "{n} vs {f}");
    }
    let formats: Vec<Format> = run.messages.iter().map(|m| m.format).collect();
    assert_eq!(
        formats,
        [Format::Eml, Format::Eml, Format::Mbox, Format::Eml]
    );
    assert_eq!(run.messages[2].location.index, Some(1));
    assert_eq!(run.messages[0].subject.as_deref(), Some("nameless file"));
    assert_eq!(run.messages[3].subject.as_deref(), Some("Angebot für Sie"));
    assert_eq!(run.stats.not_mail, 3);
    assert!(run
        .problems
        .iter()
        .all(|p| p.kind == ProblemKind::NotMail && p.level == ProblemLevel::Error));
    // Nothing in them was audited: errors (exit 2), the mail beside them is read all the same.
    assert!(run.stats.had_errors());
    let why: Vec<&str> = run.problems.iter().map(|p| p.reason.as_str()).collect();
    assert!(why[0].contains("looks like an empty file"), "{why:?}");
    assert!(why[1].contains("looks like binary data"), "{why:?}");
    assert_eq!(run.stats.files, 7);
}

#[test]
fn format_override() {
    // A whole mbox read as one message.
    let eml = ScanOptions {
        format: Some(Format::Eml),
        ..ScanOptions::default()
    };
    let run = scan_with(&[fixture_str("mboxo.mbox")], eml);
    assert_eq!(ids(&run), ["m1@shop.example"]);
    assert_eq!(run.messages[0].format, Format::Eml);
    // A message file read as an mbox without a separator line.
    let mbox = ScanOptions {
        format: Some(Format::Mbox),
        ..ScanOptions::default()
    };
    let run = scan_with(&[fixture_str("exports/a.eml")], mbox);
    assert_eq!(ids(&run), ["e1@corp.example"]);
    assert_eq!(run.messages[0].location.index, Some(1));
    assert_eq!(run.messages[0].format, Format::Mbox);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// A synthetic mbox of `n` messages with varied sizes and `>From ` lines.
fn synthetic(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        write!(
            out,
            "From sender@corp.example Mon Jan  8 09:{:02}:00 2024\nFrom: s@corp.example\nTo: r{i}@gmail.com\nSubject: s{i}\nMessage-ID: <{i}@syn>\n\n",
            i % 60
        )
        .unwrap();
        for l in 0..(i * 13 % 97) {
            writeln!(out, "line {l} of message {i} with some padding text").unwrap();
        }
        if i % 7 == 0 {
            out.extend_from_slice(b">From someone Mon Jan  8 09:00:00 2024\n");
        }
        out.push(b'\n');
    }
    out
}

#[test]
fn gzip_and_zstd_by_magic_bytes_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(fixture("mboxo.mbox")).unwrap();
    let gz = dir.path().join("archive.txt");
    let zs = dir.path().join("nameless");
    let multi = dir.path().join("multi.gz");
    std::fs::write(&gz, gzip(&plain)).unwrap();
    std::fs::write(&zs, zstd(&plain)).unwrap();
    // Multi-member gzip: two members concatenated read as one stream.
    let half = separator_offsets(&plain)[1] as usize;
    let mut two = gzip(&plain[..half]);
    two.extend(gzip(&plain[half..]));
    std::fs::write(&multi, two).unwrap();
    let want = scan(&[fixture_str("mboxo.mbox")]);
    for p in [&gz, &zs, &multi] {
        let run = scan(&[p.to_string_lossy().into_owned()]);
        assert!(run.problems.is_empty(), "{p:?}: {:?}", run.problems);
        assert_eq!(ids(&run), ids(&want), "{p:?}");
        let offs = |r: &Run| {
            r.messages
                .iter()
                .map(|m| m.location.offset)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            offs(&run),
            offs(&want),
            "offsets in the decompressed stream"
        );
        assert_eq!(run.messages[0].unquoted, want.messages[0].unquoted);
    }
    // A compressed single message.
    let eml = dir.path().join("msg.eml.zst");
    std::fs::write(
        &eml,
        zstd(&std::fs::read(fixture("exports/a.eml")).unwrap()),
    )
    .unwrap();
    let run = scan(&[eml.to_string_lossy().into_owned()]);
    assert_eq!(ids(&run), ["e1@corp.example"]);
    assert_eq!(run.messages[0].format, Format::Eml);
}

#[test]
fn truncated_compressed_streams_report_and_keep_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let plain = synthetic(400);
    for (name, packed) in [("t.gz", gzip(&plain)), ("t.zst", zstd(&plain))] {
        let p = dir.path().join(name);
        std::fs::write(&p, &packed[..packed.len() / 2]).unwrap();
        let run = scan_with(&[p.to_string_lossy().into_owned()], streaming(8192));
        let trunc: Vec<_> = run
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Truncated && p.level == ProblemLevel::Error)
            .collect();
        assert!(!trunc.is_empty(), "{name}: {:?}", run.problems);
        assert!(trunc.iter().all(|p| p.location.path.ends_with(name)));
        assert!(
            run.messages.len() > 50 && run.messages.len() < 400,
            "{name}: {}",
            run.messages.len()
        );
        // What was read is in order and intact.
        for (i, m) in run.messages.iter().enumerate() {
            assert_eq!(m.message_id.as_deref(), Some(format!("{i}@syn").as_str()));
        }
        assert!(run.stats.had_errors());
    }
}

#[test]
fn stream_failing_within_the_first_bytes_keeps_what_was_read() {
    // Stored (level 0) gzip keeps the bytes in order, so a cut stream still yields a prefix.
    let dir = tempfile::tempdir().unwrap();
    let plain = synthetic(12);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(&plain).unwrap();
    let packed = e.finish().unwrap();
    let p = dir.path().join("early.gz");
    std::fs::write(&p, &packed[..packed.len() * 3 / 4]).unwrap();
    assert!(
        plain.len() < 64 * 1024,
        "the failure must happen while sniffing"
    );
    let run = scan(&[p.to_string_lossy().into_owned()]);
    assert!(
        !run.messages.is_empty() && run.messages.len() < 12,
        "{}",
        run.messages.len()
    );
    let trunc: Vec<_> = run
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Truncated && p.level == ProblemLevel::Error)
        .collect();
    assert_eq!(trunc.len(), 1, "{:?}", run.problems);
    assert!(trunc[0].location.offset.unwrap() > 0);
}

#[test]
fn streaming_in_small_blocks_matches_whole_file_reading() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(1500);
    let p = dir.path().join("big.mbox");
    std::fs::write(&p, &data).unwrap();
    let input = [p.to_string_lossy().into_owned()];
    let whole = scan_with(
        &input,
        ScanOptions {
            small_file_bytes: 64 << 20,
            ..ScanOptions::default()
        },
    );
    assert_eq!(whole.messages.len(), 1500);
    let offsets: Vec<u64> = whole
        .messages
        .iter()
        .map(|m| m.location.offset.unwrap())
        .collect();
    assert_eq!(offsets, separator_offsets(&data));
    for (block, threads) in [
        (4096, Some(1)),
        (5000, Some(2)),
        (1 << 16, None),
        (300, Some(2)),
    ] {
        let run = scan_with(
            &input,
            ScanOptions {
                threads,
                ..streaming(block)
            },
        );
        assert!(run.problems.is_empty(), "{:?}", run.problems);
        same_messages(&run, &whole, &format!("block {block}"));
        assert_eq!(run.stats.bytes, data.len() as u64);
    }
}

#[test]
fn message_over_the_limit_is_an_error_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = synthetic(3);
    let big_at = data.len() as u64;
    data.extend_from_slice(b"From a@b Mon Jan  8 09:00:00 2024\nSubject: huge\n\n");
    data.extend(std::iter::repeat_n(b'z', 200_000));
    data.extend_from_slice(b"\n\n");
    data.extend(synthetic(2));
    let p = dir.path().join("huge.mbox");
    std::fs::write(&p, &data).unwrap();
    let run = scan_with(
        &[p.to_string_lossy().into_owned()],
        ScanOptions {
            max_message_bytes: 50_000,
            ..streaming(8192)
        },
    );
    assert_eq!(ids(&run), ["0@syn", "1@syn", "2@syn", "0@syn", "1@syn"]);
    assert_eq!(run.problems.len(), 1, "{:?}", run.problems);
    let p = &run.problems[0];
    assert_eq!(
        (p.kind, p.level),
        (ProblemKind::Malformed, ProblemLevel::Error)
    );
    assert_eq!(p.location.offset, Some(big_at));
    assert_eq!(p.location.index, Some(4));
    assert_eq!(run.messages[3].location.index, Some(5));
    // Within the limit, the buffer grows and the message is read.
    let run = scan_with(&[p.location.path.to_string()], streaming(8192));
    assert_eq!(run.messages.len(), 6);
    assert!(run.problems.is_empty());
}

#[test]
fn symlink_loop_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(fixture("exports/a.eml"), sub.join("m.eml")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("a"), sub.join("loop")).unwrap();
    std::os::unix::fs::symlink("self", dir.path().join("self")).unwrap();
    let run = scan(&[dir.path().to_string_lossy().into_owned()]);
    assert_eq!(ids(&run), ["e1@corp.example"]);
    assert!(run
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Unreadable && p.reason.contains("loop")));
}

#[test]
fn unreadable_inputs_are_errors_and_the_rest_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir
        .path()
        .join("missing.mbox")
        .to_string_lossy()
        .into_owned();
    let not_dir = format!("{}/child", fixture_str("mboxrd.mbox"));
    let run = scan(&[missing.clone(), fixture_str("mboxrd.mbox"), not_dir]);
    assert_eq!(ids(&run), ["rd1@corp.example", "rd2@corp.example"]);
    assert_eq!(run.stats.unreadable, 2);
    assert!(run.stats.had_errors());
    assert_eq!(&*run.problems[0].location.path, missing.as_str());
    assert_eq!(run.problems[0].level, ProblemLevel::Error);
}

#[test]
fn output_order_does_not_depend_on_threads() {
    let inputs = [fixture_str(""), fixture_str("mboxo.mbox")];
    let small = |threads| ScanOptions {
        threads: Some(threads),
        chunk_files: 3,
        ..ScanOptions::default()
    };
    let one = scan_with(&inputs, small(1));
    let two = scan_with(&inputs, small(2));
    assert_eq!(one.order, two.order);
    same_messages(&one, &two, "1 vs 2 threads");
    assert!(one.messages.len() >= 18, "{}", one.messages.len());
}

/// Every file of real mail is accounted for: a message, or a problem that says why not. The
/// subset shipped in `fixtures/corpus/` always; the whole corpus in `../shared` when present
/// (required under CI).
#[test]
fn spamassassin_corpus_is_read_without_panic_and_fully_accounted_for() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let subset = repo.join("fixtures/corpus/spamassassin");
    assert!(corpus_accounted_for(&subset) > 20);
    let root = repo.join("../shared/corpora/spamassassin");
    if root.exists() {
        assert!(corpus_accounted_for(&root) > 3000);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have {}",
            root.display()
        );
        eprintln!("skipped: {} is not present (a fresh clone)", root.display());
    }
}

/// Scans `root`; every file is a message or a problem. Returns the messages read.
fn corpus_accounted_for(root: &Path) -> usize {
    let files = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    let run = scan(&[root.to_string_lossy().into_owned()]);
    assert_eq!(run.stats.files as usize, files);
    let mut accounted = std::collections::BTreeSet::new();
    for m in &run.messages {
        accounted.insert(m.location.path.clone());
    }
    for p in &run.problems {
        if matches!(
            p.kind,
            ProblemKind::Malformed | ProblemKind::NotMail | ProblemKind::Unreadable
        ) {
            assert!(!p.reason.is_empty());
            accounted.insert(p.location.path.clone());
        }
    }
    assert_eq!(accounted.len(), files);
    assert!(run.messages.len() + (run.stats.malformed + run.stats.not_mail) as usize >= files);
    run.messages.len()
}

/// Regression guard for the overlapped pipeline (several blocks in flight, emitted in order):
/// an over-size message between blocks is reported exactly where it stands in the archive,
/// after every message before it and before every message after it, whatever the threads.
#[test]
fn oversize_message_between_blocks_is_reported_in_archive_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = synthetic(120);
    let big_at = data.len() as u64;
    data.extend_from_slice(
        b"From big@shop.example Mon Jan  1 00:00:00 2024\nFrom: big@shop.example\n\
          To: a@one.example, b@two.example\nSubject: big\nMessage-ID: <big@shop.example>\n\n",
    );
    for _ in 0..400 {
        data.extend_from_slice(&[b'x'; 99]);
        data.push(b'\n');
    }
    data.push(b'\n');
    data.extend_from_slice(&synthetic(120));
    let p = dir.path().join("big.mbox");
    std::fs::write(&p, &data).unwrap();
    let input = [p.to_string_lossy().into_owned()];
    for threads in [Some(1), Some(2), None] {
        let run = scan_with(
            &input,
            ScanOptions {
                threads,
                max_message_bytes: 8192,
                ..streaming(2048)
            },
        );
        assert_eq!(run.messages.len(), 240, "threads {threads:?}");
        assert_eq!(run.problems.len(), 1, "{:?}", run.problems);
        assert_eq!(run.problems[0].location.offset, Some(big_at));
        let p_pos = run.order.iter().position(|o| o.starts_with("P ")).unwrap();
        assert_eq!(
            p_pos, 120,
            "problem emitted out of order with threads {threads:?}"
        );
        let offsets: Vec<u64> = run
            .messages
            .iter()
            .map(|m| m.location.offset.unwrap())
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "messages out of order"
        );
        assert!(offsets[119] < big_at && offsets[120] > big_at);
    }
}
