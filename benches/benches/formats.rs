//! Parse throughput of the formats Prometheus 3.x scrapes (issue 19), on the same
//! samples in the same run: the node_exporter-like body as text 0.0.4 (the baseline),
//! as text with quoted UTF-8 names, as OpenMetrics, and as protobuf. Throughput is in
//! samples (the bodies differ in bytes), every entry produced and labels checked, as a
//! scrape parses.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trawl_benches::bodies;
use trawl_core::exposition::{BodyParser, Entry, Format};

fn parse(body: &[u8], format: Format) -> (usize, f64) {
    let mut p = BodyParser::new(format);
    let (mut n, mut sum) = (0usize, 0.0);
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if let Entry::Sample(s) = e {
            n += 1;
            sum += s.value;
        }
        Ok(())
    };
    let _ = p.feed(body, &mut sink);
    let _ = p.finish(&mut sink);
    (n, sum)
}

fn bench(c: &mut Criterion) {
    for (label, text) in [
        ("node_exporter", bodies::node_exporter()),
        ("flat_100k", bodies::flat(100_000)),
    ] {
        let n = bodies::samples(&text);
        let utf8 = bodies::utf8_names(&text);
        let om = bodies::openmetrics(&text);
        let pb = bodies::protobuf(&text);
        let cases: [(&str, &[u8], Format); 4] = [
            ("text", text.as_bytes(), Format::PromText),
            ("text-utf8-names", utf8.as_bytes(), Format::PromText),
            ("openmetrics", om.as_bytes(), Format::OpenMetrics),
            ("protobuf", &pb, Format::Protobuf),
        ];
        for (name, body, format) in cases {
            assert_eq!(
                parse(body, format).0,
                n,
                "{label}/{name} parses every sample"
            );
        }
        let mut g = c.benchmark_group(format!("formats/{label}"));
        g.throughput(Throughput::Elements(n as u64));
        if n > 10_000 {
            g.sample_size(20);
        }
        for (name, body, format) in cases {
            g.bench_function(name, |b| b.iter(|| parse(black_box(body), format)));
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
