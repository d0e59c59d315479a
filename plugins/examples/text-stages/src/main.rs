//! A text pipeline stage as a process (see the library).

fn main() {
    if let Err(e) = citadel_text_stages::run(citadel_plugin::Context::process()) {
        eprintln!("citadel-text-stage: {e}");
        std::process::exit(2);
    }
}
