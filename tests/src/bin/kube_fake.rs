//! The fake Kubernetes API server as a process of its own, for whole-process
//! benchmarks: `kube_fake --pods N --namespaces M --ports P [--listen ADDR]` serves a
//! fleet of pods at loopback addresses (127.1.x.y) and prints `listening <url>`; then
//! each line on standard input is a command:
//!
//! * `relabel <i> <version>`: pod `i` gets label `version=<version>`; prints `ok <rv>`
//!   once the change is in the cluster (watches are woken);
//! * `quit`.

use std::io::BufRead;
use std::process::ExitCode;

use trawl_tests::kube::fleet_pod;
use trawl_tests::kube::server::KubeServer;

fn ip(i: usize) -> String {
    format!("127.{}.{}.{}", 1 + (i >> 16), (i >> 8) & 255, i & 255)
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let (mut pods, mut namespaces, mut ports) = (1000usize, 50usize, 1usize);
    let mut listen = "127.0.0.1:0".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let ok = match a.as_str() {
            "--pods" => v.parse().map(|v| pods = v).is_ok(),
            "--namespaces" => v.parse().map(|v| namespaces = v).is_ok(),
            "--ports" => v.parse().map(|v| ports = v).is_ok(),
            "--listen" => {
                listen = v;
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("usage: kube_fake --pods N --namespaces M --ports P [--listen ADDR]");
            return ExitCode::from(2);
        }
    }
    let k = KubeServer::start_at(&listen);
    k.with(|c| {
        c.window = 1 << 30;
        for i in 0..pods {
            c.apply(fleet_pod(i, namespaces, ports, "v1", &ip(i)));
        }
    });
    println!("listening {}", k.url());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["relabel", i, v] => {
                let Ok(i) = i.parse::<usize>() else { continue };
                let rv = k.apply(fleet_pod(i, namespaces, ports, v, &ip(i)));
                println!("ok {rv}");
            }
            ["quit"] => break,
            _ => println!("?"),
        }
    }
    ExitCode::SUCCESS
}
