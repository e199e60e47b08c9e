//! Merge benchmarks: 3 base catalogs x 100 servers + 1 team + a custom catalog of 20.
//! Target: a cold merge (fresh cache) under 1 ms.
// Benchmark set-up may unwrap: a bench that cannot set up should stop at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mcp_frontdoor::catalog::{
    merge, regenerate_user, BaseLayer, Catalog, CatalogCache, CatalogStore, DataLayout, Digested,
    Format, MergeInputs, Overrides, TeamLayer,
};

/// A catalog of `n` realistic servers named `<prefix>-<i>`.
fn catalog(prefix: &str, n: usize) -> Catalog {
    let mut yaml = format!("name: {prefix}\ndisplayName: {prefix} catalog\nregistry:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  {prefix}-{i}:
    title: Server {i}
    description: Does useful thing number {i} for the {prefix} people, with a longer text.
    type: server
    image: registry.example.com/{prefix}/server-{i}:1.{i}.0
    env:
      - name: LOG_LEVEL
        value: info
      - name: REGION
        value: eu-west-{i}
    secrets:
      - name: {prefix}-{i}.api_token
        env: API_TOKEN
    allowHosts:
      - api{i}.example.com:443
    metadata:
      category: tools
      tags: [a, b, c]
"
        ));
    }
    Catalog::parse(yaml.as_bytes(), Format::Yaml).expect("bench catalog parses")
}

fn inputs() -> MergeInputs {
    // Overlapping names across layers so "later wins" does real work.
    let base = ["official", "org", "extra"]
        .iter()
        .enumerate()
        .map(|(p, name)| BaseLayer {
            name: (*name).into(),
            priority: p as i64,
            catalog: Digested::new(catalog(if p == 0 { "srv" } else { name }, 100)),
        })
        .collect();
    let overrides = Overrides::parse(
        b"srv-1: false\nsrv-2: {env: null, title: Patched}\n",
        Format::Yaml,
    )
    .expect("bench overrides parse");
    MergeInputs {
        base,
        teams: vec![TeamLayer {
            team: "ml".into(),
            catalog: Digested::new(catalog("srv", 30)),
        }],
        custom: Some(Digested::new(catalog("mine", 20))),
        overrides: Digested::new(overrides),
    }
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    assert_eq!(merge(&inputs).registry.len(), 319);

    c.bench_function("merge only (pure function)", |b| {
        b.iter(|| black_box(merge(black_box(&inputs))))
    });
    c.bench_function("cold: fresh cache, hash + merge", |b| {
        b.iter(|| {
            let cache = CatalogCache::default();
            black_box(cache.get_or_merge("alice", black_box(&inputs)))
        })
    });
    let cache = CatalogCache::default();
    cache.get_or_merge("alice", &inputs);
    c.bench_function("cached: same inputs, hash + hit", |b| {
        b.iter(|| black_box(cache.get_or_merge("alice", black_box(&inputs))))
    });

    let slugs: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    c.bench_function("100 users merged concurrently (cold cache)", |b| {
        b.iter(|| {
            let cache = CatalogCache::default();
            std::thread::scope(|s| {
                for chunk in slugs.chunks(slugs.len().div_ceil(threads)) {
                    let (cache, inputs) = (&cache, &inputs);
                    s.spawn(move || {
                        for slug in chunk {
                            black_box(cache.get_or_merge(slug, inputs));
                        }
                    });
                }
            });
        })
    });

    let yaml = catalog("srv", 100).to_yaml().expect("yaml");
    c.bench_function(
        "load one 100-server catalog: parse + validate + digest",
        |b| {
            b.iter(|| {
                let c = mcp_frontdoor::catalog::parse_validated(
                    black_box(yaml.as_bytes()),
                    Format::Yaml,
                )
                .expect("parses");
                black_box(Digested::new(c))
            })
        },
    );

    // End to end from disk, file cache warm and merged.yaml current: the common case.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CatalogStore::open(DataLayout::new(dir.path()), Arc::default()).expect("store");
    for b in &inputs.base {
        store
            .put_base(&b.name, b.catalog.value(), Some(b.priority))
            .expect("put base");
    }
    store
        .put_team("ml", inputs.teams[0].catalog.value())
        .expect("put team");
    let teams = vec!["ml".to_string()];
    let cache = CatalogCache::default();
    regenerate_user(&store, &cache, "alice", &teams).expect("regenerate");
    c.bench_function("regenerate_user from disk, unchanged", |b| {
        b.iter(|| black_box(regenerate_user(&store, &cache, "alice", &teams).expect("regen")))
    });
}

criterion_group!(merge_benches, benches);
criterion_main!(merge_benches);
