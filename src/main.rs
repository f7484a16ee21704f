fn main() {
    std::process::exit(lanyard::cli::main());
}
