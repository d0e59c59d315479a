//! The core plan: which CPUs each plugin's processes and the server threads
//! run on. Plugins with explicit `cores` get exactly those; `auto` plugins
//! take `instances` (MIN of an elastic plugin) cores each from the end of the allowed set; the server
//! threads run on what remains (at least one core). Printed at start-up and
//! shown by INFO plugins.

use super::config::PluginConfig;
use citadel_settings::Cores;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePlan {
    /// CPUs the server threads are pinned to (round-robin).
    pub server: Vec<usize>,
    /// Per plugin (config order): its CPUs; empty = not pinned.
    pub plugins: Vec<Vec<usize>>,
    /// `name=cpus` per plugin, for the log and INFO.
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorePlanError {
    #[error("plugin {plugin:?}: core {core} is not in this process's CPU set {allowed:?}")]
    NotAllowed {
        plugin: String,
        core: usize,
        allowed: Vec<usize>,
    },
    #[error("the plugins' explicit cores take every CPU ({allowed:?}); at least one must be left for the server threads")]
    NoServerCore { allowed: Vec<usize> },
}

impl CorePlan {
    pub fn compute(allowed: &[usize], plugins: &[PluginConfig]) -> Result<CorePlan, CorePlanError> {
        let mut free: Vec<usize> = allowed.to_vec();
        let mut cores = vec![Vec::new(); plugins.len()];
        for (i, p) in plugins.iter().enumerate() {
            if let Cores::List(list) = &p.cores {
                for &core in list {
                    if !allowed.contains(&core) {
                        return Err(CorePlanError::NotAllowed {
                            plugin: p.name.clone(),
                            core,
                            allowed: allowed.to_vec(),
                        });
                    }
                    free.retain(|&c| c != core);
                }
                cores[i] = list.clone();
            }
        }
        if free.is_empty() {
            return Err(CorePlanError::NoServerCore {
                allowed: allowed.to_vec(),
            });
        }
        for (i, p) in plugins.iter().enumerate() {
            if p.cores == Cores::Auto {
                while cores[i].len() < p.running.min * p.versions.len() && free.len() > 1 {
                    cores[i].push(free.pop().expect("more than one free core"));
                }
                cores[i].sort_unstable();
            }
        }
        Ok(CorePlan {
            server: free,
            names: plugins.iter().map(|p| p.name.clone()).collect(),
            plugins: cores,
        })
    }

    /// One line: `server=0,1 echo=3 upper=shared`.
    pub fn describe(&self) -> String {
        let mut s = format!("server={}", list(&self.server));
        for (name, cores) in self.names.iter().zip(&self.plugins) {
            let cpus = if cores.is_empty() {
                "shared".to_string()
            } else {
                list(cores)
            };
            s.push_str(&format!(" {name}={cpus}"));
        }
        s
    }
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, cores: Cores, instances: usize) -> PluginConfig {
        crate::config::for_tests(name, cores, instances)
    }

    #[test]
    fn explicit_then_auto_from_the_end() {
        let plan = CorePlan::compute(
            &[0, 1, 2, 3, 4, 5],
            &[
                plugin("a", Cores::Auto, 2),
                plugin("b", Cores::List(vec![1]), 1),
                plugin("c", Cores::Unpinned, 1),
            ],
        )
        .unwrap();
        assert_eq!(plan.server, vec![0, 2, 3]);
        assert_eq!(plan.plugins, vec![vec![4, 5], vec![1], vec![]]);
        assert_eq!(plan.describe(), "server=0,2,3 a=4,5 b=1 c=shared");
    }

    #[test]
    fn the_server_keeps_a_core() {
        let plan = CorePlan::compute(&[0, 1], &[plugin("a", Cores::Auto, 4)]).unwrap();
        assert_eq!(
            (plan.server.clone(), plan.plugins[0].clone()),
            (vec![0], vec![1])
        );
        let plan = CorePlan::compute(&[0], &[plugin("a", Cores::Auto, 1)]).unwrap();
        assert_eq!(plan.describe(), "server=0 a=shared");
        assert!(matches!(
            CorePlan::compute(&[0, 1], &[plugin("a", Cores::List(vec![0, 1]), 1)]),
            Err(CorePlanError::NoServerCore { .. })
        ));
        assert!(matches!(
            CorePlan::compute(&[0, 1], &[plugin("a", Cores::List(vec![7]), 1)]),
            Err(CorePlanError::NotAllowed { core: 7, .. })
        ));
    }
}
