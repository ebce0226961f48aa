//! Parses one of the bench bodies in a loop, for profilers (`perf record`, callgrind):
//! `parse_loop <text|utf8|openmetrics|protobuf> <node|flat> <iterations>`.
use trawl_benches::bodies;
use trawl_core::exposition::{BodyParser, Entry, Format};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let format = args.get(1).map_or("text", String::as_str);
    let which = args.get(2).map_or("flat", String::as_str);
    let iters: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let text = if which == "node" {
        bodies::node_exporter()
    } else {
        bodies::flat(100_000)
    };
    let (body, f) = match format {
        "utf8" => (bodies::utf8_names(&text).into_bytes(), Format::PromText),
        "openmetrics" => (bodies::openmetrics(&text).into_bytes(), Format::OpenMetrics),
        "protobuf" => (bodies::protobuf(&text), Format::Protobuf),
        _ => (text.into_bytes(), Format::PromText),
    };
    let mut n = 0usize;
    for _ in 0..iters {
        let mut p = BodyParser::new(f);
        let mut sink = |e: Entry<'_>| -> Result<(), ()> {
            if let Entry::Sample(s) = e {
                n += 1;
                std::hint::black_box(s.value);
            }
            Ok(())
        };
        let _ = p.feed(&body, &mut sink);
        let _ = p.finish(&mut sink);
    }
    std::hint::black_box(n);
}
