//! Sending one-time codes: by email through an SMTP relay, by SMS through an
//! HTTP gateway. Both speak to a service the administrator runs next to the
//! server (a local MTA, an SMS gateway), so plain SMTP and plain HTTP with a
//! ten-second limit are all that is needed here.

use std::time::Duration;

use serde_json::json;
use strongroom_core::{Error, Result, User, audit::Event, secret::Secret};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{app::App, http::client::Client};

const LIMIT: Duration = Duration::from_secs(10);

/// Makes a code for `kind` and sends it to `address`; returns the ceremony
/// handle. Every send counts against the user's failure budget (action
/// "2fa-send"), so nobody can make the server flood an inbox or a phone.
pub async fn issue_and_send(
    app: &App,
    client: &Client,
    user: &User,
    kind: &str,
    address: &str,
) -> Result<Secret> {
    super::budget::send(app, client, &user.uid).await?;
    let (handle, code) = app.twofactor.code_issue(user.id, kind, address).await?;
    let text =
        format!("Your Strongroom login code is {}. It is valid for 10 minutes.", code.expose());
    let sent = match kind {
        "email" => send_mail(app, address, &text).await,
        "sms" => send_sms(app, address, &text).await,
        _ => Err("unknown channel".into()),
    };
    let ev = Event::new("twofactor.code_sent").actor(&user.uid).detail(json!({
        "provider": kind, "ok": sent.is_ok(), "error": sent.as_ref().err()
    }));
    app.audit.record(&client.origin(), ev);
    match sent {
        Ok(()) => Ok(handle),
        Err(e) => {
            tracing::warn!(error = %e, kind, "sending a one-time code failed");
            Err(Error::Unavailable(e))
        }
    }
}

/// Whether codes can be sent by `kind` at all (the channel is configured).
pub fn available(app: &App, kind: &str) -> bool {
    match kind {
        "email" => app.twofactor_config.smtp_host.is_some(),
        "sms" => app.twofactor_config.sms_url.is_some(),
        _ => false,
    }
}

async fn send_mail(app: &App, to: &str, text: &str) -> std::result::Result<(), String> {
    let c = &app.twofactor_config;
    let host = c.smtp_host.as_deref().ok_or("no twofactor.smtp_host configured")?;
    let from = c.smtp_from.as_deref().unwrap_or("strongroom@localhost");
    let port = c.smtp_port.unwrap_or(25);
    let message = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Your login code\r\nDate: {}\r\n\
         Message-ID: <{}@strongroom>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        hex::encode(rand::random::<[u8; 16]>())
    );
    let talk = async {
        let stream = TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
        let mut s = BufReader::new(stream);
        expect(&mut s, "220").await?;
        for (line, want) in [
            ("EHLO strongroom\r\n".to_owned(), "250"),
            (format!("MAIL FROM:<{from}>\r\n"), "250"),
            (format!("RCPT TO:<{to}>\r\n"), "250"),
            ("DATA\r\n".to_owned(), "354"),
            (format!("{message}.\r\n"), "250"),
            ("QUIT\r\n".to_owned(), "221"),
        ] {
            s.get_mut().write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
            expect(&mut s, want).await?;
        }
        Ok(())
    };
    tokio::time::timeout(LIMIT, talk).await.map_err(|_| "SMTP relay timed out".to_owned())?
}

/// Reads one (possibly multi-line) SMTP reply and checks its code.
async fn expect(s: &mut BufReader<TcpStream>, want: &str) -> std::result::Result<(), String> {
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("SMTP relay closed the connection".into());
        }
        if !line.starts_with(want) {
            return Err(format!("SMTP relay answered {:?}", line.trim_end()));
        }
        // "250-..." continues, "250 ..." ends the reply.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

async fn send_sms(app: &App, to: &str, text: &str) -> std::result::Result<(), String> {
    let url = app.twofactor_config.sms_url.as_deref().ok_or("no twofactor.sms_url configured")?;
    let url = webauthn_rs::prelude::Url::parse(url).map_err(|e| e.to_string())?;
    let host = url.host_str().ok_or("sms_url has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let body = json!({ "to": to, "message": text }).to_string();
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let talk = async {
        let mut stream =
            TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut status = String::new();
        BufReader::new(stream).read_line(&mut status).await.map_err(|e| e.to_string())?;
        let code = status.split_whitespace().nth(1).unwrap_or("");
        if code.starts_with('2') {
            Ok(())
        } else {
            Err(format!("SMS gateway answered {:?}", status.trim_end()))
        }
    };
    tokio::time::timeout(LIMIT, talk).await.map_err(|_| "SMS gateway timed out".to_owned())?
}
