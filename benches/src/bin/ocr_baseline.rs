//! `ocr-baseline`: video OCR in the seed's shape, the baseline of
//! `benches/pipeline-vs-baseline.sh`, and the client that drives both setups.
//!
//! ```text
//! ocr-baseline server --listen ADDR [--threads N] [--workers N] [--max-side N]
//!     A resident model server: per TCP connection, requests of a u32 LE
//!     length + a JPEG; it decodes the JPEG (zune-jpeg), runs citadel-ocr
//!     (PP-OCRv4, LimitType::Max, max_side 960; one engine, one call at a
//!     time) and answers a u32 LE length + {"lines":[{"text":..,"score":..}]}.
//! ocr-baseline client (--server ADDR | --citadel ADDR) [--concurrency N]
//!     [--texts FILE] VIDEO...
//!     --server: per video, the ffmpeg CLI writes JPEG frames (fps=1, -q:v 2,
//!     -threads 1) into a temp dir, each is sent to the model server.
//!     --citadel: PIPELINE CALL video-ocr DATA <video> FPS 1 NOCACHE.
//!     Prints one key=value summary line (latency to the full result per
//!     video: p50, p99 and all of them in lat_ms; CPU of this process and
//!     its children); --texts writes
//!     "video<TAB>text" per recognised line.
//! ocr-baseline cached --citadel ADDR [--repeat N] VIDEO
//!     A first call of VIDEO (no NOCACHE) and then N cached calls.
//! ```

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use citadel_ocr::{Image, LimitType, OcrConfig, OcrEngine, PixelFormat};
use serde_json::{json, Value};
use zune_jpeg::zune_core::{colorspace::ColorSpace, options::DecoderOptions};
use zune_jpeg::JpegDecoder;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The arguments after the subcommand: `--flag value` pairs and the rest.
struct Args {
    flags: Vec<(String, String)>,
    rest: Vec<String>,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Self {
        let (mut flags, mut rest) = (Vec::new(), Vec::new());
        let mut it = args.peekable();
        while let Some(a) = it.next() {
            match a.strip_prefix("--") {
                Some(f) => flags.push((f.to_string(), it.next().unwrap_or_default())),
                None => rest.push(a),
            }
        }
        Self { flags, rest }
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn num(&self, name: &str, default: usize) -> usize {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

fn main() -> Res<()> {
    let mut argv = std::env::args().skip(1);
    let cmd = argv.next().unwrap_or_default();
    let args = Args::parse(argv);
    match cmd.as_str() {
        "server" => server(&args),
        "client" => client(&args),
        "cached" => cached(&args),
        _ => {
            eprintln!("usage: ocr-baseline server|client|cached ... (see the source's header)");
            std::process::exit(2);
        }
    }
}

fn server(args: &Args) -> Res<()> {
    let cfg = OcrConfig {
        intra_threads: args.num("threads", 1),
        limit_type: LimitType::Max,
        max_side: args.num("max-side", 960) as u32,
        ..OcrConfig::from_env_defaults()
    };
    // `--workers` engines, each used by one frame at a time.
    let workers = args.num("workers", 1).max(1);
    let engines = (0..workers)
        .map(|_| OcrEngine::load(&cfg))
        .collect::<Result<Vec<_>, _>>()?;
    let engine = Arc::new(Pool {
        free: Mutex::new(engines),
        returned: Condvar::new(),
    });
    let listener = TcpListener::bind(args.get("listen").unwrap_or("127.0.0.1:7070"))?;
    println!("ready {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for conn in listener.incoming() {
        let (conn, engine) = (conn?, engine.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve(conn, &engine) {
                eprintln!("ocr-baseline server: connection: {e}");
            }
        });
    }
    Ok(())
}

/// Engines free for the next frame.
struct Pool {
    free: Mutex<Vec<OcrEngine>>,
    returned: Condvar,
}

impl Pool {
    fn recognize(
        &self,
        img: &Image<'_>,
    ) -> Result<Vec<citadel_ocr::TextLine>, citadel_ocr::OcrError> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let mut engine = loop {
            match free.pop() {
                Some(e) => break e,
                None => free = self.returned.wait(free).unwrap_or_else(|e| e.into_inner()),
            }
        };
        drop(free);
        let lines = engine.recognize(img);
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(engine);
        self.returned.notify_one();
        lines
    }
}

fn serve(conn: TcpStream, engine: &Pool) -> Res<()> {
    conn.set_nodelay(true)?;
    let mut rd = BufReader::new(conn.try_clone()?);
    let mut wr = BufWriter::new(conn);
    while let Some(jpeg) = read_msg(&mut rd)? {
        let opts = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::BGR);
        let mut dec = JpegDecoder::new_with_options(&jpeg, opts);
        let pixels = dec.decode()?;
        let info = dec.info().ok_or("no JPEG header")?;
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        let img = Image::packed(w, h, PixelFormat::Bgr24, &pixels);
        let lines = engine.recognize(&img)?;
        let lines: Vec<Value> = lines
            .iter()
            .map(|l| json!({"text": l.text, "score": l.score}))
            .collect();
        write_msg(&mut wr, json!({ "lines": lines }).to_string().as_bytes())?;
    }
    Ok(())
}

fn read_msg(r: &mut impl Read) -> Res<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        r => r?,
    }
    let mut buf = vec![0; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn write_msg(w: &mut impl Write, msg: &[u8]) -> Res<()> {
    w.write_all(&u32::try_from(msg.len())?.to_le_bytes())?;
    w.write_all(msg)?;
    Ok(w.flush()?)
}

/// One video's outcome: its frames' recognised texts and the latency.
struct Done {
    video: usize,
    texts: Vec<String>,
    frames: usize,
    latency: Duration,
}

enum Target {
    Baseline(String),
    Citadel(String),
}

fn client(args: &Args) -> Res<()> {
    let target = match (args.get("server"), args.get("citadel")) {
        (Some(a), None) => Target::Baseline(a.to_string()),
        (None, Some(a)) => Target::Citadel(a.to_string()),
        _ => return Err("client: one of --server ADDR or --citadel ADDR".into()),
    };
    let videos: Vec<PathBuf> = args.rest.iter().map(PathBuf::from).collect();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| -> Res<()> {
        let workers: Vec<_> = (0..args.num("concurrency", 2).max(1))
            .map(|_| s.spawn(|| worker(&target, &videos, &next, &done)))
            .collect();
        for w in workers {
            w.join().map_err(|_| "a client worker panicked")??;
        }
        Ok(())
    })?;
    let wall = start.elapsed().as_secs_f64();
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|d| d.video);
    if let Some(path) = args.get("texts") {
        let mut f = BufWriter::new(std::fs::File::create(path)?);
        for d in &done {
            let name = videos[d.video]
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            for t in &d.texts {
                writeln!(f, "{name}\t{t}")?;
            }
        }
        f.flush()?;
    }
    let mut lat: Vec<f64> = done.iter().map(|d| d.latency.as_secs_f64()).collect();
    lat.sort_by(f64::total_cmp);
    let (own, kids) = (
        cpu_seconds(libc::RUSAGE_SELF),
        cpu_seconds(libc::RUSAGE_CHILDREN),
    );
    let lat_ms: Vec<String> = lat.iter().map(|s| format!("{:.1}", s * 1e3)).collect();
    println!(
        "videos={} frames={} wall_s={wall:.3} p50_ms={:.1} p99_ms={:.1} cpu_self_s={own:.3} cpu_children_s={kids:.3} lat_ms={}",
        done.len(),
        done.iter().map(|d| d.frames).sum::<usize>(),
        percentile(&lat, 0.50) * 1e3,
        percentile(&lat, 0.99) * 1e3,
        lat_ms.join(","),
    );
    Ok(())
}

fn worker(
    target: &Target,
    videos: &[PathBuf],
    next: &AtomicUsize,
    done: &Mutex<Vec<Done>>,
) -> Res<()> {
    enum Conn {
        Tcp(BufReader<TcpStream>, BufWriter<TcpStream>),
        Redis(redis::Connection),
    }
    let mut conn = match target {
        Target::Baseline(addr) => {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            Conn::Tcp(BufReader::new(s.try_clone()?), BufWriter::new(s))
        }
        Target::Citadel(addr) => {
            Conn::Redis(redis::Client::open(format!("redis://{addr}/"))?.get_connection()?)
        }
    };
    loop {
        let video = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = videos.get(video) else {
            return Ok(());
        };
        let t0 = Instant::now();
        let (frames, texts) = match &mut conn {
            Conn::Tcp(rd, wr) => baseline_video(path, rd, wr)?,
            Conn::Redis(con) => {
                let reply = pipeline_call(con, &std::fs::read(path)?, true)?;
                citadel_texts(&reply)?
            }
        };
        let latency = t0.elapsed();
        let d = Done {
            video,
            texts,
            frames,
            latency,
        };
        done.lock().unwrap_or_else(|e| e.into_inner()).push(d);
    }
}

/// ffmpeg CLI -> JPEG files -> the model server, frame by frame.
fn baseline_video(
    path: &Path,
    rd: &mut impl Read,
    wr: &mut impl Write,
) -> Res<(usize, Vec<String>)> {
    let dir = tempfile::tempdir()?;
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-threads", "1", "-i"])
        .arg(path)
        .args(["-vf", "fps=1", "-q:v", "2", "-threads", "1"])
        .arg(dir.path().join("%04d.jpg"))
        .output()?;
    if !out.status.success() {
        return Err(format!("ffmpeg: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let mut jpegs: Vec<PathBuf> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    jpegs.sort();
    let mut texts = Vec::new();
    for jpeg in &jpegs {
        write_msg(wr, &std::fs::read(jpeg)?)?;
        let reply: Value = serde_json::from_slice(&read_msg(rd)?.ok_or("server closed")?)?;
        texts.extend(line_texts(&reply["lines"]));
    }
    Ok((jpegs.len(), texts))
}

fn pipeline_call(con: &mut redis::Connection, video: &[u8], nocache: bool) -> Res<String> {
    let mut c = redis::cmd("PIPELINE");
    c.arg("CALL")
        .arg("video-ocr")
        .arg("DATA")
        .arg(video)
        .arg("FPS")
        .arg(1);
    if nocache {
        c.arg("NOCACHE");
    }
    Ok(c.query(con)?)
}

fn citadel_texts(reply: &str) -> Res<(usize, Vec<String>)> {
    let v: Value = serde_json::from_str(reply)?;
    let frames = v["results"].as_array().ok_or("no results in the reply")?;
    let texts = frames
        .iter()
        .flat_map(|f| line_texts(&f["lines"]))
        .collect();
    Ok((frames.len(), texts))
}

fn line_texts(lines: &Value) -> Vec<String> {
    let lines = lines.as_array().map(Vec::as_slice).unwrap_or_default();
    lines
        .iter()
        .filter_map(|l| l["text"].as_str().map(str::to_string))
        .collect()
}

fn cached(args: &Args) -> Res<()> {
    let addr = args.get("citadel").ok_or("cached: --citadel ADDR")?;
    let video = std::fs::read(args.rest.first().ok_or("cached: VIDEO")?)?;
    let mut con = redis::Client::open(format!("redis://{addr}/"))?.get_connection()?;
    let t0 = Instant::now();
    let first = pipeline_call(&mut con, &video, false)?;
    let first_s = t0.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for _ in 0..args.num("repeat", 100).max(1) {
        let t = Instant::now();
        let again = pipeline_call(&mut con, &video, false)?;
        times.push(t.elapsed().as_secs_f64());
        if again != first {
            return Err("a cached reply differs from the first".into());
        }
    }
    times.sort_by(f64::total_cmp);
    let cached_s = percentile(&times, 0.5);
    println!(
        "first_ms={:.1} cached_us={:.1} ratio={:.0} bytes={}",
        first_s * 1e3,
        cached_s * 1e6,
        first_s / cached_s,
        first.len()
    );
    Ok(())
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// utime + stime of this process or of its waited-for children.
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    unsafe { libc::getrusage(who, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(ru.ru_utime) + s(ru.ru_stime)
}
