//! One SMTP session to the organisation's relay (lettre's blocking client), and the
//! classification of each transaction's outcome.
//!
//! lettre's `SmtpConnection` is driven command by command rather than through
//! `SmtpTransport::send_raw`, because the outcome depends on *where* a transaction broke: a
//! negative reply or a lost connection before the end of the data means the server has not
//! taken the message (deferred or failed, safe to send again), while a connection lost after
//! the data went out may have been accepted (in doubt: never sent again automatically).

use crate::error::{Error, Result};
use lettre::transport::smtp::authentication::{Credentials as LettreCredentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS; refused when the server does not offer it.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only to a loopback address (a local relay or a test server).
    None,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "starttls" => Some(TlsMode::Starttls),
            "tls" => Some(TlsMode::Tls),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Tls => "tls",
            TlsMode::None => "none",
        }
    }
}

/// SMTP login. The password never appears in `Debug` output nor in any message.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: String, password: String) -> Credentials {
        Credentials { user, password }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?}, password: *** }}", self.user)
    }
}

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub credentials: Option<Credentials>,
    /// Per command (connect, each reply).
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), for a relay with an internal CA.
    pub ca_pem: Option<Vec<u8>>,
}

impl SmtpSettings {
    /// Checks the settings: `none` only to a loopback address; credentials never over an
    /// unencrypted connection to another host (the same rule, stated for the password).
    pub fn validate(&self) -> Result<()> {
        if self.host.is_empty() || self.port == 0 {
            return Err(Error::Setting(format!(
                "SMTP server `{}:{}`: give it as HOST:PORT",
                self.host, self.port
            )));
        }
        if self.tls == TlsMode::None && !is_loopback(&self.host, self.port) {
            return Err(Error::Setting(format!(
                "--tls none to {}: unencrypted SMTP is allowed only to a loopback address (127.0.0.1, ::1, localhost); use starttls or tls",
                self.host
            )));
        }
        Ok(())
    }

    fn tls_parameters(&self) -> Result<TlsParameters> {
        let mut b = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.ca_pem {
            let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
                .map_err(|e| Error::Setting(format!("SMTP CA certificate: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| Error::Setting(format!("SMTP TLS settings: {e}")))
    }
}

/// Every address `host` resolves to is a loopback address.
fn is_loopback(host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// What the server did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx after the data: the server took it.
    Sent(String),
    /// 4xx, or the connection broke before the data was complete: not taken, send again later.
    Deferred(String),
    /// 5xx: refused for good (with the server's reply).
    Failed(String),
    /// The connection broke after the data went out: the server may have taken it.
    InDoubt(String),
}

/// A session-level failure (no connection, TLS, authentication): nothing of the message was
/// sent, and the next messages would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError(pub String);

/// A lazily opened, reused connection to the relay.
pub struct Mailer {
    settings: SmtpSettings,
    tls: Option<TlsParameters>,
    hello: ClientId,
    conn: Option<SmtpConnection>,
}

impl Mailer {
    pub fn new(settings: SmtpSettings) -> Result<Mailer> {
        settings.validate()?;
        let tls = match settings.tls {
            TlsMode::None => None,
            _ => Some(settings.tls_parameters()?),
        };
        Ok(Mailer {
            settings,
            tls,
            hello: ClientId::default(),
            conn: None,
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    fn connect(&mut self) -> std::result::Result<&mut SmtpConnection, SessionError> {
        if self.conn.as_ref().is_some_and(|c| c.has_broken()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let s = &self.settings;
            let server = self.server();
            let wrapped = match s.tls {
                TlsMode::Tls => self.tls.as_ref(),
                _ => None,
            };
            let mut conn = SmtpConnection::connect(
                (s.host.as_str(), s.port),
                Some(s.timeout),
                &self.hello,
                wrapped,
                None,
            )
            .map_err(|e| SessionError(format!("cannot connect to {server}: {e}")))?;
            if s.tls == TlsMode::Starttls {
                if !conn.can_starttls() {
                    conn.abort();
                    return Err(SessionError(format!(
                        "{server} does not offer STARTTLS (use --tls tls for SMTPS, or a relay that offers it)"
                    )));
                }
                let params = self.tls.as_ref().expect("built for starttls");
                conn.starttls(params, &self.hello)
                    .map_err(|e| SessionError(format!("STARTTLS with {server} failed: {e}")))?;
            }
            if let Some(c) = &s.credentials {
                let creds = LettreCredentials::new(c.user.clone(), c.password.clone());
                if let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds) {
                    conn.abort();
                    return Err(SessionError(format!(
                        "authentication as {} at {server} failed: {e}",
                        c.user
                    )));
                }
            }
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// One SMTP transaction: `data` is the message as stored (LF or CRLF line ends); it goes
    /// out with CRLF line ends and dot-stuffing, otherwise byte for byte.
    pub fn deliver(
        &mut self,
        from: &lettre::Address,
        to: &lettre::Address,
        data: &[u8],
    ) -> std::result::Result<Outcome, SessionError> {
        let conn = self.connect()?;
        let wire = to_crlf(data);
        let mut params = Vec::new();
        let info = conn.server_info();
        let ascii = from.to_string().is_ascii() && to.to_string().is_ascii();
        if !ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Ok(Outcome::Failed(
                    "not sent: a non-ASCII address, and the server does not support SMTPUTF8"
                        .into(),
                ));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !wire.is_ascii() && info.supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        // Before the end of the data the server has not taken the message: a negative reply or
        // a broken connection leaves it unsent.
        let mut step = conn.command(Mail::new(Some(from.clone()), params));
        if step.is_ok() {
            step = conn.command(Rcpt::new(to.clone(), vec![]));
        }
        if step.is_ok() {
            step = conn.command(Data);
        }
        if let Err(e) = step {
            let outcome = match reply_of(&e) {
                Some(reply) if e.is_permanent() => Outcome::Failed(reply),
                Some(reply) => Outcome::Deferred(reply),
                None => Outcome::Deferred(format!("connection lost before the data: {e}")),
            };
            self.reset_or_drop();
            return Ok(outcome);
        }
        let conn = self.conn.as_mut().expect("connected");
        match conn.message(trim_final_crlf(&wire)) {
            Ok(resp) => Ok(Outcome::Sent(response_text(&resp))),
            Err(e) => match reply_of(&e) {
                Some(reply) => {
                    let permanent = e.is_permanent();
                    self.reset_or_drop();
                    Ok(if permanent {
                        Outcome::Failed(reply)
                    } else {
                        Outcome::Deferred(reply)
                    })
                }
                None => {
                    self.drop_connection();
                    Ok(Outcome::InDoubt(format!(
                        "connection lost after the data was sent, before the server's reply: {e}"
                    )))
                }
            },
        }
    }

    /// After a refused transaction the session can carry on once reset; if it cannot, a new
    /// one is opened for the next message.
    fn reset_or_drop(&mut self) {
        let ok = self
            .conn
            .as_mut()
            .is_some_and(|c| !c.has_broken() && c.command(Rset).is_ok());
        if !ok {
            self.drop_connection();
        }
    }

    fn drop_connection(&mut self) {
        if let Some(mut c) = self.conn.take() {
            c.abort();
        }
    }

    /// Ends the session politely.
    pub fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit();
        }
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        self.close();
    }
}

/// `550 5.1.1 text` of a negative reply; `None` for a network or protocol error.
fn reply_of(e: &lettre::transport::smtp::Error) -> Option<String> {
    let code = e.status()?;
    let text = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some(format!("{code} {text}").trim_end().to_string())
}

fn response_text(r: &Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" "))
        .trim_end()
        .to_string()
}

/// SMTP line ends: every bare LF becomes CRLF (Maildir files use LF).
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// lettre ends the data with `CRLF . CRLF`, whose first CRLF ends the last line: the
/// message's own final line end is dropped so no blank line is added.
fn trim_final_crlf(wire: &[u8]) -> &[u8] {
    wire.strip_suffix(b"\r\n").unwrap_or(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_become_crlf_once() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(trim_final_crlf(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(trim_final_crlf(b"a"), b"a");
    }

    #[test]
    fn unencrypted_only_to_loopback() {
        let s = |host: &str, tls| SmtpSettings {
            host: host.into(),
            port: 25,
            tls,
            credentials: None,
            timeout: Duration::from_secs(5),
            ca_pem: None,
        };
        assert!(s("127.0.0.1", TlsMode::None).validate().is_ok());
        assert!(s("::1", TlsMode::None).validate().is_ok());
        assert!(s("[::1]", TlsMode::None).validate().is_ok());
        let err = s("192.0.2.1", TlsMode::None).validate().unwrap_err();
        assert!(err.to_string().contains("only to a loopback"), "{err}");
        assert!(s("192.0.2.1", TlsMode::Starttls).validate().is_ok());
        assert!(s("", TlsMode::Tls).validate().is_err());
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials::new("relay-user".into(), "hunter2-secret".into());
        let shown = format!("{c:?}");
        assert!(shown.contains("relay-user") && !shown.contains("hunter2"));
    }
}
