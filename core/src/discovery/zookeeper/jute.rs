//! ZooKeeper's wire format (jute), both directions: the client's messages and the
//! server's, so trawl's client and the tests' fake server share one definition.
//!
//! Every message travels in a frame: a 4-byte big-endian length, then that many bytes.
//! Integers are big-endian two's complement, a `bool` is one byte, a string or buffer is
//! a 4-byte length (−1 for null) then its bytes, a vector a 4-byte count (−1 for null)
//! then its items. After the session handshake (which has no header), a request starts
//! with `xid` and `type`, a reply with `xid`, `zxid` and `err`; watch notifications come
//! as replies with xid −1, pings use xid −2, `setWatches` xid −8 (the values the Java and
//! Go clients use). The layouts follow ZooKeeper 3.8's `zookeeper.jute`.

/// Largest frame either side accepts (ZooKeeper's `jute.maxbuffer` is 1 MiB for data; a
/// children list of 100,000 members fits in this).
pub const MAX_FRAME: usize = 4 << 20;

/// xid of watch notifications.
pub const XID_WATCH: i32 = -1;
/// xid of pings.
pub const XID_PING: i32 = -2;
/// xid of `setWatches`.
pub const XID_SET_WATCHES: i32 = -8;

/// Operation codes used here.
pub mod op {
    /// `getData`.
    pub const GET_DATA: i32 = 4;
    /// `ping`.
    pub const PING: i32 = 11;
    /// `getChildren2` (children and the parent's stat).
    pub const GET_CHILDREN2: i32 = 12;
    /// `setWatches` (re-arms watches after a reconnect).
    pub const SET_WATCHES: i32 = 101;
    /// `closeSession`.
    pub const CLOSE: i32 = -11;
    /// `create` (the tests' fake and tools only).
    pub const CREATE: i32 = 1;
    /// `delete` (the tests' fake and tools only).
    pub const DELETE: i32 = 2;
    /// `setData` (the tests' fake and tools only).
    pub const SET_DATA: i32 = 5;
}

/// Error codes used here (`KeeperException.Code`).
pub mod err {
    /// No error.
    pub const OK: i32 = 0;
    /// A system error (the server's catch-all).
    pub const SYSTEM: i32 = -1;
    /// The server could not decode the request.
    pub const MARSHALLING: i32 = -5;
    /// The request is not one the server knows.
    pub const UNIMPLEMENTED: i32 = -6;
    /// A bad argument.
    pub const BAD_ARGUMENTS: i32 = -8;
    /// The node does not exist.
    pub const NO_NODE: i32 = -101;
    /// Not authorised to read the node.
    pub const NO_AUTH: i32 = -102;
    /// The node exists (create).
    pub const NODE_EXISTS: i32 = -110;
    /// The node has children (delete).
    pub const NOT_EMPTY: i32 = -111;
    /// The session expired.
    pub const SESSION_EXPIRED: i32 = -112;
}

/// Watch notification types (`Watcher.Event.EventType`).
pub mod event {
    /// A state change, no node (ignored by watches).
    pub const NONE: i32 = -1;
    /// A node was created.
    pub const CREATED: i32 = 1;
    /// A node was deleted.
    pub const DELETED: i32 = 2;
    /// A node's data changed.
    pub const DATA_CHANGED: i32 = 3;
    /// A node's children changed.
    pub const CHILDREN_CHANGED: i32 = 4;
}

/// The name of an error code, as the Go client spells its errors.
pub fn error_name(code: i32) -> String {
    match code {
        err::SYSTEM => "unknown error".into(),
        err::MARSHALLING => "marshalling error".into(),
        err::UNIMPLEMENTED => "unimplemented".into(),
        err::BAD_ARGUMENTS => "invalid arguments".into(),
        err::NO_NODE => "node does not exist".into(),
        err::NO_AUTH => "not authenticated".into(),
        err::NODE_EXISTS => "node already exists".into(),
        err::NOT_EMPTY => "node has children".into(),
        err::SESSION_EXPIRED => "session has been expired by the server".into(),
        c => format!("unknown error: {c}"),
    }
}

/// A message that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds one message.
#[derive(Debug, Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    /// An empty message.
    pub fn new() -> Writer {
        Writer(Vec::new())
    }
    /// Appends an `int`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a `long`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a `boolean`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }
    /// Appends a `buffer` (`None`: null).
    pub fn buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.i32(-1),
            Some(b) => {
                // Frames are far below 2 GiB (MAX_FRAME).
                self.i32(b.len() as i32);
                self.0.extend_from_slice(b);
                self
            }
        }
    }
    /// Appends a `ustring`.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(Some(v.as_bytes()))
    }
    /// Appends a `vector<ustring>`.
    pub fn strings<'a>(&mut self, v: impl ExactSizeIterator<Item = &'a str>) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.string(s);
        }
        self
    }
    /// Appends a [`Stat`].
    pub fn stat(&mut self, s: &Stat) -> &mut Self {
        self.i64(s.czxid)
            .i64(s.mzxid)
            .i64(s.ctime)
            .i64(s.mtime)
            .i32(s.version)
            .i32(s.cversion)
            .i32(s.aversion)
            .i64(s.ephemeral_owner)
            .i32(s.data_length)
            .i32(s.num_children)
            .i64(s.pzxid)
    }
    /// The message in its frame (length prefix).
    pub fn frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 4);
        out.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.0);
        out
    }
}

/// Reads one message.
#[derive(Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `b` (a frame's payload).
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError(format!("message ends inside its {what}")));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    /// Reads an `int`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4, "int")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a `long`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8, "long")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    /// Reads a `boolean`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1, "boolean")?[0] != 0)
    }
    /// Reads a `buffer` (`None`: null).
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        self.take(n as usize, "buffer").map(Some)
    }
    /// Reads a `ustring` (null reads as empty).
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.buffer()?.unwrap_or_default();
        std::str::from_utf8(b).map_err(|_| DecodeError("a string is not UTF-8".into()))
    }
    /// Reads a `vector<ustring>` (null reads as empty). The count is checked against
    /// the bytes left before anything is allocated.
    pub fn strings(&mut self) -> Result<Vec<&'a str>, DecodeError> {
        let n = self.i32()?;
        if n <= 0 {
            return Ok(Vec::new());
        }
        let n = n as usize;
        // Every string takes at least its 4-byte length.
        if n > self.b.len() / 4 {
            return Err(DecodeError(format!(
                "vector of {n} strings in a short message"
            )));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.string()?);
        }
        Ok(v)
    }
    /// Reads a [`Stat`].
    pub fn stat(&mut self) -> Result<Stat, DecodeError> {
        Ok(Stat {
            czxid: self.i64()?,
            mzxid: self.i64()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            data_length: self.i32()?,
            num_children: self.i32()?,
            pzxid: self.i64()?,
        })
    }
    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.b
    }
}

/// A node's metadata (`Stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last change.
    pub mzxid: i64,
    /// Creation time (ms since the epoch).
    pub ctime: i64,
    /// Last change time.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session of an ephemeral node (0 otherwise).
    pub ephemeral_owner: i64,
    /// Length of the data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last children change.
    pub pzxid: i64,
}

/// The session handshake, client to server (`ConnectRequest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Protocol version (0).
    pub protocol_version: i32,
    /// The last zxid the client saw (0 for a new session).
    pub last_zxid_seen: i64,
    /// The session timeout asked for, in ms.
    pub timeout_ms: i32,
    /// The session to resume (0: a new one).
    pub session_id: i64,
    /// Its password (16 zero bytes for a new one).
    pub passwd: Vec<u8>,
}

impl ConnectRequest {
    /// The framed message (without the trailing `readOnly` flag, as the Go client).
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .i32(self.protocol_version)
            .i64(self.last_zxid_seen)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(Some(&self.passwd))
            .frame()
    }

    /// Decodes a frame's payload (a `readOnly` flag after it is allowed).
    pub fn decode(b: &[u8]) -> Result<ConnectRequest, DecodeError> {
        let mut r = Reader::new(b);
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default().to_vec(),
        })
    }
}

/// The session handshake's answer (`ConnectResponse`). A timeout of 0 or less means
/// the session asked for has expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Protocol version.
    pub protocol_version: i32,
    /// The negotiated session timeout, in ms.
    pub timeout_ms: i32,
    /// The session.
    pub session_id: i64,
    /// Its password.
    pub passwd: Vec<u8>,
}

impl ConnectResponse {
    /// The framed message (with `readOnly` false, as servers send it).
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .i32(self.protocol_version)
            .i32(self.timeout_ms)
            .i64(self.session_id)
            .buffer(Some(&self.passwd))
            .bool(false)
            .frame()
    }

    /// Decodes a frame's payload (the `readOnly` flag may be missing).
    pub fn decode(b: &[u8]) -> Result<ConnectResponse, DecodeError> {
        let mut r = Reader::new(b);
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default().to_vec(),
        })
    }
}

/// A request after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `getData(path, watch)`.
    GetData {
        /// The node.
        path: String,
        /// Leave a data watch.
        watch: bool,
    },
    /// `getChildren2(path, watch)`.
    GetChildren {
        /// The node.
        path: String,
        /// Leave a child watch.
        watch: bool,
    },
    /// `ping`.
    Ping,
    /// `setWatches(relativeZxid, data, exist, child)`.
    SetWatches {
        /// The last zxid seen: the server fires what changed after it.
        relative_zxid: i64,
        /// Data watches.
        data: Vec<String>,
        /// Exist watches.
        exist: Vec<String>,
        /// Child watches.
        child: Vec<String>,
    },
    /// `closeSession`.
    Close,
    /// `create(path, data, open ACL, flags)` (tools and the fake).
    Create {
        /// The node.
        path: String,
        /// Its data.
        data: Vec<u8>,
        /// 1: ephemeral.
        flags: i32,
    },
    /// `setData(path, data, version)`.
    SetData {
        /// The node.
        path: String,
        /// The new data.
        data: Vec<u8>,
        /// The version expected (−1: any).
        version: i32,
    },
    /// `delete(path, version)`.
    Delete {
        /// The node.
        path: String,
        /// The version expected (−1: any).
        version: i32,
    },
    /// An operation this file does not model (the fake answers it `UNIMPLEMENTED`).
    Other(i32),
}

impl Request {
    /// The operation code.
    pub fn op(&self) -> i32 {
        match self {
            Request::GetData { .. } => op::GET_DATA,
            Request::GetChildren { .. } => op::GET_CHILDREN2,
            Request::Ping => op::PING,
            Request::SetWatches { .. } => op::SET_WATCHES,
            Request::Close => op::CLOSE,
            Request::Create { .. } => op::CREATE,
            Request::SetData { .. } => op::SET_DATA,
            Request::Delete { .. } => op::DELETE,
            Request::Other(o) => *o,
        }
    }

    /// The framed request under `xid`.
    pub fn encode(&self, xid: i32) -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(xid).i32(self.op());
        match self {
            Request::GetData { path, watch } | Request::GetChildren { path, watch } => {
                w.string(path).bool(*watch);
            }
            Request::Ping | Request::Close | Request::Other(_) => {}
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
            } => {
                w.i64(*relative_zxid);
                for list in [data, exist, child] {
                    w.strings(list.iter().map(String::as_str));
                }
            }
            Request::Create { path, data, flags } => {
                // One ACL: world:anyone with every permission (OPEN_ACL_UNSAFE).
                w.string(path).buffer(Some(data)).i32(1);
                w.i32(31).string("world").string("anyone").i32(*flags);
            }
            Request::SetData {
                path,
                data,
                version,
            } => {
                w.string(path).buffer(Some(data)).i32(*version);
            }
            Request::Delete { path, version } => {
                w.string(path).i32(*version);
            }
        }
        w.frame()
    }

    /// Decodes a frame's payload: the xid and the request.
    pub fn decode(b: &[u8]) -> Result<(i32, Request), DecodeError> {
        let mut r = Reader::new(b);
        let xid = r.i32()?;
        let code = r.i32()?;
        let req = match code {
            op::GET_DATA | op::GET_CHILDREN2 => {
                let path = r.string()?.to_owned();
                let watch = r.bool()?;
                if code == op::GET_DATA {
                    Request::GetData { path, watch }
                } else {
                    Request::GetChildren { path, watch }
                }
            }
            op::PING => Request::Ping,
            op::CLOSE => Request::Close,
            op::SET_WATCHES => {
                let relative_zxid = r.i64()?;
                let mut lists = Vec::with_capacity(3);
                for _ in 0..3 {
                    lists.push(r.strings()?.into_iter().map(str::to_owned).collect());
                }
                let child = lists.pop().unwrap_or_default();
                let exist = lists.pop().unwrap_or_default();
                let data = lists.pop().unwrap_or_default();
                Request::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                }
            }
            op::CREATE => {
                let path = r.string()?.to_owned();
                let data = r.buffer()?.unwrap_or_default().to_vec();
                let acls = r.i32()?;
                for _ in 0..acls.max(0) {
                    r.i32()?;
                    r.string()?;
                    r.string()?;
                }
                let flags = r.i32()?;
                Request::Create { path, data, flags }
            }
            op::SET_DATA => Request::SetData {
                path: r.string()?.to_owned(),
                data: r.buffer()?.unwrap_or_default().to_vec(),
                version: r.i32()?,
            },
            op::DELETE => Request::Delete {
                path: r.string()?.to_owned(),
                version: r.i32()?,
            },
            other => Request::Other(other),
        };
        Ok((xid, req))
    }
}

/// A reply's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid (or [`XID_WATCH`], [`XID_PING`], [`XID_SET_WATCHES`]).
    pub xid: i32,
    /// The zxid the server is at.
    pub zxid: i64,
    /// An error code ([`err::OK`] for none).
    pub err: i32,
}

impl ReplyHeader {
    /// Starts a reply message with this header.
    pub fn writer(&self) -> Writer {
        let mut w = Writer::new();
        w.i32(self.xid).i64(self.zxid).i32(self.err);
        w
    }

    /// Reads the header at the start of a reply.
    pub fn read(r: &mut Reader<'_>) -> Result<ReplyHeader, DecodeError> {
        Ok(ReplyHeader {
            xid: r.i32()?,
            zxid: r.i64()?,
            err: r.i32()?,
        })
    }
}

/// A watch notification's body (`WatcherEvent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherEvent {
    /// One of [`event`]'s types.
    pub kind: i32,
    /// The session state (3: connected).
    pub state: i32,
    /// The node.
    pub path: String,
}

impl WatcherEvent {
    /// The framed notification at server zxid `zxid`.
    pub fn encode(&self, zxid: i64) -> Vec<u8> {
        let mut w = ReplyHeader {
            xid: XID_WATCH,
            zxid,
            err: err::OK,
        }
        .writer();
        w.i32(self.kind).i32(self.state).string(&self.path);
        w.frame()
    }

    /// Reads the body after a notification's header.
    pub fn read(r: &mut Reader<'_>) -> Result<WatcherEvent, DecodeError> {
        Ok(WatcherEvent {
            kind: r.i32()?,
            state: r.i32()?,
            path: r.string()?.to_owned(),
        })
    }
}

/// Splits whole frames off the front of a byte stream.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the next frame starts in `buf`.
    at: usize,
}

impl Framer {
    /// No bytes yet.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Adds bytes that arrived.
    pub fn push(&mut self, b: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        self.buf.extend_from_slice(b);
    }

    /// The next whole frame's payload, `Ok(None)` while it is incomplete, or an error
    /// for a frame longer than [`MAX_FRAME`] (the stream cannot go on).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let rest = &self.buf[self.at..];
        if rest.len() < 4 {
            self.compact();
            return Ok(None);
        }
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if n > MAX_FRAME {
            return Err(DecodeError(format!(
                "frame of {n} bytes is over the limit of {MAX_FRAME}"
            )));
        }
        if rest.len() < 4 + n {
            self.compact();
            return Ok(None);
        }
        let start = self.at + 4;
        self.at = start + n;
        Ok(Some(&self.buf[start..start + n]))
    }

    /// Bytes held (a partial frame).
    pub fn held(&self) -> usize {
        self.buf.len() - self.at
    }

    fn compact(&mut self) {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::GetData {
                path: "/a/b".into(),
                watch: true,
            },
            Request::GetChildren {
                path: "/".into(),
                watch: false,
            },
            Request::Ping,
            Request::Close,
            Request::SetWatches {
                relative_zxid: 77,
                data: vec!["/a".into()],
                exist: vec![],
                child: vec!["/a".into(), "/b".into()],
            },
            Request::Create {
                path: "/x".into(),
                data: b"{}".to_vec(),
                flags: 1,
            },
            Request::SetData {
                path: "/x".into(),
                data: vec![],
                version: -1,
            },
            Request::Delete {
                path: "/x".into(),
                version: 3,
            },
        ];
        for (i, r) in all.iter().enumerate() {
            let f = r.encode(i as i32 + 1);
            let mut fr = Framer::new();
            fr.push(&f);
            let payload = fr.next_frame().unwrap().unwrap().to_vec();
            assert_eq!(
                Request::decode(&payload).unwrap(),
                (i as i32 + 1, r.clone())
            );
        }
    }

    #[test]
    fn the_handshake_matches_the_go_clients_bytes() {
        // go-zookeeper's connectRequest for a new session with a 10 s timeout.
        let c = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
        };
        let f = c.encode();
        assert_eq!(f.len(), 4 + 4 + 8 + 4 + 8 + 4 + 16);
        assert_eq!(&f[..4], &[0, 0, 0, 44]);
        assert_eq!(&f[16..20], &10_000i32.to_be_bytes());
        assert_eq!(ConnectRequest::decode(&f[4..]).unwrap(), c);
        let r = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 4000,
            session_id: 0x1000_0000_0000_0001,
            passwd: vec![7; 16],
        };
        let f = r.encode();
        assert_eq!(ConnectResponse::decode(&f[4..]).unwrap(), r);
        // Without the readOnly byte (servers before 3.4) too.
        assert_eq!(ConnectResponse::decode(&f[4..f.len() - 1]).unwrap(), r);
    }

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let mut bytes = Vec::new();
        for i in 0..5 {
            bytes.extend(Request::Ping.encode(i));
        }
        for cut in 1..bytes.len() {
            let mut fr = Framer::new();
            let mut seen = 0;
            for part in [&bytes[..cut], &bytes[cut..]] {
                fr.push(part);
                while let Some(f) = fr.next_frame().unwrap() {
                    assert_eq!(Request::decode(f).unwrap(), (seen, Request::Ping));
                    seen += 1;
                }
            }
            assert_eq!(seen, 5);
            assert_eq!(fr.held(), 0);
        }
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        let mut fr = Framer::new();
        fr.push(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(fr.next_frame().is_err());
        // A vector claiming a billion strings in a few bytes.
        let mut w = Writer::new();
        w.i32(1_000_000_000).i32(0);
        let f = w.frame();
        assert!(Reader::new(&f[4..]).strings().is_err());
        let mut w = Writer::new();
        w.i32(i32::MAX);
        let f = w.frame();
        assert!(Reader::new(&f[4..]).buffer().is_err());
    }
}
