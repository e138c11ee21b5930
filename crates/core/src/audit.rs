//! The audit log: one JSON object per line for every security-relevant event,
//! each line carrying a hash chain value so that removing or altering a line
//! is detected (`strongroom audit verify`).
//!
//! `chain = sha256(previous chain || "\n" || the line without its chain)`,
//! written as the last field so the verifier can recompute it from the text.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::util::now_secs;

/// The chain value before the first line of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the request behind an event came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub request_id: String,
    pub address: String,
    pub user_agent: String,
}

/// One event. `action` is a dotted name such as `login.failure` or `user.created`.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub action: &'a str,
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    /// A few safe, non-secret details (reason, device name, group, …).
    pub detail: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(action: &'a str) -> Self {
        Event { action, actor: None, target: None, detail: serde_json::Value::Null }
    }
    pub fn actor(mut self, a: &'a str) -> Self {
        self.actor = Some(a);
        self
    }
    pub fn target(mut self, t: &'a str) -> Self {
        self.target = Some(t);
        self
    }
    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }
}

#[derive(Serialize)]
struct Record<'a> {
    time: i64,
    action: &'a str,
    actor: Option<&'a str>,
    target: Option<&'a str>,
    request_id: &'a str,
    address: &'a str,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    detail: &'a serde_json::Value,
}

enum Sink {
    /// Several processes may append (the server, admin commands, other nodes
    /// on a shared folder): each append takes the file lock and continues the
    /// chain from the file's last line, not from memory.
    File(std::fs::File),
    Stdout,
    Syslog(std::os::unix::net::UnixDatagram),
}

struct Writer {
    sink: Sink,
    chain: String,
}

/// The audit log handle; cheap to clone, safe to share.
#[derive(Clone)]
pub struct Audit {
    inner: Arc<Mutex<Writer>>,
}

impl Audit {
    /// Appends to a file, continuing the chain of the lines already there. A
    /// new file is readable by the server's account only (whatever the umask;
    /// the log may lie outside the data folder), an existing one keeps its mode.
    pub fn to_file(path: &Path) -> std::io::Result<Audit> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Audit::with(Sink::File(file), GENESIS.to_owned()))
    }

    pub fn to_stdout() -> Audit {
        Audit::with(Sink::Stdout, GENESIS.to_owned())
    }

    /// Sends each line to the local syslog daemon (`/dev/log`).
    pub fn to_syslog() -> std::io::Result<Audit> {
        let s = std::os::unix::net::UnixDatagram::unbound()?;
        s.connect("/dev/log")?;
        Ok(Audit::with(Sink::Syslog(s), GENESIS.to_owned()))
    }

    fn with(sink: Sink, chain: String) -> Audit {
        Audit { inner: Arc::new(Mutex::new(Writer { sink, chain })) }
    }

    /// Writes an event. A failure to write is logged, never silently dropped.
    pub fn record(&self, origin: &Origin, ev: Event<'_>) {
        let rec = Record {
            time: now_secs(),
            action: ev.action,
            actor: ev.actor,
            target: ev.target,
            request_id: &origin.request_id,
            address: &origin.address,
            user_agent: &origin.user_agent,
            detail: &ev.detail,
        };
        let body = match serde_json::to_string(&rec) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, action = ev.action, "audit event could not be encoded");
                return;
            }
        };
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *w;
        let written = match &mut w.sink {
            Sink::File(f) => append_locked(f, &body).map(|c| w.chain = c),
            other => {
                let chain = next_chain(&w.chain, &body);
                let line = format!("{},\"chain\":\"{chain}\"}}\n", &body[..body.len() - 1]);
                let r = write_stream(other, &line);
                if r.is_ok() {
                    w.chain = chain;
                }
                r
            }
        };
        if let Err(e) = written {
            tracing::error!(error = %e, action = ev.action, "audit event could not be written");
        }
    }
}

/// Appends one record under the file's exclusive lock, chained to the file's
/// current last line. Returns the new chain value. A record that could not
/// be written whole (no room left) is cut off again: the next record would
/// otherwise continue its partial line and the chain could not be verified.
fn append_locked(f: &mut std::fs::File, body: &str) -> std::io::Result<String> {
    f.lock()?;
    let result = (|| {
        let (len, prev) = tail_chain(f)?;
        let chain = next_chain(&prev, body);
        let line = format!("{},\"chain\":\"{chain}\"}}\n", &body[..body.len() - 1]);
        if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
            let _ = f.set_len(len);
            return Err(e);
        }
        Ok(chain)
    })();
    let _ = f.unlock();
    result
}

/// The length of an open file and the chain value of its last line (read
/// from its end).
fn tail_chain(f: &mut std::fs::File) -> std::io::Result<(u64, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((0, GENESIS.to_owned()));
    }
    let back = len.min(64 * 1024);
    f.seek(SeekFrom::Start(len - back))?;
    let mut buf = Vec::with_capacity(back as usize);
    f.take(back).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let last = text.trim_end_matches('\n').rsplit('\n').next().unwrap_or("");
    Ok((len, split_line(last).map_or_else(|| GENESIS.to_owned(), |(_, c)| c.to_owned())))
}

fn write_stream(sink: &mut Sink, line: &str) -> std::io::Result<()> {
    match sink {
        Sink::File(f) => f.write_all(line.as_bytes()),
        Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
        // Priority 86: facility authpriv (10), severity info (6).
        Sink::Syslog(s) => {
            s.send(format!("<86>strongroom-audit: {}", line.trim_end()).as_bytes()).map(drop)
        }
    }
}

fn next_chain(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Splits a line into its body (as hashed) and its chain value.
fn split_line(line: &str) -> Option<(String, &str)> {
    let at = line.rfind(",\"chain\":\"")?;
    let chain = line[at + 10..].strip_suffix("\"}")?;
    Some((format!("{}}}", &line[..at]), chain))
}

/// The result of checking an audit file.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        lines: usize,
    },
    /// The first line (1-based) whose chain does not follow from the lines before it.
    Broken {
        line: usize,
        reason: String,
    },
}

/// Recomputes the chain of an audit file.
pub fn verify(path: &PathBuf) -> std::io::Result<Verdict> {
    let file = std::fs::File::open(path)?;
    let mut prev = GENESIS.to_owned();
    let mut n = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        n = i + 1;
        let Some((body, chain)) = split_line(&line) else {
            return Ok(Verdict::Broken { line: n, reason: "not an audit record".into() });
        };
        if serde_json::from_str::<serde_json::Value>(&body).is_err() {
            return Ok(Verdict::Broken { line: n, reason: "not valid JSON".into() });
        }
        let want = next_chain(&prev, &body);
        if want != chain {
            return Ok(Verdict::Broken { line: n, reason: "the chain value does not follow from the previous line: this line was altered, or one before it was removed".into() });
        }
        prev = want;
    }
    Ok(Verdict::Intact { lines: n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("sr-audit-{}", rand::random::<u64>()))
    }

    #[cfg(unix)]
    #[test]
    fn a_new_log_is_readable_by_the_owner_only_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let p = temp();
        drop(Audit::to_file(&p).unwrap());
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(Audit::to_file(&p).unwrap());
        assert_eq!(mode(&p), 0o640);
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn the_chain_detects_edits_and_removals() {
        let p = temp();
        let a = Audit::to_file(&p).unwrap();
        let o = Origin {
            request_id: "r1".into(),
            address: "192.0.2.1".into(),
            user_agent: "ua\n\"x".into(),
        };
        for i in 0..5 {
            let t = format!("user{i}");
            a.record(
                &o,
                Event::new("login.failure")
                    .actor(&t)
                    .detail(serde_json::json!({"reason": "wrong password"})),
            );
        }
        // A second writer, open at the same time, continues the same chain.
        Audit::to_file(&p).unwrap().record(&o, Event::new("logout").actor("x"));
        a.record(&o, Event::new("logout").actor("y"));
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { lines: 7 });
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 7, "one line per event, whatever the user agent holds");

        let mut lines: Vec<&str> = text.lines().collect();
        let edited = lines[2].replace("user2", "userX");
        lines[2] = &edited;
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        assert!(matches!(verify(&p).unwrap(), Verdict::Broken { line: 3, .. }));

        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(3);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        assert!(matches!(verify(&p).unwrap(), Verdict::Broken { line: 4, .. }));
        let _ = std::fs::remove_file(&p);
    }
}
