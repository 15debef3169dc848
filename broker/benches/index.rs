//! Subscription index at scale: matching one topic against 100,000
//! subscriptions of mixed shapes, next to a linear scan of the same filters,
//! and insert/remove throughput.
//!
//! `cargo bench -p broker --bench index`

use std::hint::black_box;

use broker::router::index::SubscriptionIndex;
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use mqtt_codec::topic::{TopicFilter, TopicName, matches};

const SUBSCRIPTIONS: usize = 100_000;
const SITES: u64 = 200;
const DEVICES: u64 = 500;
const CLIENTS: u64 = 20_000;
const MEASURES: [&str; 4] = ["temp", "humidity", "power", "status"];

/// A small deterministic generator (xorshift64*), so every run benchmarks the
/// same subscriptions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// 100,000 subscriptions: about half exact, the rest `+` at each level, `#`
/// at several depths, and `$SYS` filters, over a tree of sites, devices and
/// measures.
fn subscriptions() -> Vec<(TopicFilter, u64, u8)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..SUBSCRIPTIONS)
        .map(|_| {
            let s = rng.below(SITES);
            let d = rng.below(DEVICES);
            let m = MEASURES[rng.below(4) as usize];
            let text = match rng.below(20) {
                0..=9 => format!("site/{s}/dev/{d}/{m}"),
                10 => format!("site/+/dev/{d}/{m}"),
                11 => format!("site/{s}/dev/+/{m}"),
                12 => format!("site/{s}/dev/{d}/+"),
                13 => format!("+/{s}/dev/{d}/{m}"),
                14 => format!("site/{s}/#"),
                15 => format!("site/{s}/dev/{d}/#"),
                16 => format!("site/+/dev/{d}/{m}/#"),
                17 => format!("$SYS/broker/{}/{m}", rng.below(1_000)),
                18 => format!("$SYS/broker/{}/#", rng.below(1_000)),
                // A sprinkle of very broad filters.
                _ => match rng.below(200) {
                    0 => "#".to_owned(),
                    1 => "$SYS/#".to_owned(),
                    2 => "+/+/+/+/+".to_owned(),
                    _ => format!("site/{s}/dev/{d}/{m}/raw"),
                },
            };
            let filter = TopicFilter::new(&text).expect("generated filters are valid");
            (filter, rng.below(CLIENTS), rng.below(3) as u8)
        })
        .collect()
}

fn build(subs: &[(TopicFilter, u64, u8)]) -> SubscriptionIndex<u64, u8> {
    let mut index = SubscriptionIndex::new();
    for (filter, client, qos) in subs {
        index.insert(filter, *client, *qos);
    }
    index
}

/// The two lookups the router makes, as benchmarks in `group`: a visit per
/// matching (filter, client), and the merged list of one entry per client.
fn bench_lookups(
    group: &mut BenchmarkGroup<'_, WallTime>,
    index: &SubscriptionIndex<u64, u8>,
    topic: &TopicName,
) {
    group.bench_function("index_for_each_match", |b| {
        b.iter(|| {
            let mut n = 0u32;
            index.for_each_match(black_box(topic), |_, qos| n += u32::from(qos) + 1);
            n
        })
    });
    let mut out = Vec::new();
    group.bench_function("index_matches_into_dedup", |b| {
        b.iter(|| {
            index.matches_into(black_box(topic), &mut out);
            out.len()
        })
    });
}

fn bench_match(c: &mut Criterion) {
    let subs = subscriptions();
    let index = build(&subs);
    let topic = TopicName::new("site/17/dev/42/temp").expect("valid topic");
    let sys = TopicName::new("$SYS/broker/17/temp").expect("valid topic");
    let raw_hits = subs.iter().filter(|(f, _, _)| matches(f, &topic)).count();
    println!(
        "index: {} subscriptions, {} filters, {} nodes; topic {topic} matches {raw_hits} \
         subscriptions, {} distinct clients",
        index.len(),
        index.filter_count(),
        index.node_count(),
        index.matches(&topic).len(),
    );

    let mut group = c.benchmark_group("match_100k");
    group.throughput(Throughput::Elements(1));
    bench_lookups(&mut group, &index, &topic);
    group.bench_function("index_matches_sys_topic", |b| {
        b.iter(|| index.matches(black_box(&sys)).len())
    });
    group.bench_function("naive_linear_scan", |b| {
        b.iter(|| {
            subs.iter()
                .filter(|(f, _, _)| matches(f, black_box(&topic)))
                .count()
        })
    });
    group.finish();
}

fn bench_churn(c: &mut Criterion) {
    let subs = subscriptions();
    let mut group = c.benchmark_group("churn_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SUBSCRIPTIONS as u64));
    group.bench_function("insert_100k", |b| b.iter(|| build(black_box(&subs))));
    group.bench_function("remove_100k", |b| {
        b.iter_batched(
            || build(&subs),
            |mut index| {
                for (filter, client, _) in &subs {
                    index.remove(filter, client);
                }
                assert_eq!(index.node_count(), 0);
                index
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// One topic with a big audience: 10,000 clients on `news/#`, 1,000 of them
/// also on `news/+/sport` with a higher QoS, and 100 more on the exact topic;
/// `matches_into` has to merge 11,100 visits into 10,100 clients.
fn bench_fanout(c: &mut Criterion) {
    let mut index = SubscriptionIndex::new();
    let all = TopicFilter::new("news/#").expect("valid filter");
    let section = TopicFilter::new("news/+/sport").expect("valid filter");
    let exact = TopicFilter::new("news/today/sport").expect("valid filter");
    for client in 0..10_000u64 {
        index.insert(&all, client, 0u8);
        if client % 10 == 0 {
            index.insert(&section, client, 1);
        }
    }
    for client in 10_000..10_100u64 {
        index.insert(&exact, client, 2);
    }
    let topic = TopicName::new("news/today/sport").expect("valid topic");
    let mut group = c.benchmark_group("fanout_10k");
    group.throughput(Throughput::Elements(1));
    bench_lookups(&mut group, &index, &topic);
    group.finish();
}

criterion_group!(benches, bench_match, bench_fanout, bench_churn);
criterion_main!(benches);
