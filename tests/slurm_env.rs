//! Property tests of the Slurm allocation parsers against a reference expansion: a
//! list of host names (or CPU counts) is generated, compressed the way Slurm writes it,
//! parsed back and compared with the list.

use std::collections::BTreeSet;

use hyperion::launch::{expand_node_list, parse_cpus_per_node};
use proptest::prelude::*;

/// A host expression of a generated list: one plain name, or names sharing a prefix
/// and a suffix around a bracketed set of zero-padded numbers.
#[derive(Clone, Debug)]
enum Group {
    Plain(String),
    Bracket {
        prefix: String,
        width: usize,
        numbers: BTreeSet<u32>,
        suffix: String,
    },
}

impl Group {
    /// The reference expansion: the host names this group stands for.
    fn hosts(&self) -> Vec<String> {
        match self {
            Group::Plain(name) => vec![name.clone()],
            Group::Bracket {
                prefix,
                width,
                numbers,
                suffix,
            } => numbers
                .iter()
                .map(|n| format!("{prefix}{n:0width$}{suffix}"))
                .collect(),
        }
    }

    /// The group as Slurm compresses it: runs of consecutive numbers become `a-b`.
    fn compress(&self) -> String {
        match self {
            Group::Plain(name) => name.clone(),
            Group::Bracket {
                prefix,
                width,
                numbers,
                suffix,
            } => {
                let mut ranges: Vec<(u32, u32)> = Vec::new();
                for &n in numbers {
                    match ranges.last_mut() {
                        Some((_, high)) if *high + 1 == n => *high = n,
                        _ => ranges.push((n, n)),
                    }
                }
                let inside: Vec<String> = ranges
                    .iter()
                    .map(|&(low, high)| {
                        if low == high {
                            format!("{low:0width$}")
                        } else {
                            format!("{low:0width$}-{high:0width$}")
                        }
                    })
                    .collect();
                format!("{prefix}[{}]{suffix}", inside.join(","))
            }
        }
    }
}

fn group() -> impl Strategy<Value = Group> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}".prop_map(Group::Plain),
        (
            // Nested-looking prefixes such as `rack1-node`, and a prefix ending in a digit.
            "[a-z][a-z0-9-]{0,8}",
            1usize..=4,
            // Zero, the edge of a width (9, 99, 999) and runs crossing it.
            proptest::collection::btree_set(prop_oneof![0u32..20, 95u32..105, 995u32..1005], 1..12),
            prop_oneof!["", "-ib", "x"].prop_map(String::from),
        )
            .prop_map(|(prefix, width, numbers, suffix)| Group::Bracket {
                prefix,
                width,
                numbers,
                suffix
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    // Invariant: expanding the compressed form of a list gives back exactly the list,
    // in order, with its zero padding.
    #[test]
    fn compressed_node_list_expands_to_its_hosts(groups in proptest::collection::vec(group(), 1..6)) {
        let list = groups.iter().map(Group::compress).collect::<Vec<_>>().join(",");
        let expected: Vec<String> = groups.iter().flat_map(Group::hosts).collect();
        prop_assert_eq!(expand_node_list(&list).unwrap(), expected, "list {}", list);
    }

    // Invariant: `c(xn)` runs expand to n copies of c, in order.
    #[test]
    fn compressed_cpu_counts_expand_to_their_counts(runs in proptest::collection::vec((1u32..=512, 1u32..=5), 1..8)) {
        let value = runs
            .iter()
            .map(|&(cpus, times)| if times == 1 { cpus.to_string() } else { format!("{cpus}(x{times})") })
            .collect::<Vec<_>>()
            .join(",");
        let expected: Vec<u32> = runs.iter().flat_map(|&(cpus, times)| std::iter::repeat_n(cpus, times as usize)).collect();
        prop_assert_eq!(parse_cpus_per_node(&value).unwrap(), expected, "value {}", value);
    }

    // Invariant: any input, however malformed, gives hosts or an error, never a panic.
    #[test]
    fn parsers_never_panic(input in prop_oneof!["[a-z0-9\\[\\],()x-]{0,24}", "\\PC{0,24}"]) {
        let _ = expand_node_list(&input);
        let _ = parse_cpus_per_node(&input);
    }
}

mod cpu_pool {
    use std::collections::BTreeMap;

    use hyperion::launch::{AllocatedNode, Allocation, CpuPool, CpuRequestId};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Request(u32),
        /// Releases the i-th (modulo) known request, granted or waiting.
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..=5).prop_map(Op::Request),
            any::<usize>().prop_map(Op::Release)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        // Invariant: after any sequence of requests and releases, each node's granted
        // CPUs fit in the node (so the allocation's CPUs are never exceeded), the pool's
        // count matches the grants outstanding, and the head request does not fit
        // anywhere (nothing waits that could run).
        #[test]
        fn pool_never_exceeds_the_allocation(node_cpus in proptest::collection::vec(1u32..=4, 1..4), ops in proptest::collection::vec(op(), 0..60)) {
            let allocation = Allocation {
                job_id: "1".into(),
                nodes: node_cpus.iter().enumerate().map(|(i, &cpus)| AllocatedNode { name: format!("n{i}"), cpus }).collect(),
            };
            let mut pool = CpuPool::new(&allocation);
            let mut known: Vec<(CpuRequestId, u32)> = Vec::new();
            // Outstanding grants: request -> (node, cpus).
            let mut granted: BTreeMap<CpuRequestId, (String, u32)> = BTreeMap::new();
            let largest = *node_cpus.iter().max().unwrap();
            for op in ops {
                match op {
                    Op::Request(cpus) => match pool.request(cpus) {
                        Ok(id) => known.push((id, cpus)),
                        Err(_) => prop_assert!(cpus == 0 || cpus > largest),
                    },
                    Op::Release(i) if !known.is_empty() => {
                        let (id, _) = known.remove(i % known.len());
                        pool.release(id).unwrap();
                        granted.remove(&id);
                        prop_assert!(pool.release(id).is_err(), "released twice");
                    }
                    Op::Release(_) => {}
                }
                for grant in pool.take_grants() {
                    prop_assert!(granted.insert(grant.request, (grant.node, grant.cpus)).is_none());
                }
                let mut used: BTreeMap<&str, u32> = BTreeMap::new();
                for (node, cpus) in granted.values() {
                    *used.entry(node.as_str()).or_default() += cpus;
                }
                for node in &allocation.nodes {
                    prop_assert!(used.get(node.name.as_str()).copied().unwrap_or(0) <= node.cpus);
                }
                let total_used: u32 = used.values().sum();
                prop_assert_eq!(pool.cpus_in_use(), u64::from(total_used));
                prop_assert!(pool.cpus_in_use() <= allocation.total_cpus());
                let waiting: Vec<u32> = known.iter().filter(|(id, _)| !granted.contains_key(id)).map(|&(_, c)| c).collect();
                prop_assert_eq!(pool.waiting(), waiting.len());
                if let Some(&head) = waiting.first() {
                    prop_assert!(pool.free_cpus().iter().all(|&(_, free)| free < head), "head request {} fits but waits", head);
                }
            }
        }
    }
}
