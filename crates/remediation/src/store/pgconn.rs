//! How a PostgreSQL `--db` URL becomes a connection: the password comes from the URL, else
//! `PGPASSWORD`, else a passfile in libpq's format (`passfile=PATH` in the URL, else
//! `PGPASSFILE`, else `~/.pgpass`; ignored unless 0600 like libpq, but refused here rather
//! than skipped silently), and the store's description is the URL without any password.
//! Also the per-connection statement cache.

use crate::error::{Error, Result};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use postgres::config::Host;
use postgres::{Config, GenericClient, Row, Statement, Transaction};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// libpq's socket folder on Debian: the server a URL without a host means.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Everything but RFC 3986's unreserved characters is escaped in a description.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// A server that does not answer should not hang a responder's command forever.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed connection: the configuration (with the password filled in when one was found)
/// and its description.
pub(crate) struct ConnSpec {
    pub config: Config,
    pub desc: String,
}

pub use crate::error::pg_reason;

/// Whether the URL itself carries a password (`user:secret@`, or `password=` in the query).
pub fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let creds = authority.split('/').next().unwrap_or("");
    let in_userinfo = creds
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    in_userinfo
        || query
            .split('&')
            .any(|kv| kv.split('=').next() == Some("password"))
}

pub(crate) fn parse(url: &str) -> Result<ConnSpec> {
    let shown = super::redact_url(url);
    let bad = |reason: String| Error::Setting(format!("{shown}: {reason}"));
    // `passfile` is libpq's, not the client's: take it out before the URL is parsed.
    // The scheme is case-insensitive (`store::is_postgres_url`); the client's parser is not.
    let lowered = match url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => url.to_string(),
    };
    let url = lowered.as_str();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut passfile = None;
    let mut kept = Vec::new();
    for kv in query.into_iter().flat_map(|q| q.split('&')) {
        match kv.split_once('=') {
            Some(("passfile", v)) => {
                let v = percent_decode_str(v)
                    .decode_utf8()
                    .map_err(|_| bad("passfile is not UTF-8".into()))?;
                passfile = Some(PathBuf::from(v.into_owned()));
            }
            _ if kv.is_empty() => {}
            _ => kept.push(kv),
        }
    }
    let clean = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: Config = clean
        .parse()
        .map_err(|e: postgres::Error| bad(format!("not a PostgreSQL URL: {}", pg_reason(&e))))?;
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        config.host_path(DEFAULT_SOCKET_DIR);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_user().is_none() {
        // Like libpq: the operating-system user.
        if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
            config.user(&u);
        }
    }
    if config.get_password().is_none() {
        if let Some(pw) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
            config.password(pw.to_string_lossy().as_bytes());
        } else if let Some(pw) = password_from_passfile(&config, passfile.as_deref())? {
            config.password(pw);
        }
    }
    let desc = describe(&config);
    Ok(ConnSpec { config, desc })
}

/// The connection as a URL a person can read and reuse: never a password.
fn describe(c: &Config) -> String {
    let enc = |s: &str| utf8_percent_encode(s, ESCAPED).to_string();
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => enc(&path.to_string_lossy()),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let user = c.get_user().map(|u| format!("{}@", enc(u)));
    let db = c.get_dbname().or(c.get_user()).unwrap_or_default();
    format!(
        "postgresql://{}{}/{}",
        user.unwrap_or_default(),
        hosts.join(","),
        enc(db)
    )
}

/// The first matching line of the passfile, when there is one to read.
fn password_from_passfile(c: &Config, explicit: Option<&Path>) -> Result<Option<String>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("PGPASSFILE") {
            Some(p) => PathBuf::from(p),
            None => match std::env::var_os("HOME") {
                Some(h) => Path::new(&h).join(".pgpass"),
                None => return Ok(None),
            },
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // libpq ignores a missing default file; a named one that is missing is a mistake.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(None)
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::Setting(format!(
                "{}: password file has group or world access (mode {:o}); make it 0600",
                path.display(),
                mode & 0o777
            )));
        }
    }
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.to_string_lossy().into_owned(),
        None => String::new(),
    };
    let unix_default =
        matches!(c.get_hosts().first(), Some(Host::Unix(p)) if p == Path::new(DEFAULT_SOCKET_DIR));
    let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = c.get_user().unwrap_or_default();
    let db = c.get_dbname().unwrap_or(user);
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = split_pgpass(line);
        if f.len() < 5 {
            continue;
        }
        let is = |field: &str, value: &str| field == "*" || field == value;
        let host_ok = is(&f[0], &host) || (unix_default && f[0] == "localhost");
        if host_ok && is(&f[1], &port) && is(&f[2], db) && is(&f[3], user) {
            return Ok(Some(f[4..].join(":")));
        }
    }
    Ok(None)
}

/// `host:port:db:user:password` with `\:` and `\\` escapes.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("never empty").push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            _ => out.last_mut().expect("never empty").push(ch),
        }
    }
    out
}

pub(crate) type Param<'a> = &'a (dyn postgres::types::ToSql + Sync);

/// The statement for `sql`, prepared on first use.
pub(crate) fn prep(
    stmts: &RefCell<HashMap<String, Statement>>,
    c: &mut impl GenericClient,
    sql: &str,
) -> std::result::Result<Statement, postgres::Error> {
    if let Some(st) = stmts.borrow().get(sql) {
        return Ok(st.clone());
    }
    let st = c.prepare(sql)?;
    stmts.borrow_mut().insert(sql.to_string(), st.clone());
    Ok(st)
}

pub(crate) fn tx_exec(
    stmts: &RefCell<HashMap<String, Statement>>,
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[Param<'_>],
) -> std::result::Result<u64, postgres::Error> {
    let st = prep(stmts, tx, sql)?;
    tx.execute(&st, params)
}

pub(crate) fn tx_query(
    stmts: &RefCell<HashMap<String, Statement>>,
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[Param<'_>],
) -> std::result::Result<Vec<Row>, postgres::Error> {
    let st = prep(stmts, tx, sql)?;
    tx.query(&st, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_never_shows_the_password() {
        let s = parse("postgresql://ann:s3cr%40t@db.example:6543/acc?sslmode=disable").unwrap();
        assert_eq!(s.desc, "postgresql://ann@db.example:6543/acc");
        assert_eq!(s.config.get_password(), Some(&b"s3cr@t"[..]));
        let s = parse("postgres://ann@127.0.0.1:5/x?password=hunter2").unwrap();
        assert!(!s.desc.contains("hunter2"), "{}", s.desc);
        let s = parse("PostgreSQL://ann@h/x").unwrap();
        assert_eq!(s.desc, "postgresql://ann@h:5432/x");
        let s = parse("postgresql://ann@%2Ftmp%2Fpg:5433/x").unwrap();
        assert_eq!(s.desc, "postgresql://ann@%2Ftmp%2Fpg:5433/x");
        // The description is itself a usable URL.
        let again = parse(&s.desc).unwrap();
        assert_eq!(again.desc, s.desc);
    }

    #[test]
    fn password_in_url_is_detected() {
        assert!(url_has_password("postgresql://a:b@h/db"));
        assert!(url_has_password(
            "postgresql://a@h/db?sslmode=disable&password=x"
        ));
        assert!(!url_has_password("postgresql://a@h/db?passfile=/p"));
        assert!(!url_has_password("postgresql://h:5432/db"));
    }

    #[test]
    fn passfile_is_read_like_libpq() {
        if std::env::var_os("PGPASSWORD").is_some_and(|p| !p.is_empty()) {
            // PGPASSWORD comes before any passfile, as in libpq.
            eprintln!("skipped: PGPASSWORD is set in this environment");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("pgpass");
        std::fs::write(
            &pf,
            "# comment\nother:*:*:*:nope\n127.0.0.1:5544:acc:ann:pa\\:ss\\\\w:rd\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o600)).unwrap();
        let url = |rest: &str| format!("postgresql://{rest}?passfile={}", pf.display());
        let c = parse(&url("ann@127.0.0.1:5544/acc")).unwrap().config;
        assert_eq!(c.get_password(), Some(&b"pa:ss\\w:rd"[..]));
        let c = parse(&url("bob@127.0.0.1:5544/acc")).unwrap().config;
        assert_eq!(c.get_password(), Some(&b"fallback"[..]));
        std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = parse(&url("ann@127.0.0.1:5544/acc")).err().unwrap();
        assert!(e.to_string().contains("group or world access"), "{e}");
        let missing = format!(
            "postgresql://a@h/db?passfile={}",
            dir.path().join("none").display()
        );
        assert!(parse(&missing).is_err(), "a named passfile must exist");
    }
}
