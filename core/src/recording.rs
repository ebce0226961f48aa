//! Record and replay: every `(Now, Input)` a shell feeds the agent, in a compact binary
//! log, and a digest of everything the agent answered. Replaying a recording into a
//! fresh agent gives the same outputs, so the same digest: the recorded run is
//! reproduced exactly, off line.
//!
//! A recording is a sequence of entries, each `u8 tag`, `u32` length (little-endian),
//! then the body. The first entry starts the agent (options, configuration text, the
//! clock); the last one, written at a clean end, carries the digest of the outputs. A
//! recording cut short (a crash) replays up to its last whole entry.

use std::time::Duration;

use crate::agent::{Agent, AgentOptions, Input, Output, Stored};
use crate::config::{Config, ParseOptions};
use crate::io::{IoEvent, OwnedIoEvent, RequestId};
use crate::labels::Labels;
use crate::scrape::pipeline::SeriesRef;
use crate::time::{Instant, Now, UnixNanos};
use crate::wal::replay::{Restored, RestoredSeries};

const START: u8 = 1;
const INPUT: u8 = 2;
const CONFIG: u8 = 3;
const DIGEST: u8 = 4;

/// A configuration as the shell read it: parsed again on replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSource {
    /// The file's path (relative paths in it resolve against its directory).
    pub path: String,
    /// Its text.
    pub text: String,
    /// The environment used for expansion.
    pub env: Vec<(String, String)>,
    /// The files `scrape_config_files` named, as read: (absolute path, text), in the
    /// order they are added.
    pub files: Vec<(String, String)>,
}

impl ConfigSource {
    /// Parses it as the shell did.
    pub fn parse(&self) -> Result<Config, String> {
        let mut o = ParseOptions::for_path(&self.path);
        o.env = self.env.iter().cloned().collect();
        let mut c = Config::parse(&self.text, &o).map_err(|e| e.to_string())?;
        for (path, text) in &self.files {
            c.add_scrape_config_file(path, text)
                .map_err(|e| e.to_string())?;
        }
        Ok(c)
    }
}

/// The digest of an agent's outputs: FNV-1a over each output's time and debug text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(pub u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Adds one output, drained at `now`.
    pub fn add(&mut self, now: Now, o: &Output) {
        let text = format!("{} {o:?}\n", now.mono.0);
        for b in text.bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn now(&mut self, n: Now) {
        self.u64(n.mono.0);
        self.u64(n.wall.0 as u64);
    }
}

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("truncated entry")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "length")?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "invalid UTF-8".to_owned())
    }
    fn now(&mut self) -> Result<Now, String> {
        Ok(Now::new(
            Instant(self.u64()?),
            UnixNanos(self.u64()? as i64),
        ))
    }
}

fn entry(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

fn config_body(w: &mut W<'_>, c: &ConfigSource) {
    w.str(&c.path);
    w.str(&c.text);
    w.u64(c.env.len() as u64);
    for (k, v) in &c.env {
        w.str(k);
        w.str(v);
    }
}

fn read_config(r: &mut R<'_>) -> Result<ConfigSource, String> {
    let path = r.str()?;
    let text = r.str()?;
    let n = r.u64()?;
    let mut env = Vec::new();
    for _ in 0..n {
        env.push((r.str()?, r.str()?));
    }
    Ok(ConfigSource {
        path,
        text,
        env,
        files: Vec::new(),
    })
}

// The files of `scrape_config_files` go at the end of an entry (they came after the
// first recordings, which are read without them).
fn files_body(w: &mut W<'_>, c: &ConfigSource) {
    w.u64(c.files.len() as u64);
    for (p, t) in &c.files {
        w.str(p);
        w.str(t);
    }
}

fn read_files(r: &mut R<'_>) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    if r.at < r.b.len() {
        for _ in 0..r.u64()? {
            files.push((r.str()?, r.str()?));
        }
    }
    Ok(files)
}

/// Encodes the first entry: how the agent was created.
pub fn encode_start(out: &mut Vec<u8>, o: &AgentOptions, config: &ConfigSource, now: Now) {
    let mut b = Vec::new();
    let mut w = W(&mut b);
    w.u64(o.seed);
    w.str(&o.fqdn);
    w.u64(o.coalesce_window.as_nanos() as u64);
    w.u64(o.updatert.as_nanos() as u64);
    w.str(&o.user_agent);
    w.u64(o.sd_body_limit);
    config_body(&mut w, config);
    w.now(now);
    // Added after the first recordings: read only where present.
    w.u64(o.body_size_limit);
    w.str(&o.resolv_conf);
    w.u64(u64::from(o.dns_port));
    files_body(&mut w, config);
    // Added with Kubernetes discovery.
    let (host, port) = o.kubernetes_service.clone().unwrap_or_default();
    w.u64(u64::from(o.kubernetes_service.is_some()));
    w.str(&host);
    w.str(&port);
    w.str(&o.kubernetes_service_account_dir);
    // Added with start timestamps.
    w.u64(u64::from(o.start_timestamps));
    // Added with EC2 discovery.
    w.u64(u64::from(o.aws_region.is_some()));
    w.str(o.aws_region.as_deref().unwrap_or_default());
    // Added with DigitalOcean discovery.
    w.u64(o.api_bases.len() as u64);
    for (k, v) in &o.api_bases {
        w.str(k);
        w.str(v);
    }
    entry(out, START, &b);
}

/// Encodes a reload with the configuration's source.
pub fn encode_config(out: &mut Vec<u8>, now: Now, config: &ConfigSource) {
    let mut b = Vec::new();
    let mut w = W(&mut b);
    w.now(now);
    config_body(&mut w, config);
    files_body(&mut w, config);
    entry(out, CONFIG, &b);
}

/// Encodes the digest of the outputs (at a clean end).
pub fn encode_digest(out: &mut Vec<u8>, d: Digest) {
    entry(out, DIGEST, &d.0.to_le_bytes());
}

/// Encodes one input (`Input::Config` is recorded with [`encode_config`] instead: its
/// source, not the parsed value).
pub fn encode_input(out: &mut Vec<u8>, now: Now, input: &Input<'_>) {
    let mut b = Vec::new();
    let mut w = W(&mut b);
    w.now(now);
    match input {
        Input::Config(_) => return,
        Input::Timeout => w.u8(0),
        Input::Shutdown => w.u8(1),
        Input::Stored(s) => {
            w.u8(2);
            w.u64(s.batches);
            w.u64(s.samples);
            w.u64(s.lost_samples);
            match s.error {
                Some(e) => {
                    w.u8(1);
                    w.str(e);
                }
                None => w.u8(0),
            }
        }
        Input::Restore(r) => {
            w.u8(3);
            w.u64(r.next_ref);
            w.u64(r.series.len() as u64);
            for s in &r.series {
                w.u64(s.series.0);
                w.u64(s.last_t as u64);
                w.u64(s.labels.len() as u64);
                for (n, v) in s.labels.iter() {
                    w.str(n);
                    w.str(v);
                }
            }
        }
        Input::Io { id, event } => {
            w.u8(4);
            w.u64(id.0);
            match event {
                IoEvent::HttpHead {
                    status,
                    reason,
                    headers,
                } => {
                    w.u8(0);
                    w.u64(u64::from(*status));
                    w.str(reason);
                    w.u64(headers.len() as u64);
                    for (n, v) in headers.iter() {
                        w.str(n);
                        w.str(v);
                    }
                }
                IoEvent::HttpBody(d) => {
                    w.u8(1);
                    w.bytes(d);
                }
                IoEvent::HttpEnd => w.u8(2),
                IoEvent::FileData(d) => {
                    w.u8(3);
                    w.bytes(d);
                }
                IoEvent::NotFound => w.u8(4),
                IoEvent::DirEntries(names) => {
                    w.u8(5);
                    w.u64(names.len() as u64);
                    for n in names.iter() {
                        w.str(n);
                    }
                }
                IoEvent::Changed { name } => {
                    w.u8(6);
                    match name {
                        Some(n) => {
                            w.u8(1);
                            w.str(n);
                        }
                        None => w.u8(0),
                    }
                }
                IoEvent::Failed(m) => {
                    w.u8(7);
                    w.str(m);
                }
                IoEvent::DnsReply(d) => {
                    w.u8(8);
                    w.bytes(d);
                }
                IoEvent::StreamOpened => w.u8(9),
                IoEvent::StreamData(d) => {
                    w.u8(10);
                    w.bytes(d);
                }
                IoEvent::StreamClosed => w.u8(11),
            }
        }
    }
    entry(out, INPUT, &b);
}

/// The result of a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayResult {
    /// The digest of the replayed outputs.
    pub digest: Digest,
    /// The digest the recording ends with, if it ended cleanly.
    pub recorded: Option<Digest>,
    /// Inputs fed.
    pub inputs: u64,
}

/// Replays a recording into a fresh agent.
pub fn replay(b: &[u8]) -> Result<ReplayResult, String> {
    replay_with(b, |_, _| {})
}

/// [`replay`], showing each output to `on_output` as it is drained.
pub fn replay_with(
    b: &[u8],
    mut on_output: impl FnMut(Now, &Output),
) -> Result<ReplayResult, String> {
    let mut at = 0;
    let mut agent: Option<Agent> = None;
    let mut digest = Digest::default();
    let mut recorded = None;
    let mut inputs = 0;
    let mut now;
    let mut drain = |a: &mut Agent, now: Now, d: &mut Digest| {
        while let Some(o) = a.poll_output() {
            d.add(now, &o);
            on_output(now, &o);
        }
    };
    while at + 5 <= b.len() {
        let tag = b[at];
        let len = u32::from_le_bytes([b[at + 1], b[at + 2], b[at + 3], b[at + 4]]) as usize;
        let Some(body) = b.get(at + 5..at + 5 + len) else {
            break; // a torn last entry
        };
        at += 5 + len;
        let mut r = R { b: body, at: 0 };
        match tag {
            START => {
                let o = AgentOptions {
                    seed: r.u64()?,
                    fqdn: r.str()?,
                    coalesce_window: Duration::from_nanos(r.u64()?),
                    updatert: Duration::from_nanos(r.u64()?),
                    user_agent: r.str()?,
                    sd_body_limit: r.u64()?,
                    body_size_limit: 0,
                    ..AgentOptions::default()
                };
                let mut c = read_config(&mut r)?;
                now = r.now()?;
                // Recordings made before the option existed ran without a default
                // limit.
                let mut o = AgentOptions {
                    body_size_limit: if r.at < r.b.len() { r.u64()? } else { 0 },
                    ..o
                };
                if r.at < r.b.len() {
                    o.resolv_conf = r.str()?;
                    o.dns_port = u16::try_from(r.u64()?).map_err(|_| "dns port")?;
                }
                c.files = read_files(&mut r)?;
                if r.at < r.b.len() {
                    let set = r.u64()? != 0;
                    let (host, port) = (r.str()?, r.str()?);
                    o.kubernetes_service = set.then_some((host, port));
                    o.kubernetes_service_account_dir = r.str()?;
                }
                if r.at < r.b.len() {
                    o.start_timestamps = r.u64()? != 0;
                }
                if r.at < r.b.len() {
                    let set = r.u64()? != 0;
                    let region = r.str()?;
                    o.aws_region = set.then_some(region);
                }
                if r.at < r.b.len() {
                    let n = r.u64()?;
                    for _ in 0..n {
                        let k = r.str()?;
                        let v = r.str()?;
                        o.api_bases.insert(k, v);
                    }
                }
                let mut a = Agent::new(c.parse()?, o, now);
                drain(&mut a, now, &mut digest);
                agent = Some(a);
            }
            CONFIG => {
                let a = agent.as_mut().ok_or("a reload before the start")?;
                now = r.now()?;
                let mut c = read_config(&mut r)?;
                c.files = read_files(&mut r)?;
                a.handle_input(now, Input::Config(Box::new(c.parse()?)));
                inputs += 1;
                drain(a, now, &mut digest);
            }
            INPUT => {
                let a = agent.as_mut().ok_or("an input before the start")?;
                now = r.now()?;
                feed(a, now, &mut r)?;
                inputs += 1;
                drain(a, now, &mut digest);
            }
            DIGEST => recorded = Some(Digest(r.u64()?)),
            t => return Err(format!("unknown entry type {t} at byte {}", at - 5 - len)),
        }
    }
    Ok(ReplayResult {
        digest,
        recorded,
        inputs,
    })
}

fn feed(a: &mut Agent, now: Now, r: &mut R<'_>) -> Result<(), String> {
    match r.u8()? {
        0 => a.handle_input(now, Input::Timeout),
        1 => a.handle_input(now, Input::Shutdown),
        2 => {
            let batches = r.u64()?;
            let samples = r.u64()?;
            let lost_samples = r.u64()?;
            let error = match r.u8()? {
                1 => Some(r.str()?),
                _ => None,
            };
            a.handle_input(
                now,
                Input::Stored(Stored {
                    batches,
                    samples,
                    lost_samples,
                    error: error.as_deref(),
                }),
            );
        }
        3 => {
            let next_ref = r.u64()?;
            let n = r.u64()?;
            let mut series = Vec::new();
            for _ in 0..n {
                let s = SeriesRef(r.u64()?);
                let last_t = r.u64()? as i64;
                let k = r.u64()?;
                let mut pairs = Vec::new();
                for _ in 0..k {
                    pairs.push((r.str()?, r.str()?));
                }
                series.push(RestoredSeries {
                    series: s,
                    labels: Labels::from_pairs(pairs),
                    last_t,
                });
            }
            a.handle_input(now, Input::Restore(Box::new(Restored { next_ref, series })));
        }
        4 => {
            let id = RequestId(r.u64()?);
            // Decoded into the owned event the shells and the simulator queue too.
            let ev = match r.u8()? {
                0 => {
                    let status = u16::try_from(r.u64()?).map_err(|_| "status")?;
                    let reason = r.str()?;
                    let n = r.u64()?;
                    let mut headers = Vec::new();
                    for _ in 0..n {
                        headers.push((r.str()?, r.str()?));
                    }
                    OwnedIoEvent::HttpHead(crate::http::ResponseHead {
                        minor: 1,
                        status,
                        reason,
                        headers,
                    })
                }
                1 => OwnedIoEvent::HttpBody(r.bytes()?.to_vec()),
                2 => OwnedIoEvent::HttpEnd,
                3 => OwnedIoEvent::FileData(r.bytes()?.to_vec()),
                4 => OwnedIoEvent::NotFound,
                5 => {
                    let n = r.u64()?;
                    let mut names = Vec::new();
                    for _ in 0..n {
                        names.push(r.str()?);
                    }
                    OwnedIoEvent::DirEntries(names)
                }
                6 => OwnedIoEvent::Changed(match r.u8()? {
                    1 => Some(r.str()?),
                    _ => None,
                }),
                7 => OwnedIoEvent::Failed(r.str()?),
                8 => OwnedIoEvent::DnsReply(r.bytes()?.to_vec()),
                9 => OwnedIoEvent::StreamOpened,
                10 => OwnedIoEvent::StreamData(r.bytes()?.to_vec()),
                11 => OwnedIoEvent::StreamClosed,
                k => return Err(format!("unknown IO event {k}")),
            };
            ev.with_event(|event| a.handle_input(now, Input::Io { id, event }));
        }
        k => return Err(format!("unknown input {k}")),
    }
    Ok(())
}
