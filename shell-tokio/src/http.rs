//! Scrapes and HTTP SD requests over tokio: the core's HTTP/1.1 codec (request heads,
//! the response reader) on `tokio::net::TcpStream`, with `tokio-rustls` for `https`.
//! It behaves as the mio daemon's client does: the same proxy routing (the core's
//! `http::proxy`), the same TLS settings (`trawl_io::tls`), keep-alive connections per
//! host, port, TLS configuration and proxy, one retry when a kept-alive connection
//! turns out closed, redirects, and Go's wording for dial errors.
//!
//! Each request is a task; it reports the response as it arrives over the agent's
//! channel, and aborting the task (the core's `Cancel`) closes its connection.
//!
//! Not hyper: hyper would bring its own connection pool, proxy handling and error
//! wording, and the tokio shell would then scrape differently from the daemon (another
//! keep-alive policy, other `lastError` texts). With the core's codec both shells send
//! the same bytes and report the same errors; the parity tests compare them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use trawl_core::config::HttpClientConfig;
use trawl_core::http::proxy::{self, ProxyEnv, Route};
use trawl_core::http::{
    ResponseEvent, ResponseHead, ResponseReader, Scheme, Url, write_get, write_post,
};
use trawl_core::io::{CredentialsFile, HttpRequest, OwnedIoEvent, RequestId};

use trawl_core::resolver::host::DnsIo;
use trawl_io::client::{Caller, RemoteId};
use trawl_io::resolve::{ResolverFiles, ResolverOptions};

use crate::Done;

/// Redirects followed before giving up (as Go's client).
const MAX_REDIRECTS: u8 = 10;

/// Bytes read from all connections together that may wait for the agent, in KiB: a
/// request task takes credit for what it read before handing it over and the agent
/// gives it back once fed, so a target streaming faster than the agent parses waits on
/// its socket instead of filling memory (the daemon's `READ_PER_TURN`). Tokio's
/// semaphore is fair: every connection gets its turn.
const READ_CREDIT_KIB: usize = 4 << 10;
/// Of that, what one request may have waiting: a body the agent parses in slices (a gzip
/// body that inflates far) holds its credit until the agent caught up, and its task
/// waits on this before reading more, without taking the others' share.
const REQUEST_CREDIT_KIB: usize = 128;

/// Read credit a body chunk carries to the agent: the shared part and the request's own.
#[derive(Debug)]
pub(crate) struct Credit {
    _shared: Option<tokio::sync::OwnedSemaphorePermit>,
    _own: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// How the client keeps connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Idle keep-alive connections kept per host, port, TLS configuration and proxy
    /// (0: a connection per request).
    pub max_idle_per_host: usize,
    /// Bytes read from a connection at a time.
    pub read_buffer: usize,
    /// The hosts file every connection's name is looked up in before DNS (name
    /// servers come from `AgentOptions::resolv_conf` and `dns_port`).
    pub hosts_file: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_idle_per_host: 2,
            read_buffer: 64 << 10,
            hosts_file: "/etc/hosts".into(),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: Box<dyn Io>,
    addr: SocketAddr,
}

/// What makes a kept-alive connection reusable for a request (as the mio client: host,
/// port, the TLS configuration it was verified with and the server name, and the
/// proxy). A forwarding proxy's connection serves any `http://` target.
type PoolKey = (
    String,
    u16,
    Option<(usize, String)>,
    Option<(String, u16, bool)>,
);

struct Inner {
    options: HttpOptions,
    idle: Mutex<BTreeMap<PoolKey, Vec<Conn>>>,
    tls: Mutex<trawl_io::tls::TlsConfigs>,
    proxy_env: ProxyEnv,
    /// Credit for bytes read and not yet fed to the agent (see [`READ_CREDIT_KIB`]).
    credit: Arc<tokio::sync::Semaphore>,
    /// `/etc/hosts` and `/etc/resolv.conf` as last read, for every connection's name.
    resolver: Mutex<ResolverFiles>,
    /// The lookups' clock.
    epoch: tokio::time::Instant,
}

/// The shell's HTTP client; cheap to clone.
#[derive(Clone)]
pub(crate) struct Client(Arc<Inner>);

/// How one exchange on a connection ended.
enum Exchange {
    /// The response was reported; the connection may serve another request.
    Done { reusable: bool },
    /// A redirect to follow (its body was skipped).
    Redirect { to: Url, reusable: bool },
}

/// A failed exchange; `fresh` is true if no byte of the response had arrived.
struct Failed {
    msg: String,
    fresh: bool,
}

impl Client {
    pub(crate) fn new(options: HttpOptions, resolver: ResolverOptions) -> Client {
        Client(Arc::new(Inner {
            options,
            resolver: Mutex::new(ResolverFiles::new(resolver)),
            epoch: tokio::time::Instant::now(),
            idle: Mutex::new(BTreeMap::new()),
            tls: Mutex::new(Default::default()),
            proxy_env: ProxyEnv::from_lookup(|k| std::env::var(k).ok()),
            credit: Arc::new(tokio::sync::Semaphore::new(READ_CREDIT_KIB)),
        }))
    }

    /// Starts a GET as a task reporting to `tx`; abort the handle to cancel it.
    pub(crate) fn get(
        &self,
        id: RequestId,
        req: HttpRequest,
        tx: UnboundedSender<Done>,
    ) -> AbortHandle {
        let caller = Caller::Agent(id);
        let inner = self.0.clone();
        tokio::spawn(async move {
            let r = Req {
                url: &req.url,
                headers: &req.headers,
                credentials_file: req.credentials_file.as_ref(),
                client: &req.client,
                body: req.body.as_deref(),
                follow: req.client.follow_redirects,
            };
            if let Err(msg) = inner.request(caller, r, &tx).await {
                let _ = tx.send(Done::Io(caller, OwnedIoEvent::Failed(msg)));
            }
        })
        .abort_handle()
    }

    /// Opens a byte stream (`IoOp::Stream`) as a task: a Unix socket, or the host resolved as for HTTP,
    /// every address tried in order within the connect timeout; then what arrives is
    /// reported in chunks of at most 64 KiB, and what comes on the returned channel is
    /// written, until either side ends or the handle is aborted.
    pub(crate) fn stream(
        &self,
        id: RequestId,
        s: trawl_core::io::StreamOpen,
        tx: UnboundedSender<Done>,
    ) -> (AbortHandle, UnboundedSender<Vec<u8>>) {
        let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let inner = self.0.clone();
        let caller = Caller::Agent(id);
        let h = tokio::spawn(async move {
            let report = |e| {
                let _ = tx.send(Done::Io(caller, e));
            };
            if let Some(path) = &s.unix_path {
                let sock = match tokio::time::timeout(
                    s.connect_timeout,
                    tokio::net::UnixStream::connect(path),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        return report(OwnedIoEvent::Failed(format!("dial unix {path}: {e}")));
                    }
                    Err(_) => {
                        return report(OwnedIoEvent::Failed(format!(
                            "dial unix {path}: i/o timeout"
                        )));
                    }
                };
                report(OwnedIoEvent::StreamOpened);
                return pump(sock, &mut wrx, &report).await;
            }
            let host = s.host.trim_start_matches('[').trim_end_matches(']');
            let addrs = match inner.resolve(host, s.port, false).await {
                Ok(a) => a,
                Err(e) => return report(OwnedIoEvent::Failed(e)),
            };
            let mut first_error = None;
            let mut sock = None;
            for addr in addrs {
                match tokio::time::timeout(s.connect_timeout, TcpStream::connect(addr)).await {
                    Ok(Ok(c)) => {
                        sock = Some(c);
                        break;
                    }
                    Ok(Err(e)) => {
                        first_error.get_or_insert(format!("dial tcp {addr}: {e}"));
                    }
                    Err(_) => {
                        first_error.get_or_insert(format!("dial tcp {addr}: i/o timeout"));
                    }
                }
            }
            let Some(sock) = sock else {
                let e = first_error.unwrap_or_else(|| "no usable address".into());
                return report(OwnedIoEvent::Failed(e));
            };
            report(OwnedIoEvent::StreamOpened);
            pump(sock, &mut wrx, &report).await;
        })
        .abort_handle();
        (h, wtx)
    }

    /// Starts a POST (remote write; redirects are not followed) as a task.
    pub(crate) fn post(
        &self,
        id: RemoteId,
        p: trawl_io::remote::Post<'_>,
        tx: UnboundedSender<Done>,
    ) -> AbortHandle {
        let caller = Caller::Remote(id);
        let inner = self.0.clone();
        let (url, headers, creds, client, body) = (
            p.url.to_owned(),
            p.headers,
            p.credentials_file.cloned(),
            p.client,
            p.body,
        );
        tokio::spawn(async move {
            let r = Req {
                url: &url,
                headers: &headers,
                credentials_file: creds.as_ref(),
                client: &client,
                body: Some(&body),
                follow: false,
            };
            if let Err(msg) = inner.request(caller, r, &tx).await {
                let _ = tx.send(Done::Io(caller, OwnedIoEvent::Failed(msg)));
            }
        })
        .abort_handle()
    }
}

/// One request as the client sends it.
struct Req<'a> {
    url: &'a str,
    headers: &'a [(String, String)],
    credentials_file: Option<&'a CredentialsFile>,
    client: &'a HttpClientConfig,
    /// A POST's body (`None`: a GET).
    body: Option<&'a [u8]>,
    follow: bool,
}

impl Inner {
    async fn request(
        &self,
        caller: Caller,
        req: Req<'_>,
        tx: &UnboundedSender<Done>,
    ) -> Result<(), String> {
        let mut headers = req.headers.to_vec();
        let mut signed_url = None;
        if let Some(f) = req.credentials_file {
            let method = if req.body.is_some() { "POST" } else { "GET" };
            let (u, h) =
                trawl_io::authorize(f, method, req.url, &headers, req.body.unwrap_or_default())?;
            signed_url = u;
            headers.extend(h);
        }
        let mut url = Url::parse(signed_url.as_deref().unwrap_or(req.url))?;
        let follow = req.follow;
        for _ in 0..=MAX_REDIRECTS {
            // Per hop: a redirect may lead to a host the proxy settings treat otherwise.
            let route = proxy::route(req.client, &self.proxy_env, &url)?;
            let tls = if url.scheme == Scheme::Https {
                let t = &req.client.tls_config;
                let config = self
                    .tls
                    .lock()
                    .map_err(|_| "tls: configuration cache poisoned".to_owned())?
                    .get(t)?;
                let name = if t.server_name.is_empty() {
                    url.host.clone()
                } else {
                    t.server_name.clone()
                };
                Some((config, name))
            } else {
                None
            };
            let forwarded = route.as_ref().is_some_and(|r| !r.tunnel);
            let key = pool_key(&url, tls.as_ref(), route.as_ref());
            let mut out = Vec::new();
            let auth = route
                .as_ref()
                .filter(|_| forwarded)
                .and_then(|r| r.authorization.clone())
                .map(|a| ("Proxy-Authorization".to_owned(), a));
            let mut h;
            let all = match auth {
                Some(a) => {
                    h = headers.clone();
                    h.push(a);
                    &h
                }
                None => &headers,
            };
            match req.body {
                Some(b) => {
                    write_post(&mut out, &url, all, b.len(), forwarded)?;
                    out.extend_from_slice(b);
                }
                None => write_get(&mut out, &url, all, forwarded)?,
            }
            let mut idle = self.take_idle(&key);
            let outcome = loop {
                let (mut conn, reused) = match idle.take() {
                    Some(c) => (c, true),
                    None => (
                        self.connect(&url, route.as_ref(), tls.as_ref()).await?,
                        false,
                    ),
                };
                let ex = Call {
                    out: &out,
                    follow,
                    base: &url,
                    caller,
                    tx,
                    options: &self.options,
                    credit: &self.credit,
                };
                match exchange(&mut conn, ex).await {
                    Ok(e) => break (e, conn),
                    // A kept-alive connection the server had closed: once more, fresh.
                    Err(f) if reused && f.fresh => continue,
                    Err(f) => return Err(f.msg),
                }
            };
            match outcome {
                (Exchange::Done { reusable }, conn) => {
                    if reusable {
                        self.park(key, conn);
                    }
                    return Ok(());
                }
                (Exchange::Redirect { to, reusable }, conn) => {
                    if reusable {
                        self.park(key, conn);
                    }
                    url = to;
                }
            }
        }
        Err(format!("stopped after {MAX_REDIRECTS} redirects"))
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Conn> {
        self.idle.lock().ok()?.get_mut(key).and_then(Vec::pop)
    }

    fn park(&self, key: PoolKey, conn: Conn) {
        if self.options.max_idle_per_host == 0 {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let v = idle.entry(key).or_default();
            v.push(conn);
            if v.len() > self.options.max_idle_per_host {
                v.remove(0);
            }
        }
    }

    /// The addresses of `host`, through the core's stub resolver (the same as DNS
    /// discovery's): `/etc/hosts`, then A and AAAA at once over this crate's DNS
    /// exchanges; IPv4 first.
    async fn resolve(
        &self,
        host: &str,
        port: u16,
        proxied: bool,
    ) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let op = if proxied {
            "proxyconnect tcp: dial tcp: "
        } else {
            "dial tcp: "
        };
        let now = || trawl_core::time::Instant(self.epoch.elapsed().as_nanos() as u64);
        let mut l = match self.resolver.lock() {
            Ok(mut f) => f.lookup(host, now()),
            Err(_) => return Err(format!("{op}lookup {host}: resolver unavailable")),
        };
        let mut exchanges = tokio::task::JoinSet::new();
        let mut handles: BTreeMap<RequestId, tokio::task::AbortHandle> = BTreeMap::new();
        loop {
            while let Some(io) = l.poll_io() {
                match io {
                    DnsIo::Start(id, q) => {
                        let h = exchanges.spawn(async move { (id, crate::dns::run(&q).await) });
                        handles.insert(id, h);
                    }
                    DnsIo::Cancel(id) => {
                        if let Some(h) = handles.remove(&id) {
                            h.abort();
                        }
                    }
                }
            }
            if let Some(r) = l.result() {
                exchanges.abort_all();
                return match r {
                    Ok(addrs) => Ok(addrs
                        .iter()
                        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect()),
                    Err(e) => Err(format!("{op}{e}")),
                };
            }
            let deadline = l
                .poll_timeout()
                .map(|t| self.epoch + std::time::Duration::from_nanos(t.0));
            if exchanges.is_empty() && deadline.is_none() {
                return Err(format!("{op}lookup {host}: no answer"));
            }
            let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            tokio::select! {
                Some(j) = exchanges.join_next() => {
                    if let Ok((id, r)) = j {
                        handles.remove(&id);
                        l.handle_reply(now(), id, r.as_deref().map_err(String::as_str));
                    }
                }
                () = tokio::time::sleep_until(deadline.unwrap_or(far)) => l.handle_timeout(now()),
            }
        }
    }

    /// A new connection to the target, or through the proxy (a `CONNECT` tunnel for
    /// `https`), with TLS on top for `https`.
    async fn connect(
        &self,
        url: &Url,
        route: Option<&Route>,
        tls: Option<&(Arc<rustls::ClientConfig>, String)>,
    ) -> Result<Conn, String> {
        let proxied = route.is_some();
        let (host, port) = match route {
            Some(r) => (r.host.as_str(), r.port),
            None => (url.host.as_str(), url.port),
        };
        let addrs = self.resolve(host, port, proxied).await?;
        // Every address in turn (as Go's serial dialer); the first failure is the error.
        let mut first_error = None;
        let mut connected = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    connected = Some((s, addr));
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| {
                        trawl_io::dial_error(proxied, &addr.to_string(), &e)
                    });
                }
            }
        }
        let Some((stream, addr)) = connected else {
            return Err(first_error.unwrap_or_else(|| "dial tcp: no address".to_owned()));
        };
        let _ = stream.set_nodelay(true);
        let mut io: Box<dyn Io> = Box::new(stream);
        if let Some(r) = route.filter(|r| r.tunnel) {
            io = tunnel(io, r, url).await?;
        }
        if let Some((config, name)) = tls {
            let server = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("tls: invalid server name {name:?}: {e}"))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let s = connector
                .connect(server, io)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            io = Box::new(s);
        }
        Ok(Conn { io, addr })
    }
}

fn pool_key(
    url: &Url,
    tls: Option<&(Arc<rustls::ClientConfig>, String)>,
    route: Option<&Route>,
) -> PoolKey {
    let via = route.map(|r| (r.host.clone(), r.port, r.tunnel));
    if route.is_some_and(|r| !r.tunnel) {
        return (String::new(), 0, None, via);
    }
    let tls = tls.map(|(c, name)| (Arc::as_ptr(c) as usize, name.clone()));
    (url.host.clone(), url.port, tls, via)
}

/// The address to dial for `host`: an IP as is, a name through the system resolver
/// (IPv4 first, as Go's dialer effectively prefers on most hosts).
/// Opens a `CONNECT` tunnel through the proxy for `target`.
async fn tunnel(mut io: Box<dyn Io>, r: &Route, target: &Url) -> Result<Box<dyn Io>, String> {
    let authority = target.authority();
    let mut head = Vec::new();
    r.connect_request(target, &mut head)?;
    io.write_all(&head)
        .await
        .map_err(|e| format!("proxy CONNECT {authority}: {e}"))?;
    // The answer has no body, whatever its headers say.
    let mut reader = ResponseReader::new(true);
    let mut buf = [0u8; 4096];
    loop {
        let n = io
            .read(&mut buf)
            .await
            .map_err(|e| format!("proxy CONNECT {authority}: {e}"))?;
        if n == 0 {
            return Err(format!("proxy CONNECT {authority}: connection closed"));
        }
        let mut got: Option<ResponseHead> = None;
        reader
            .feed(&buf[..n], &mut |e| {
                if let ResponseEvent::Head(h) = e {
                    got = Some(h);
                }
            })
            .map_err(|e| format!("proxy CONNECT {authority}: {}", e.0))?;
        if let Some(h) = got {
            if h.status != 200 {
                return Err(format!(
                    "proxy CONNECT {authority}: {} {}",
                    h.status, h.reason
                ));
            }
            return Ok(io);
        }
    }
}

/// One request's part in an exchange.
struct Call<'a> {
    out: &'a [u8],
    follow: bool,
    base: &'a Url,
    caller: Caller,
    tx: &'a UnboundedSender<Done>,
    options: &'a HttpOptions,
    credit: &'a Arc<tokio::sync::Semaphore>,
}

/// Sends `out` on `conn` and reports the response to `tx` as it arrives, each read's
/// body on credit (see [`READ_CREDIT_KIB`]).
async fn exchange(conn: &mut Conn, ex: Call<'_>) -> Result<Exchange, Failed> {
    let Call {
        out,
        follow,
        base,
        caller,
        tx,
        options,
        credit,
    } = ex;
    let addr = conn.addr;
    let broken = |e: std::io::Error, fresh: bool| {
        let s = e.to_string();
        let msg = if s.starts_with("tls: ") {
            s
        } else {
            format!("read tcp {addr}: {e}")
        };
        Failed { msg, fresh }
    };
    if let Err(e) = conn.io.write_all(out).await {
        return Err(Failed {
            msg: format!("write tcp {addr}: {e}"),
            fresh: true,
        });
    }
    let _ = conn.io.flush().await;
    let mut reader = ResponseReader::new(false);
    let mut buf = vec![0u8; options.read_buffer.max(512)];
    let mut got_bytes = false;
    let mut redirect: Option<Url> = None;
    let own = Arc::new(tokio::sync::Semaphore::new(REQUEST_CREDIT_KIB));
    loop {
        let n = match conn.io.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => return Err(broken(e, !got_bytes)),
        };
        // Credit for what was read, before the agent is handed any of it. The
        // semaphore is never closed, and a read is at most the buffer (64 KiB by
        // default), far below the credit: a closed semaphore would only mean no
        // waiting.
        let kib = n.div_ceil(1024).min(REQUEST_CREDIT_KIB) as u32;
        let mut permit = if kib > 0 {
            // The request's own credit first: a held body waits here, alone.
            let own = own.clone().acquire_many_owned(kib).await.ok();
            let shared = credit.clone().acquire_many_owned(kib).await.ok();
            Some(Credit {
                _shared: shared,
                _own: own,
            })
        } else {
            None
        };
        let mut failed: Option<String> = None;
        let mut sink = |e: ResponseEvent<'_>| match e {
            ResponseEvent::Head(h) => {
                let to = h
                    .header("Location")
                    .filter(|_| follow && matches!(h.status, 301 | 302 | 303 | 307 | 308));
                match to {
                    Some(loc) => match base.join(loc) {
                        Ok(u) => redirect = Some(u),
                        Err(e) => failed = Some(e),
                    },
                    None => {
                        let _ = tx.send(Done::Io(caller, OwnedIoEvent::HttpHead(h)));
                    }
                }
            }
            ResponseEvent::Body(b) => {
                if redirect.is_none() {
                    let ev = OwnedIoEvent::HttpBody(b.to_vec());
                    let _ = tx.send(Done::Read(caller, ev, permit.take()));
                }
            }
            ResponseEvent::End => {
                if redirect.is_none() {
                    let _ = tx.send(Done::Io(caller, OwnedIoEvent::HttpEnd));
                }
            }
        };
        let r = if n == 0 {
            reader.eof(&mut sink)
        } else {
            reader.feed(&buf[..n], &mut sink).map(drop)
        };
        if let Some(msg) = failed {
            return Err(Failed { msg, fresh: false });
        }
        if let Err(e) = r {
            return Err(Failed {
                msg: e.0,
                fresh: !got_bytes,
            });
        }
        got_bytes |= n > 0;
        if reader.is_done() {
            let reusable = reader.reusable();
            return Ok(match redirect {
                Some(to) => Exchange::Redirect { to, reusable },
                None => Exchange::Done { reusable },
            });
        }
        if n == 0 {
            return Err(Failed {
                msg: format!("read tcp {addr}: unexpected EOF"),
                fresh: !got_bytes,
            });
        }
    }
}

/// Moves a stream's bytes: what arrives is reported in chunks of at most 64 KiB, what
/// comes on `wrx` is written, until either side ends (or the task is aborted).
async fn pump<S>(
    sock: S,
    wrx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    report: &impl Fn(OwnedIoEvent),
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut r, mut w) = tokio::io::split(sock);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            data = wrx.recv() => match data {
                Some(d) => {
                    if let Err(e) = w.write_all(&d).await {
                        return report(OwnedIoEvent::Failed(e.to_string()));
                    }
                }
                // The agent let the stream go.
                None => return,
            },
            n = r.read(&mut buf) => match n {
                Ok(0) => return report(OwnedIoEvent::StreamClosed),
                Ok(n) => report(OwnedIoEvent::StreamData(buf[..n].to_vec())),
                Err(e) => return report(OwnedIoEvent::Failed(e.to_string())),
            },
        }
    }
}
