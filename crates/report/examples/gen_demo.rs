//! Generates the shipped demo incident under `fixtures/demo/` (committed output):
//!
//! * `outbound.mbox`: two months of a fictitious exchange's outgoing mail (Oct-Nov 2019):
//!   1:1 support replies, transactional mail, internal mail, a newsletter sent properly (Bcc,
//!   `undisclosed-recipients:;`), a support thread with a customer and a colleague at the same
//!   company, and two incidents: a customer roundtable invitation with five customers in To
//!   (14 Oct) and the mass mail "Important: changes to your account" (1 Nov 2019) sent in eight
//!   batches of 100 with every address in To, one batch per language for de, fr, es, ru and ja
//!   (subjects and display names as RFC 2047 encoded words).
//! * `accounts.csv`: the exchange's account export in the import format of
//!   `leakaudit accounts import` (id, email, has_2fa, balance, locale, failed_logins,
//!   failed_logins_since): most exposed addresses have an account, some do not, and some
//!   accounts were never exposed.
//!
//! Deterministic (fixed seed, own PRNG): running it again gives the same bytes.
//! Usage: `cargo run -p leakaudit-report --example gen_demo [-- OUT_DIR]`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

/// SplitMix64: tiny, fast, and stable across platforms and crate versions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const ORG: &str = "kestrelexchange.example";

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    En,
    De,
    Fr,
    Es,
    Ru,
    Ja,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
            Lang::Ru => "ru",
            Lang::Ja => "ja",
        }
    }
    /// (ascii first, display first) names.
    fn firsts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::En => &[
                ("james", "James"),
                ("mary", "Mary"),
                ("robert", "Robert"),
                ("patricia", "Patricia"),
                ("john", "John"),
                ("jennifer", "Jennifer"),
                ("michael", "Michael"),
                ("linda", "Linda"),
                ("david", "David"),
                ("elizabeth", "Elizabeth"),
                ("william", "William"),
                ("susan", "Susan"),
                ("richard", "Richard"),
                ("jessica", "Jessica"),
                ("thomas", "Thomas"),
                ("sarah", "Sarah"),
                ("daniel", "Daniel"),
                ("emily", "Emily"),
                ("matthew", "Matthew"),
                ("olivia", "Olivia"),
                ("andrew", "Andrew"),
                ("chloe", "Chloe"),
                ("ryan", "Ryan"),
                ("grace", "Grace"),
            ],
            Lang::De => &[
                ("lukas", "Lukas"),
                ("anna", "Anna"),
                ("jonas", "Jonas"),
                ("lea", "Lea"),
                ("felix", "Felix"),
                ("hannah", "Hannah"),
                ("maximilian", "Maximilian"),
                ("sophie", "Sophie"),
                ("paul", "Paul"),
                ("laura", "Laura"),
                ("juergen", "Jürgen"),
                ("marie", "Marie"),
                ("tobias", "Tobias"),
                ("katharina", "Katharina"),
                ("joerg", "Jörg"),
                ("ute", "Ute"),
            ],
            Lang::Fr => &[
                ("camille", "Camille"),
                ("louis", "Louis"),
                ("lea", "Léa"),
                ("hugo", "Hugo"),
                ("chloe", "Chloé"),
                ("lucas", "Lucas"),
                ("manon", "Manon"),
                ("jules", "Jules"),
                ("ines", "Inès"),
                ("gabriel", "Gabriel"),
                ("emma", "Emma"),
                ("arthur", "Arthur"),
                ("zoe", "Zoé"),
                ("helene", "Hélène"),
                ("francois", "François"),
                ("celine", "Céline"),
            ],
            Lang::Es => &[
                ("alejandro", "Alejandro"),
                ("lucia", "Lucía"),
                ("pablo", "Pablo"),
                ("maria", "María"),
                ("javier", "Javier"),
                ("carmen", "Carmen"),
                ("diego", "Diego"),
                ("sofia", "Sofía"),
                ("daniel", "Daniel"),
                ("paula", "Paula"),
                ("alvaro", "Álvaro"),
                ("marta", "Marta"),
                ("sergio", "Sergio"),
                ("ines", "Inés"),
                ("jose", "José"),
                ("raquel", "Raquel"),
            ],
            Lang::Ru => &[
                ("aleksandr", "Александр"),
                ("dmitry", "Дмитрий"),
                ("sergey", "Сергей"),
                ("ivan", "Иван"),
                ("mikhail", "Михаил"),
                ("andrey", "Андрей"),
                ("anna", "Анна"),
                ("elena", "Елена"),
                ("olga", "Ольга"),
                ("natalia", "Наталья"),
                ("tatiana", "Татьяна"),
                ("irina", "Ирина"),
            ],
            Lang::Ja => &[
                ("hiroshi", "浩"),
                ("yuki", "由紀"),
                ("kenji", "健二"),
                ("aiko", "愛子"),
                ("takashi", "隆"),
                ("naoko", "直子"),
                ("daisuke", "大輔"),
                ("yui", "結衣"),
                ("shota", "翔太"),
                ("misaki", "美咲"),
                ("haruto", "陽翔"),
                ("sakura", "さくら"),
            ],
        }
    }
    fn lasts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::En => &[
                ("smith", "Smith"),
                ("johnson", "Johnson"),
                ("williams", "Williams"),
                ("brown", "Brown"),
                ("jones", "Jones"),
                ("miller", "Miller"),
                ("davis", "Davis"),
                ("wilson", "Wilson"),
                ("taylor", "Taylor"),
                ("anderson", "Anderson"),
                ("moore", "Moore"),
                ("martin", "Martin"),
                ("jackson", "Jackson"),
                ("thompson", "Thompson"),
                ("white", "White"),
                ("harris", "Harris"),
                ("clark", "Clark"),
                ("lewis", "Lewis"),
                ("walker", "Walker"),
                ("hughes", "Hughes"),
                ("obrien", "O'Brien"),
                ("patel", "Patel"),
                ("nguyen", "Nguyen"),
                ("kim", "Kim"),
            ],
            Lang::De => &[
                ("mueller", "Müller"),
                ("schmidt", "Schmidt"),
                ("schneider", "Schneider"),
                ("fischer", "Fischer"),
                ("weber", "Weber"),
                ("meyer", "Meyer"),
                ("wagner", "Wagner"),
                ("becker", "Becker"),
                ("schulz", "Schulz"),
                ("hoffmann", "Hoffmann"),
                ("schaefer", "Schäfer"),
                ("koch", "Koch"),
                ("bauer", "Bauer"),
                ("richter", "Richter"),
                ("klein", "Klein"),
                ("wolf", "Wolf"),
            ],
            Lang::Fr => &[
                ("martin", "Martin"),
                ("bernard", "Bernard"),
                ("dubois", "Dubois"),
                ("thomas", "Thomas"),
                ("robert", "Robert"),
                ("richard", "Richard"),
                ("petit", "Petit"),
                ("durand", "Durand"),
                ("leroy", "Leroy"),
                ("moreau", "Moreau"),
                ("simon", "Simon"),
                ("laurent", "Laurent"),
                ("lefevre", "Lefèvre"),
                ("michel", "Michel"),
                ("garnier", "Garnier"),
                ("faure", "Faure"),
            ],
            Lang::Es => &[
                ("garcia", "García"),
                ("rodriguez", "Rodríguez"),
                ("gonzalez", "González"),
                ("fernandez", "Fernández"),
                ("lopez", "López"),
                ("martinez", "Martínez"),
                ("sanchez", "Sánchez"),
                ("perez", "Pérez"),
                ("gomez", "Gómez"),
                ("martin", "Martín"),
                ("jimenez", "Jiménez"),
                ("ruiz", "Ruiz"),
                ("hernandez", "Hernández"),
                ("diaz", "Díaz"),
                ("moreno", "Moreno"),
                ("munoz", "Muñoz"),
            ],
            Lang::Ru => &[
                ("ivanov", "Иванов"),
                ("smirnov", "Смирнов"),
                ("kuznetsov", "Кузнецов"),
                ("popov", "Попов"),
                ("vasiliev", "Васильев"),
                ("petrov", "Петров"),
                ("sokolov", "Соколов"),
                ("volkov", "Волков"),
                ("morozov", "Морозов"),
                ("novikov", "Новиков"),
                ("lebedev", "Лебедев"),
                ("kozlov", "Козлов"),
            ],
            Lang::Ja => &[
                ("sato", "佐藤"),
                ("suzuki", "鈴木"),
                ("takahashi", "高橋"),
                ("tanaka", "田中"),
                ("watanabe", "渡辺"),
                ("ito", "伊藤"),
                ("yamamoto", "山本"),
                ("nakamura", "中村"),
                ("kobayashi", "小林"),
                ("kato", "加藤"),
                ("yoshida", "吉田"),
                ("yamada", "山田"),
            ],
        }
    }
    fn domains(self) -> &'static [&'static str] {
        match self {
            Lang::En => &[
                "gmail.com",
                "gmail.com",
                "gmail.com",
                "yahoo.com",
                "outlook.com",
                "hotmail.co.uk",
                "icloud.com",
                "aol.com",
                "btinternet.com",
                "comcast.net",
                "protonmail.com",
            ],
            Lang::De => &[
                "gmx.de",
                "web.de",
                "t-online.de",
                "gmail.com",
                "posteo.de",
                "gmx.net",
            ],
            Lang::Fr => &[
                "orange.fr",
                "free.fr",
                "laposte.net",
                "gmail.com",
                "sfr.fr",
                "wanadoo.fr",
            ],
            Lang::Es => &[
                "gmail.com",
                "hotmail.com",
                "yahoo.es",
                "outlook.com",
                "gmail.com",
            ],
            Lang::Ru => &[
                "mail.ru",
                "yandex.ru",
                "inbox.ru",
                "gmail.com",
                "bk.ru",
                "list.ru",
            ],
            Lang::Ja => &[
                "yahoo.co.jp",
                "gmail.com",
                "icloud.com",
                "outlook.com",
                "yahoo.co.jp",
            ],
        }
    }
    fn subject(self) -> &'static str {
        match self {
            Lang::En => "Important: changes to your account",
            Lang::De => "Wichtig: Änderungen an Ihrem Konto",
            Lang::Fr => "Important : modifications de votre compte",
            Lang::Es => "Importante: cambios en su cuenta",
            Lang::Ru => "Важно: изменения в вашем аккаунте",
            Lang::Ja => "重要：お客様のアカウントの変更について",
        }
    }
    fn body(self) -> &'static str {
        match self {
            Lang::En => "Dear customer,\n\nfrom 15 November 2019 we are updating our terms of service and the\nfees for withdrawals. Please review the changes in your account settings.\nNo action is needed if you agree with the new terms.\n\nKind regards,\nYour Kestrel Exchange team\n",
            Lang::De => "Sehr geehrte Kundin, sehr geehrter Kunde,\n\nab dem 15. November 2019 ändern wir unsere Nutzungsbedingungen und die\nGebühren für Auszahlungen. Bitte prüfen Sie die Änderungen in Ihren\nKontoeinstellungen.\n\nMit freundlichen Grüßen\nIhr Kestrel Exchange Team\n",
            Lang::Fr => "Chère cliente, cher client,\n\nà partir du 15 novembre 2019, nous modifions nos conditions générales et\nles frais de retrait. Merci de consulter les changements dans les\nparamètres de votre compte.\n\nCordialement,\nL'équipe Kestrel Exchange\n",
            Lang::Es => "Estimado cliente:\n\na partir del 15 de noviembre de 2019 actualizamos nuestros términos de\nservicio y las comisiones de retirada. Revise los cambios en la\nconfiguración de su cuenta.\n\nAtentamente,\nEl equipo de Kestrel Exchange\n",
            Lang::Ru => "Уважаемый клиент!\n\nС 15 ноября 2019 года мы меняем условия обслуживания и комиссии за вывод\nсредств. Пожалуйста, ознакомьтесь с изменениями в настройках аккаунта.\n\nС уважением,\nкоманда Kestrel Exchange\n",
            Lang::Ja => "お客様各位\n\n2019年11月15日より、利用規約および出金手数料を変更いたします。\nアカウント設定にて変更内容をご確認ください。\n\nKestrel Exchange サポートチーム\n",
        }
    }
    fn locales(self) -> &'static [&'static str] {
        match self {
            Lang::En => &["en", "en", "en-GB", "en-US"],
            Lang::De => &["de", "de", "de-AT", "de-CH"],
            Lang::Fr => &["fr", "fr", "fr-BE"],
            Lang::Es => &["es", "es", "es-MX"],
            Lang::Ru => &["ru"],
            Lang::Ja => &["ja"],
        }
    }
}

#[derive(Clone)]
struct Person {
    display: String,
    email: String,
    lang: Lang,
}

/// RFC 2047 encoded words (UTF-8; Q for mostly-Latin text, B otherwise), each at most 75
/// characters, joined by folding whitespace.
fn encode_words(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    let latin = s.chars().filter(|c| c.is_ascii()).count() * 2 > s.chars().count();
    let mut words = Vec::new();
    let mut chunk = String::new();
    let encoded_len = |t: &str| {
        if latin {
            t.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b == b' ' {
                        1
                    } else {
                        3
                    }
                })
                .sum::<usize>()
        } else {
            t.len().div_ceil(3) * 4
        }
    };
    for c in s.chars() {
        let mut next = chunk.clone();
        next.push(c);
        if encoded_len(&next) > 75 - 12 && !chunk.is_empty() {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            if latin {
                let mut q = String::from("=?UTF-8?Q?");
                for b in w.bytes() {
                    match b {
                        b' ' => q.push('_'),
                        b if b.is_ascii_alphanumeric() => q.push(b as char),
                        b => {
                            let _ = write!(q, "={b:02X}");
                        }
                    }
                }
                q.push_str("?=");
                q
            } else {
                format!("=?UTF-8?B?{}?=", b64(w.as_bytes()))
            }
        })
        .collect::<Vec<_>>()
        .join("\n ")
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn mailbox(p: &Person) -> String {
    if p.display.is_empty() {
        return p.email.clone();
    }
    let d = if p.display.is_ascii() {
        if p.display.contains(['\'', ',', '.']) {
            format!("\"{}\"", p.display)
        } else {
            p.display.clone()
        }
    } else {
        encode_words(&p.display)
    };
    format!("{d} <{}>", p.email)
}

struct Mail {
    date: i64,
    from: String,
    envelope_from: String,
    to: Vec<String>,
    cc: Vec<String>,
    subject: String,
    message_id: String,
    in_reply_to: Option<String>,
    lang: Lang,
    body: String,
}

fn rfc2822(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

fn mbox_date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

fn render(m: &Mail, out: &mut String) {
    let _ = writeln!(out, "From {} {}", m.envelope_from, mbox_date(m.date));
    let _ = writeln!(out, "Return-Path: <{}>", m.envelope_from);
    let _ = writeln!(out, "Message-ID: <{}>", m.message_id);
    if let Some(r) = &m.in_reply_to {
        let _ = writeln!(out, "In-Reply-To: <{r}>\nReferences: <{r}>");
    }
    let _ = writeln!(out, "Date: {}", rfc2822(m.date));
    let _ = writeln!(out, "From: {}", m.from);
    let _ = writeln!(out, "To: {}", m.to.join(",\n "));
    if !m.cc.is_empty() {
        let _ = writeln!(out, "Cc: {}", m.cc.join(",\n "));
    }
    let _ = writeln!(out, "Subject: {}", encode_words(&m.subject));
    let _ = writeln!(out, "MIME-Version: 1.0");
    let _ = writeln!(
        out,
        "Content-Type: text/plain; charset=UTF-8; format=flowed"
    );
    let _ = writeln!(out, "Content-Transfer-Encoding: 8bit");
    let _ = writeln!(out, "Content-Language: {}", m.lang.code());
    let _ = writeln!(out);
    out.push_str(&m.body);
    if !m.body.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
}

struct World {
    rng: Rng,
    used: BTreeSet<String>,
    counter: u64,
}

impl World {
    fn person(&mut self, lang: Lang, domain: Option<&str>) -> Person {
        loop {
            let (fa, fd) = *self.rng.pick(lang.firsts());
            let (la, ld) = *self.rng.pick(lang.lasts());
            let dom = match domain {
                Some(d) => d.to_owned(),
                None => (*self.rng.pick(lang.domains())).to_owned(),
            };
            let local = match self.rng.below(7) {
                0 | 1 => format!("{fa}.{la}"),
                2 => format!("{fa}{la}"),
                3 => format!("{}.{la}", &fa[..1]),
                4 => format!("{fa}_{la}"),
                5 => format!("{fa}.{la}{}", 60 + self.rng.below(40)),
                _ => format!("{la}.{fa}"),
            };
            let email = format!("{local}@{dom}");
            if !self.used.insert(email.clone()) {
                continue;
            }
            let display = match (lang, self.rng.below(10)) {
                (_, 0) => String::new(),
                (Lang::Ja, _) => format!("{ld} {fd}"),
                _ => format!("{fd} {ld}"),
            };
            return Person {
                display,
                email,
                lang,
            };
        }
    }

    fn mid(&mut self, ts: i64, host: &str) -> String {
        self.counter += 1;
        format!(
            "{}.{:05}.{:08x}@{host}",
            ts,
            self.counter,
            self.rng.next() as u32
        )
    }
}

/// Office-hours time on day `day` (0 = 1 Oct 2019), UTC.
fn office_time(rng: &mut Rng, day: i64) -> i64 {
    const OCT1: i64 = 1_569_888_000; // 2019-10-01T00:00:00Z
    OCT1 + day * 86400 + 7 * 3600 + rng.below(10 * 3600) as i64
}

fn main() {
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo"));
    std::fs::create_dir_all(&out_dir).expect("create the output folder");
    let mut w = World {
        rng: Rng(0x4C45_414B_2019_1101),
        used: BTreeSet::new(),
        counter: 0,
    };
    let mut mails: Vec<Mail> = Vec::new();

    // Staff.
    let staff: Vec<Person> = [
        ("Sophie Carter", "sophie.carter"),
        ("Marcus Lindqvist", "marcus.lindqvist"),
        ("Priya Raman", "priya.raman"),
        ("Tom Becker", "tom.becker"),
        ("Elena Rossi", "elena.rossi"),
        ("Kwame Mensah", "kwame.mensah"),
        ("Compliance", "compliance"),
        ("Ops", "ops"),
    ]
    .iter()
    .map(|(d, l)| Person {
        display: (*d).into(),
        email: format!("{l}@{ORG}"),
        lang: Lang::En,
    })
    .collect();
    let support = format!("Kestrel Support <support@{ORG}>");

    // The mass mail's recipients: 3 English batches, then one per language.
    let plan = [
        Lang::En,
        Lang::En,
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::Ru,
        Lang::Ja,
    ];
    // Business customers: colleagues at one company land in the same batch.
    let business: [(usize, &str, Lang, usize); 5] = [
        (1, "brightwater-capital.example", Lang::En, 3),
        (2, "brightwater-capital.example", Lang::En, 1),
        (3, "halden-logistik.example", Lang::De, 2),
        (4, "atelier-moreau.example", Lang::Fr, 2),
        (7, "sakura-trading.example", Lang::Ja, 3),
    ];
    let mut batches: Vec<Vec<Person>> = Vec::new();
    for (b, &lang) in plan.iter().enumerate() {
        let mut people = Vec::new();
        for &(bb, dom, l, n) in &business {
            if bb == b {
                for _ in 0..n {
                    people.push(w.person(l, Some(dom)));
                }
            }
        }
        while people.len() < 100 {
            people.push(w.person(lang, None));
        }
        // Mailing lists are sorted by address in the export the batches were cut from.
        people.sort_by(|a, b| a.email.cmp(&b.email));
        batches.push(people);
    }
    // An export bug: six English customers were in two batches.
    for k in 0..6 {
        let p = batches[0][k * 13 + 5].clone();
        let slot = 97 - k;
        batches[2][slot] = p;
    }
    let t0: i64 = 1_572_598_920; // 2019-11-01T09:02:00Z
    let mass_ids: Vec<String> = (0..batches.len())
        .map(|b| {
            format!(
                "acct-terms-2019-11.b{}.{:08x}@mailer.{ORG}",
                b + 1,
                w.rng.next() as u32
            )
        })
        .collect();
    for (b, people) in batches.iter().enumerate() {
        let lang = plan[b];
        mails.push(Mail {
            date: t0 + b as i64 * 720 + w.rng.below(40) as i64,
            from: format!("Kestrel Exchange <noreply@{ORG}>"),
            envelope_from: format!("bounce-terms@mailer.{ORG}"),
            to: people.iter().map(mailbox).collect(),
            cc: vec![],
            subject: lang.subject().into(),
            message_id: mass_ids[b].clone(),
            in_reply_to: None,
            lang,
            body: lang.body().into(),
        });
    }

    // The earlier slip: a roundtable invitation with five customers visible to each other.
    let vips: Vec<Person> = vec![
        w.person(Lang::En, Some("gmail.com")),
        w.person(Lang::En, Some("icloud.com")),
        w.person(Lang::De, Some("gmx.de")),
        w.person(Lang::En, Some("brightwater-capital.example")),
        w.person(Lang::Fr, Some("orange.fr")),
    ];
    let ts = 1_571_063_520; // 2019-10-14T14:32:00Z
    let mid = w.mid(ts, ORG);
    mails.push(Mail {
        date: ts,
        from: mailbox(&staff[0]),
        envelope_from: staff[0].email.clone(),
        to: vips.iter().map(mailbox).collect(),
        cc: vec![mailbox(&staff[1])],
        subject: "Invitation: Kestrel Pro customer roundtable, 24 October".into(),
        message_id: mid,
        in_reply_to: None,
        lang: Lang::En,
        body: "Hello all,\n\nwe would be delighted to welcome you to our Kestrel Pro customer\nroundtable on 24 October at 17:00 in our Berlin office. Please let me\nknow by Friday whether you can attend.\n\nBest regards,\nSophie Carter\nKey Account Manager, Kestrel Exchange\n".into(),
    });

    // Ordinary customers: some are also in the mass mail, most are not.
    let langs = [
        Lang::En,
        Lang::En,
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::Ru,
        Lang::Ja,
    ];
    let mut customers: Vec<Person> = Vec::new();
    for i in 0..160 {
        if i % 4 == 0 {
            let b = w.rng.below(batches.len());
            let k = w.rng.below(100);
            customers.push(batches[b][k].clone());
        } else {
            let l = *w.rng.pick(&langs);
            customers.push(w.person(l, None));
        }
    }

    // 1:1 support replies.
    let topics = [
        "Withdrawal pending",
        "Verification documents",
        "Cannot log in",
        "Deposit not credited",
        "Change of e-mail address",
        "Two-factor authentication reset",
        "Question about fees",
        "Account statement for tax purposes",
    ];
    for _ in 0..230 {
        let c = customers[w.rng.below(customers.len())].clone();
        let day = w.rng.below(61) as i64;
        let ts = office_time(&mut w.rng, day);
        let ticket = 47000 + w.rng.below(5000);
        let topic = *w.rng.pick(&topics);
        let agent = &staff[w.rng.below(6)];
        let greeting = c
            .display
            .split(' ')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("there");
        mails.push(Mail {
            date: ts,
            from: support.clone(),
            envelope_from: format!("support@{ORG}"),
            to: vec![mailbox(&c)],
            cc: vec![],
            subject: format!("Re: [#{ticket}] {topic}"),
            message_id: w.mid(ts, ORG),
            in_reply_to: Some(format!("{ticket}.{:x}@{}", w.rng.next() as u32, c.email.rsplit('@').next().unwrap())),
            lang: Lang::En,
            body: format!("Hello {greeting},\n\nthank you for contacting Kestrel Support about \"{topic}\".\nWe have looked into your request #{ticket} and updated your account.\nIf anything is still unclear, simply reply to this message.\n\nBest regards,\n{}\nKestrel Support\n", agent.display),
        });
    }

    // Transactional mail: one recipient each.
    for _ in 0..60 {
        let c = customers[w.rng.below(customers.len())].clone();
        let day = w.rng.below(61) as i64;
        let ts = office_time(&mut w.rng, day);
        let amount = format!("{}.{:02}", w.rng.below(3), w.rng.below(100));
        mails.push(Mail {
            date: ts,
            from: format!("Kestrel Exchange <noreply@{ORG}>"),
            envelope_from: format!("bounce@mailer.{ORG}"),
            to: vec![mailbox(&c)],
            cc: vec![],
            subject: format!("Your withdrawal of {amount} BTC has been processed"),
            message_id: w.mid(ts, &format!("mailer.{ORG}")),
            in_reply_to: None,
            lang: Lang::En,
            body: format!("Your withdrawal of {amount} BTC has been processed and sent to your\nregistered wallet. If you did not request it, contact support at once.\n\nKestrel Exchange\n"),
        });
    }

    // Internal mail.
    let internal_subjects = [
        "Weekly ops sync",
        "On-call handover",
        "Q4 roadmap draft",
        "Re: Withdrawal queue backlog",
        "Compliance training reminder",
        "Re: Terms update mailing on 1 November",
        "Incident review notes",
    ];
    for _ in 0..70 {
        let day = w.rng.below(61) as i64;
        let ts = office_time(&mut w.rng, day);
        let a = w.rng.below(staff.len());
        let mut b = w.rng.below(staff.len());
        if b == a {
            b = (b + 1) % staff.len();
        }
        let cc = if w.rng.chance(0.4) {
            vec![mailbox(&staff[(b + 1) % staff.len()])]
        } else {
            vec![]
        };
        mails.push(Mail {
            date: ts,
            from: mailbox(&staff[a]),
            envelope_from: staff[a].email.clone(),
            to: vec![mailbox(&staff[b])],
            cc,
            subject: (*w.rng.pick(&internal_subjects)).into(),
            message_id: w.mid(ts, ORG),
            in_reply_to: None,
            lang: Lang::En,
            body: "Hi,\n\nnotes and action items are in the team wiki; please add yours before\nthe next meeting.\n\nThanks\n".into(),
        });
    }

    // The newsletter, sent properly: recipients in Bcc, which the transmitted copy omits.
    for (ts, month) in [
        (1_570_093_200, "October"),
        (1_572_944_400, "November"),
        (1_574_931_600, "December"),
    ] {
        mails.push(Mail {
            date: ts,
            from: format!("Kestrel Exchange <news@{ORG}>"),
            envelope_from: format!("bounce-news@mailer.{ORG}"),
            to: vec!["undisclosed-recipients:;".into()],
            cc: vec![],
            subject: format!("Kestrel Monthly: {month} 2019"),
            message_id: w.mid(ts, &format!("mailer.{ORG}")),
            in_reply_to: None,
            lang: Lang::En,
            body: "This month: lower trading fees, new markets and our security checklist.\n\nYou receive this newsletter because you subscribed in your account\nsettings.\n".into(),
        });
    }

    // A support thread with a business customer and her colleague at the same company, and
    // the compliance team in Cc: one external party, nobody exposed.
    let novak = w.person(Lang::En, Some("novak-consulting.example"));
    let novak2 = w.person(Lang::En, Some("novak-consulting.example"));
    customers.push(novak.clone());
    customers.push(novak2.clone());
    for k in 0..6 {
        let ts = 1_571_216_400 + k * 86400 + w.rng.below(3600) as i64; // from 16 Oct 2019
        mails.push(Mail {
            date: ts,
            from: support.clone(),
            envelope_from: format!("support@{ORG}"),
            to: vec![mailbox(&novak)],
            cc: vec![mailbox(&novak2), mailbox(&staff[6])],
            subject: "Re: [#50110] API access for Novak Consulting".into(),
            message_id: w.mid(ts, ORG),
            in_reply_to: Some(format!("50110.{k}@novak-consulting.example")),
            lang: Lang::En,
            body: "Hello both,\n\nthe API keys for your team are ready in the business dashboard. Our\ncompliance team is in copy for the KYB documents.\n\nBest regards,\nKestrel Support\n".into(),
        });
    }

    mails.sort_by(|a, b| (a.date, &a.message_id).cmp(&(b.date, &b.message_id)));
    let mut mbox = String::new();
    for m in &mails {
        render(m, &mut mbox);
    }
    std::fs::write(out_dir.join("outbound.mbox"), &mbox).expect("write outbound.mbox");

    // Accounts: most exposed people have one, some don't; plus ordinary customers.
    let mut holders: Vec<Person> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in batches.iter().flatten().chain(vips.iter()) {
        if seen.insert(p.email.clone()) && !w.rng.chance(0.22) {
            holders.push(p.clone());
        }
    }
    for p in &customers {
        if seen.insert(p.email.clone()) {
            holders.push(p.clone());
        }
    }
    // The export is ordered by account id, which has nothing to do with the mail order.
    let mut rows: Vec<(u64, String)> = Vec::new();
    for (i, p) in holders.iter().enumerate() {
        let id = 100_000 + (i as u64 * 7919) % 90_000;
        let has_2fa = w.rng.chance(0.45);
        let balance = if w.rng.chance(0.35) {
            "0.00".to_owned()
        } else {
            let v = (w.rng.below(1000) as f64).powf(1.6) / 10.0
                + if w.rng.chance(0.03) { 15_000.0 } else { 0.0 };
            format!("{v:.2}")
        };
        let locale = *w.rng.pick(p.lang.locales());
        let failed = match w.rng.below(100) {
            0..=79 => 0,
            80..=93 => 1 + w.rng.below(3),
            _ => 5 + w.rng.below(20),
        };
        // Exports keep the case users typed at sign-up; matching must not care.
        let email = if i % 17 == 3 {
            let (l, d) = p.email.split_once('@').unwrap();
            let mut cs = l.chars();
            let first = cs.next().unwrap().to_ascii_uppercase();
            format!("{first}{}@{}", cs.as_str(), d.to_ascii_uppercase())
        } else {
            p.email.clone()
        };
        rows.push((
            id,
            format!("KX-{id},{email},{has_2fa},{balance},{locale},{failed},2019-11-01"),
        ));
    }
    rows.sort();
    let mut csv =
        String::from("id,email,has_2fa,balance,locale,failed_logins,failed_logins_since\n");
    for (_, r) in rows {
        csv.push_str(&r);
        csv.push('\n');
    }
    std::fs::write(out_dir.join("accounts.csv"), csv).expect("write accounts.csv");
    eprintln!(
        "wrote {} messages ({} bytes) and {} accounts to {}",
        mails.len(),
        mbox.len(),
        holders.len(),
        out_dir.display()
    );
}
