//! Which lines of a decoded text are the sender's own and which quote an earlier message.
//!
//! A reply or forward carries the original: `>`-quoted lines, an attribution ("On ..., X
//! wrote:"), an Outlook/Lotus/Gmail separator ("-----Original Message-----", "Forwarded by
//! ... on ...", "---------- Forwarded message ---------") or a bare header block
//! ("From:/Sent:/To:/Cc:/Subject:", Lotus "To: ... cc: ... Subject:"). Addresses there were
//! shown by whoever wrote the original, not by this sender; content rules count only the
//! rest, and triage uses them to tell a reply-all from a new exposure.
//!
//! Rules, from real Sent folders (Enron, SpamAssassin):
//! - a line whose first non-blank character is `>` is quoted (any depth);
//! - a separator or a header block starts the original: everything after it is quoted
//!   (top-posting); a Lotus attribution just above a header block ("Name" / date line,
//!   "From: Name  03/13/2000 01:43 PM", "x@y on 12/18/2000 07:07 PM") belongs to it;
//! - an attribution followed by `>` lines quotes only itself (the `>` lines are quoted on
//!   their own and text after them is a new, interleaved answer); without `>` lines after it,
//!   everything after it is quoted;
//! - Eudora's "--- begin forwarded text" is quoted up to "--- end forwarded text".
//!
//! HTML `<blockquote>` content arrives here as `>` lines: [`quoted_addresses`] decodes HTML
//! with [`content::Layout::Quoting`].
//!
//! Work is linear in the text: markers are looked for only on lines that can hold one, and a
//! header block is looked for at most [`BLOCK_LOOKAHEAD`] lines ahead.

use crate::content::{self, Layout, Limits, Source};
use leakaudit_scanner::{Address, Message};
use regex::bytes::Regex;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

/// Lines looked at after a header label to find the rest of a header block (a Lotus `To:`
/// wraps a long list over many lines).
pub const BLOCK_LOOKAHEAD: usize = 64;
/// Most distinct addresses [`quoted_addresses`] returns for one message.
pub const MAX_QUOTED_ADDRESSES: usize = 10_000;
/// Bytes of a line looked at for a marker (attributions and separators are short).
const MARKER_PREFIX: usize = 400;
/// Header-block look-aheads per text; with [`BLOCK_LOOKAHEAD`] this bounds the work on a
/// text made of label-like lines (a CSV of `To:` rows) to linear.
const MAX_BLOCK_TRIES: usize = 1_000;

/// Separator lines that open a quoted original (Outlook, Lotus, Gmail, Thunderbird, Apple
/// Mail, Eudora, in the languages mailers localise them to).
static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^[ \t]*(?:-{2,}|_{2,})?[ \t]*(?:original message|original-nachricht|ursprüngliche nachricht|weitergeleitete nachricht|message d'origine|message d’origine|message transféré|message original|mensaje original|mensaje reenviado|messaggio originale|messaggio inoltrato|mensagem original|mensagem encaminhada|oorspronkelijk bericht|doorgestuurd bericht|originalmeddelande|vidarebefordrat meddelande|oprindelig meddelelse|videresendt meddelelse|opprinnelig melding|alkuperäinen viesti|wiadomość oryginalna|исходное сообщение|пересылаемое сообщение|forwarded message|forwarded by\b|forwarded e-?mail|forward message|original e-?mail)",
    )
    .expect("static regex")
});

/// Separators that need the leading dashes (the phrase alone is ordinary prose).
static DASHED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[ \t]*(?:-{2,}|_{2,})").unwrap());

/// "Begin forwarded message:" (Apple Mail) and its translations.
static BEGIN_FORWARDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[ \t]*(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié|inicio del mensaje reenviado|inizio messaggio inoltrato)[ \t]*:").unwrap()
});

static EUDORA_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^[ \t]*-{2,}[ \t]*begin forwarded text").unwrap());
static EUDORA_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^[ \t]*-{2,}[ \t]*end forwarded text").unwrap());

/// Attribution lines: the line ends with the verb and a colon.
static ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\b(?:wrote|writes|a écrit|a ecrit|escribió|escribio|escreveu|ha scritto|heeft geschreven|schreef|skrev|kirjoitti|napisał|napisal|pisze|написал|написала|написал\(а\)|yazdı)|\bschrieb\b.{0,200})[ \t]*:[ \t]*$",
    )
    .expect("static regex")
});

/// "On Mon, 2 Sep 2002, X said:": `said` only counts after an "On <date>" opening.
static ON_SAID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^[ \t]*on\b.{4,200}\bsaid[ \t]*:[ \t]*$").unwrap());

/// The start of an attribution wrapped over two lines ("On ..., Name <" / "x@y> wrote:").
static ATTRIBUTION_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[ \t]*(?:on|am|le|el|il|em|op|den|w dniu|in a message dated)\b").unwrap()
});

/// A Lotus Notes date: `03/23/2000`, `12/8/00`.
static SLASH_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b").unwrap());

/// Lotus' one-line table form: "Name 05/31/2001 11:55 AM  To: X  cc:  Subject: Y".
static LOTUS_ONE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bto:.*\bcc:.*\bsubject:").unwrap());

/// What a header label of a quoted header block stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    Sender,
    Date,
    Recipient(u8),
    Subject,
}

fn label_of(name: &str) -> Option<Label> {
    Some(match name {
        "from" | "von" | "de" | "da" | "van" | "från" | "fra" | "от" | "od" => Label::Sender,
        "sent"
        | "date"
        | "sent on"
        | "gesendet"
        | "datum"
        | "envoyé"
        | "envoyé le"
        | "enviado"
        | "enviado el"
        | "fecha"
        | "inviato"
        | "data"
        | "verzonden"
        | "skickat"
        | "sendt"
        | "отправлено"
        | "дата" => Label::Date,
        "to" | "an" | "à" | "a" | "para" | "aan" | "till" | "til" | "кому" | "do" => {
            Label::Recipient(0)
        }
        "cc" | "kopie" | "copie" | "cópia" | "копия" | "dw" => Label::Recipient(1),
        "bcc" | "cci" | "cco" | "bkopie" => Label::Recipient(2),
        "subject" | "betreff" | "objet" | "asunto" | "oggetto" | "onderwerp" | "ämne" | "emne"
        | "assunto" | "тема" | "temat" => Label::Subject,
        _ => return None,
    })
}

/// The header label a line starts with (`From:`, `*Sent:*`, `De :`, `Enviado el:`).
fn header_label(line: &[u8]) -> Option<Label> {
    let t = trim_start(line);
    let t = t.strip_prefix(b"*").unwrap_or(t);
    let colon = t.iter().take(24).position(|&b| b == b':')?;
    let name = std::str::from_utf8(&t[..colon]).ok()?;
    let name = name.trim_end_matches('*').trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-')
    {
        return None;
    }
    label_of(&name.to_lowercase())
}

fn trim_start(line: &[u8]) -> &[u8] {
    let n = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    &line[n..]
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

fn is_gt_quoted(line: &[u8]) -> bool {
    trim_start(line).first() == Some(&b'>')
}

/// One line: `start..end` covers it with its line break, `text` is without the break.
#[derive(Clone, Copy)]
struct Line<'t> {
    start: usize,
    end: usize,
    text: &'t [u8],
}

/// The lines of a text, found on demand from a neighbour: nothing is kept per line, so a
/// text of millions of short lines costs no memory.
#[derive(Clone, Copy)]
struct Lines<'t>(&'t [u8]);

impl<'t> Lines<'t> {
    fn first(self) -> Option<Line<'t>> {
        (!self.0.is_empty()).then(|| self.at(0))
    }

    fn at(self, start: usize) -> Line<'t> {
        let t = self.0;
        let end = memchr::memchr(b'\n', &t[start..]).map_or(t.len(), |p| start + p + 1);
        let mut body = &t[start..end];
        body = body.strip_suffix(b"\n").unwrap_or(body);
        body = body.strip_suffix(b"\r").unwrap_or(body);
        Line {
            start,
            end,
            text: body,
        }
    }

    fn next(self, l: &Line<'_>) -> Option<Line<'t>> {
        (l.end < self.0.len()).then(|| self.at(l.end))
    }

    fn prev(self, l: &Line<'_>) -> Option<Line<'t>> {
        if l.start == 0 {
            return None;
        }
        let start = memchr::memrchr(b'\n', &self.0[..l.start - 1]).map_or(0, |p| p + 1);
        Some(self.at(start))
    }
}

/// What a marker line starts.
enum Marker {
    /// Quoted from byte `first` to the end of the text.
    ToEnd { first: usize },
    /// An attribution from byte `first` to the end of the marker line.
    Attribution { first: usize },
    /// Eudora's begin/end forwarded text.
    Eudora,
}

/// Byte ranges of `text` that quote an earlier message: whole lines (with their line
/// breaks), sorted, disjoint and not adjacent.
pub fn quoted_ranges(text: &[u8]) -> Vec<Range<usize>> {
    let lines = Lines(text);
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut push = |r: Range<usize>| match out.last_mut() {
        Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
        _ => out.push(r),
    };
    let mut blocks = BlockSearch {
        tries: 0,
        no_block_before: 0,
    };
    let mut cur = lines.first();
    while let Some(l) = cur {
        cur = lines.next(&l);
        if is_gt_quoted(l.text) {
            push(l.start..l.end);
            continue;
        }
        match marker(lines, &l, &mut blocks) {
            None => {}
            Some(Marker::ToEnd { first }) => {
                push(first..text.len());
                break;
            }
            Some(Marker::Attribution { first }) => {
                let mut next = cur;
                while let Some(n) = next.filter(|n| is_blank(n.text)) {
                    next = lines.next(&n);
                }
                if next.is_some_and(|n| is_gt_quoted(n.text)) {
                    push(first..l.end);
                } else {
                    push(first..text.len());
                    break;
                }
            }
            Some(Marker::Eudora) => {
                let mut next = cur;
                while let Some(n) = next.filter(|n| !EUDORA_END.is_match(n.text)) {
                    next = lines.next(&n);
                }
                match next {
                    Some(end) => {
                        push(l.start..end.end);
                        cur = lines.next(&end);
                    }
                    None => {
                        push(l.start..text.len());
                        break;
                    }
                }
            }
        }
    }
    out
}

/// State of the header-block search over one text.
struct BlockSearch {
    tries: usize,
    /// Lines starting before this byte are inside a run already searched without finding a
    /// block: a run started later holds a subset of its labels, so it cannot be one either.
    no_block_before: usize,
}

/// Whether line `l` (not `>`-quoted) opens a quoted original, and where that starts.
fn marker(lines: Lines<'_>, l: &Line<'_>, blocks: &mut BlockSearch) -> Option<Marker> {
    let full = l.text;
    let t = &full[..full.len().min(MARKER_PREFIX)];
    let first = *trim_start(t).first()?;
    // Every marker starts with a dash or underscore rule, a letter or `*`, and all but the
    // dashed ones hold a colon: plain prose lines are rejected here without a regex.
    let dashed = first == b'-' || first == b'_';
    let colon = memchr::memchr(b':', t).is_some();
    if !dashed && !colon {
        return None;
    }
    if dashed {
        if EUDORA_BEGIN.is_match(t) {
            return Some(Marker::Eudora);
        }
        if DASHED.is_match(t) && SEPARATOR.is_match(t) {
            return Some(Marker::ToEnd { first: l.start });
        }
    }
    if !colon {
        return None;
    }
    if BEGIN_FORWARDED.is_match(t) {
        return Some(Marker::ToEnd { first: l.start });
    }
    if l.start >= blocks.no_block_before
        && blocks.tries < MAX_BLOCK_TRIES
        && header_label(t).is_some()
    {
        blocks.tries += 1;
        match header_block(lines, l) {
            Ok(()) => {
                return Some(Marker::ToEnd {
                    first: lotus_attribution_above(lines, l),
                })
            }
            Err(Some(run_end)) => blocks.no_block_before = run_end,
            Err(None) => {}
        }
    }
    if LOTUS_ONE_LINE.is_match(t) && SLASH_DATE.is_match(t) {
        return Some(Marker::ToEnd { first: l.start });
    }
    let trimmed_end = {
        let n = t
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |p| p + 1);
        &t[..n]
    };
    if trimmed_end.last() == Some(&b':')
        && full.len() <= MARKER_PREFIX
        && (ATTRIBUTION.is_match(t) || ON_SAID.is_match(t))
    {
        // "On Mon, 2 Sep 2002 at 10:00, Jane Doe <" + "jane@example.org> wrote:".
        let first = match lines.prev(l) {
            Some(p)
                if !ATTRIBUTION_START.is_match(t)
                    && !is_blank(p.text)
                    && !is_gt_quoted(p.text)
                    && ATTRIBUTION_START.is_match(p.text) =>
            {
                p.start
            }
            _ => l.start,
        };
        return Some(Marker::Attribution { first });
    }
    None
}

/// Whether a header block starts at line `l` (which has a header label): within its run of
/// lines (wrapped values continue without indentation; one blank line may separate labels),
/// a recipient label and another label of a different kind or a second recipient label.
/// Not a block: `Err(Some(end))` when the run ended at byte `end` inside the look-ahead,
/// `Err(None)` when the look-ahead cut it.
fn header_block(lines: Lines<'_>, l: &Line<'_>) -> Result<(), Option<usize>> {
    let mut labels: Vec<Label> = Vec::with_capacity(6);
    let mut blank_run = 0;
    let mut cur = Some(*l);
    for _ in 0..BLOCK_LOOKAHEAD {
        let Some(x) = cur else {
            return Err(Some(lines.0.len()));
        };
        cur = lines.next(&x);
        if is_blank(x.text) {
            blank_run += 1;
            if blank_run > 1 {
                return Err(Some(x.start));
            }
            continue;
        }
        let label = header_label(x.text);
        if (blank_run == 1 && label.is_none()) || is_gt_quoted(x.text) {
            return Err(Some(x.start));
        }
        blank_run = 0;
        if let Some(lb) = label {
            if !labels.contains(&lb) {
                labels.push(lb);
            }
            let recipients = labels
                .iter()
                .filter(|l| matches!(l, Label::Recipient(_)))
                .count();
            if recipients >= 1 && (labels.len() - recipients >= 1 || recipients >= 2) {
                return Ok(());
            }
        }
    }
    match cur {
        None => Err(Some(lines.0.len())),
        Some(_) => Err(None),
    }
}

/// The first byte of what belongs to a header block at line `l` above it: Outlook's rule
/// line (`_____`) directly above, or a Lotus attribution: up to six lines back, blank lines
/// skipped, lines with a `mm/dd/yyyy` date or a `From:` label, plus the name line directly
/// above a bare date line.
fn lotus_attribution_above(lines: Lines<'_>, l: &Line<'_>) -> usize {
    if let Some(p) = lines.prev(l) {
        let t = trim_start(p.text);
        let t = &t[..t
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |p| p + 1)];
        if t.len() >= 5 && (t.iter().all(|&b| b == b'_') || t.iter().all(|&b| b == b'-')) {
            return p.start;
        }
    }
    let mut first = l.start;
    let mut cur = *l;
    for _ in 0..6 {
        let Some(p) = lines.prev(&cur) else {
            break;
        };
        cur = p;
        let t = p.text;
        if is_blank(t) {
            continue;
        }
        let from = header_label(t) == Some(Label::Sender);
        if !(from || SLASH_DATE.is_match(t)) || is_gt_quoted(t) {
            break;
        }
        first = p.start;
        let bare_date = !from && trim_start(t).first().is_some_and(u8::is_ascii_digit);
        if bare_date {
            if let Some(name) = lines.prev(&p) {
                if !is_blank(name.text) && name.text.len() <= 80 && !is_gt_quoted(name.text) {
                    first = name.start;
                }
            }
            break;
        }
    }
    first
}

/// Whether byte `pos` lies in one of `ranges` (as returned by [`quoted_ranges`]).
pub fn in_ranges(ranges: &[Range<usize>], pos: usize) -> bool {
    let i = ranges.partition_point(|r| r.end <= pos);
    ranges.get(i).is_some_and(|r| r.start <= pos)
}

/// The new text and the quoted text of `text`, each the concatenation of its lines.
pub fn split_new_and_quoted(text: &str) -> (String, String) {
    let ranges = quoted_ranges(text.as_bytes());
    let mut new = String::with_capacity(text.len());
    let mut quoted = String::new();
    let mut at = 0;
    for r in ranges {
        // Ranges are whole lines: their bounds follow a `\n` or are the ends of the text.
        new.push_str(&text[at..r.start]);
        quoted.push_str(&text[r.clone()]);
        at = r.end;
    }
    new.push_str(&text[at..]);
    (new, quoted)
}

/// Canonical addresses in the quoted regions of `msg`'s decoded body parts, and every address
/// of a forwarded (`message/rfc822`) part; attachments are the sender's own content and are
/// left out. First-seen order, at most [`MAX_QUOTED_ADDRESSES`]; decoding is bounded by
/// [`Limits::default`].
pub fn quoted_addresses(msg: &Message<'_>) -> Vec<Address> {
    let raw = msg.unquoted();
    let segs = content::segments_with(&raw, &Limits::default(), Layout::Quoting);
    let mut seen: HashSet<Address> = HashSet::new();
    let mut out = Vec::new();
    for seg in &segs {
        if memchr::memchr(b'@', &seg.text).is_none() {
            continue;
        }
        let ranges = match seg.source() {
            Source::Attachment(_) => continue,
            Source::Forwarded => None,
            Source::Body => Some(quoted_ranges(&seg.text)),
        };
        if ranges.as_ref().is_some_and(Vec::is_empty) {
            continue;
        }
        for (pos, a) in content::addresses(&seg.text) {
            if ranges.as_ref().is_some_and(|r| !in_ranges(r, pos)) {
                continue;
            }
            if seen.insert(a.clone()) {
                out.push(a);
                if out.len() >= MAX_QUOTED_ADDRESSES {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quoted lines of `text`, trimmed, for assertions.
    fn quoted_lines(text: &str) -> Vec<String> {
        let (_, q) = split_new_and_quoted(text);
        q.lines().map(|l| l.trim().to_string()).collect()
    }

    fn new_text(text: &str) -> String {
        split_new_and_quoted(text).0
    }

    #[test]
    fn gt_lines_at_any_depth_with_or_without_space() {
        let t = "Yes.\n> a@x.com\n>> b@x.com\n> > c@x.com\n   >d@x.com\nNo => e@x.com\n";
        assert_eq!(
            quoted_lines(t),
            ["> a@x.com", ">> b@x.com", "> > c@x.com", ">d@x.com"]
        );
        assert_eq!(new_text(t), "Yes.\nNo => e@x.com\n");
    }

    // Enron, Outlook 2000: a reply above an indented separator and a tab-separated block.
    const OUTLOOK: &str = "Thanks, I'll call him.\r\n\r\n -----Original Message-----\r\nFrom: \tHawkins, Bernadette  \r\nSent:\tWednesday, June 20, 2001 9:59 AM\r\nTo:\tWalton, Steve; jalexander@gibbs-bruns.com; Allen, Phillip K.\r\nCc:\tlinda.noske@enron.com\r\nSubject:\tRe: Western Wholesale Activities\r\n\r\nPlease dial in.\r\n";

    #[test]
    fn outlook_original_message_quotes_everything_after_it() {
        let (new, quoted) = split_new_and_quoted(OUTLOOK);
        assert_eq!(new, "Thanks, I'll call him.\r\n\r\n");
        assert!(quoted.starts_with(" -----Original Message-----\r\n"));
        assert!(quoted.ends_with("Please dial in.\r\n"));
        assert_eq!(new.len() + quoted.len(), OUTLOOK.len());
    }

    #[test]
    fn separators_in_other_forms_and_languages() {
        for sep in [
            "----Original Message-----",
            "----- Original Message -----",
            "-------- Original Message --------",
            "-----Ursprüngliche Nachricht-----",
            "-----Message d'origine-----",
            "---------- Forwarded message ---------",
            "-------- Weitergeleitete Nachricht --------",
            "----- Forwarded by Sarah Novosel/Corp/Enron on 12/13/2000 04:39 PM -----",
            "Begin forwarded message:",
        ] {
            let t = format!("My note.\n{sep}\nSome text x@y.com\n");
            assert_eq!(new_text(&t), "My note.\n", "{sep}");
        }
        // The phrases alone, in prose, are not separators.
        let t = "The original message was lost.\nForwarded message follows soon.\n";
        assert!(quoted_ranges(t.as_bytes()).is_empty());
    }

    // Enron, Lotus Notes: the separator wraps, the forwarded mail has a name/date attribution.
    const LOTUS_FORWARD: &str = "Check the attachments.\n---------------------- Forwarded by Phillip K Allen/HOU/ECT on 03/24/2000 \n08:57 AM ---------------------------\n\n\nTim Heizenrader\n03/23/2000 08:09 AM\nTo: James B Fallon/HOU/ECT@ECT, Phillip K Allen/HOU/ECT@ECT\ncc:  \nSubject: Western Strategy Briefing Materials\n\nSlides attached.\n";

    #[test]
    fn lotus_forwarded_by_quotes_the_rest() {
        assert_eq!(new_text(LOTUS_FORWARD), "Check the attachments.\n");
    }

    #[test]
    fn lotus_attribution_above_a_bare_header_block_is_quoted() {
        // Without the separator: the name and date lines belong to the block.
        let t = "Okay, done.\n\n\n\nKerri Thompson@ENRON\n09/21/2000 08:42 AM\nTo: Mark Guzman/PDX/ECT@ECT\ncc:  \nSubject: Re: missing deals\n\nwhat about the other deals\n";
        assert_eq!(new_text(t), "Okay, done.\n\n\n\n");
        // "From: Name   date" separated from the block by blank lines.
        let t = "See below.\n\tFrom:  William Kelly                           03/13/2000 01:43 PM\n\t\n\nTo: Phillip K Allen/HOU/ECT@ECT, Steve Jackson/HOU/ECT@ECT\ncc:  \nSubject: \n\nWe have room EB3014.\n";
        assert_eq!(new_text(t), "See below.\n");
        // "addr on date" with a wrapped recipient list.
        let t = "fyi\n\"George Richards\" <cbpres@austin.rr.com> on 10/03/2000 06:35:56 AM\nTo: \"Phillip Allen\" <pallen@enron.com>, \"Keith\nHolst\" <kholst@enron.com>\ncc: \"Larry Lewter\" <retwell@mail.sanmarcos.net>\nSubject: Westgate\n\nbody\n";
        assert_eq!(new_text(t), "fyi\n");
    }

    #[test]
    fn lotus_from_on_date_with_a_wrapped_to_list() {
        let t = "Yes you can use this chart.\nFrom: Sarah Novosel@ENRON on 12/13/2000 04:39 PM CST\nTo: Steven J Kean/NA/Enron@Enron, Richard Shapiro/NA/Enron@Enron, James D \nSteffes/NA/Enron@Enron, Jeff Dasovich/NA/Enron@Enron, Susan J \nMara/NA/Enron@ENRON, Paul Kaufman/PDX/ECT@ECT\ncc:  \nSubject: \n\nAttached are two files.\n";
        assert_eq!(new_text(t), "Yes you can use this chart.\n");
    }

    #[test]
    fn lotus_one_line_table_form() {
        let t = "Dial-in below.\n\tRay Alvarez 05/31/2001 11:55 AM \t   To: Bernadette Hawkins/Corp/Enron@ENRON  cc:   Subject: Re: Western Wholesale\t\nbody\n";
        assert_eq!(new_text(t), "Dial-in below.\n");
    }

    #[test]
    fn localised_outlook_blocks_without_separator() {
        for block in [
            "________________________________\nFrom: Jane Roe <jane@client.example>\nSent: Monday, 2 March 2026 10:00\nTo: Ana <ana@shop.example>\nSubject: Order\n",
            "Von: Max Muster <max@kunde.example>\nGesendet: Montag, 2. März 2026 10:00\nAn: Ana <ana@shop.example>\nBetreff: Bestellung\n",
            "De : Jean Dupont <jean@client.example>\nEnvoyé : lundi 2 mars 2026 10:00\nÀ : Ana <ana@shop.example>\nObjet : Commande\n",
            "*From:* Jane Roe <jane@client.example>\n*Date:* Mon, 2 Mar 2026\n*To:* ana@shop.example\n",
        ] {
            let t = format!("Answer on top.\n\n{block}\nquoted body\n");
            assert_eq!(new_text(&t), "Answer on top.\n\n", "{block}");
        }
    }

    #[test]
    fn single_labels_in_prose_are_not_a_block() {
        for t in [
            "To: all traders\n\nThe desk moves on Monday.\n",
            "Subject: budget\nWe are over.\n",
            "Date: tomorrow\nTime: 10:00\nPlace: EB3014\n",
            "Agenda:\n1. To: be decided\n",
        ] {
            assert!(quoted_ranges(t.as_bytes()).is_empty(), "{t}");
        }
    }

    #[test]
    fn attribution_followed_by_gt_lines_quotes_only_itself() {
        let t = "On Mon, 2 Sep 2002, Jane Roe wrote:\n> Who else is coming?\n\nBob and Carol: bob@x.com, carol@y.org\n";
        assert_eq!(new_text(t), "\nBob and Carol: bob@x.com, carol@y.org\n");
    }

    #[test]
    fn attribution_without_gt_lines_quotes_the_rest() {
        // AOL, as forwarded in the Enron mail.
        let t = "FYI\nIn a  message dated 9/12/2001 10:51:30 PM Central Daylight Time, rebeccab@nol.net  writes: \nScary?\nx@y.com\n";
        assert_eq!(new_text(t), "FYI\n");
        // Yahoo's dashed attribution.
        let t = "Sure.\n--- Mike.Carson@enron.com wrote:\nsee you there\n";
        assert_eq!(new_text(t), "Sure.\n");
    }

    #[test]
    fn attributions_in_other_forms_and_languages() {
        for a in [
            "Once upon a time, Ville wrote :",
            "jm@jmason.org (Justin Mason) writes:",
            "On 20 September 2002, Tim Peters said:",
            "Le 3 sept. 2002 à 10:00, Jean Dupont <jean@client.example> a écrit :",
            "Am 03.09.2002 um 10:00 schrieb Max Muster <max@kunde.example>:",
            "El 3 sept 2002, Ana escribió:",
        ] {
            let t = format!("new\n{a}\n> old\n");
            assert_eq!(new_text(&t), "new\n", "{a}");
        }
        // Gmail wraps a long attribution; both lines belong to it.
        let t =
            "ok\nOn Tue, Sep 3, 2002 at 10:00 AM Jane Roe <\njane@client.example> wrote:\n> old\n";
        assert_eq!(new_text(t), "ok\n");
        // A colon inside prose is not an attribution.
        let t = "He wrote: nothing useful.\nThe manager said:\nlist follows\n";
        assert!(quoted_ranges(t.as_bytes()).is_empty());
    }

    #[test]
    fn eudora_forwarded_text_ends_at_its_end_marker() {
        let t = "Look:\n--- begin forwarded text\nFrom: x@y.com\nhello\n--- end forwarded text\nMy comment.\n";
        assert_eq!(new_text(t), "Look:\nMy comment.\n");
    }

    #[test]
    fn html_blockquote_lines_are_quoted() {
        use crate::content::{strip_html_with, Layout};
        let html = b"<div>Here you go</div><div class=gmail_quote>On Mon, Jane wrote:<br><blockquote>a@x.com<br>b@x.com<blockquote>c@x.com</blockquote></blockquote></div>after";
        let text = String::from_utf8(strip_html_with(html, Layout::Quoting)).unwrap();
        let (new, quoted) = split_new_and_quoted(&text);
        assert!(
            new.contains("Here you go") && new.contains("after"),
            "{new:?}"
        );
        for a in ["a@x.com", "b@x.com", "c@x.com", "Jane wrote:"] {
            assert!(quoted.contains(a) && !new.contains(a), "{a} in {text:?}");
        }
    }

    #[test]
    fn ranges_are_sorted_disjoint_whole_lines() {
        let t = b"a\r\n> b\r\n> c\r\nd\r\n> e";
        let r = quoted_ranges(t);
        assert_eq!(r, vec![3..13, 16..19]);
        assert!(!in_ranges(&r, 2) && in_ranges(&r, 3) && in_ranges(&r, 12));
        assert!(!in_ranges(&r, 13) && in_ranges(&r, 18) && !in_ranges(&r, 19));
    }

    #[test]
    fn label_rows_are_searched_in_bounded_time() {
        // 200,000 `To:` rows: a run of one label kind, never a block; must stay linear.
        let t = "To: someone\n".repeat(200_000);
        let started = std::time::Instant::now();
        assert!(quoted_ranges(t.as_bytes()).is_empty());
        let mut blocks = BlockSearch {
            tries: 0,
            no_block_before: 0,
        };
        let lines = Lines(t.as_bytes());
        let mut cur = lines.first();
        while let Some(l) = cur {
            marker(lines, &l, &mut blocks);
            cur = lines.next(&l);
        }
        assert!(blocks.tries <= MAX_BLOCK_TRIES);
        // Generous: the point is that it is not 64x the text.
        assert!(started.elapsed().as_secs() < 20);
    }

    #[test]
    fn undecodable_and_empty_input_never_panics() {
        for t in [
            &b""[..],
            b"\n",
            b">",
            b"\xff\xfe:\n--\n",
            b"To:\n",
            b"wrote:",
        ] {
            let _ = quoted_ranges(t);
        }
        assert_eq!(split_new_and_quoted(""), (String::new(), String::new()));
    }
}
