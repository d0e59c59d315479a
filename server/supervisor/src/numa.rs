//! The NUMA part of the core plan: which node the server lives on
//! (`numa-node`), the CPUs that leaves to the core plan, and the one-line
//! description of where every server thread runs.
//!
//! The topology comes from sysfs (`/sys/devices/system/node/node<N>/cpulist`);
//! a kernel without NUMA support has no such directory and is one node 0
//! holding every CPU.

use std::io;
use std::path::Path;

use citadel_settings::NumaNode;

const SYSFS_NODES: &str = "/sys/devices/system/node";

/// One NUMA node and its CPUs (all of them, not only the allowed ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: usize,
    pub cpus: Vec<usize>,
}

/// The machine's NUMA nodes, ascending by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaTopology {
    pub nodes: Vec<Node>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NumaError {
    #[error("numa-node {node}: no such NUMA node (this machine has {})", ids(.nodes))]
    NoSuchNode { node: usize, nodes: Vec<usize> },
    #[error(
        "numa-node {node}: none of its CPUs {node_cpus:?} is in this process's CPU set {allowed:?}"
    )]
    NoAllowedCpu {
        node: usize,
        node_cpus: Vec<usize>,
        allowed: Vec<usize>,
    },
    #[error("cannot read the NUMA topology: {0}")]
    NumaTopology(String),
}

fn ids(nodes: &[usize]) -> String {
    let list: Vec<String> = nodes.iter().map(|n| format!("node {n}")).collect();
    list.join(", ")
}

impl NumaTopology {
    /// This machine's nodes, from sysfs; without NUMA support, one node 0
    /// with the `cpus` given (the process's allowed CPUs).
    pub fn read(cpus: &[usize]) -> Result<NumaTopology, NumaError> {
        NumaTopology::read_from(Path::new(SYSFS_NODES), cpus)
            .map_err(|e| NumaError::NumaTopology(format!("{SYSFS_NODES}: {e}")))
    }

    /// The nodes under `dir` (a sysfs node directory), or node 0 with
    /// `cpus` when there is no such directory.
    pub fn read_from(dir: &Path, cpus: &[usize]) -> io::Result<NumaTopology> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(NumaTopology {
                    nodes: vec![Node {
                        id: 0,
                        cpus: cpus.to_vec(),
                    }],
                })
            }
            Err(e) => return Err(e),
        };
        let mut nodes = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix("node"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path().join("cpulist"))?;
            let cpus = parse_cpulist(&text).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("node{id}/cpulist: {e}"))
            })?;
            nodes.push(Node { id, cpus });
        }
        nodes.sort_by_key(|n| n.id);
        Ok(NumaTopology { nodes })
    }

    /// The node `cpu` belongs to.
    pub fn node_of(&self, cpu: usize) -> Option<usize> {
        self.nodes
            .iter()
            .find(|n| n.cpus.contains(&cpu))
            .map(|n| n.id)
    }
}

/// Parses the kernel's CPU list syntax: `0-3,8,10-11` (empty: no CPU).
pub fn parse_cpulist(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU number {s:?}"))
        };
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(num(a)?..=num(b)?),
            None => cpus.push(num(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Where the server lives: the chosen node (if any) and the CPUs the core
/// plan may hand out (the node's allowed CPUs, or every allowed one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaPlan {
    pub node: Option<usize>,
    pub cpus: Vec<usize>,
}

impl NumaPlan {
    /// Resolves `numa-node` against the topology and the process's allowed CPUs.
    pub fn resolve(
        setting: NumaNode,
        topology: &NumaTopology,
        allowed: &[usize],
    ) -> Result<NumaPlan, NumaError> {
        let allowed_on = |node: &Node| -> Vec<usize> {
            node.cpus
                .iter()
                .copied()
                .filter(|c| allowed.contains(c))
                .collect()
        };
        let node =
            match setting {
                NumaNode::None => {
                    return Ok(NumaPlan {
                        node: None,
                        cpus: allowed.to_vec(),
                    })
                }
                // The first node wins a tie, so the choice is stable.
                NumaNode::Auto => topology
                    .nodes
                    .iter()
                    .rev()
                    .max_by_key(|n| allowed_on(n).len())
                    .ok_or_else(|| NumaError::NumaTopology("no NUMA node found".into()))?,
                NumaNode::Node(id) => {
                    topology.nodes.iter().find(|n| n.id == id).ok_or_else(|| {
                        NumaError::NoSuchNode {
                            node: id,
                            nodes: topology.nodes.iter().map(|n| n.id).collect(),
                        }
                    })?
                }
            };
        let cpus = allowed_on(node);
        if cpus.is_empty() {
            return Err(NumaError::NoAllowedCpu {
                node: node.id,
                node_cpus: node.cpus.clone(),
                allowed: allowed.to_vec(),
            });
        }
        Ok(NumaPlan {
            node: Some(node.id),
            cpus,
        })
    }

    /// One line: `thread 0 -> cpu 2 (node 1), thread 1 -> cpu 3 (node 1)`.
    pub fn describe_threads(topology: &NumaTopology, thread_cpus: &[Option<usize>]) -> String {
        let each: Vec<String> = thread_cpus
            .iter()
            .enumerate()
            .map(|(i, cpu)| match cpu {
                Some(cpu) => match topology.node_of(*cpu) {
                    Some(node) => format!("thread {i} -> cpu {cpu} (node {node})"),
                    None => format!("thread {i} -> cpu {cpu}"),
                },
                None => format!("thread {i} -> unpinned"),
            })
            .collect();
        each.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes() -> NumaTopology {
        NumaTopology {
            nodes: vec![
                Node {
                    id: 0,
                    cpus: vec![0, 1, 2, 3],
                },
                Node {
                    id: 1,
                    cpus: vec![4, 5, 6, 7],
                },
            ],
        }
    }

    #[test]
    fn cpulists() {
        assert_eq!(
            parse_cpulist("0-3,8,10-11\n"),
            Ok(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpulist("\n"), Ok(vec![]));
        assert!(parse_cpulist("0-x").is_err());
    }

    #[test]
    fn a_node_takes_its_allowed_cpus() {
        let topo = two_nodes();
        let allowed = [1, 2, 5];
        let plan = NumaPlan::resolve(NumaNode::Node(1), &topo, &allowed).unwrap();
        assert_eq!(
            plan,
            NumaPlan {
                node: Some(1),
                cpus: vec![5]
            }
        );
        let auto = NumaPlan::resolve(NumaNode::Auto, &topo, &allowed).unwrap();
        assert_eq!(
            auto,
            NumaPlan {
                node: Some(0),
                cpus: vec![1, 2]
            }
        );
        let none = NumaPlan::resolve(NumaNode::None, &topo, &allowed).unwrap();
        assert_eq!(
            none,
            NumaPlan {
                node: None,
                cpus: vec![1, 2, 5]
            }
        );
    }

    #[test]
    fn auto_breaks_ties_to_the_first_node() {
        let plan = NumaPlan::resolve(NumaNode::Auto, &two_nodes(), &[0, 4]).unwrap();
        assert_eq!(plan.node, Some(0));
    }

    #[test]
    fn missing_nodes_and_cpus_are_errors() {
        let topo = two_nodes();
        let err = NumaPlan::resolve(NumaNode::Node(7), &topo, &[0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "numa-node 7: no such NUMA node (this machine has node 0, node 1)"
        );
        assert!(matches!(
            NumaPlan::resolve(NumaNode::Node(1), &topo, &[0, 1]),
            Err(NumaError::NoAllowedCpu { node: 1, .. })
        ));
    }

    #[test]
    fn describes_each_thread() {
        let line = NumaPlan::describe_threads(&two_nodes(), &[Some(1), Some(5), None]);
        assert_eq!(
            line,
            "thread 0 -> cpu 1 (node 0), thread 1 -> cpu 5 (node 1), thread 2 -> unpinned"
        );
    }

    #[test]
    fn this_machine_has_a_node_zero() {
        let topo = NumaTopology::read(&[0]).unwrap();
        assert!(topo.nodes.iter().any(|n| n.id == 0), "{topo:?}");
    }
}
