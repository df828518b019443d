//! Micro-benchmarks of the hot pure code (no sockets): command parsing, DATA
//! unstuffing and end detection, MIME → Notify mapping, and the request's frame.
//! `cargo bench --bench pure`.

mod messages;

use std::hint::black_box;

use bumpalo::Bump;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smtpgate::mime::{self, Envelope, MimeLimits};
use smtpgate::smtp::BareLf;
use smtpgate::smtp::command;
use smtpgate::smtp::data::Receiver;
use smtpgate::upstream::frame;

use messages::*;

fn commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_parse");
    let lines: [&[u8]; 4] = [
        b"EHLO client.example.com",
        b"MAIL FROM:<sender@example.com> SIZE=1024 BODY=8BITMIME",
        b"RCPT TO:<recipient.name@example.com>",
        b"AUTH PLAIN AEFQUC1DT0RFAFRPS0VO",
    ];
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("ehlo_mail_rcpt_auth", |b| {
        b.iter(|| {
            for line in lines {
                let _ = black_box(command::parse(black_box(line)));
            }
        })
    });
    group.finish();
}

fn data(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_receive");
    for size in [ONE_KIB, 64 * 1024, 1 << 20, TWENTY_FIVE_MIB] {
        let wire = wire(&text_message(size));
        let mut body = Vec::with_capacity(wire.len());
        group.throughput(Throughput::Bytes(wire.len() as u64));
        if size > 1 << 20 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::from_parameter(size), &wire, |b, wire| {
            b.iter(|| {
                body.clear();
                let mut rx = Receiver::new(usize::MAX, BareLf::Reject);
                black_box(rx.feed(wire, &mut body))
            })
        });
    }
    group.finish();
}

fn mapping(c: &mut Criterion) {
    let recipients = vec!["rcpt@example.com".to_owned()];
    let envelope = Envelope {
        application: "APP",
        recipients: &recipients,
        ..Default::default()
    };
    let cases = [
        ("text_1KiB", text_message(ONE_KIB)),
        ("html_attachment_100KiB", html_with_attachment(HUNDRED_KIB)),
        ("text_25MiB", text_message(TWENTY_FIVE_MIB)),
    ];
    let mut group = c.benchmark_group("mime_map_and_frame");
    let mut scratch = Bump::new();
    for (name, message) in &cases {
        group.throughput(Throughput::Bytes(message.len() as u64));
        if message.len() > 1 << 20 {
            group.sample_size(10);
        }
        group.bench_function(BenchmarkId::new("map", name), |b| {
            b.iter(|| {
                scratch.reset();
                black_box(
                    mime::map(envelope, message, &MimeLimits::default(), &scratch)
                        .map(|m| m.shared),
                )
            })
        });
        group.bench_function(BenchmarkId::new("map_and_frame", name), |b| {
            b.iter(|| {
                scratch.reset();
                let mapped = mime::map(envelope, message, &MimeLimits::default(), &scratch);
                black_box(mapped.map(|m| frame::encode(&m, &m.deliveries[0])))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("protobuf_encode");
    for (name, message) in &cases {
        let request = mime::to_notify(envelope, message, &MimeLimits::default(), &Bump::new())
            .expect("maps")
            .remove(0);
        group.throughput(Throughput::Bytes(message.len() as u64));
        if message.len() > 1 << 20 {
            group.sample_size(10);
        }
        group.bench_function(*name, |b| {
            b.iter(|| black_box(smtpgate::upstream::grpc::encode(&request)))
        });
    }
    group.finish();
}

criterion_group!(benches, commands, data, mapping);
criterion_main!(benches);
