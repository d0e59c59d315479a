//! The video pipeline end to end: the real server, the real FFmpeg media
//! stage (`plugins/media-ffmpeg`) and the real ONNX Runtime OCR stage
//! (`plugins/infer-onnx`, PP-OCRv4 from the rapidocr-onnxruntime wheel),
//! on videos this test generates with the FFmpeg CLI: known words drawn on
//! `testsrc` ("CITADEL", "PIPELINE" and, for second t, the t-th word of the
//! NATO alphabet, so each sampled frame has an expected text) in several
//! codecs and containers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use citadel_tests::redis::{self, Connection};
use citadel_tests::{media_stage_bin, ocr_stage_bin, pipelines, Server};
use serde_json::Value;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
const WORDS: [&str; 26] = [
    "ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "INDIA", "JULIETT",
    "KILO", "LIMA", "MIKE", "NOVEMBER", "OSCAR", "PAPA", "QUEBEC", "ROMEO", "SIERRA", "TANGO",
    "UNIFORM", "VICTOR", "WHISKEY", "XRAY", "YANKEE", "ZULU",
];

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is needed (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(t: &str, y: u32) -> String {
    format!(
        "drawtext=fontfile={FONT}:text='{t}':fontsize=44:fontcolor=black:box=1:boxcolor=white:boxborderw=14:x=40:y={y}"
    )
}

/// A `seconds`-long 640x360 video at 10 fps with a keyframe every 10
/// frames: "CITADEL", "PIPELINE" and, during second t, `WORDS[t % 26]`,
/// on `testsrc`.
fn video(dir: &Path, name: &str, seconds: u32, codec: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut filter = format!("{},{}", text("CITADEL", 40), text("PIPELINE", 130));
    for t in 0..seconds {
        let word = text(WORDS[t as usize % 26], 220);
        filter.push_str(&format!(",{word}:enable='between(t,{t},{t}.999)'"));
    }
    let mut args = vec!["-f", "lavfi", "-i", "testsrc=size=640x360:rate=10"];
    let t = seconds.to_string();
    args.extend(["-t", &t, "-vf", &filter, "-g", "10"]);
    args.extend(codec);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

const H264: &[&str] = &["-c:v", "libx264", "-pix_fmt", "yuv420p"];

struct Rig {
    server: Server,
    dir: tempfile::TempDir,
}

fn start() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        "[[plugin]]\nname = \"decode\"\nexec = \"{}\"\nargs = [\"--threads\", \"1\"]\ncores = \"none\"\n\
         [[plugin]]\nname = \"ocr\"\nexec = \"{}\"\nargs = [\"--threads\", \"1\"]\ncores = \"none\"\nring-capacity = \"64mb\"\ntimeout-ms = 120000\n\
         [[pipeline]]\nname = \"video-ocr\"\nstages = [\"decode\", \"ocr\"]\ntimeout-ms = 120000\n",
        media_stage_bin().display(),
        ocr_stage_bin().display()
    );
    let path = dir.path().join("video.toml");
    std::fs::write(&path, conf).unwrap();
    let server = Server::start(&[
        "--config",
        path.to_str().unwrap(),
        "--shutdown-timeout-ms",
        "60000",
    ]);
    Rig { server, dir }
}

fn call(
    con: &mut Connection,
    source: &str,
    input: &[u8],
    opts: &[&str],
) -> redis::RedisResult<Value> {
    let mut c = redis::cmd("PIPELINE");
    c.arg("CALL").arg("video-ocr").arg(source).arg(input);
    for o in opts {
        c.arg(*o);
    }
    let json: String = c.query(con)?;
    Ok(serde_json::from_str(&json).expect("the reply is JSON"))
}

/// Every recognised line of each frame.
fn lines(result: &Value) -> Vec<Vec<String>> {
    result["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["text"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// Share of the drawn lines read exactly, frame `i` showing second
/// `seconds[i]`.
fn recognised(result: &Value, seconds: &[u32]) -> f64 {
    let got = lines(result);
    assert_eq!(got.len(), seconds.len(), "{result}");
    let mut hit = 0;
    for (frame, s) in got.iter().zip(seconds) {
        for want in ["CITADEL", "PIPELINE", WORDS[*s as usize % 26]] {
            if frame.iter().any(|l| l.trim() == want) {
                hit += 1;
            } else {
                eprintln!("missed {want:?} in {frame:?}");
            }
        }
    }
    hit as f64 / (3 * seconds.len()) as f64
}

#[test]
fn ocr_reads_the_drawn_words_by_data_and_by_key_in_several_codecs_and_caches_the_result() {
    let rig = start();
    let dir = rig.dir.path();
    let mut con = rig.server.client();
    let mut codecs: Vec<(&str, Vec<&str>)> = vec![
        ("h264.mp4", H264.to_vec()),
        ("mpeg4.avi", vec!["-c:v", "mpeg4", "-q:v", "3"]),
        (
            "mjpeg.mkv",
            vec!["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"],
        ),
    ];
    let encoders = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&encoders.stdout).contains("libvpx-vp9") {
        codecs.push((
            "vp9.webm",
            vec!["-c:v", "libvpx-vp9", "-b:v", "1M", "-deadline", "realtime"],
        ));
    }
    for (name, codec) in &codecs {
        let bytes = std::fs::read(video(dir, name, 3, codec)).unwrap();
        let r = call(&mut con, "DATA", &bytes, &["FPS", "1"]).unwrap();
        assert_eq!(r["frames"], 3, "{name}: {r}");
        let share = recognised(&r, &[0, 1, 2]);
        assert!(
            share >= 0.95,
            "{name}: {share} of the drawn lines read: {r}"
        );
    }
    // By key: the media stage reads the value in place from the cache file.
    let bytes = std::fs::read(dir.join("h264.mp4")).unwrap();
    let _: () = redis::cmd("SET")
        .arg("clip")
        .arg(&bytes)
        .query(&mut con)
        .unwrap();
    let started = Instant::now();
    let by_key = call(&mut con, "KEY", b"clip", &["FPS", "1"]).unwrap();
    let first = started.elapsed();
    let by_data = call(&mut con, "DATA", &bytes, &["FPS", "1"]).unwrap();
    assert_eq!(by_key["results"], by_data["results"]);
    // The second call is a cache lookup.
    let hits = pipelines::info(&mut con, "PIPELINE", "video-ocr")["cache_hits"]
        .parse::<u64>()
        .unwrap();
    let started = Instant::now();
    let again = call(&mut con, "KEY", b"clip", &["FPS", "1"]).unwrap();
    let second = started.elapsed();
    assert_eq!(again, by_key, "the cached result is identical");
    assert_eq!(
        pipelines::info(&mut con, "PIPELINE", "video-ocr")["cache_hits"]
            .parse::<u64>()
            .unwrap(),
        hits + 1
    );
    eprintln!("first call {first:?}, cached call {second:?}");
    // Frame selection: every 10th frame, keyframes (-g 10), a frame cap, a size.
    for (opts, frames) in [
        (vec!["EVERY", "10"], 3),
        (vec!["KEYFRAMES"], 3),
        (vec!["FPS", "1", "MAX-FRAMES", "2"], 2),
        (vec!["EVERY", "15", "WIDTH", "480", "FORMAT", "rgb24"], 2),
    ] {
        let r = call(&mut con, "DATA", &bytes, &opts).unwrap();
        assert_eq!(r["frames"], frames, "{opts:?}: {r}");
        assert_eq!(r["results"].as_array().unwrap().len(), frames as usize);
    }
    let r = call(&mut con, "DATA", &bytes, &["EVERY", "10"]).unwrap();
    assert!(recognised(&r, &[0, 1, 2]) >= 0.95, "{r}");
}

#[test]
fn an_undecodable_video_is_answered_by_the_media_stage_and_the_ocr_stage_never_sees_it() {
    let rig = start();
    let mut con = rig.server.client();
    let good = std::fs::read(video(rig.dir.path(), "ok.mp4", 1, H264)).unwrap();
    let before = pipelines::stage_records(&mut con, "video-ocr", "ocr");
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761u32) >> 24) as u8)
        .collect();
    let err = call(&mut con, "DATA", &garbage, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pipeline 'video-ocr'") && err.contains("not a video"),
        "{err}"
    );
    let err = call(&mut con, "DATA", &good[..good.len() / 3], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("pipeline 'video-ocr'"), "{err}");
    let err = call(&mut con, "DATA", b"", &[]).unwrap_err().to_string();
    assert!(err.contains("pipeline 'video-ocr'"), "{err}");
    assert_eq!(
        pipelines::stage_records(&mut con, "video-ocr", "ocr"),
        before,
        "no frame reached the OCR stage"
    );
    // The stage lives on and serves the next call.
    let r = call(&mut con, "DATA", &good, &["MAX-FRAMES", "1"]).unwrap();
    assert_eq!(r["frames"], 1);
}

/// Several videos called at once from threads; `during` runs meanwhile.
fn batch(rig: &Rig, videos: usize, during: impl FnOnce(&mut Connection)) {
    let dir = rig.dir.path();
    let clips: Vec<Vec<u8>> = (0..videos)
        .map(|i| {
            std::fs::read(video(
                dir,
                &format!("batch{i}.mp4"),
                2 + (i as u32 % 2),
                H264,
            ))
            .unwrap()
        })
        .collect();
    let url = rig.server.url();
    let threads: Vec<_> = clips
        .into_iter()
        .enumerate()
        .map(|(i, clip)| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let r = call(&mut con, "DATA", &clip, &["FPS", "1", "NOCACHE"]).unwrap();
                let seconds: Vec<u32> = (0..2 + (i as u32 % 2)).collect();
                let share = recognised(&r, &seconds);
                assert!(share >= 0.95, "video {i}: {share}: {r}");
            })
        })
        .collect();
    let mut con = rig.server.client();
    during(&mut con);
    for t in threads {
        t.join().expect("every call answered correctly");
    }
}

fn kill9(con: &mut Connection, plugin: &str) {
    let before = pipelines::pids(con, plugin);
    for pid in &before {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = pipelines::pids(con, plugin);
        if !now.is_empty() && now != before {
            return;
        }
        assert!(Instant::now() < deadline, "{plugin} was not restarted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_of_each_stage_in_the_middle_of_a_batch_of_videos_loses_no_call() {
    let rig = start();
    for stage in ["decode", "ocr"] {
        batch(&rig, 6, |con| {
            std::thread::sleep(Duration::from_millis(400));
            kill9(con, stage);
        });
    }
    let mut con = rig.server.client();
    assert_eq!(
        pipelines::info(&mut con, "PIPELINE", "video-ocr")["errors"],
        "0"
    );
}

#[test]
fn reload_of_each_stage_under_load_fails_no_call() {
    let rig = start();
    for stage in ["decode", "ocr"] {
        batch(&rig, 4, |con| {
            std::thread::sleep(Duration::from_millis(300));
            let _: () = redis::cmd("PLUGIN")
                .arg("RELOAD")
                .arg(stage)
                .query(con)
                .unwrap();
        });
    }
    let mut con = rig.server.client();
    let fields = pipelines::info(&mut con, "PIPELINE", "video-ocr");
    assert_eq!(
        (fields["errors"].as_str(), fields["timeouts"].as_str()),
        ("0", "0")
    );
}

#[test]
fn a_200_mb_input_and_a_hundred_concurrent_calls_on_different_videos() {
    let rig = start();
    let dir = rig.dir.path();
    // 300 raw RGB frames of 640x360: 207 MB in one DATA argument.
    let raw = video(
        dir,
        "raw.avi",
        30,
        &["-c:v", "rawvideo", "-pix_fmt", "bgr24", "-r", "10"],
    );
    let bytes = std::fs::read(&raw).unwrap();
    assert!(bytes.len() > 200_000_000, "{} bytes", bytes.len());
    let mut con = rig.server.client();
    // Far larger than the decode stage's (default, 1 MB) ring: spooled to
    // a file the stage reads, removed once the call is done.
    let r = call(&mut con, "DATA", &bytes, &["EVERY", "100"]).unwrap();
    assert!(recognised(&r, &[0, 10, 20]) >= 0.95, "{r}");
    drop(bytes);
    let mut spool = rig.server.cache_file().into_os_string();
    spool.push(".spool");
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "spooled inputs are removed: {left:?}");
    // 100 different small videos, all called at once.
    let clips: Vec<PathBuf> = (0..100)
        .map(|i| {
            let path = dir.join(format!("small{i}.mkv"));
            let t = format!("{},{}", text(WORDS[i % 26], 10), text(WORDS[i / 26], 90));
            let args = [
                "-f",
                "lavfi",
                "-i",
                "color=c=gray:size=400x170:rate=5",
                "-t",
                "0.4",
                "-vf",
                &t,
                "-c:v",
                "mjpeg",
                "-pix_fmt",
                "yuvj420p",
                path.to_str().unwrap(),
            ];
            ffmpeg(&args);
            path
        })
        .collect();
    let url = rig.server.url();
    let threads: Vec<_> = clips
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let r = call(
                    &mut con,
                    "FILE",
                    path.to_str().unwrap().as_bytes(),
                    &["MAX-FRAMES", "1"],
                )
                .unwrap();
                let got = &lines(&r)[0];
                let has = |w: &str| got.iter().any(|l| l.trim() == w);
                has(WORDS[i % 26]) && has(WORDS[i / 26])
            })
        })
        .collect();
    let read = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert!(read >= 95, "{read} of 100 videos read exactly");
}

#[test]
fn sigterm_drains_the_calls_in_flight() {
    let mut rig = start();
    let clips: Vec<Vec<u8>> = (0..3)
        .map(|i| std::fs::read(video(rig.dir.path(), &format!("drain{i}.mp4"), 3, H264)).unwrap())
        .collect();
    let url = rig.server.url();
    let threads: Vec<_> = clips
        .into_iter()
        .map(|clip| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                call(&mut con, "DATA", &clip, &["FPS", "1"])
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    rig.server.signal("TERM");
    for t in threads {
        let r = t.join().unwrap().expect("answered before the server exits");
        assert_eq!(r["frames"], 3);
    }
    assert!(rig.server.wait_exit(Duration::from_secs(60)).success());
}
