//! OWNER: see ARCHITECTURE.md. Placeholder until its helper lands it.

#[derive(clap::Subcommand)]
pub enum Command {}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {}
}
