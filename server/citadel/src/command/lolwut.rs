//! LOLWUT [VERSION v] [args]: Redis's computer art. Redis 7 answers its
//! version line; VERSION 5 draws Georg Nees's "Schotter" in braille and
//! VERSION 6 a skyline in terminal colours, as Redis's lolwut5.c and
//! lolwut6.c do (same canvas sizes, limits and texts; the random
//! displacements differ from run to run, as in Redis).

use super::args::Args;
use super::collections::linear::next_random;
use super::connection::REDIS_VERSION;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};

/// Pixels, one colour byte each (0 is black), row by row.
struct Canvas {
    width: i64,
    height: i64,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i64, height: i64, colour: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![colour; (width * height) as usize],
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(y * self.width + x) as usize] = colour;
        }
    }

    fn get(&self, x: i64, y: i64) -> u8 {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(y * self.width + x) as usize]
        } else {
            0
        }
    }

    /// Bresenham's line, as lwDrawLine.
    fn line(&mut self, (mut x1, mut y1): (i64, i64), (x2, y2): (i64, i64)) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, 1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), turned by `angle`.
    fn square(&mut self, (x, y): (i64, i64), size: f32, angle: f32) {
        let size = (size / std::f32::consts::SQRT_2).round();
        let mut k = std::f32::consts::FRAC_PI_4 + angle;
        let mut corners = [(0i64, 0i64); 4];
        for c in &mut corners {
            *c = (
                (k.sin() * size + x as f32).round() as i64,
                (k.cos() * size + y as f32).round() as i64,
            );
            k += std::f32::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(corners[j], corners[(j + 1) % 4]);
        }
    }
}

/// A random float in [0, 1], as `(float)rand()/RAND_MAX`.
fn unit() -> f32 {
    (next_random() % (1 << 24)) as f32 / ((1 << 24) - 1) as f32
}

fn coin() -> bool {
    next_random() & 1 == 1
}

fn below(n: i64) -> i64 {
    if n <= 0 {
        return 0;
    }
    (next_random() % n as u64) as i64
}

/// lwDrawSchotter: squares that turn and shift more row by row.
fn schotter(cols: i64, per_row: i64, per_col: i64) -> Canvas {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i64 + padding * 2;
    let mut canvas = Canvas::new(width, height, 0);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut angle = 0.0;
            if y > 1 {
                let mut r = [0f32; 3];
                for v in &mut r {
                    *v = unit() / per_col as f32 * y as f32;
                }
                for v in &mut r {
                    if coin() {
                        *v = -*v;
                    }
                }
                angle = r[0];
                // C's `int += float`: the sum is truncated.
                sx = (sx as f32 + r[1] * side / 3.0) as i64;
                sy = (sy as f32 + r[2] * side / 3.0) as i64;
            }
            canvas.square((sx, sy), side, angle);
        }
    }
    canvas
}

/// Braille: each character is 2x4 pixels (bits 0-2 and 6 the left
/// column, 3-5 and 7 the right).
fn braille(canvas: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    let mut y = 0;
    while y < canvas.height {
        let mut x = 0;
        while x < canvas.width {
            let dots = [
                (0, 0),
                (0, 1),
                (0, 2),
                (1, 0),
                (1, 1),
                (1, 2),
                (0, 3),
                (1, 3),
            ];
            let mut byte = 0u32;
            for (bit, (dx, dy)) in dots.iter().enumerate() {
                if canvas.get(x + dx, y + dy) != 0 {
                    byte |= 1 << bit;
                }
            }
            let mut buf = [0u8; 4];
            let c = char::from_u32(0x2800 + byte).unwrap_or(' ');
            text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            x += 2;
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
        y += 4;
    }
    text
}

/// A building of `width` x `height` from `xoff`; lit windows on the
/// foreground ones.
struct Building {
    xoff: i64,
    width: i64,
    height: i64,
    colour: u8,
    windows: bool,
}

fn building(canvas: &mut Canvas, b: &Building) {
    let start = canvas.height - 1;
    let end = start - b.height + 1;
    for y in (end..=start).rev() {
        for x in b.xoff..b.xoff + b.width {
            // The roof is four pixels narrower.
            if y == end && (x <= b.xoff + 1 || x >= b.xoff + b.width - 2) {
                continue;
            }
            let mut colour = b.colour;
            let inner = x > b.xoff + 1 && x < b.xoff + b.width - 2 && y > end + 1 && y < start - 1;
            if b.windows && inner {
                let (relx, rely) = (x - (b.xoff + 1), y - (end + 1));
                // Windows two pixels wide, one tall (characters are tall).
                if (relx / 2) % 2 == 1 && rely % 2 == 1 {
                    // A grey unlike the (black) building.
                    colour = 1 + below(2) as u8;
                    if relx % 2 == 1 {
                        colour = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, colour);
        }
    }
}

/// generateSkyline: two grey rows behind, black ones with windows ahead.
fn skyline(cols: i64, rows: i64) -> Canvas {
    let mut canvas = Canvas::new(cols, rows, 3);
    let h = canvas.height;
    for colour in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += below(8);
            let width = 10 + below(9);
            let height = if colour == 2 {
                h / 2 + below(h) / 2
            } else {
                h / 2 + below(h) / 3
            };
            let b = Building {
                xoff: offset,
                width,
                height,
                colour,
                windows: false,
            };
            building(&mut canvas, &b);
            offset += if colour == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < canvas.width {
        offset += below(8);
        let mut width = 5 + below(14);
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + below(h) / 2;
        let b = Building {
            xoff: offset,
            width,
            height,
            colour: 0,
            windows: true,
        };
        building(&mut canvas, &b);
        offset += width + 5;
    }
    canvas
}

/// Each pixel a space in its colour (foreground and background set).
fn coloured(canvas: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let escape: &[u8] = match canvas.get(x, y) {
                1 => b"0;90;100m",
                2 => b"0;37;47m",
                3 => b"0;97;107m",
                _ => b"0;30;40m",
            };
            text.extend_from_slice(b"\x1b[");
            text.extend_from_slice(escape);
            text.extend_from_slice(b" \x1b[0m");
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

/// Optional numeric arguments from `from`, each clamped to its range.
fn numbers<const N: usize>(
    args: Args<'_>,
    from: usize,
    defaults: [i64; N],
    max: i64,
) -> Result<[i64; N], CmdError> {
    let mut out = defaults;
    for (i, v) in out.iter_mut().enumerate() {
        if from + i < args.len() {
            *v = args.int(from + i)?.clamp(1, max);
        }
    }
    Ok(out)
}

pub fn lolwut(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (version, from) = if args.len() >= 3 && args.is(1, "version") {
        (args.int(2)?, 3)
    } else {
        (7, 1)
    };
    let mut text = match version {
        5 => {
            let [cols, per_row, per_col] = numbers(args, from, [66, 8, 12], 1000)?;
            let mut t = braille(&schotter(cols, per_row.min(200), per_col.min(200)));
            t.extend_from_slice(b"\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
            t
        }
        6 => {
            let [cols, rows] = numbers(args, from, [80, 20], 1000)?;
            let mut t = coloured(&skyline(cols, rows));
            t.extend_from_slice(
                b"\nDedicated to the 8 bit game developers of past and present.\n\
                  Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
            );
            t
        }
        _ => b"Redis ver. ".to_vec(),
    };
    text.extend_from_slice(REDIS_VERSION.as_bytes());
    text.push(b'\n');
    ctx.out.verbatim(&text);
    Ok(())
}
