//! The load generator's HTTP client: hyper's HTTP/1.1 connection API, one
//! persistent keep-alive connection per concurrent worker (the pool is the
//! set of workers), TCP_NODELAY, bodies sent from shared `Bytes` without
//! copies, response bodies counted and, unless asked for, dropped.

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request body: nothing, one buffer, or one buffer repeated (large uploads).
#[derive(Clone)]
pub enum ReqBody {
    Empty,
    Full(Option<Bytes>),
    Repeat { chunk: Bytes, left: u64 },
}

impl ReqBody {
    pub fn full(b: Bytes) -> ReqBody {
        ReqBody::Full(Some(b))
    }

    fn len(&self) -> u64 {
        match self {
            ReqBody::Empty => 0,
            ReqBody::Full(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            ReqBody::Repeat { left, .. } => *left,
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(match this {
            ReqBody::Empty => None,
            ReqBody::Full(b) => b.take().map(|b| Ok(Frame::data(b))),
            ReqBody::Repeat { chunk, left } => {
                if *left == 0 {
                    None
                } else {
                    let n = (*left).min(chunk.len() as u64) as usize;
                    *left -= n as u64;
                    Some(Ok(Frame::data(chunk.slice(..n))))
                }
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

/// Where requests go: one server, one user.
pub struct Target {
    pub addr: SocketAddr,
    host: HeaderValue,
    auth: Option<HeaderValue>,
}

impl Target {
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> Arc<Target> {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Arc::new(Target {
            addr,
            host: HeaderValue::from_str(&addr.to_string()).expect("address is a header value"),
            auth: Some(
                HeaderValue::from_str(&format!("Basic {token}")).expect("token is a header value"),
            ),
        })
    }

    /// Requests without credentials.
    pub fn anonymous(addr: SocketAddr) -> Arc<Target> {
        Arc::new(Target {
            addr,
            host: HeaderValue::from_str(&addr.to_string()).expect("address is a header value"),
            auth: None,
        })
    }
}

/// One request as the workloads describe it.
#[derive(Clone)]
pub struct Req {
    pub method: Method,
    /// Absolute path (origin form), already percent-encoded.
    pub path: String,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: ReqBody,
    /// Status codes that count as success.
    pub ok: &'static [u16],
    /// When set, a successful answer must have exactly this many body bytes.
    pub expect_len: Option<u64>,
}

impl Req {
    pub fn new(method: &str, path: impl Into<String>) -> Req {
        Req {
            method: Method::from_bytes(method.as_bytes()).expect("a valid method"),
            path: path.into(),
            headers: Vec::new(),
            body: ReqBody::Empty,
            ok: &[200],
            expect_len: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: &'static str) -> Req {
        self.headers.push((name, value));
        self
    }

    pub fn body(mut self, b: ReqBody) -> Req {
        self.body = b;
        self
    }

    pub fn ok(mut self, codes: &'static [u16]) -> Req {
        self.ok = codes;
        self
    }

    pub fn expect_len(mut self, n: u64) -> Req {
        self.expect_len = Some(n);
        self
    }
}

/// An answer: status and body (kept only when asked for; its length always).
pub struct Answer {
    pub status: u16,
    pub len: u64,
    pub body: Vec<u8>,
}

/// One persistent connection, opened on first use and again after the server
/// closed it.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<ReqBody>>,
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, sender: None }
    }

    async fn open(&mut self) -> Result<(), Error> {
        let stream = TcpStream::connect(self.target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(4 << 20)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends `req`; a reused connection the server had closed is replaced and
    /// the request sent once more (only for bodies that can be sent again).
    pub async fn send(&mut self, req: &Req, keep_body: bool) -> Result<Answer, Error> {
        for attempt in 0..2 {
            let fresh = match &self.sender {
                Some(s) if !s.is_closed() => false,
                _ => {
                    self.open().await?;
                    true
                }
            };
            match self.send_once(req, keep_body).await {
                Ok(a) => return Ok(a),
                Err(e) => {
                    self.sender = None;
                    let resendable = !matches!(req.body, ReqBody::Repeat { .. });
                    if fresh || attempt > 0 || !resendable {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    async fn send_once(&mut self, req: &Req, keep_body: bool) -> Result<Answer, Error> {
        let sender = self.sender.as_mut().expect("opened");
        sender.ready().await?;
        let mut b = Request::builder()
            .method(req.method.clone())
            .uri(req.path.as_str())
            .header(header::HOST, self.target.host.clone());
        if let Some(auth) = &self.target.auth {
            b = b.header(header::AUTHORIZATION, auth.clone());
        }
        for (k, v) in &req.headers {
            b = b.header(*k, *v);
        }
        let len = req.body.len();
        if len > 0 || req.method == Method::PUT {
            b = b.header(header::CONTENT_LENGTH, len);
        }
        let resp = sender.send_request(b.body(req.body.clone())?).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut n = 0u64;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                n += data.len() as u64;
                if keep_body {
                    kept.extend_from_slice(&data);
                }
            }
        }
        Ok(Answer { status, len: n, body: kept })
    }
}

/// Latencies and counts of a timed phase.
#[derive(Default)]
pub struct Samples {
    pub lat: Vec<Duration>,
    pub errors: u64,
    pub bytes: u64,
    pub error_samples: Vec<String>,
}

impl Samples {
    pub fn merge(&mut self, o: Samples) {
        self.lat.extend(o.lat);
        self.errors += o.errors;
        self.bytes += o.bytes;
        for e in o.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(e);
            }
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(what);
        }
    }

    /// Sends one request and records it.
    pub async fn timed(&mut self, conn: &mut Conn, req: &Req) {
        let t = Instant::now();
        let r = conn.send(req, false).await;
        self.lat.push(t.elapsed());
        match r {
            Ok(a) if req.ok.contains(&a.status) => {
                self.bytes += a.len;
                if let Some(want) = req.expect_len
                    && a.len != want
                {
                    self.error(format!(
                        "{} {}: {} body bytes, expected {want}",
                        req.method, req.path, a.len
                    ));
                }
            }
            Ok(a) => self.error(format!("{} {} -> {}", req.method, req.path, a.status)),
            Err(e) => self.error(format!("{} {}: {e}", req.method, req.path)),
        }
    }
}

/// Runs every request of `jobs` on `conc` persistent connections.
pub async fn pool(target: &Arc<Target>, conc: usize, jobs: Arc<Vec<Req>>) -> Samples {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (target, jobs, next) = (target.clone(), jobs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut s = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = jobs.get(i) else { break };
                s.timed(&mut conn, req).await;
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.expect("worker task"));
    }
    all
}

/// Sends `req` again and again on `conc` connections for `secs` seconds.
pub async fn for_duration(target: &Arc<Target>, conc: usize, secs: f64, req: Req) -> Samples {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let req = Arc::new(req);
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (target, req) = (target.clone(), req.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut s = Samples::default();
            while Instant::now() < end {
                s.timed(&mut conn, &req).await;
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.expect("worker task"));
    }
    all
}

/// One untimed request on a connection of its own.
pub async fn once(target: &Arc<Target>, req: &Req) -> Result<Answer, Error> {
    Conn::new(target.clone()).send(req, true).await
}
