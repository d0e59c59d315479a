//! `[[pipeline]]`s: their validated configuration and the ring topology
//! that chains their stages.
//!
//! Every ring has one producer, so the rings between two stages are per
//! (server thread, upstream pair, downstream instance). Per server thread a
//! plugin has `pairs` ring pairs: a plain plugin or a first stage one per
//! instance (the server produces its requests); stage k has
//! `pairs(k-1) x instances(k)`: pair `q * instances(k) + j` is fed by pair
//! `q` of stage k-1 and served by instance `j`. Every pair's reply ring goes
//! to the server thread, so any stage can answer a call directly.

use std::time::Duration;

use citadel_settings::pipeline as key;
use citadel_settings::Store;

use super::config::{PluginConfig, PluginConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    pub name: String,
    /// Plugin indices, first stage first.
    pub stages: Vec<usize>,
    pub timeout: Duration,
    /// Zero: results are not cached.
    pub result_ttl: Duration,
    pub max_inflight: u64,
}

fn invalid(pipeline: &str, reason: impl Into<String>) -> PluginConfigError {
    PluginConfigError::Invalid {
        plugin: format!("pipeline {pipeline}"),
        reason: reason.into(),
    }
}

/// Every `[[pipeline]]` table, validated against the plugins: names
/// unique, every stage a configured plugin, no plugin in two places.
pub fn resolve(
    tables: &[Store],
    plugins: &[PluginConfig],
) -> Result<Vec<PipelineConfig>, PluginConfigError> {
    let mut out: Vec<PipelineConfig> = Vec::with_capacity(tables.len());
    let mut used: Vec<Option<String>> = vec![None; plugins.len()];
    for t in tables {
        let name = t.get(&key::NAME);
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
            return Err(invalid(&name, "defined twice"));
        }
        let mut stages = Vec::new();
        for stage in t.get(&key::STAGES) {
            let p = plugins
                .iter()
                .position(|p| p.name.eq_ignore_ascii_case(&stage))
                .ok_or_else(|| invalid(&name, format!("stage {stage:?} is not a [[plugin]]")))?;
            if plugins[p].versions.len() > 1 {
                return Err(invalid(
                    &name,
                    format!("stage {stage:?} has several versions (a stage has one)"),
                ));
            }
            if plugins[p].running.is_elastic() {
                return Err(invalid(
                    &name,
                    format!("stage {stage:?} has elastic instances (a stage has a fixed count)"),
                ));
            }
            if let Some(other) = &used[p] {
                return Err(invalid(
                    &name,
                    format!("plugin {stage:?} is already a stage of pipeline {other:?}"),
                ));
            }
            used[p] = Some(name.clone());
            stages.push(p);
        }
        let ms = Duration::from_millis;
        out.push(PipelineConfig {
            timeout: ms(t.get(&key::TIMEOUT_MS)),
            result_ttl: ms(t.get(&key::RESULT_TTL_MS)),
            max_inflight: t.get(&key::MAX_INFLIGHT),
            stages,
            name,
        });
    }
    Ok(out)
}

/// Where each plugin sits: its upstream stage (if any) and ring pairs per
/// server thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `upstream[p]`: the stage before plugin `p` in its pipeline.
    pub upstream: Vec<Option<usize>>,
    /// `downstream[p]`: the stage after it.
    pub downstream: Vec<Option<usize>>,
    /// Ring pairs per server thread.
    pub pairs: Vec<usize>,
    instances: Vec<usize>,
}

impl Topology {
    pub fn new(plugins: &[PluginConfig], pipelines: &[PipelineConfig]) -> Topology {
        let n = plugins.len();
        let mut upstream = vec![None; n];
        let mut downstream = vec![None; n];
        for p in pipelines {
            for w in p.stages.windows(2) {
                upstream[w[1]] = Some(w[0]);
                downstream[w[0]] = Some(w[1]);
            }
        }
        let instances: Vec<usize> = plugins.iter().map(|p| p.instances).collect();
        let mut pairs = instances.clone();
        for p in pipelines {
            for w in p.stages.windows(2) {
                pairs[w[1]] = pairs[w[0]] * instances[w[1]];
            }
        }
        Topology {
            upstream,
            downstream,
            pairs,
            instances,
        }
    }

    /// The pairs (per server thread) that instance `i` of plugin `p` serves.
    pub fn served_by(&self, p: usize, i: usize) -> Vec<usize> {
        let per = self.instances[p];
        (0..self.pairs[p]).filter(|x| x % per == i).collect()
    }

    /// The next stage's pairs that pair `x` of plugin `p` writes to.
    pub fn outputs_of(&self, p: usize, x: usize) -> Vec<usize> {
        match self.downstream[p] {
            None => Vec::new(),
            Some(d) => {
                let per = self.instances[d];
                (0..per).map(|j| x * per + j).collect()
            }
        }
    }

    /// True if the server sends this plugin's requests (it is no later
    /// stage of a pipeline).
    pub fn takes_calls(&self, p: usize) -> bool {
        self.upstream[p].is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, instances: usize) -> PluginConfig {
        crate::config::for_tests(name, citadel_settings::Cores::Auto, instances)
    }

    fn pipeline(stages: Vec<usize>) -> PipelineConfig {
        PipelineConfig {
            name: "p".into(),
            stages,
            timeout: Duration::from_secs(1),
            result_ttl: Duration::ZERO,
            max_inflight: 1,
        }
    }

    #[test]
    fn every_ring_has_one_producer_and_one_consumer() {
        // decode x2 -> ocr x3 -> filter x1, plus a plain plugin.
        let plugins = [
            plugin("decode", 2),
            plugin("ocr", 3),
            plugin("filter", 1),
            plugin("echo", 2),
        ];
        let t = Topology::new(&plugins, &[pipeline(vec![0, 1, 2])]);
        assert_eq!(t.pairs, vec![2, 6, 6, 2]);
        assert!(t.takes_calls(0) && !t.takes_calls(1) && t.takes_calls(3));
        for (p, plugin) in plugins.iter().enumerate().take(3) {
            // Each pair is served by exactly one instance.
            let mut served: Vec<usize> = (0..plugin.instances)
                .flat_map(|i| t.served_by(p, i))
                .collect();
            served.sort();
            assert_eq!(served, (0..t.pairs[p]).collect::<Vec<_>>());
            // Each pair of the next stage is fed by exactly one pair.
            if let Some(d) = t.downstream[p] {
                let mut fed: Vec<usize> =
                    (0..t.pairs[p]).flat_map(|x| t.outputs_of(p, x)).collect();
                fed.sort();
                assert_eq!(fed, (0..t.pairs[d]).collect::<Vec<_>>());
            }
        }
        assert!(
            t.outputs_of(2, 0).is_empty(),
            "the last stage answers the server"
        );
    }

    #[test]
    fn a_plugin_is_a_stage_once() {
        let plugins = [plugin("a", 1), plugin("b", 1)];
        let toml: toml::Table = toml::from_str(
            "[[pipeline]]\nname = \"x\"\nstages = [\"a\", \"b\"]\n\
             [[pipeline]]\nname = \"y\"\nstages = [\"b\"]\n",
        )
        .unwrap();
        let tables = citadel_settings::file::sections(&key::TABLE, &toml).unwrap();
        let err = resolve(&tables, &plugins).unwrap_err().to_string();
        assert!(err.contains("already a stage"), "{err}");
        let toml: toml::Table =
            toml::from_str("[[pipeline]]\nname = \"x\"\nstages = [\"a\", \"zz\"]\n").unwrap();
        let tables = citadel_settings::file::sections(&key::TABLE, &toml).unwrap();
        let err = resolve(&tables, &plugins).unwrap_err().to_string();
        assert!(err.contains("not a [[plugin]]"), "{err}");
    }
}
