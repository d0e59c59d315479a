//! Citadel OCR: PP-OCRv4 text detection and recognition (the models that
//! ship in the `rapidocr_onnxruntime` wheel) on ONNX Runtime, which is
//! loaded at run time (`ort`'s `load-dynamic`). No OpenCV: the few image
//! operations are in `image`, the DB box extraction in `det`, the CTC
//! decoding in `rec`.
//!
//! ```no_run
//! use citadel_ocr::{Image, OcrConfig, OcrEngine, PixelFormat};
//! # fn main() -> Result<(), citadel_ocr::OcrError> {
//! let mut ocr = OcrEngine::load(&OcrConfig::from_env_defaults())?;
//! let pixels = vec![255u8; 640 * 160 * 3];
//! let lines = ocr.recognize(&Image::packed(640, 160, PixelFormat::Bgr24, &pixels))?;
//! for l in lines {
//!     println!("{} ({:.2}) at {:?}", l.text, l.score, l.bbox);
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod det;
mod error;
mod geom;
mod image;
mod rec;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

pub use config::{ExecutionProvider, LimitType, OcrConfig};
pub use error::OcrError;
pub use image::{Image, PixelFormat};

use crate::image::{Bgr, Crop};
use crate::rec::Charset;

/// One recognised line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    /// Mean probability of the recognised characters (0..1).
    pub score: f32,
    /// Corners clockwise from top-left, in source image pixels.
    pub bbox: [[f32; 2]; 4],
}

/// ONNX Runtime allows one environment (and one loaded library) per
/// process; every engine shares it.
static ORT_ENV: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

fn environment(lib: &Path) -> Result<Environment, OcrError> {
    let mut guard = ORT_ENV.lock().unwrap_or_else(|e| e.into_inner());
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some((loaded, env)) = guard.as_ref() {
        if canon(loaded) == canon(lib) {
            return Ok(env.clone());
        }
        return Err(OcrError::Runtime {
            path: lib.to_path_buf(),
            reason: format!(
                "this process already loaded ONNX Runtime from {}; only one can be loaded",
                loaded.display()
            ),
        });
    }
    let builder = ort::init_from(lib).map_err(|e| OcrError::Runtime {
        path: lib.to_path_buf(),
        reason: e.to_string(),
    })?;
    let env = builder
        .with_name("citadel-ocr")
        .build()
        .map_err(|e| OcrError::Session(e.to_string()))?;
    tracing::info!(path = %lib.display(), "loaded ONNX Runtime");
    *guard = Some((lib.to_path_buf(), env.clone()));
    Ok(env)
}

fn session(env: &Environment, model: &Path, cfg: &OcrConfig) -> Result<Session, OcrError> {
    let err = |e: String| OcrError::Session(format!("{}: {e}", model.display()));
    let mut b = Session::builder(env).map_err(|e| err(e.to_string()))?;
    if cfg.intra_threads > 0 {
        b = b
            .with_intra_threads(cfg.intra_threads)
            .map_err(|e| err(e.to_string()))?;
    }
    match cfg.execution_provider {
        ExecutionProvider::Cpu => {}
        #[cfg(feature = "cuda")]
        ExecutionProvider::Cuda { device_id } => {
            let cuda = ort::ep::CUDA::default()
                .with_device_id(device_id)
                .build()
                .error_on_failure();
            b = b
                .with_execution_providers([cuda])
                .map_err(|e| err(e.to_string()))?;
        }
        #[cfg(not(feature = "cuda"))]
        ExecutionProvider::Cuda { .. } => {
            return Err(err(
                "CUDA requested but citadel-ocr was built without its `cuda` feature".into(),
            ));
        }
    }
    b.commit_from_file(model).map_err(|e| err(e.to_string()))
}

/// The loaded models. Not `Clone`; one per worker thread (sessions are run
/// through `&mut self`).
pub struct OcrEngine {
    cfg: OcrConfig,
    det: Session,
    rec: Session,
    cls: Option<Session>,
    charset: Charset,
    _env: Environment,
}

impl std::fmt::Debug for OcrEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcrEngine")
            .field("cfg", &self.cfg)
            .field("classes", &self.charset.len())
            .finish()
    }
}

/// Runs a session on one `[n, 3, h, w]` input; returns the first output's
/// shape and data.
fn run(
    s: &mut Session,
    n: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
) -> Result<(Vec<i64>, Vec<f32>), OcrError> {
    let t = Tensor::from_array(([n, 3, h, w], data)).map_err(OcrError::inference)?;
    let out = s.run(ort::inputs![t]).map_err(OcrError::inference)?;
    let (shape, v) = out[0]
        .try_extract_tensor::<f32>()
        .map_err(OcrError::inference)?;
    Ok((shape.to_vec(), v.to_vec()))
}

impl OcrEngine {
    /// Finds and loads the runtime and the models (see the crate README for
    /// the discovery order).
    pub fn load(cfg: &OcrConfig) -> Result<Self, OcrError> {
        let models = config::find_models(cfg)?;
        let lib = config::find_runtime(cfg)?;
        let env = environment(&lib)?;
        let det = session(&env, &models.det, cfg)?;
        let rec = session(&env, &models.rec, cfg)?;
        let cls = if cfg.use_angle_classifier {
            Some(session(&env, &models.cls, cfg)?)
        } else {
            None
        };
        let dict = match &models.dict {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| OcrError::Models { dir: models.dir.clone(), reason: format!("{}: {e}", p.display()) })?,
            None => rec.metadata().ok().and_then(|m| m.custom("character")).ok_or_else(|| OcrError::Models {
                dir: models.dir.clone(),
                reason: "no dict.txt / ppocr_keys_v1.txt and the rec model has no `character` metadata".into(),
            })?,
        };
        let charset = Charset::from_dict(&dict);
        tracing::info!(models = %models.dir.display(), runtime = %lib.display(), classes = charset.len(), "OCR engine loaded");
        Ok(Self {
            cfg: cfg.clone(),
            det,
            rec,
            cls,
            charset,
            _env: env,
        })
    }

    /// The settings the engine was loaded with.
    pub fn config(&self) -> &OcrConfig {
        &self.cfg
    }

    /// Text lines of one image, top-to-bottom, left-to-right.
    pub fn recognize(&mut self, img: &Image) -> Result<Vec<TextLine>, OcrError> {
        Ok(self
            .recognize_batch(std::slice::from_ref(img))?
            .pop()
            .unwrap_or_default())
    }

    /// Text lines of several images: detection per image, then the text
    /// lines of all images pooled, sorted by aspect ratio and recognised in
    /// runs of `rec_batch_size` (0: one run), each padded to its widest
    /// line, as PP-OCR does.
    pub fn recognize_batch(&mut self, imgs: &[Image]) -> Result<Vec<Vec<TextLine>>, OcrError> {
        for (i, img) in imgs.iter().enumerate() {
            img.validate().map_err(|e| match e {
                OcrError::BadImage(m) if imgs.len() > 1 => {
                    OcrError::BadImage(format!("image {i}: {m}"))
                }
                e => e,
            })?;
        }
        let t0 = Instant::now();
        let bgrs: Vec<Bgr> = imgs.iter().map(Bgr::from_image).collect();
        // (image, box)
        let mut lines: Vec<(usize, det::DetBox, Crop)> = Vec::new();
        for (i, bgr) in bgrs.iter().enumerate() {
            for b in self.detect(bgr)? {
                lines.push((i, b, Crop::from_box(&b.pts)));
            }
        }
        let t_det = t0.elapsed();
        if self.cls.is_some() && !lines.is_empty() {
            self.classify(&bgrs, &mut lines)?;
        }
        let texts = self.recognize_lines(&bgrs, &lines)?;
        let mut out = vec![Vec::new(); imgs.len()];
        for ((i, b, _), (text, score)) in lines.iter().zip(texts) {
            if score >= self.cfg.min_score && !text.is_empty() {
                out[*i].push(TextLine {
                    text,
                    score,
                    bbox: b.pts,
                });
            }
        }
        tracing::debug!(images = imgs.len(), lines = lines.len(), det = ?t_det, total = ?t0.elapsed(), "ocr batch");
        Ok(out)
    }

    fn detect(&mut self, bgr: &Bgr) -> Result<Vec<det::DetBox>, OcrError> {
        let (dw, dh) = det::input_size(bgr.w as u32, bgr.h as u32, &self.cfg);
        let input = image::resize_normalize(bgr, dw, dh);
        let (shape, pred) = run(&mut self.det, 1, dh, dw, input)?;
        let (mh, mw) = match shape.as_slice() {
            [1, 1, h, w] if (*h * *w) as usize == pred.len() => (*h as usize, *w as usize),
            s => return Err(OcrError::Inference(format!("detector output shape {s:?}"))),
        };
        let mut boxes = det::boxes_from_map(&pred, mw, mh, bgr.w, bgr.h, &self.cfg);
        det::sort_boxes(&mut boxes);
        Ok(boxes)
    }

    /// Turns lines the classifier reads as upside down by 180 degrees.
    fn classify(
        &mut self,
        bgrs: &[Bgr],
        lines: &mut [(usize, det::DetBox, Crop)],
    ) -> Result<(), OcrError> {
        let Some(cls) = self.cls.as_mut() else {
            return Ok(());
        };
        let crops: Vec<(&Bgr, Crop)> = lines.iter().map(|(i, _, c)| (&bgrs[*i], *c)).collect();
        let batch = rec::cls_batch(&crops);
        let (shape, probs) = run(cls, batch.n, batch.h, batch.w, batch.data)?;
        if shape.as_slice() != [batch.n as i64, 2] {
            return Err(OcrError::Inference(format!(
                "classifier output shape {shape:?}"
            )));
        }
        for (line, p) in lines.iter_mut().zip(probs.chunks_exact(2)) {
            if p[1] > p[0] && p[1] > rec::CLS_THRESH {
                line.2 = line.2.rotated_180();
            }
        }
        Ok(())
    }

    fn recognize_lines(
        &mut self,
        bgrs: &[Bgr],
        lines: &[(usize, det::DetBox, Crop)],
    ) -> Result<Vec<(String, f32)>, OcrError> {
        let mut order: Vec<usize> = (0..lines.len()).collect();
        order.sort_by(|&a, &b| lines[a].2.aspect().total_cmp(&lines[b].2.aspect()));
        let mut texts = vec![(String::new(), 0.0f32); lines.len()];
        let chunk = if self.cfg.rec_batch_size == 0 {
            lines.len().max(1)
        } else {
            self.cfg.rec_batch_size
        };
        for idx in order.chunks(chunk) {
            let crops: Vec<(&Bgr, Crop)> = idx
                .iter()
                .map(|&k| (&bgrs[lines[k].0], lines[k].2))
                .collect();
            let batch = rec::rec_batch(&crops);
            let (shape, probs) = run(&mut self.rec, batch.n, batch.h, batch.w, batch.data)?;
            let (steps, classes) = match shape.as_slice() {
                [n, t, c] if *n as usize == idx.len() && (*c as usize) == self.charset.len() => {
                    (*t as usize, *c as usize)
                }
                s => {
                    return Err(OcrError::Inference(format!(
                        "recogniser output shape {s:?} (expected [{}, T, {}] for the dictionary)",
                        idx.len(),
                        self.charset.len()
                    )))
                }
            };
            for (&k, p) in idx.iter().zip(probs.chunks_exact(steps * classes)) {
                texts[k] = self.charset.decode(p, classes);
            }
        }
        Ok(texts)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_is_send() {
        fn send<T: Send>() {}
        send::<super::OcrEngine>();
    }
}
