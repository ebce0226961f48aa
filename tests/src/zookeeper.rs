//! A ZooKeeper server model, sans IO: the znode tree, sessions and their watches, and
//! the wire protocol of a connection (the handshake, `getData`, `getChildren2`, pings,
//! `setWatches`, `closeSession`, and `create`/`setData`/`delete` for writers), in the
//! jute encoding of [`trawl_core::discovery::zookeeper::jute`]. The simulator's ZooKeeper
//! world and the benchmarks serve trawl from it; the end-to-end tests use a real
//! ZooKeeper instead.
//!
//! What it does not emulate: ACLs and authentication, sequential and TTL nodes, exist
//! watches, persistent watches, multi-ops, quorum and leader election, read-only mode,
//! chroots, the server's own session expiry by timer (sessions expire when the test
//! says: [`Server::expire`]), and `jute.maxbuffer` limits on what clients write.

use std::collections::{BTreeMap, BTreeSet};

use trawl_core::discovery::zookeeper::jute::{
    self, ConnectRequest, ConnectResponse, Framer, ReplyHeader, Request, Stat, WatcherEvent, err,
    event,
};

#[derive(Clone, Debug, Default)]
struct Znode {
    data: Vec<u8>,
    stat: Stat,
    children: BTreeSet<String>,
}

#[derive(Debug)]
struct Session {
    passwd: Vec<u8>,
    timeout_ms: i32,
}

#[derive(Debug, Default)]
struct Conn {
    framer: Framer,
    /// The session, once the handshake is done.
    session: Option<i64>,
    data_watches: BTreeSet<String>,
    child_watches: BTreeSet<String>,
}

/// One ZooKeeper server.
#[derive(Debug)]
pub struct Server {
    nodes: BTreeMap<String, Znode>,
    zxid: i64,
    sessions: BTreeMap<i64, Session>,
    next_session: i64,
    conns: BTreeMap<u64, Conn>,
    /// Smallest and largest session timeouts granted (ms).
    pub timeouts: (i32, i32),
    /// Requests answered (reads, pings, writes), for benchmarks.
    pub answered: u64,
}

impl Default for Server {
    fn default() -> Server {
        Server::new()
    }
}

fn parent_of(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    if path == "/" {
        return None;
    }
    Some((if i == 0 { "/" } else { &path[..i] }, &path[i + 1..]))
}

fn valid_path(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && !path.ends_with('/') && !path.contains("//"))
}

impl Server {
    /// A server holding only `/`, granting session timeouts from 4 s to 40 s (the
    /// defaults with a 2 s tick).
    pub fn new() -> Server {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_owned(), Znode::default());
        Server {
            nodes,
            zxid: 0,
            sessions: BTreeMap::new(),
            next_session: 0x0100_0000_0000_0000,
            conns: BTreeMap::new(),
            timeouts: (4000, 40_000),
            answered: 0,
        }
    }

    /// A new connection `conn` (its handshake comes first).
    pub fn connect(&mut self, conn: u64) {
        self.conns.insert(conn, Conn::default());
    }

    /// The connection ended (either side closed it).
    pub fn disconnect(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// Open connections.
    pub fn connections(&self) -> Vec<u64> {
        self.conns.keys().copied().collect()
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Bytes from a client on `conn`: the bytes to send back, or `Err` when the server
    /// closes the connection (a protocol error, an expired session's handshake answer
    /// after which it closes, a `closeSession`) with what to send before closing.
    pub fn input(&mut self, conn: u64, bytes: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        let mut out = Vec::new();
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(out);
        };
        c.framer.push(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return Err(out);
            };
            let frame = match c.framer.next_frame() {
                Ok(Some(f)) => f.to_vec(),
                Ok(None) => return Ok(out),
                Err(_) => {
                    self.conns.remove(&conn);
                    return Err(out);
                }
            };
            if c.session.is_none() {
                let Ok(req) = ConnectRequest::decode(&frame) else {
                    self.conns.remove(&conn);
                    return Err(out);
                };
                match self.handshake(conn, &req) {
                    Ok(b) => out.extend(b),
                    Err(b) => {
                        out.extend(b);
                        self.conns.remove(&conn);
                        return Err(out);
                    }
                }
                continue;
            }
            let Ok((xid, req)) = Request::decode(&frame) else {
                self.conns.remove(&conn);
                return Err(out);
            };
            match self.request(conn, xid, req) {
                Some(b) => out.extend(b),
                None => {
                    self.conns.remove(&conn);
                    return Err(out);
                }
            }
        }
    }

    fn handshake(&mut self, conn: u64, req: &ConnectRequest) -> Result<Vec<u8>, Vec<u8>> {
        let timeout = req.timeout_ms.clamp(self.timeouts.0, self.timeouts.1);
        let id = if req.session_id == 0 {
            self.next_session += 1;
            let id = self.next_session;
            self.sessions.insert(
                id,
                Session {
                    passwd: id.to_be_bytes().repeat(2),
                    timeout_ms: timeout,
                },
            );
            id
        } else {
            match self.sessions.get(&req.session_id) {
                Some(s) if s.passwd == req.passwd => req.session_id,
                // Unknown, expired, or the wrong password: timeout 0, then close.
                _ => {
                    let r = ConnectResponse {
                        protocol_version: 0,
                        timeout_ms: 0,
                        session_id: 0,
                        passwd: vec![0; 16],
                    };
                    return Err(r.encode());
                }
            }
        };
        let s = &self.sessions[&id];
        let r = ConnectResponse {
            protocol_version: 0,
            timeout_ms: s.timeout_ms,
            session_id: id,
            passwd: s.passwd.clone(),
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        Ok(r.encode())
    }

    fn header(&self, xid: i32, e: i32) -> jute::Writer {
        ReplyHeader {
            xid,
            zxid: self.zxid,
            err: e,
        }
        .writer()
    }

    /// One request; `None` closes the connection.
    fn request(&mut self, conn: u64, xid: i32, req: Request) -> Option<Vec<u8>> {
        self.answered += 1;
        let reply = match req {
            Request::Ping => self.header(xid, err::OK).frame(),
            Request::GetData { path, watch } => match self.nodes.get(&path) {
                Some(n) => {
                    let mut w = self.header(xid, err::OK);
                    w.buffer(Some(&n.data)).stat(&n.stat);
                    if watch {
                        self.conns.get_mut(&conn)?.data_watches.insert(path);
                    }
                    w.frame()
                }
                None => self.header(xid, err::NO_NODE).frame(),
            },
            Request::GetChildren { path, watch } => match self.nodes.get(&path) {
                Some(n) => {
                    let mut w = self.header(xid, err::OK);
                    w.strings(n.children.iter().map(String::as_str))
                        .stat(&n.stat);
                    if watch {
                        self.conns.get_mut(&conn)?.child_watches.insert(path);
                    }
                    w.frame()
                }
                None => self.header(xid, err::NO_NODE).frame(),
            },
            Request::SetWatches {
                relative_zxid,
                data,
                child,
                ..
            } => {
                // Watches on what changed since the client's zxid fire at once, as the
                // server does; the rest are armed again.
                let mut out = Vec::new();
                for p in data {
                    match self.nodes.get(&p) {
                        None => out.push(self.note(event::DELETED, &p)),
                        Some(n) if n.stat.mzxid > relative_zxid => {
                            out.push(self.note(event::DATA_CHANGED, &p))
                        }
                        Some(_) => {
                            self.conns.get_mut(&conn)?.data_watches.insert(p);
                        }
                    }
                }
                for p in child {
                    match self.nodes.get(&p) {
                        None => out.push(self.note(event::DELETED, &p)),
                        Some(n) if n.stat.pzxid > relative_zxid => {
                            out.push(self.note(event::CHILDREN_CHANGED, &p))
                        }
                        Some(_) => {
                            self.conns.get_mut(&conn)?.child_watches.insert(p);
                        }
                    }
                }
                let mut b = self.header(xid, err::OK).frame();
                for n in out {
                    b.extend(n);
                }
                b
            }
            Request::Close => {
                let id = self.conns.get(&conn)?.session?;
                self.sessions.remove(&id);
                return None;
            }
            Request::Create { path, data, .. } => {
                let e = self.create(&path, &data).0;
                return Some(self.write_reply(xid, e, Some(&path)));
            }
            Request::SetData { path, data, .. } => {
                let e = self.set(&path, &data).0;
                return Some(self.write_reply(xid, e, None));
            }
            Request::Delete { path, .. } => {
                let e = self.delete(&path).0;
                return Some(self.write_reply(xid, e, None));
            }
            Request::Other(_) => self.header(xid, err::UNIMPLEMENTED).frame(),
        };
        Some(reply)
    }

    /// A writer's request through the wire: its own notifications are not returned
    /// (the model's writers are the test's calls; a client writing is rare here).
    fn write_reply(&mut self, xid: i32, e: i32, created: Option<&str>) -> Vec<u8> {
        let mut w = self.header(xid, e);
        if let (Some(p), err::OK) = (created, e) {
            w.string(p);
        } else if e == err::OK {
            w.stat(&Stat::default());
        }
        w.frame()
    }

    fn note(&self, kind: i32, path: &str) -> Vec<u8> {
        WatcherEvent {
            kind,
            state: 3,
            path: path.to_owned(),
        }
        .encode(self.zxid)
    }

    /// Fires the watches a change sets off: `data` watches of `path` (with `kind`),
    /// and child watches of `child_of` (its parent, when its children changed).
    fn fire(&mut self, path: &str, kind: i32, child_of: Option<&str>) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let conns: Vec<u64> = self.conns.keys().copied().collect();
        for id in conns {
            let mut frames = Vec::new();
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            let data = c.data_watches.remove(path);
            let child = kind == event::DELETED && c.child_watches.remove(path);
            if data || child {
                frames.push((kind, path.to_owned()));
            }
            if let Some(parent) = child_of
                && c.child_watches.remove(parent)
            {
                frames.push((event::CHILDREN_CHANGED, parent.to_owned()));
            }
            if !frames.is_empty() {
                let mut b = Vec::new();
                for (k, p) in frames {
                    b.extend(self.note(k, &p));
                }
                out.push((id, b));
            }
        }
        out
    }

    /// Creates `path` (its parent must exist); the notifications to send, by
    /// connection.
    pub fn create(&mut self, path: &str, data: &[u8]) -> (i32, Vec<(u64, Vec<u8>)>) {
        if !valid_path(path) || path == "/" {
            return (err::BAD_ARGUMENTS, Vec::new());
        }
        let Some((parent, name)) = parent_of(path) else {
            return (err::BAD_ARGUMENTS, Vec::new());
        };
        if self.nodes.contains_key(path) {
            return (err::NODE_EXISTS, Vec::new());
        }
        if !self.nodes.contains_key(parent) {
            return (err::NO_NODE, Vec::new());
        }
        self.zxid += 1;
        let z = self.zxid;
        let (parent, name) = (parent.to_owned(), name.to_owned());
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name);
            p.stat.cversion += 1;
            p.stat.pzxid = z;
            p.stat.num_children = p.children.len() as i32;
        }
        let stat = Stat {
            czxid: z,
            mzxid: z,
            pzxid: z,
            data_length: data.len() as i32,
            ..Stat::default()
        };
        self.nodes.insert(
            path.to_owned(),
            Znode {
                data: data.to_vec(),
                stat,
                children: BTreeSet::new(),
            },
        );
        (err::OK, self.fire(path, event::CREATED, Some(&parent)))
    }

    /// Creates `path` and any missing parents (with empty data).
    pub fn create_all(&mut self, path: &str, data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut notes = Vec::new();
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            at.push('/');
            at.push_str(part);
            if !self.nodes.contains_key(&at) {
                let d: &[u8] = if i + 1 == parts.len() { data } else { b"" };
                notes.extend(self.create(&at, d).1);
            }
        }
        notes
    }

    /// Sets the data of `path`.
    pub fn set(&mut self, path: &str, data: &[u8]) -> (i32, Vec<(u64, Vec<u8>)>) {
        if !self.nodes.contains_key(path) {
            return (err::NO_NODE, Vec::new());
        }
        self.zxid += 1;
        let z = self.zxid;
        if let Some(n) = self.nodes.get_mut(path) {
            n.data = data.to_vec();
            n.stat.mzxid = z;
            n.stat.version += 1;
            n.stat.data_length = data.len() as i32;
        }
        (err::OK, self.fire(path, event::DATA_CHANGED, None))
    }

    /// Deletes `path` (it must have no children).
    pub fn delete(&mut self, path: &str) -> (i32, Vec<(u64, Vec<u8>)>) {
        let Some(n) = self.nodes.get(path) else {
            return (err::NO_NODE, Vec::new());
        };
        if !n.children.is_empty() {
            return (err::NOT_EMPTY, Vec::new());
        }
        let Some((parent, name)) = parent_of(path) else {
            return (err::BAD_ARGUMENTS, Vec::new());
        };
        let (parent, name) = (parent.to_owned(), name.to_owned());
        self.zxid += 1;
        let z = self.zxid;
        self.nodes.remove(path);
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.remove(&name);
            p.stat.cversion += 1;
            p.stat.pzxid = z;
            p.stat.num_children = p.children.len() as i32;
        }
        (err::OK, self.fire(path, event::DELETED, Some(&parent)))
    }

    /// The data of `path`.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.nodes.get(path).map(|n| n.data.as_slice())
    }

    /// Every node under `path` (itself included), with its data.
    pub fn subtree(&self, path: &str) -> Vec<(String, Vec<u8>)> {
        let prefix = format!("{path}/");
        self.nodes
            .iter()
            .filter(|(p, _)| *p == path || p.starts_with(&prefix))
            .map(|(p, n)| (p.clone(), n.data.clone()))
            .collect()
    }

    /// Expires session `id` (as the server does when it hears nothing for its
    /// timeout): its connections close; the connections to report closed.
    pub fn expire(&mut self, id: i64) -> Vec<u64> {
        self.sessions.remove(&id);
        let gone: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session == Some(id))
            .map(|(k, _)| *k)
            .collect();
        for c in &gone {
            self.conns.remove(c);
        }
        gone
    }

    /// The session of connection `conn`.
    pub fn session_of(&self, conn: u64) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &mut Server, conn: u64, req: Request, xid: i32) -> Vec<u8> {
        s.input(conn, &req.encode(xid)).expect("open")
    }

    #[test]
    fn reads_watches_and_session_resumption() {
        let mut s = Server::new();
        s.create_all("/svc/web/m1", b"{}");
        s.connect(1);
        let hello = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 100,
            session_id: 0,
            passwd: vec![0; 16],
        };
        let r = s.input(1, &hello.encode()).unwrap();
        let resp = ConnectResponse::decode(&r[4..]).unwrap();
        assert_eq!(resp.timeout_ms, 4000, "clamped to the minimum");
        let b = roundtrip(
            &mut s,
            1,
            Request::GetChildren {
                path: "/svc/web".into(),
                watch: true,
            },
            1,
        );
        let mut rd = jute::Reader::new(&b[4..]);
        assert_eq!(ReplyHeader::read(&mut rd).unwrap().err, 0);
        assert_eq!(rd.strings().unwrap(), ["m1"]);
        let notes = s.create_all("/svc/web/m2", b"{}");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].0, 1);
        // The watch fired once: the next change says nothing.
        assert!(s.create_all("/svc/web/m3", b"{}").is_empty());
        // A reconnect with the session resumes it; a made-up one is refused.
        s.connect(2);
        let again = ConnectRequest {
            session_id: resp.session_id,
            passwd: resp.passwd.clone(),
            ..hello.clone()
        };
        assert!(s.input(2, &again.encode()).is_ok());
        s.connect(3);
        let bad = ConnectRequest {
            session_id: 42,
            ..hello
        };
        let e = s.input(3, &bad.encode()).unwrap_err();
        assert_eq!(ConnectResponse::decode(&e[4..]).unwrap().timeout_ms, 0);
        assert_eq!(s.expire(resp.session_id), vec![1, 2]);
    }
}

/// A real ZooKeeper (Debian's `zookeeper` package) started for a test: standalone, on
/// 127.0.0.1 and a free port, its data, configuration and log in the test's directory,
/// a 200 ms tick (so sessions may be as short as 400 ms). Killed when dropped.
pub mod real {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use trawl_core::discovery::zookeeper::jute::{
        self, ConnectRequest, ConnectResponse, Framer, ReplyHeader, Request, err,
    };

    /// The jars the server runs from (the package's, and a log4j binding so it logs).
    const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";

    /// A running server.
    #[derive(Debug)]
    pub struct RealZk {
        dir: PathBuf,
        /// Its client port on 127.0.0.1.
        pub port: u16,
        child: Option<Child>,
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1")
    }

    impl RealZk {
        /// Starts a server under `dir/zk` and waits until it serves sessions.
        pub fn start(dir: &Path) -> RealZk {
            assert!(
                Path::new("/usr/share/java/zookeeper.jar").exists(),
                "ZooKeeper is not installed: apt-get install zookeeper (see .ci/run)"
            );
            let dir = dir.join("zk");
            std::fs::create_dir_all(dir.join("data")).expect("zk dir");
            let mut z = RealZk {
                dir,
                port: 0,
                child: None,
            };
            for _ in 0..5 {
                z.port = free_port();
                if z.spawn() {
                    return z;
                }
            }
            panic!("ZooKeeper did not start; its log:\n{}", z.log());
        }

        /// Writes the configuration and starts the process; true once it serves.
        fn spawn(&mut self) -> bool {
            let cfg = self.dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=200\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nmaxSessionTimeout=60000\nadmin.enableServer=false\n4lw.commands.whitelist=*\npreAllocSize=1024\n",
                    self.dir.join("data").display(),
                    self.port
                ),
            )
            .expect("zoo.cfg");
            let log4j = self.dir.join("log4j.properties");
            std::fs::write(
                &log4j,
                "log4j.rootLogger=INFO, FILE\nlog4j.appender.FILE=org.apache.log4j.FileAppender\nlog4j.appender.FILE.File=${zookeeper.log.dir}/zookeeper.log\nlog4j.appender.FILE.layout=org.apache.log4j.PatternLayout\nlog4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] - %m%n\n",
            )
            .expect("log4j.properties");
            let child = Command::new("java")
                .arg("-XX:-UsePerfData")
                .arg("-Xmx256m")
                .arg(format!("-Dzookeeper.log.dir={}", self.dir.display()))
                .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
                .arg("-Dzookeeper.jmx.log4j.disable=true")
                .arg("-cp")
                .arg(CLASSPATH)
                .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("java");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(c) = &mut self.child
                    && let Ok(Some(_)) = c.try_wait()
                {
                    // Exited: the port was taken, most likely.
                    self.child = None;
                    return false;
                }
                if Writer::connect(self.addr()).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            self.stop();
            false
        }

        /// Its address.
        pub fn addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], self.port))
        }

        /// Kills the server (SIGKILL: no goodbye to its clients).
        pub fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }

        /// Starts it again on the same port and data.
        pub fn restart(&mut self) {
            self.stop();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.spawn() {
                assert!(
                    Instant::now() < deadline,
                    "ZooKeeper did not restart; its log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// The server's log.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("zookeeper.log")).unwrap_or_default()
        }

        /// A fresh writer session.
        pub fn writer(&self) -> Writer {
            Writer::connect(self.addr()).expect("a writer session")
        }
    }

    impl Drop for RealZk {
        fn drop(&mut self) {
            self.stop();
        }
    }

    /// A blocking client session for writing test data (create, set, delete), on the
    /// same wire code trawl reads with.
    #[derive(Debug)]
    pub struct Writer {
        sock: TcpStream,
        framer: Framer,
        xid: i32,
    }

    impl Writer {
        /// Opens a session (30 s timeout) at `addr`.
        pub fn connect(addr: SocketAddr) -> Result<Writer, String> {
            let sock = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .map_err(|e| e.to_string())?;
            // A server still loading its database may never answer (a ZooKeeper bug):
            // every read is bounded.
            sock.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            let mut w = Writer {
                sock,
                framer: Framer::new(),
                xid: 0,
            };
            let hello = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 30_000,
                session_id: 0,
                passwd: vec![0; 16],
            };
            w.sock
                .write_all(&hello.encode())
                .map_err(|e| e.to_string())?;
            let f = w.frame()?;
            let r = ConnectResponse::decode(&f).map_err(|e| e.0)?;
            if r.timeout_ms <= 0 {
                return Err("session refused".into());
            }
            Ok(w)
        }

        fn frame(&mut self) -> Result<Vec<u8>, String> {
            let mut buf = [0u8; 65536];
            loop {
                if let Some(f) = self.framer.next_frame().map_err(|e| e.0)? {
                    return Ok(f.to_vec());
                }
                let n = self.sock.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                self.framer.push(&buf[..n]);
            }
        }

        /// Sends `req` and returns the error code of its answer.
        fn call(&mut self, req: Request) -> Result<i32, String> {
            self.xid += 1;
            self.sock
                .write_all(&req.encode(self.xid))
                .map_err(|e| e.to_string())?;
            loop {
                let f = self.frame()?;
                let h = ReplyHeader::read(&mut jute::Reader::new(&f)).map_err(|e| e.0)?;
                if h.xid == self.xid {
                    return Ok(h.err);
                }
            }
        }

        /// Creates `path` with `data`, and its missing parents empty.
        pub fn create_all(&mut self, path: &str, data: &[u8]) {
            let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let mut at = String::new();
            for (i, p) in parts.iter().enumerate() {
                at.push('/');
                at.push_str(p);
                let d = if i + 1 == parts.len() { data } else { b"" };
                let e = self
                    .call(Request::Create {
                        path: at.clone(),
                        data: d.to_vec(),
                        flags: 0,
                    })
                    .expect("create");
                assert!(
                    e == err::OK || (e == err::NODE_EXISTS && i + 1 < parts.len()),
                    "create {at}: {}",
                    jute::error_name(e)
                );
            }
        }

        /// Sets the data of `path`.
        pub fn set(&mut self, path: &str, data: &[u8]) {
            let e = self
                .call(Request::SetData {
                    path: path.into(),
                    data: data.to_vec(),
                    version: -1,
                })
                .expect("set");
            assert_eq!(e, err::OK, "set {path}: {}", jute::error_name(e));
        }

        /// Deletes `path`.
        pub fn delete(&mut self, path: &str) {
            let e = self
                .call(Request::Delete {
                    path: path.into(),
                    version: -1,
                })
                .expect("delete");
            assert_eq!(e, err::OK, "delete {path}: {}", jute::error_name(e));
        }
    }

    /// A TCP relay in front of a server that the test can freeze: while frozen, no byte
    /// moves either way (connections stay open, new ones are accepted and held), as a
    /// network partition looks to both sides.
    #[derive(Debug)]
    pub struct Relay {
        /// Its port on 127.0.0.1.
        pub port: u16,
        frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Relay {
        /// Relays 127.0.0.1:`port` to `upstream`.
        pub fn start(upstream: SocketAddr) -> Relay {
            use std::sync::Arc;
            use std::sync::atomic::{AtomicBool, Ordering};
            let l = TcpListener::bind("127.0.0.1:0").expect("relay port");
            let port = l.local_addr().expect("addr").port();
            l.set_nonblocking(true).expect("nonblocking");
            let frozen = Arc::new(AtomicBool::new(false));
            let stop = Arc::new(AtomicBool::new(false));
            let (f, s) = (frozen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((down, _)) => {
                            let Ok(up) = TcpStream::connect(upstream) else {
                                continue;
                            };
                            for (from, to) in [
                                (down.try_clone(), up.try_clone()),
                                (up.try_clone(), down.try_clone()),
                            ] {
                                let (Ok(mut from), Ok(mut to)) = (from, to) else {
                                    continue;
                                };
                                let (f, s) = (f.clone(), s.clone());
                                std::thread::spawn(move || {
                                    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
                                    let mut buf = [0u8; 16384];
                                    while !s.load(Ordering::Relaxed) {
                                        if f.load(Ordering::Relaxed) {
                                            std::thread::sleep(Duration::from_millis(10));
                                            continue;
                                        }
                                        match from.read(&mut buf) {
                                            Ok(0) => break,
                                            Ok(n) => {
                                                if to.write_all(&buf[..n]).is_err() {
                                                    break;
                                                }
                                            }
                                            Err(e)
                                                if matches!(
                                                    e.kind(),
                                                    std::io::ErrorKind::WouldBlock
                                                        | std::io::ErrorKind::TimedOut
                                                ) => {}
                                            Err(_) => break,
                                        }
                                    }
                                    let _ = to.shutdown(std::net::Shutdown::Both);
                                    let _ = from.shutdown(std::net::Shutdown::Both);
                                });
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
            Relay { port, frozen, stop }
        }

        /// Freezes (`true`) or thaws the relay.
        pub fn freeze(&self, on: bool) {
            self.frozen.store(on, std::sync::atomic::Ordering::Relaxed);
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
