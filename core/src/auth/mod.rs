//! Request signing and token computations cloud APIs require, done here because they are
//! computation: the shells read the credentials and the clock and send the requests.

pub mod sigv4;
