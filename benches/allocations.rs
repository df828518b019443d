//! Heap use per message on the gateway's per-message path (DATA receive, MIME mapping,
//! the gRPC frame), counted by a wrapping global allocator and reported as a multiple of
//! the message size: the total bytes allocated (every reallocation counted whole, so
//! growth by doubling shows) and the peak of live bytes, with the body buffer taken from
//! a warm pool (the gateway's steady state) or allocated fresh. `cargo bench --bench allocations` prints the table; it asserts
//! nothing (it is a measurement).

mod messages;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use bumpalo::Bump;
use smtpgate::mime::{self, Envelope, MimeLimits};
use smtpgate::smtp::BareLf;
use smtpgate::smtp::data::Receiver;

use messages::*;

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

fn grew(bytes: u64) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// A counting allocator is unsafe by nature (the bench's own measuring tool, not the
// gateway).
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees carry over; the counter is only arithmetic on the side.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        grew(layout.size() as u64);
        // SAFETY: same contract as this method's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as this method's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        grew(layout.size() as u64);
        // SAFETY: same contract as this method's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A reallocation may move: count the whole new block, and both blocks as live
        // for the moment of the copy.
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        grew(new_size as u64);
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as this method's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Where the body buffer of one pass comes from.
#[derive(Clone, Copy, PartialEq)]
enum BodyBuffer {
    /// The shard's pool, warm: a buffer an earlier message grew (the gateway's steady
    /// state; the pool keeps buffers up to [`POOL_MAX_CAPACITY`], larger ones are
    /// allocated for each message as `Announced`).
    Pooled,
    /// Fresh, sized from SIZE= as the session does when the client announces it.
    Announced,
    /// Fresh, grown from empty (no SIZE=).
    Grown,
}

/// The largest buffer the gateway's per-shard pool keeps (`shard::context`).
const POOL_MAX_CAPACITY: usize = 1 << 20;

/// Bytes allocated by one pass of the per-message path, and the peak of live bytes it
/// added.
fn per_message(message: &[u8], buffer: BodyBuffer) -> (u64, u64) {
    let wire = wire(message);
    let recipients = vec!["rcpt@example.com".to_owned()];
    let scratch = Bump::with_capacity(64 * 1024);
    // A warm pooled buffer exists before the count starts.
    let warm = (buffer == BodyBuffer::Pooled && message.len() <= POOL_MAX_CAPACITY)
        .then(|| Vec::with_capacity(message.len()));
    let before = ALLOCATED.load(Ordering::Relaxed);
    let live_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(live_before, Ordering::Relaxed);
    let mut body = match (warm, buffer) {
        (Some(warm), _) => warm,
        (None, BodyBuffer::Grown) => Vec::new(),
        (None, _) => Vec::with_capacity(message.len()),
    };
    let mut rx = Receiver::new(usize::MAX, BareLf::Reject);
    assert!(rx.feed(&wire, &mut body).is_some());
    let envelope = Envelope {
        application: "APP",
        recipients: &recipients,
        ..Default::default()
    };
    let message = mime::map(envelope, &body, &MimeLimits::default(), &scratch).expect("maps");
    let frame = smtpgate::upstream::frame::encode(&message, &message.deliveries[0]);
    drop(message);
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - live_before;
    drop((frame, body));
    (allocated, peak)
}

fn main() {
    // `cargo test --benches` passes --bench-less flags; run only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!(
        "{:<24} {:>9} | {:>19} {:>19} | {:>19} {:>19} | {:>19} {:>19}",
        "message",
        "size",
        "pooled total",
        "pooled peak live",
        "SIZE= total",
        "SIZE= peak live",
        "no SIZE= total",
        "no SIZE= peak live"
    );
    let cases = [
        ("text 1 KiB", text_message(ONE_KIB)),
        ("html+attachment 100 KiB", html_with_attachment(HUNDRED_KIB)),
        ("html+attachment 1 MiB", html_with_attachment(1 << 20)),
        ("text 25 MiB", text_message(TWENTY_FIVE_MIB)),
        (
            "html+attachment 25 MiB",
            html_with_attachment(TWENTY_FIVE_MIB),
        ),
    ];
    for (name, message) in &cases {
        let size = message.len() as f64;
        let cell = |bytes: u64| format!("{bytes} ({:.2}x)", bytes as f64 / size);
        let columns: Vec<String> = [BodyBuffer::Pooled, BodyBuffer::Announced, BodyBuffer::Grown]
            .into_iter()
            .map(|buffer| {
                let (total, peak) = per_message(message, buffer);
                format!("{:>19} {:>19}", cell(total), cell(peak))
            })
            .collect();
        println!("{name:<24} {:>9} | {}", message.len(), columns.join(" | "));
    }
}
