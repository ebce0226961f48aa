//! The fake Consul agent as a process of its own, for whole-process benchmarks:
//! `consul_fake --services N --per M [--listen ADDR]` registers N services (`svc-<i>`)
//! with M instances each at loopback addresses (127.1.x.y:9100, nothing listens there),
//! each with the service metadata `version=v1`, and prints `listening <host:port>`; then
//! each line on standard input is a command:
//!
//! * `version <i> <v>`: every instance of `svc-<i>` gets `version=<v>`; prints `ok
//!   <index>` once the change is in the catalog (blocking queries are woken);
//! * `quit`.

use std::io::BufRead;
use std::process::ExitCode;

use trawl_tests::consul::server::ConsulServer;
use trawl_tests::consul::{Catalog, Instance, Node};

fn ip(k: usize) -> String {
    format!("127.{}.{}.{}", 1 + (k >> 16), (k >> 8) & 255, k & 255)
}

fn instance(i: usize, j: usize, per: usize, version: &str) -> Instance {
    let k = i * per + j;
    Instance::new(
        &format!("node-{}", k % 100),
        &format!("svc-{i}"),
        &format!("svc-{i}-{j}"),
        &ip(k),
        9100,
    )
    .tags(&["prod"])
    .meta("version", version)
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let (mut services, mut per) = (1000usize, 10usize);
    let mut listen = "127.0.0.1:0".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let ok = match a.as_str() {
            "--services" => v.parse().map(|v| services = v).is_ok(),
            "--per" => v.parse().map(|v| per = v).is_ok(),
            "--listen" => {
                listen = v;
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("usage: consul_fake --services N --per M [--listen ADDR]");
            return ExitCode::from(2);
        }
    }
    let mut c = Catalog::new("dc1");
    for n in 0..100 {
        c.register_node(Node {
            name: format!("node-{n}"),
            address: format!("10.1.0.{n}"),
            ..Node::default()
        });
    }
    for i in 0..services {
        for j in 0..per {
            c.register(instance(i, j, per, "v1"));
        }
    }
    let server = ConsulServer::start_at(&listen, c);
    println!("listening {}", server.addr());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["version", i, v] => {
                let Ok(i) = i.parse::<usize>() else { continue };
                let index = server.with(|c| {
                    let mut last = 0;
                    for j in 0..per {
                        last = c.register(instance(i, j, per, v));
                    }
                    last
                });
                println!("ok {index}");
            }
            ["quit"] => break,
            _ => println!("?"),
        }
    }
    ExitCode::SUCCESS
}
