//! The Date header: `mailparse::dateparse` first, then a repair of the real-world forms it
//! rejects.

/// Epoch seconds of a Date value, `None` when no known form parses.
pub(super) fn parse_date(v: &str) -> Option<i64> {
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
