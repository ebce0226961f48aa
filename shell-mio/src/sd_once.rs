//! `trawl sd`: discovery and relabeling once, through the real agent, without scraping.
//! Files are read inline, HTTP SD is fetched with a blocking request (the core's codec
//! over `std::net`) and DNS exchanges block too; time is virtual, so the answer comes as
//! soon as discovery has delivered, with no waiting for coalescing windows. Proxies are
//! used as the daemon uses them. Kubernetes discovery lists once: its watches are left
//! unanswered, as are the blocking queries Consul discovery makes after its first
//! answers.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use trawl_io::resolve::{ResolverFiles, ResolverOptions, resolve_blocking};

use serde_json::{Value, json};
use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::http::proxy::{self, ProxyEnv, Route};
use trawl_core::http::{ResponseEvent, ResponseReader, Url, write_get};
use trawl_core::io::{IoEvent, IoOp, Origin, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Status, reason, headers and body.
type Response = (u16, String, Vec<(String, String)>, Vec<u8>);

/// A blocking GET of a plain-HTTP URL.
fn get(
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout: Duration,
    client: &trawl_core::config::HttpClientConfig,
    resolver: &mut ResolverFiles,
) -> Result<Response, String> {
    let u = Url::parse(url)?;
    let env = ProxyEnv::from_lookup(|k| std::env::var(k).ok());
    let route = proxy::route(client, &env, &u)?;
    let (host, port) = route
        .as_ref()
        .map_or((u.host.as_str(), u.port), |r| (r.host.as_str(), r.port));
    let via = if route.is_some() {
        "proxyconnect tcp: "
    } else {
        ""
    };
    // Every address in turn, as the daemon dials; the first failure is the error.
    let addrs = resolve_blocking(resolver, host).map_err(|e| format!("{via}dial tcp: {e}"))?;
    let mut first_error = None;
    let mut connected = None;
    for a in addrs {
        let Ok(ip) = a.parse::<std::net::IpAddr>() else {
            continue;
        };
        let addr = std::net::SocketAddr::new(ip, port);
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(t) => {
                connected = Some(t);
                break;
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{via}dial tcp {addr}: {e}"));
            }
        }
    }
    let mut tcp = connected.ok_or_else(|| {
        first_error.unwrap_or_else(|| format!("{via}dial tcp: lookup {host}: no usable address"))
    })?;
    let _ = tcp.set_read_timeout(Some(timeout));
    if let Some(r) = route.as_ref().filter(|r| r.tunnel) {
        open_tunnel(&mut tcp, r, &u)?;
    }
    let mut s: Box<dyn ReadWrite> = if u.scheme == trawl_core::http::Scheme::Https {
        let t = &client.tls_config;
        let config = trawl_io::tls::client_config(t)?;
        let name = if t.server_name.is_empty() {
            u.host.clone()
        } else {
            t.server_name.clone()
        };
        let server = rustls::pki_types::ServerName::try_from(name)
            .map_err(|e| format!("tls: invalid server name: {e}"))?;
        let conn =
            rustls::ClientConnection::new(config, server).map_err(|e| format!("tls: {e}"))?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let mut req = Vec::new();
    match route.as_ref().filter(|r| !r.tunnel) {
        Some(r) => {
            let mut h = headers.to_vec();
            if let Some(a) = &r.authorization {
                h.push(("Proxy-Authorization".into(), a.clone()));
            }
            write_head(&mut req, &u, &h, body, true)?;
        }
        None => write_head(&mut req, &u, headers, body, false)?,
    }
    req.extend_from_slice(body.unwrap_or_default());
    s.write_all(&req).map_err(|e| format!("write: {e}"))?;
    let mut r = ResponseReader::new(false);
    let (mut head, mut body, mut end) = (None, Vec::new(), false);
    let mut buf = vec![0u8; 64 * 1024];
    while !end {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        let mut sink = |e: ResponseEvent<'_>| match e {
            ResponseEvent::Head(h) => head = Some(h),
            ResponseEvent::Body(b) => body.extend_from_slice(b),
            ResponseEvent::End => end = true,
        };
        if n == 0 {
            r.eof(&mut sink).map_err(|e| e.0)?;
            break;
        }
        r.feed(&buf[..n], &mut sink).map_err(|e| e.0)?;
    }
    let h = head.ok_or("no response")?;
    Ok((h.status, h.reason, h.headers, body))
}

/// A GET's head, or a POST's when there is a body.
fn write_head(
    out: &mut Vec<u8>,
    u: &Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    absolute: bool,
) -> Result<(), String> {
    match body {
        Some(b) => trawl_core::http::write_post(out, u, headers, b.len(), absolute),
        None => write_get(out, u, headers, absolute),
    }
}

/// `CONNECT` through the proxy on `tcp`; returns once the tunnel is open.
fn open_tunnel(tcp: &mut std::net::TcpStream, r: &Route, u: &Url) -> Result<(), String> {
    let mut head = Vec::new();
    r.connect_request(u, &mut head)?;
    tcp.write_all(&head).map_err(|e| format!("write: {e}"))?;
    let target = u.authority();
    // Byte by byte: nothing after the proxy's head may be consumed (it is TLS).
    let mut reader = ResponseReader::new(true);
    let mut got = None;
    let mut byte = [0u8; 1];
    while got.is_none() {
        let n = tcp
            .read(&mut byte)
            .map_err(|e| format!("proxy CONNECT {target}: {e}"))?;
        if n == 0 {
            return Err(format!("proxy CONNECT {target}: connection closed"));
        }
        reader
            .feed(&byte, &mut |e| {
                if let ResponseEvent::Head(h) = e {
                    got = Some(h);
                }
            })
            .map_err(|e| format!("proxy CONNECT {target}: {}", e.0))?;
    }
    match got {
        Some(h) if h.status == 200 => Ok(()),
        Some(h) => Err(format!("proxy CONNECT {target}: {} {}", h.status, h.reason)),
        None => Err(format!("proxy CONNECT {target}: no answer")),
    }
}

fn labels(l: &trawl_core::labels::Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|(n, v)| (n.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

/// Runs discovery once for `config_file` (only `job` if given) and renders the targets.
pub fn run(
    config_file: &Path,
    job: Option<&str>,
    options: AgentOptions,
    hosts_file: &str,
) -> Result<String, String> {
    let mut resolver = ResolverFiles::new(ResolverOptions {
        resolv_conf: options.resolv_conf.clone(),
        hosts: hosts_file.to_owned(),
        port: options.dns_port,
        seed: options.seed,
    });
    let config = trawl_io::source::load_config(config_file)?;
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let mut now = Now::new(Instant(0), UnixNanos(wall));
    let mut agent = Agent::new(config, options, now);
    // Done once discovery has delivered after its last answer, or nothing changed for
    // longer than a coalescing period would take. Only the first round counts: every
    // provider starts at once and its IO is answered inline, so work started later is a
    // periodic refresh (a DNS or HTTP provider that keeps failing would otherwise keep
    // the command waiting for a delivery that never comes).
    let mut delivered = false;
    let mut last_answer = now.mono;
    let mut pending_sd: std::collections::BTreeSet<RequestId> = Default::default();
    // Streams (ZooKeeper sessions): open sockets, and those written to since their
    // peer was last heard.
    let mut streams: std::collections::BTreeMap<RequestId, Box<dyn BlockingStream>> =
        Default::default();
    let mut awaiting: std::collections::BTreeSet<RequestId> = Default::default();
    for _ in 0..10_000 {
        while let Some(o) = agent.poll_output() {
            // Discovery work starts: wait for its delivery again.
            if let Output::Start { op, .. } = &o
                && now.mono == Instant(0)
                && match op {
                    IoOp::ReadFile { .. } | IoOp::ListDir { .. } | IoOp::Dns(_) => true,
                    IoOp::Http(r) => matches!(r.origin, Origin::Discovery { .. }),
                    IoOp::Stream(_) => true,
                    IoOp::Watch { .. } => false,
                }
            {
                delivered = false;
                last_answer = now.mono;
            }
            match o {
                Output::Start { id, op } => match op {
                    IoOp::ReadFile { .. } | IoOp::ListDir { .. } => {
                        if let Some(done) = trawl_io::files::run(&op) {
                            done.with_event(|event| {
                                agent.handle_input(now, Input::Io { id, event })
                            });
                        }
                    }
                    // A Kubernetes watch streams for minutes, a blocking query waits for
                    // a change: `trawl sd` lists once and leaves them unanswered, as
                    // scrapes.
                    IoOp::Http(r)
                        if matches!(r.origin, Origin::Discovery { .. }) && is_watch(&r.url) => {}
                    IoOp::Http(r) if matches!(r.origin, Origin::Discovery { .. }) => {
                        pending_sd.insert(id);
                        let mut headers = r.headers.clone();
                        let method = if r.body.is_some() { "POST" } else { "GET" };
                        let body = r.body.as_deref();
                        let authorized = match r.credentials_file.as_ref() {
                            Some(f) => trawl_io::authorize(
                                f,
                                method,
                                &r.url,
                                &headers,
                                body.unwrap_or_default(),
                            ),
                            None => Ok((None, Vec::new())),
                        };
                        let fetched = authorized.and_then(|(url, h)| {
                            headers.extend(h);
                            let url = url.as_deref().unwrap_or(&r.url);
                            get(url, &headers, body, r.timeout, &r.client, &mut resolver)
                        });
                        match fetched {
                            Ok((status, reason, headers, body)) => {
                                let h: Vec<(&str, &str)> = headers
                                    .iter()
                                    .map(|(n, v)| (n.as_str(), v.as_str()))
                                    .collect();
                                agent.handle_input(
                                    now,
                                    Input::Io {
                                        id,
                                        event: IoEvent::HttpHead {
                                            status,
                                            reason: &reason,
                                            headers: &h,
                                        },
                                    },
                                );
                                agent.handle_input(
                                    now,
                                    Input::Io {
                                        id,
                                        event: IoEvent::HttpBody(&body),
                                    },
                                );
                                agent.handle_input(
                                    now,
                                    Input::Io {
                                        id,
                                        event: IoEvent::HttpEnd,
                                    },
                                );
                            }
                            Err(e) => agent.handle_input(
                                now,
                                Input::Io {
                                    id,
                                    event: IoEvent::Failed(&e),
                                },
                            ),
                        }
                        pending_sd.remove(&id);
                    }
                    IoOp::Dns(q) => {
                        let r = trawl_io::dns::exchange_blocking(&q);
                        let event = match &r {
                            Ok(b) => IoEvent::DnsReply(b),
                            Err(e) => IoEvent::Failed(e),
                        };
                        agent.handle_input(now, Input::Io { id, event });
                    }
                    IoOp::Stream(s) => match connect_stream(&s, &mut resolver) {
                        Ok(sock) => {
                            streams.insert(id, sock);
                            agent.handle_input(
                                now,
                                Input::Io {
                                    id,
                                    event: IoEvent::StreamOpened,
                                },
                            );
                        }
                        Err(e) => agent.handle_input(
                            now,
                            Input::Io {
                                id,
                                event: IoEvent::Failed(&e),
                            },
                        ),
                    },
                    // Scrapes and watches: never answered (nothing is scraped).
                    _ => {}
                },
                Output::Send { id, data } => {
                    if let Some(sock) = streams.get_mut(&id) {
                        match sock.write_all(&data) {
                            Ok(()) => {
                                awaiting.insert(id);
                                if now.mono == Instant(0) {
                                    delivered = false;
                                    last_answer = now.mono;
                                }
                            }
                            Err(e) => {
                                streams.remove(&id);
                                let e = e.to_string();
                                agent.handle_input(
                                    now,
                                    Input::Io {
                                        id,
                                        event: IoEvent::Failed(&e),
                                    },
                                );
                            }
                        }
                    }
                }
                Output::Cancel(id) => {
                    streams.remove(&id);
                    awaiting.remove(&id);
                }
                Output::Event(Event::Delivered { .. }) => delivered = true,
                Output::Event(Event::SdFailure(f)) => eprintln_failure(&f.provider, &f.message),
                _ => {}
            }
        }
        // Streams that were written to: what the peer answers, until it is quiet. Its
        // answers may send more, so the outputs are read again first.
        if !awaiting.is_empty() {
            for id in std::mem::take(&mut awaiting) {
                let Some(sock) = streams.get_mut(&id) else {
                    continue;
                };
                let (chunks, end) = read_answers(sock.as_mut());
                for c in &chunks {
                    agent.handle_input(
                        now,
                        Input::Io {
                            id,
                            event: IoEvent::StreamData(c),
                        },
                    );
                }
                if let Some(end) = end {
                    streams.remove(&id);
                    let event = match &end {
                        Some(e) => IoEvent::Failed(e),
                        None => IoEvent::StreamClosed,
                    };
                    agent.handle_input(now, Input::Io { id, event });
                }
            }
            continue;
        }
        let quiet = now.mono.saturating_since(last_answer) > Duration::from_secs(6);
        if (delivered || quiet) && pending_sd.is_empty() {
            break;
        }
        match agent.poll_timeout() {
            Some(t) => {
                now = now.after(t.saturating_since(now.mono));
                agent.handle_input(now, Input::Timeout);
            }
            None => break,
        }
    }
    let in_job = |j: &str| job.is_none_or(|x| x == j);
    let active: Vec<Value> = agent
        .targets()
        .into_iter()
        .filter(|t| in_job(&t.job))
        .map(|t| {
            json!({
                "scrapePool": &*t.job,
                "scrapeUrl": &*t.target.url,
                "labels": labels(&t.target.public_labels()),
                "discoveredLabels": labels(&t.discovered_labels),
                "scrapeInterval": t.target.interval.to_string(),
                "scrapeTimeout": t.target.timeout.to_string(),
            })
        })
        .collect();
    let dropped: Vec<Value> = agent
        .dropped_targets()
        .into_iter()
        .filter(|d| in_job(&d.job))
        .map(|d| {
            json!({
                "scrapePool": &*d.job,
                "discoveredLabels": labels(&d.discovered_labels),
                "droppedBy": format!("relabel_configs[{}]", d.rule),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({"activeTargets": active, "droppedTargets": dropped}))
        .map_err(|e| e.to_string())
}

/// A blocking stream of `trawl sd`: TCP or a Unix socket.
trait BlockingStream: Read + Write {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
}

impl BlockingStream for std::net::TcpStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, d)
    }
}

impl BlockingStream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, d)
    }
}

/// Connects a stream for `trawl sd`: a Unix socket, or the name resolved as the daemon resolves it, every
/// address tried in order within the stream's connect timeout.
fn connect_stream(
    s: &trawl_core::io::StreamOpen,
    resolver: &mut ResolverFiles,
) -> Result<Box<dyn BlockingStream>, String> {
    if let Some(path) = &s.unix_path {
        return std::os::unix::net::UnixStream::connect(path)
            .map(|c| Box::new(c) as Box<dyn BlockingStream>)
            .map_err(|e| format!("dial unix {path}: {e}"));
    }
    let host = s.host.trim_start_matches('[').trim_end_matches(']');
    let addrs = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => resolve_blocking(resolver, host)?
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
    };
    let mut first = None;
    for ip in addrs {
        let addr = std::net::SocketAddr::new(ip, s.port);
        match std::net::TcpStream::connect_timeout(&addr, s.connect_timeout) {
            Ok(sock) => return Ok(Box::new(sock)),
            Err(e) => {
                first.get_or_insert(format!("dial tcp {addr}: {e}"));
            }
        }
    }
    Err(first.unwrap_or_else(|| format!("lookup {host}: no usable address")))
}

/// What a stream's peer sends until it is quiet: up to 5 s for the first bytes, then
/// 100 ms of silence ends it; at most 16 MiB. The end of the stream, if it came
/// (`Some(None)`: closed; `Some(Some(e))`: failed).
fn read_answers(sock: &mut dyn BlockingStream) -> (Vec<Vec<u8>>, Option<Option<String>>) {
    let mut chunks = Vec::new();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut wait = Duration::from_secs(5);
    loop {
        if sock.set_read_timeout(Some(wait)).is_err() {
            return (chunks, Some(Some("cannot set a read timeout".into())));
        }
        match sock.read(&mut buf) {
            Ok(0) => return (chunks, Some(None)),
            Ok(n) => {
                total += n;
                chunks.push(buf[..n].to_vec());
                if total > 16 << 20 {
                    return (chunks, Some(Some("answers over 16 MiB".into())));
                }
                wait = Duration::from_millis(100);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (chunks, None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (chunks, Some(Some(e.to_string()))),
        }
    }
}

/// True for a request that waits for a change: a Kubernetes watch (`watch=true`) or a
/// blocking query from an index (Consul's and Nomad's `index=N`, N > 0).
fn is_watch(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|p| {
            p == "watch=true"
                || p.strip_prefix("index=")
                    .is_some_and(|i| i.parse::<u64>().is_ok_and(|i| i > 0))
        })
    })
}

/// A discovery failure on standard error (the `sd` command sets up no logging): an
/// empty answer then says why.
fn eprintln_failure(provider: &str, message: &str) {
    eprintln!("warning: discovery {provider} failed: {message}");
}
