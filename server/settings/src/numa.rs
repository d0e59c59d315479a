//! The NUMA settings' value types: which node the server lives on
//! (`numa-node`) and how strictly its cache memory is kept there
//! (`numa-memory`).

use crate::value::SettingValue;

/// `numa-node`: the NUMA node whose CPUs run the server threads (and the
/// plugins) and whose memory holds the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumaNode {
    /// No placement: CPUs from the affinity mask, memory wherever the
    /// kernel puts it.
    None,
    /// The node with the most CPUs this process may run on.
    Auto,
    /// This node.
    Node(usize),
}

impl SettingValue for NumaNode {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("none") || t.is_empty() {
            return Ok(NumaNode::None);
        }
        if t.eq_ignore_ascii_case("auto") {
            return Ok(NumaNode::Auto);
        }
        match t.parse::<usize>() {
            // The kernel's MAX_NUMNODES is at most 1024.
            Ok(n) if n < 1024 => Ok(NumaNode::Node(n)),
            _ => Err("expected a NUMA node number (0-1023), \"auto\" or \"none\"".into()),
        }
    }
    fn render(&self) -> String {
        match self {
            NumaNode::None => "none".into(),
            NumaNode::Auto => "auto".into(),
            NumaNode::Node(n) => n.to_string(),
        }
    }
}

/// `numa-memory`: the memory policy of the cache mapping on that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumaMemory {
    /// MPOL_BIND: pages only from the node; when it is full, faulting a
    /// new page fails (the kernel kills the process) rather than going
    /// remote.
    Bind,
    /// MPOL_PREFERRED: pages from the node while it has free memory, then
    /// from the others.
    Preferred,
}

impl SettingValue for NumaMemory {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "bind" => Ok(NumaMemory::Bind),
            "preferred" => Ok(NumaMemory::Preferred),
            _ => Err("expected bind or preferred".into()),
        }
    }
    fn render(&self) -> String {
        match self {
            NumaMemory::Bind => "bind",
            NumaMemory::Preferred => "preferred",
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntaxes() {
        assert_eq!(NumaNode::parse("none"), Ok(NumaNode::None));
        assert_eq!(NumaNode::parse("AUTO"), Ok(NumaNode::Auto));
        assert_eq!(NumaNode::parse("1"), Ok(NumaNode::Node(1)));
        assert!(NumaNode::parse("-1").is_err() && NumaNode::parse("node0").is_err());
        assert_eq!(NumaNode::Node(3).render(), "3");
        assert_eq!(NumaMemory::parse("Preferred"), Ok(NumaMemory::Preferred));
        assert!(NumaMemory::parse("interleave").is_err());
    }
}
