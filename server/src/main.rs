fn main() {
    eprintln!("citadel: not yet wired");
    std::process::exit(1);
}
