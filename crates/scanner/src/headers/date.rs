//! The Date header: `mailparse::dateparse` first, then a repair of the real-world forms it
//! rejects.

/// Epoch seconds of a Date value, `None` when no known form parses.
pub(super) fn parse_date(v: &str) -> Option<i64> {
    if let Some(t) = rfc5322_date(v.as_bytes()) {
        return Some(t);
    }
    parse_date_general(v)
}

/// The general path of [`parse_date`]: every form it knows.
fn parse_date_general(v: &str) -> Option<i64> {
    // dateparse walks years one step at a time; never give it a huge number.
    let absurd = v
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() > 4);
    if absurd {
        return None;
    }
    // dateparse answers Ok(0) when it found no day/month/year at all ("garbage"); the epoch
    // itself is never a real message date, so 0 means unparsed.
    mailparse::dateparse(v)
        .ok()
        .filter(|&t| t != 0)
        .or_else(|| normalise_date(v).and_then(|n| mailparse::dateparse(&n).ok()))
}

/// The common RFC 5322 form, `[Www, ]D Mon YYYY HH:MM:SS +ZZZZ[ (Zone)]` with single spaces,
/// read in one pass (`dateparse` splits and upper-cases each token: ~2% of a scan's CPU).
/// `Some` only where [`parse_date_general`] gives the same answer (property-tested); `None`
/// hands everything else to it.
fn rfc5322_date(b: &[u8]) -> Option<i64> {
    let mut i = 0;
    if b.len() > 5 && b[..3].iter().all(u8::is_ascii_alphabetic) && &b[3..5] == b", " {
        i = 5;
    }
    let two = |at: usize| -> Option<i64> {
        match b.get(at..at + 2)? {
            [h @ b'0'..=b'9', l @ b'0'..=b'9'] => Some(i64::from((h - b'0') * 10 + (l - b'0'))),
            _ => None,
        }
    };
    // Day: one or two digits, 1-31 (dateparse's range; a day past the month's end counts on).
    let day = match (b.get(i).copied(), b.get(i + 1).copied()) {
        (Some(d @ b'0'..=b'9'), Some(b' ')) => {
            i += 2;
            i64::from(d - b'0')
        }
        _ => {
            let d = two(i)?;
            i += 3;
            if b.get(i - 1) != Some(&b' ') {
                return None;
            }
            d
        }
    };
    if !(1..=31).contains(&day) {
        return None;
    }
    let month = MONTHS
        .iter()
        .position(|m| b.get(i..i + 3) == Some(m.as_bytes()))?;
    i += 3;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let year = two(i + 1)? * 100 + two(i + 3)?;
    i += 5;
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let (h, m, s) = (two(i + 1)?, two(i + 4)?, two(i + 7)?);
    if b.get(i) != Some(&b' ') || b.get(i + 3) != Some(&b':') || b.get(i + 6) != Some(&b':') {
        return None;
    }
    i += 9;
    // Zone: a sign and four digits; dateparse takes it as the number HHMM (up to 2400).
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let sign = match b.get(i + 1)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zone = two(i + 2)? * 100 + two(i + 4)?;
    i += 6;
    if zone > 2400 {
        return None;
    }
    // A zone comment or nothing after it; no digits there (a long run of them makes the
    // general path give up).
    let rest = &b[i..];
    if !(rest.is_empty() || rest[0] == b' ') || rest.iter().any(u8::is_ascii_digit) {
        return None;
    }
    // The month's first day from chrono (the calendar `time.rs` uses); a day past the
    // month's end counts on, as dateparse counts it.
    let first = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32 + 1, 1)?;
    let midnight = first.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    let t = midnight + (day - 1) * 86_400 + h * 3600 + m * 60 + s
        - sign * (zone / 100 * 3600 + zone % 100 * 60);
    // 0 is "unparsed" to the general path: let it decide.
    (t != 0).then_some(t)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Rewrites a Date that `dateparse` rejects into `D Mon YYYY HH:MM:SS +ZZZZ`, for the forms
/// real archives hold (seen in the SpamAssassin corpus): no seconds (`07:26 -0400`), Y2K-bug
/// years (`0102` = 2002), `+-0500`, `GMT+1`, comments, asctime order (`Sat Sep 21 08:18:08
/// 2002`), `2002/09/14`, and spelled-out zone names (taken as UTC: a few hours off beats no
/// date). `None` when no day, month, year and time can be found.
fn normalise_date(v: &str) -> Option<String> {
    let mut plain = String::with_capacity(v.len());
    let mut depth = 0usize;
    for c in v.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(if c == ',' { ' ' } else { c }),
            _ => {}
        }
    }
    let (mut day, mut month, mut year, mut time, mut tz) = (None, None, None, None, None);
    for tok in plain.split_whitespace() {
        let digits = tok.bytes().all(|b| b.is_ascii_digit());
        if tok.contains(':') && time.is_none() {
            let parts: Vec<&str> = tok.split(':').collect();
            let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u8>().ok());
            if let (Some(h), Some(m)) = (num(0), num(1)) {
                time = Some((h, m, num(2).unwrap_or(0)));
                continue;
            }
        }
        if let Some((y, rest)) = tok.split_once(['/', '-']).filter(|(y, _)| y.len() == 4) {
            let mut it = rest.split(['/', '-']);
            if let (Ok(y), Some(Ok(m)), Some(Ok(d))) = (
                y.parse::<u32>(),
                it.next().map(str::parse::<usize>),
                it.next().map(str::parse::<u8>),
            ) {
                (year, month, day) = (Some(y), m.checked_sub(1).filter(|m| *m < 12), Some(d));
                continue;
            }
        }
        if digits && tok.len() <= 2 && day.is_none() {
            day = tok.parse::<u8>().ok();
        } else if digits && (3..=4).contains(&tok.len()) && year.is_none() {
            let y: u32 = tok.parse().ok()?;
            year = Some(if y < 1000 { y + 1900 } else { y });
        } else if digits && tok.len() == 2 && year.is_none() {
            let y: u32 = tok.parse().ok()?;
            year = Some(if y < 50 { 2000 + y } else { 1900 + y });
        } else if month.is_none() && tok.len() >= 3 && tok.is_char_boundary(3) {
            month = MONTHS
                .iter()
                .position(|m| m.eq_ignore_ascii_case(&tok[..3]));
            if month.is_some() {
                continue;
            }
        }
        if tz.is_none() && time.is_some() {
            let t = tok.trim_start_matches('+');
            let t = if tok.starts_with("+-") {
                tok.trim_start_matches('+')
            } else {
                t
            };
            let sign_num = |s: &str| -> Option<i32> {
                let (sign, rest) = match s.as_bytes().first()? {
                    b'-' => (-1, &s[1..]),
                    b'+' => (1, &s[1..]),
                    _ => (1, s),
                };
                let n: i32 = rest.parse().ok()?;
                Some(sign * if rest.len() <= 2 { n * 100 } else { n })
            };
            if tok.starts_with(['+', '-']) {
                tz = sign_num(if tok.starts_with("+-") { t } else { tok });
            } else if let Some(off) = tok
                .strip_prefix("GMT")
                .or_else(|| tok.strip_prefix("UTC"))
                .filter(|r| !r.is_empty())
            {
                tz = sign_num(off);
            }
        }
    }
    let (day, month, year, (h, m, s)) = (day?, month?, year?, time?);
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let tz = tz.filter(|t| (-2400..=2400).contains(t)).unwrap_or(0);
    let sign = if tz < 0 { '-' } else { '+' };
    Some(format!(
        "{day} {} {year} {h:02}:{m:02}:{s:02} {sign}{:04}",
        MONTHS[month],
        tz.abs()
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;
    use proptest::prelude::*;

    fn zone() -> impl Strategy<Value = String> {
        prop_oneof![
            ("[+-]", 0u32..=2499).prop_map(|(s, z)| format!("{s}{z:04}")),
            Just("GMT".to_owned()),
            Just("+-0500".to_owned()),
            Just("EST".to_owned()),
        ]
    }

    proptest! {
        /// The one-pass reader gives the general path's answer wherever it answers, on the
        /// canonical form and on its near misses (one-digit fields, out-of-range numbers,
        /// lowercase months, zone comments, trailing text).
        #[test]
        fn rfc5322_date_agrees_with_the_general_path(
            weekday in prop_oneof![Just(""), Just("Mon, "), Just("Thu,"), Just("1, ")],
            day in 0u32..40,
            pad in any::<bool>(),
            month in prop_oneof![
                (0usize..12).prop_map(|m| MONTHS[m].to_owned()),
                Just("jan".to_owned()),
                Just("Foo".to_owned()),
            ],
            year in prop_oneof![1900u32..2200, 9990u32..10_010, 0u32..100],
            (h, m, s) in (0u32..30, 0u32..70, 0u32..70),
            one_digit_hour in any::<bool>(),
            zone in zone(),
            tail in prop_oneof![Just(""), Just(" (UTC)"), Just(" (PDT) 12"), Just("x"), Just("  ")],
        ) {
            let day = if pad { format!("{day:02}") } else { day.to_string() };
            let hour = if one_digit_hour { h.to_string() } else { format!("{h:02}") };
            let v = format!("{weekday}{day} {month} {year} {hour}:{m:02}:{s:02} {zone}{tail}");
            if let Some(t) = rfc5322_date(v.as_bytes()) {
                prop_assert_eq!(Some(t), parse_date_general(&v), "{}", v);
            }
        }

        /// Any bytes: the reader never panics, and agrees wherever it answers.
        #[test]
        fn rfc5322_date_on_any_text(v in "[0-9A-Za-z ,:+()-]{0,40}") {
            if let Some(t) = rfc5322_date(v.as_bytes()) {
                prop_assert_eq!(Some(t), parse_date_general(&v), "{}", v);
            }
        }
    }

    #[test]
    fn rfc5322_date_reads_the_common_forms() {
        for (v, want) in [
            ("Sun, 02 Oct 2016 07:06:22 -0700 (PDT)", 1_475_417_182),
            ("Thu, 1 Jan 2026 00:00:00 +0000", 1_767_225_600),
            ("29 Feb 2024 23:59:60 +0130", 1_709_245_800),
            ("Fri, 31 Dec 2400 00:00:00 +0000", 13_601_001_600),
        ] {
            assert_eq!(rfc5322_date(v.as_bytes()), Some(want), "{v}");
            assert_eq!(parse_date_general(v), Some(want), "{v}");
        }
        // Left to the general path: its repairs, and the epoch (0 means unparsed there).
        for v in [
            "Fri, 23 Aug 2002 07:26 -0400",
            "Mon, 26 Aug 0102 23:12:40 -0700",
            "Thu, 1 Jan 1970 00:00:00 +0000",
            "Thu, 1 Jan 2026 00:00:00 GMT",
            "Thu,  1 Jan 2026 00:00:00 +0000",
        ] {
            assert_eq!(rfc5322_date(v.as_bytes()), None, "{v}");
        }
    }

    #[test]
    fn absurd_date_year_is_not_parsed() {
        let e = parse("Date: 1 Jan 4294967295 00:00:00 +0000\n\n");
        assert_eq!(e.date, None);
        let e = parse("Date: Thu, 1 Jan 2026 00:00:00 +0000\n\n");
        assert_eq!(e.date, Some(1_767_225_600));
    }

    #[test]
    fn real_world_dates_mailparse_rejects() {
        // Each form seen in the SpamAssassin corpus; mailparse::dateparse fails on all.
        for (raw, want) in [
            ("Fri, 23 Aug 2002 07:26 -0400", "23 Aug 2002 07:26:00 -0400"),
            (
                "Mon, 26 Aug 0102 23:12:40 -0700",
                "26 Aug 2002 23:12:40 -0700",
            ),
            (
                "Thu, 29 Aug 2002 15:36:58 +-0500",
                "29 Aug 2002 15:36:58 -0500",
            ),
            (
                "Fri, 20 Sep 2002 12:15:37 GMT+1",
                "20 Sep 2002 12:15:37 +0100",
            ),
            (
                "Mon, 16 Sep 2002 03:27:38 (GMT)",
                "16 Sep 2002 03:27:38 +0000",
            ),
            ("Sat Sep 21 08:18:08 2002", "21 Sep 2002 08:18:08 +0000"),
            ("2002/09/14 Sat 02:29:32 CDT", "14 Sep 2002 02:29:32 +0000"),
            (
                "Fri, 30 Aug 02 05:32:48 Eastern Daylight Time",
                "30 Aug 2002 05:32:48 +0000",
            ),
        ] {
            assert!(
                mailparse::dateparse(raw).map_or(true, |t| t == 0),
                "{raw} now parses"
            );
            assert_eq!(normalise_date(raw).as_deref(), Some(want), "{raw}");
            let e = parse(&format!("Date: {raw}\n\n"));
            assert_eq!(e.date, mailparse::dateparse(want).ok(), "{raw}");
            assert!(e.warnings.is_empty(), "{raw}: {:?}", e.warnings);
        }
        assert_eq!(normalise_date("garbage"), None);
        assert_eq!(normalise_date("32 Jan 2002 10:00"), None);
    }
}
