//! A minimal SMTP client: one message to one recipient through the operator's relay, in plain
//! SMTP (`EHLO`, `MAIL FROM`, `RCPT TO`, `DATA`, `QUIT`), within a deadline. No authentication
//! and no TLS: the relay is expected to be local (see `docs/health.md`). Its errors name the
//! step and the reply code, never the relay's reply text.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line read from the relay.
const MAX_LINE: usize = 1_000;
/// Most lines of one (multi-line) reply.
const MAX_REPLY_LINES: usize = 100;

/// One e-mail.
pub struct Mail<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Sends `mail` through the relay at `addr` within `timeout`; an error is a short, stable
/// description.
pub async fn send(addr: &str, mail: &Mail<'_>, timeout: Duration) -> Result<(), String> {
    tokio::time::timeout(timeout, exchange(addr, mail))
        .await
        .unwrap_or_else(|_| Err(format!("SMTP timed out after {}s", timeout.as_secs_f32())))
}

async fn exchange(addr: &str, mail: &Mail<'_>) -> Result<(), String> {
    for address in [mail.from, mail.to] {
        if address
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>')
        {
            return Err("an e-mail address holds characters SMTP cannot carry".into());
        }
    }
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| "could not connect to the SMTP relay".to_owned())?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, "greeting", &[220]).await?;
    command(&mut write, "EHLO stackgate.localhost").await?;
    expect(&mut read, "EHLO", &[250]).await?;
    command(&mut write, &format!("MAIL FROM:<{}>", mail.from)).await?;
    expect(&mut read, "MAIL FROM", &[250]).await?;
    command(&mut write, &format!("RCPT TO:<{}>", mail.to)).await?;
    expect(&mut read, "RCPT TO", &[250, 251]).await?;
    command(&mut write, "DATA").await?;
    expect(&mut read, "DATA", &[354]).await?;
    write
        .write_all(message(mail).as_bytes())
        .await
        .map_err(|_| "the SMTP connection broke".to_owned())?;
    expect(&mut read, "the message", &[250]).await?;
    let _ = command(&mut write, "QUIT").await;
    Ok(())
}

async fn command(write: &mut tokio::net::tcp::OwnedWriteHalf, line: &str) -> Result<(), String> {
    write
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|_| "the SMTP connection broke".to_owned())
}

/// Reads one reply (all its lines) and checks its code.
async fn expect(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    step: &str,
    codes: &[u16],
) -> Result<(), String> {
    for _ in 0..MAX_REPLY_LINES {
        let mut line = Vec::new();
        let n = (&mut *read)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|_| "the SMTP connection broke".to_owned())?;
        if n == 0 {
            return Err(format!("the SMTP relay closed the connection at {step}"));
        }
        let code = std::str::from_utf8(line.get(..3).unwrap_or_default())
            .ok()
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("the SMTP relay answered {step} with no reply code"))?;
        if line.get(3) == Some(&b'-') {
            continue;
        }
        return match codes.contains(&code) {
            true => Ok(()),
            false => Err(format!("the SMTP relay answered {step} with {code}")),
        };
    }
    Err(format!("the SMTP relay's reply to {step} is too long"))
}

/// The message as sent after `DATA`: headers, a blank line, the body with CRLF line ends and
/// dot-stuffing, and the closing `.` line.
pub fn message(mail: &Mail<'_>) -> String {
    let date = chrono::Utc::now().to_rfc2822();
    let id = uuid::Uuid::new_v4().simple();
    let mut out = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{id}@stackgate.localhost>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n",
        mail.from,
        mail.to,
        header_text(mail.subject)
    );
    for line in mail.body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// A header value on one line: control characters become spaces; non-ASCII text is an RFC 2047
/// encoded word.
fn header_text(text: &str) -> String {
    use base64::Engine as _;
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if flat.is_ascii() {
        return flat;
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(flat.as_bytes());
    format!("=?UTF-8?B?{encoded}?=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_dot_stuffed_and_headers_stay_on_one_line() {
        let mail = Mail {
            from: "a@example.invalid",
            to: "b@example.invalid",
            subject: "x\r\nBcc: evil@example.invalid",
            body: "one\n.two\n.",
        };
        let text = message(&mail);
        assert!(
            text.contains("Subject: x  Bcc: evil@example.invalid\r\n"),
            "{text}"
        );
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.ends_with("\r\none\r\n..two\r\n..\r\n.\r\n"), "{text}");
        let accented = header_text("café");
        assert!(accented.starts_with("=?UTF-8?B?"), "{accented}");
    }
}
