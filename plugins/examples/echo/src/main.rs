//! The echo plugin as a process (see the library for what it does).

fn main() {
    if let Err(e) = citadel_plugin_echo::run(citadel_plugin::Context::process()) {
        eprintln!("citadel-plugin-echo: {e}");
        std::process::exit(1);
    }
}
