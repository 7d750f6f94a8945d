//! The Slurm allocation a master runs inside: the compressed node list
//! (`SLURM_JOB_NODELIST=node[01-04,07]`), the CPU counts per node
//! (`SLURM_JOB_CPUS_PER_NODE=2(x3),1`) and the job id, read from the environment into an
//! [`Allocation`].
//!
//! The parsers follow Slurm's hostlist syntax: top-level commas separate host
//! expressions, each expression is literal text with bracketed ranges (`a-b` or `n`,
//! comma-separated), several brackets expand as a cartesian product
//! (`rack[1-2]-node[1-3]`), and a range keeps the zero padding of its lower bound
//! (`[08-10]` gives `08 09 10`). Malformed input is an error naming the input and the
//! reason, never a panic; expansions are bounded by [`NODE_LIST_HOSTS_MAX`].
//!
//! ```
//! use hyperion::launch::{expand_node_list, parse_cpus_per_node};
//! assert_eq!(expand_node_list("node[01-03,07],login").unwrap(),
//!            ["node01", "node02", "node03", "node07", "login"]);
//! assert_eq!(parse_cpus_per_node("2(x3),1").unwrap(), [2, 2, 2, 1]);
//! ```

use std::fmt;

/// Most host names (or per-node CPU entries) one list may expand to: a bound on the
/// memory a malformed or hostile `node[0-999999999]` can make us allocate. Slurm's own
/// largest clusters are a few tens of thousands of nodes.
pub const NODE_LIST_HOSTS_MAX: usize = 1 << 20;

/// A Slurm environment value we could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmParseError {
    /// The value (or the variable) that was being read.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
}

impl SlurmParseError {
    fn new(input: &str, why: impl Into<String>) -> SlurmParseError {
        SlurmParseError {
            input: input.to_string(),
            why: why.into(),
        }
    }
}

impl fmt::Display for SlurmParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read Slurm value {:?}: {}", self.input, self.why)
    }
}

impl std::error::Error for SlurmParseError {}

/// Splits `s` at commas outside brackets; errors on unbalanced or nested brackets.
fn split_top_level(s: &str) -> Result<Vec<&str>, SlurmParseError> {
    let mut parts = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' if depth > 0 => return Err(SlurmParseError::new(s, "nested '['")),
            '[' => depth = 1,
            ']' if depth == 0 => return Err(SlurmParseError::new(s, "']' without '['")),
            ']' => depth = 0,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(SlurmParseError::new(s, "'[' without ']'"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// One bracket's numbers, as zero-padded strings, e.g. `01-03,07`.
fn expand_ranges(whole: &str, inside: &str) -> Result<Vec<String>, SlurmParseError> {
    let mut out = Vec::new();
    if inside.is_empty() {
        return Err(SlurmParseError::new(whole, "empty '[]'"));
    }
    for range in inside.split(',') {
        let (low_text, high_text) = match range.split_once('-') {
            Some((low, high)) => (low, high),
            None => (range, range),
        };
        let number = |t: &str| -> Result<u64, SlurmParseError> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SlurmParseError::new(
                    whole,
                    format!("{range:?} in brackets is not a number or a range a-b"),
                ));
            }
            t.parse::<u64>()
                .map_err(|_| SlurmParseError::new(whole, format!("{t:?} is too large")))
        };
        let (low, high) = (number(low_text)?, number(high_text)?);
        if low > high {
            return Err(SlurmParseError::new(
                whole,
                format!("range {range:?} goes down"),
            ));
        }
        // Slurm pads every number of a range to the width of its lower bound.
        let width = low_text.len();
        if high - low >= (NODE_LIST_HOSTS_MAX - out.len().min(NODE_LIST_HOSTS_MAX)) as u64 {
            return Err(too_many(whole));
        }
        out.extend((low..=high).map(|n| format!("{n:0width$}")));
    }
    Ok(out)
}

fn too_many(input: &str) -> SlurmParseError {
    SlurmParseError::new(
        input,
        format!("expands to more than {NODE_LIST_HOSTS_MAX} entries"),
    )
}

/// Expands one host expression without top-level commas, e.g. `rack[1-2]-n[01-03]`.
fn expand_expression(
    whole: &str,
    expr: &str,
    hosts: &mut Vec<String>,
) -> Result<(), SlurmParseError> {
    if expr.is_empty() {
        return Err(SlurmParseError::new(whole, "empty host name"));
    }
    // The cartesian product built left to right: literal text appends to every
    // partial name, a bracket multiplies them.
    let mut partial = vec![String::new()];
    let mut rest = expr;
    while !rest.is_empty() {
        match rest.find('[') {
            None => {
                partial.iter_mut().for_each(|p| p.push_str(rest));
                rest = "";
            }
            Some(open) => {
                let literal = &rest[..open];
                partial.iter_mut().for_each(|p| p.push_str(literal));
                // split_top_level guaranteed a matching ']' and no nesting.
                let close = open
                    + rest[open..]
                        .find(']')
                        .ok_or_else(|| SlurmParseError::new(whole, "'[' without ']'"))?;
                let numbers = expand_ranges(whole, &rest[open + 1..close])?;
                if partial.len().saturating_mul(numbers.len()) + hosts.len() > NODE_LIST_HOSTS_MAX {
                    return Err(too_many(whole));
                }
                partial = partial
                    .iter()
                    .flat_map(|p| numbers.iter().map(move |n| format!("{p}{n}")))
                    .collect();
                rest = &rest[close + 1..];
            }
        }
    }
    hosts.extend(partial);
    Ok(())
}

/// Expands a Slurm compressed node list (`SLURM_JOB_NODELIST`) into host names, in
/// order: `node[01-04,07]`, `a[1-2],b3`, `rack[1-2]-node[1-3]`.
///
/// ```
/// use hyperion::launch::expand_node_list;
/// assert_eq!(expand_node_list("a[1-2],b3").unwrap(), ["a1", "a2", "b3"]);
/// assert_eq!(expand_node_list("rack1-node[1-2]").unwrap(), ["rack1-node1", "rack1-node2"]);
/// assert!(expand_node_list("node[3-1]").is_err());
/// ```
pub fn expand_node_list(list: &str) -> Result<Vec<String>, SlurmParseError> {
    let list_trimmed = list.trim();
    if list_trimmed.is_empty() {
        return Err(SlurmParseError::new(list, "empty node list"));
    }
    if let Some(c) = list_trimmed
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(SlurmParseError::new(
            list,
            format!("unexpected character {c:?}"),
        ));
    }
    let mut hosts = Vec::new();
    for expr in split_top_level(list_trimmed)? {
        expand_expression(list, expr, &mut hosts)?;
    }
    Ok(hosts)
}

/// Expands Slurm's per-node CPU counts (`SLURM_JOB_CPUS_PER_NODE`), where `c(xn)`
/// repeats `c` for `n` nodes: `2(x3),1` is `[2, 2, 2, 1]`.
///
/// ```
/// use hyperion::launch::parse_cpus_per_node;
/// assert_eq!(parse_cpus_per_node("72(x2),36").unwrap(), [72, 72, 36]);
/// assert!(parse_cpus_per_node("2(x0)").is_err());
/// ```
pub fn parse_cpus_per_node(value: &str) -> Result<Vec<u32>, SlurmParseError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SlurmParseError::new(value, "empty CPU count list"));
    }
    let positive = |t: &str, what: &str| -> Result<u32, SlurmParseError> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SlurmParseError::new(
                value,
                format!("{what} {t:?} is not a number"),
            ));
        }
        match t.parse::<u32>() {
            Ok(0) => Err(SlurmParseError::new(value, format!("{what} is zero"))),
            Ok(n) => Ok(n),
            Err(_) => Err(SlurmParseError::new(
                value,
                format!("{what} {t:?} is too large"),
            )),
        }
    };
    let mut counts = Vec::new();
    for entry in trimmed.split(',') {
        let (cpus_text, repeat) = match entry.split_once('(') {
            None => (entry, 1),
            Some((cpus, tail)) => {
                let times = tail
                    .strip_prefix('x')
                    .and_then(|t| t.strip_suffix(')'))
                    .ok_or_else(|| {
                        SlurmParseError::new(value, format!("{entry:?} is not of the form c(xn)"))
                    })?;
                (cpus, positive(times, "repeat count")?)
            }
        };
        let cpus = positive(cpus_text, "CPU count")?;
        if counts.len() + repeat as usize > NODE_LIST_HOSTS_MAX {
            return Err(too_many(value));
        }
        counts.extend(std::iter::repeat_n(cpus, repeat as usize));
    }
    Ok(counts)
}

/// One node of an allocation and the CPUs the job holds on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocatedNode {
    /// The host name, as `srun -w` expects it.
    pub name: String,
    /// CPUs of the job on this node.
    pub cpus: u32,
}

/// The Slurm allocation the current process runs in.
///
/// ```
/// use hyperion::launch::Allocation;
/// let env = [("SLURM_JOB_ID", "42"), ("SLURM_JOB_NODELIST", "n[1-2]"),
///            ("SLURM_JOB_CPUS_PER_NODE", "4,2")];
/// let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
/// let allocation = Allocation::from_vars(lookup).unwrap().unwrap();
/// assert_eq!(allocation.job_id, "42");
/// assert_eq!(allocation.total_cpus(), 6);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// `SLURM_JOB_ID`, for `srun --jobid`.
    pub job_id: String,
    /// The nodes, in Slurm's order, each at most once.
    pub nodes: Vec<AllocatedNode>,
}

impl Allocation {
    /// The allocation of this process, read from its environment; `Ok(None)` outside
    /// Slurm (no `SLURM_JOB_ID`).
    pub fn from_env() -> Result<Option<Allocation>, SlurmParseError> {
        Allocation::from_vars(|name| std::env::var(name).ok())
    }

    /// The allocation described by the variables `lookup` returns: `SLURM_JOB_ID`,
    /// `SLURM_JOB_NODELIST` (or the older `SLURM_NODELIST`), and the CPUs from
    /// `SLURM_JOB_CPUS_PER_NODE`, or else `SLURM_CPUS_ON_NODE` taken for every node.
    pub fn from_vars(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Allocation>, SlurmParseError> {
        let Some(job_id) = lookup("SLURM_JOB_ID") else {
            return Ok(None);
        };
        let job_id = job_id.trim().to_string();
        if job_id.is_empty() || !job_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SlurmParseError::new(
                &job_id,
                "SLURM_JOB_ID is not a job number",
            ));
        }
        let list = lookup("SLURM_JOB_NODELIST")
            .or_else(|| lookup("SLURM_NODELIST"))
            .ok_or_else(|| SlurmParseError::new("SLURM_JOB_NODELIST", "not set"))?;
        let names = expand_node_list(&list)?;
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(SlurmParseError::new(
                &list,
                format!("node {twice:?} listed twice"),
            ));
        }
        let cpus = if let Some(per_node) = lookup("SLURM_JOB_CPUS_PER_NODE") {
            let counts = parse_cpus_per_node(&per_node)?;
            if counts.len() != names.len() {
                return Err(SlurmParseError::new(
                    &per_node,
                    format!(
                        "{} CPU counts for {} nodes in {list:?}",
                        counts.len(),
                        names.len()
                    ),
                ));
            }
            counts
        } else if let Some(on_node) = lookup("SLURM_CPUS_ON_NODE") {
            let counts = parse_cpus_per_node(&on_node)?;
            match counts.as_slice() {
                [one] => vec![*one; names.len()],
                _ => {
                    return Err(SlurmParseError::new(
                        &on_node,
                        "SLURM_CPUS_ON_NODE is not one number",
                    ))
                }
            }
        } else {
            return Err(SlurmParseError::new(
                "SLURM_JOB_CPUS_PER_NODE",
                "neither it nor SLURM_CPUS_ON_NODE is set",
            ));
        };
        let nodes = names
            .into_iter()
            .zip(cpus)
            .map(|(name, cpus)| AllocatedNode { name, cpus })
            .collect();
        Ok(Some(Allocation { job_id, nodes }))
    }

    /// All CPUs of the allocation.
    pub fn total_cpus(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.cpus)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn node_lists_from_slurm_documentation_expand() {
        // Examples from Slurm's sbatch/scontrol man pages ("lx[10-20]", "tux[1-3,5]").
        assert_eq!(
            expand_node_list("lx[10-12]").unwrap(),
            ["lx10", "lx11", "lx12"]
        );
        assert_eq!(
            expand_node_list("tux[1-3,5]").unwrap(),
            ["tux1", "tux2", "tux3", "tux5"]
        );
        assert_eq!(
            expand_node_list("node[01-04,07]").unwrap(),
            ["node01", "node02", "node03", "node04", "node07"]
        );
        assert_eq!(expand_node_list("a[1-2],b3").unwrap(), ["a1", "a2", "b3"]);
        assert_eq!(expand_node_list("single").unwrap(), ["single"]);
        assert_eq!(
            expand_node_list("rack1-node[1-3]").unwrap(),
            ["rack1-node1", "rack1-node2", "rack1-node3"]
        );
        assert_eq!(
            expand_node_list("r[1-2]n[08-09]").unwrap(),
            ["r1n08", "r1n09", "r2n08", "r2n09"]
        );
        assert_eq!(
            expand_node_list("n[008-010]").unwrap(),
            ["n008", "n009", "n010"]
        );
        assert_eq!(expand_node_list("n[8-10]").unwrap(), ["n8", "n9", "n10"]);
        assert_eq!(expand_node_list("[1-2]x").unwrap(), ["1x", "2x"]);
    }

    #[test]
    fn malformed_node_lists_are_errors() {
        for bad in [
            "",
            " ",
            "node[",
            "node]",
            "node[]",
            "node[1-]",
            "node[-3]",
            "node[3-1]",
            "node[a-b]",
            "node[1-2",
            "node[[1]]",
            "a,,b",
            ",a",
            "a,",
            "node[1--2]",
            "node[1,]",
            "node[99999999999999999999]",
            "node[0-999999999]",
            "a b",
            "n[0-1023]m[0-1023]x[0-1]",
        ] {
            let error = expand_node_list(bad).expect_err(bad);
            assert!(!error.why.is_empty());
        }
    }

    #[test]
    fn cpu_counts_expand_repeats() {
        assert_eq!(parse_cpus_per_node("2(x3),1").unwrap(), [2, 2, 2, 1]);
        assert_eq!(parse_cpus_per_node("16").unwrap(), [16]);
        assert_eq!(parse_cpus_per_node("1,2(x2),3").unwrap(), [1, 2, 2, 3]);
        for bad in [
            "",
            "x",
            "2(x)",
            "2(3)",
            "2(x3",
            "(x3)",
            "0",
            "2(x0)",
            "-1",
            "2,,1",
            "99999999999",
            "2(x4294967295)",
            "1.5",
        ] {
            assert!(parse_cpus_per_node(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allocation_reads_job_nodes_and_cpus() {
        let allocation = Allocation::from_vars(vars(&[
            ("SLURM_JOB_ID", "77"),
            ("SLURM_JOB_NODELIST", "c[1-3],d"),
            ("SLURM_JOB_CPUS_PER_NODE", "2(x3),1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(allocation.job_id, "77");
        let cpus: Vec<_> = allocation
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.cpus))
            .collect();
        assert_eq!(cpus, [("c1", 2), ("c2", 2), ("c3", 2), ("d", 1)]);
        assert_eq!(allocation.total_cpus(), 7);
    }

    #[test]
    fn allocation_falls_back_to_cpus_on_node() {
        let allocation = Allocation::from_vars(vars(&[
            ("SLURM_JOB_ID", "5"),
            ("SLURM_NODELIST", "n1"),
            ("SLURM_CPUS_ON_NODE", "2"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            allocation.nodes,
            [AllocatedNode {
                name: "n1".into(),
                cpus: 2
            }]
        );
    }

    #[test]
    fn allocation_outside_slurm_is_none_and_inconsistent_is_error() {
        assert_eq!(Allocation::from_vars(vars(&[])).unwrap(), None);
        for bad in [
            vec![
                ("SLURM_JOB_ID", "x1"),
                ("SLURM_JOB_NODELIST", "n"),
                ("SLURM_CPUS_ON_NODE", "1"),
            ],
            vec![("SLURM_JOB_ID", "1"), ("SLURM_CPUS_ON_NODE", "1")],
            vec![("SLURM_JOB_ID", "1"), ("SLURM_JOB_NODELIST", "n")],
            vec![
                ("SLURM_JOB_ID", "1"),
                ("SLURM_JOB_NODELIST", "n[1-2]"),
                ("SLURM_JOB_CPUS_PER_NODE", "2"),
            ],
            vec![
                ("SLURM_JOB_ID", "1"),
                ("SLURM_JOB_NODELIST", "n,n"),
                ("SLURM_CPUS_ON_NODE", "1"),
            ],
        ] {
            assert!(Allocation::from_vars(vars(&bad)).is_err(), "{bad:?}");
        }
    }
}
