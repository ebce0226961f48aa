//! A real ZooKeeper (Debian's) with serverset members, as a process of its own for
//! whole-process benchmarks: `zk_real --members N` starts a standalone server on
//! 127.0.0.1 (data under a temporary directory, removed at exit), creates N members under
//! `/bench/web` (`member_<i>`, at 127.1.x.y:9100, where nothing listens) with status `v1`,
//! and prints `listening <host:port>`; then each line on standard input is a command:
//!
//! * `version <i> <v>`: member `i`'s status becomes `<v>`; prints `ok` once ZooKeeper
//!   has it;
//! * `quit`.

use std::io::BufRead;
use std::process::ExitCode;

use trawl_tests::zookeeper::real::RealZk;

fn member(i: usize, status: &str) -> Vec<u8> {
    let ip = format!("127.{}.{}.{}", 1 + (i >> 16), (i >> 8) & 255, i & 255);
    format!(
        r#"{{"serviceEndpoint":{{"host":"{ip}","port":9100}},"additionalEndpoints":{{}},"status":"{status}","shard":{i}}}"#
    )
    .into_bytes()
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let mut members = 10_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let ok = a == "--members" && v.parse().map(|v| members = v).is_ok();
        if !ok {
            eprintln!("usage: zk_real --members N");
            return ExitCode::from(2);
        }
    }
    let dir = std::env::temp_dir().join(format!("trawl-zk-real-{}", std::process::id()));
    let zk = RealZk::start(&dir);
    let mut w = zk.writer();
    for i in 0..members {
        w.create_all(&format!("/bench/web/member_{i:010}"), &member(i, "v1"));
    }
    println!("listening 127.0.0.1:{}", zk.port);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["version", i, v] => {
                let Ok(i) = i.parse::<usize>() else {
                    println!("error: bad member");
                    continue;
                };
                w.set(&format!("/bench/web/member_{i:010}"), &member(i, v));
                println!("ok");
            }
            ["quit"] => break,
            _ => println!("error: unknown command"),
        }
    }
    drop(w);
    drop(zk);
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
