//! PFDEBUG GETREG | DECODE | ENCODING | TODENSE <key>: Redis's internal
//! HyperLogLog inspection command, reply for reply (its own test suite and
//! tools that check a value's representation use it).

use super::{hll_sketch, REGISTERS};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// What a subcommand answers, decided inside the key's update.
enum Answer {
    Registers(Vec<u8>),
    Bulk(String),
    Status(&'static str),
    Int(i64),
}

#[derive(Clone, Copy)]
enum Subcommand {
    GetReg,
    Decode,
    Encoding,
    ToDense,
}

impl Subcommand {
    fn parse(name: &[u8]) -> Option<Subcommand> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"getreg" => Subcommand::GetReg,
            b"decode" => Subcommand::Decode,
            b"encoding" => Subcommand::Encoding,
            b"todense" => Subcommand::ToDense,
            _ => return None,
        })
    }
}

pub fn pfdebug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(1);
    let subcommand = Subcommand::parse(name);
    let answer = ctx.thread.cache.update(&[args.get(2)], |items, changes| {
        // As in Redis, the key is looked up and checked first.
        let Some(item) = &items[0] else {
            return Err(CmdError::Static("ERR The specified key does not exist"));
        };
        let mut sketch = hll_sketch(item)?;
        let Some(subcommand) = subcommand else {
            return Err(CmdError::Text(format!(
                "ERR Unknown PFDEBUG subcommand '{}'",
                String::from_utf8_lossy(name)
            )));
        };
        let was_dense = sketch.is_dense();
        Ok(match subcommand {
            Subcommand::Encoding => Answer::Status(if was_dense { "dense" } else { "sparse" }),
            Subcommand::Decode if was_dense => {
                return Err(CmdError::Static("ERR HLL encoding is not sparse"))
            }
            Subcommand::Decode => Answer::Bulk(sketch.decode_opcodes()),
            // GETREG reads the dense registers, turning a sparse value dense
            // first as Redis does (a write).
            Subcommand::GetReg | Subcommand::ToDense => {
                if !was_dense {
                    sketch.make_dense()?;
                    changes.put(0, &[&sketch.bytes[..]], item.expire_at())?;
                }
                match subcommand {
                    Subcommand::GetReg => Answer::Registers(sketch.dense_registers()),
                    _ => Answer::Int(i64::from(!was_dense)),
                }
            }
        })
    })??;
    match answer {
        Answer::Registers(registers) => {
            debug_assert_eq!(registers.len(), REGISTERS);
            ctx.out.array(registers.len());
            for register in registers {
                ctx.out.int(i64::from(register));
            }
        }
        Answer::Bulk(text) => ctx.out.bulk(text.as_bytes()),
        Answer::Status(status) => ctx.out.simple(status.as_bytes()),
        Answer::Int(n) => ctx.out.int(n),
    }
    Ok(())
}
