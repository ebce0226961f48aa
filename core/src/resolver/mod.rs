//! A DNS stub resolver without IO: resolv.conf interpreted, queries encoded, answers
//! decoded, and each lookup a machine that asks the shell to exchange datagrams
//! ([`crate::io::IoOp::Dns`]) and keeps its own deadlines.

pub mod conf;
pub mod host;
pub mod hosts;
pub(crate) mod lookup;
pub mod wire;
