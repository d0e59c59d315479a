//! Settings and the discovery of the models and of `libonnxruntime`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::OcrError;

/// Where the models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider (the default).
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA provider on GPU `device_id`. Needs the crate feature
    /// `cuda` and a GPU build of `libonnxruntime`; session creation fails
    /// (no silent CPU fallback) when either is missing.
    Cuda { device_id: i32 },
}

/// How `OcrConfig::max_side` limits the detector input (rapidocr's
/// `limit_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitType {
    /// Scale up so that the *shorter* side is at least `max_side`
    /// (rapidocr's default `min`).
    #[default]
    Min,
    /// Scale down so that the *longer* side is at most `max_side`.
    Max,
}

/// Engine settings. Defaults are rapidocr-onnxruntime 1.4.4's `config.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct OcrConfig {
    /// Directory holding the det/rec/cls `.onnx` files (and optionally a
    /// `dict.txt` / `ppocr_keys_v1.txt`). `None`: the installed
    /// `rapidocr_onnxruntime` wheel's `models/`.
    pub models: Option<PathBuf>,
    /// Path of `libonnxruntime.so`. `None`: env `ORT_DYLIB_PATH`, else the
    /// installed `onnxruntime` wheel's `capi/libonnxruntime.so*`.
    pub onnxruntime: Option<PathBuf>,
    /// ONNX Runtime intra-op threads per session; 0 = ONNX Runtime's default
    /// (one per core).
    pub intra_threads: usize,
    pub execution_provider: ExecutionProvider,
    /// Detector `limit_side_len` (736), applied per `limit_type`; the input
    /// is then rounded to multiples of 32.
    pub max_side: u32,
    pub limit_type: LimitType,
    /// Images whose longer side exceeds this are first scaled down to it
    /// (rapidocr's `max_side_len`, 2000).
    pub max_image_side: u32,
    /// Run the 0/180 degree classifier on each text line (default false).
    pub use_angle_classifier: bool,
    /// Probability-map binarisation threshold (0.3).
    pub det_threshold: f32,
    /// Minimum mean probability inside a box (0.5).
    pub box_threshold: f32,
    /// Box growth: distance = area * ratio / perimeter (1.6).
    pub unclip_ratio: f32,
    /// Lines whose recognition score is below this are dropped (0.5).
    pub min_score: f32,
    /// At most this many text-line crops per recognition run (rapidocr's
    /// `rec_batch_num`, 6). The crops of all images of a
    /// `recognize_batch` are pooled and sorted by aspect ratio first; 0
    /// puts them all in one run (best on a GPU; on CPU runs of 2-6 lines
    /// were faster than one run of 16, see the README).
    pub rec_batch_size: usize,
}

impl Default for OcrConfig {
    fn default() -> Self {
        Self {
            models: None,
            onnxruntime: None,
            intra_threads: 0,
            execution_provider: ExecutionProvider::Cpu,
            max_side: 736,
            limit_type: LimitType::Min,
            max_image_side: 2000,
            use_angle_classifier: false,
            det_threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
            min_score: 0.5,
            rec_batch_size: 6,
        }
    }
}

impl OcrConfig {
    /// The defaults, overridden by the environment: `CITADEL_OCR_MODELS`
    /// (dir), `CITADEL_OCR_RUNTIME` (libonnxruntime path),
    /// `CITADEL_OCR_THREADS` (intra threads), `CITADEL_OCR_DEVICE` (`cpu`,
    /// `cuda` or `cuda:N`). Unparsable values are ignored with a warning.
    pub fn from_env_defaults() -> Self {
        let mut cfg = Self::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("CITADEL_OCR_MODELS") {
            cfg.models = Some(PathBuf::from(v));
        }
        if let Some(v) = var("CITADEL_OCR_RUNTIME") {
            cfg.onnxruntime = Some(PathBuf::from(v));
        }
        if let Some(v) = var("CITADEL_OCR_THREADS") {
            match v.trim().parse() {
                Ok(n) => cfg.intra_threads = n,
                Err(_) => {
                    tracing::warn!(value = %v, "CITADEL_OCR_THREADS is not a number; ignored")
                }
            }
        }
        if let Some(v) = var("CITADEL_OCR_DEVICE") {
            match parse_device(&v) {
                Some(ep) => cfg.execution_provider = ep,
                None => {
                    tracing::warn!(value = %v, "CITADEL_OCR_DEVICE is not cpu|cuda[:N]; ignored")
                }
            }
        }
        cfg
    }
}

fn parse_device(v: &str) -> Option<ExecutionProvider> {
    let v = v.trim().to_ascii_lowercase();
    match v.as_str() {
        "cpu" => Some(ExecutionProvider::Cpu),
        "cuda" | "gpu" => Some(ExecutionProvider::Cuda { device_id: 0 }),
        _ => v
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(|device_id| ExecutionProvider::Cuda { device_id }),
    }
}

/// The model files of one model directory.
#[derive(Debug, Clone)]
pub(crate) struct ModelFiles {
    pub dir: PathBuf,
    pub det: PathBuf,
    pub rec: PathBuf,
    pub cls: PathBuf,
    /// A dictionary file; `None`: use the rec model's `character` metadata.
    pub dict: Option<PathBuf>,
}

/// Directory of an installed Python package, asked of `python3` without
/// importing the package (so it is quick).
fn python_package_dir(pkg: &str) -> Option<PathBuf> {
    let code = format!(
        "import importlib.util,os;s=importlib.util.find_spec('{pkg}');print(os.path.dirname(s.origin) if s and s.origin else '')"
    );
    let out = Command::new("python3").args(["-c", &code]).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (out.status.success() && !s.is_empty()).then(|| PathBuf::from(s))
}

/// Candidate `site-packages` / `dist-packages` directories.
fn site_package_dirs() -> Vec<PathBuf> {
    let mut roots = vec![
        PathBuf::from("/usr/lib"),
        PathBuf::from("/usr/local/lib"),
        PathBuf::from("/opt/conda/lib"),
    ];
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        roots.push(home.join(".local/lib"));
        if let Ok(rd) = std::fs::read_dir(home.join(".pyenv/versions")) {
            roots.extend(rd.flatten().map(|e| e.path().join("lib")));
        }
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from) {
        roots.push(venv.join("lib"));
    }
    let mut out = Vec::new();
    for root in roots {
        let Ok(rd) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut pys: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pys.sort();
        for py in pys.into_iter().rev() {
            out.push(py.join("site-packages"));
            out.push(py.join("dist-packages"));
        }
    }
    out
}

/// Where a Python package lives: `python3` first, then a scan.
fn find_package(pkg: &str, looked: &mut Vec<String>) -> Option<PathBuf> {
    if let Some(d) = python_package_dir(pkg) {
        return Some(d);
    }
    looked.push(format!("`python3` import spec of {pkg}"));
    for sp in site_package_dirs() {
        let d = sp.join(pkg);
        if d.is_dir() {
            return Some(d);
        }
        looked.push(d.display().to_string());
    }
    None
}

/// The `libonnxruntime` to load: `cfg`, then `ORT_DYLIB_PATH`, then the
/// `onnxruntime` wheel.
pub(crate) fn find_runtime(cfg: &OcrConfig) -> Result<PathBuf, OcrError> {
    let check = |p: PathBuf, origin: &str| {
        if p.is_file() {
            Ok(p)
        } else {
            Err(OcrError::Runtime {
                reason: format!("{origin}: no such file"),
                path: p,
            })
        }
    };
    if let Some(p) = &cfg.onnxruntime {
        return check(p.clone(), "OcrConfig::onnxruntime");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return check(PathBuf::from(p), "ORT_DYLIB_PATH");
    }
    let mut looked = vec![
        "OcrConfig::onnxruntime (unset)".to_string(),
        "ORT_DYLIB_PATH (unset)".to_string(),
    ];
    if let Some(pkg) = find_package("onnxruntime", &mut looked) {
        let capi = pkg.join("capi");
        if let Some(lib) = newest_lib(&capi) {
            return Ok(lib);
        }
        looked.push(format!("{}/libonnxruntime.so*", capi.display()));
    }
    Err(OcrError::Runtime {
        path: PathBuf::new(),
        reason: format!("not found; looked at: {}", looked.join(", ")),
    })
}

fn newest_lib(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    // The longest name is the fully versioned one (`.so.1.32.0`).
    libs.sort_by_key(|p| p.as_os_str().len());
    libs.pop()
}

/// The models directory: `cfg.models`, else the rapidocr wheel's `models/`.
pub(crate) fn find_models(cfg: &OcrConfig) -> Result<ModelFiles, OcrError> {
    let dir = match &cfg.models {
        Some(d) => d.clone(),
        None => {
            let mut looked = Vec::new();
            match find_package("rapidocr_onnxruntime", &mut looked) {
                Some(p) => p.join("models"),
                None => {
                    return Err(OcrError::Models {
                        dir: PathBuf::new(),
                        reason: format!(
                            "no models dir set and rapidocr_onnxruntime not found; looked at: {}",
                            looked.join(", ")
                        ),
                    })
                }
            }
        }
    };
    let models_err = |reason: String| OcrError::Models {
        dir: dir.clone(),
        reason,
    };
    let entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| models_err(format!("cannot read the directory: {e}")))?
        .flatten()
        .map(|e| e.path())
        .collect();
    let pick = |exact: &str, part: &str| -> Result<PathBuf, OcrError> {
        let p = dir.join(exact);
        if p.is_file() {
            return Ok(p);
        }
        let mut found: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| {
                p.extension().is_some_and(|e| e == "onnx")
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains(part))
            })
            .collect();
        found.sort();
        found
            .first()
            .map(|p| (*p).clone())
            .ok_or_else(|| models_err(format!("no {exact} (nor any *{part}*.onnx)")))
    };
    let det = pick("ch_PP-OCRv4_det_infer.onnx", "det")?;
    let rec = pick("ch_PP-OCRv4_rec_infer.onnx", "rec")?;
    let cls = pick("ch_ppocr_mobile_v2.0_cls_infer.onnx", "cls")?;
    let dict = ["dict.txt", "ppocr_keys_v1.txt"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file());
    Ok(ModelFiles {
        dir,
        det,
        rec,
        cls,
        dict,
    })
}
