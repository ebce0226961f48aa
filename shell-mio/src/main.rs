//! `trawl`: the Prometheus-compatible discovery and scrape agent (daemon).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v") || args.is_empty() {
        println!("trawl {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("trawl {}: the daemon is not built yet; only --version works", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
