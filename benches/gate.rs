//! Micro-benchmarks of the gate's pieces: a dashboard-key check (cached and
//! uncached), client-address resolution, allowlist matching and one
//! rate-limiter decision. `scripts/bench.sh` reads their results.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portico::auth::dashboard_keys::{Expiry, KeyCheck, Keys};
use portico::auth::hashing::Hasher;
use portico::auth::rate_limit::{address_key, Bounds, WindowCounter};
use portico::auth::Role;
use portico::core::address::{client_address, IpAllowlist, TrustedProxies};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn key_checks(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let hasher = Hasher::new(1);
    let store = Keys::load(dir.path(), hasher.clone()).unwrap();
    let (key, _) = rt
        .block_on(store.generate(
            "bench",
            "user",
            Role::Client,
            Expiry::Never,
            portico::auth::Scope::for_role(Role::Client),
        ))
        .unwrap();
    rt.block_on(async {
        assert!(matches!(
            store.check(&key).await.unwrap(),
            KeyCheck::Valid(_)
        ));
    });

    let mut group = c.benchmark_group("key_check");
    group.bench_function("cached", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(matches!(
                store.check(&key).await.unwrap(),
                KeyCheck::Valid(_)
            ));
        })
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("uncached", |b| {
        b.to_async(&rt).iter_batched(
            || Keys::load(dir.path(), Hasher::new(1)).unwrap(),
            |fresh| {
                let key = key.clone();
                async move {
                    assert!(matches!(
                        fresh.check(&key).await.unwrap(),
                        KeyCheck::Valid(_)
                    ));
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn client_address_resolution(c: &mut Criterion) {
    let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_static("203.0.113.7, 10.1.1.1, 192.168.3.4, 172.16.9.9, 10.2.2.2"),
    );
    let peer = Some(SocketAddr::from(([10, 0, 0, 1], 443)));
    c.bench_function("client_address/5_hop_x_forwarded_for", |b| {
        b.iter(|| {
            let ip = client_address(std::hint::black_box(peer), &headers, &proxies);
            assert_eq!(ip, IpAddr::from([203, 0, 113, 7]));
        })
    });
}

fn allowlist_matching(c: &mut Criterion) {
    // Every other /24, so that no two blocks merge into one range.
    let blocks: Vec<String> = (0..1000u32)
        .map(|n| format!("10.{}.{}.0/24", (2 * n) / 256, (2 * n) % 256))
        .collect();
    let list = IpAllowlist::parse(&blocks.join(",")).unwrap();
    let inside = IpAddr::from([10, 3, 200, 17]);
    assert!(!list.allows(IpAddr::from([10, 3, 201, 17])));
    let outside = IpAddr::from([198, 51, 100, 1]);
    c.bench_function("allowlist/1000_cidr_blocks", |b| {
        b.iter(|| {
            assert!(list.allows(std::hint::black_box(inside)));
            assert!(!list.allows(std::hint::black_box(outside)));
        })
    });
}

fn rate_limiter_decision(c: &mut Criterion) {
    let limiter = WindowCounter::new(
        NonZeroU32::new(u32::MAX).unwrap(),
        Duration::from_secs(3600),
        Bounds::QUOTAS,
    );
    for n in 0..1000 {
        let _ = limiter.try_acquire(format!("client-{n}").as_bytes());
    }
    c.bench_function("rate_limiter/decision", |b| {
        b.iter(|| {
            limiter
                .try_acquire(std::hint::black_box(b"client-500"))
                .unwrap()
        })
    });
    // What the gate does for every key-carrying request: reserve a
    // failed-attempt slot for the address, then refund it.
    let failures = WindowCounter::new(
        NonZeroU32::new(20).unwrap(),
        Duration::from_secs(900),
        Bounds::API_FAILURES,
    );
    let addr = address_key("192.0.2.1".parse().unwrap());
    c.bench_function("rate_limiter/reserve_and_refund", |b| {
        b.iter(|| {
            failures
                .reserve(std::hint::black_box(&addr))
                .unwrap()
                .refund()
        })
    });
}

criterion_group!(
    benches,
    key_checks,
    client_address_resolution,
    allowlist_matching,
    rate_limiter_decision
);
criterion_main!(benches);
