//! Example plugin: answers every request with its payload upper-cased.
//! Started by the server (see `citadel_plugin` for the environment it reads).

fn main() {
    if let Err(e) = citadel_plugin::serve(|req| req.payload.to_ascii_uppercase()) {
        eprintln!("citadel-plugin-echo: {e}");
        std::process::exit(1);
    }
}
