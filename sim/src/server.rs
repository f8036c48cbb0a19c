//! A real HTTP/1.1 server on 127.0.0.1 for the simulated modem (and anything else) to
//! download from.
//!
//! Files are served by `tower-http`'s `ServeDir` (Range requests with 206 and
//! `Content-Range`, `If-Modified-Since`/`If-Range`, `HEAD`), behind `axum` on a
//! current-thread tokio runtime on a background thread. In-memory files are written to a
//! private temporary directory that is removed when the server is dropped.
//!
//! Per path, or for every path, the server can misbehave ([`Behavior`]): 404, 500, ignore
//! `Range` (200 with the whole file), announce a wrong `Content-Length`, close the connection
//! after N body bytes, answer late, redirect (absolute or relative `Location`), or send the
//! body chunked (no `Content-Length`).

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body::Frame;
use tower_http::services::ServeDir;

/// How the server answers a request.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Serve the file (Range, conditional requests, 404 for missing files).
    #[default]
    Normal,
    /// `404 Not Found` with an empty body.
    NotFound,
    /// `500 Internal Server Error`.
    ServerError,
    /// Ignore `Range`/`If-Range`: `200` with the whole file.
    IgnoreRange,
    /// Announce `Content-Length` = real length + delta. A longer announcement ends with the
    /// connection closed early; a shorter one cuts the body there.
    WrongContentLength(i64),
    /// Announce the full length but close the connection after this many body bytes.
    CloseAfter(u64),
    /// Wait this long (wall clock) before answering normally.
    Slow(Duration),
    /// `302 Found` to this path, as an absolute URL (`http://127.0.0.1:<port><path>`).
    Redirect(String),
    /// `302 Found` with this relative `Location` (e.g. `/fw.bin`).
    RedirectRelative(String),
    /// `200` with the body sent chunked (`Transfer-Encoding: chunked`, no length).
    Chunked,
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// All headers (names lower-case).
    pub headers: Vec<(String, String)>,
}

/// State shared with the server thread (and with a [`World`](crate::World) the server is
/// attached to, for `server-*` faults).
#[derive(Debug)]
pub(crate) struct Shared {
    root: PathBuf,
    base_url: String,
    behaviors: Mutex<BTreeMap<String, Behavior>>,
    default: Mutex<Behavior>,
    requests: Mutex<Vec<RequestRecord>>,
}

pub(crate) type ServerHandle = Arc<Shared>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Sets a behaviour for one path, or the default when `path` is `None`.
    pub(crate) fn set(&self, path: Option<&str>, b: Behavior) {
        match path {
            Some(p) => {
                lock(&self.behaviors).insert(normalise(p), b);
            }
            None => *lock(&self.default) = b,
        }
    }

    fn behavior_for(&self, path: &str) -> Behavior {
        if let Some(b) = lock(&self.behaviors).get(path) {
            return b.clone();
        }
        let d = lock(&self.default).clone();
        match &d {
            // A default redirect must not redirect its own target.
            Behavior::Redirect(to) | Behavior::RedirectRelative(to) if normalise(to) == path => {
                Behavior::Normal
            }
            _ => d,
        }
    }
}

fn normalise(p: &str) -> String {
    let p = p.split('?').next().unwrap_or("");
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[derive(Debug, Default)]
struct Stop {
    flag: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct StopFuture(Arc<Stop>);

impl Future for StopFuture {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.flag.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *lock(&self.0.waker) = Some(cx.waker().clone());
        if self.0.flag.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A running test server; stops (and deletes its temporary files) when dropped.
///
/// ```no_run
/// use cellular_ota_sim::{Behavior, TestServer};
///
/// let server = TestServer::start([("fw.bin", vec![1u8; 1000])]).unwrap();
/// let url = server.url("/fw.bin"); // http://127.0.0.1:<port>/fw.bin
/// server.set_behavior("/fw.bin", Behavior::IgnoreRange);
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
    temp_dir: Option<PathBuf>,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl TestServer {
    /// Serves these in-memory files (`(path, bytes)`, e.g. `("fw/app.bin", data)`) on an
    /// ephemeral port of 127.0.0.1.
    pub fn start<I, K>(files: I) -> io::Result<TestServer>
    where
        I: IntoIterator<Item = (K, Vec<u8>)>,
        K: AsRef<str>,
    {
        let dir = std::env::temp_dir().join(format!(
            "cellular-ota-sim-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        for (path, data) in files {
            write_file(&dir, path.as_ref(), &data)?;
        }
        let mut s = TestServer::launch(dir.clone())?;
        s.temp_dir = Some(dir);
        Ok(s)
    }

    /// Serves the files of a directory.
    pub fn serve_dir(dir: impl AsRef<Path>) -> io::Result<TestServer> {
        TestServer::launch(dir.as_ref().to_path_buf())
    }

    fn launch(root: PathBuf) -> io::Result<TestServer> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            root,
            base_url: format!("http://{addr}"),
            behaviors: Mutex::new(BTreeMap::new()),
            default: Mutex::new(Behavior::Normal),
            requests: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(Stop::default());
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cellular-ota-sim-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let serve = axum::serve(listener, router).into_future();
                    let mut serve = std::pin::pin!(serve);
                    let mut stop = std::pin::pin!(StopFuture(stop2));
                    std::future::poll_fn(|cx| {
                        if stop.as_mut().poll(cx).is_ready() || serve.as_mut().poll(cx).is_ready() {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                });
                runtime.shutdown_background();
            })?;
        Ok(TestServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
            temp_dir: None,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The URL of `path` (`/fw.bin` or `fw.bin`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.shared.base_url, normalise(path))
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds or replaces a served file.
    pub fn add_file(&self, path: &str, data: &[u8]) -> io::Result<()> {
        write_file(&self.shared.root, path, data)
    }

    /// Makes the server answer `path` this way.
    pub fn set_behavior(&self, path: &str, behavior: Behavior) {
        self.shared.set(Some(path), behavior);
    }

    /// Makes the server answer every path without its own behaviour this way.
    pub fn set_default_behavior(&self, behavior: Behavior) {
        self.shared.set(None, behavior);
    }

    /// Back to normal for every path.
    pub fn clear_behaviors(&self) {
        lock(&self.shared.behaviors).clear();
        *lock(&self.shared.default) = Behavior::Normal;
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    pub(crate) fn handle(&self) -> ServerHandle {
        self.shared.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.flag.store(true, Ordering::SeqCst);
        if let Some(w) = lock(&self.stop.waker).take() {
            w.wake();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn safe_relative(path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    }
}

fn write_file(root: &Path, path: &str, data: &[u8]) -> io::Result<()> {
    let rel = safe_relative(path)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad path"))?;
    let full = root.join(rel);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(full, data)
}

/// A body that sends `data[..stop]` in 4 KiB frames, then ends or fails. Before it ends
/// short of the announced length it yields once, so that hyper flushes what was sent
/// before it closes the connection.
struct Scripted {
    data: Bytes,
    pos: usize,
    stop: usize,
    fail: bool,
    yielded: bool,
}

impl http_body::Body for Scripted {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.pos < this.stop {
            let n = (this.stop - this.pos).min(4096);
            let b = this.data.slice(this.pos..this.pos + n);
            this.pos += n;
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if !this.yielded {
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.fail {
            this.fail = false;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed early",
            ))));
        }
        Poll::Ready(None)
    }
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

fn body_response(data: Bytes, stop: usize, fail: bool, length: Option<u64>) -> Response {
    let body = Scripted {
        data,
        pos: 0,
        stop,
        fail,
        yielded: false,
    };
    let mut r = Response::new(Body::new(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(len) = length {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

async fn serve_file(shared: &Shared, req: Request) -> Response {
    let mut dir = ServeDir::new(&shared.root);
    match dir.try_call(req).await {
        Ok(r) => r.map(Body::new),
        Err(e) if e.kind() == io::ErrorKind::NotFound => status(StatusCode::NOT_FOUND),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn handle(State(shared): State<Arc<Shared>>, mut req: Request) -> Response {
    let path = req.uri().path().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    lock(&shared.requests).push(RequestRecord {
        method: req.method().as_str().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or(path.clone(), |p| p.as_str().to_string()),
        range: req
            .headers()
            .get(header::RANGE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        headers,
    });
    let behavior = shared.behavior_for(&path);
    let read = |p: &str| safe_relative(p).and_then(|rel| std::fs::read(shared.root.join(rel)).ok());
    match behavior {
        Behavior::Normal => serve_file(&shared, req).await,
        Behavior::Slow(d) => {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
            serve_file(&shared, req).await
        }
        Behavior::NotFound => status(StatusCode::NOT_FOUND),
        Behavior::ServerError => status(StatusCode::INTERNAL_SERVER_ERROR),
        Behavior::IgnoreRange => {
            req.headers_mut().remove(header::RANGE);
            req.headers_mut().remove(header::IF_RANGE);
            serve_file(&shared, req).await
        }
        Behavior::Redirect(to) => redirect(&format!("{}{}", shared.base_url, normalise(&to))),
        Behavior::RedirectRelative(to) => redirect(&to),
        Behavior::WrongContentLength(delta) => match read(&path) {
            Some(data) => {
                let len = data.len();
                let announced = (len as i64).saturating_add(delta).max(0) as u64;
                body_response(Bytes::from(data), len, false, Some(announced))
            }
            None => status(StatusCode::NOT_FOUND),
        },
        Behavior::CloseAfter(n) => match read(&path) {
            Some(data) => {
                let len = data.len();
                // A range is served as asked (206), and cut where the file's byte `n` would
                // have been sent: the connection drops at the same place in the file
                // whether the client asked for all of it or for a range.
                let range = req
                    .headers()
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| single_range(v, len));
                match range {
                    Some((a, b)) => {
                        let part = Bytes::from(data).slice(a..=b);
                        let stop = (n.saturating_sub(a as u64)).min(part.len() as u64) as usize;
                        let plen = part.len() as u64;
                        let mut r = body_response(part, stop, true, Some(plen));
                        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
                            r.headers_mut().insert(header::CONTENT_RANGE, v);
                        }
                        r
                    }
                    None => {
                        let stop = (n.min(len as u64)) as usize;
                        body_response(Bytes::from(data), stop, true, Some(len as u64))
                    }
                }
            }
            None => status(StatusCode::NOT_FOUND),
        },
        Behavior::Chunked => match read(&path) {
            Some(data) => {
                let len = data.len();
                body_response(Bytes::from(data), len, false, None)
            }
            None => status(StatusCode::NOT_FOUND),
        },
    }
}

/// `bytes=<a>-[<b>]` within a file of `len` bytes, as inclusive bounds.
fn single_range(v: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    let a: usize = a.trim().parse().ok()?;
    let b: usize = match b.trim() {
        "" => len.checked_sub(1)?,
        b => b.parse::<usize>().ok()?.min(len.checked_sub(1)?),
    };
    (a <= b).then_some((a, b))
}

fn redirect(location: &str) -> Response {
    let mut r = status(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
